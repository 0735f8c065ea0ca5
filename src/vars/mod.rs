//! Variable layers and precedence, in one place.
//!
//! A host's variable view is a stack of layers, lowest first. A name takes its value from
//! the highest layer that sets it; values are replaced whole, never merged (Ansible's
//! default `hash_behaviour = replace`). The order follows Ansible's for the layers ferry
//! has (lowest first):
//!
//! 1. role defaults (`roles/R/defaults/main.yml`)
//! 2. inventory file vars of group `all`
//! 3. inventory file vars of the other groups, by depth, then `ansible_group_priority`,
//!    then name (a child group wins over its parent)
//! 4. `group_vars/all` files
//! 5. `group_vars/GROUP` files (per `-i` in order, then by depth/priority/name)
//! 6. inventory file host vars
//! 7. `host_vars/HOST` files
//! 8. host facts
//! 9. play `vars:`
//! 10. play `vars_files:` (in order)
//! 11. role `vars/main.yml`
//! 12. block `vars:` (outer blocks first)
//! 13. task `vars:`
//! 14. `include_vars` results
//! 15. `register:` results and `set_fact`
//! 16. role params (`roles: [{role: r, x: 1}]`), with `role_name` and `role_path`
//! 17. `-e/--extra-vars` (wins over everything)
//!
//! Magic variables (`inventory_hostname`, `inventory_hostname_short`, `group_names`,
//! `groups`, `play_hosts`, `ansible_play_hosts`, `ansible_check_mode`, `hostvars`) sit
//! above all of these, as in Ansible: a user cannot override them.
//!
//! Layers are shared (`Arc`): building a task's view clones a short vector of pointers,
//! never the maps. [`VarLayers::get`] looks a name up from the top;
//! [`VarLayers::explain`] says which layer and file:line set it and what it overrode;
//! [`VarLayers::flatten`] builds one map when a template context needs it.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::Value;

use crate::yaml::SourceLoc;

pub mod scope;

pub use scope::{Layer, Locs, Scope, Vars};

/// One setting of a variable, as `--explain` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub layer: Layer,
    pub origin: String,
    pub loc: Option<SourceLoc>,
    pub value: Value,
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = match &self.loc {
            Some(l) => l.to_string(),
            None => self.origin.clone(),
        };
        write!(f, "{} at {}: {}", self.layer, at, self.value)
    }
}

/// Which layer won for a name, and the settings it overrode (highest first).
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    pub name: String,
    pub winner: Setting,
    pub overridden: Vec<Setting>,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} = {}", self.name, self.winner.value)?;
        writeln!(f, "  set by {}", self.winner)?;
        for o in &self.overridden {
            writeln!(f, "  overrides {o}")?;
        }
        Ok(())
    }
}

/// A host's (or a task's) variable view: shared layers, lowest first.
#[derive(Debug, Clone, Default)]
pub struct VarLayers {
    scopes: Vec<Arc<Scope>>,
}

impl VarLayers {
    pub fn new() -> Self {
        VarLayers::default()
    }

    /// Add a layer (an empty one is skipped). Layers are pushed lowest first; a layer of lower rank than the top
    /// one is inserted where it belongs (after layers of the same rank), so role defaults
    /// may be added to a host's inventory view.
    pub fn push(&mut self, scope: Arc<Scope>) {
        if scope.vars.is_empty() {
            return;
        }
        let rank = scope.layer.rank();
        let pos = self
            .scopes
            .iter()
            .rposition(|s| s.layer.rank() <= rank)
            .map(|p| p + 1)
            .unwrap_or(0);
        self.scopes.insert(pos, scope);
    }

    /// A copy of this view with one more layer (cheap: pointers only).
    pub fn with(&self, scope: Arc<Scope>) -> Self {
        let mut v = self.clone();
        v.push(scope);
        v
    }

    /// The layers, lowest first.
    pub fn scopes(&self) -> &[Arc<Scope>] {
        &self.scopes
    }

