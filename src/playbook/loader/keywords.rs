//! The keys plays, tasks, blocks and includes may have, and the loader's readers of
//! keyword values (strings, booleans, lists, tags, conditions, vars, environment).

use std::sync::Arc;

use serde_json::Value;

use crate::playbook::diag::Problem;
use crate::playbook::model::*;
use crate::yaml::{Node, NodeKind};

use super::{Loader, TaskCtx, is_identifier};

/// Keys a play may have.
pub const PLAY_KEYS: &[&str] = &[
    "name",
    "hosts",
    "gather_facts",
    "vars",
    "vars_files",
    "become",
    "become_user",
    "serial",
    "max_fail_percentage",
    "any_errors_fatal",
    "check_mode",
    "environment",
    "pre_tasks",
    "tasks",
    "post_tasks",
    "handlers",
    "roles",
    "tags",
    "experiment",
];

/// Keys a task may have besides its op.
pub const TASK_KEYS: &[&str] = &[
    "name",
    "when",
    "loop",
    "with_items",
    "loop_control",
    "register",
    "notify",
    "listen",
    "tags",
    "become",
    "become_user",
    "ignore_errors",
    "changed_when",
    "failed_when",
    "retries",
    "delay",
    "until",
    "delegate_to",
    "run_once",
    "no_log",
    "environment",
    "vars",
    "args",
    "any_errors_fatal",
    "timeout",
    "check_mode",
];

/// Keys a block may have.
pub const BLOCK_KEYS: &[&str] = &[
    "name",
    "block",
    "rescue",
    "always",
    "when",
    "tags",
    "become",
    "become_user",
    "ignore_errors",
    "vars",
    "environment",
    "delegate_to",
    "run_once",
    "no_log",
    "any_errors_fatal",
    "timeout",
    "check_mode",
];

/// Keys of `include_tasks` / `import_tasks` / `include_role` / `import_role` tasks.
pub(super) const INCLUDE_KEYS: &[&str] = &[
    "name",
    "include_tasks",
    "import_tasks",
    "include_role",
    "import_role",
    "when",
    "tags",
    "vars",
    "become",
    "become_user",
    "ignore_errors",
    "environment",
    "delegate_to",
    "run_once",
    "no_log",
    "any_errors_fatal",
    "timeout",
    "check_mode",
];

pub(super) const LOOP_CONTROL_KEYS: &[&str] = &[
    "loop_var",
    "label",
    "index_var",
    "extended",
    "extended_allitems",
    "pause",
    "break_when",
];

impl Loader {
    pub(super) fn unknown_key(&mut self, key: &Node, allowed: &[&str], what: &str) {
        let name = key.key_text();
        let suggestion = crate::suggest::suggest(&name, allowed.iter().copied());
        let mut p =
            Problem::error(&key.loc, format!("unknown {what} key `{name}`")).label("unknown key");
        p = match suggestion {
            Some(s) => p.hint(format!("did you mean `{s}`?")),
            None => p.hint(format!("{what} keys are: {}", allowed.join(", "))),
        };
        self.problem(p);
    }

    pub(super) fn wrong_type(&mut self, k: &Node, v: &Node, expected: &str) {
        self.problem(
            Problem::error(
                &v.loc,
                format!(
                    "`{}` must be {expected}, found {}",
                    k.key_text(),
                    v.type_name()
                ),
            )
            .label(v.type_name()),
        );
    }

