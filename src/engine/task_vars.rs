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

    /// Host `h`'s inventory layers with its magic variables on top (re-read when the
    /// inventory changes: [`PlayRun::base`]).
    pub(super) fn host_layers(&self, host: &str) -> VarLayers {
        self.hosts.layers(host).with(self.hosts.host_magic(host))
    }

    /// The task's variable view: its layers stacked by `crate::vars`' precedence (low to
    /// high: role defaults, inventory, play vars, vars_files, role vars, block and task
    /// vars, include_vars, set_fact/registered, role params, extra vars, then magic
    /// variables, which nobody overrides), flattened. The inventory's and the play's
    /// layers are shared, not copied. The magic variables that are the same on every
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
        let mut layers = {
            let mut base = pr.base[h].lock().unwrap();
            let epoch = self.inv_epoch.load(Ordering::SeqCst);
            if base.0 != epoch {
                *base = (epoch, self.host_layers(host));
            }
            base.1.clone()
        };
        for s in pr.layers.scopes() {
            layers.push(s.clone());
        }
        let mut layer = |layer: Layer, origin: &str, vars: Vars| {
            layers.push(Arc::new(Scope::plain(layer, origin, vars)));
        };
        // The task's own role comes after the play's roles, so it wins.
        if let Some(r) = &t.role {
            let role = r.name.clone();
            layer(
                Layer::RoleDefaults { role },
                "role defaults",
                r.defaults.clone(),
            );
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
        let mut magic = Vars::new();
        magic.insert("ansible_check_mode".into(), self.check_mode(kw).into());
        magic.insert("ansible_diff_mode".into(), self.opts.diff.into());
        magic.insert("ansible_verbosity".into(), self.opts.verbosity.into());
        magic.insert("playbook_dir".into(), absolute_dir(&play.base_dir).into());
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
            magic.insert("hostvars".into(), hv);
        }
        layers.push(self.extra_vars.clone());
        layers.push(Arc::new(Scope::plain(Layer::Magic, "magic", magic)));
        let mut v = layers.flatten();
        // Registered results, host facts and set_fact values are host output or text
        // rendered once already: data from here on, never a template, where that layer
        // is the one that wins.
        for name in gained {
            if layers.winner(&name) == Some(&Layer::SetFact) {
                crate::template::mark_data(&mut v, &name);
            }
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
