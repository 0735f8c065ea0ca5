//! `ferry check`.

use crate::CmdResult;
use crate::cli::CheckArgs;

pub fn check(_args: CheckArgs) -> CmdResult {
    Err(miette::miette!("`ferry check` is not implemented yet"))
}
