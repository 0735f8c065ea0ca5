//! How to reach one host: built from its inventory vars, the command line and
//! `~/.ssh/config` (in that order of precedence).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::known_hosts::{HostKeyPolicy, KnownHosts};
use super::ssh_config::{self, SshHostConfig, expand_tilde};
use super::{Become, TransportError};
use crate::vars::Vars;

/// The connect timeout when nobody says otherwise (seconds; `--connect-timeout`'s default).
pub const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 10;

/// What the caller (the command line, a benchmark) says about reaching hosts, used where a
/// host's own variables and `~/.ssh/config` are silent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectDefaults {
    /// Private key tried after the inventory's and before the ssh config's.
    pub private_key: Option<PathBuf>,
    /// Extra known_hosts files, searched first.
    pub known_hosts: Vec<PathBuf>,
    /// Record unknown host keys (never changed ones).
    pub accept_new_host_keys: bool,
    /// SSH connect timeout (at least one second is used).
    pub connect_timeout: Duration,
    /// SSH user when neither the inventory nor the ssh config says.
    pub user: Option<String>,
}

impl Default for ConnectDefaults {
    fn default() -> Self {
        ConnectDefaults {
            private_key: None,
            known_hosts: Vec::new(),
            accept_new_host_keys: false,
            connect_timeout: Duration::from_secs(DEFAULT_CONNECT_TIMEOUT_SECS),
            user: None,
        }
    }
}

/// Which transport reaches the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConnectionKind {
    #[default]
    Ssh,
    /// `ansible_connection: local`: commands run on the controller.
    Local,
}

/// Everything needed to open one host's connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectParams {
    /// The inventory name (used in every message).
    pub name: String,
    pub kind: ConnectionKind,
    /// Address or DNS name to connect to.
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Key files to try, in order (unencrypted ones before the agent,
    /// encrypted ones after it).
    pub identity_files: Vec<PathBuf>,
    /// The SSH agent's socket (`SSH_AUTH_SOCK`), if any.
    pub agent_socket: Option<PathBuf>,
    pub known_hosts: KnownHosts,
    /// Jump host, outermost first (`-J a,b` reaches b through a, then the host through b).
    pub jump: Option<Box<ConnectParams>>,
    pub connect_timeout: Duration,
    /// Keepalive interval (the connection is dropped after 3 unanswered).
    pub keepalive: Duration,
    /// `ansible_become` / `ansible_become_user`: the default become of this host's tasks.
    pub become_: Option<Become>,
    /// Host var `ferry_agent` (default true): the host's agent answers file
    /// requests instead of the remote shell (see `transport::agent`).
    pub agent: bool,
}

fn var_str(vars: &Vars, key: &str) -> Option<String> {
    match vars.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn var_bool(vars: &Vars, key: &str) -> bool {
    match vars.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => {
            matches!(s.to_ascii_lowercase().as_str(), "yes" | "true" | "1" | "on")
        }
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        _ => false,
    }
}

/// What `ansible_ssh_common_args` / `ansible_ssh_extra_args` say.
#[derive(Debug, Default, PartialEq, Eq)]
struct SshArgs {
    known_hosts_files: Vec<PathBuf>,
    strict: Option<String>,
    jump: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    identity_files: Vec<PathBuf>,
}

