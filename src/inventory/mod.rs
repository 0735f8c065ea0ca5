//! Inventories: Ansible's YAML inventory shape (native) and its INI shape, groups,
//! host/group vars with the position each was written at, host patterns.
//!
//! API (the engine and `ferry check` rely on these names):
//! - [`Inventory::load`]`(paths) -> Result<Inventory, InventoryError>`: several `-i` merged in
//!   order; each path is an inventory file (YAML: `.yml`/`.yaml`/`.json` or any file holding
//!   a YAML mapping; INI otherwise) or a directory of them. `group_vars/` and `host_vars/`
//!   beside each inventory file (or inside an inventory directory) are read, as a file
//!   (`NAME`, `NAME.yml`, `NAME.yaml`, `NAME.json`) or a directory of files per group/host.
//!   Errors name file:line:col, carry a source snippet and say what to do
//!   ([`InventoryError::loc`]); likely mistakes Ansible accepts are in `Inventory::warnings`.
//! - [`Inventory::select`]`(pattern)` and [`Inventory::select_limited`]`(pattern, limit)`: host
//!   names matching an Ansible host pattern, in Ansible's order; `limit` may be `@file`.
//!   [`Inventory::unmatched_terms`] lists the terms matching nothing (for a warning).
//! - `Inventory::hosts` (name -> Host), `Inventory::groups` (name -> Group),
//!   [`Inventory::host_groups`], [`Inventory::group_names`], [`Inventory::group_hosts`].
//! - [`list_json`], [`graph`]: `ansible-inventory --list` / `--graph` output;
//!   [`to_document`]: the model written back as a YAML inventory document.
//! - `crate::vars::VarLayers::for_host(&Inventory, host)`: the inventory layers of one host;
//!   `crate::vars::inventory_vars(&Inventory, host)`: the same, merged.
//!
//! Ansible's rules followed here: every group is a descendant of `all`; a host in no group
//! but `all` is in `ungrouped`; a group's depth is its longest distance from `all`;
//! a group that becomes its own descendant is an error naming the cycle.

mod ini;
mod pattern;
mod render;
pub mod vagrant;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use miette::{NamedSource, SourceSpan};

use crate::playbook::Vars;
pub use crate::playbook::model::SourceLoc;
use crate::vars::scope::{Layer, Locs, Scope};
use crate::yaml::{self, Node, NodeKind};
pub use render::{graph, list_json, list_json_of, to_document};

/// A host as the inventory declares it.
#[derive(Debug, Clone, Default)]
pub struct Host {
    pub name: String,
    /// Host vars written inline in the inventory (not yet merged with groups).
    pub vars: Vars,
    /// Where each of `vars` was written (last definition wins, like the value).
    pub var_locs: Locs,
    /// Where the host was first declared.
    pub loc: SourceLoc,
}

/// A group: its direct hosts, child groups and vars.
#[derive(Debug, Clone, Default)]
pub struct Group {
    pub name: String,
    pub hosts: Vec<String>,
    pub children: Vec<String>,
    pub vars: Vars,
    /// Where each of `vars` was written.
    pub var_locs: Locs,
    /// Where the group was first declared (`None` for the implicit `all`/`ungrouped`).
    pub loc: Option<SourceLoc>,
    /// Longest distance from `all` (all = 0), as Ansible computes it.
    pub depth: usize,
    /// `ansible_group_priority` (default 1): orders groups of equal depth.
    pub priority: i64,
}

/// One `group_vars/` or `host_vars/` file, loaded.
#[derive(Debug, Clone)]
pub struct VarsFile {
    pub path: PathBuf,
    pub scope: Arc<Scope>,
}

/// What one `-i` contributed beyond hosts and groups: its vars files.
#[derive(Debug, Clone, Default)]
pub struct Source {
    /// The path as given with `-i`.
    pub path: PathBuf,
    /// The directory holding `group_vars/` and `host_vars/` for it.
    pub vars_dir: PathBuf,
    /// group name -> its files, in Ansible's load order.
    pub group_vars: IndexMap<String, Vec<VarsFile>>,
    /// host name -> its files.
    pub host_vars: IndexMap<String, Vec<VarsFile>>,
}

