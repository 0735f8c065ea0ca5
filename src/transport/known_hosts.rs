//! Host key verification against known_hosts files (plain, hashed and
//! `[host]:port` entries): a known key passes, an unknown key is an error
//! unless new keys are accepted (then it is recorded), a changed key is
//! always an error.

use std::io::Write;
use std::path::PathBuf;

use russh::keys::{Algorithm, HashAlg, PublicKey};

use super::TransportError;

/// What to do with a host key that no known_hosts file lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostKeyPolicy {
    /// Refuse it (the default).
    #[default]
    Strict,
    /// Record it into the first writable known_hosts file and go on.
    AcceptNew,
}

/// The known_hosts files one host is checked against, in order; new keys go
/// into the first writable one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownHosts {
    pub files: Vec<PathBuf>,
    pub policy: HostKeyPolicy,
}

/// `SHA256:...` as OpenSSH prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

impl KnownHosts {
    /// Every key recorded for `host:port` across the files.
    pub fn recorded(&self, host: &str, port: u16) -> Vec<PublicKey> {
        let mut keys = Vec::new();
        let hp = host_port(host, port);
        for f in &self.files {
            keys.extend(super::known_hosts_cache::keys_for(f, &hp));
        }
        keys
    }

    /// Host key algorithms to prefer for this host: those already recorded
    /// first, so a server with several keys shows the one we know.
    pub fn preferred_algorithms(&self, host: &str, port: u16) -> Vec<Algorithm> {
        let mut out: Vec<Algorithm> = Vec::new();
        for k in self.recorded(host, port) {
            let alg = k.algorithm();
            let algs = if alg.clone().is_rsa() {
                vec![
                    Algorithm::Rsa {
                        hash: Some(HashAlg::Sha512),
                    },
                    Algorithm::Rsa {
                        hash: Some(HashAlg::Sha256),
                    },
                ]
            } else {
                vec![alg]
            };
            for a in algs {
                if !out.contains(&a) {
                    out.push(a);
                }
            }
        }
        for a in russh::Preferred::DEFAULT.key.iter() {
            if !out.contains(a) {
                out.push(a.clone());
            }
        }
        out
    }

    /// Checks `key`, the key `name` (inventory name) shows at `host:port`.
    pub fn verify(
        &self,
        name: &str,
        host: &str,
        port: u16,
        key: &PublicKey,
    ) -> Result<(), TransportError> {
        let recorded = self.recorded(host, port);
        let fp = fingerprint(key);
        if recorded.iter().any(|k| k.key_data() == key.key_data()) {
            return Ok(());
        }
        if !recorded.is_empty() {
            return Err(TransportError::HostKey {
                host: name.to_string(),
                problem: format!(
                    "CHANGED for {} (possible man-in-the-middle; the recorded key differs); the host now shows",
                    host_port(host, port)
                ),
                fingerprint: fp,
                hint: format!(
                    " (if the host was really reinstalled, remove its old line with `ssh-keygen -R '{}'` from {})",
                    host_port(host, port),
                    self.files_list()
                ),
            });
        }
        match self.policy {
            HostKeyPolicy::AcceptNew => self.record(name, host, port, key),
            HostKeyPolicy::Strict => Err(TransportError::HostKey {
                host: name.to_string(),
                problem: format!(
                    "unknown for {} (not in {})",
                    host_port(host, port),
                    self.files_list()
                ),
                fingerprint: fp,
                hint: " (check it, then run again with --accept-new-host-keys to record it)".into(),
            }),
        }
    }

    fn files_list(&self) -> String {
        self.files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn record(
        &self,
        name: &str,
        host: &str,
        port: u16,
        key: &PublicKey,
    ) -> Result<(), TransportError> {
        let line = format!(
            "{} {}\n",
            host_port(host, port),
            key.to_openssh().map_err(|e| TransportError::Other {
                host: name.to_string(),
                reason: format!("cannot encode host key: {e}"),
            })?
        );
        let mut errors = Vec::new();
        for f in &self.files {
            if let Some(parent) = f.parent()
                && !parent.as_os_str().is_empty()
                && let Err(e) = std::fs::create_dir_all(parent)
            {
                errors.push(format!("{}: {e}", f.display()));
                continue;
            }
            let res = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(f)
                .and_then(|mut file| {
                    let len = file.metadata()?.len();
                    let needs_nl = len > 0 && {
                        let text = std::fs::read(f)?;
                        text.last() != Some(&b'\n')
                    };
                    if needs_nl {
                        file.write_all(b"\n")?;
                    }
                    file.write_all(line.as_bytes())?;
                    file.sync_all()
                });
            match res {
                Ok(()) => return Ok(()),
                Err(e) => errors.push(format!("{}: {e}", f.display())),
            }
        }
        Err(TransportError::Other {
            host: name.to_string(),
            reason: format!(
                "cannot record the new host key: no writable known_hosts file ({})",
                errors.join("; ")
            ),
        })
    }
}

/// `host` on port 22, `[host]:port` otherwise, as known_hosts writes it.
pub fn host_port(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}