    pub(super) fn scalar_string(&mut self, k: &Node, v: &Node) -> Option<String> {
        match v.scalar_text() {
            Some(s) => Some(s),
            None => {
                self.wrong_type(k, v, "a string");
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, k: &Node, v: &Node) -> Option<bool> {
        match &v.kind {
            NodeKind::Bool(b) => Some(*b),
            NodeKind::Str(s) => match s.to_ascii_lowercase().as_str() {
                "yes" | "true" | "on" | "1" => Some(true),
                "no" | "false" | "off" | "0" => Some(false),
                _ => {
                    self.wrong_type(k, v, "a boolean (yes/no, true/false)");
                    None
                }
            },
            NodeKind::Int(0) => Some(false),
            NodeKind::Int(1) => Some(true),
            _ => {
                self.wrong_type(k, v, "a boolean (yes/no, true/false)");
                None
            }
        }
    }

    pub(super) fn string_list(&mut self, k: &Node, v: &Node) -> Vec<String> {
        match &v.kind {
            NodeKind::Null => Vec::new(),
            NodeKind::Seq(items) => items
                .iter()
                .filter_map(|i| match i.scalar_text() {
                    Some(s) => Some(s),
                    None => {
                        self.wrong_type(k, i, "a string");
                        None
                    }
                })
                .collect(),
            _ => match v.scalar_text() {
                Some(s) => vec![s],
                None => {
                    self.wrong_type(k, v, "a string or a list of strings");
                    Vec::new()
                }
            },
        }
    }

    pub(super) fn tags(&mut self, k: &Node, v: &Node) -> Vec<String> {
        let raw = self.string_list(k, v);
        raw.iter()
            .flat_map(|t| t.split(','))
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect()
    }

    /// `when:`-like conditions: a string, a boolean or a list of them.
    pub(super) fn conditions(&mut self, k: &Node, v: &Node, ctx: &TaskCtx) -> Vec<String> {
        let items: Vec<&Node> = match &v.kind {
            NodeKind::Seq(items) => items.iter().collect(),
            _ => vec![v],
        };
        let mut out = Vec::new();
        for i in items {
            let text = match &i.kind {
                NodeKind::Bool(b) => (if *b { "True" } else { "False" }).to_string(),
                NodeKind::Str(s) => s.clone(),
                NodeKind::Int(n) => n.to_string(),
                _ => {
                    self.wrong_type(k, i, "a condition (a string, a boolean or a list of them)");
                    continue;
                }
            };
            if matches!(i.kind, NodeKind::Str(_)) {
                self.expression_uses(i, &text, ctx);
            }
            out.push(text);
        }
        out
    }

    pub(super) fn vars_map(&mut self, k: &Node, v: &Node) -> Vars {
        let mut out = Vars::new();
        match &v.kind {
            NodeKind::Null => {}
            NodeKind::Map(entries) => {
                for (vk, vv) in entries {
                    let name = vk.key_text();
                    if !is_identifier(&name) {
                        self.problem(
                            Problem::error(&vk.loc, format!("`{name}` is not a valid variable name"))
                                .label("invalid name")
                                .hint("variable names are letters, digits and `_`, not starting with a digit"),
                        );
                        continue;
                    }
                    out.insert(name, vv.to_value());
                }
            }
            _ => self.wrong_type(k, v, "a mapping of variables"),
        }
        out
    }

    /// Keywords shared by tasks, blocks and includes; returns false when the key is not one.
    pub(super) fn keyword(
        &mut self,
        k: &Node,
        v: &Node,
        kw: &mut TaskKeywords,
        ctx: &TaskCtx,
    ) -> bool {
        match k.key_text().as_str() {
            "when" => kw.when = self.conditions(k, v, ctx),
            "tags" => kw.tags = self.tags(k, v),
            "become" => kw.become_ = self.boolean(k, v),
            "become_user" => {
                kw.become_user = self.scalar_string(k, v);
                self.template_uses(v, ctx);
            }
            "ignore_errors" => kw.ignore_errors = self.boolean(k, v),
            "vars" => {
                kw.vars = self.vars_map(k, v);
                for (_, val) in v.as_map().unwrap_or(&[]) {
                    self.template_uses(val, ctx);
                }
            }
            "environment" => {
                kw.environment = self.vars_env(k, v);
                self.template_uses(v, ctx);
            }
            "delegate_to" => {
                kw.delegate_to = self.scalar_string(k, v);
                self.template_uses(v, ctx);
            }
            "run_once" => kw.run_once = self.boolean(k, v),
            "no_log" => kw.no_log = self.boolean(k, v),
            "any_errors_fatal" => kw.any_errors_fatal = self.boolean(k, v),
            "check_mode" => kw.check_mode = self.boolean(k, v),
            // Ansible's task timeout (seconds): the command is killed, the task fails.
            "timeout" => match v.as_f64() {
                Some(f) if f > 0.0 => kw.timeout = Some(f),
                _ => self.wrong_type(k, v, "a positive number of seconds"),
            },
            _ => return false,
        }
        true
    }

    /// `environment:`: a mapping, a template that renders to one, or a list of those.
    pub(super) fn vars_env(&mut self, k: &Node, v: &Node) -> Vec<Value> {
        let items = match &v.kind {
            NodeKind::Seq(items) => items.iter().collect(),
            NodeKind::Null => Vec::new(),
            _ => vec![v],
        };
        let mut out = Vec::new();
        for item in items {
            match &item.kind {
                NodeKind::Map(_) => out.push(item.to_value()),
                NodeKind::Str(s) if s.contains("{{") => out.push(item.to_value()),
                NodeKind::Null => {}
                _ => self.wrong_type(
                    k,
                    item,
                    "a mapping of environment variables (or a template that gives one)",
                ),
            }
        }
        out
    }

    /// The names a node's `vars:` defines, added to the local scope.
    pub(super) fn with_local_vars(ctx: &TaskCtx, node: &Node) -> TaskCtx {
        let mut c = ctx.clone();
        if let Some(v) = node.get("vars").and_then(Node::as_map) {
            let mut l = ctx.local.as_ref().clone();
            l.extend(v.iter().map(|(k, _)| k.key_text()));
            c.local = Arc::new(l);
        }
        c
    }
}
