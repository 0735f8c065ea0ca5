//! The variables the inventory gives a host: its layers (group vars by depth and
//! priority, `group_vars`/`host_vars` files, host vars), merged or as layers for
//! `--explain`, and the magic variables that come from the inventory (`groups`,
//! `inventory_hostname`, `group_names`, `hostvars`). The order of layers is `crate::vars`'.

use std::sync::Arc;

use serde_json::Value;

use super::Inventory;
use crate::vars::{Scope, VarLayers, Vars};

impl Inventory {
    /// The inventory layers of one host (2-7 of `crate::vars`' list), in precedence order, shared with the
    /// inventory (no map is copied).
    pub fn layers(&self, host: &str) -> VarLayers {
        let inv = self;
        let mut v = VarLayers::new();
        let groups = inv.host_groups(host);
        for g in &groups {
            if let Some(s) = inv.group_scopes.get(g) {
                v.push(s.clone());
            }
        }
        // group_vars files: `all` from every source first, then the other groups per
        // source, as Ansible's vars precedence (all_plugins_inventory, then
        // groups_plugins_inventory) has them.
        for src in &inv.sources {
            if let Some(files) = src.group_vars.get("all") {
                for f in files {
                    v.push(f.scope.clone());
                }
            }
        }
        for src in &inv.sources {
            for g in groups.iter().filter(|g| *g != "all") {
                if let Some(files) = src.group_vars.get(g) {
                    for f in files {
                        v.push(f.scope.clone());
                    }
                }
            }
        }
        if let Some(s) = inv.host_scopes.get(host) {
            v.push(s.clone());
        }
        for src in &inv.sources {
            if let Some(files) = src.host_vars.get(host) {
                for f in files {
                    v.push(f.scope.clone());
                }
            }
        }
        v
    }

    /// A host's inventory variables merged (layers 2-7): what `ansible-inventory --host`
    /// prints, and the base view the engine starts from. Prefer [`Inventory::layers`] when
    /// the origin of a value matters or when layers are added per task.
    pub fn host_vars(&self, host: &str) -> Vars {
        self.layers(host).flatten()
    }

    /// `groups`: every group's hosts, in inventory order.
    pub fn groups_var(&self) -> Value {
        Value::Object(
            self.groups
                .keys()
                .map(|g| (g.clone(), Value::from(self.group_hosts(g))))
                .collect(),
        )
    }

    /// `hostvars`: every host's inventory variables (name -> merged vars), built once per
    /// inventory and shared; the engine adds the facts and set_fact results hosts gained.
    pub fn hostvars(&self) -> Value {
        let inv = self;
        Value::Object(
            inv.hosts
                .keys()
                .map(|h| {
                    (
                        h.clone(),
                        Value::Object(inv.host_vars(h).into_iter().collect()),
                    )
                })
                .collect(),
        )
    }

    /// Host-level magic variables: `inventory_hostname`, `inventory_hostname_short`,
    /// `group_names`.
    pub fn host_magic(&self, host: &str) -> Arc<Scope> {
        crate::vars::host_magic(host, Some(self.group_names(host)))
    }
}