    /// The value a name has in this view.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.scopes.iter().rev().find_map(|s| s.vars.get(name))
    }

    /// Every setting of `name`, highest first.
    pub fn settings(&self, name: &str) -> Vec<Setting> {
        self.scopes
            .iter()
            .rev()
            .filter_map(|s| {
                s.vars.get(name).map(|v| Setting {
                    layer: s.layer.clone(),
                    origin: s.origin.clone(),
                    loc: s.locs.get(name).cloned(),
                    value: v.clone(),
                })
            })
            .collect()
    }

    /// The layer `name` takes its value from.
    pub fn winner(&self, name: &str) -> Option<&Layer> {
        self.scopes
            .iter()
            .rev()
            .find(|s| s.vars.contains_key(name))
            .map(|s| &s.layer)
    }

    /// Which layer set `name`, where, and which settings it overrode.
    pub fn explain(&self, name: &str) -> Option<Explanation> {
        let mut settings = self.settings(name).into_iter();
        let winner = settings.next()?;
        Some(Explanation {
            name: name.to_string(),
            winner,
            overridden: settings.collect(),
        })
    }

    /// All variables merged into one map (names in first-set order).
    pub fn flatten(&self) -> Vars {
        let mut out = Vars::new();
        for s in &self.scopes {
            for (k, v) in &s.vars {
                out.insert(k.clone(), v.clone());
            }
        }
        out
    }

    /// Like `flatten`, leaving out the magic layer (what `ansible-inventory --host` shows).
    pub fn flatten_user(&self) -> Vars {
        let mut out = Vars::new();
        for s in self.scopes.iter().filter(|s| s.layer != Layer::Magic) {
            for (k, v) in &s.vars {
                out.insert(k.clone(), v.clone());
            }
        }
        out
    }
}

/// A host's magic variables: `inventory_hostname`, `inventory_hostname_short`, and
/// `group_names` when the host's groups are known.
pub fn host_magic(host: &str, group_names: Option<Vec<String>>) -> Arc<Scope> {
    let mut vars = Vars::new();
    vars.insert("inventory_hostname".into(), Value::from(host));
    let short = host.split('.').next().unwrap_or(host);
    vars.insert("inventory_hostname_short".into(), Value::from(short));
    if let Some(g) = group_names {
        vars.insert("group_names".into(), Value::from(g));
    }
    Arc::new(Scope::plain(Layer::Magic, "magic", vars))
}

/// `-e`/`--extra-vars` that cannot be read.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum VarsError {
    #[error("-e {arg}: {message}")]
    #[diagnostic(help("{help}"))]
    Extra {
        arg: String,
        message: String,
        help: String,
    },
}

fn extra_err(arg: &str, message: impl Into<String>, help: impl Into<String>) -> VarsError {
    VarsError::Extra {
        arg: arg.to_string(),
        message: message.into(),
        help: help.into(),
    }
}

/// Parse `-e` arguments (in order, later wins): `@file.yml` (YAML or JSON mapping),
/// inline YAML/JSON starting with `{`, or `k=v` pairs (values are strings, quotes
/// allowed: `msg="a b"`).
pub fn parse_extra_vars(args: &[String]) -> Result<Vars, VarsError> {
    let mut vars = Vars::new();
    for s in extra_vars_scopes(args)? {
        vars.extend(s.vars);
    }
    Ok(vars)
}

/// `parse_extra_vars` as layers, one per `-e` (origin `-e #N` or the `@file` path, with
/// file:line positions for files), for `--explain`. Push them in order.
pub fn extra_vars_scopes(args: &[String]) -> Result<Vec<Scope>, VarsError> {
    let mut scopes = Vec::new();
    for (i, arg) in args.iter().enumerate() {
        let label = format!("-e #{}", i + 1);
        let trimmed = arg.trim_start();
        let scope = if let Some(path) = trimmed.strip_prefix('@') {
            let path = Path::new(path);
            let text = std::fs::read_to_string(path).map_err(|e| {
                extra_err(
                    arg,
                    format!("cannot read {}: {e}", path.display()),
                    "give an existing YAML or JSON file after `@`",
                )
            })?;
            let (v, l) = yaml_mapping(&text, path, arg)?;
            Scope::new(Layer::ExtraVars, path.display().to_string(), v, l)
        } else if trimmed.starts_with('{') || trimmed.starts_with('[') {
            let (v, _) = yaml_mapping(trimmed, Path::new(&label), arg)?;
            Scope::plain(Layer::ExtraVars, label, v)
        } else {
            let v = parse_kv(arg)?
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            Scope::plain(Layer::ExtraVars, label, v)
        };
        scopes.push(scope);
    }
    Ok(scopes)
}

