//! `ferry lab up|down|status|exec`.

use crate::CmdResult;
use crate::cli::{LabExecArgs, LabNameArgs, LabUpArgs};

pub fn up(_args: LabUpArgs) -> CmdResult {
    Err(miette::miette!("`ferry lab up` is not implemented yet"))
}

pub fn down(_args: LabNameArgs) -> CmdResult {
    Err(miette::miette!("`ferry lab down` is not implemented yet"))
}

pub fn status(_args: LabNameArgs) -> CmdResult {
    Err(miette::miette!("`ferry lab status` is not implemented yet"))
}

pub fn exec(_args: LabExecArgs) -> CmdResult {
    Err(miette::miette!("`ferry lab exec` is not implemented yet"))
}
