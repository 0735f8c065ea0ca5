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
//! - `Inventory::layers(host)` (`layers.rs`): the inventory layers of one host;
//!   `Inventory::host_vars(host)`: the same, merged.
//!
//! Ansible's rules followed here: every group is a descendant of `all`; a host in no group
//! but `all` is in `ungrouped`; a group's depth is its longest distance from `all`;
//! a group that becomes its own descendant is an error naming the cycle.
//!
//! The parts: `yaml_inventory` (the YAML shape), `ini` (the INI shape), `files`
//! (inventory directories, group_vars/host_vars files), `groups` (the group tree, runtime
//! hosts and groups), `pattern` (host patterns), `render` (`--list`, `--graph`).

mod files;
mod groups;
mod ini;
mod layers;
mod pattern;
mod render;
pub mod vagrant;
mod yaml_inventory;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use miette::{NamedSource, SourceSpan};

use crate::vars::Vars;
use crate::vars::scope::{Layer, Locs, Scope};
pub use crate::yaml::SourceLoc;
use crate::yaml::{self, NodeKind};
pub use files::parse_vars_text;
use files::{inventory_files_in, load_vars_dir, unmatched_vars_files};
pub use groups::GroupByError;
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
