//! Runs plays: hosts in parallel, tasks in order, handlers, failures; emits events.
//!
//! The engine never knows which op it runs ([`crate::ops::lookup`]) and never
//! prints: everything it does is an [`Event`] sent to an [`EventSink`].
//!
//! Seams the integrator wires to the other modules (each marked `SEAM`):
//! - [`HostSource`]: host selection (`Inventory::select`) and a host's base
//!   variables (`crate::vars`);
//! - [`Connector`]: opening a host's transport (`transport::connect`);
//! - [`crate::ops::Render`]: templates (`crate::template`; [`render::TemplateRender`]);
//! - [`Engine::task_vars`]: variable precedence (to move into `crate::vars`).

pub mod events;
pub mod render;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::future::join_all;
use indexmap::IndexMap;
use serde_json::{Map, Value};
use tokio::sync::{OnceCell, Semaphore};

pub use events::*;

use crate::ops::{self, Control, Diff, Op, OpContext, OpError, OpOutcome, Render};
use crate::playbook::{Play, Playbook, Task, TaskItem, TaskKeywords, Vars};
use crate::transport::check_state::{CheckState, CheckTransport};
use crate::transport::local::LocalTransport;
use crate::transport::{
    Become, CommandOutput, CommandSpec, FileSpec, FileStat, Transport, TransportError,
};

/// `--strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// A task starts on every host before the next task starts.
    #[default]
    Linear,
    /// Each host runs through its tasks as fast as it can.
    Free,
}

impl std::str::FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "linear" => Ok(Self::Linear),
            "free" => Ok(Self::Free),
            other => Err(format!(
                "unknown strategy `{other}`: use `linear` or `free`"
            )),
        }
    }
}

/// How a run behaves (the `ferry run` flags).
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub forks: usize,
    pub check: bool,
    pub diff: bool,
    pub tags: Vec<String>,
    pub skip_tags: Vec<String>,
    pub start_at_task: Option<String>,
    pub strategy: Strategy,
    pub force_handlers: bool,
    pub verbosity: u8,
    /// `-e`: above every other variable layer.
    pub extra_vars: Vars,
    /// From `-K`; never written anywhere.
    pub become_password: Option<String>,
    /// Timeout of every task without its own `timeout:`.
    pub default_timeout: Option<Duration>,
    /// Playbook paths, for the `run_start` event.
    pub playbook_names: Vec<String>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            forks: 50,
            check: false,
            diff: false,
            tags: Vec::new(),
            skip_tags: Vec::new(),
            start_at_task: None,
            strategy: Strategy::Linear,
            force_handlers: false,
            verbosity: 0,
            extra_vars: Vars::new(),
            become_password: None,
            default_timeout: None,
            playbook_names: Vec::new(),
        }
    }
}

/// A connection being opened.
pub type ConnectFuture =
    Pin<Box<dyn Future<Output = Result<Arc<dyn Transport>, TransportError>> + Send>>;

/// SEAM(integration): opens a host's transport from its name and variables
/// (wire to `transport::connect(&ConnectParams::from_host_vars(name, vars, opts))`).
pub trait Connector: Send + Sync {
    fn connect(&self, host: &str, vars: &Vars) -> ConnectFuture;
}

impl<F> Connector for F
where
    F: Fn(&str, &Vars) -> ConnectFuture + Send + Sync,
{
    fn connect(&self, host: &str, vars: &Vars) -> ConnectFuture {
        self(host, vars)
    }
}

/// Connects every host with [`LocalTransport`] (`ansible_connection: local`).
pub fn local_connector() -> Arc<dyn Connector> {
    Arc::new(|host: &str, _vars: &Vars| -> ConnectFuture {
        let t: Arc<dyn Transport> = Arc::new(LocalTransport::new(host));
        Box::pin(async move { Ok(t) })
    })
}

/// SEAM(integration): which hosts a pattern selects and each host's base variables
/// (wire to `Inventory::select` and `crate::vars::inventory_vars`).
pub trait HostSource: Send + Sync {
    /// Host names matching `pattern`, in inventory order.
    fn select(&self, pattern: &str) -> Result<Vec<String>, String>;
    /// The host's inventory variables (group and host vars merged), with the
    /// inventory's magic variables (`groups`, `group_names`).
    fn base_vars(&self, host: &str) -> Vars;
    /// `hostvars`: every host's inventory variables (the engine adds what hosts
    /// gained during the run). Only built for tasks that mention `hostvars`.
    fn hostvars(&self) -> Value {
        Value::Object(Default::default())
    }
    /// `add_host` / `group_by`: change the hosts and groups later selections and
    /// variable views see. `Ok(true)` when something changed.
    fn change(&self, change: &ops::InventoryChange) -> Result<bool, String> {
        let _ = change;
        Err("this run's hosts are fixed: add_host and group_by cannot change them".into())
    }
}

/// Hosts from a loaded inventory, with `--limit` applied to every play's pattern.
/// `add_host` and `group_by` change it during the run.
pub struct InventoryHosts {
    inv: RwLock<crate::inventory::Inventory>,
    limit: Option<String>,
    /// `hostvars`, built on first use and again after the inventory changed.
    hostvars: Mutex<Option<Value>>,
    groups: RwLock<Value>,
}

fn groups_value(inv: &crate::inventory::Inventory) -> Value {
    Value::Object(
        inv.groups
            .keys()
            .map(|g| (g.clone(), Value::from(inv.group_hosts(g))))
            .collect(),
    )
}

impl InventoryHosts {
    pub fn new(inv: crate::inventory::Inventory, limit: Option<String>) -> Self {
        let groups = groups_value(&inv);
        Self {
            inv: RwLock::new(inv),
            limit,
            hostvars: Mutex::new(None),
            groups: RwLock::new(groups),
        }
    }
}

impl HostSource for InventoryHosts {
    fn select(&self, pattern: &str) -> Result<Vec<String>, String> {
        self.inv
            .read()
            .unwrap()
            .select_limited(pattern, self.limit.as_deref())
            .map_err(|e| e.to_string())
    }
    fn base_vars(&self, host: &str) -> Vars {
        let inv = self.inv.read().unwrap();
        let mut v = crate::vars::inventory_vars(&inv, host);
        v.insert("groups".into(), self.groups.read().unwrap().clone());
        v.insert("group_names".into(), Value::from(inv.group_names(host)));
        v
    }
    fn hostvars(&self) -> Value {
        let mut hv = self.hostvars.lock().unwrap();
        hv.get_or_insert_with(|| crate::vars::hostvars(&self.inv.read().unwrap()))
            .clone()
    }
    fn change(&self, change: &ops::InventoryChange) -> Result<bool, String> {
        let mut inv = self.inv.write().unwrap();
        let changed = match change {
            ops::InventoryChange::AddHost { name, groups, vars } => {
                inv.add_runtime_host(name, groups, vars)
            }
            ops::InventoryChange::AddToGroup {
                host,
                group,
                parents,
            } => inv.add_runtime_group_member(host, group, parents)?,
        };
        if changed {
            *self.groups.write().unwrap() = groups_value(&inv);
            *self.hostvars.lock().unwrap() = None;
        }
        Ok(changed)
    }
}

/// Whether any text of the task (args, conditions, loop) names `word`; used to
/// build expensive views (`hostvars`) only for the tasks that read them.
fn task_mentions(t: &Task, kw: &TaskKeywords, word: &str) -> bool {
    fn in_value(v: &Value, word: &str) -> bool {
        match v {
            Value::String(s) => s.contains(word),
            Value::Array(a) => a.iter().any(|x| in_value(x, word)),
            Value::Object(m) => m.values().any(|x| in_value(x, word)),
            _ => false,
        }
    }
    t.args.values().any(|v| in_value(v, word))
        || kw.when.iter().any(|w| w.contains(word))
        || kw.vars.values().any(|v| in_value(v, word))
        || t.changed_when.iter().any(|w| w.contains(word))
        || t.failed_when.iter().any(|w| w.contains(word))
        || t.until.as_deref().is_some_and(|w| w.contains(word))
        || t.loop_.as_ref().is_some_and(|v| in_value(v, word))
        || kw.delegate_to.as_deref().is_some_and(|w| w.contains(word))
}

