//! Includes: `include_tasks`/`import_tasks`/`include_role`/`import_role`, task files,
//! `include_vars` names, and the files an op's `src:` names (searched as Ansible does).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::ops::schema;
use crate::playbook::diag::Problem;
use crate::playbook::model::*;
use crate::template;
use crate::yaml::{self, Node, NodeKind};

use super::keywords::INCLUDE_KEYS;
use super::plays::handler_names;
use super::{Loader, TaskCtx, canon, file_name};

impl Loader {
    /// Load a task file (include/import/role), detecting include cycles.
    pub(super) fn task_file(
        &mut self,
        path: &Path,
        from: &SourceLoc,
        ctx: &TaskCtx,
    ) -> Vec<TaskItem> {
        let key = canon(path);
        if let Some(pos) = self.include_stack.iter().position(|p| *p == key) {
            let chain: Vec<String> = self.include_stack[pos..]
                .iter()
                .chain(std::iter::once(&key))
                .map(|p| file_name(p))
                .collect();
            self.problem(
                Problem::error(from, format!("circular include: {}", chain.join(" -> ")))
                    .label("includes a file that is already being included")
                    .hint("remove the include that closes the cycle"),
            );
            return Vec::new();
        }
        let Some(doc) = self.parse_one(path, Some(from)) else {
            return Vec::new();
        };
        self.include_stack.push(key);
        let fctx = TaskCtx {
            dir: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
            ..ctx.clone()
        };
        let out = match &doc.kind {
            NodeKind::Null => Vec::new(),
            _ => self.task_list(&doc, &fctx),
        };
        self.include_stack.pop();
        out
    }

    pub(super) fn include(
        &mut self,
        node: &Node,
        key: &Node,
        v: &Node,
        ctx: &TaskCtx,
    ) -> Option<Block> {
        let ctx = &Self::with_local_vars(ctx, node);
        let op = schema::canonical(key.as_str().unwrap_or("")).to_string();
        let mut b = Block {
            loc: node.loc.clone(),
            name: Some(op.clone()),
            ..Block::default()
        };
        for (k, val) in node.as_map()? {
            let name = k.key_text();
            if name == key.key_text() {
                continue;
            }
            if name == "name" {
                b.name = self.scalar_string(k, val);
                continue;
            }
            if !self.keyword(k, val, &mut b.keywords, ctx) {
                if ["loop", "with_items"].contains(&name.as_str()) {
                    self.problem(
                        Problem::error(&k.loc, format!("a loop over `{op}` is not supported"))
                            .label("loop here")
                            .hint("put the loop on the tasks inside the included file"),
                    );
                } else {
                    self.unknown_key(k, INCLUDE_KEYS, &op);
                }
            }
        }
        // The file or role name: a string, or a mapping with `file:` / `name:`.
        let (target, target_node) = match &v.kind {
            NodeKind::Str(s) => (s.clone(), v),
            NodeKind::Map(_) => {
                let field = if op.ends_with("_role") {
                    "name"
                } else {
                    "file"
                };
                match v.get(field) {
                    Some(n) if n.as_str().is_some() => {
                        (n.as_str().unwrap_or_default().to_string(), n)
                    }
                    _ => {
                        self.problem(
                            Problem::error(&v.loc, format!("`{op}` needs `{field}:`"))
                                .label(format!("no `{field}:`")),
                        );
                        return None;
                    }
                }
            }
            _ => {
                self.problem(
                    Problem::error(
                        &v.loc,
                        format!("`{op}` takes a name, found {}", v.type_name()),
                    )
                    .label("not a name"),
                );
                return None;
            }
        };
        if template::is_template(&target) {
            self.problem(
                Problem::error(
                    &target_node.loc,
                    format!("`{op}` needs a name without templates"),
                )
                .label("templated")
                .hint("ferry resolves includes when loading, before any variable exists"),
            );
            return None;
        }
        if op.ends_with("_role") {
            let (_, tasks, handlers) =
                self.load_role(&target, &target_node.loc, ctx, Vars::new())?;
            // Handlers of an included role become the play's handlers.
            if let Some(state) = self.play_state.as_mut() {
                for h in &handlers {
                    for n in handler_names(h) {
                        state.handler_names.insert(n);
                    }
                }
                state.role_handlers.extend(handlers);
            }
            b.block = tasks;
            return Some(b);
        }
        let candidates = [ctx.dir.join(&target), ctx.play_dir.join(&target)];
        let Some(path) = candidates.iter().find(|p| p.is_file()) else {
            self.problem(
                Problem::no_such_file(
                    &target_node.loc,
                    format!("task file {target} does not exist"),
                )
                .hint(format!(
                    "looked in {} and {}",
                    ctx.dir.display(),
                    ctx.play_dir.display()
                )),
            );
            return None;
        };
        b.block = self.task_file(path, &target_node.loc, ctx);
        Some(b)
    }

