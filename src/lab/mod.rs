//! The built-in local lab: hosts as network namespaces with their own root and sshd.
//!
//! A lab host is one long-lived anchor process (`/bin/sleep infinity`) started
//! by `unshare -n -m -u --propagation private`, which sets the hostname, mounts
//! an overlay (lowerdir `/`, its own upper/work dirs) plus proc, sysfs and
//! `/dev` and then `chroot`s into it. Its network namespace is anonymous (held
//! by the anchor, never named under `/run/netns`), so nothing of a host shows
//! in `ip netns` or `mount` on this machine. sshd runs inside via
//! `nsenter -t ANCHOR -m -n -u -r -w`.
//!
//! Everything is done by driving the system tools as commands: `ip`, `tc`,
//! `unshare`, `nsenter`, `chroot`, `mount` (inside the host setup script),
//! `ssh-keygen` and `sshd`. No netlink library is used.
//!
//! Modules by concept:
//! - [`address`]: the address range, its split into networks, overlap checks;
//! - [`rate`]: link rates as `tc` understands them;
//! - [`network`]: interface names, bridges, veths and traffic shaping;
//! - [`host`]: anchors, sshd, process identity and termination;
//! - [`state`]: the state directory, the journal of created names, ssh files and the inventory;
//! - [`tools`]: finding and running the external tools;
//! - [`ensure`]: one host brought to what `up` wants, or removed;
//! - [`lifecycle`]: `up`, `down`, `status`, `exec` put together.

pub mod address;
mod ensure;
pub mod host;
pub mod lifecycle;
pub mod network;
mod private_file;
pub mod rate;
pub mod state;
pub mod tools;

use std::path::PathBuf;

pub use lifecycle::{HostStatus, LabSpec, down, exec, status, up};
pub use state::{HostRecord, LabState};

/// Default root of lab state directories.
pub const STATE_ROOT: &str = "/var/lib/ferry/lab";

/// Most hosts a lab with /24 networks holds (.254 is the machine's own).
pub const SMALL_LAB_HOSTS: u32 = 250;

/// Most hosts a lab can have (/22 networks; a Linux bridge takes 1024 ports).
pub const MAX_HOSTS: u32 = 1000;

/// Everything that can go wrong with a lab. Each message is one line.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LabError {
    #[error("ferry lab needs root (run it as root or with sudo)")]
    NotRoot,
    #[error("{tool} not found in PATH: apt-get install {package}")]
    MissingTool { tool: String, package: String },
    #[error("invalid lab name {0:?}: use 1-32 of a-z, 0-9, '-' (not first or last)")]
    BadName(String),
    #[error("--hosts must be between 1 and {MAX_HOSTS}, got {0}")]
    BadHostCount(u32),
    #[error("--link-rate {0}: {1}")]
    BadRate(String, String),
    #[error("--mtu {0}: use a value between 576 and 65535")]
    BadMtu(u32),
    #[error("--range {0}: {1}")]
    BadRange(String, String),
    #[error("--range {range} is in use here ({what})")]
    RangeInUse { range: String, what: String },
    #[error("no free /16 in 10.100-10.254.x.x for a lab; give one with --range")]
    NoFreeRange,
    #[error("lab {name} uses range {current}; take it down to change it")]
    RangeChanged { name: String, current: String },
    #[error("no lab named {name} (no state in {dir})")]
    NoSuchLab { name: String, dir: PathBuf },
    #[error("lab {lab} has no host {host} (hosts: {known})")]
    NoSuchHost {
        lab: String,
        host: String,
        known: String,
    },
    #[error("host {0} is not running; run `ferry lab up` again to repair it")]
    HostDown(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    State(String),
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error("host {host}: {detail}")]
    Host { host: String, detail: String },
}

pub type Result<T, E = LabError> = std::result::Result<T, E>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> LabError {
    let path = path.into();
    move |source| LabError::Io { path, source }
}
