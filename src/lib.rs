//! ferry: testbed-as-code for live-migration research.
//!
//! The map of this crate is `../shared/DESIGN.md`; the layers and the import directions
//! that hold today are in `docs/architecture.md`, checked by `tests/architecture.rs`.
//! `cmd` holds one handler per subcommand (it reads `cli`'s definitions, loads inputs,
//! chooses reporters and prints); below it, `experiment` runs on `engine`, which runs
//! what `playbook` loads with `ops`, which run on `transport` (`facts` between the last
//! two; `lab` stands alone). Only `cmd` and the reporters it chooses print: the engine and
//! the experiment emit events, `report` turns them into text and `plot` turns results
//! into tables and plots. Below them all: `inventory` and `template`, then `vars` (the
//! `Vars` type, layers and precedence), then the leaves `yaml` (with `SourceLoc`),
//! `suggest`, `clock` and `exit`. No two modules import each other.

pub mod cli;
pub mod clock;
pub mod cmd;
pub mod engine;
pub mod exit;
pub mod experiment;
pub mod facts;
pub mod inventory;
pub mod lab;
pub mod ops;
pub mod playbook;
pub mod plot;
pub mod report;
pub mod suggest;
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

/// What a command hands back to `main`: an exit code ([`exit`]), or one error report
/// (exit code [`exit::ERROR`]).
pub type CmdResult = miette::Result<u8>;
