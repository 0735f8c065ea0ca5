//! Parsing what Vagrant prints: `vagrant ssh-config` (OpenSSH client syntax),
//! the network plan ferry's Vagrantfile writes, `ip -o -4 addr show` from inside
//! a machine, and `vagrant status --machine-readable`. Pure functions of text.

use serde::Deserialize;

use super::VagrantError;

/// One `Host` block of `vagrant ssh-config`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshConfigHost {
    /// The machine name (Vagrant writes `Host NAME`).
    pub name: String,
    pub hostname: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_files: Vec<String>,
    pub strict_host_key_checking: Option<String>,
    pub user_known_hosts_file: Option<String>,
    pub proxy_command: Option<String>,
}

/// Parses `vagrant ssh-config` output (OpenSSH client config syntax: `Keyword value`
/// or `Keyword=value`, keywords case-insensitive, values optionally in double quotes).
/// Keywords ferry does not use are skipped.
pub fn parse_ssh_config(text: &str) -> Result<Vec<SshConfigHost>, VagrantError> {
    let mut hosts: Vec<SshConfigHost> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let bad = |reason: String| VagrantError::BadSshConfig {
            line: line_no,
            reason,
        };
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (keyword, rest) = match line.find(|c: char| c.is_whitespace() || c == '=') {
            Some(at) => (&line[..at], line[at..].trim_start()),
            None => (line, ""),
        };
        let rest = rest.strip_prefix('=').unwrap_or(rest).trim();
        let value = unquote(rest);
        if value.is_empty() {
            return Err(bad(format!("{keyword} has no value")));
        }
        let keyword = keyword.to_ascii_lowercase();
        if keyword == "host" {
            hosts.push(SshConfigHost {
                name: value,
                ..Default::default()
            });
            continue;
        }
        let Some(host) = hosts.last_mut() else {
            return Err(bad(format!("{raw:?} comes before any Host line")));
        };
        match keyword.as_str() {
            "hostname" => host.hostname = Some(value),
            "user" => host.user = Some(value),
            "port" => {
                host.port = Some(
                    value
                        .parse()
                        .map_err(|_| bad(format!("Port {value:?} is not a port number")))?,
                )
            }
            "identityfile" => host.identity_files.push(value),
            "stricthostkeychecking" => host.strict_host_key_checking = Some(value),
            "userknownhostsfile" => host.user_known_hosts_file = Some(value),
            "proxycommand" => host.proxy_command = Some(value),
            _ => {}
        }
    }
    Ok(hosts)
}

fn unquote(s: &str) -> String {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
        .to_string()
}

/// The network plan the Vagrantfile writes to `FERRY_PLAN`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NetworkPlan {
    /// Format version; 1.
    pub ferry_vagrant_plan: u32,
    pub mgmt_prefix: u8,
    pub migration_prefix: u8,
    pub migration_mtu: u32,
    pub machines: Vec<PlannedMachine>,
}

/// One machine of the plan.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PlannedMachine {
    pub name: String,
    pub mgmt_ip: String,
    /// `None`: not on the migration network (the controller).
    pub migration_ip: Option<String>,
}

impl NetworkPlan {
    pub fn parse(text: &str) -> Result<NetworkPlan, VagrantError> {
        let plan: NetworkPlan = serde_json::from_str(text).map_err(|e| VagrantError::BadPlan {
            reason: e.to_string(),
        })?;
        if plan.ferry_vagrant_plan != 1 {
            return Err(VagrantError::BadPlan {
                reason: format!(
                    "ferry_vagrant_plan is {}, this ferry reads 1",
                    plan.ferry_vagrant_plan
                ),
            });
        }
        Ok(plan)
    }
}

/// One IPv4 address on one NIC, from `ip -o -4 addr show`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicAddress {
    pub iface: String,
    pub ip: String,
    pub prefix: u8,
}

/// Parses `ip -o -4 addr show` (`2: eth1    inet 10.10.0.11/24 brd ... scope global eth1\ ...`).
/// Lines it does not understand are skipped; a `\r` (a pty) is ignored.
pub fn parse_ip_addr(text: &str) -> Vec<NicAddress> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut words = line.trim_end_matches('\r').split_whitespace();
        let (Some(index), Some(iface), Some("inet"), Some(cidr)) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            continue;
        };
        if !index.ends_with(':') {
            continue;
        }
        let Some((ip, prefix)) = cidr.split_once('/') else {
            continue;
        };
        let Ok(prefix) = prefix.parse() else {
            continue;
        };
        // A veth shows as `eth0@if12`.
        let iface = iface.split('@').next().unwrap_or(iface).to_string();
        out.push(NicAddress {
            iface,
            ip: ip.to_string(),
            prefix,
        });
    }
    out
}

/// The `state` lines of `vagrant status --machine-readable`.
pub fn parse_machine_states(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.splitn(4, ',');
            let (_ts, name, kind, state) = (f.next()?, f.next()?, f.next()?, f.next()?);
            (kind == "state" && !name.is_empty()).then(|| (name.to_string(), state.to_string()))
        })
        .collect()
}
