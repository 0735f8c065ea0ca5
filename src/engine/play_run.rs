//! The state of one `serial` batch of one play while it runs: its hosts, their base
//! variables, whether each is still running (failed, unreachable, ended), and the
//! renderer holding the magic variables every host of the batch shares.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;

use crate::playbook::Play;
use crate::vars::{Layer, Scope, VarLayers};

use super::render::TemplateRender;

#[derive(Debug, Default)]
pub(super) struct HostState {
    pub(super) failed: bool,
    pub(super) unreachable: bool,
    pub(super) ended: bool,
    pub(super) notified: Vec<String>,
}

impl HostState {
    fn running(&self) -> bool {
        !(self.failed || self.unreachable || self.ended)
    }
}

/// One batch of one play.
pub(super) struct PlayRun<'p> {
    pub(super) play: &'p Play,
    pub(super) names: Vec<String>,
    /// Each host's inventory layers and host magic variables (`HostSource::layers`,
    /// `HostSource::host_magic`), with the inventory epoch they were read at (read
    /// again after add_host/group_by changed the inventory).
    pub(super) base: Vec<Mutex<(u64, VarLayers)>>,
    /// The play's own layers, the same for every host and task: its roles' defaults
    /// and vars, `vars:` and `vars_files:` (built once, shared by every task's view).
    pub(super) layers: VarLayers,
    states: Vec<Mutex<HostState>>,
    pub(super) ended: AtomicBool,
    /// Bumped whenever a host starts or stops running (the play hosts change).
    running_gen: AtomicU64,
    /// The renderer with this batch's shared magic variables, and the (inventory
    /// epoch, `running_gen`, ended) it was built for.
    shared: Mutex<Option<(SharedKey, Arc<TemplateRender>)>>,
}

/// What the shared magic variables were built from: inventory epoch, running
/// generation, whether the play ended.
type SharedKey = (u64, u64, bool);

/// One host's state, locked; tells the batch when the host started or stopped running.
pub(super) struct HostStateGuard<'a> {
    state: MutexGuard<'a, HostState>,
    was_running: bool,
    running_gen: &'a AtomicU64,
}

impl Deref for HostStateGuard<'_> {
    type Target = HostState;
    fn deref(&self) -> &HostState {
        &self.state
    }
}

impl DerefMut for HostStateGuard<'_> {
    fn deref_mut(&mut self) -> &mut HostState {
        &mut self.state
    }
}