/// Whether the task reads variable `name` before its op runs: in `when`, in
/// the Jinja parts of its arguments, loop, vars and environment, or in
/// `delegate_to` (`changed_when`/`failed_when`/`until` see its own new result).
fn task_uses_var(t: &Task, kw: &TaskKeywords, name: &str) -> bool {
    fn in_expr(e: &str, name: &str) -> bool {
        let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
        e.match_indices(name).any(|(i, _)| {
            let before = e[..i].chars().next_back();
            let after = e[i + name.len()..].chars().next();
            !before.is_some_and(|c| ident(c) || c == '.') && !after.is_some_and(ident)
        })
    }
    fn in_template(s: &str, name: &str) -> bool {
        let mut rest = s;
        while let Some(i) = rest.find(['{']) {
            let tail = &rest[i..];
            let close = if tail.starts_with("{{") {
                "}}"
            } else if tail.starts_with("{%") {
                "%}"
            } else {
                rest = &rest[i + 1..];
                continue;
            };
            let end = tail.find(close).unwrap_or(tail.len());
            if in_expr(&tail[2..end], name) {
                return true;
            }
            rest = &tail[end.min(tail.len())..];
            if rest.len() < 2 {
                break;
            }
            rest = &rest[2..];
        }
        false
    }
    fn in_value(v: &Value, name: &str) -> bool {
        match v {
            Value::String(s) => in_template(s, name),
            Value::Array(a) => a.iter().any(|x| in_value(x, name)),
            Value::Object(m) => m.values().any(|x| in_value(x, name)),
            _ => false,
        }
    }
    t.args.values().any(|v| in_value(v, name))
        || kw.when.iter().any(|w| in_expr(w, name))
        || kw.vars.values().any(|v| in_value(v, name))
        || kw.environment.iter().any(|v| in_value(v, name))
        || t.loop_.as_ref().is_some_and(|v| in_value(v, name))
        || kw
            .delegate_to
            .as_deref()
            .is_some_and(|d| in_template(d, name))
}

#[cfg(test)]
mod uses_var_tests {
    use super::*;
    use serde_json::json as j;

    #[test]
    fn only_jinja_names_count() {
        let task = |args: Value, when: &[&str]| {
            let t = Task {
                args: serde_json::from_value(args).unwrap(),
                ..Task::default()
            };
            let kw = TaskKeywords {
                when: when.iter().map(|w| w.to_string()).collect(),
                ..TaskKeywords::default()
            };
            (t, kw)
        };
        let uses = |args: Value, when: &[&str], name: &str| {
            let (t, kw) = task(args, when);
            task_uses_var(&t, &kw, name)
        };
        assert!(uses(
            j!({"content": "said {{ content.stdout }}"}),
            &[],
            "content"
        ));
        assert!(uses(j!({"x": ["a", "{% if c %}y{% endif %}"]}), &[], "c"));
        assert!(uses(j!({}), &["failing is failed"], "failing"));
        assert!(!uses(j!({"content": "plain content"}), &[], "content"));
        assert!(!uses(
            j!({"x": "{{ r.content }} {{ contents }}"}),
            &[],
            "content"
        ));
        assert!(!uses(j!({"x": "{{ a }"}), &["not other"], "b"));
    }
}

/// Hosts and groups given directly (tests, `ferry exec` on a list, the bench).
#[derive(Debug, Clone, Default)]
pub struct StaticHosts {
    pub hosts: IndexMap<String, Vars>,
    pub groups: IndexMap<String, Vec<String>>,
    /// `hosts` and `groups` as add_host/group_by left them (set on the first change).
    changed: Arc<RwLock<Option<HostsAndGroups>>>,
}

type HostsAndGroups = (IndexMap<String, Vars>, IndexMap<String, Vec<String>>);

impl StaticHosts {
    fn with_view<R>(
        &self,
        f: impl FnOnce(&IndexMap<String, Vars>, &IndexMap<String, Vec<String>>) -> R,
    ) -> R {
        match &*self.changed.read().unwrap() {
            Some((h, g)) => f(h, g),
            None => f(&self.hosts, &self.groups),
        }
    }
}

impl HostSource for StaticHosts {
    fn select(&self, pattern: &str) -> Result<Vec<String>, String> {
        self.with_view(|hosts, groups| static_select(hosts, groups, pattern))
    }
    fn base_vars(&self, host: &str) -> Vars {
        self.with_view(|hosts, _| hosts.get(host).cloned().unwrap_or_default())
    }
    fn change(&self, change: &ops::InventoryChange) -> Result<bool, String> {
        let mut view = self.changed.write().unwrap();
        let (hosts, groups) = view.get_or_insert_with(|| (self.hosts.clone(), self.groups.clone()));
        let mut changed = false;
        let mut join = |groups: &mut IndexMap<String, Vec<String>>, g: &str, h: &str| {
            let members = groups.entry(g.to_string()).or_default();
            if !members.iter().any(|m| m == h) {
                members.push(h.to_string());
                changed = true;
            }
        };
        match change {
            ops::InventoryChange::AddHost {
                name,
                groups: gs,
                vars,
            } => {
                let new = !hosts.contains_key(name);
                let entry = hosts.entry(name.clone()).or_default();
                let mut vars_changed = false;
                for (k, v) in vars {
                    if entry.get(k) != Some(v) {
                        entry.insert(k.clone(), v.clone());
                        vars_changed = true;
                    }
                }
                for g in gs {
                    join(groups, g, name);
                }
                if new || vars_changed {
                    return Ok(true);
                }
            }
            ops::InventoryChange::AddToGroup { host, group, .. } => {
                if !hosts.contains_key(host) {
                    return Err(format!("{host} cannot be matched in inventory"));
                }
                join(groups, group, host);
            }
        }
        Ok(changed)
    }
}

/// [`StaticHosts`]' patterns: names, groups, `all`, joined by `:`/`,`, with `!` and `&`.
fn static_select(
    hosts: &IndexMap<String, Vars>,
    groups: &IndexMap<String, Vec<String>>,
    pattern: &str,
) -> Result<Vec<String>, String> {
    let mut chosen: Vec<String> = Vec::new();
    for part in pattern
        .split([':', ','])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (op, name) = match part.as_bytes()[0] {
            b'!' => ('!', &part[1..]),
            b'&' => ('&', &part[1..]),
            _ => ('+', part),
        };
        let set: Vec<String> = if name == "all" || name == "*" {
            hosts.keys().cloned().collect()
        } else if let Some(g) = groups.get(name) {
            g.clone()
        } else if hosts.contains_key(name) {
            vec![name.to_string()]
        } else {
            return Err(format!("no host or group named `{name}` in the inventory"));
        };
        match op {
            '!' => chosen.retain(|h| !set.contains(h)),
            '&' => chosen.retain(|h| set.contains(h)),
            _ => {
                for h in set {
                    if !chosen.contains(&h) {
                        chosen.push(h);
                    }
                }
            }
        }
    }
    Ok(chosen)
}

/// Stands in for a transport where an op needs none.
struct NoTransport(String);

#[async_trait]
impl Transport for NoTransport {
    fn host(&self) -> &str {
        &self.0
    }
    async fn run(&self, _: &CommandSpec) -> Result<CommandOutput, TransportError> {
        Err(self.err())
    }
    async fn put_file(&self, _: &FileSpec) -> Result<(), TransportError> {
        Err(self.err())
    }
    async fn get_file(&self, _: &str) -> Result<Vec<u8>, TransportError> {
        Err(self.err())
    }
    async fn stat(&self, _: &str) -> Result<FileStat, TransportError> {
        Err(self.err())
    }
    async fn close(&self) {}
}

impl NoTransport {
    fn err(&self) -> TransportError {
        TransportError::Other {
            host: self.0.clone(),
            reason: "this op declared it needs no connection".into(),
        }
    }
}

/// Reports every command sent (-vvv) before passing it on.
struct Traced {
    inner: Arc<dyn Transport>,
    sink: Arc<dyn EventSink>,
    hide: bool,
}

