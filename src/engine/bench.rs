//! `ferry bench provision`: a provisioning benchmark that prints figures.

use crate::CmdResult;
use crate::cli::BenchProvisionArgs;

pub fn provision(_args: BenchProvisionArgs) -> CmdResult {
    Err(miette::miette!(
        "`ferry bench provision` is not implemented yet"
    ))
}
