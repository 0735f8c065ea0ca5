//! What ops that work on a host share: the transport that runs as the task's `become`
//! user, shell quoting, running a command line, checksums, and finding a `src:` on the
//! controller.

use std::path::{Path, PathBuf};

use crate::ops::check_state::{CheckOverlay, OverlayRead};
use crate::transport::{
    Become, CommandOutput, CommandSpec, FileRead, FileSpec, Transport, TransportError,
};

use super::OpError;

/// A transport that runs every command and writes every file as the task's `become`
/// user (when it has one): ops build their `CommandSpec`/`FileSpec` without `become_`,
/// and [`super::OpContext::host_transport`] wraps the host's transport in this.
pub struct BecomeTransport<'a> {
    pub inner: &'a dyn Transport,
    pub become_: Option<Become>,
}

#[async_trait::async_trait]
impl Transport for BecomeTransport<'_> {
    fn host(&self) -> &str {
        self.inner.host()
    }
    fn endpoint(&self) -> String {
        self.inner.endpoint()
    }
    async fn run(&self, spec: &CommandSpec) -> Result<CommandOutput, TransportError> {
        let Some(b) = &self.become_ else {
            return self.inner.run(spec).await;
        };
        let mut s = spec.clone();
        s.become_.get_or_insert_with(|| b.clone());
        self.inner.run(&s).await
    }
    async fn put_file(&self, spec: &FileSpec) -> Result<(), TransportError> {
        let Some(b) = &self.become_ else {
            return self.inner.put_file(spec).await;
        };
        let mut s = spec.clone();
        s.become_.get_or_insert_with(|| b.clone());
        self.inner.put_file(&s).await
    }
    async fn get_file(&self, path: &str) -> Result<Vec<u8>, TransportError> {
        if self.become_.is_none() {
            return self.inner.get_file(path).await;
        }
        // In a --check run, what check mode would have written comes first.
        let mut path = path;
        let host_path;
        if let Some(o) = self.inner.check_overlay() {
            match o.overlay_read(path) {
                OverlayRead::Host(p) => {
                    host_path = p;
                    path = &host_path;
                }
                _ => return o.get_file(path).await,
            }
        }
        // Reading as another user needs a command; the trait's get_file has no become.
        let out = self
            .run(&CommandSpec::new(format!("cat -- {}", sh_quote(path))))
            .await?;
        if out.rc != 0 {
            return Err(TransportError::Other {
                host: self.host().to_string(),
                reason: format!(
                    "reading {path}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        Ok(out.stdout)
    }
    async fn stat(&self, path: &str) -> Result<crate::transport::FileStat, TransportError> {
        self.inner.stat(path).await
    }
    // The one-round-trip calls go to the inner transport whenever they mean the
    // same there: `exists` always (a stat, which has no become), the others
    // without become (with it, a read is a command and a write carries it).
    async fn exists(&self, path: &str) -> Result<bool, TransportError> {
        self.inner.exists(path).await
    }
    async fn stat_read(&self, path: &str) -> Result<FileRead, TransportError> {
        if self.become_.is_none() {
            return self.inner.stat_read(path).await;
        }
        crate::transport::stat_then_read(self, path).await
    }
    async fn create_file(
        &self,
        spec: &FileSpec,
    ) -> Result<Option<crate::transport::FileStat>, TransportError> {
        let Some(b) = &self.become_ else {
            return self.inner.create_file(spec).await;
        };
        let mut s = spec.clone();
        s.become_.get_or_insert_with(|| b.clone());
        self.inner.create_file(&s).await
    }
    async fn make_dirs(&self, path: &str) -> Result<CommandOutput, TransportError> {
        if self.become_.is_none() {
            return self.inner.make_dirs(path).await;
        }
        self.run(&crate::transport::make_dirs_command(path)).await
    }
    async fn close(&self) {}
    fn simulation(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
        self.inner.simulation()
    }
}

/// Quote a string for `/bin/sh`.
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// sha256 of bytes, lowercase hex (the form `FileStat::checksum` carries).
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// Run a shell command line on the host (as the task's user).
pub async fn sh(t: &dyn Transport, cmd: impl Into<String>) -> Result<CommandOutput, OpError> {
    Ok(t.run(&CommandSpec::new(cmd)).await?)
}

/// Run a command and fail unless it exits 0.
pub async fn sh_ok(
    t: &dyn Transport,
    cmd: impl Into<String>,
    what: &str,
) -> Result<CommandOutput, OpError> {
    let out = sh(t, cmd).await?;
    if out.rc != 0 {
        return Err(OpError::command(what.to_string(), &out));
    }
    Ok(out)
}

/// Find `src` on the controller: absolute as is, else under each of `dirs`'
/// `sub/` (files, templates) and then the dir itself.
pub fn find_src(src: &str, sub: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    let p = Path::new(src);
    if p.is_absolute() {
        return p.exists().then(|| p.to_path_buf());
    }
    for b in dirs {
        for cand in [b.join(sub).join(p), b.join(p)] {
            if cand.exists() {
                return Some(cand);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(sh_quote("/etc/x.conf"), "/etc/x.conf");
        assert_eq!(sh_quote("a b'c"), "'a b'\\''c'");
        assert_eq!(sh_quote(""), "''");
    }

    #[tokio::test]
    async fn become_reads_what_check_mode_would_have_written() {
        use crate::ops::check_state::{CheckState, CheckTransport};
        use crate::transport::local::LocalTransport;
        let dir = tempfile::tempdir().unwrap();
        let check = CheckTransport::new(
            std::sync::Arc::new(LocalTransport::new("h")),
            CheckState::new(),
        );
        let t = BecomeTransport {
            inner: &check,
            become_: Some(Become {
                user: Some("nobody".into()),
                password: None,
            }),
        };
        let path = format!("{}/new/f", dir.path().display());
        t.put_file(&FileSpec {
            path: path.clone(),
            content: b"would be\n".to_vec(),
            ..FileSpec::default()
        })
        .await
        .unwrap();
        assert!(t.check_overlay().is_some());
        assert_eq!(t.get_file(&path).await.unwrap(), b"would be\n");
        let st = t.stat(&path).await.unwrap();
        assert!(st.is_file && st.owner == "nobody", "{st:?}");
        assert!(!dir.path().join("new").exists(), "check mode wrote");
    }
}