#[async_trait]
impl Transport for Traced {
    fn host(&self) -> &str {
        self.inner.host()
    }
    fn endpoint(&self) -> String {
        self.inner.endpoint()
    }
    async fn run(&self, spec: &CommandSpec) -> Result<CommandOutput, TransportError> {
        let cmd = if self.hide {
            "[hidden: no_log]".to_string()
        } else {
            spec.cmd.clone()
        };
        self.sink.emit(&Event::now(EventKind::Command {
            host: self.inner.host().to_string(),
            cmd,
        }));
        self.inner.run(spec).await
    }
    async fn put_file(&self, spec: &FileSpec) -> Result<(), TransportError> {
        self.inner.put_file(spec).await
    }
    async fn get_file(&self, path: &str) -> Result<Vec<u8>, TransportError> {
        self.inner.get_file(path).await
    }
    async fn stat(&self, path: &str) -> Result<FileStat, TransportError> {
        self.inner.stat(path).await
    }
    async fn close(&self) {
        self.inner.close().await
    }
}

const NO_LOG_MSG: &str =
    "the output has been hidden due to the fact that 'no_log: true' was specified for this result";

#[derive(Debug, Default)]
struct HostState {
    failed: bool,
    unreachable: bool,
    ended: bool,
    notified: Vec<String>,
}

/// One batch of one play.
struct PlayRun<'p> {
    play: &'p Play,
    names: Vec<String>,
    /// Each host's inventory variables, with the inventory epoch they were read at
    /// (re-read after add_host/group_by changed the inventory).
    base: Vec<Mutex<(u64, Vars)>>,
    states: Vec<Mutex<HostState>>,
    ended: AtomicBool,
}

impl PlayRun<'_> {
    fn active(&self, h: usize) -> bool {
        if self.ended.load(Ordering::SeqCst) {
            return false;
        }
        let s = self.states[h].lock().unwrap();
        !(s.failed || s.unreachable || s.ended)
    }
}

/// Keywords inherited down blocks, plus whether a `rescue` catches failures here.
#[derive(Clone, Default)]
struct Inherit {
    kw: TaskKeywords,
    rescuable: bool,
}

impl Inherit {
    fn root(play: &Play) -> Self {
        Self {
            kw: TaskKeywords {
                tags: play.tags.clone(),
                become_: play.become_,
                become_user: play.become_user.clone(),
                any_errors_fatal: Some(play.any_errors_fatal),
                check_mode: play.check_mode,
                environment: play.environment.clone(),
                ..TaskKeywords::default()
            },
            rescuable: false,
        }
    }

    fn child(&self, kw: &TaskKeywords) -> TaskKeywords {
        let p = &self.kw;
        let mut when = p.when.clone();
        when.extend(kw.when.iter().cloned());
        let mut tags = p.tags.clone();
        for t in &kw.tags {
            if !tags.contains(t) {
                tags.push(t.clone());
            }
        }
        let mut vars = p.vars.clone();
        vars.extend(kw.vars.clone());
        let mut environment = p.environment.clone();
        environment.extend(kw.environment.clone());
        TaskKeywords {
            when,
            tags,
            become_: kw.become_.or(p.become_),
            become_user: kw.become_user.clone().or_else(|| p.become_user.clone()),
            ignore_errors: kw.ignore_errors.or(p.ignore_errors),
            vars,
            environment,
            delegate_to: kw.delegate_to.clone().or_else(|| p.delegate_to.clone()),
            run_once: kw.run_once.or(p.run_once),
            no_log: kw.no_log.or(p.no_log),
            any_errors_fatal: kw.any_errors_fatal.or(p.any_errors_fatal),
            timeout: kw.timeout.or(p.timeout),
            check_mode: kw.check_mode.or(p.check_mode),
        }
    }
}

/// What one task (all its loop items) did on one host.
#[derive(Debug, Default)]
struct TaskOutput {
    changed: bool,
    failed: bool,
    skipped: bool,
    unreachable: bool,
    /// Check mode could not check it (a command it skipped, or a task using such a result).
    not_checked: bool,
    msg: Option<String>,
    result: Map<String, Value>,
    diff: Option<Diff>,
    facts: Vars,
    included: Vars,
    control: Option<Control>,
    attempts: Option<u32>,
    delegated_to: Option<String>,
    duration: f64,
}

impl TaskOutput {
    fn skipped(msg: &str) -> Self {
        let mut result = Map::new();
        result.insert("changed".into(), false.into());
        result.insert("skipped".into(), true.into());
        result.insert("skip_reason".into(), msg.into());
        Self {
            skipped: true,
            msg: Some(msg.into()),
            result,
            ..Self::default()
        }
    }
    fn failed(msg: String) -> Self {
        let mut result = Map::new();
        result.insert("changed".into(), false.into());
        result.insert("failed".into(), true.into());
        result.insert("msg".into(), msg.clone().into());
        Self {
            failed: true,
            msg: Some(msg),
            result,
            ..Self::default()
        }
    }
    fn unreachable(msg: String) -> Self {
        let mut o = Self::failed(msg);
        o.failed = false;
        o.unreachable = true;
        o.result.insert("unreachable".into(), true.into());
        o
    }
    fn outcome(&self) -> Outcome {
        if self.unreachable {
            Outcome::Unreachable
        } else if self.failed {
            Outcome::Failed
        } else if self.skipped {
            Outcome::Skipped
        } else if self.changed {
            Outcome::Changed
        } else {
            Outcome::Ok
        }
    }
}

type ConnCell = Arc<OnceCell<Result<Arc<dyn Transport>, String>>>;

/// Runs playbooks against hosts. One engine per run.
pub struct Engine {
    opts: RunOptions,
    hosts: Arc<dyn HostSource>,
    connector: Arc<dyn Connector>,
    render: Arc<dyn Render>,
    sink: Arc<dyn EventSink>,
    interrupt: Arc<AtomicBool>,
    forks: Arc<Semaphore>,
    conns: Mutex<HashMap<String, ConnCell>>,
    /// set_fact results and registered variables, per host, for the whole run.
    facts: Mutex<HashMap<String, Vars>>,
    /// include_vars results, per host, for the whole run (below `facts`).
    included: Mutex<HashMap<String, Vars>>,
    /// Bumped whenever add_host/group_by changed the inventory.
    inv_epoch: AtomicU64,
    stats: Mutex<IndexMap<String, HostStats>>,
    /// Hosts that failed or were unreachable: left out of later plays.
    dead: Mutex<HashSet<String>>,
    failed_hosts: Mutex<HashSet<String>>,
    pending_start: Mutex<Option<String>>,
    error: AtomicBool,
    /// `--check`: per machine ([`Transport::endpoint`]), what earlier tasks
    /// would have done (see `transport::check_state`).
    check_states: Mutex<HashMap<String, Arc<CheckState>>>,
    /// `--check`: per host, variables registered (or set) by tasks check mode could not run.
    unchecked_vars: Mutex<HashMap<String, HashSet<String>>>,
}

impl Engine {
    pub fn new(
        opts: RunOptions,
        hosts: Arc<dyn HostSource>,
        connector: Arc<dyn Connector>,
        sink: Arc<dyn EventSink>,
    ) -> Self {
        let forks = Arc::new(Semaphore::new(opts.forks.max(1)));
        let pending_start = Mutex::new(opts.start_at_task.clone());
        Self {
            opts,
            hosts,
            connector,
            render: Arc::new(render::TemplateRender),
            sink,
            interrupt: Arc::new(AtomicBool::new(false)),
            forks,
            conns: Mutex::new(HashMap::new()),
            facts: Mutex::new(HashMap::new()),
            included: Mutex::new(HashMap::new()),
            inv_epoch: AtomicU64::new(0),
            stats: Mutex::new(IndexMap::new()),
            dead: Mutex::new(HashSet::new()),
            failed_hosts: Mutex::new(HashSet::new()),
            pending_start,
            error: AtomicBool::new(false),
            check_states: Mutex::new(HashMap::new()),
            unchecked_vars: Mutex::new(HashMap::new()),
        }
    }

    /// SEAM(integration): use `crate::template`'s renderer instead of the engine's own.
    pub fn with_render(mut self, render: Arc<dyn Render>) -> Self {
        self.render = render;
        self
    }

    /// Set this (Ctrl-C) to stop starting new tasks; running ones finish.
    pub fn interrupt_flag(&self) -> Arc<AtomicBool> {
        self.interrupt.clone()
    }

    fn emit(&self, kind: EventKind) {
        self.sink.emit(&Event::now(kind));
    }

