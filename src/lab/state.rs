//! The lab state directory: `lab.json` (what the lab is), the `journal` of
//! every name recorded before it is created, the lab key, `known_hosts`,
//! `ssh_config` and `inventory.yml`.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::address::{AddressPlan, Cidr};
use super::host::{HostPaths, LabProcess};
use super::network::{self, IfNames};
pub use super::private_file::{create_private, write_atomic};
use super::rate::LinkRate;
use super::{LabError, Result, io_err};

/// One host as the state records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostRecord {
    pub index: u32,
    pub name: String,
    pub anchor: Option<LabProcess>,
    pub sshd: Option<LabProcess>,
    /// The rate its migration link is shaped to (None: unshaped).
    pub shaped: Option<LinkRate>,
    pub mtu: u32,
}

/// What `lab.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabState {
    pub name: String,
    pub state_dir: PathBuf,
    pub range: Cidr,
    /// Prefix of each of its three networks (see `address`): 24, or 22 for a large lab.
    #[serde(default = "small_lab_net_prefix")]
    pub net_prefix: u8,
    pub prefix: String,
    pub link_rate: Option<LinkRate>,
    pub mtu: u32,
    pub hosts: Vec<HostRecord>,
}

/// `Pss:` of /proc/PID/smaps_rollup, in KiB.
fn pss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Pss:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn small_lab_net_prefix() -> u8 {
    24
}

pub fn default_state_dir(name: &str) -> PathBuf {
    Path::new(super::STATE_ROOT).join(name)
}

pub fn lab_json(dir: &Path) -> PathBuf {
    dir.join("lab.json")
}

impl LabState {
    pub fn plan(&self) -> AddressPlan {
        AddressPlan {
            range: self.range,
            net_prefix: self.net_prefix,
        }
    }
    /// What the lab's own processes (each host's anchor and sshd) hold in memory: the
    /// sum of their proportional set sizes (`Pss` of /proc/PID/smaps_rollup), in KiB.
    /// Kernel memory (namespaces, veths, the overlay mounts) is not in it.
    pub fn processes_pss_kib(&self) -> u64 {
        self.hosts
            .iter()
            .flat_map(|h| h.anchor.iter().chain(h.sshd.iter()))
            .filter_map(|p| pss_kib(p.pid))
            .sum()
    }
    pub fn names(&self) -> IfNames {
        IfNames {
            prefix: self.prefix.clone(),
        }
    }
    pub fn host_paths(&self, index: u32) -> HostPaths {
        HostPaths::new(&self.state_dir, index)
    }
    pub fn key_path(&self) -> PathBuf {
        self.state_dir.join("id_ed25519")
    }
    pub fn authorized_keys(&self) -> PathBuf {
        self.state_dir.join("authorized_keys")
    }
    pub fn known_hosts(&self) -> PathBuf {
        self.state_dir.join("known_hosts")
    }
    pub fn ssh_config(&self) -> PathBuf {
        self.state_dir.join("ssh_config")
    }
    pub fn inventory(&self) -> PathBuf {
        self.state_dir.join("inventory.yml")
    }
    pub fn journal(&self) -> PathBuf {
        self.state_dir.join("journal")
    }

