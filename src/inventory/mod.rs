//! YAML inventory (Ansible's YAML inventory shape), groups, host/group vars, host patterns.
//!
//! API (the engine and `ferry check` rely on these names):
//! - `Inventory::load(paths: &[PathBuf]) -> Result<Inventory, InventoryError>`
//! - `Inventory::select(&self, pattern: &str) -> Result<Vec<String>, InventoryError>` (host names, inventory order)
//! - `Inventory::hosts` (name -> Host), `Inventory::groups` (name -> Group)
//! - `crate::vars::inventory_vars(&Inventory, host) -> Vars` (merged inventory layers for one host)

pub mod command;

use indexmap::IndexMap;

use crate::playbook::Vars;

/// A host as the inventory declares it.
#[derive(Debug, Clone, Default)]
pub struct Host {
    pub name: String,
    /// Host vars written inline in the inventory (not yet merged with groups).
    pub vars: Vars,
}

/// A group: its direct hosts, child groups and vars.
#[derive(Debug, Clone, Default)]
pub struct Group {
    pub name: String,
    pub hosts: Vec<String>,
    pub children: Vec<String>,
    pub vars: Vars,
}

/// A resolved inventory (several `-i` merged).
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub hosts: IndexMap<String, Host>,
    pub groups: IndexMap<String, Group>,
}