/// A resolved inventory (several `-i` merged).
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub hosts: IndexMap<String, Host>,
    pub groups: IndexMap<String, Group>,
    /// Each `-i`, in order, with its group_vars/host_vars files.
    pub sources: Vec<Source>,
    /// Inline vars of each group as a shareable layer (built by `finish`).
    pub(crate) group_scopes: IndexMap<String, Arc<Scope>>,
    pub(crate) host_scopes: IndexMap<String, Arc<Scope>>,
    pub(crate) host_group_cache: IndexMap<String, Vec<String>>,
    /// Things Ansible silently accepts but that are likely mistakes (a `group_vars/` file
    /// naming no group, ...); `ferry check` shows them as warnings.
    pub warnings: Vec<InventoryWarning>,
}

/// A likely mistake that does not stop loading.
#[derive(Debug, Clone, PartialEq)]
pub struct InventoryWarning {
    pub loc: SourceLoc,
    pub message: String,
}

impl std::fmt::Display for InventoryWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: warning: {}", self.loc, self.message)
    }
}

/// An inventory that cannot be loaded, or a host pattern that cannot be read.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum InventoryError {
    #[error("{}: cannot read inventory: {source}", path.display())]
    #[diagnostic(help("check the path given with -i"))]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Yaml(#[from] yaml::YamlError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(Box<InvalidInventory>),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Cycle(Box<GroupCycle>),
    #[error("bad host pattern `{pattern}`: {message}")]
    #[diagnostic(help("{help}"))]
    Pattern {
        pattern: String,
        message: String,
        help: String,
    },
}

/// Something in an inventory or vars file that ferry cannot accept.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{loc}: {message}")]
#[diagnostic(code(ferry::inventory::invalid), help("{help}"))]
pub struct InvalidInventory {
    pub loc: SourceLoc,
    pub message: String,
    pub help: String,
    #[source_code]
    pub src: Option<NamedSource<String>>,
    #[label("here")]
    pub span: Option<SourceSpan>,
}

/// Group children that loop back (`a -> b -> a`).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{loc}: circular group children: {}", cycle.join(" -> "))]
#[diagnostic(
    code(ferry::inventory::cycle),
    help("a group cannot be its own descendant; remove one of these `children:` entries")
)]
pub struct GroupCycle {
    pub loc: SourceLoc,
    pub cycle: Vec<String>,
    #[source_code]
    pub src: Option<NamedSource<String>>,
    #[label("closes the cycle")]
    pub span: Option<SourceSpan>,
}

impl InventoryError {
    /// Where the problem is, when it is in a file.
    pub fn loc(&self) -> Option<SourceLoc> {
        match self {
            InventoryError::Read { path, .. } => Some(SourceLoc {
                file: Arc::new(path.clone()),
                line: 0,
                col: 0,
            }),
            InventoryError::Yaml(e) => Some(e.loc()),
            InventoryError::Invalid(e) => Some(e.loc.clone()),
            InventoryError::Cycle(e) => Some(e.loc.clone()),
            InventoryError::Pattern { .. } => None,
        }
    }
}

pub(crate) fn invalid(
    loc: &SourceLoc,
    message: impl Into<String>,
    help: impl Into<String>,
) -> InventoryError {
    let (src, span) = snippet(loc);
    InventoryError::Invalid(Box::new(InvalidInventory {
        loc: loc.clone(),
        message: message.into(),
        help: help.into(),
        src,
        span,
    }))
}

/// The file around `loc`, for the error's source snippet (read again only on error).
fn snippet(loc: &SourceLoc) -> (Option<NamedSource<String>>, Option<SourceSpan>) {
    match std::fs::read_to_string(&*loc.file) {
        Ok(text) if loc.line > 0 => {
            let span = yaml::token_span(&text, loc);
            (
                Some(NamedSource::new(loc.file.display().to_string(), text)),
                Some(span),
            )
        }
        _ => (None, None),
    }
}

