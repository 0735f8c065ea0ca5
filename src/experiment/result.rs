//! What a run measured: one [`MigrationResult`] row per run, the `query-migrate`
//! [`Sample`]s behind it, and the results directory they live in.
//!
//! A results directory (`<out>/<experiment>/<UTC timestamp>/`, see `docs/results.md`):
//!
//! ```text
//! results.jsonl      one MigrationResult per line, appended and fsync'd as each run ends
//! results.csv        the same rows, flattened (header once), appended and fsync'd
//! provenance.json    written once at the start: Provenance
//! experiment.yml     a copy of the experiment file as run
//! samples/RUN.jsonl  the run's samples, one Sample per line (RUN: the run's index)
//! ```
//!
//! Units are in the field names: `_ms`, `_bytes`, `_bps` (bits/s), `_mib`, `_mib_s`.
//! A measurement that was not taken is `null` (absent), never 0.

use serde::{Deserialize, Serialize};

use super::scenario::Scenario;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The migration completed; the guest runs on the destination.
    Completed,
    /// QEMU/libvirt/Nova reported failure (`error` says what they said).
    Failed,
    /// Pre-copy was still iterating at the run's timeout (cancelled; the guest stays
    /// on the source): the expected result for a dirty rate above the link's.
    NotConverged,
    /// Something else took longer than its timeout (boot, the probe, ...).
    Timeout,
    /// Stopped by the user (Ctrl-C) or a signal during the run.
    Interrupted,
}

/// One run: its scenario and everything measured. Field names are the CSV columns
/// (nested scenario fields flattened with `.`, e.g. `scenario.flavor.memory_mib`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MigrationResult {
    /// 0-based index of the run in the experiment's (shuffled) order.
    pub index: u32,
    /// [`Scenario::run_id`]: unique within the experiment.
    pub run_id: String,
    /// [`Scenario::key`]: what runs of the same scenario share.
    pub scenario_key: String,
    pub scenario: Option<Scenario>,
    /// `qmp`, `virsh` or `nova`.
    pub driver: String,
    pub outcome: Option<Outcome>,
    /// The error as the tool said it (QEMU's `error-desc`, virsh's stderr...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// UTC, RFC 3339, when the run started (guest start) and when the migration began.
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration_started_at: Option<String>,

    // --- QEMU's own figures (query-migrate / domjobinfo), the final ones
    /// Total migration time as QEMU reports it.
    pub total_time_ms: Option<f64>,
    /// Downtime as QEMU reports it.
    pub downtime_ms: Option<f64>,
    pub setup_time_ms: Option<f64>,
    /// QEMU's `ram.transferred` (plus disk bytes for block migration).
    pub transferred_bytes: Option<u64>,
    /// Guest RAM QEMU migrated (`ram.total`).
    pub ram_total_bytes: Option<u64>,
    /// Bytes sent before the switch to post-copy (all of them for pre-copy).
    pub precopy_bytes: Option<u64>,
    /// Bytes sent after the switch to post-copy (0 for pre-copy).
    pub postcopy_bytes: Option<u64>,
    pub postcopy_requests: Option<u64>,
    /// Dirty-sync rounds (`ram.dirty-sync-count`).
    pub dirty_sync_rounds: Option<u64>,
    /// QEMU's last `ram.dirty-pages-rate` times the page size, in MiB/s.
    pub dirty_rate_qemu_mib_s: Option<f64>,
    /// Block migration: disk bytes transferred.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_transferred_bytes: Option<u64>,
    /// When ferry switched to post-copy, ms after the migration started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postcopy_switch_ms: Option<f64>,

    // --- the outside probe (ping from the prober every probe interval)
    /// Longest gap between two answers, spanning the migration.
    pub probe_downtime_ms: Option<f64>,
    /// Pings sent / answered during the probe window.
    pub probe_sent: Option<u64>,
    pub probe_answered: Option<u64>,
    /// ms from the migration's end (QEMU `completed`) to the first answer from the guest.
    pub first_answer_after_ms: Option<f64>,
    /// Whether ferry had to ask QEMU to announce the guest again (`announce-self`)
    /// before it answered on the destination.
    pub reannounced: bool,

    // --- the migration NICs' counters (bytes on the wire), after minus before
    pub nic_source_tx_bytes: Option<u64>,
    pub nic_destination_rx_bytes: Option<u64>,

    // --- the load
    /// Dirty rate the scenario asked for (MiB/s; None: idle or as fast as possible).
    pub dirty_rate_set_mib_s: Option<f64>,
    /// Dirty rate the guest's load program reported achieving.
    pub dirty_rate_achieved_mib_s: Option<f64>,
    /// Other load figures the guest reported (cpu loops/s, network Mbit/s, disk MiB/s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_achieved: Option<serde_json::Value>,

    // --- the hosts and the link during the run
    /// Rate the migration link had (shaped or as found), bits/s.
    pub link_rate_bps: Option<u64>,
    pub link_mtu: Option<u32>,
    /// Busy share of all CPUs (0..1) during the migration, per host.
    pub source_cpu_busy: Option<f64>,
    pub destination_cpu_busy: Option<f64>,

    // --- ferry itself
    /// Wall time of the whole run (guest start to clean-up), ms.
    pub run_wall_ms: Option<f64>,
    /// Wall time of the migration as ferry saw it (migrate command to end), ms.
    pub migration_wall_ms: Option<f64>,
    /// ferry's orchestration overhead: run wall time that was not the guest
    /// booting, the load settling or the migration itself.
    pub overhead_ms: Option<f64>,
    /// Where `overhead_ms` went, ms per step (`link`, `counters`, `driver`: the
    /// driver's calls around the migration, `probe_stop`, `cleanup`, ...; `other`:
    /// the rest). What `ferry bench experiment` sums.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overhead_parts_ms: Option<serde_json::Value>,
    /// Number of samples in `samples/<index>.jsonl`.
    pub samples: u32,
    /// Figures only one driver has (nova: the times nova-compute's log gives).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_figures: Option<serde_json::Value>,
}

