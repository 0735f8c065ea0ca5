//! The group tree once loaded: parents, a host's groups, a group's hosts, the implicit
//! `all`/`ungrouped`, and the hosts and groups `add_host`/`group_by` add at run time.

use std::collections::HashSet;
use std::sync::Arc;

use indexmap::IndexMap;

use crate::vars::Vars;
use crate::vars::scope::{Layer, Scope};

use super::{Host, Inventory};

/// A `group_by` the inventory cannot take.
#[derive(Debug, thiserror::Error)]
pub enum GroupByError {
    #[error("{0} cannot be matched in inventory")]
    UnknownHost(String),
    #[error("group `{parent}` cannot be a parent of `{group}`: `{group}` is already above it")]
    Cycle { parent: String, group: String },
}

impl Inventory {
    /// A path of child links from `from` down to `to` (inclusive), if there is one.
    pub(super) fn path_down(&self, from: &str, to: &str) -> Option<Vec<String>> {
        if from == to {
            return Some(vec![from.to_string()]);
        }
        for c in &self.groups.get(from)?.children {
            if let Some(mut rest) = self.path_down(c, to) {
                rest.insert(0, from.to_string());
                return Some(rest);
            }
        }
        None
    }

    /// Ansible's reconcile: orphan groups under `all`, lone hosts in `ungrouped`, depths.
    pub(super) fn reconcile(&mut self) {
        let names: Vec<String> = self.groups.keys().cloned().collect();
        for g in &names {
            if g != "all" && self.parents_of(g).is_empty() {
                self.groups["all"].children.push(g.clone());
            }
        }
        let hosts: Vec<String> = self.hosts.keys().cloned().collect();
        for h in &hosts {
            let direct: Vec<String> = self
                .groups
                .values()
                .filter(|g| g.hosts.contains(h))
                .map(|g| g.name.clone())
                .collect();
            let other = direct.iter().any(|g| g != "all" && g != "ungrouped");
            let ungrouped = &mut self.groups["ungrouped"];
            if other {
                ungrouped.hosts.retain(|x| x != h);
            } else if !ungrouped.hosts.contains(h) {
                ungrouped.hosts.push(h.clone());
            }
        }
        // depth: longest path from all (groups form a DAG here).
        let mut depth: IndexMap<String, usize> = IndexMap::new();
        fn walk(inv: &Inventory, g: &str, d: usize, depth: &mut IndexMap<String, usize>) {
            let cur = depth.entry(g.to_string()).or_insert(0);
            if *cur > d && d != 0 {
                return;
            }
            *cur = (*cur).max(d);
            for c in &inv.groups[g].children {
                walk(inv, c, d + 1, depth);
            }
        }
        walk(self, "all", 0, &mut depth);
        for (g, d) in depth {
            self.groups[&g].depth = d;
        }
    }

    /// Direct parents of a group, in inventory order.
    pub fn parents_of(&self, group: &str) -> Vec<String> {
        self.groups
            .values()
            .filter(|g| g.children.iter().any(|c| c == group))
            .map(|g| g.name.clone())
            .collect()
    }

    /// Every group a host belongs to (direct groups and their ancestors, `all` included),
    /// sorted as Ansible merges their vars: by depth, then priority, then name.
    pub fn host_groups(&self, host: &str) -> Vec<String> {
        if let Some(g) = self.host_group_cache.get(host) {
            return g.clone();
        }
        self.compute_host_groups(host)
    }

    pub(super) fn compute_host_groups(&self, host: &str) -> Vec<String> {
        let mut seen: HashSet<String> = HashSet::new();
        let mut todo: Vec<String> = self
            .groups
            .values()
            .filter(|g| g.hosts.iter().any(|h| h == host))
            .map(|g| g.name.clone())
            .collect();
        if self.hosts.contains_key(host) && self.groups.contains_key("all") {
            todo.push("all".into());
        }
        while let Some(g) = todo.pop() {
            if seen.insert(g.clone()) {
                todo.extend(self.parents_of(&g));
            }
        }
        // A child named by a group but never declared has no entry: it orders last.
        let mut groups: Vec<String> = seen.into_iter().collect();
        groups.sort_by_cached_key(|g| match self.groups.get(g) {
            Some(x) => (0, x.depth, x.priority, x.name.clone()),
            None => (1, 0, 0, g.clone()),
        });
        groups
    }

    /// `group_names` as Ansible has it: the host's groups but `all`, sorted by name.
    pub fn group_names(&self, host: &str) -> Vec<String> {
        let mut g: Vec<String> = self
            .host_groups(host)
            .into_iter()
            .filter(|g| g != "all")
            .collect();
        g.sort();
        g
    }