fn parse_yaml(path: &Path) -> Result<Option<Node>, InventoryError> {
    if let Err(e) = std::fs::metadata(path) {
        return Err(InventoryError::Read {
            path: path.to_path_buf(),
            source: e,
        });
    }
    let docs = yaml::parse_file(path)?;
    let mut docs = docs.into_iter();
    let first = docs.next();
    if let Some(extra) = docs.next() {
        return Err(invalid(
            &extra.loc,
            "more than one YAML document",
            "keep one document (one `---`) per inventory or vars file",
        ));
    }
    Ok(first)
}

/// A vars file or inline `vars:` mapping: values and where each was written.
fn vars_of(node: &Node, what: &str) -> Result<(Vars, Locs), InventoryError> {
    let mut vars = Vars::new();
    let mut locs = Locs::new();
    match &node.kind {
        NodeKind::Null => {}
        NodeKind::Map(pairs) => {
            for (k, v) in pairs {
                let key = k.key_text();
                vars.insert(key.clone(), v.to_value());
                locs.insert(key, k.loc.clone());
            }
        }
        _ => {
            return Err(invalid(
                &node.loc,
                format!("{what} must be a mapping of variable names to values"),
                "write `name: value` lines under it",
            ));
        }
    }
    Ok((vars, locs))
}

impl Inventory {
    /// An empty inventory with Ansible's implicit groups `all` and `ungrouped`.
    pub fn new() -> Self {
        let mut inv = Inventory::default();
        inv.ensure_group("all", None);
        inv.ensure_group("ungrouped", None);
        inv.groups["all"].children.push("ungrouped".into());
        inv
    }

    /// Load and merge inventories in order (later `-i` wins for the same variable).
    pub fn load(paths: &[PathBuf]) -> Result<Inventory, InventoryError> {
        let mut inv = Inventory::new();
        for path in paths {
            let meta = std::fs::metadata(path).map_err(|e| InventoryError::Read {
                path: path.clone(),
                source: e,
            })?;
            let vars_dir = if meta.is_dir() {
                for file in inventory_files_in(path)? {
                    inv.parse_inventory_file(&file)?;
                }
                path.clone()
            } else {
                inv.parse_inventory_file(path)?;
                path.parent().map(Path::to_path_buf).unwrap_or_default()
            };
            inv.sources.push(Source {
                path: path.clone(),
                vars_dir,
                ..Source::default()
            });
        }
        inv.reconcile();
        for i in 0..inv.sources.len() {
            let dir = inv.sources[i].vars_dir.clone();
            let groups: Vec<String> = inv.groups.keys().cloned().collect();
            let hosts: Vec<String> = inv.hosts.keys().cloned().collect();
            let gv = load_vars_dir(&dir.join("group_vars"), &groups, |g| Layer::GroupVarsFile {
                group: g.to_string(),
            })?;
            let hv = load_vars_dir(&dir.join("host_vars"), &hosts, |_| Layer::HostVarsFile)?;
            inv.sources[i].group_vars = gv;
            inv.sources[i].host_vars = hv;
            inv.warnings.extend(unmatched_vars_files(
                &dir.join("group_vars"),
                &groups,
                "group",
            ));
            inv.warnings
                .extend(unmatched_vars_files(&dir.join("host_vars"), &hosts, "host"));
        }
        inv.finish();
        Ok(inv)
    }

