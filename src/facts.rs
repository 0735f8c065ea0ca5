//! Host facts: OS, kernel, CPUs and virtualization flags, memory, NICs (speed, MTU, addresses, driver), default route, qemu/libvirt versions.

use crate::CmdResult;
use crate::cli::FactsArgs;

/// `ferry facts`.
pub fn command(_args: FactsArgs) -> CmdResult {
    Err(miette::miette!("`ferry facts` is not implemented yet"))
}
