//! `include_vars`: load variables from a YAML/JSON file or a directory of them,
//! on the controller, into the host's `include_vars` layer for the rest of the run.
//!
//! A file is looked up as Ansible does: the role's `vars/`, the role, the
//! playbook dir's `vars/`, the playbook dir. A `dir:` is under the role's
//! `vars/` for a role task, else under the playbook dir; its files are read in
//! path order (Ansible's sorted walk), later files winning. `name:` nests the
//! loaded variables under one variable. Precedence: above task vars, below
//! `set_fact`/registered results (Ansible's order).

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{Op, OpContext, OpError, OpOutcome};
use crate::vars::Vars;

use super::schema::Spec;

/// What `include_vars` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "include_vars",
    flags: "free",
    params: "_raw_params:path; file:path; dir:path; name:str; files_matching:str; ignore_files:list; extensions:list; ignore_unknown_extensions:bool; depth:int; hash_behaviour:str=replace,merge",
    rules: "_raw_params|file|dir one:_raw_params|file|dir",
};

pub struct IncludeVars;

const DIR_ARGS: &[&str] = &[
    "dir",
    "depth",
    "files_matching",
    "ignore_files",
    "extensions",
    "ignore_unknown_extensions",
];
const FILE_ARGS: &[&str] = &["file", "_raw_params"];

/// Why the variables could not be loaded: the task fails with this message (as
/// Ansible's `message`), and nothing is loaded.
#[derive(Debug, thiserror::Error)]
enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Yaml(#[from] crate::yaml::YamlError),
    #[error("{0} must be stored as a dictionary/hash")]
    NotMapping(String),
    #[error("{path} does not have a valid extension: {allowed}")]
    Extension { path: String, allowed: String },
    #[error("You are mixing file only and dir only arguments, these are incompatible")]
    Mixed,
    #[error("{0} directory does not exist")]
    NoDir(String),
    #[error("{0} is not a directory")]
    NotDir(String),
    #[error("bad regex `{pattern}`: {source}")]
    Regex {
        pattern: String,
        source: regex::Error,
    },
    #[error("`depth` must be a whole number, got {0}")]
    Depth(Value),
    #[error(transparent)]
    Args(#[from] OpError),
    #[error("include_vars needs a file (`file:` or free form) or a `dir:`")]
    NoFile,
    #[error("Could not find or access '{file}' (looked in {looked})")]
    NotFound { file: String, looked: String },
}

fn str_list(v: Option<&Value>) -> Vec<String> {
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
        Some(other) => vec![other.to_string()],
    }
}

/// One vars file: a mapping (an empty file is an empty mapping).
fn load_file(path: &Path) -> Result<Map<String, Value>, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let docs = crate::yaml::parse_str(&text, path)?;
    match docs.first().map(|d| d.to_value()) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(LoadError::NotMapping(path.display().to_string())),
    }
}

/// Deep merge (`hash_behaviour: merge`): mappings merged key by key, anything else replaced.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(old) => merge(old, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

struct DirWalk {
    depth: usize,
    matching: Option<regex::Regex>,
    ignore: Vec<regex::Regex>,
    extensions: Vec<String>,
    ignore_unknown: bool,
}

impl DirWalk {
    /// Directories under `root` (itself included) down to `depth` levels (0: all), in path order.
    fn dirs(&self, root: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut todo = vec![(root.to_path_buf(), 1usize)];
        while let Some((d, level)) = todo.pop() {
            if self.depth != 0 && level > self.depth {
                continue;
            }
            if let Ok(rd) = std::fs::read_dir(&d) {
                for e in rd.flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        todo.push((p, level + 1));
                    }
                }
            }
            out.push(d);
        }
        out.sort_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
        out
    }

    fn files(
        &self,
        root: &Path,
        loaded: &mut Vec<String>,
    ) -> Result<Map<String, Value>, LoadError> {
        let mut results = Map::new();
        for dir in self.dirs(root) {
            let mut names: Vec<String> = std::fs::read_dir(&dir)
                .map_err(|source| LoadError::Read {
                    path: dir.display().to_string(),
                    source,
                })?
                .flatten()
                .filter(|e| !e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            for name in names {
                if self.matching.as_ref().is_some_and(|m| !m.is_match(&name)) {
                    continue;
                }
                if self.ignore.iter().any(|r| r.is_match(&name)) {
                    continue;
                }
                let path = dir.join(&name);
                let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
                if !self.extensions.iter().any(|x| x == ext) {
                    if self.ignore_unknown {
                        continue;
                    }
                    return Err(LoadError::Extension {
                        path: path.display().to_string(),
                        allowed: self.extensions.join(", "),
                    });
                }
                results.extend(load_file(&path)?);
                loaded.push(path.display().to_string());
            }
        }
        Ok(results)
    }
}

