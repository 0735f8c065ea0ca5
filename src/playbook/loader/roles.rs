//! Roles: `roles:` entries, where a role is found, and its defaults, vars, tasks and handlers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::playbook::diag::Problem;
use crate::playbook::model::*;
use crate::yaml::{Node, NodeKind};

use super::plays::{flatten_tasks, handler_names};
use super::{Loader, TaskCtx, is_identifier};

impl Loader {
    // ----- roles

    pub(super) fn roles(&mut self, v: &Node, ctx: &TaskCtx, play: &mut Play) {
        let Some(items) = v.as_seq() else {
            if !v.is_null() {
                self.problem(
                    Problem::error(
                        &v.loc,
                        format!("`roles` is a list, found {}", v.type_name()),
                    )
                    .label("not a list"),
                );
            }
            return;
        };
        for item in items {
            let (name_node, params, keywords) = match &item.kind {
                NodeKind::Str(_) => (item, Vars::new(), TaskKeywords::default()),
                NodeKind::Map(entries) => {
                    let Some(n) = item.get("role").or_else(|| item.get("name")) else {
                        self.problem(
                            Problem::error(&item.loc, "role entry without `role:`")
                                .label("which role?")
                                .hint("write `- role: NAME` or just `- NAME`"),
                        );
                        continue;
                    };
                    let mut params = Vars::new();
                    let mut kw = TaskKeywords::default();
                    for (k, val) in entries {
                        match k.key_text().as_str() {
                            "role" | "name" => {}
                            "vars" => params.extend(self.vars_map(k, val)),
                            "tags" => kw.tags = self.tags(k, val),
                            "when" => kw.when = self.conditions(k, val, ctx),
                            "become" => kw.become_ = self.boolean(k, val),
                            "become_user" => kw.become_user = self.scalar_string(k, val),
                            other => {
                                if is_identifier(other) {
                                    params.insert(other.to_string(), val.to_value());
                                } else {
                                    self.unknown_key(
                                        k,
                                        &["role", "vars", "tags", "when", "become", "become_user"],
                                        "role",
                                    );
                                }
                            }
                        }
                    }
                    (n, params, kw)
                }
                _ => {
                    self.problem(
                        Problem::error(&item.loc, "a role entry is a name or a mapping")
                            .label("not a role"),
                    );
                    continue;
                }
            };
            let Some(name) = name_node.as_str() else {
                self.problem(
                    Problem::error(&name_node.loc, "a role name is a string").label("not a name"),
                );
                continue;
            };
            let Some((role, tasks, handlers)) = self.load_role(name, &name_node.loc, ctx, params)
            else {
                continue;
            };
            // Every task of the play sees the role's defaults and vars (Ansible's
            // public roles), so the check knows their names for the whole play.
            let scope = &mut self.out.play_scopes[self.play_index];
            scope.vars.extend(role.defaults.keys().cloned());
            scope.vars.extend(role.vars.keys().cloned());
            play.roles.push(role.clone());
            let has_kw = !keywords.when.is_empty()
                || !keywords.tags.is_empty()
                || keywords.become_.is_some()
                || keywords.become_user.is_some();
            if has_kw {
                play.role_tasks.push(TaskItem::Block(Block {
                    name: Some(format!("role {}", role.name)),
                    block: tasks,
                    keywords,
                    loc: name_node.loc.clone(),
                    ..Block::default()
                }));
            } else {
                play.role_tasks.extend(tasks);
            }
            if let Some(state) = self.play_state.as_mut() {
                for h in &handlers {
                    state.handler_names.extend(handler_names(h));
                }
            }
            play.handlers.extend(handlers);
        }
    }

    pub(super) fn role_dir(&self, name: &str, play_dir: &Path) -> Option<PathBuf> {
        [play_dir.join("roles").join(name), play_dir.join(name)]
            .into_iter()
            .find(|p| {
                p.join("tasks").is_dir()
                    || p.join("handlers").is_dir()
                    || p.join("defaults").is_dir()
                    || p.join("vars").is_dir()
            })
    }

    pub(super) fn role_file(dir: &Path, sub: &str) -> Option<PathBuf> {
        ["main.yml", "main.yaml"]
            .iter()
            .map(|f| dir.join(sub).join(f))
            .find(|p| p.is_file())
    }

    #[allow(clippy::type_complexity)]
    pub(super) fn load_role(
        &mut self,
        name: &str,
        loc: &SourceLoc,
        ctx: &TaskCtx,
        params: Vars,
    ) -> Option<(Arc<RoleContext>, Vec<TaskItem>, Vec<Task>)> {
        let Some(dir) = self.role_dir(name, &ctx.play_dir) else {
            self.problem(
                Problem::error(loc, format!("role `{name}` not found"))
                    .label("no such role")
                    .hint(format!(
                        "roles are looked up in {}/roles/{name} and {}/{name}",
                        ctx.play_dir.display(),
                        ctx.play_dir.display()
                    )),
            );
            return None;
        };
        let mut var_docs: Vec<Node> = Vec::new();
        let mut load_vars = |this: &mut Self, sub: &str| -> Vars {
            match Self::role_file(&dir, sub).and_then(|p| this.parse_one(&p, Some(loc))) {
                Some(doc) if doc.as_map().is_some() => {
                    let vars = this.vars_map(&doc, &doc);
                    var_docs.push(doc);
                    vars
                }
                Some(doc) if !doc.is_null() => {
                    this.problem(
                        Problem::error(
                            &doc.loc,
                            format!("role {sub} file is a mapping, found {}", doc.type_name()),
                        )
                        .label("not a mapping"),
                    );
                    Vars::new()
                }
                _ => Vars::new(),
            }
        };
        let defaults = load_vars(self, "defaults");
        let vars = load_vars(self, "vars");
        let mut local: Vec<String> = ctx.local.as_ref().clone();
        local.extend(defaults.keys().cloned());
        local.extend(vars.keys().cloned());
        local.extend(params.keys().cloned());
        local.extend(["role_path".to_string(), "role_name".to_string()]);
        let role = Arc::new(RoleContext {
            name: name.to_string(),
            dir: dir.clone(),
            defaults,
            vars,
            params,
        });
        let rctx = TaskCtx {
            dir: dir.join("tasks"),
            role: Some(role.clone()),
            handler: false,
            local: Arc::new(local),
            play_dir: ctx.play_dir.clone(),
        };
        // Defaults and vars are templates too: what their values need, the
        // role's tasks and templates need when they use them.
        for doc in &var_docs {
            for (_, v) in doc.as_map().unwrap_or(&[]) {
                self.template_uses(v, &rctx);
            }
        }
        let mut tasks = Vec::new();
        if let Some(p) = Self::role_file(&dir, "tasks") {
            tasks = self.task_file(&p, loc, &rctx);
        }
        let mut handlers = Vec::new();
        if let Some(p) = Self::role_file(&dir, "handlers") {
            let hctx = TaskCtx {
                dir: dir.join("handlers"),
                handler: true,
                ..rctx.clone()
            };
            let hs = self.task_file(&p, loc, &hctx);
            flatten_tasks(hs, &mut handlers);
        }
        Some((role, tasks, handlers))
    }
}