/// One `query-migrate` (or `domjobinfo`) sample, written to `samples/<index>.jsonl`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Sample {
    /// ms since the migration started.
    pub t_ms: f64,
    /// QEMU's status (`setup`, `active`, `postcopy-active`, `completed`, ...).
    pub status: String,
    pub transferred_bytes: Option<u64>,
    pub remaining_bytes: Option<u64>,
    pub total_bytes: Option<u64>,
    /// QEMU's `ram.mbps` (megabits/s).
    pub mbps: Option<f64>,
    pub dirty_rate_mib_s: Option<f64>,
    pub dirty_sync_rounds: Option<u64>,
    pub postcopy_requests: Option<u64>,
    pub expected_downtime_ms: Option<f64>,
}

/// Written once per results directory (`provenance.json`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Provenance {
    /// The experiment's name (the file's `name:`).
    pub experiment: String,
    /// `ferry --version`'s long form (version and commit).
    pub ferry_version: String,
    /// The experiment file as given, and the SHA-256 of its bytes.
    pub experiment_file: String,
    pub experiment_sha256: String,
    /// The git repository holding the experiment file: commit and whether its work
    /// tree had changes (None: not in a git repository).
    pub repo_commit: Option<String>,
    pub repo_dirty: Option<bool>,
    /// UTC, RFC 3339.
    pub started_at: String,
    /// Seed of the run order's shuffle.
    pub seed: u64,
    /// The scale the file declares (e.g. lab links standing for 10 Gbit/s), as written.
    pub scale: Option<serde_json::Value>,
    /// The matrix as expanded: every axis value, repetitions, warm-ups.
    pub matrix: serde_json::Value,
    /// Every host in a pair: versions and migration link facts.
    pub hosts: Vec<HostProvenance>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HostProvenance {
    pub name: String,
    pub kernel: Option<String>,
    pub qemu_version: Option<String>,
    pub libvirt_version: Option<String>,
    pub migration_ip: Option<String>,
    pub migration_iface: Option<String>,
    /// The migration NIC's speed as the host reports it (Mbit/s), and its MTU.
    pub migration_speed_mbit: Option<u64>,
    pub migration_mtu: Option<u32>,
}