impl IncludeVars {
    fn load(
        ctx: &OpContext<'_>,
        loaded: &mut Vec<String>,
    ) -> Result<Map<String, Value>, LoadError> {
        let dirs = ctx
            .args
            .keys()
            .filter(|k| DIR_ARGS.contains(&k.as_str()))
            .count();
        let files = ctx
            .args
            .keys()
            .filter(|k| FILE_ARGS.contains(&k.as_str()))
            .count();
        if dirs > 0 && files > 0 {
            return Err(LoadError::Mixed);
        }
        if let Some(dir) = ctx.arg_str("dir") {
            let root = match ctx.role_dir {
                Some(r) if dir.split('/').next() == Some("vars") && r.join(&dir).exists() => {
                    r.join(&dir)
                }
                Some(r) => r.join("vars").join(&dir),
                None => ctx.base_dir.join(&dir),
            };
            if !root.exists() {
                return Err(LoadError::NoDir(root.display().to_string()));
            }
            if !root.is_dir() {
                return Err(LoadError::NotDir(root.display().to_string()));
            }
            let regex = |s: &str| {
                regex::Regex::new(s).map_err(|source| LoadError::Regex {
                    pattern: s.to_string(),
                    source,
                })
            };
            let walk = DirWalk {
                depth: match ctx.args.get("depth") {
                    None | Some(Value::Null) => 0,
                    Some(v) => v
                        .as_u64()
                        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                        .ok_or_else(|| LoadError::Depth(v.clone()))?
                        as usize,
                },
                matching: ctx
                    .arg_str("files_matching")
                    .as_deref()
                    .map(regex)
                    .transpose()?,
                ignore: str_list(ctx.args.get("ignore_files"))
                    .iter()
                    .map(|s| regex(&format!("{s}$")))
                    .collect::<Result<_, _>>()?,
                extensions: match ctx.args.get("extensions") {
                    None | Some(Value::Null) => vec!["yaml".into(), "yml".into(), "json".into()],
                    v => str_list(v),
                },
                ignore_unknown: ctx.arg_bool("ignore_unknown_extensions")?.unwrap_or(false),
            };
            return walk.files(&root, loaded);
        }
        let Some(file) = ctx
            .arg_str("file")
            .or_else(|| ctx.arg_str("_raw_params"))
            .map(|f| f.trim_end_matches('\n').to_string())
        else {
            return Err(LoadError::NoFile);
        };
        let path = ctx.find_file("vars", &file);
        if !path.is_file() {
            return Err(LoadError::NotFound {
                file,
                looked: format!(
                    "{}vars/ and {}",
                    ctx.role_dir
                        .map(|r| format!("{}/vars/, {}, ", r.display(), r.display()))
                        .unwrap_or_default(),
                    ctx.base_dir.display()
                ),
            });
        }
        let m = load_file(&path)?;
        loaded.push(
            std::path::absolute(&path)
                .unwrap_or(path)
                .display()
                .to_string(),
        );
        Ok(m)
    }
}

#[async_trait]
impl Op for IncludeVars {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn needs_connection(&self) -> bool {
        false
    }
    async fn run_unplanned(&self, ctx: &OpContext<'_>) -> Result<OpOutcome, OpError> {
        let mut loaded = Vec::new();
        let mut vars = match Self::load(ctx, &mut loaded) {
            Ok(v) => v,
            Err(e) => {
                let msg = e.to_string();
                let mut o = OpOutcome::failed(msg.clone());
                o.result.insert("message".into(), msg.into());
                return Ok(o);
            }
        };
        if let Some(name) = ctx.arg_str("name") {
            let mut nested = Map::new();
            nested.insert(name, Value::Object(vars));
            vars = nested;
        }
        match ctx.arg_str("hash_behaviour").as_deref() {
            None | Some("replace") => {}
            Some("merge") => {
                for (k, v) in vars.iter_mut() {
                    if let Some(old) = ctx.vars.get(k) {
                        let mut merged = old.clone();
                        merge(&mut merged, std::mem::take(v));
                        *v = merged;
                    }
                }
            }
            Some(other) => {
                return Err(OpError::Args(format!(
                    "include_vars: hash_behaviour `{other}` is neither `replace` nor `merge`"
                )));
            }
        }
        let mut o = OpOutcome::ok();
        o.result
            .insert("ansible_included_var_files".into(), Value::from(loaded));
        o.result
            .insert("ansible_facts".into(), Value::Object(vars.clone()));
        o.included_vars = vars.into_iter().collect::<Vars>();
        Ok(o)
    }
}