fn yaml_mapping(text: &str, path: &Path, arg: &str) -> Result<(Vars, Locs), VarsError> {
    let help = "write a YAML/JSON mapping: `{\"k\": \"v\"}` or `k: v` lines";
    let docs =
        crate::yaml::parse_str(text, path).map_err(|e| extra_err(arg, e.to_string(), help))?;
    match docs.first() {
        None => Ok((Vars::new(), Locs::new())),
        Some(node) => of_mapping(node).ok_or_else(|| {
            extra_err(
                arg,
                format!(
                    "{}: extra vars must be a mapping of variable names to values",
                    node.loc
                ),
                help,
            )
        }),
    }
}

/// A YAML mapping (or an empty document) as variables, with where each was written;
/// None when the node is not a mapping.
pub fn of_mapping(node: &crate::yaml::Node) -> Option<(Vars, Locs)> {
    let mut vars = Vars::new();
    let mut locs = Locs::new();
    match &node.kind {
        crate::yaml::NodeKind::Null => {}
        crate::yaml::NodeKind::Map(pairs) => {
            for (k, v) in pairs {
                let key = k.key_text();
                vars.insert(key.clone(), v.to_value());
                locs.insert(key, k.loc.clone());
            }
        }
        _ => return None,
    }
    Some((vars, locs))
}

/// Split `k=v k2="v 2"` into pairs, shell-like quoting.
fn parse_kv(arg: &str) -> Result<Vec<(String, String)>, VarsError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    let mut chars = arg.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    in_word = true;
                }
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(extra_err(
            arg,
            "unclosed quote",
            "close the quote: k=\"a b\"",
        ));
    }
    if in_word {
        words.push(cur);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(extra_err(
                arg,
                format!("`{w}` is not `key=value`"),
                "write `-e key=value`, `-e '{\"key\": 1}'` or `-e @vars.yml`",
            )),
        })
        .collect()
}

impl VarLayers {
    /// This view as a template context: names are looked up through the layers on use,
    /// so no merged map is built per task.
    pub fn to_context(&self) -> minijinja::Value {
        minijinja::Value::from_object(self.clone())
    }

    /// Every name set in some layer, each once (lowest layer's order first).
    pub fn names(&self) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for s in &self.scopes {
            for k in s.vars.keys() {
                if seen.insert(k.as_str()) {
                    out.push(k.clone());
                }
            }
        }
        out
    }
}

impl minijinja::value::Object for VarLayers {
    fn repr(self: &Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        self.get(key.as_str()?).map(to_jinja)
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Values(
            self.names()
                .into_iter()
                .map(minijinja::Value::from)
                .collect(),
        )
    }
}

/// A JSON value as a template value (maps keep their order).
pub fn to_jinja(v: &Value) -> minijinja::Value {
    use minijinja::Value as J;
    match v {
        Value::Null => J::from(()),
        Value::Bool(b) => J::from(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => J::from(i),
            (None, Some(u), _) => J::from(u),
            (_, _, Some(f)) => J::from(f),
            _ => J::from(n.to_string()),
        },
        Value::String(s) => J::from(s.as_str()),
        Value::Array(items) => J::from(items.iter().map(to_jinja).collect::<Vec<_>>()),
        Value::Object(map) => J::from_object(
            map.iter()
                .map(|(k, v)| (J::from(k.as_str()), to_jinja(v)))
                .collect::<IndexMap<J, J>>(),
        ),
    }
}