impl Drop for HostStateGuard<'_> {
    fn drop(&mut self) {
        if self.state.running() != self.was_running {
            self.running_gen.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl<'p> PlayRun<'p> {
    pub(super) fn new(
        play: &'p Play,
        names: Vec<String>,
        base: Vec<Mutex<(u64, VarLayers)>>,
    ) -> Self {
        PlayRun {
            play,
            layers: play_layers(play),
            states: names
                .iter()
                .map(|_| Mutex::new(HostState::default()))
                .collect(),
            names,
            base,
            ended: AtomicBool::new(false),
            running_gen: AtomicU64::new(0),
            shared: Mutex::new(None),
        }
    }

    pub(super) fn state(&self, h: usize) -> HostStateGuard<'_> {
        let state = self.states[h].lock().unwrap();
        HostStateGuard {
            was_running: state.running(),
            state,
            running_gen: &self.running_gen,
        }
    }

    pub(super) fn active(&self, h: usize) -> bool {
        if self.ended.load(Ordering::SeqCst) {
            return false;
        }
        self.states[h].lock().unwrap().running()
    }

    /// The renderer for host `h`'s tasks: its contexts see `groups` (from `groups`,
    /// called only when the inventory changed) and the play hosts (`play_hosts`,
    /// `ansible_play_hosts`, `ansible_play_batch`: the hosts still running, and `h`),
    /// built once per change and shared by every running host, so a task's variables
    /// cost the same whatever the number of hosts.
    pub(super) fn render(
        &self,
        h: usize,
        epoch: u64,
        groups: impl FnOnce() -> Option<Value>,
    ) -> Arc<TemplateRender> {
        let ended = self.ended.load(Ordering::SeqCst);
        let key = (epoch, self.running_gen.load(Ordering::SeqCst), ended);
        let mut shared = self.shared.lock().unwrap();
        let own = !self.active(h);
        if let Some((k, r)) = shared.as_ref()
            && *k == key
            && !own
        {
            return r.clone();
        }
        let play_hosts: Vec<&str> = (0..self.names.len())
            .filter(|&i| i == h || self.active(i))
            .map(|i| self.names[i].as_str())
            .collect();
        let hosts = minijinja::Value::from(minijinja::value::Serde(&play_hosts));
        let mut magic = std::collections::BTreeMap::new();
        if let Some(g) = groups() {
            magic.insert(
                "groups",
                minijinja::Value::from(minijinja::value::Serde(&g)),
            );
        }
        for name in ["ansible_play_hosts", "ansible_play_batch", "play_hosts"] {
            magic.insert(name, hosts.clone());
        }
        let r = Arc::new(TemplateRender::with_shared(minijinja::Value::from(magic)));
        // A host that no longer runs (an `always:` after a failure) sees itself among
        // the play hosts: its own view, not kept.
        if !own {
            *shared = Some((key, r.clone()));
        }
        r
    }
}

/// A play's layers: every role's defaults and vars (Ansible's public roles: every task of
/// the play sees them), `vars:`, `vars_files:` in order.
fn play_layers(play: &Play) -> VarLayers {
    let mut v = VarLayers::new();
    let mut push = |layer: Layer, origin: &str, vars: &crate::vars::Vars| {
        v.push(Arc::new(Scope::plain(layer, origin, vars.clone())));
    };
    for r in &play.roles {
        let role = r.name.clone();
        push(Layer::RoleDefaults { role }, "role defaults", &r.defaults);
    }
    push(Layer::PlayVars, "play vars", &play.vars);
    for (path, f) in &play.vars_files {
        push(Layer::PlayVarsFile, &path.display().to_string(), f);
    }
    for r in &play.roles {
        let role = r.name.clone();
        push(Layer::RoleVars { role }, "role vars", &r.vars);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Render;
    use crate::vars::Vars;
    use serde_json::json;

    fn batch(play: &Play) -> PlayRun<'_> {
        let names: Vec<String> = ["a", "b", "c"].map(String::from).into();
        let base = names
            .iter()
            .map(|_| Mutex::new((0, VarLayers::new())))
            .collect();
        PlayRun::new(play, names, base)
    }

    fn render(pr: &PlayRun<'_>, h: usize, epoch: u64, expr: &str, vars: &Vars) -> Value {
        let groups = || Some(json!({"all": ["a", "b", "c"], "web": [format!("e{epoch}")]}));
        pr.render(h, epoch, groups)
            .render_value(&json!(format!("{{{{ {expr} }}}}")), vars)
            .unwrap()
    }

    #[test]
    fn play_hosts_follow_failures_and_groups_the_inventory_epoch() {
        let play = Play::default();
        let pr = batch(&play);
        let none = Vars::new();
        assert_eq!(
            render(&pr, 0, 0, "play_hosts", &none),
            json!(["a", "b", "c"])
        );
        pr.state(1).failed = true;
        for name in ["play_hosts", "ansible_play_hosts", "ansible_play_batch"] {
            assert_eq!(render(&pr, 0, 0, name, &none), json!(["a", "c"]), "{name}");
        }
        // A host that stopped running still sees itself (its `always:` tasks).
        assert_eq!(
            render(&pr, 1, 0, "play_hosts", &none),
            json!(["a", "b", "c"])
        );
        pr.state(1).failed = false;
        assert_eq!(
            render(&pr, 2, 0, "play_hosts", &none),
            json!(["a", "b", "c"])
        );
        assert_eq!(render(&pr, 0, 0, "groups.web", &none), json!(["e0"]));
        assert_eq!(render(&pr, 0, 1, "groups.web", &none), json!(["e1"]));
        pr.ended.store(true, Ordering::SeqCst);
        assert_eq!(render(&pr, 2, 1, "play_hosts", &none), json!(["c"]));
    }

    #[test]
    fn shared_magic_wins_over_a_variable_of_the_same_name() {
        let play = Play::default();
        let pr = batch(&play);
        let mut vars = Vars::new();
        vars.insert("play_hosts".into(), json!("mine"));
        vars.insert("x".into(), json!("{{ groups['all'] | length }}"));
        assert_eq!(
            render(&pr, 0, 0, "play_hosts", &vars),
            json!(["a", "b", "c"])
        );
        assert_eq!(render(&pr, 0, 0, "x", &vars), json!(3));
    }
}
