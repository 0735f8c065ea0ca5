//! The local transport (`ansible_connection: local`): commands run with
//! tokio::process on the controller, files are written directly.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Stdio;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{CommandOutput, CommandSpec, FileSpec, FileStat, Transport, TransportError};

/// Runs everything on this machine, as the user ferry runs as (or through sudo with `become`).
pub struct LocalTransport {
    host: String,
}

impl LocalTransport {
    pub fn new(host: impl Into<String>) -> Self {
        Self { host: host.into() }
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> TransportError {
        TransportError::Other {
            host: self.host.clone(),
            reason: format!("{what}: {e}"),
        }
    }
}

#[async_trait]
impl Transport for LocalTransport {
    fn host(&self) -> &str {
        &self.host
    }
    /// Every local host is the controller itself.
    fn endpoint(&self) -> String {
        "local".into()
    }

    async fn run(&self, spec: &CommandSpec) -> Result<CommandOutput, TransportError> {
        let mut cmd = match &spec.become_ {
            Some(b)
                if !(nix::unistd::geteuid().is_root()
                    && b.user.as_deref().unwrap_or("root") == "root") =>
            {
                let mut c = tokio::process::Command::new("sudo");
                if b.password.is_some() {
                    c.arg("-S").arg("-p").arg("");
                } else {
                    c.arg("-n");
                }
                c.arg("-u").arg(b.user.as_deref().unwrap_or("root"));
                c.arg("--").arg("/bin/sh").arg("-c").arg(&spec.cmd);
                c
            }
            _ => {
                let mut c = tokio::process::Command::new("/bin/sh");
                c.arg("-c").arg(&spec.cmd);
                c
            }
        };
        if let Some(cwd) = &spec.cwd {
            cmd.current_dir(cwd);
        }
        for (k, v) in &spec.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| self.err("spawn /bin/sh", e))?;
        let pid = child.id();
        let mut stdin_bytes = Vec::new();
        if let Some(b) = spec.become_.as_ref().and_then(|b| b.password.as_ref()) {
            stdin_bytes.extend_from_slice(b.as_bytes());
            stdin_bytes.push(b'\n');
        }
        if let Some(input) = &spec.stdin {
            stdin_bytes.extend_from_slice(input);
        }
        let mut stdin = child.stdin.take();
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let io = async {
            let feed = async {
                if let Some(mut s) = stdin.take() {
                    let _ = s.write_all(&stdin_bytes).await;
                    drop(s);
                }
            };
            let mut out = Vec::new();
            let mut err = Vec::new();
            let read_out = async {
                if let Some(s) = stdout.as_mut() {
                    let _ = s.read_to_end(&mut out).await;
                }
            };
            let read_err = async {
                if let Some(s) = stderr.as_mut() {
                    let _ = s.read_to_end(&mut err).await;
                }
            };
            tokio::join!(feed, read_out, read_err);
            let status = child.wait().await;
            (status, out, err)
        };
        let result = match spec.timeout {
            Some(t) => tokio::time::timeout(t, io).await.ok(),
            None => Some(io.await),
        };
        match result {
            Some((status, out, err)) => {
                let status = status.map_err(|e| self.err("wait", e))?;
                Ok(CommandOutput {
                    rc: status.code().unwrap_or(-1),
                    stdout: out,
                    stderr: err,
                    timed_out: false,
                })
            }
            None => {
                // Kill the whole process group: the shell and whatever it started.
                if let Some(pid) = pid {
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                Ok(CommandOutput {
                    rc: -1,
                    stdout: Vec::new(),
                    stderr: Vec::new(),
                    timed_out: true,
                })
            }
        }
    }

    async fn put_file(&self, spec: &FileSpec) -> Result<(), TransportError> {
        let path = std::path::Path::new(&spec.path);
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.ferry-{}", std::process::id()));
        let write = async {
            let mut f = tokio::fs::File::create(&tmp).await?;
            f.write_all(&spec.content).await?;
            if let Some(mode) = spec.mode {
                f.set_permissions(std::fs::Permissions::from_mode(mode))
                    .await?;
            }
            f.sync_all().await?;
            Ok::<_, std::io::Error>(())
        };
        if let Err(e) = write.await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(self.err(&format!("write {}", spec.path), e));
        }
        if spec.owner.is_some() || spec.group.is_some() {
            // Names or numeric ids, as chown(1) takes them.
            let uid = match &spec.owner {
                Some(o) => Some(
                    nix::unistd::User::from_name(o)
                        .ok()
                        .flatten()
                        .map(|u| u.uid)
                        .or_else(|| o.parse().ok().map(nix::unistd::Uid::from_raw))
                        .ok_or_else(|| self.err("owner", format!("no user {o}")))?,
                ),
                None => None,
            };
            let gid = match &spec.group {
                Some(g) => Some(
                    nix::unistd::Group::from_name(g)
                        .ok()
                        .flatten()
                        .map(|x| x.gid)
                        .or_else(|| g.parse().ok().map(nix::unistd::Gid::from_raw))
                        .ok_or_else(|| self.err("group", format!("no group {g}")))?,
                ),
                None => None,
            };
            if let Err(e) = nix::unistd::chown(&tmp, uid, gid) {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(self.err(&format!("chown {}", spec.path), e));
            }
        }
        tokio::fs::rename(&tmp, path)
            .await
            .map_err(|e| self.err(&format!("rename into {}", spec.path), e))
    }

    async fn get_file(&self, path: &str) -> Result<Vec<u8>, TransportError> {
        tokio::fs::read(path)
            .await
            .map_err(|e| self.err(&format!("read {path}"), e))
    }

    async fn stat(&self, path: &str) -> Result<FileStat, TransportError> {
        let md = match tokio::fs::symlink_metadata(path).await {
            Ok(md) => md,
            // As over SSH (`[ -e ]`): a path below a file is missing too.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(FileStat::default());
            }
            Err(e) => return Err(self.err(&format!("stat {path}"), e)),
        };
        let ft = md.file_type();
        let checksum = if ft.is_file() {
            let bytes = tokio::fs::read(path)
                .await
                .map_err(|e| self.err(&format!("read {path}"), e))?;
            Some(hex::encode(Sha256::digest(&bytes)))
        } else {
            None
        };
        let link_target = if ft.is_symlink() {
            tokio::fs::read_link(path)
                .await
                .ok()
                .map(|p| p.to_string_lossy().to_string())
        } else {
            None
        };
        let owner = nix::unistd::User::from_uid(md.uid().into())
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| md.uid().to_string());
        let group = nix::unistd::Group::from_gid(md.gid().into())
            .ok()
            .flatten()
            .map(|g| g.name)
            .unwrap_or_else(|| md.gid().to_string());
        Ok(FileStat {
            exists: true,
            is_dir: ft.is_dir(),
            is_file: ft.is_file(),
            is_link: ft.is_symlink(),
            mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            owner,
            group,
            size: md.size(),
            mtime: md.mtime(),
            checksum,
            link_target,
        })
    }

    async fn close(&self) {}
}
