//! Which hosts a pattern selects and each host's base variables: from a loaded inventory
//! ([`InventoryHosts`]) or given directly ([`StaticHosts`]).

use std::sync::{Arc, Mutex, RwLock};

use indexmap::IndexMap;
use serde_json::Value;

use crate::inventory::{GroupByError, InventoryError};
use crate::ops::{self};
use crate::vars::{Layer, Scope, VarLayers, Vars};

/// A pattern that selects no host, or an add_host / group_by the hosts cannot take.
#[derive(Debug, thiserror::Error)]
pub enum HostsError {
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error("no host or group named `{0}` in the inventory")]
    NoSuchName(String),
    #[error(transparent)]
    GroupBy(#[from] GroupByError),
    #[error("this run's hosts are fixed: add_host and group_by cannot change them")]
    Fixed,
}

/// Which hosts a pattern selects and each host's base variables
/// ([`InventoryHosts`]: `Inventory::select` and `Inventory::host_vars`).
pub trait HostSource: Send + Sync {
    /// Host names matching `pattern`, in inventory order.
    fn select(&self, pattern: &str) -> Result<Vec<String>, HostsError>;
    /// The host's inventory variables (group and host vars merged), with the
    /// inventory's magic variables (`groups`, `group_names`).
    fn base_vars(&self, host: &str) -> Vars;
    /// [`base_vars`](Self::base_vars) without `groups`, which is the same for every
    /// host: the engine shares one [`groups`](Self::groups) value between all of them
    /// instead of a copy per host (a copy would make every task cost O(hosts)).
    fn host_vars(&self, host: &str) -> Vars {
        let mut v = self.base_vars(host);
        v.shift_remove("groups");
        v
    }
    /// The host's inventory variables as layers, lowest first (group vars by depth,
    /// `group_vars`/`host_vars` files, host vars: `crate::vars`' order), shared with
    /// the source, not copied. A task's view stacks its play's layers on these.
    fn layers(&self, host: &str) -> VarLayers {
        let mut v = VarLayers::new();
        v.push(Arc::new(Scope::plain(
            Layer::InventoryHost,
            "inventory",
            self.host_vars(host),
        )));
        v
    }
    /// The host's magic variables: `inventory_hostname`, `inventory_hostname_short`,
    /// and `group_names` where the source has groups.
    fn host_magic(&self, host: &str) -> Arc<Scope> {
        crate::vars::host_magic(host, None)
    }
    /// `groups` (every group's hosts), when this source defines it.
    fn groups(&self) -> Option<Value> {
        None
    }
    /// `hostvars`: every host's inventory variables (the engine adds what hosts
    /// gained during the run). Only built for tasks that mention `hostvars`.
    fn hostvars(&self) -> Value {
        Value::Object(Default::default())
    }
    /// `add_host` / `group_by`: change the hosts and groups later selections and
    /// variable views see. `Ok(true)` when something changed.
    fn change(&self, change: &ops::InventoryChange) -> Result<bool, HostsError> {
        let _ = change;
        Err(HostsError::Fixed)
    }
}

/// Hosts from a loaded inventory, with `--limit` applied to every play's pattern.
/// `add_host` and `group_by` change it during the run.
pub struct InventoryHosts {
    inv: RwLock<crate::inventory::Inventory>,
    limit: Option<String>,
    /// `hostvars`, built on first use and again after the inventory changed.
    hostvars: Mutex<Option<Value>>,
    groups: RwLock<Value>,
}

impl InventoryHosts {
    pub fn new(inv: crate::inventory::Inventory, limit: Option<String>) -> Self {
        let groups = inv.groups_var();
        Self {
            inv: RwLock::new(inv),
            limit,
            hostvars: Mutex::new(None),
            groups: RwLock::new(groups),
        }
    }
}

impl HostSource for InventoryHosts {
    fn select(&self, pattern: &str) -> Result<Vec<String>, HostsError> {
        self.inv
            .read()
            .unwrap()
            .select_limited(pattern, self.limit.as_deref())
            .map_err(HostsError::from)
    }
    fn base_vars(&self, host: &str) -> Vars {
        let mut v = self.host_vars(host);
        v.insert("groups".into(), self.groups.read().unwrap().clone());
        v
    }
    fn host_vars(&self, host: &str) -> Vars {
        let inv = self.inv.read().unwrap();
        let mut v = inv.host_vars(host);
        v.insert("group_names".into(), Value::from(inv.group_names(host)));
        v
    }
    fn layers(&self, host: &str) -> VarLayers {
        self.inv.read().unwrap().layers(host)
    }
    fn host_magic(&self, host: &str) -> Arc<Scope> {
        self.inv.read().unwrap().host_magic(host)
    }
    fn groups(&self) -> Option<Value> {
        Some(self.groups.read().unwrap().clone())
    }
    fn hostvars(&self) -> Value {
        let mut hv = self.hostvars.lock().unwrap();
        hv.get_or_insert_with(|| self.inv.read().unwrap().hostvars())
            .clone()
    }
    fn change(&self, change: &ops::InventoryChange) -> Result<bool, HostsError> {
        let mut inv = self.inv.write().unwrap();
        let changed = match change {
            ops::InventoryChange::AddHost { name, groups, vars } => {
                inv.add_runtime_host(name, groups, vars)
            }
            ops::InventoryChange::AddToGroup {
                host,
                group,
                parents,
            } => inv.add_runtime_group_member(host, group, parents)?,
        };
        if changed {
            *self.groups.write().unwrap() = inv.groups_var();
            *self.hostvars.lock().unwrap() = None;
        }
        Ok(changed)
    }
}

