//! One variable layer ([`Scope`]): its kind ([`Layer`], in precedence order), where it came
//! from and where each of its variables was written. Data only: the inventory builds these
//! and `vars` stacks them, so this file depends on neither.

use std::fmt;

use indexmap::IndexMap;
use serde_json::Value;

use crate::yaml::SourceLoc;

/// A variable mapping, in the order it was written.
pub type Vars = IndexMap<String, Value>;

/// Where each variable of a layer was written.
pub type Locs = IndexMap<String, SourceLoc>;

/// The kind of layer a variable came from, in precedence order (lowest first).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layer {
    RoleDefaults { role: String },
    InventoryGroupAll,
    InventoryGroup { group: String },
    GroupVarsFile { group: String },
    InventoryHost,
    HostVarsFile,
    Facts,
    PlayVars,
    PlayVarsFile,
    RoleVars { role: String },
    BlockVars,
    TaskVars,
    IncludeVars,
    SetFact,
    RoleParams { role: String },
    ExtraVars,
    Magic,
}

impl Layer {
    /// Precedence rank: a higher rank wins.
    pub fn rank(&self) -> u8 {
        match self {
            Layer::RoleDefaults { .. } => 1,
            Layer::InventoryGroupAll => 2,
            Layer::InventoryGroup { .. } => 3,
            Layer::GroupVarsFile { group } if group == "all" => 4,
            Layer::GroupVarsFile { .. } => 5,
            Layer::InventoryHost => 6,
            Layer::HostVarsFile => 7,
            Layer::Facts => 8,
            Layer::PlayVars => 9,
            Layer::PlayVarsFile => 10,
            Layer::RoleVars { .. } => 11,
            Layer::BlockVars => 12,
            Layer::TaskVars => 13,
            Layer::IncludeVars => 14,
            Layer::SetFact => 15,
            Layer::RoleParams { .. } => 16,
            Layer::ExtraVars => 17,
            Layer::Magic => 18,
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Layer::RoleDefaults { role } => write!(f, "role defaults ({role})"),
            Layer::InventoryGroupAll => write!(f, "inventory group vars (all)"),
            Layer::InventoryGroup { group } => write!(f, "inventory group vars ({group})"),
            Layer::GroupVarsFile { group } => write!(f, "group_vars file ({group})"),
            Layer::InventoryHost => write!(f, "inventory host vars"),
            Layer::HostVarsFile => write!(f, "host_vars file"),
            Layer::Facts => write!(f, "host facts"),
            Layer::PlayVars => write!(f, "play vars"),
            Layer::PlayVarsFile => write!(f, "play vars_files"),
            Layer::RoleVars { role } => write!(f, "role vars ({role})"),
            Layer::BlockVars => write!(f, "block vars"),
            Layer::TaskVars => write!(f, "task vars"),
            Layer::IncludeVars => write!(f, "include_vars"),
            Layer::SetFact => write!(f, "registered vars / set_fact"),
            Layer::RoleParams { role } => write!(f, "role params ({role})"),
            Layer::ExtraVars => write!(f, "extra vars (-e)"),
            Layer::Magic => write!(f, "magic vars"),
        }
    }
}

/// One layer: its kind, where it came from (a file or a label), its values and their
/// positions.
#[derive(Debug, Clone)]
pub struct Scope {
    pub layer: Layer,
    pub origin: String,
    pub vars: Vars,
    pub locs: Locs,
}

impl Scope {
    pub fn new(layer: Layer, origin: impl Into<String>, vars: Vars, locs: Locs) -> Self {
        Scope {
            layer,
            origin: origin.into(),
            vars,
            locs,
        }
    }

    /// A layer of values without known positions (e.g. registered results).
    pub fn plain(layer: Layer, origin: impl Into<String>, vars: Vars) -> Self {
        Scope::new(layer, origin, vars, Locs::new())
    }
}
