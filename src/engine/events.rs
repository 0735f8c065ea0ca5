//! What the engine tells the world: typed events, consumed by `crate::report`.
//! Their JSON shape (one object per line with `--events`) is documented in
//! `docs/events.schema.json`.

use std::time::{SystemTime, UNIX_EPOCH};

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::Value;

use crate::ops::Diff;

/// A task's result on one host, as the user sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Changed,
    Skipped,
    Failed,
    Unreachable,
}

/// Per-host counters, as Ansible's recap has them (`ok` includes `changed`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HostStats {
    pub ok: u32,
    pub changed: u32,
    pub unreachable: u32,
    pub failed: u32,
    pub skipped: u32,
    pub rescued: u32,
    pub ignored: u32,
    /// In check mode: tasks it could not check (commands without
    /// `creates`/`removes`, and tasks using what such a task registered),
    /// counted in `skipped` too.
    pub not_checked: u32,
}

/// One result of one task on one host (or one loop item of it).
#[derive(Debug, Clone, Serialize)]
pub struct HostResult {
    pub host: String,
    pub task: String,
    pub op: String,
    pub outcome: Outcome,
    pub changed: bool,
    /// Failed, but `ignore_errors` let the host go on.
    pub ignored: bool,
    /// Failed inside a block whose `rescue` takes over.
    pub rescued: bool,
    /// Skipped because check mode could not check it (see [`HostStats::not_checked`]).
    pub not_checked: bool,
    pub duration_secs: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rc: Option<i64>,
    /// Truncated to [`OUTPUT_LIMIT`] bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<Diff>,
    /// The loop item's label, for item results.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delegated_to: Option<String>,
    /// Attempts made under `retries`/`until`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// `no_log: true`: args and output were removed.
    pub no_log: bool,
}

/// Largest stdout/stderr carried in an event.
pub const OUTPUT_LIMIT: usize = 4096;

/// Cut `s` to [`OUTPUT_LIMIT`] bytes at a char boundary, saying so.
pub fn truncate(s: &str) -> String {
    if s.len() <= OUTPUT_LIMIT {
        return s.to_string();
    }
    let mut end = OUTPUT_LIMIT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... [{} bytes truncated]", &s[..end], s.len() - end)
}

/// Everything the engine reports.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    RunStart {
        playbooks: Vec<String>,
        check: bool,
        diff: bool,
    },
    PlayStart {
        play: String,
        hosts: Vec<String>,
    },
    TaskStart {
        task: String,
        op: String,
        /// file:line:col of the task.
        loc: String,
        handler: bool,
        hosts: Vec<String>,
    },
    /// A task's final result on a host.
    HostResult(HostResult),
    /// One loop item's result (the task's `host_result` follows).
    ItemResult(HostResult),
    /// A command sent to a host (only at -vvv).
    Command {
        host: String,
        cmd: String,
    },
    Warning {
        #[serde(skip_serializing_if = "Option::is_none")]
        host: Option<String>,
        msg: String,
    },
    Recap {
        hosts: IndexMap<String, HostStats>,
        /// The run was `--check`.
        check: bool,
        wall_secs: f64,
        interrupted: bool,
        exit_code: u8,
    },
}

/// An event with its time (seconds since the Unix epoch).
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub ts: f64,
    #[serde(flatten)]
    pub kind: EventKind,
}

impl Event {
    pub fn now(kind: EventKind) -> Self {
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        Self { ts, kind }
    }
}

/// A consumer of events (a reporter, the JSONL log, a test recorder).
pub trait EventSink: Send + Sync {
    fn emit(&self, event: &Event);
    /// Called once when the run is over (flush files, clear progress bars).
    fn finish(&self) {}
}

/// Sends each event to several sinks in order.
pub struct Fanout(pub Vec<std::sync::Arc<dyn EventSink>>);

impl EventSink for Fanout {
    fn emit(&self, event: &Event) {
        for s in &self.0 {
            s.emit(event);
        }
    }
    fn finish(&self) {
        for s in &self.0 {
            s.finish();
        }
    }
}

/// Keeps every event (tests, and `ferry bench`).
#[derive(Default)]
pub struct Recorder(pub std::sync::Mutex<Vec<Event>>);

impl EventSink for Recorder {
    fn emit(&self, event: &Event) {
        self.0.lock().unwrap().push(event.clone());
    }
}