/// Hosts and groups given directly (tests, `ferry exec` on a list, the bench).
#[derive(Debug, Clone, Default)]
pub struct StaticHosts {
    pub hosts: IndexMap<String, Vars>,
    pub groups: IndexMap<String, Vec<String>>,
    /// `hosts` and `groups` as add_host/group_by left them (set on the first change).
    changed: Arc<RwLock<Option<HostsAndGroups>>>,
}

type HostsAndGroups = (IndexMap<String, Vars>, IndexMap<String, Vec<String>>);

impl StaticHosts {
    fn with_view<R>(
        &self,
        f: impl FnOnce(&IndexMap<String, Vars>, &IndexMap<String, Vec<String>>) -> R,
    ) -> R {
        match &*self.changed.read().unwrap() {
            Some((h, g)) => f(h, g),
            None => f(&self.hosts, &self.groups),
        }
    }
}

impl HostSource for StaticHosts {
    fn select(&self, pattern: &str) -> Result<Vec<String>, HostsError> {
        self.with_view(|hosts, groups| static_select(hosts, groups, pattern))
    }
    fn base_vars(&self, host: &str) -> Vars {
        self.with_view(|hosts, _| hosts.get(host).cloned().unwrap_or_default())
    }
    fn change(&self, change: &ops::InventoryChange) -> Result<bool, HostsError> {
        let mut view = self.changed.write().unwrap();
        let (hosts, groups) = view.get_or_insert_with(|| (self.hosts.clone(), self.groups.clone()));
        let mut changed = false;
        let mut join = |groups: &mut IndexMap<String, Vec<String>>, g: &str, h: &str| {
            let members = groups.entry(g.to_string()).or_default();
            if !members.iter().any(|m| m == h) {
                members.push(h.to_string());
                changed = true;
            }
        };
        match change {
            ops::InventoryChange::AddHost {
                name,
                groups: gs,
                vars,
            } => {
                let new = !hosts.contains_key(name);
                let entry = hosts.entry(name.clone()).or_default();
                let mut vars_changed = false;
                for (k, v) in vars {
                    if entry.get(k) != Some(v) {
                        entry.insert(k.clone(), v.clone());
                        vars_changed = true;
                    }
                }
                for g in gs {
                    join(groups, g, name);
                }
                if new || vars_changed {
                    return Ok(true);
                }
            }
            ops::InventoryChange::AddToGroup { host, group, .. } => {
                if !hosts.contains_key(host) {
                    return Err(GroupByError::UnknownHost(host.clone()).into());
                }
                join(groups, group, host);
            }
        }
        Ok(changed)
    }
}

/// [`StaticHosts`]' patterns: names, groups, `all`, joined by `:`/`,`, with `!` and `&`.
fn static_select(
    hosts: &IndexMap<String, Vars>,
    groups: &IndexMap<String, Vec<String>>,
    pattern: &str,
) -> Result<Vec<String>, HostsError> {
    let mut chosen: Vec<String> = Vec::new();
    for part in pattern
        .split([':', ','])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (op, name) = match part.as_bytes()[0] {
            b'!' => ('!', &part[1..]),
            b'&' => ('&', &part[1..]),
            _ => ('+', part),
        };
        let set: Vec<String> = if name == "all" || name == "*" {
            hosts.keys().cloned().collect()
        } else if let Some(g) = groups.get(name) {
            g.clone()
        } else if hosts.contains_key(name) {
            vec![name.to_string()]
        } else {
            return Err(HostsError::NoSuchName(name.to_string()));
        };
        match op {
            '!' => chosen.retain(|h| !set.contains(h)),
            '&' => chosen.retain(|h| set.contains(h)),
            _ => {
                for h in set {
                    if !chosen.contains(&h) {
                        chosen.push(h);
                    }
                }
            }
        }
    }
    Ok(chosen)
}
