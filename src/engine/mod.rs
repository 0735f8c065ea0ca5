//! Runs plays: hosts in parallel, tasks in order, handlers, failures; emits events.
//!
//! The engine never knows which op it runs ([`crate::ops::lookup`]) and never
//! prints: everything it does is an [`Event`] sent to an [`EventSink`].
//!
//! What the engine is given: a [`HostSource`] (host selection and each host's base
//! variables), a [`Connector`] (opening a host's transport) and an [`EventSink`]; templates
//! go through [`render::TemplateRender`] (`crate::template`'s one Environment).
//!
//! The parts, one concept each: `scheduler` (serial batches, strategies), `blocks`
//! (block/rescue/always, inherited keywords), `selection` (tags, `--start-at-task`),
//! `task` (one task on its hosts and its result), `loops` and `item` (loop items,
//! delegation, retries/until), `handlers`, `task_vars` (variable assembly),
//! `play_run` (one batch's state), `check_mode`, `connect` (one connection per host), `hosts`.

mod blocks;
mod check_mode;
mod connect;
pub mod events;
mod handlers;
mod hosts;
mod item;
mod loops;
mod play_run;
pub mod render;
mod scheduler;
mod selection;
mod task;
mod task_vars;
mod var_use;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use indexmap::IndexMap;
use tokio::sync::Semaphore;

pub use events::*;

use crate::exit;
use crate::ops::check_state::CheckState;
use crate::playbook::{Playbook, Vars};

pub use connect::{ConnectFuture, Connector, local_connector};
pub use hosts::{HostSource, HostsError, InventoryHosts, StaticHosts};
pub use scheduler::{PlayError, SerialError, serial_batches};

use connect::ConnCell;

/// `--strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// A task starts on every host before the next task starts.
    #[default]
    Linear,
    /// Each host runs through its tasks as fast as it can.
    Free,
}

impl Strategy {
    /// The name `--strategy` takes.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Linear => "linear",
            Strategy::Free => "free",
        }
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Hosts worked on at once when `--forks` is not given (Ansible's default is 5; ferry's
/// hosts cost one connection and no process each).
pub const DEFAULT_FORKS: usize = 50;

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
    /// `--show-secrets`: at -vvv, show the values of variables named like
    /// secrets (password, secret, token, key) instead of masking them.
    pub show_secrets: bool,
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
            forks: DEFAULT_FORKS,
            check: false,
            diff: false,
            tags: Vec::new(),
            skip_tags: Vec::new(),
            start_at_task: None,
            strategy: Strategy::Linear,
            force_handlers: false,
            verbosity: 0,
            show_secrets: false,
            extra_vars: Vars::new(),
            become_password: None,
            default_timeout: None,
            playbook_names: Vec::new(),
        }
    }
}

/// Runs playbooks against hosts. One engine per run.
pub struct Engine {
    opts: RunOptions,
    hosts: Arc<dyn HostSource>,
    connector: Arc<dyn Connector>,
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
    /// would have done (see `ops::check_state`).
    check_states: Mutex<HashMap<String, Arc<CheckState>>>,
    /// `--check`: per host, variables registered (or set) by tasks check mode could not run.
    unchecked_vars: Mutex<HashMap<String, HashSet<String>>>,
    /// `-e`, the one layer every task's view has on top of the user's layers.
    extra_vars: Arc<crate::vars::Scope>,
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
        let extra_vars = Arc::new(crate::vars::Scope::plain(
            crate::vars::Layer::ExtraVars,
            "-e",
            opts.extra_vars.clone(),
        ));
        Self {
            extra_vars,
            opts,
            hosts,
            connector,
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
                if let Err(e) = self.run_play(play).await {
                    self.error.store(true, Ordering::SeqCst);
                    self.warn(None, e.to_string());
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
            exit::INTERRUPTED
        } else if self
            .stats
            .lock()
            .unwrap()
            .values()
            .any(|s| s.unreachable > 0)
        {
            exit::HOST_UNREACHABLE
        } else if !self.failed_hosts.lock().unwrap().is_empty() {
            exit::HOST_FAILED
        } else if self.error.load(Ordering::SeqCst) {
            exit::ERROR
        } else {
            exit::OK
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
}
