//! Playbooks and plays: `import_playbook`, a play's keys, `vars_files`, handlers.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::ops::schema;
use crate::playbook::diag::Problem;
use crate::playbook::model::*;
use crate::template;
use crate::yaml::{Node, NodeKind};

use super::keywords::PLAY_KEYS;
use super::{Loader, PlayScope, PlayState, TaskCtx, canon, file_name};

impl Loader {
    pub(super) fn load_playbook(
        &mut self,
        path: &Path,
        from: Option<&SourceLoc>,
    ) -> Option<Playbook> {
        let key = canon(path);
        if let Some(pos) = self.import_stack.iter().position(|p| *p == key) {
            let chain: Vec<String> = self.import_stack[pos..]
                .iter()
                .chain(std::iter::once(&key))
                .map(|p| file_name(p))
                .collect();
            if let Some(loc) = from {
                self.problem(
                    Problem::error(
                        loc,
                        format!("circular import_playbook: {}", chain.join(" -> ")),
                    )
                    .label("imports a playbook that is already being imported")
                    .hint("remove the import that closes the cycle"),
                );
            }
            return None;
        }
        let root = self.parse_one(path, from)?;
        self.import_stack.push(key);
        let base_dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let mut plays = Vec::new();
        match &root.kind {
            NodeKind::Seq(items) => {
                for item in items {
                    self.load_play_or_import(item, &base_dir, &mut plays);
                }
            }
            NodeKind::Null => {}
            _ => self.problem(
                Problem::error(
                    &root.loc,
                    format!("a playbook is a list of plays, found {}", root.type_name()),
                )
                .label("expected `- hosts: ...`")
                .hint("start each play with `- ` at the left margin"),
            ),
        }
        self.import_stack.pop();
        Some(Playbook {
            path: path.to_path_buf(),
            plays,
        })
    }

    pub(super) fn load_play_or_import(
        &mut self,
        node: &Node,
        base_dir: &Path,
        plays: &mut Vec<Play>,
    ) {
        let Some(entries) = node.as_map() else {
            self.problem(
                Problem::error(
                    &node.loc,
                    format!("a play is a mapping, found {}", node.type_name()),
                )
                .label("not a play"),
            );
            return;
        };
        let import = entries
            .iter()
            .find(|(k, _)| matches!(k.as_str().map(schema::canonical), Some("import_playbook")));
        if let Some((k, v)) = import {
            for (other, _) in entries {
                let name = other.key_text();
                if name != k.key_text()
                    && name != "name"
                    && name != "vars"
                    && name != "when"
                    && name != "tags"
                {
                    self.problem(
                        Problem::error(
                            &other.loc,
                            format!("unknown key `{name}` on import_playbook"),
                        )
                        .label("not allowed here")
                        .hint("an import_playbook entry takes `name` and the file name only"),
                    );
                }
            }
            let Some(file) = v.as_str() else {
                self.problem(
                    Problem::error(&v.loc, "import_playbook takes a file name")
                        .label("not a file name"),
                );
                return;
            };
            if template::is_template(file) {
                self.problem(
                    Problem::error(
                        &v.loc,
                        "import_playbook needs a file name without templates",
                    )
                    .label("templated")
                    .hint("imports are resolved before any variable exists"),
                );
                return;
            }
            let target = base_dir.join(file);
            if !target.exists() {
                self.problem(
                    Problem::no_such_file(
                        &v.loc,
                        format!("imported playbook {} does not exist", target.display()),
                    )
                    .hint("file names are relative to the importing playbook's directory"),
                );
                return;
            }
            if let Some(pb) = self.load_playbook(&target, Some(&v.loc)) {
                plays.extend(pb.plays);
            }
            return;
        }
        if let Some(play) = self.load_play(node, base_dir) {
            plays.push(play);
        }
    }

