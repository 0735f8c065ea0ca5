//! What the experiment stage tells the world while it runs. Nothing here prints:
//! the runner emits these and `crate::report::experiment` decides how they look
//! (an indicatif bar on a terminal, plain lines otherwise).

use std::path::PathBuf;

use serde::Serialize;

use super::result::Outcome;

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ExperimentEvent {
    /// The results directory is ready; `to_run` runs are left of `total`.
    Started {
        experiment: String,
        dir: PathBuf,
        total: usize,
        to_run: usize,
        seed: u64,
        pairs: Vec<String>,
        resumed: bool,
    },
    /// `--resume` found these rows (a partial last line was cut off).
    Resumed {
        rows: usize,
        interrupted: usize,
        partial_line: Option<usize>,
    },
    Warning {
        message: String,
    },
    /// Hosts connected and their facts gathered.
    HostsReady {
        hosts: Vec<String>,
        wall_ms: f64,
    },
    RunStarted {
        index: u32,
        run_id: String,
        source: String,
        destination: String,
    },
    RunFinished {
        index: u32,
        run_id: String,
        outcome: Option<Outcome>,
        error: Option<String>,
        total_time_ms: Option<f64>,
        downtime_ms: Option<f64>,
        probe_downtime_ms: Option<f64>,
        run_wall_ms: f64,
    },
    /// Everything ran (or the run stopped: `interrupted`).
    Finished {
        dir: PathBuf,
        ran: usize,
        completed: usize,
        failed: usize,
        interrupted: bool,
        wall_ms: f64,
        /// Wall time of the stage outside `run_one` (connecting, facts, provenance,
        /// the store, events), and per run.
        orchestration_ms: f64,
        orchestration_per_run_ms: f64,
        /// The runs' own `overhead_ms` summed (what run_one did that was not the
        /// guest booting, the load settling or the migration).
        in_run_overhead_ms: Option<f64>,
    },
}

/// Receives the stage's events.
pub trait ExperimentSink: Send + Sync {
    fn emit(&self, event: &ExperimentEvent);
    fn finish(&self) {}
}

/// Collects events in memory (for a caller that shows them afterwards, and tests).
#[derive(Default)]
pub struct CollectedEvents(pub std::sync::Mutex<Vec<ExperimentEvent>>);

impl ExperimentSink for CollectedEvents {
    fn emit(&self, event: &ExperimentEvent) {
        self.0.lock().unwrap().push(event.clone());
    }
}