    fn warn(&self, host: Option<&str>, msg: impl Into<String>) {
        self.emit(EventKind::Warning {
            host: host.map(str::to_string),
            msg: msg.into(),
        });
    }

    fn interrupted(&self) -> bool {
        self.interrupt.load(Ordering::SeqCst)
    }

    /// Run every play of every playbook; returns the exit code (0, 1, 2, 4 or 130).
    pub async fn run(&self, playbooks: &[Playbook]) -> u8 {
        let start = Instant::now();
        self.emit(EventKind::RunStart {
            playbooks: if self.opts.playbook_names.is_empty() {
                playbooks
                    .iter()
                    .map(|p| p.path.display().to_string())
                    .collect()
            } else {
                self.opts.playbook_names.clone()
            },
            check: self.opts.check,
            diff: self.opts.diff,
        });
        'all: for pb in playbooks {
            for play in &pb.plays {
                if self.interrupted() {
                    break 'all;
                }
                if play.experiment.is_some() {
                    self.warn(
                        None,
                        format!(
                            "play at {} is an experiment: it runs in the experiment stage, not here",
                            play.loc
                        ),
                    );
                    continue;
                }
                if let Err(msg) = self.run_play(play).await {
                    self.error.store(true, Ordering::SeqCst);
                    self.warn(None, msg);
                    break 'all;
                }
            }
        }
        let conns: Vec<ConnCell> = self.conns.lock().unwrap().values().cloned().collect();
        join_all(conns.iter().filter_map(|c| match c.get() {
            Some(Ok(t)) => Some(t.close()),
            _ => None,
        }))
        .await;
        let code = self.exit_code();
        self.emit(EventKind::Recap {
            hosts: self.stats.lock().unwrap().clone(),
            check: self.opts.check,
            wall_secs: start.elapsed().as_secs_f64(),
            interrupted: self.interrupted(),
            exit_code: code,
        });
        self.sink.finish();
        code
    }

    /// Exit code as Ansible gives it, 130 when interrupted.
    pub fn exit_code(&self) -> u8 {
        if self.interrupted() {
            130
        } else if self
            .stats
            .lock()
            .unwrap()
            .values()
            .any(|s| s.unreachable > 0)
        {
            4
        } else if !self.failed_hosts.lock().unwrap().is_empty() {
            2
        } else if self.error.load(Ordering::SeqCst) {
            1
        } else {
            0
        }
    }

    /// Per-host counters so far.
    pub fn stats(&self) -> IndexMap<String, HostStats> {
        self.stats.lock().unwrap().clone()
    }

    /// Variables a host has gained during the run (set_fact, register).
    pub fn host_facts(&self, host: &str) -> Vars {
        self.facts
            .lock()
            .unwrap()
            .get(host)
            .cloned()
            .unwrap_or_default()
    }

    async fn run_play(&self, play: &Play) -> Result<(), String> {
        let dead = self.dead.lock().unwrap().clone();
        let selected: Vec<String> = self
            .hosts
            .select(&play.hosts)
            .map_err(|e| format!("{}: hosts `{}`: {e}", play.loc, play.hosts))?
            .into_iter()
            .filter(|h| !dead.contains(h))
            .collect();
        let name = play.name.clone().unwrap_or_else(|| play.hosts.clone());
        self.emit(EventKind::PlayStart {
            play: name,
            hosts: selected.clone(),
        });
        if selected.is_empty() {
            self.warn(None, format!("no hosts matched `{}`", play.hosts));
            return Ok(());
        }
        {
            let mut stats = self.stats.lock().unwrap();
            for h in &selected {
                stats.entry(h.clone()).or_default();
            }
        }
        for batch in serial_batches(&play.serial, &selected)? {
            if self.interrupted() {
                break;
            }
            let pr = PlayRun {
                play,
                base: {
                    let epoch = self.inv_epoch.load(Ordering::SeqCst);
                    batch
                        .iter()
                        .map(|h| Mutex::new((epoch, self.hosts.base_vars(h))))
                        .collect()
                },
                states: batch
                    .iter()
                    .map(|_| Mutex::new(HostState::default()))
                    .collect(),
                names: batch,
                ended: AtomicBool::new(false),
            };
            let all: Vec<usize> = (0..pr.names.len()).collect();
            let root = Inherit::root(play);
            if play.gather_facts.unwrap_or(true) {
                let gather = Task {
                    name: Some("Gathering Facts".into()),
                    op: "setup".into(),
                    keywords: TaskKeywords {
                        tags: vec!["always".into()],
                        ..TaskKeywords::default()
                    },
                    loc: play.loc.clone(),
                    ..Task::default()
                };
                let kw = root.child(&gather.keywords);
                self.run_task(&pr, &gather, &kw, false, all.clone(), false)
                    .await;
            }
            for (i, section) in [
                &play.pre_tasks[..],
                &play.role_tasks[..],
                &play.tasks[..],
                &play.post_tasks[..],
            ]
            .into_iter()
            .enumerate()
            {
                match self.opts.strategy {
                    Strategy::Linear => self.walk(&pr, section, all.clone(), &root).await,
                    Strategy::Free => {
                        join_all(all.iter().map(|&h| self.walk(&pr, section, vec![h], &root)))
                            .await;
                    }
                }
                // Handlers run after pre_tasks, after roles+tasks, and after post_tasks.
                if i != 1 {
                    self.flush_handlers(&pr, &all).await;
                }
            }
            let mut all_failed = true;
            for (h, name) in pr.names.iter().enumerate() {
                let s = pr.states[h].lock().unwrap();
                if s.failed {
                    self.failed_hosts.lock().unwrap().insert(name.clone());
                }
                if s.failed || s.unreachable {
                    self.dead.lock().unwrap().insert(name.clone());
                } else {
                    all_failed = false;
                }
            }
            if all_failed {
                break;
            }
        }
        Ok(())
    }

    /// Walk task items over a set of hosts (linear: each task on all of them before the next).
    fn walk<'a>(
        &'a self,
        pr: &'a PlayRun<'a>,
        items: &'a [TaskItem],
        hosts: Vec<usize>,
        inh: &'a Inherit,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            for item in items {
                let active: Vec<usize> = hosts.iter().copied().filter(|&h| pr.active(h)).collect();
                if active.is_empty() || self.interrupted() {
                    return;
                }
                match item {
                    TaskItem::Task(t) => {
                        let kw = inh.child(&t.keywords);
                        if !self.tags_match(&kw.tags) || !self.started(t) {
                            continue;
                        }
                        self.run_task(pr, t, &kw, inh.rescuable, active, false)
                            .await;
                    }
                    TaskItem::Block(b) => {
                        let kw = inh.child(&b.keywords);
                        let inner = Inherit {
                            kw: kw.clone(),
                            rescuable: inh.rescuable || !b.rescue.is_empty(),
                        };
                        self.walk(pr, &b.block, active.clone(), &inner).await;
                        let outer = Inherit {
                            kw,
                            rescuable: inh.rescuable,
                        };
                        if !b.rescue.is_empty() && !pr.ended.load(Ordering::SeqCst) {
                            let to_rescue: Vec<usize> = active
                                .iter()
                                .copied()
                                .filter(|&h| {
                                    let mut s = pr.states[h].lock().unwrap();
                                    let take = s.failed && !s.unreachable;
                                    if take {
                                        s.failed = false;
                                    }
                                    take
                                })
                                .collect();
                            if !to_rescue.is_empty() {
                                self.walk(pr, &b.rescue, to_rescue, &outer).await;
                            }
                        }
                        if !b.always.is_empty() && !pr.ended.load(Ordering::SeqCst) {
                            let mut was_failed = Vec::new();
                            for &h in &active {
                                let mut s = pr.states[h].lock().unwrap();
                                if s.failed && !s.unreachable {
                                    s.failed = false;
                                    was_failed.push(h);
                                }
                            }
                            self.walk(pr, &b.always, active.clone(), &outer).await;
                            for h in was_failed {
                                pr.states[h].lock().unwrap().failed = true;
                            }
                        }
                    }
                }
            }
        })
    }

    /// Whether `--start-at-task` lets this task run (and clears it once reached).
    fn started(&self, t: &Task) -> bool {
        let mut pending = self.pending_start.lock().unwrap();
        match pending.as_deref() {
            None => true,
            Some(name) if t.name.as_deref() == Some(name) || t.display_name() == name => {
                *pending = None;
                true
            }
            Some(_) => false,
        }
    }

    /// Ansible's tag selection, `always` and `never` included.
    fn tags_match(&self, task_tags: &[String]) -> bool {
        let has = |t: &str| task_tags.iter().any(|x| x == t);
        let untagged = task_tags.is_empty();
        let only: Vec<&str> = if self.opts.tags.is_empty() {
            vec!["all"]
        } else {
            self.opts.tags.iter().map(String::as_str).collect()
        };
        let skip: Vec<&str> = self.opts.skip_tags.iter().map(String::as_str).collect();
        let in_list = |list: &[&str]| {
            list.iter()
                .any(|l| has(l) || (untagged && *l == "untagged"))
        };
        let mut run = has("always")
            || (only.contains(&"all") && !has("never"))
            || in_list(&only)
            || (only.contains(&"tagged") && !untagged && !has("never"));
        if run && !skip.is_empty() {
            if skip.contains(&"all") {
                if !has("always") || skip.contains(&"always") {
                    run = false;
                }
            } else if in_list(&skip) || (skip.contains(&"tagged") && !untagged) {
                run = false;
            }
        }
        run
    }

    /// Run one task on the given (active) hosts, then apply its effects.
    async fn run_task(
        &self,
        pr: &PlayRun<'_>,
        t: &Task,
        kw: &TaskKeywords,
        rescuable: bool,
        active: Vec<usize>,
        handler: bool,
    ) {
        let run_once = kw.run_once.unwrap_or(false)
            || ops::lookup(&t.op).is_some_and(|op| op.bypass_host_loop());
        let targets: Vec<usize> = if run_once {
            active.iter().copied().take(1).collect()
        } else {
            active.clone()
        };
        let silent = ops::lookup(&t.op).is_some_and(|op| op.silent());
        if !silent {
            self.emit(EventKind::TaskStart {
                task: t.display_name(),
                op: t.op.clone(),
                loc: t.loc.to_string(),
                handler,
                hosts: targets.iter().map(|&h| pr.names[h].clone()).collect(),
            });
        }
        let outs = join_all(targets.iter().map(|&h| async move {
            let _permit = self.forks.acquire().await.expect("forks semaphore closed");
            let out = self.run_on_host(pr, t, kw, h).await;
            let control = out.control;
            let newly_failed = out.failed && !kw.ignore_errors.unwrap_or(false);
            let register = t
                .register
                .as_ref()
                .map(|r| (r.clone(), Value::Object(out.result.clone())));
            let facts = (out.facts.clone(), out.included.clone());
            if silent && !out.failed {
                if out.control == Some(Control::EndHost) {
                    pr.states[h].lock().unwrap().ended = true;
                }
            } else {
                self.apply(pr, t, kw, rescuable, h, out);
            }
            (control, newly_failed, register, facts)
        }))
        .await;
        if run_once {
            // The result of a run_once task is every host's result.
            if let Some((_, _, register, (facts, included))) = outs.first() {
                let mut all = self.facts.lock().unwrap();
                let mut all_included = self.included.lock().unwrap();
                for &h in active.iter().skip(1) {
                    let f = all.entry(pr.names[h].clone()).or_default();
                    if let Some((k, v)) = register {
                        f.insert(k.clone(), v.clone());
                    }
                    f.extend(facts.clone());
                    if !included.is_empty() {
                        all_included
                            .entry(pr.names[h].clone())
                            .or_default()
                            .extend(included.clone());
                    }
                }
            }
        }
        let any_failed = outs.iter().any(|o| o.1);
        if any_failed && kw.any_errors_fatal.unwrap_or(false) && !rescuable {
            self.warn(
                None,
                "any_errors_fatal: a host failed, ending the play for all hosts",
            );
            pr.ended.store(true, Ordering::SeqCst);
        }
        if let Some(pct) = pr.play.max_fail_percentage {
            let total = pr.names.len() as f64;
            let failed = pr
                .states
                .iter()
                .filter(|s| {
                    let s = s.lock().unwrap();
                    s.failed || s.unreachable
                })
                .count() as f64;
            if total > 0.0 && failed * 100.0 / total > pct && !pr.ended.load(Ordering::SeqCst) {
                self.warn(
                    None,
                    format!("max_fail_percentage {pct}% exceeded: ending the play"),
                );
                pr.ended.store(true, Ordering::SeqCst);
            }
        }
        let controls: Vec<Control> = outs.iter().filter_map(|o| o.0).collect();
        if controls.contains(&Control::EndPlay) {
            pr.ended.store(true, Ordering::SeqCst);
        }
        if controls.contains(&Control::FlushHandlers) && !handler {
            // Under `free`, each host flushes its own handlers when it gets there.
            let which: Vec<usize> = match self.opts.strategy {
                Strategy::Linear => (0..pr.names.len()).collect(),
                Strategy::Free => active.clone(),
            };
            Box::pin(self.flush_handlers(pr, &which)).await;
        }
    }

    /// Record a host's task result: counters, state, facts, notifications, event.
    fn apply(
        &self,
        pr: &PlayRun<'_>,
        t: &Task,
        kw: &TaskKeywords,
        rescuable: bool,
        h: usize,
        out: TaskOutput,
    ) {
        let host = &pr.names[h];
        let ignore = kw.ignore_errors.unwrap_or(false);
        let mut rescued = false;
        {
            let mut stats = self.stats.lock().unwrap();
            let st = stats.entry(host.clone()).or_default();
            let mut s = pr.states[h].lock().unwrap();
            if out.unreachable {
                st.unreachable += 1;
                s.unreachable = true;
            } else if out.failed {
                if ignore {
                    st.ok += 1;
                    st.ignored += 1;
                    if out.changed {
                        st.changed += 1;
                    }
                } else if rescuable {
                    st.rescued += 1;
                    s.failed = true;
                    rescued = true;
                } else {
                    st.failed += 1;
                    s.failed = true;
                }
            } else if out.skipped {
                st.skipped += 1;
                if out.not_checked {
                    st.not_checked += 1;
                }
            } else {
                st.ok += 1;
                if out.changed {
                    st.changed += 1;
                    for n in &t.notify {
                        if !s.notified.contains(n) {
                            s.notified.push(n.clone());
                        }
                    }
                }
            }
            if out.control == Some(Control::EndHost) {
                s.ended = true;
            }
        }
        {
            let mut facts = self.facts.lock().unwrap();
            let f = facts.entry(host.clone()).or_default();
            if let Some(r) = &t.register {
                f.insert(r.clone(), Value::Object(out.result.clone()));
            }
            if !out.failed && !out.unreachable {
                f.extend(out.facts.clone());
                if !out.included.is_empty() {
                    self.included
                        .lock()
                        .unwrap()
                        .entry(host.clone())
                        .or_default()
                        .extend(out.included.clone());
                }
            }
            self.track_unchecked(host, t, &out);
            if rescued {
                f.insert(
                    "ansible_failed_result".into(),
                    Value::Object(out.result.clone()),
                );
                let mut task = Map::new();
                task.insert("name".into(), t.display_name().into());
                task.insert("action".into(), t.op.clone().into());
                f.insert("ansible_failed_task".into(), Value::Object(task));
            }
        }
        let no_log = kw.no_log.unwrap_or(false);
        let ev = self.host_result(host, t, &out, no_log, ignore && out.failed, rescued, None);
        self.emit(EventKind::HostResult(ev));
    }

    #[allow(clippy::too_many_arguments)]
    fn host_result(
        &self,
        host: &str,
        t: &Task,
        out: &TaskOutput,
        no_log: bool,
        ignored: bool,
        rescued: bool,
        item: Option<Value>,
    ) -> HostResult {
        let text = |k: &str| out.result.get(k).and_then(Value::as_str).map(truncate);
        HostResult {
            host: host.to_string(),
            task: t.display_name(),
            op: t.op.clone(),
            outcome: out.outcome(),
            changed: out.changed,
            ignored,
            rescued,
            not_checked: out.not_checked,
            duration_secs: out.duration,
            msg: if no_log {
                Some(NO_LOG_MSG.into())
            } else {
                out.msg.clone()
            },
            rc: if no_log {
                None
            } else {
                out.result.get("rc").and_then(Value::as_i64)
            },
            stdout: if no_log { None } else { text("stdout") },
            stderr: if no_log { None } else { text("stderr") },
            diff: if no_log { None } else { out.diff.clone() },
            item: if no_log { None } else { item },
            delegated_to: out.delegated_to.clone(),
            attempts: out.attempts,
            no_log,
        }
    }

    /// SEAM(integration): the task's variable view; move to `crate::vars` with its precedence.
    /// Low to high: role defaults, inventory, play vars, vars_files, role vars, block and task
    /// vars, set_fact/registered, role params, extra vars; then magic variables.
    fn task_vars(&self, pr: &PlayRun<'_>, h: usize, t: &Task, kw: &TaskKeywords) -> Vars {
        let play = pr.play;
        let mut v = Vars::new();
        if let Some(r) = &t.role {
            v.extend(r.defaults.clone());
        }
        {
            let mut base = pr.base[h].lock().unwrap();
            let epoch = self.inv_epoch.load(Ordering::SeqCst);
            if base.0 != epoch {
                *base = (epoch, self.hosts.base_vars(&pr.names[h]));
            }
            v.extend(base.1.clone());
        }
        v.extend(play.vars.clone());
        for (_, f) in &play.vars_files {
            v.extend(f.clone());
        }
        if let Some(r) = &t.role {
            v.extend(r.vars.clone());
        }
        v.extend(kw.vars.clone());
        if let Some(f) = self.included.lock().unwrap().get(&pr.names[h]) {
            v.extend(f.clone());
        }
        if let Some(f) = self.facts.lock().unwrap().get(&pr.names[h]) {
            v.extend(f.clone());
        }
        if let Some(r) = &t.role {
            v.extend(r.params.clone());
            v.insert("role_name".into(), r.name.clone().into());
            v.insert("role_path".into(), absolute_dir(&r.dir).into());
        }
        v.extend(self.opts.extra_vars.clone());
        let name = &pr.names[h];
        v.insert("inventory_hostname".into(), name.clone().into());
        v.insert(
            "inventory_hostname_short".into(),
            name.split('.').next().unwrap_or(name).into(),
        );
        v.insert("ansible_check_mode".into(), self.check_mode(kw).into());
        v.insert("ansible_diff_mode".into(), self.opts.diff.into());
        v.insert("ansible_verbosity".into(), self.opts.verbosity.into());
        let play_hosts: Vec<Value> = (0..pr.names.len())
            .filter(|&i| pr.active(i) || i == h)
            .map(|i| pr.names[i].clone().into())
            .collect();
        v.insert(
            "ansible_play_hosts".into(),
            Value::Array(play_hosts.clone()),
        );
        v.insert(
            "ansible_play_batch".into(),
            Value::Array(play_hosts.clone()),
        );
        v.insert("play_hosts".into(), Value::Array(play_hosts));
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

    /// Whether a task runs in check mode: its `check_mode:` keyword, else `--check`.
    fn check_mode(&self, kw: &TaskKeywords) -> bool {
        kw.check_mode.unwrap_or(self.opts.check)
    }

    /// In check mode, a variable the task uses that a task check mode could
    /// not run registered (or set): its value is unknown, so the task is not
    /// checked either.
    fn uses_unchecked(&self, host: &str, t: &Task, kw: &TaskKeywords) -> Option<String> {
        if !self.check_mode(kw) {
            return None;
        }
        let unchecked = self.unchecked_vars.lock().unwrap();
        let names = unchecked.get(host)?;
        let mut names: Vec<&String> = names.iter().collect();
        names.sort();
        names.into_iter().find(|n| task_uses_var(t, kw, n)).cloned()
    }

    /// Remember what a not-checked task would have registered or set; a task
    /// that ran registers a known value again.
    fn track_unchecked(&self, host: &str, t: &Task, out: &TaskOutput) {
        let mut set: Vec<String> = t.register.iter().cloned().collect();
        if out.not_checked && t.op.trim_start_matches("ansible.builtin.") == "set_fact" {
            set.extend(t.args.keys().filter(|k| *k != "cacheable").cloned());
        }
        if set.is_empty() {
            return;
        }
        let mut all = self.unchecked_vars.lock().unwrap();
        let names = all.entry(host.to_string()).or_default();
        for n in set {
            if out.not_checked {
                names.insert(n);
            } else {
                names.remove(&n);
            }
        }
    }

    async fn transport_for(&self, host: &str) -> Result<Arc<dyn Transport>, String> {
        let cell = self
            .conns
            .lock()
            .unwrap()
            .entry(host.to_string())
            .or_default()
            .clone();
        cell.get_or_init(|| async {
            let vars = self.hosts.base_vars(host);
            self.connector
                .connect(host, &vars)
                .await
                .map_err(|e| e.to_string())
        })
        .await
        .clone()
    }

    fn conditions(&self, conds: &[String], vars: &Vars) -> Result<bool, String> {
        for c in conds {
            if !self.render.eval_condition(c, vars)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// One task on one host: `when`, the loop, and each item.
    async fn run_on_host(
        &self,
        pr: &PlayRun<'_>,
        t: &Task,
        kw: &TaskKeywords,
        h: usize,
    ) -> TaskOutput {
        let start = Instant::now();
        let vars = self.task_vars(pr, h, t, kw);
        let Some(op) = ops::lookup(&t.op) else {
            return TaskOutput::failed(format!("{}: unknown op `{}`", t.loc, t.op));
        };
        if let Some(var) = self.uses_unchecked(&pr.names[h], t, kw) {
            let mut out = TaskOutput::skipped(&format!(
                "uses `{var}`, the result of a task check mode could not run"
            ));
            out.not_checked = true;
            return out;
        }
        let mut out = match &t.loop_ {
            None => match self.conditions(&kw.when, &vars) {
                Err(e) => TaskOutput::failed(format!("when: {e}")),
                Ok(false) => TaskOutput::skipped("Conditional result was False"),
                Ok(true) => self.run_item(pr, h, t, kw, op, &vars).await,
            },
            Some(l) => self.run_loop(pr, h, t, kw, op, &vars, l).await,
        };
        out.duration = start.elapsed().as_secs_f64();
        out
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_loop(
        &self,
        pr: &PlayRun<'_>,
        h: usize,
        t: &Task,
        kw: &TaskKeywords,
        op: &'static dyn Op,
        vars: &Vars,
        l: &Value,
    ) -> TaskOutput {
        let items = match self.render.render_value(l, vars) {
            Ok(Value::Array(a)) => a,
            Ok(Value::Null) => Vec::new(),
            Ok(other) => {
                return TaskOutput::failed(format!("loop needs a list, got {}", kind_of(&other)));
            }
            Err(e) => return TaskOutput::failed(format!("loop: {e}")),
        };
        let loop_var = if t.loop_var.is_empty() {
            "item".to_string()
        } else {
            t.loop_var.clone()
        };
        let pause = match &t.loop_pause {
            None => None,
            Some(p) => match self.render.render_value(p, vars) {
                Ok(v) => match v
                    .as_f64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                {
                    Some(secs) if secs > 0.0 => Some(Duration::from_secs_f64(secs)),
                    Some(_) => None,
                    None => {
                        return TaskOutput::failed(format!(
                            "loop_control.pause: {v} is not a number of seconds"
                        ));
                    }
                },
                Err(e) => return TaskOutput::failed(format!("loop_control.pause: {e}")),
            },
        };
        let no_log = kw.no_log.unwrap_or(false);
        let mut total = TaskOutput::default();
        let mut results = Vec::new();
        let n = items.len();
        for (i, item) in items.iter().enumerate() {
            if self.interrupted() {
                break;
            }
            if i > 0
                && let Some(p) = pause
            {
                tokio::time::sleep(p).await;
            }
            let item = item.clone();
            let item_start = Instant::now();
            let mut iv = vars.clone();
            iv.insert(loop_var.clone(), item.clone());
            iv.insert("ansible_loop_var".into(), loop_var.clone().into());
            if let Some(index_var) = &t.loop_index_var {
                iv.insert("ansible_index_var".into(), index_var.clone().into());
                iv.insert(index_var.clone(), i.into());
            }
            if t.loop_extended {
                let mut l = Map::new();
                l.insert("index".into(), (i + 1).into());
                l.insert("index0".into(), i.into());
                l.insert("first".into(), (i == 0).into());
                l.insert("last".into(), (i + 1 == n).into());
                l.insert("length".into(), n.into());
                l.insert("revindex".into(), (n - i).into());
                l.insert("revindex0".into(), (n - i - 1).into());
                if t.loop_extended_allitems.unwrap_or(true) {
                    l.insert("allitems".into(), Value::Array(items.clone()));
                }
                if i + 1 < n {
                    l.insert("nextitem".into(), items[i + 1].clone());
                }
                if i > 0 {
                    l.insert("previtem".into(), items[i - 1].clone());
                }
                iv.insert("ansible_loop".into(), Value::Object(l));
            }
            let mut o = match self.conditions(&kw.when, &iv) {
                Err(e) => TaskOutput::failed(format!("when: {e}")),
                Ok(false) => TaskOutput::skipped("Conditional result was False"),
                Ok(true) => self.run_item(pr, h, t, kw, op, &iv).await,
            };
            o.result.insert(loop_var.clone(), item.clone());
            o.result
                .insert("ansible_loop_var".into(), loop_var.clone().into());
            if let Some(index_var) = &t.loop_index_var {
                o.result.insert(index_var.clone(), i.into());
                o.result
                    .insert("ansible_index_var".into(), index_var.clone().into());
            }
            if let Some(l) = iv.get("ansible_loop").filter(|_| t.loop_extended) {
                o.result.insert("ansible_loop".into(), l.clone());
            }
            let label = match &t.loop_label {
                Some(lbl) => self
                    .render
                    .render_value(&Value::String(lbl.clone()), &iv)
                    .unwrap_or_else(|_| Value::String(lbl.clone())),
                None => item.clone(),
            };
            let mut ev = self.host_result(&pr.names[h], t, &o, no_log, false, false, Some(label));
            ev.duration_secs = item_start.elapsed().as_secs_f64();
            ev.ignored = o.failed && kw.ignore_errors.unwrap_or(false);
            self.emit(EventKind::ItemResult(ev));
            total.changed |= o.changed;
            total.failed |= o.failed;
            total.not_checked |= o.not_checked;
            total.unreachable |= o.unreachable;
            total.facts.extend(std::mem::take(&mut o.facts));
            total.included.extend(std::mem::take(&mut o.included));
            if o.control.is_some() {
                total.control = o.control;
            }
            total.delegated_to = o.delegated_to.take();
            let unreachable = o.unreachable;
            let stop = if t.loop_break_when.is_empty() || unreachable {
                Ok(false)
            } else {
                if let Some(r) = &t.register {
                    iv.insert(r.clone(), Value::Object(o.result.clone()));
                }
                self.conditions(&t.loop_break_when, &iv)
            };
            results.push(Value::Object(o.result));
            if unreachable {
                break;
            }
            match stop {
                Ok(false) => {}
                Ok(true) => break,
                Err(e) => {
                    total.failed = true;
                    self.warn(Some(&pr.names[h]), format!("loop_control.break_when: {e}"));
                    break;
                }
            }
        }
        total.skipped = results.is_empty()
            || results
                .iter()
                .all(|r| r.get("skipped").and_then(Value::as_bool) == Some(true));
        let mut result = Map::new();
        result.insert("changed".into(), total.changed.into());
        result.insert("failed".into(), total.failed.into());
        if total.failed {
            total.msg = Some("One or more items failed".into());
            result.insert("msg".into(), "One or more items failed".into());
        } else if total.skipped {
            total.msg = Some(if n == 0 {
                "No items in the list".into()
            } else {
                "All items skipped".into()
            });
            result.insert("skipped".into(), true.into());
        }
        result.insert("results".into(), Value::Array(results));
        total.result = result;
        total
    }

    /// One item (or the whole task without a loop): connect, render, run with retries.
    #[allow(clippy::too_many_arguments)]
    async fn run_item(
        &self,
        pr: &PlayRun<'_>,
        h: usize,
        t: &Task,
        kw: &TaskKeywords,
        op: &'static dyn Op,
        vars: &Vars,
    ) -> TaskOutput {
        let host = &pr.names[h];
        let no_log = kw.no_log.unwrap_or(false);
        let mut delegated_to = None;
        let mut check_t: Option<Arc<CheckTransport>> = None;
        let transport: Arc<dyn Transport> = if op.needs_connection() {
            let target = match &kw.delegate_to {
                Some(d) => match self.render.render_value(&Value::String(d.clone()), vars) {
                    Ok(Value::String(s)) => {
                        delegated_to = Some(s.clone());
                        s
                    }
                    Ok(other) => return TaskOutput::failed(format!("delegate_to: got {other}")),
                    Err(e) => return TaskOutput::failed(format!("delegate_to: {e}")),
                },
                None => host.clone(),
            };
            let transport: Arc<dyn Transport> = match self.transport_for(&target).await {
                Ok(t) if self.opts.verbosity >= 3 => Arc::new(Traced {
                    inner: t,
                    sink: self.sink.clone(),
                    hide: no_log,
                }),
                Ok(t) => t,
                Err(e) => {
                    let mut o = TaskOutput::unreachable(e);
                    o.delegated_to = delegated_to;
                    return o;
                }
            };
            // A --check run: the task sees what earlier tasks would have done
            // on that machine (by any inventory name that reaches it).
            if self.opts.check && self.check_mode(kw) {
                let (state, controller) = {
                    let mut states = self.check_states.lock().unwrap();
                    let state = states.entry(transport.endpoint()).or_default().clone();
                    // The controller is the machine `local` connections reach.
                    let controller = states.entry("local".into()).or_default().clone();
                    (state, controller)
                };
                let ct =
                    Arc::new(CheckTransport::new(transport, state).with_controller(controller));
                check_t = Some(ct.clone());
                ct
            } else {
                transport
            }
        } else {
            Arc::new(NoTransport(host.clone()))
        };
        // One render call for all arguments: the template context is built once.
        let raw = op.raw_args();
        let to_render: Map<String, Value> = t
            .args
            .iter()
            .filter(|(k, _)| !raw.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut rendered = if to_render.is_empty() {
            Map::new()
        } else {
            match self.render.render_value(&Value::Object(to_render), vars) {
                Ok(Value::Object(m)) => m,
                Ok(_) => Map::new(),
                Err(e) => return TaskOutput::failed(format!("arguments: {e}")),
            }
        };
        let args: Vars = t
            .args
            .iter()
            .map(|(k, v)| {
                let v = rendered.remove(k).unwrap_or_else(|| v.clone());
                (k.clone(), v)
            })
            .collect();
        let mut env = Vec::new();
        for item in &kw.environment {
            let rendered = match self.render.render_value(item, vars) {
                Ok(Value::Object(m)) => m,
                Ok(other) => {
                    return TaskOutput::failed(format!(
                        "environment must be a mapping of variable names to values, got {other}"
                    ));
                }
                Err(e) => return TaskOutput::failed(format!("environment: {e}")),
            };
            for (k, v) in rendered {
                let v = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                match env.iter_mut().find(|(name, _)| *name == k) {
                    Some(slot) => slot.1 = v,
                    None => env.push((k, v)),
                }
            }
        }
        let become_ = kw.become_.unwrap_or(false).then(|| Become {
            user: kw.become_user.clone(),
            password: self.opts.become_password.clone(),
        });
        let timeout = kw
            .timeout
            .map(Duration::from_secs_f64)
            .or(self.opts.default_timeout);
        let role_dir = t.role.as_ref().map(|r| r.dir.as_path());
        let ctx = OpContext {
            host,
            transport,
            args: &args,
            vars,
            check: self.check_mode(kw),
            diff: self.opts.diff,
            base_dir: if pr.play.base_dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                &pr.play.base_dir
            },
            role_dir,
            become_,
            env,
            timeout,
            render: self.render.as_ref(),
        };
        let retries = if t.until.is_some() {
            t.retries.unwrap_or(3)
        } else {
            0
        };
        let delay = Duration::from_secs_f64(t.delay.unwrap_or(5.0).max(0.0));
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let run = op.run(&ctx);
            let res = match timeout {
                // Backstop: transports kill commands at the timeout; this ends an op stuck elsewhere.
                Some(d) => match tokio::time::timeout(d + Duration::from_secs(5), run).await {
                    Ok(r) => r,
                    Err(_) => Ok(OpOutcome::failed(format!(
                        "task timed out after {}s",
                        d.as_secs_f64()
                    ))),
                },
                None => run.await,
            };
            let outcome = match res {
                Ok(o) => o,
                Err(OpError::Transport(e)) if e.is_unreachable() => {
                    let mut o = TaskOutput::unreachable(e.to_string());
                    o.delegated_to = delegated_to;
                    return o;
                }
                Err(e) => OpOutcome::failed(e.to_string()),
            };
            let outcome = self.change_inventory(outcome);
            let mut o = self.finish(t, outcome, vars);
            o.not_checked = o.skipped && ctx.check;
            // It read what a task check mode could not run would have made:
            // its own result is unknown too.
            if let Some(p) = check_t.as_ref().and_then(|c| c.unknown_seen()) {
                o = TaskOutput::skipped(&format!(
                    "reads {p}, which a task check mode could not run would make or change"
                ));
                o.not_checked = true;
            }
            o.delegated_to = delegated_to.clone();
            let Some(until) = &t.until else {
                return o;
            };
            o.result.insert("attempts".into(), attempts.into());
            o.attempts = Some(attempts);
            let mut uv = vars.clone();
            if let Some(r) = &t.register {
                uv.insert(r.clone(), Value::Object(o.result.clone()));
            }
            match self.render.eval_condition(until, &uv) {
                Ok(true) => return o,
                Ok(false) if attempts > retries || self.interrupted() => {
                    o.failed = true;
                    o.result.insert("failed".into(), true.into());
                    if o.msg.is_none() {
                        o.msg = Some(format!(
                            "`until: {until}` still false after {attempts} attempts"
                        ));
                    }
                    return o;
                }
                Ok(false) => {
                    self.warn(
                        Some(host),
                        format!(
                            "FAILED - RETRYING: {} ({} retries left)",
                            t.display_name(),
                            retries + 1 - attempts
                        ),
                    );
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return TaskOutput::failed(format!("until: {e}")),
            }
        }
    }

    /// Apply the inventory changes an op asked for (add_host, group_by): the task is
    /// changed when the inventory changed, failed when a change cannot be made.
    fn change_inventory(&self, mut outcome: OpOutcome) -> OpOutcome {
        if outcome.failed {
            return outcome;
        }
        for c in std::mem::take(&mut outcome.inventory) {
            match self.hosts.change(&c) {
                Ok(true) => {
                    outcome.changed = true;
                    self.inv_epoch.fetch_add(1, Ordering::SeqCst);
                }
                Ok(false) => {}
                Err(e) => return OpOutcome::failed(e),
            }
        }
        outcome
    }

    /// Turn an op's outcome into the task result: Ansible's keys, changed_when, failed_when.
    fn finish(&self, t: &Task, o: OpOutcome, vars: &Vars) -> TaskOutput {
        let mut result = o.result;
        result.insert("changed".into(), o.changed.into());
        result.insert("failed".into(), o.failed.into());
        if o.skipped {
            result.insert("skipped".into(), true.into());
        }
        if let Some(m) = &o.msg {
            result.entry("msg").or_insert_with(|| m.clone().into());
        }
        let mut out = TaskOutput {
            changed: o.changed,
            failed: o.failed,
            skipped: o.skipped,
            msg: o.msg,
            result,
            diff: o.diff,
            facts: o.facts,
            included: o.included_vars,
            control: o.control,
            ..TaskOutput::default()
        };
        if out.skipped || (t.changed_when.is_empty() && t.failed_when.is_empty()) {
            return out;
        }
        let mut cv = vars.clone();
        if let Some(r) = &t.register {
            cv.insert(r.clone(), Value::Object(out.result.clone()));
        }
        if !t.changed_when.is_empty() {
            match self.conditions(&t.changed_when, &cv) {
                Ok(c) => {
                    out.changed = c;
                    out.result.insert("changed".into(), c.into());
                }
                Err(e) => return TaskOutput::failed(format!("changed_when: {e}")),
            }
            if let Some(r) = &t.register {
                cv.insert(r.clone(), Value::Object(out.result.clone()));
            }
        }
        if !t.failed_when.is_empty() {
            match self.conditions(&t.failed_when, &cv) {
                Ok(f) => {
                    out.failed = f;
                    out.result.insert("failed".into(), f.into());
                    out.result.insert("failed_when_result".into(), f.into());
                    if !f {
                        out.msg = None;
                    } else if out.msg.is_none() {
                        out.msg = Some(format!("failed_when: {}", t.failed_when.join(" and ")));
                    }
                }
                Err(e) => return TaskOutput::failed(format!("failed_when: {e}")),
            }
        }
        out
    }

    /// Run notified handlers, in definition order, once per host that notified them.
    async fn flush_handlers(&self, pr: &PlayRun<'_>, hosts: &[usize]) {
        let handlers = &pr.play.handlers;
        for _pass in 0..16 {
            let mut notified: Vec<(usize, Vec<String>)> = Vec::new();
            for &h in hosts {
                let mut s = pr.states[h].lock().unwrap();
                if s.notified.is_empty() {
                    continue;
                }
                let eligible = !s.unreachable
                    && !s.ended
                    && (self.opts.force_handlers
                        || (!s.failed && !pr.ended.load(Ordering::SeqCst)));
                let n = std::mem::take(&mut s.notified);
                if eligible {
                    notified.push((h, n));
                }
            }
            if notified.is_empty() || self.interrupted() {
                return;
            }
            for n in notified.iter().flat_map(|(_, n)| n) {
                let known = handlers.iter().any(|hd| {
                    hd.name.as_deref() == Some(n)
                        || hd.display_name() == *n
                        || hd.listen.contains(n)
                });
                if !known {
                    self.warn(
                        None,
                        format!(
                            "a task notified `{n}`, but no handler has that name or listens to it"
                        ),
                    );
                }
            }
            let root = Inherit::root(pr.play);
            for hd in handlers {
                let targets: Vec<usize> = notified
                    .iter()
                    .filter(|(h, n)| {
                        let s = pr.states[*h].lock().unwrap();
                        !s.unreachable
                            && (self.opts.force_handlers || !s.failed)
                            && n.iter().any(|x| {
                                hd.name.as_deref() == Some(x)
                                    || hd.display_name() == *x
                                    || hd.listen.contains(x)
                            })
                    })
                    .map(|(h, _)| *h)
                    .collect();
                if targets.is_empty() {
                    continue;
                }
                let kw = root.child(&hd.keywords);
                self.run_task(pr, hd, &kw, false, targets, true).await;
            }
        }
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Split hosts into `serial` batches (numbers or percentages; the last size repeats).
pub fn serial_batches(serial: &[Value], hosts: &[String]) -> Result<Vec<Vec<String>>, String> {
    if serial.is_empty() {
        return Ok(vec![hosts.to_vec()]);
    }
    let total = hosts.len();
    let size = |v: &Value| -> Result<usize, String> {
        let n = match v {
            Value::Number(n) => n.as_f64().unwrap_or(0.0) as usize,
            Value::String(s) if s.trim().ends_with('%') => {
                let p: f64 = s
                    .trim()
                    .trim_end_matches('%')
                    .trim()
                    .parse()
                    .map_err(|_| format!("serial: `{s}` is not a percentage"))?;
                ((total as f64) * p / 100.0).floor() as usize
            }
            Value::String(s) => s
                .trim()
                .parse()
                .map_err(|_| format!("serial: `{s}` is neither a number nor a percentage"))?,
            other => {
                return Err(format!(
                    "serial: `{other}` is neither a number nor a percentage"
                ));
            }
        };
        Ok(n.max(1))
    };
    let mut batches = Vec::new();
    let mut rest = hosts;
    let mut i = 0;
    while !rest.is_empty() {
        let n = size(&serial[i.min(serial.len() - 1)])?.min(rest.len());
        batches.push(rest[..n].to_vec());
        rest = &rest[n..];
        i += 1;
    }
    Ok(batches)
}

/// `playbook_dir` and `role_path` are absolute, as in Ansible: a path built
/// from them (`{{ playbook_dir }}/../x`) means the same in a command run
/// elsewhere and as a `copy` src.
fn absolute_dir(p: &std::path::Path) -> String {
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