    pub(super) fn check_src(
        &mut self,
        task: &Task,
        locs: &HashMap<String, SourceLoc>,
        op_key: &Node,
        ctx: &TaskCtx,
    ) {
        let remote = task
            .args
            .get("remote_src")
            .map(|v| {
                matches!(v, Value::Bool(true))
                    || v.as_str().is_some_and(|s| {
                        matches!(s.to_ascii_lowercase().as_str(), "yes" | "true" | "on" | "1")
                    })
            })
            .unwrap_or(false);
        let (param, sub) = match task.op.as_str() {
            "template" => ("src", "templates"),
            "copy" | "unarchive" if !remote => ("src", "files"),
            "apt" => ("deb", "files"),
            "script" => ("_raw_params", "files"),
            "include_vars" => ("_raw_params", "vars"),
            _ => return,
        };
        let name = match task.args.get(param).and_then(Value::as_str) {
            Some(n) if param == "_raw_params" => {
                n.split_whitespace().next().unwrap_or("").to_string()
            }
            Some(n) => n.to_string(),
            None if task.op == "include_vars" => {
                match task.args.get("file").and_then(Value::as_str) {
                    Some(f) => f.to_string(),
                    None => return,
                }
            }
            None => return,
        };
        if name.is_empty() || template::is_template(&name) {
            return;
        }
        let loc = locs
            .get(param)
            .or_else(|| locs.get("file"))
            .cloned()
            .unwrap_or_else(|| op_key.loc.clone());
        let dirs = search_dirs(ctx.role.as_deref(), &ctx.dir, &ctx.play_dir, sub);
        let found = if Path::new(&name).is_absolute() {
            Some(PathBuf::from(&name)).filter(|p| p.exists())
        } else {
            dirs.iter().map(|d| d.join(&name)).find(|p| p.exists())
        };
        let Some(path) = found else {
            let what = if task.op == "template" {
                "template"
            } else {
                "file"
            };
            self.problem(
                Problem::no_such_file(&loc, format!("{}: {what} `{name}` not found", task.op))
                    .hint(format!(
                        "looked in: {}",
                        dirs.iter()
                            .map(|d| d.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
            );
            return;
        };
        if task.op == "template" && path.is_file() {
            self.template_file_uses(&path, &loc, ctx);
        }
    }
}

/// Where a controller-side file named by a task is looked up, as Ansible does:
/// the role's `sub/` and the role dir, the task file's dir, then the play's `sub/` and dir.
/// The names a static `include_vars` (a file or a dir, no template) defines,
/// read now; None when they cannot be known before the run.
pub(super) fn include_vars_keys(task: &Task, ctx: &TaskCtx) -> Option<Vec<String>> {
    fn keys_of(path: &Path, out: &mut Vec<String>) -> Option<()> {
        let docs = yaml::parse_file(path).ok()?;
        match docs.first().map(|d| d.to_value()) {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => out.extend(m.keys().cloned()),
            Some(_) => return None,
        }
        Some(())
    }
    let text = |k: &str| task.args.get(k).and_then(Value::as_str).map(str::to_string);
    let mut keys = Vec::new();
    if let Some(dir) = text("dir") {
        if template::is_template(&dir) {
            return None;
        }
        let root = match &ctx.role {
            Some(r) if dir.split('/').next() == Some("vars") && r.dir.join(&dir).exists() => {
                r.dir.join(&dir)
            }
            Some(r) => r.dir.join("vars").join(&dir),
            None => ctx.play_dir.join(&dir),
        };
        let mut todo = vec![root];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).ok()?.flatten() {
                let p = e.path();
                if p.is_dir() {
                    todo.push(p);
                } else {
                    keys_of(&p, &mut keys)?;
                }
            }
        }
        return Some(keys);
    }
    let file = text("file").or_else(|| text("_raw_params"))?;
    let file = file.trim();
    if template::is_template(file) {
        return None;
    }
    let path = if Path::new(file).is_absolute() {
        PathBuf::from(file)
    } else {
        search_dirs(ctx.role.as_deref(), &ctx.dir, &ctx.play_dir, "vars")
            .iter()
            .map(|d| d.join(file))
            .find(|p| p.is_file())?
    };
    keys_of(&path, &mut keys)?;
    Some(keys)
}

pub fn search_dirs(
    role: Option<&RoleContext>,
    task_dir: &Path,
    play_dir: &Path,
    sub: &str,
) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(r) = role {
        out.push(r.dir.join(sub));
        out.push(r.dir.clone());
    }
    out.push(task_dir.join(sub));
    out.push(task_dir.to_path_buf());
    out.push(play_dir.join(sub));
    out.push(play_dir.to_path_buf());
    let mut seen = HashSet::new();
    out.retain(|d| seen.insert(d.clone()));
    out
}
