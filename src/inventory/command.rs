//! `ferry inventory`.

use crate::CmdResult;
use crate::cli::InventoryArgs;

pub fn inventory(_args: InventoryArgs) -> CmdResult {
    Err(miette::miette!("`ferry inventory` is not implemented yet"))
}
