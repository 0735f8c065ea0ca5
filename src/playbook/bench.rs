//! `ferry bench check`: time loading and validating a large inventory and playbook.

use crate::CmdResult;
use crate::cli::BenchCheckArgs;

pub fn check(_args: BenchCheckArgs) -> CmdResult {
    Err(miette::miette!(
        "`ferry bench check` is not implemented yet"
    ))
}
