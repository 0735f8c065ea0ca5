//! The few `~/.ssh/config` settings ferry honours when the inventory is silent:
//! HostName, User, Port, IdentityFile, ProxyJump, UserKnownHostsFile,
//! StrictHostKeyChecking. First value wins, as in OpenSSH; `Match` blocks
//! are skipped.

use std::path::{Path, PathBuf};

/// Settings found for one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshHostConfig {
    pub hostname: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_files: Vec<PathBuf>,
    pub proxy_jump: Option<String>,
    pub user_known_hosts_files: Vec<PathBuf>,
    pub strict_host_key_checking: Option<String>,
}

/// Reads `~/.ssh/config` for `host` (empty settings when there is no file).
pub fn for_host(host: &str) -> SshHostConfig {
    match home_dir() {
        Some(home) => from_file(&home.join(".ssh/config"), host),
        None => SshHostConfig::default(),
    }
}

/// Reads one config file for `host`.
pub fn from_file(path: &Path, host: &str) -> SshHostConfig {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, host),
        Err(_) => SshHostConfig::default(),
    }
}

/// The settings of `text` that apply to `host`.
pub fn parse(text: &str, host: &str) -> SshHostConfig {
    let mut out = SshHostConfig::default();
    let mut active = true;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once(|c: char| c.is_whitespace() || c == '=') {
            Some((k, v)) => (
                k.to_ascii_lowercase(),
                unquote(v.trim_start_matches(['=', ' ', '\t']).trim()),
            ),
            None => continue,
        };
        match key.as_str() {
            "host" => {
                active = host_matches(host, &value);
                continue;
            }
            "match" => {
                active = false;
                continue;
            }
            _ => {}
        }
        if !active {
            continue;
        }
        match key.as_str() {
            "hostname" if out.hostname.is_none() => out.hostname = Some(value.replace("%h", host)),
            "user" if out.user.is_none() => out.user = Some(value),
            "port" if out.port.is_none() => out.port = value.parse().ok(),
            "identityfile" => out.identity_files.push(expand_tilde(&value)),
            "proxyjump" if out.proxy_jump.is_none() && !value.eq_ignore_ascii_case("none") => {
                out.proxy_jump = Some(value)
            }
            "userknownhostsfile" if out.user_known_hosts_files.is_empty() => {
                out.user_known_hosts_files = value.split_whitespace().map(expand_tilde).collect()
            }
            "stricthostkeychecking" if out.strict_host_key_checking.is_none() => {
                out.strict_host_key_checking = Some(value.to_ascii_lowercase())
            }
            _ => {}
        }
    }
    out
}

fn unquote(v: &str) -> String {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
        .to_string()
}

/// OpenSSH `Host` patterns: whitespace-separated, `*` and `?` wildcards, `!` negation.
fn host_matches(host: &str, patterns: &str) -> bool {
    let mut matched = false;
    for pat in patterns.split_whitespace() {
        if let Some(neg) = pat.strip_prefix('!') {
            if glob(neg.as_bytes(), host.as_bytes()) {
                return false;
            }
        } else if glob(pat.as_bytes(), host.as_bytes()) {
            matched = true;
        }
    }
    matched
}

fn glob(pat: &[u8], s: &[u8]) -> bool {
    match (pat.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&pat[1..], s) || (!s.is_empty() && glob(pat, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&pat[1..], &s[1..]),
        (Some(p), Some(c)) if p.eq_ignore_ascii_case(c) => glob(&pat[1..], &s[1..]),
        _ => false,
    }
}

/// The user's home directory ($HOME).
pub fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

/// `~/x` -> `$HOME/x`.
pub fn expand_tilde(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), home_dir()) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_value_wins_and_patterns_match() {
        let cfg = "Host lab-*\n  User alice\n  Port 2222\n  IdentityFile /k1\n  ProxyJump jump\n\
                   Host !lab-2 lab-?\n  User bob\n  IdentityFile /k2\nHost *\n  User carol\n  HostName=%h.example\n";
        let c = parse(cfg, "lab-1");
        assert_eq!(c.user.as_deref(), Some("alice"));
        assert_eq!(c.port, Some(2222));
        assert_eq!(
            c.identity_files,
            vec![PathBuf::from("/k1"), PathBuf::from("/k2")]
        );
        assert_eq!(c.proxy_jump.as_deref(), Some("jump"));
        assert_eq!(c.hostname.as_deref(), Some("lab-1.example"));
        let c2 = parse(cfg, "lab-2");
        assert_eq!(c2.identity_files, vec![PathBuf::from("/k1")]);
        let other = parse(cfg, "db");
        assert_eq!(other.user.as_deref(), Some("carol"));
        assert_eq!(other.port, None);
    }
}