    /// Hosts of a group and of its descendants, in Ansible's order (the group's own hosts,
    /// then its children's, level by level). An unknown group has no hosts; `all`
    /// is every host even in an inventory built without an `all` group.
    pub fn group_hosts(&self, group: &str) -> Vec<String> {
        if group == "all" && !self.groups.contains_key("all") {
            return self.hosts.keys().cloned().collect();
        }
        let mut order: Vec<String> = vec![group.to_string()];
        let mut seen: HashSet<String> = order.iter().cloned().collect();
        let mut i = 0;
        while i < order.len() {
            if let Some(g) = self.groups.get(&order[i]) {
                for c in &g.children {
                    if seen.insert(c.clone()) {
                        order.push(c.clone());
                    }
                }
            }
            i += 1;
        }
        let mut hosts = Vec::new();
        let mut hseen = HashSet::new();
        for g in order.iter().filter_map(|g| self.groups.get(g)) {
            for h in &g.hosts {
                if hseen.insert(h.clone()) {
                    hosts.push(h.clone());
                }
            }
        }
        hosts
    }

    /// Rebuild the shared per-group and per-host inline variable layers (call after
    /// changing `vars` by hand; `load` calls it).
    pub fn finish(&mut self) {
        self.host_group_cache = IndexMap::new();
        self.host_group_cache = self
            .hosts
            .keys()
            .map(|h| (h.clone(), self.compute_host_groups(h)))
            .collect();
        self.group_scopes = self
            .groups
            .values()
            .map(|g| {
                let layer = if g.name == "all" {
                    Layer::InventoryGroupAll
                } else {
                    Layer::InventoryGroup {
                        group: g.name.clone(),
                    }
                };
                let origin = g
                    .loc
                    .as_ref()
                    .map(|l| l.file.display().to_string())
                    .unwrap_or_default();
                (
                    g.name.clone(),
                    Arc::new(Scope::new(
                        layer,
                        origin,
                        g.vars.clone(),
                        g.var_locs.clone(),
                    )),
                )
            })
            .collect();
        self.host_scopes = self
            .hosts
            .values()
            .map(|h| {
                (
                    h.name.clone(),
                    Arc::new(Scope::new(
                        Layer::InventoryHost,
                        h.loc.file.display().to_string(),
                        h.vars.clone(),
                        h.var_locs.clone(),
                    )),
                )
            })
            .collect();
    }

    /// `add_host` during a run: the host (created if new) gains `vars` over its own host
    /// vars and joins `groups` (each created under `all` if new). Whether anything changed.
    pub fn add_runtime_host(&mut self, name: &str, groups: &[String], vars: &Vars) -> bool {
        let mut changed = false;
        if !self.hosts.contains_key(name) {
            self.hosts.insert(
                name.to_string(),
                Host {
                    name: name.to_string(),
                    ..Host::default()
                },
            );
            changed = true;
        }
        let host = &mut self.hosts[name];
        for (k, v) in vars {
            if host.vars.get(k) != Some(v) {
                host.vars.insert(k.clone(), v.clone());
                changed = true;
            }
        }
        for g in groups {
            self.ensure_group(g, None);
            let group = &mut self.groups[g.as_str()];
            if !group.hosts.iter().any(|h| h == name) {
                group.hosts.push(name.to_string());
                changed = true;
            }
        }
        if changed {
            self.reconcile();
            self.finish();
        }
        changed
    }

    /// `group_by` during a run: `host` joins `group` (created if new), and `group`
    /// becomes a child of each of `parents` (created under `all` if new).
    /// Whether anything changed; an error for an unknown host or a group cycle.
    pub fn add_runtime_group_member(
        &mut self,
        host: &str,
        group: &str,
        parents: &[String],
    ) -> Result<bool, GroupByError> {
        if !self.hosts.contains_key(host) {
            return Err(GroupByError::UnknownHost(host.to_string()));
        }
        let mut changed = false;
        self.ensure_group(group, None);
        for p in parents {
            if !self.groups.contains_key(p.as_str()) {
                self.ensure_group(p, None);
                changed = true;
            }
            if p == group || self.path_down(group, p).is_some() {
                return Err(GroupByError::Cycle {
                    parent: p.clone(),
                    group: group.to_string(),
                });
            }
            let parent = &mut self.groups[p.as_str()];
            if !parent.children.iter().any(|c| c == group) {
                parent.children.push(group.to_string());
                changed = true;
            }
        }
        let g = &mut self.groups[group];
        if !g.hosts.iter().any(|h| h == host) {
            g.hosts.push(host.to_string());
            changed = true;
        }
        if changed {
            self.reconcile();
            self.finish();
        }
        Ok(changed)
    }
}