    pub fn load(dir: &Path) -> Result<Option<LabState>> {
        let p = lab_json(dir);
        match std::fs::read_to_string(&p) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| LabError::State(format!("{}: {e}", p.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&p)(e)),
        }
    }

    pub fn save(&self) -> Result<()> {
        let p = lab_json(&self.state_dir);
        let text = serde_json::to_string_pretty(self).expect("state serialises");
        write_atomic(&p, text.as_bytes())
    }

    /// Append `entry` to the journal (done before the thing is created).
    pub fn record(&self, entry: &str) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let p = self.journal();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&p)
            .map_err(io_err(&p))?;
        f.write_all(format!("{entry}\n").as_bytes())
            .map_err(io_err(&p))
    }

    /// The processes the journal names (recorded as soon as they started).
    pub fn journal_processes(&self) -> Vec<LabProcess> {
        std::fs::read_to_string(self.journal())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut f = l.strip_prefix("process ")?.splitn(3, ' ');
                Some(LabProcess {
                    pid: f.next()?.parse().ok()?,
                    start_time: f.next()?.parse().ok()?,
                    cmdline: f.next()?.to_string(),
                })
            })
            .collect()
    }

    /// The links the journal names.
    pub fn journal_links(&self) -> Vec<String> {
        std::fs::read_to_string(self.journal())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix("link "))
            .map(String::from)
            .collect()
    }

    /// Write known_hosts, ssh_config and the inventory from the current hosts.
    pub fn write_client_files(&self) -> Result<()> {
        let plan = self.plan();
        let mut known = String::new();
        let mut config = format!(
            "# Written by `ferry lab up` for lab {name}: ssh -F {cfg} {name}-1\n",
            name = self.name,
            cfg = self.ssh_config().display()
        );
        for h in &self.hosts {
            let pubkey = self.host_paths(h.index).host_key().with_extension("pub");
            let key = std::fs::read_to_string(&pubkey).map_err(io_err(&pubkey))?;
            let mut fields = key.split_whitespace();
            let (Some(kind), Some(b64)) = (fields.next(), fields.next()) else {
                return Err(LabError::State(format!(
                    "{}: not a public key",
                    pubkey.display()
                )));
            };
            known.push_str(&format!(
                "{},{} {kind} {b64}\n",
                h.name,
                plan.mgmt_ip(h.index)
            ));
            config.push_str(&format!(
                "\nHost {name} {ip}\n  HostName {ip}\n  User root\n  IdentityFile {key}\n  IdentitiesOnly yes\n  \
                 UserKnownHostsFile {kh}\n  StrictHostKeyChecking yes\n  KexAlgorithms curve25519-sha256\n  \
                 BatchMode yes\n  LogLevel ERROR\n",
                name = h.name,
                ip = plan.mgmt_ip(h.index),
                key = self.key_path().display(),
                kh = self.known_hosts().display(),
            ));
        }
        write_atomic(&self.known_hosts(), known.as_bytes())?;
        write_atomic(&self.ssh_config(), config.as_bytes())?;
        write_atomic(&self.inventory(), self.inventory_yaml().as_bytes())
    }

    /// The inventory in ferry's (Ansible's YAML) inventory shape.
    pub fn inventory_yaml(&self) -> String {
        let plan = self.plan();
        let q = |s: &str| serde_json::to_string(s).expect("string");
        let mut y = format!(
            "# Written by `ferry lab up` for lab {name}; rewritten on every `up`.\n\
             # mgmt: {m}  migration: {x}  guest: {g}\n\
             all:\n  children:\n    lab:\n      vars:\n        lab_name: {qn}\n        lab_state_dir: {qs}\n\
             \x20       nova_virt_type: qemu\n",
            name = self.name,
            m = plan.mgmt_net(),
            x = plan.migration_net(),
            g = plan.guest_net(),
            qn = q(&self.name),
            qs = q(&self.state_dir.display().to_string()),
        );
        if let Some(rate) = &self.link_rate {
            y.push_str(&format!("        migration_link_rate: {}\n", q(&rate.text)));
        }
        y.push_str("      hosts:\n");
        let common = format!(
            "-o UserKnownHostsFile={} -o StrictHostKeyChecking=yes",
            self.known_hosts().display()
        );
        for h in &self.hosts {
            y.push_str(&format!(
                "        {name}:\n\
                 \x20         ansible_host: {mgmt}\n\
                 \x20         ansible_user: root\n\
                 \x20         ansible_ssh_private_key_file: {key}\n\
                 \x20         ansible_ssh_common_args: {common}\n\
                 \x20         mgmt_ip: {mgmt}\n\
                 \x20         migration_ip: {mig}\n\
                 \x20         migration_prefix: 24\n\
                 \x20         migration_iface: {mif}\n\
                 \x20         migration_mtu: {mtu}\n\
                 \x20         guest_ip: {guest}\n\
                 \x20         guest_prefix: 24\n\
                 \x20         guest_bridge_iface: {gbr}\n",
                name = q(&h.name),
                mgmt = q(&plan.mgmt_ip(h.index).to_string()),
                key = q(&self.key_path().display().to_string()),
                common = q(&common),
                mig = q(&plan.migration_ip(h.index).to_string()),
                mif = q(network::HOST_MIGRATION_IF),
                mtu = self.mtu,
                guest = q(&plan.guest_ip(h.index).to_string()),
                gbr = q(network::HOST_GUEST_BRIDGE),
            ));
        }
        y.push_str("    compute:\n      hosts:\n");
        for h in &self.hosts {
            y.push_str(&format!("        {}: {{}}\n", q(&h.name)));
        }
        y.push_str("    controller:\n      hosts:\n");
        if let Some(h) = self.hosts.first() {
            y.push_str(&format!("        {}: {{}}\n", q(&h.name)));
        }
        y
    }
}