    /// Parse one inventory file: YAML (`.yml`, `.yaml`, `.json`, or a file without those
    /// extensions whose content is a YAML mapping), else Ansible's INI format.
    pub fn parse_inventory_file(&mut self, path: &Path) -> Result<(), InventoryError> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if matches!(ext, "yml" | "yaml" | "json") {
            return self.parse_yaml_inventory(path);
        }
        let text = std::fs::read_to_string(path).map_err(|e| InventoryError::Read {
            path: path.to_path_buf(),
            source: e,
        })?;
        if ext != "ini"
            && let Ok(docs) = yaml::parse_str(&text, path)
            && docs.len() == 1
            && matches!(docs[0].kind, NodeKind::Map(_))
        {
            return self.parse_yaml_inventory(path);
        }
        ini::parse(self, path, &text)
    }

    /// Parse one YAML inventory file into this inventory.
    pub fn parse_yaml_inventory(&mut self, path: &Path) -> Result<(), InventoryError> {
        let Some(doc) = parse_yaml(path)? else {
            return Ok(());
        };
        match &doc.kind {
            NodeKind::Null => Ok(()),
            NodeKind::Map(pairs) => {
                for (k, v) in pairs {
                    let name = k.key_text();
                    self.parse_group(&name, &k.loc, v, None)?;
                }
                Ok(())
            }
            _ => Err(invalid(
                &doc.loc,
                "an inventory must be a mapping of group names (usually `all:`)",
                "start the file with `all:` and put `hosts:`, `vars:` and `children:` under it",
            )),
        }
    }

    fn ensure_group(&mut self, name: &str, loc: Option<&SourceLoc>) {
        let g = self
            .groups
            .entry(name.to_string())
            .or_insert_with(|| Group {
                name: name.to_string(),
                priority: 1,
                ..Group::default()
            });
        if g.loc.is_none() {
            g.loc = loc.cloned();
        }
    }

    fn parse_group(
        &mut self,
        name: &str,
        loc: &SourceLoc,
        node: &Node,
        parent: Option<&str>,
    ) -> Result<(), InventoryError> {
        check_name(name, loc, "group")?;
        self.ensure_group(name, Some(loc));
        if let Some(parent) = parent {
            self.add_child(parent, name, loc)?;
        }
        let pairs = match &node.kind {
            NodeKind::Null => return Ok(()),
            NodeKind::Map(pairs) => pairs,
            _ => {
                return Err(invalid(
                    &node.loc,
                    format!(
                        "group `{name}` must be a mapping with `hosts:`, `vars:` or `children:`"
                    ),
                    "indent `hosts:`, `vars:` and `children:` under the group name",
                ));
            }
        };
        for (k, v) in pairs {
            let key = k.key_text();
            match key.as_str() {
                "vars" => {
                    let (vars, locs) = vars_of(v, &format!("`vars` of group `{name}`"))?;
                    let g = &mut self.groups[name];
                    for (k, val) in vars {
                        // As Ansible: the priority orders the group, it is not a variable.
                        if k == "ansible_group_priority" {
                            g.priority = priority_of(&val, &locs[&k])?;
                            continue;
                        }
                        g.vars.insert(k.clone(), val);
                        g.var_locs.insert(k.clone(), locs[&k].clone());
                    }
                }
                "children" => match &v.kind {
                    NodeKind::Null => {}
                    NodeKind::Map(children) => {
                        for (ck, cv) in children {
                            self.parse_group(&ck.key_text(), &ck.loc, cv, Some(name))?;
                        }
                    }
                    _ => {
                        return Err(invalid(
                            &v.loc,
                            format!(
                                "`children` of group `{name}` must be a mapping of group names"
                            ),
                            "write each child group as `name:` (a list is not accepted)",
                        ));
                    }
                },
                "hosts" => match &v.kind {
                    NodeKind::Null => {}
                    NodeKind::Map(hosts) => {
                        for (hk, hv) in hosts {
                            self.parse_host(&hk.key_text(), &hk.loc, hv, name)?;
                        }
                    }
                    _ => {
                        return Err(invalid(
                            &v.loc,
                            format!("`hosts` of group `{name}` must be a mapping of host names"),
                            "write each host as `name:` (a list `- name` is not accepted)",
                        ));
                    }
                },
                other => {
                    let hint = ["hosts", "vars", "children"]
                        .iter()
                        .map(|c| (strsim::levenshtein(other, c), *c))
                        .min()
                        .filter(|(d, _)| *d <= 2)
                        .map(|(_, c)| format!("did you mean `{c}`? "))
                        .unwrap_or_default();
                    return Err(invalid(
                        &k.loc,
                        format!("unknown key `{other}` in group `{name}`"),
                        format!("{hint}a group takes only `hosts:`, `vars:` and `children:`"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn parse_host(
        &mut self,
        pattern: &str,
        loc: &SourceLoc,
        node: &Node,
        group: &str,
    ) -> Result<(), InventoryError> {
        let (vars, locs) = vars_of(node, &format!("host `{pattern}`"))?;
        self.add_hosts(pattern, loc, &vars, &locs, group)
    }

    /// Add the hosts of a host key (ranges expanded, `:PORT` read) to a group, with vars.
    fn add_hosts(
        &mut self,
        pattern: &str,
        loc: &SourceLoc,
        vars: &Vars,
        locs: &Locs,
        group: &str,
    ) -> Result<(), InventoryError> {
        for (name, port) in pattern::expand_host_pattern(pattern)
            .map_err(|m| invalid(loc, m, "write ranges as `name[01:10]` or `name[a:f]`"))?
        {
            check_name(&name, loc, "host")?;
            let host = self.hosts.entry(name.clone()).or_insert_with(|| Host {
                name: name.clone(),
                loc: loc.clone(),
                ..Host::default()
            });
            if let Some(port) = port {
                host.vars.insert("ansible_port".into(), port.into());
                host.var_locs.insert("ansible_port".into(), loc.clone());
            }
            for (k, v) in vars {
                host.vars.insert(k.clone(), v.clone());
            }
            host.var_locs.extend(locs.clone());
            let g = &mut self.groups[group];
            if !g.hosts.contains(&name) {
                g.hosts.push(name);
            }
        }
        Ok(())
    }

    /// Make `child` a child group of `parent`, refusing cycles.
    fn add_child(
        &mut self,
        parent: &str,
        child: &str,
        loc: &SourceLoc,
    ) -> Result<(), InventoryError> {
        if let Some(mut path) = self.path_down(child, parent) {
            path.push(child.to_string());
            let (src, span) = snippet(loc);
            return Err(InventoryError::Cycle(Box::new(GroupCycle {
                loc: loc.clone(),
                cycle: path,
                src,
                span,
            })));
        }
        let p = &mut self.groups[parent];
        if !p.children.iter().any(|c| c == child) {
            p.children.push(child.to_string());
        }
        Ok(())
    }

    /// A path of child links from `from` down to `to` (inclusive), if there is one.
    fn path_down(&self, from: &str, to: &str) -> Option<Vec<String>> {
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
    fn reconcile(&mut self) {
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

    fn compute_host_groups(&self, host: &str) -> Vec<String> {
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
    ) -> Result<bool, String> {
        if !self.hosts.contains_key(host) {
            return Err(format!("{host} cannot be matched in inventory"));
        }
        let mut changed = false;
        self.ensure_group(group, None);
        for p in parents {
            if !self.groups.contains_key(p.as_str()) {
                self.ensure_group(p, None);
                changed = true;
            }
            if p == group || self.path_down(group, p).is_some() {
                return Err(format!(
                    "group `{p}` cannot be a parent of `{group}`: `{group}` is already above it"
                ));
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

    /// Host names matching an Ansible host pattern, in inventory order.
    pub fn select(&self, pattern: &str) -> Result<Vec<String>, InventoryError> {
        pattern::select(self, pattern)
    }

    /// `select(pattern)` narrowed by `--limit` (itself a pattern, or `@file` with one
    /// pattern per line).
    pub fn select_limited(
        &self,
        pattern: &str,
        limit: Option<&str>,
    ) -> Result<Vec<String>, InventoryError> {
        let hosts = self.select(pattern)?;
        let Some(limit) = limit else {
            return Ok(hosts);
        };
        let allowed: HashSet<String> = self
            .select(&pattern::limit_pattern(limit)?)?
            .into_iter()
            .collect();
        Ok(hosts.into_iter().filter(|h| allowed.contains(h)).collect())
    }

    /// The terms of a pattern that match no host (`ferry check` warns about them).
    pub fn unmatched_terms(&self, pattern: &str) -> Result<Vec<String>, InventoryError> {
        pattern::unmatched_terms(self, pattern)
    }
}

pub(crate) fn priority_of(v: &serde_json::Value, loc: &SourceLoc) -> Result<i64, InventoryError> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .ok_or_else(|| {
            invalid(
                loc,
                format!("ansible_group_priority must be a whole number, not {v}"),
                "write e.g. `ansible_group_priority: 10` (higher wins among groups of equal depth)",
            )
        })
}

pub(crate) fn check_name(name: &str, loc: &SourceLoc, what: &str) -> Result<(), InventoryError> {
    if name.is_empty() || name.chars().any(char::is_whitespace) {
        return Err(invalid(
            loc,
            format!("invalid {what} name `{name}`"),
            format!("a {what} name is one word without spaces"),
        ));
    }
    Ok(())
}

/// The inventory files inside an inventory directory (sorted; `group_vars`, `host_vars`
/// and hidden or backup files skipped), as Ansible reads a directory source.
fn inventory_files_in(dir: &Path) -> Result<Vec<PathBuf>, InventoryError> {
    let rd = std::fs::read_dir(dir).map_err(|e| InventoryError::Read {
        path: dir.to_path_buf(),
        source: e,
    })?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let ext = p.extension().and_then(|e| e.to_str());
            p.is_file()
                && !name.starts_with('.')
                && !name.ends_with('~')
                && matches!(ext, None | Some("yml" | "yaml" | "json" | "ini"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Load `group_vars/` or `host_vars/`: for each known name, `NAME` (a directory of files,
/// read recursively in sorted order, or a file), `NAME.yml`, `NAME.yaml`, `NAME.json`.
fn load_vars_dir(
    dir: &Path,
    names: &[String],
    layer: impl Fn(&str) -> Layer,
) -> Result<IndexMap<String, Vec<VarsFile>>, InventoryError> {
    let mut out = IndexMap::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    for name in names {
        let mut paths = Vec::new();
        for ext in ["", ".yml", ".yaml", ".json"] {
            let p = dir.join(format!("{name}{ext}"));
            if p.is_dir() {
                collect_dir(&p, &mut paths);
            } else if p.is_file() {
                paths.push(p);
            }
        }
        let mut files = Vec::new();
        for path in paths {
            let (vars, locs) = match parse_yaml(&path)? {
                None => (Vars::new(), Locs::new()),
                Some(node) => vars_of(&node, &format!("vars file {}", path.display()))?,
            };
            files.push(VarsFile {
                scope: Arc::new(Scope::new(
                    layer(name),
                    path.display().to_string(),
                    vars,
                    locs,
                )),
                path,
            });
        }
        if !files.is_empty() {
            out.insert(name.clone(), files);
        }
    }
    Ok(out)
}

/// Entries of `group_vars/` or `host_vars/` that name no group/host of the inventory.
fn unmatched_vars_files(dir: &Path, names: &[String], what: &str) -> Vec<InventoryWarning> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    let mut out = Vec::new();
    for p in entries {
        let Some(file) = p.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if file.starts_with('.') || file.ends_with('~') {
            continue;
        }
        let stem = if p.is_dir() {
            file
        } else {
            match file.rsplit_once('.') {
                Some((stem, "yml" | "yaml" | "json")) => stem,
                Some(_) => continue,
                None => file,
            }
        };
        if names.iter().any(|n| n == stem) {
            continue;
        }
        let hint = names
            .iter()
            .map(|n| (strsim::levenshtein(stem, n), n))
            .min()
            .filter(|(d, _)| *d <= 2)
            .map(|(_, n)| format!(" (did you mean `{n}`?)"))
            .unwrap_or_default();
        out.push(InventoryWarning {
            loc: SourceLoc {
                file: Arc::new(p.clone()),
                line: 1,
                col: 1,
            },
            message: format!(
                "`{stem}` is not a {what} of the inventory, so these vars apply to nothing{hint}"
            ),
        });
    }
    out
}

fn collect_dir(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') || name.ends_with('~') {
            continue;
        }
        if p.is_dir() {
            collect_dir(&p, out);
        } else {
            let ext = p.extension().and_then(|e| e.to_str());
            if matches!(ext, None | Some("yml") | Some("yaml") | Some("json")) {
                out.push(p);
            }
        }
    }
}

/// Parse a YAML/JSON text that must hold one mapping of variables (`-e`, vars files).
pub fn parse_vars_text(text: &str, path: &Path) -> Result<(Vars, Locs), InventoryError> {
    let docs = yaml::parse_str(text, path)?;
    match docs.first() {
        None => Ok((Vars::new(), Locs::new())),
        Some(node) => vars_of(node, "extra vars"),
    }
}
