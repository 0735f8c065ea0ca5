//! Tasks: task lists, blocks, one task's keys and its op with its arguments.
//!
//! Near 600 lines because `Loader::task` is one pass over a task's keys (about 440 lines):
//! each key is read where the keyword table says what it may be.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::ops::schema::{self, ArgProblem, OpSchema};
use crate::playbook::diag::Problem;
use crate::playbook::model::*;
use crate::template;
use crate::yaml::{Node, NodeKind};

use super::free_form::{join_free_form, split_free_form, unquote};
use super::includes::include_vars_keys;
use super::keywords::{BLOCK_KEYS, LOOP_CONTROL_KEYS, TASK_KEYS};
use super::plays::handler_names;
use super::{Loader, TaskCtx, is_identifier};

impl Loader {
    // ----- tasks

    pub(super) fn task_list(&mut self, v: &Node, ctx: &TaskCtx) -> Vec<TaskItem> {
        let items = match &v.kind {
            NodeKind::Null => return Vec::new(),
            NodeKind::Seq(items) => items,
            _ => {
                self.problem(
                    Problem::error(
                        &v.loc,
                        format!("a task list is a list, found {}", v.type_name()),
                    )
                    .label("expected `- name: ...`")
                    .hint("start each task with `- `"),
                );
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for item in items {
            if item.as_map().is_none() {
                self.problem(
                    Problem::error(
                        &item.loc,
                        format!("a task is a mapping, found {}", item.type_name()),
                    )
                    .label("not a task")
                    .hint(
                        "a task looks like `- name: ...` followed by one op, e.g. `command: ...`",
                    ),
                );
                continue;
            }
            if item.get("block").is_some() {
                if let Some(b) = self.block(item, ctx) {
                    out.push(TaskItem::Block(b));
                }
                continue;
            }
            let include = item.as_map().unwrap_or(&[]).iter().find(|(k, _)| {
                matches!(
                    k.as_str().map(schema::canonical),
                    Some("include_tasks" | "import_tasks" | "include_role" | "import_role")
                )
            });
            if let Some((k, v)) = include {
                if let Some(b) = self.include(item, k, v, ctx) {
                    out.push(TaskItem::Block(b));
                }
                continue;
            }
            if let Some(t) = self.task(item, ctx) {
                out.push(TaskItem::Task(t));
            }
        }
        out
    }

    pub(super) fn block(&mut self, node: &Node, ctx: &TaskCtx) -> Option<Block> {
        let ctx = &Self::with_local_vars(ctx, node);
        let mut b = Block {
            loc: node.loc.clone(),
            ..Block::default()
        };
        for (k, v) in node.as_map()? {
            let key = k.key_text();
            match key.as_str() {
                "name" => b.name = self.scalar_string(k, v),
                "block" => b.block = self.task_list(v, ctx),
                "rescue" => b.rescue = self.task_list(v, ctx),
                "always" => b.always = self.task_list(v, ctx),
                _ => {
                    if !self.keyword(k, v, &mut b.keywords, ctx) {
                        self.unknown_key(k, BLOCK_KEYS, "block");
                    }
                }
            }
        }
        Some(b)
    }

    pub(super) fn task(&mut self, node: &Node, ctx: &TaskCtx) -> Option<Task> {
        let entries = node.as_map()?;
        let mut task = Task {
            loc: node.loc.clone(),
            loop_var: "item".into(),
            role: ctx.role.clone(),
            ..Task::default()
        };
        // Find the op key first.
        let mut op_keys: Vec<(&Node, &Node, &'static OpSchema)> = Vec::new();
        let mut unknown: Vec<&Node> = Vec::new();
        for (k, v) in entries {
            let name = k.key_text();
            if TASK_KEYS.contains(&name.as_str()) {
                continue;
            }
            match crate::ops::registry::schema(&name) {
                Some(s) => op_keys.push((k, v, s)),
                None => unknown.push(k),
            }
        }
        if op_keys.len() > 1 {
            let names: Vec<String> = op_keys.iter().map(|(k, _, _)| k.key_text()).collect();
            self.problem(
                Problem::error(
                    &op_keys[1].0.loc,
                    format!(
                        "a task has exactly one op, this one has {}: {}",
                        names.len(),
                        names.join(", ")
                    ),
                )
                .label("second op")
                .hint("split it into one task per op"),
            );
        }
        let first_op = op_keys.first().map(|(_, _, s)| *s);
        let mut misplaced_params = false;
        for k in unknown {
            let name = k.key_text();
            if let Some(s) = first_op
                && s.param(&name).is_some()
            {
                self.problem(
                    Problem::error(
                        &k.loc,
                        format!("`{name}` is a parameter of `{}`, not a task key", s.name),
                    )
                    .label("not a task key")
                    .hint(format!("indent it under `{}:`", s.name)),
                );
                misplaced_params = true;
                continue;
            }
            let kw_suggestion = crate::suggest::suggest(&name, TASK_KEYS.iter().copied());
            let op_suggestion =
                crate::suggest::suggest(schema::canonical(&name), crate::ops::registry::op_names());
            let (what, hint) = match (kw_suggestion, op_suggestion, first_op.is_some()) {
                (Some(s), _, true) | (Some(s), None, false) => {
                    ("unknown task key", Some(format!("did you mean `{s}`?")))
                }
                (_, Some(s), false) => ("unknown op", Some(format!("did you mean `{s}`?"))),
                (None, _, true) => (
                    "unknown task key",
                    Some(format!("task keys are: {}", TASK_KEYS.join(", "))),
                ),
                (_, _, false) => (
                    "unknown op",
                    Some("`ferry check` knows the ops listed in the README".to_string()),
                ),
            };
            self.problem(
                Problem::error(&k.loc, format!("{what} `{name}`"))
                    .label(if what == "unknown op" {
                        "unknown op"
                    } else {
                        "unknown key"
                    })
                    .hint_opt(hint),
            );
        }
        let Some((op_key, op_val, op_schema)) = op_keys.first().copied() else {
            if entries
                .iter()
                .all(|(k, _)| TASK_KEYS.contains(&k.key_text().as_str()))
            {
                self.problem(
                    Problem::error(&node.loc, "task has no op")
                        .label("this task")
                        .hint("add one op, e.g. `command: ...`, `copy: ...`, `debug: ...`"),
                );
            }
            return None;
        };
        task.op = op_schema.name.to_string();
        let ctx = &{
            let mut c = Self::with_local_vars(ctx, node);
            let lc = node.get("loop_control");
            let loop_var = lc
                .and_then(|lc| lc.get("loop_var"))
                .and_then(Node::as_str)
                .unwrap_or("item");
            if node.get("loop").is_some() || node.get("with_items").is_some() {
                let mut l = c.local.as_ref().clone();
                l.push(loop_var.to_string());
                if let Some(iv) = lc.and_then(|lc| lc.get("index_var")).and_then(Node::as_str) {
                    l.push(iv.to_string());
                }
                l.push("ansible_loop".into());
                c.local = Arc::new(l);
            }
            c
        };
        // Arguments: the op's value, then `args:` under it.
        let mut arg_locs: HashMap<String, SourceLoc> = HashMap::new();
        let mut args = self.op_args(op_key, op_val, op_schema, &mut arg_locs);
        if let Some((ak, av)) = node.get_entry("args") {
            match av.as_map() {
                Some(entries) => {
                    for (k, v) in entries {
                        let name = k.key_text();
                        arg_locs
                            .entry(name.clone())
                            .or_insert_with(|| k.loc.clone());
                        args.entry(name).or_insert_with(|| v.to_value());
                    }
                }
                None => self.wrong_type(ak, av, "a mapping of arguments"),
            }
        }
        let problems = op_schema.validate(&args);
        let declared_ok = problems.is_empty() && !misplaced_params;
        for (k, problem) in problems {
            // Parameters written at task level were reported already; do not
            // report them again as missing.
            if misplaced_params
                && matches!(
                    problem,
                    ArgProblem::MissingRequired { .. } | ArgProblem::MissingOneOf { .. }
                )
            {
                continue;
            }
            let loc = k
                .as_ref()
                .and_then(|k| arg_locs.get(k).cloned())
                .unwrap_or_else(|| op_key.loc.clone());
            let mut p = Problem::error(&loc, format!("{}: {problem}", op_schema.name));
            p = match &problem {
                ArgProblem::Unknown { suggestion, .. } => {
                    p.label("unsupported").hint(match suggestion {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!(
                            "`{}` takes: {}",
                            op_schema.name,
                            op_schema
                                .params
                                .iter()
                                .map(|p| p.name)
                                .filter(|n| *n != "_raw_params")
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    })
                }
                ArgProblem::MissingRequired { name } => {
                    p.label("in this op").hint(format!("add `{name}:`"))
                }
                ArgProblem::MissingOneOf { names } => p
                    .label("in this op")
                    .hint(format!("add one of: {}", names.join(", "))),
                ArgProblem::MutuallyExclusive { .. } => {
                    p.label("conflicts").hint("keep only one of them")
                }
                ArgProblem::WrongType { .. } => p.label("wrong type"),
                ArgProblem::BadChoice { .. } => p.label("not a valid choice"),
                ArgProblem::NoFreeForm => p.label("free-form string").hint(format!(
                    "write the arguments as `key: value` under `{}:`",
                    op_schema.name
                )),
            };
            self.problem(p);
        }
        task.args = op_schema.canonical_args(&args);
        // Rules that depend on a value: the op's own parser, when every value is a literal.
        if declared_ok
            && !task.args.values().any(has_template)
            && let Some(op) = crate::ops::lookup(&task.op)
            && let Err(e) = op.check_args(&task.args)
        {
            self.problem(
                Problem::error(&op_key.loc, e.to_string())
                    .label("in this op")
                    .hint("fix the arguments: `ferry run` refuses this task with the same words"),
            );
        }
        // Template uses in the arguments.
        match &op_val.kind {
            NodeKind::Str(s) => self.string_uses(op_val, s, ctx),
            _ => self.template_uses(op_val, ctx),
        }
        if let Some(av) = node.get("args") {
            self.template_uses(av, ctx);
        }
        // set_fact/register/include_vars define names for later tasks.
        if task.op == "set_fact" {
            self.out
                .runtime_vars
                .extend(task.args.keys().filter(|k| *k != "cacheable").cloned());
        }
        if task.op == "include_vars" {
            match task.args.get("name").and_then(Value::as_str) {
                Some(n) => {
                    self.out.runtime_vars.insert(n.to_string());
                }
                None => match include_vars_keys(&task, ctx) {
                    Some(keys) => self.out.runtime_vars.extend(keys),
                    None => {
                        // Names unknown until run time, for this play and every later one.
                        self.vars_open = true;
                        let i = self.play_index;
                        if let Some(scope) = self.out.play_scopes.get_mut(i) {
                            scope.open = true;
                        }
                    }
                },
            }
        }
        if task.op == "add_host" {
            // The host and its groups exist from then on; its other keys are host vars.
            for (k, v) in &task.args {
                match k.as_str() {
                    "name" => self.out.runtime_hosts.extend(
                        v.as_str()
                            .map(|n| n.split(':').next().unwrap_or(n).to_string()),
                    ),
                    "groups" => match v {
                        Value::Array(a) => self
                            .out
                            .runtime_hosts
                            .extend(a.iter().filter_map(Value::as_str).map(str::to_string)),
                        Value::String(s) => self
                            .out
                            .runtime_hosts
                            .extend(s.split(',').map(|g| g.trim().to_string())),
                        _ => {}
                    },
                    "_raw_params" => {}
                    _ => {
                        self.out.runtime_vars.insert(k.clone());
                    }
                }
            }
        }
        if task.op == "group_by" {
            for k in ["key", "parents"] {
                match task.args.get(k) {
                    Some(Value::String(s)) => self.out.runtime_hosts.push(s.replace(' ', "-")),
                    Some(Value::Array(a)) => self.out.runtime_hosts.extend(
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(|s| s.replace(' ', "-")),
                    ),
                    _ => {}
                }
            }
        }
        for (k, v) in entries {
            let key = k.key_text();
            if std::ptr::eq(k, op_key) || key == "args" {
                continue;
            }
            if !TASK_KEYS.contains(&key.as_str()) {
                continue;
            }
            if self.keyword(k, v, &mut task.keywords, ctx) {
                continue;
            }
            match key.as_str() {
                "name" => {
                    task.name = self.scalar_string(k, v);
                    self.template_uses(v, ctx);
                }
                "loop" | "with_items" => {
                    if node.get("loop").is_some()
                        && node.get("with_items").is_some()
                        && key == "with_items"
                    {
                        self.problem(
                            Problem::error(&k.loc, "`loop` and `with_items` together")
                                .label("second loop")
                                .hint("keep one of them"),
                        );
                    }
                    match &v.kind {
                        NodeKind::Seq(_) | NodeKind::Str(_) => {
                            task.loop_ = Some(v.to_value());
                            if let NodeKind::Str(s) = &v.kind {
                                // Ansible takes a bare name in with_items as a variable.
                                let s2 = if template::is_template(s) {
                                    s.clone()
                                } else {
                                    format!("{{{{ {s} }}}}")
                                };
                                if key == "with_items" && !template::is_template(s) {
                                    task.loop_ = Some(Value::String(s2.clone()));
                                }
                                self.string_uses(
                                    v,
                                    &s2,
                                    &TaskCtx {
                                        local: Arc::new(
                                            ctx.local
                                                .iter()
                                                .filter(|n| *n != "item")
                                                .cloned()
                                                .collect(),
                                        ),
                                        ..ctx.clone()
                                    },
                                );
                            } else {
                                self.template_uses(v, ctx);
                            }
                        }
                        _ => self.wrong_type(k, v, "a list or a template that renders to one"),
                    }
                }
                "loop_control" => match v.as_map() {
                    Some(lc) => {
                        for (lk, lv) in lc {
                            match lk.key_text().as_str() {
                                "loop_var" => match lv.as_str() {
                                    Some(s) if is_identifier(s) => task.loop_var = s.to_string(),
                                    _ => self.wrong_type(lk, lv, "a variable name"),
                                },
                                "label" => {
                                    task.loop_label = self.scalar_string(lk, lv);
                                    self.template_uses(lv, ctx);
                                }
                                "index_var" => match lv.as_str() {
                                    Some(s) if is_identifier(s) => {
                                        task.loop_index_var = Some(s.to_string())
                                    }
                                    _ => self.wrong_type(lk, lv, "a variable name"),
                                },
                                "extended" => {
                                    task.loop_extended = self.boolean(lk, lv).unwrap_or(false)
                                }
                                "extended_allitems" => {
                                    task.loop_extended_allitems = self.boolean(lk, lv)
                                }
                                "pause" => match &lv.kind {
                                    NodeKind::Int(n) if *n >= 0 => {
                                        task.loop_pause = Some(lv.to_value())
                                    }
                                    NodeKind::Float(f) if *f >= 0.0 => {
                                        task.loop_pause = Some(lv.to_value())
                                    }
                                    NodeKind::Str(s) if template::is_template(s) => {
                                        self.template_uses(lv, ctx);
                                        task.loop_pause = Some(lv.to_value());
                                    }
                                    _ => self.wrong_type(
                                        lk,
                                        lv,
                                        "a number of seconds (or a template giving one)",
                                    ),
                                },
                                "break_when" => task.loop_break_when = self.conditions(lk, lv, ctx),
                                _ => self.unknown_key(lk, LOOP_CONTROL_KEYS, "loop_control"),
                            }
                        }
                    }
                    None => self.wrong_type(k, v, "a mapping"),
                },
                "register" => match v.as_str() {
                    Some(s) if is_identifier(s) => {
                        task.register = Some(s.to_string());
                        self.out.runtime_vars.insert(s.to_string());
                    }
                    _ => self.problem(
                        Problem::error(&v.loc, "`register` takes a variable name")
                            .label("not a variable name")
                            .hint("letters, digits and `_`, not starting with a digit"),
                    ),
                },
                "notify" => {
                    let names = self.string_list(k, v);
                    let locs: Vec<SourceLoc> = match &v.kind {
                        NodeKind::Seq(items) => items.iter().map(|i| i.loc.clone()).collect(),
                        _ => vec![v.loc.clone()],
                    };
                    if let Some(state) = self.play_state.as_mut() {
                        for (n, l) in names.iter().zip(locs) {
                            state.notifies.push((n.clone(), l));
                        }
                    }
                    task.notify = names;
                }
                "listen" => {
                    if !ctx.handler {
                        self.problem(
                            Problem::error(&k.loc, "`listen` is for handlers only")
                                .label("in a task")
                                .hint("move this task under `handlers:`"),
                        );
                    }
                    task.listen = self.string_list(k, v);
                }
                "changed_when" => task.changed_when = self.conditions(k, v, ctx),
                "failed_when" => task.failed_when = self.conditions(k, v, ctx),
                "until" => {
                    let c = self.conditions(k, v, ctx);
                    task.until = Some(c.join(" and "));
                    if c.len() > 1 {
                        task.until = Some(
                            c.iter()
                                .map(|c| format!("({c})"))
                                .collect::<Vec<_>>()
                                .join(" and "),
                        );
                    }
                }
                "retries" => match v.as_i64() {
                    Some(n) if n >= 0 => task.retries = Some(n as u32),
                    _ => self.wrong_type(k, v, "a non-negative integer"),
                },
                "delay" => match v.as_f64() {
                    Some(f) if f >= 0.0 => task.delay = Some(f),
                    _ => self.wrong_type(k, v, "a number of seconds"),
                },
                _ => {}
            }
        }
        if ctx.handler {
            if task.name.is_none() && task.listen.is_empty() {
                self.problem(
                    Problem::error(&node.loc, "handler without `name` or `listen`")
                        .label("this handler")
                        .hint("give it a `name:` that tasks can `notify:`"),
                );
            }
            if let Some(state) = self.play_state.as_mut() {
                for n in handler_names(&task) {
                    state.handler_names.insert(n);
                }
            }
        }
        // Files the op reads on the controller.
        self.check_src(&task, &arg_locs, op_key, ctx);
        Some(task)
    }

    /// The op's arguments from its value: a mapping, a free-form string or nothing.
    pub(super) fn op_args(
        &mut self,
        op_key: &Node,
        v: &Node,
        s: &OpSchema,
        locs: &mut HashMap<String, SourceLoc>,
    ) -> Vars {
        let mut args = Vars::new();
        match &v.kind {
            NodeKind::Null => {}
            NodeKind::Map(entries) => {
                for (k, val) in entries {
                    let name = k.key_text();
                    locs.insert(name.clone(), k.loc.clone());
                    args.insert(name, val.to_value());
                }
            }
            NodeKind::Str(text) => {
                let tokens = split_free_form(text);
                let mut raw: Vec<&str> = Vec::new();
                for tok in &tokens {
                    let kv = tok
                        .trim_end_matches('\n')
                        .split_once('=')
                        .filter(|(k, _)| is_identifier(k));
                    match kv {
                        Some((k, val))
                            if !s.free_form || (s.param(k).is_some() && k != "_raw_params") =>
                        {
                            locs.insert(k.to_string(), v.loc.clone());
                            args.insert(k.to_string(), Value::String(unquote(val)));
                        }
                        _ if s.free_form => raw.push(tok),
                        _ => {
                            self.problem(
                                Problem::error(
                                    &v.loc,
                                    format!(
                                        "{}: free-form argument `{tok}` is not `key=value`",
                                        s.name
                                    ),
                                )
                                .label("not key=value")
                                .hint(format!(
                                    "write `key=value` pairs or a mapping under `{}:`",
                                    s.name
                                )),
                            );
                        }
                    }
                }
                if s.free_form && !raw.is_empty() {
                    locs.insert("_raw_params".into(), v.loc.clone());
                    args.insert("_raw_params".into(), Value::String(join_free_form(&raw)));
                }
            }
            NodeKind::Bool(_) | NodeKind::Int(_) | NodeKind::Float(_) if s.free_form => {
                args.insert(
                    "_raw_params".into(),
                    Value::String(v.scalar_text().unwrap_or_default()),
                );
            }
            _ => self.problem(
                Problem::error(
                    &v.loc,
                    format!(
                        "arguments of `{}` are a mapping or `key=value` text, found {}",
                        s.name,
                        v.type_name()
                    ),
                )
                .label("not arguments")
                .hint(format!(
                    "write the arguments as `key: value` lines under `{}:`",
                    op_key.key_text()
                )),
            ),
        }
        args
    }
}

/// Whether a value holds a template anywhere (its final value is known only at run time).
fn has_template(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => crate::template::is_template(s),
        serde_json::Value::Array(a) => a.iter().any(has_template),
        serde_json::Value::Object(m) => m.values().any(has_template),
        _ => false,
    }
}
