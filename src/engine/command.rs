//! `ferry run` and `ferry exec`.

use crate::CmdResult;
use crate::cli::{ExecArgs, RunArgs};

pub fn run(_args: RunArgs) -> CmdResult {
    Err(miette::miette!("`ferry run` is not implemented yet"))
}

pub fn exec(_args: ExecArgs) -> CmdResult {
    Err(miette::miette!("`ferry exec` is not implemented yet"))
}