    pub(super) fn load_play(&mut self, node: &Node, base_dir: &Path) -> Option<Play> {
        let entries = node.as_map()?;
        let play_index = self.out.play_scopes.len();
        self.play_index = play_index;
        self.out.play_scopes.push(PlayScope {
            open: self.vars_open,
            ..PlayScope::default()
        });
        self.play_state = Some(PlayState {
            handler_names: HashSet::new(),
            role_handlers: Vec::new(),
            notifies: Vec::new(),
        });
        let mut play = Play {
            base_dir: base_dir.to_path_buf(),
            loc: node.loc.clone(),
            ..Play::default()
        };
        let ctx = TaskCtx {
            dir: base_dir.to_path_buf(),
            role: None,
            handler: false,
            local: Arc::new(Vec::new()),
            play_dir: base_dir.to_path_buf(),
        };
        let mut saw_hosts = false;
        let mut sections: Vec<(&str, &Node)> = Vec::new();
        for (k, v) in entries {
            let key = k.key_text();
            match key.as_str() {
                "name" => {
                    play.name = self.scalar_string(k, v);
                    self.template_uses(v, &ctx);
                }
                "hosts" => {
                    saw_hosts = true;
                    let pattern = match &v.kind {
                        NodeKind::Seq(items) => Some(
                            items
                                .iter()
                                .filter_map(|i| i.scalar_text())
                                .collect::<Vec<_>>()
                                .join(":"),
                        ),
                        _ => self.scalar_string(k, v),
                    };
                    if let Some(p) = pattern {
                        self.out.host_patterns.push((p.clone(), v.loc.clone()));
                        self.out.play_scopes[play_index].hosts = Some(p.clone());
                        play.hosts = p;
                    }
                }
                "gather_facts" => play.gather_facts = self.boolean(k, v),
                "vars" => {
                    play.vars = self.vars_map(k, v);
                    let scope = &mut self.out.play_scopes[play_index];
                    scope.vars.extend(play.vars.keys().cloned());
                    for (_, val) in v.as_map().unwrap_or(&[]) {
                        self.template_uses(val, &ctx);
                    }
                }
                "vars_files" => play.vars_files = self.vars_files(k, v, base_dir),
                "become" => play.become_ = self.boolean(k, v),
                "become_user" => play.become_user = self.scalar_string(k, v),
                "serial" => {
                    play.serial = match &v.kind {
                        NodeKind::Seq(items) => items.iter().map(Node::to_value).collect(),
                        NodeKind::Int(_) | NodeKind::Str(_) => vec![v.to_value()],
                        _ => {
                            self.wrong_type(k, v, "a number, a percentage or a list of them");
                            Vec::new()
                        }
                    }
                }
                "max_fail_percentage" => match v.as_f64() {
                    Some(f) => play.max_fail_percentage = Some(f),
                    None => self.wrong_type(k, v, "a number"),
                },
                "any_errors_fatal" => play.any_errors_fatal = self.boolean(k, v).unwrap_or(false),
                "check_mode" => play.check_mode = self.boolean(k, v),
                "environment" => {
                    play.environment = self.vars_env(k, v);
                    self.template_uses(v, &ctx);
                }
                "tags" => play.tags = self.tags(k, v),
                "pre_tasks" | "tasks" | "post_tasks" | "handlers" | "roles" => sections.push((
                    PLAY_KEYS
                        .iter()
                        .find(|x| **x == key)
                        .copied()
                        .unwrap_or("tasks"),
                    v,
                )),
                "experiment" => {
                    play.experiment = Some(v.to_value());
                    play.experiment_loc = Some(v.loc.clone());
                }
                _ => self.unknown_key(k, PLAY_KEYS, "play"),
            }
        }
        let vf_keys: Vec<String> = play
            .vars_files
            .iter()
            .flat_map(|(_, v)| v.keys().cloned())
            .collect();
        self.out.play_scopes[play_index].vars.extend(vf_keys);
        if !saw_hosts && play.experiment.is_none() {
            self.problem(
                Problem::error(&node.loc, "play has no `hosts:`")
                    .label("this play")
                    .hint("add `hosts: all` (or a group name from the inventory)"),
            );
        }
        // Roles first: their variables are in scope for the play's tasks.
        for (_, v) in sections.iter().filter(|(s, _)| *s == "roles") {
            self.roles(v, &ctx, &mut play);
        }
        for (section, v) in sections {
            match section {
                "pre_tasks" => play.pre_tasks = self.task_list(v, &ctx),
                "tasks" => play.tasks = self.task_list(v, &ctx),
                "post_tasks" => play.post_tasks = self.task_list(v, &ctx),
                "handlers" => {
                    let hctx = TaskCtx {
                        handler: true,
                        ..ctx.clone()
                    };
                    let hs = self.task_list(v, &hctx);
                    flatten_tasks(hs, &mut play.handlers);
                }
                _ => {}
            }
        }
        if play.experiment.is_some()
            && (!play.tasks.is_empty() || !play.pre_tasks.is_empty() || !play.post_tasks.is_empty())
            && let Some(loc) = play.experiment_loc.clone()
        {
            self.problem(
                Problem::error(
                    &loc,
                    "a play carries either `experiment:` or tasks, not both",
                )
                .label("experiment here")
                .hint("move the tasks into a play of their own before this one"),
            );
        }
        // Handlers notified but not defined.
        if let Some(state) = self.play_state.take() {
            play.handlers.extend(state.role_handlers);
            for (name, loc) in state.notifies {
                if template::is_template(&name) || state.handler_names.contains(&name) {
                    continue;
                }
                let suggestion =
                    crate::suggest::suggest(&name, state.handler_names.iter().map(String::as_str));
                let p = Problem::error(
                    &loc,
                    format!("notified handler `{name}` is not defined in this play"),
                )
                .label("no handler has this name or listens to it");
                let p = match suggestion {
                    Some(s) => p.hint(format!("did you mean `{s}`?")),
                    None => p.hint("define it under `handlers:` (by `name:` or `listen:`)"),
                };
                self.problem(p);
            }
        }
        Some(play)
    }

