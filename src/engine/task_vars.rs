//! Variable assembly: the variables one task sees on one host, magic variables included.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::Value;

use crate::playbook::{Task, TaskKeywords, Vars};
use crate::vars::{Layer, Scope, VarLayers};

use super::Engine;
use super::play_run::PlayRun;
use super::render::TemplateRender;
use super::var_use::task_mentions;

impl Engine {
    /// The renderer for host `h`'s tasks: it adds the magic variables every host of the
    /// batch shares (`groups`, the play hosts; see [`PlayRun::render`]) to the view
    /// [`task_vars`](Self::task_vars) builds.
    pub(super) fn task_render(&self, pr: &PlayRun<'_>, h: usize) -> Arc<TemplateRender> {
        pr.render(h, self.inv_epoch.load(Ordering::SeqCst), || {
            self.hosts.groups()
        })
    }

    /// The task's variable view: its layers stacked by `crate::vars`' precedence (low to
    /// high: role defaults, inventory, play vars, vars_files, role vars, block and task
    /// vars, include_vars, set_fact/registered, role params, extra vars), then magic
    /// variables, which nobody overrides. The magic variables that are the same on every
    /// host (`groups`, the play hosts) are not in it: [`task_render`](Self::task_render)
    /// shares them, so the view's size does not grow with the number of hosts.
    pub(super) fn task_vars(
        &self,
        pr: &PlayRun<'_>,
        h: usize,
        t: &Task,
        kw: &TaskKeywords,
    ) -> Vars {
        let play = pr.play;
        let host = &pr.names[h];
        let mut layers = VarLayers::new();
        let mut layer = |layer: Layer, origin: &str, vars: Vars| {
            layers.push(Arc::new(Scope::plain(layer, origin, vars)));
        };
        // The play's roles' defaults and vars are seen by every task of the play
        // (Ansible's public roles); the task's own role comes last, so it wins.
        let roles = || play.roles.iter().chain(t.role.iter());
        for r in roles() {
            let role = r.name.clone();
            layer(
                Layer::RoleDefaults { role },
                "role defaults",
                r.defaults.clone(),
            );
        }
        {
            let mut base = pr.base[h].lock().unwrap();
            let epoch = self.inv_epoch.load(Ordering::SeqCst);
            if base.0 != epoch {
                *base = (epoch, self.hosts.host_vars(host));
            }
            layer(Layer::InventoryHost, "inventory", base.1.clone());
        }
        layer(Layer::PlayVars, "play vars", play.vars.clone());
        for (path, f) in &play.vars_files {
            layer(Layer::PlayVarsFile, &path.display().to_string(), f.clone());
        }
        for r in roles() {
            let role = r.name.clone();
            layer(Layer::RoleVars { role }, "role vars", r.vars.clone());
        }
        layer(Layer::TaskVars, "block and task vars", kw.vars.clone());
        if let Some(f) = self.included.lock().unwrap().get(host) {
            layer(Layer::IncludeVars, "include_vars", f.clone());
        }
        let mut gained: Vec<String> = Vec::new();
        if let Some(f) = self.facts.lock().unwrap().get(host) {
            layer(Layer::SetFact, "set_fact / register", f.clone());
            gained = f.keys().cloned().collect();
        }
        if let Some(r) = &t.role {
            let mut params = r.params.clone();
            params.insert("role_name".into(), r.name.clone().into());
            params.insert("role_path".into(), absolute_dir(&r.dir).into());
            let role = r.name.clone();
            layer(Layer::RoleParams { role }, "role params", params);
        }
        layer(Layer::ExtraVars, "-e", self.opts.extra_vars.clone());
        let mut v = layers.flatten();
        // Registered results, host facts and set_fact values are host output or
        // text rendered once already: data from here on, never a template
        // (unless a role param or an extra var of the same name wins).
        for name in gained {
            let overridden = self.opts.extra_vars.contains_key(&name)
                || t.role
                    .as_ref()
                    .is_some_and(|r| r.params.contains_key(&name));
            if !overridden {
                crate::template::mark_data(&mut v, &name);
            }
        }
        let name = &pr.names[h];
        v.insert("inventory_hostname".into(), name.clone().into());
        v.insert(
            "inventory_hostname_short".into(),
            name.split('.').next().unwrap_or(name).into(),
        );
        v.insert("ansible_check_mode".into(), self.check_mode(kw).into());
        v.insert("ansible_diff_mode".into(), self.opts.diff.into());
        v.insert("ansible_verbosity".into(), self.opts.verbosity.into());
        v.insert("playbook_dir".into(), absolute_dir(&play.base_dir).into());
        if task_mentions(t, kw, "hostvars") {
            let mut hv = self.hosts.hostvars();
            if let Value::Object(all) = &mut hv {
                let included = self.included.lock().unwrap();
                let facts = self.facts.lock().unwrap();
                for (host, gained) in included.iter().chain(facts.iter()) {
                    if let Some(Value::Object(m)) = all.get_mut(host) {
                        m.extend(gained.clone());
                    }
                }
            }
            v.insert("hostvars".into(), hv);
        }
        v
    }
}

/// `playbook_dir` and `role_path` are absolute, as in Ansible: a path built
/// from them (`{{ playbook_dir }}/../x`) means the same in a command run
/// elsewhere and as a `copy` src.
pub(super) fn absolute_dir(p: &std::path::Path) -> String {
    let p = if p.as_os_str().is_empty() {
        std::path::Path::new(".")
    } else {
        p
    };
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

#[cfg(test)]
mod dir_tests {
    #[test]
    fn playbook_dir_is_absolute() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            super::absolute_dir(std::path::Path::new("playbooks")),
            cwd.join("playbooks").display().to_string()
        );
        assert_eq!(
            super::absolute_dir(std::path::Path::new("")),
            cwd.display().to_string()
        );
        assert_eq!(super::absolute_dir(std::path::Path::new("/a/b")), "/a/b");
    }
}
