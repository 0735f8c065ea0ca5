//! ferry: testbed-as-code for live-migration research.
//!
//! The map of this crate is `../shared/DESIGN.md`. Dependencies flow one way:
//! cli -> engine/experiment -> ops -> transport. Nothing below `cli` prints:
//! everything that happens is an event, and `report` decides how it looks.

pub mod cli;
pub mod cmd;
pub mod engine;
pub mod experiment;
pub mod facts;
pub mod inventory;
pub mod lab;
pub mod ops;
pub mod playbook;
pub mod plot;
pub mod report;
pub mod template;
pub mod transport;
pub mod vars;
pub mod yaml;

/// Version plus the git commit ferry was built from.
pub const VERSION_LONG: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("FERRY_GIT_COMMIT"),
    ")"
);

/// What a command hands back to `main`: an exit code, or one error report.
/// Exit codes follow Ansible: 0 ok, 1 bad input/other, 2 a host failed,
/// 4 a host unreachable, 130 interrupted.
pub type CmdResult = miette::Result<u8>;