    pub(super) fn vars_files(
        &mut self,
        k: &Node,
        v: &Node,
        base_dir: &Path,
    ) -> Vec<(PathBuf, Vars)> {
        let items: Vec<&Node> = match &v.kind {
            NodeKind::Seq(items) => items.iter().collect(),
            NodeKind::Str(_) => vec![v],
            _ => {
                self.wrong_type(k, v, "a list of file names");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for i in items {
            let Some(name) = i.as_str() else {
                // Ansible's list-of-alternatives form: take it as opaque.
                self.out.play_scopes[self.play_index].open = true;
                continue;
            };
            if template::is_template(name) {
                self.out.play_scopes[self.play_index].open = true;
                continue;
            }
            let path = base_dir.join(name);
            if !path.exists() {
                self.problem(
                    Problem::no_such_file(
                        &i.loc,
                        format!("vars file {} does not exist", path.display()),
                    )
                    .hint("vars_files are relative to the playbook's directory"),
                );
                continue;
            }
            if let Some(doc) = self.parse_one(&path, Some(&i.loc)) {
                let vars = match &doc.kind {
                    NodeKind::Null => Vars::new(),
                    NodeKind::Map(_) => self.vars_map(&doc, &doc),
                    _ => {
                        self.problem(
                            Problem::error(
                                &doc.loc,
                                format!("a vars file is a mapping, found {}", doc.type_name()),
                            )
                            .label("not a mapping"),
                        );
                        Vars::new()
                    }
                };
                out.push((path, vars));
            }
        }
        out
    }
}

pub(super) fn handler_names(h: &Task) -> Vec<String> {
    let mut out = h.listen.clone();
    if let Some(n) = &h.name {
        out.push(n.clone());
        if let Some(r) = &h.role {
            out.push(format!("{} : {}", r.name, n));
        }
    }
    out
}

pub(super) fn flatten_tasks(items: Vec<TaskItem>, out: &mut Vec<Task>) {
    for i in items {
        match i {
            TaskItem::Task(t) => out.push(t),
            TaskItem::Block(b) => {
                flatten_tasks(b.block, out);
                flatten_tasks(b.rescue, out);
                flatten_tasks(b.always, out);
            }
        }
    }
}