fn parse_ssh_args(name: &str, args: &str) -> Result<SshArgs, TransportError> {
    let bad = |what: String| TransportError::Other {
        host: name.to_string(),
        reason: format!("ansible_ssh_common_args: {what}"),
    };
    let words = shell_words(args).map_err(|e| bad(e.to_string()))?;
    let mut out = SshArgs::default();
    let mut it = words.into_iter();
    while let Some(w) = it.next() {
        let (flag, inline) = if w.len() > 2 && w.starts_with('-') && !w.starts_with("--") {
            (w[..2].to_string(), Some(w[2..].to_string()))
        } else {
            (w.clone(), None)
        };
        let takes_value = matches!(
            flag.as_str(),
            "-o" | "-J" | "-p" | "-l" | "-i" | "-F" | "-c" | "-m" | "-b" | "-E"
        );
        let value = if takes_value {
            match inline {
                Some(v) => v,
                None => it
                    .next()
                    .ok_or_else(|| bad(format!("{flag} needs a value")))?,
            }
        } else {
            continue;
        };
        match flag.as_str() {
            "-J" => out.jump = Some(value),
            "-p" => {
                out.port = Some(
                    value
                        .parse()
                        .map_err(|_| bad(format!("bad port {value:?}")))?,
                )
            }
            "-l" => out.user = Some(value),
            "-i" => out.identity_files.push(expand_tilde(&value)),
            "-o" => {
                let (k, v) = value
                    .split_once(['=', ' '])
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                    .ok_or_else(|| bad(format!("-o {value:?} is not KEY=VALUE")))?;
                match k.as_str() {
                    "userknownhostsfile" => out
                        .known_hosts_files
                        .extend(v.split_whitespace().map(expand_tilde)),
                    "stricthostkeychecking" => out.strict = Some(v.to_ascii_lowercase()),
                    "proxyjump" => out.jump = Some(v),
                    "port" => {
                        out.port = Some(v.parse().map_err(|_| bad(format!("bad port {v:?}")))?)
                    }
                    "user" => out.user = Some(v),
                    "identityfile" => out.identity_files.push(expand_tilde(&v)),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// A quote `shell_words` found no end of: `single` or `double`.
#[derive(Debug, thiserror::Error)]
#[error("unclosed {0} quote")]
struct UnclosedQuote(&'static str);

/// Splits like a POSIX shell (quotes and backslashes; no expansions).
fn shell_words(s: &str) -> Result<Vec<String>, UnclosedQuote> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(UnclosedQuote("single")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => cur.push(chars.next().ok_or(UnclosedQuote("double"))?),
                        Some(c) => cur.push(c),
                        None => return Err(UnclosedQuote("double")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    cur.push(c);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// The current user's name (for the SSH user when nothing else says).
fn local_user() -> String {
    std::env::var("USER")
        .ok()
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.name)
        })
        .unwrap_or_else(|| "root".into())
}

impl ConnectParams {
    /// Builds the parameters of inventory host `name` from its vars, the
    /// command line options and `~/.ssh/config`.
    pub fn from_host_vars(
        name: &str,
        vars: &Vars,
        opts: &ConnectDefaults,
    ) -> Result<ConnectParams, TransportError> {
        let cfg = ssh_config::for_host(var_str(vars, "ansible_host").as_deref().unwrap_or(name));
        let cfg_by_name = if var_str(vars, "ansible_host").is_some() {
            ssh_config::for_host(name)
        } else {
            cfg.clone()
        };
        Self::build(name, vars, opts, &merge(cfg_by_name, cfg))
    }

    /// As [`from_host_vars`](Self::from_host_vars), with the ssh config given.
    pub fn build(
        name: &str,
        vars: &Vars,
        opts: &ConnectDefaults,
        cfg: &SshHostConfig,
    ) -> Result<ConnectParams, TransportError> {
        let bad = |reason: String| TransportError::Other {
            host: name.to_string(),
            reason,
        };
        let kind = match var_str(vars, "ansible_connection").as_deref() {
            None | Some("ssh") | Some("smart") | Some("paramiko") | Some("ansible.builtin.ssh") => {
                ConnectionKind::Ssh
            }
            Some("local") | Some("ansible.builtin.local") => ConnectionKind::Local,
            Some(other) => {
                return Err(bad(format!(
                    "ansible_connection: {other:?} is not supported (use ssh or local)"
                )));
            }
        };
        let mut args = SshArgs::default();
        for key in [
            "ansible_ssh_common_args",
            "ansible_ssh_extra_args",
            "ansible_ssh_args",
        ] {
            if let Some(a) = var_str(vars, key) {
                let more = parse_ssh_args(name, &a)?;
                args.known_hosts_files.extend(more.known_hosts_files);
                args.identity_files.extend(more.identity_files);
                args.strict = args.strict.or(more.strict);
                args.jump = args.jump.or(more.jump);
                args.port = args.port.or(more.port);
                args.user = args.user.or(more.user);
            }
        }
        let host = var_str(vars, "ansible_host")
            .or_else(|| var_str(vars, "ansible_ssh_host"))
            .or_else(|| cfg.hostname.clone())
            .unwrap_or_else(|| name.to_string());
        let port = match var_str(vars, "ansible_port").or_else(|| var_str(vars, "ansible_ssh_port"))
        {
            Some(p) => p
                .parse()
                .map_err(|_| bad(format!("ansible_port: {p:?} is not a port number")))?,
            None => args.port.or(cfg.port).unwrap_or(22),
        };
        let user = var_str(vars, "ansible_user")
            .or_else(|| var_str(vars, "ansible_ssh_user"))
            .or(args.user.clone())
            .or_else(|| opts.user.clone())
            .or_else(|| cfg.user.clone())
            .unwrap_or_else(local_user);
        let mut identity_files = Vec::new();
        if let Some(k) = var_str(vars, "ansible_ssh_private_key_file")
            .or_else(|| var_str(vars, "ansible_private_key_file"))
        {
            identity_files.push(expand_tilde(&k));
        }
        identity_files.extend(args.identity_files.iter().cloned());
        if let Some(k) = &opts.private_key {
            identity_files.push(k.clone());
        }
        identity_files.extend(cfg.identity_files.iter().cloned());
        if identity_files.is_empty()
            && let Some(home) = ssh_config::home_dir()
        {
            for f in ["id_ed25519", "id_ecdsa", "id_rsa"] {
                let p = home.join(".ssh").join(f);
                if p.exists() {
                    identity_files.push(p);
                }
            }
        }
        let mut files: Vec<PathBuf> = opts.known_hosts.clone();
        files.extend(args.known_hosts_files.iter().cloned());
        files.extend(cfg.user_known_hosts_files.iter().cloned());
        if let Some(home) = ssh_config::home_dir() {
            files.push(home.join(".ssh/known_hosts"));
        }
        files.dedup();
        let strict = args
            .strict
            .clone()
            .or_else(|| cfg.strict_host_key_checking.clone());
        let policy = if opts.accept_new_host_keys
            || matches!(
                strict.as_deref(),
                Some("accept-new") | Some("no") | Some("off")
            ) {
            HostKeyPolicy::AcceptNew
        } else {
            HostKeyPolicy::Strict
        };
        let known_hosts = KnownHosts { files, policy };
        let jump_spec = args.jump.clone().or_else(|| cfg.proxy_jump.clone());
        let connect_timeout = opts.connect_timeout.max(Duration::from_secs(1));
        let jump = match jump_spec {
            Some(spec) => Some(Box::new(Self::jump_chain(
                name,
                &spec,
                opts,
                &known_hosts,
                &identity_files,
                connect_timeout,
            )?)),
            None => None,
        };
        let become_ = var_bool(vars, "ansible_become").then(|| Become {
            user: var_str(vars, "ansible_become_user"),
            password: var_str(vars, "ansible_become_password")
                .or_else(|| var_str(vars, "ansible_become_pass")),
        });
        Ok(ConnectParams {
            name: name.to_string(),
            kind,
            host,
            port,
            user,
            identity_files,
            agent_socket: std::env::var_os("SSH_AUTH_SOCK")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
            known_hosts,
            jump,
            connect_timeout,
            keepalive: Duration::from_secs(15),
            become_,
            agent: vars.get("ferry_agent").is_none() || var_bool(vars, "ferry_agent"),
        })
    }

    /// `-J [user@]host[:port][,...]`: the last hop is the one next to the
    /// target; each hop is reached through the one before it.
    fn jump_chain(
        name: &str,
        spec: &str,
        opts: &ConnectDefaults,
        known_hosts: &KnownHosts,
        identity_files: &[PathBuf],
        connect_timeout: Duration,
    ) -> Result<ConnectParams, TransportError> {
        let mut prev: Option<Box<ConnectParams>> = None;
        for hop in spec.split(',') {
            let hop = hop.trim();
            let (user, rest) = match hop.rsplit_once('@') {
                Some((u, r)) => (Some(u.to_string()), r),
                None => (None, hop),
            };
            let (h, port): (String, Option<u16>) = if let Some(r) = rest.strip_prefix('[') {
                let (h, after) = r.split_once(']').unwrap_or((r, ""));
                (
                    h.to_string(),
                    after.strip_prefix(':').and_then(|p| p.parse().ok()),
                )
            } else {
                match rest.rsplit_once(':') {
                    Some((h, p)) if !h.contains(':') => (
                        h.to_string(),
                        Some(p.parse().map_err(|_| TransportError::Other {
                            host: name.to_string(),
                            reason: format!("jump host {hop:?}: bad port"),
                        })?),
                    ),
                    _ => (rest.to_string(), None),
                }
            };
            if h.is_empty() {
                return Err(TransportError::Other {
                    host: name.to_string(),
                    reason: format!("jump host {spec:?}: empty host"),
                });
            }
            let cfg = ssh_config::for_host(&h);
            let mut vars = Vars::new();
            vars.insert(
                "ansible_host".into(),
                Value::String(cfg.hostname.clone().unwrap_or_else(|| h.clone())),
            );
            if let Some(u) = user {
                vars.insert("ansible_user".into(), Value::String(u));
            }
            if let Some(p) = port {
                vars.insert("ansible_port".into(), Value::from(p));
            }
            let cfg_nojump = SshHostConfig {
                proxy_jump: None,
                ..cfg
            };
            let mut p = Self::build(&format!("{name} (jump host {h})"), &vars, opts, &cfg_nojump)?;
            p.known_hosts.files = known_hosts.files.clone();
            p.known_hosts.policy = known_hosts.policy;
            p.connect_timeout = connect_timeout;
            // The target's keys are tried on the jump hosts too, after their own.
            for k in identity_files {
                if !p.identity_files.contains(k) {
                    p.identity_files.push(k.clone());
                }
            }
            p.jump = prev.take();
            prev = Some(Box::new(p));
        }
        Ok(*prev.expect("split yields at least one hop"))
    }
}

/// Settings from the inventory name's block first, then the address's.
fn merge(a: SshHostConfig, b: SshHostConfig) -> SshHostConfig {
    if a == b {
        return a;
    }
    SshHostConfig {
        hostname: a.hostname.or(b.hostname),
        user: a.user.or(b.user),
        port: a.port.or(b.port),
        identity_files: if a.identity_files.is_empty() {
            b.identity_files
        } else {
            a.identity_files
        },
        proxy_jump: a.proxy_jump.or(b.proxy_jump),
        user_known_hosts_files: if a.user_known_hosts_files.is_empty() {
            b.user_known_hosts_files
        } else {
            a.user_known_hosts_files
        },
        strict_host_key_checking: a.strict_host_key_checking.or(b.strict_host_key_checking),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> ConnectDefaults {
        ConnectDefaults {
            known_hosts: vec![PathBuf::from("/kh")],
            connect_timeout: Duration::from_secs(5),
            ..ConnectDefaults::default()
        }
    }

    #[test]
    fn inventory_vars_win_over_ssh_config() {
        let vars: Vars = serde_json::from_str(
            r#"{"ansible_host":"10.0.0.2","ansible_port":2200,"ansible_user":"ops",
                "ansible_ssh_private_key_file":"/keys/lab",
                "ansible_ssh_common_args":"-o UserKnownHostsFile=/lab/kh -o StrictHostKeyChecking=accept-new -J admin@jump:2222",
                "ansible_become":true,"ansible_become_user":"postgres"}"#,
        )
        .unwrap();
        let cfg = SshHostConfig {
            user: Some("cfguser".into()),
            port: Some(22),
            identity_files: vec![PathBuf::from("/cfgkey")],
            ..Default::default()
        };
        let p = ConnectParams::build("db1", &vars, &opts(), &cfg).unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.user.as_str()),
            ("10.0.0.2", 2200, "ops")
        );
        assert_eq!(p.identity_files[0], PathBuf::from("/keys/lab"));
        assert_eq!(
            &p.known_hosts.files[..2],
            &[PathBuf::from("/kh"), PathBuf::from("/lab/kh")]
        );
        assert_eq!(p.known_hosts.policy, HostKeyPolicy::AcceptNew);
        let j = p.jump.as_ref().unwrap();
        assert_eq!(
            (j.host.as_str(), j.port, j.user.as_str()),
            ("jump", 2222, "admin")
        );
        assert_eq!(
            p.become_.as_ref().unwrap().user.as_deref(),
            Some("postgres")
        );
    }

    #[test]
    fn ssh_config_fills_gaps_and_bad_values_are_named() {
        let cfg = SshHostConfig {
            hostname: Some("real.example".into()),
            user: Some("cfguser".into()),
            port: Some(2022),
            proxy_jump: Some("a,b:23".into()),
            ..Default::default()
        };
        let p = ConnectParams::build("web", &Vars::new(), &opts(), &cfg).unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.user.as_str()),
            ("real.example", 2022, "cfguser")
        );
        let b = p.jump.as_ref().unwrap();
        assert_eq!((b.host.as_str(), b.port), ("b", 23));
        assert_eq!(b.jump.as_ref().unwrap().host, "a");
        let vars: Vars = serde_json::from_str(r#"{"ansible_port":"http"}"#).unwrap();
        let err = ConnectParams::build("web", &vars, &opts(), &cfg)
            .unwrap_err()
            .to_string();
        assert!(err.contains("web") && err.contains("ansible_port"), "{err}");
        let vars: Vars = serde_json::from_str(r#"{"ansible_connection":"winrm"}"#).unwrap();
        let err = ConnectParams::build("web", &vars, &opts(), &cfg)
            .unwrap_err()
            .to_string();
        assert!(err.contains("winrm"), "{err}");
    }
}
