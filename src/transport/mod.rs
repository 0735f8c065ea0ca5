//! Transport trait; ssh (russh), local; known_hosts.
//!
//! An op never knows which transport it runs on. A transport carries shell
//! command lines (with stdin), whole files (written atomically), and stats.
//! Aim: one round trip per call, over one connection per host.

pub mod local;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

pub mod agent;
pub mod known_hosts;
mod known_hosts_cache;
pub mod params;
pub mod prompt;
pub mod remote;
pub mod ssh;
pub mod ssh_config;

pub use known_hosts::{HostKeyPolicy, KnownHosts};
pub use params::{ConnectDefaults, ConnectParams, ConnectionKind, DEFAULT_CONNECT_TIMEOUT_SECS};

/// Run a command as another user (sudo).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Become {
    /// Target user (default root).
    pub user: Option<String>,
    /// sudo password, from the `-K` prompt only; never written anywhere.
    pub password: Option<String>,
}

/// A command to run on a host: a shell command line given to `/bin/sh -c`.
#[derive(Debug, Clone, Default)]
pub struct CommandSpec {
    pub cmd: String,
    pub stdin: Option<Vec<u8>>,
    pub cwd: Option<String>,
    pub env: Vec<(String, String)>,
    pub timeout: Option<Duration>,
    pub become_: Option<Become>,
}

impl CommandSpec {
    pub fn new(cmd: impl Into<String>) -> Self {
        Self {
            cmd: cmd.into(),
            ..Self::default()
        }
    }
}

/// What a command did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CommandOutput {
    /// Exit status; -1 when killed by a signal or at its timeout.
    pub rc: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub timed_out: bool,
}

/// A whole file to place on a host, atomically (temp file + fsync + rename).
#[derive(Debug, Clone, Default)]
pub struct FileSpec {
    pub path: String,
    pub content: Vec<u8>,
    pub mode: Option<u32>,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub become_: Option<Become>,
}

/// What `stat` finds at a path (links are not followed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileStat {
    pub exists: bool,
    pub is_dir: bool,
    pub is_file: bool,
    pub is_link: bool,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub owner: String,
    pub group: String,
    pub size: u64,
    pub mtime: i64,
    /// sha256 of the content, regular files only.
    pub checksum: Option<String>,
    pub link_target: Option<String>,
}

/// What [`Transport::stat_read`] finds: the stat, and the content of a
/// regular file (its checksum filled in).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileRead {
    pub stat: FileStat,
    /// The content of a regular, readable file; `None` otherwise.
    pub content: Option<Vec<u8>>,
    /// For a missing path: whether its parent is a directory (links
    /// followed); `None` when not known.
    pub parent_is_dir: Option<bool>,
}

/// The parent directory of `path` as `put_file` sees it.
pub fn parent_dir(path: &str) -> String {
    match path.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) => "/".to_string(),
        Some((d, _)) => d.to_string(),
        None => ".".to_string(),
    }
}

/// Why a transport call failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The host could not be reached or authenticated: the engine marks it unreachable.
    #[error("{host}: unreachable: {reason}")]
    Unreachable { host: String, reason: String },
    /// The host key is unknown or changed.
    #[error("{host}: host key {problem}: {fingerprint}{hint}")]
    HostKey {
        host: String,
        problem: String,
        fingerprint: String,
        hint: String,
    },
    /// The connection broke during a call.
    #[error("{host}: connection lost: {reason}")]
    Lost { host: String, reason: String },
    #[error("{host}: {reason}")]
    Other { host: String, reason: String },
}

impl TransportError {
    /// Whether the engine should count the host as unreachable (rather than failed).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            TransportError::Unreachable { .. }
                | TransportError::HostKey { .. }
                | TransportError::Lost { .. }
        )
    }
}

/// One host's connection.
#[async_trait]
pub trait Transport: Send + Sync {
    /// The inventory name of the host this transport reaches.
    fn host(&self) -> &str;
    async fn run(&self, spec: &CommandSpec) -> Result<CommandOutput, TransportError>;
    async fn put_file(&self, spec: &FileSpec) -> Result<(), TransportError>;
    async fn get_file(&self, path: &str) -> Result<Vec<u8>, TransportError>;
    async fn stat(&self, path: &str) -> Result<FileStat, TransportError>;

    // The calls below do in one round trip what the ops would otherwise do
    // in several. Their default implementations are built from the calls
    // above (so a wrapper overriding those stays correct); transports where
    // a round trip is expensive override them.

    /// Whether anything (a dangling link included) is at `path`.
    async fn exists(&self, path: &str) -> Result<bool, TransportError> {
        Ok(self.stat(path).await?.exists)
    }

    /// Stats `path` and, when it is a regular file, reads it.
    async fn stat_read(&self, path: &str) -> Result<FileRead, TransportError> {
        stat_then_read(self, path).await
    }

    /// Writes `spec` (as `put_file`) only when nothing is at its path and its
    /// parent is a directory (or a link): `None` when written; otherwise
    /// nothing is written and the answer is the path's stat (`exists` false:
    /// the parent is missing or not a directory).
    async fn create_file(&self, spec: &FileSpec) -> Result<Option<FileStat>, TransportError> {
        let st = self.stat(&spec.path).await?;
        if st.exists {
            return Ok(Some(st));
        }
        let ps = self.stat(&parent_dir(&spec.path)).await?;
        if !ps.is_dir && !ps.is_link {
            return Ok(Some(st));
        }
        self.put_file(spec).await?;
        Ok(None)
    }

    /// Makes the directory `path` with its missing parents (`mkdir -p`, new
    /// directories 0777 less the umask); an existing directory is left as it
    /// is. Answers as the command would (rc, stderr).
    async fn make_dirs(&self, path: &str) -> Result<CommandOutput, TransportError> {
        self.run(&make_dirs_command(path)).await
    }

    /// Close every channel and the connection, waiting until they are closed.
    async fn close(&self);
    /// Which machine this connection reaches, for state kept per machine
    /// (check mode's simulated file system): two inventory names that reach
    /// one machine the same way (an `add_host` alias, a `delegate_to` target
    /// with the same address) give the same value. Defaults to the inventory name.
    fn endpoint(&self) -> String {
        self.host().to_string()
    }
    /// A layer its users put in front of this transport and recognise again (check
    /// mode's simulated host, which lives with the ops); a transport knows nothing of
    /// what it is. Wrappers pass their inner one on.
    fn simulation(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
        None
    }
}

/// [`Transport::stat_read`] in two calls: `stat`, then `get_file` of a regular file.
pub async fn stat_then_read<T: Transport + ?Sized>(
    t: &T,
    path: &str,
) -> Result<FileRead, TransportError> {
    let stat = t.stat(path).await?;
    let content = if stat.is_file {
        Some(t.get_file(path).await?)
    } else {
        None
    };
    Ok(FileRead {
        stat,
        content,
        parent_is_dir: None,
    })
}

/// The command [`Transport::make_dirs`] runs where no transport does it itself.
pub fn make_dirs_command(path: &str) -> CommandSpec {
    CommandSpec::new(format!("mkdir -p -- {}", remote::sh_quote(path)))
}

/// Opens the connection `p` describes: SSH (through its jump hosts), or the
/// local transport for `ansible_connection: local`.
pub async fn connect(p: &ConnectParams) -> Result<Arc<dyn Transport>, TransportError> {
    match p.kind {
        ConnectionKind::Ssh => Ok(Arc::new(ssh::connect(p).await?)),
        ConnectionKind::Local => Ok(Arc::new(local::LocalTransport::new(&p.name))),
    }
}
