//! Drivers: how a migration is started and watched. One trait, three drivers:
//! `qmp` (ferry runs QEMU on both hosts and speaks QMP), `virsh` (the guest runs
//! under libvirt), `nova` (`nova live-migration`; not runnable in this lab).
//!
//! A run ([`super::run::run_one`]) calls, in order: [`Driver::prepare`] (guest up on
//! the source with its load running), [`Driver::migrate`] (trigger, sample until it
//! ends), [`Driver::announce`] when the probe does not hear the guest on the
//! destination, and [`Driver::cleanup`] (always, also after a failure).

pub mod host_command;
pub mod nova;
pub mod nova_cli;
pub mod qmp;
pub mod qmp_settings;
pub mod qmp_socket;
pub mod query_migrate;
pub mod virsh;
pub mod virsh_cli;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::result::{MigrationResult, Sample};
use super::scenario::Scenario;
use crate::transport::Transport;
use crate::vars::Vars;

/// A host taking part in a run: its connection and its inventory variables
/// (`migration_ip`, `migration_iface`, `mgmt_ip`, `guest_bridge_iface`, ...).
#[derive(Clone)]
pub struct HostEnd {
    pub name: String,
    pub transport: Arc<dyn Transport>,
    pub vars: Vars,
}

impl HostEnd {
    /// A variable as a string (numbers and booleans as written), or None.
    pub fn var(&self, key: &str) -> Option<String> {
        match self.vars.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }
}

/// Which driver an experiment uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriverKind {
    Qmp,
    Virsh,
    Nova,
}

/// Settings that hold for every run of an experiment (from the experiment file).
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub driver: DriverKind,
    /// A migration still running after this long is cancelled (pre-copy: recorded
    /// as `not_converged`).
    pub migration_timeout: Duration,
    /// Guest boot (and load start) must finish within this.
    pub boot_timeout: Duration,
    /// `query-migrate` / `domjobinfo` poll interval (default 50 ms).
    pub sample_interval: Duration,
    /// Ping interval of the outside downtime probe (default 10 ms).
    pub probe_interval: Duration,
    /// How long after the migration's end the guest must answer on the destination
    /// before ferry re-announces it, and how long after that before giving up.
    pub answer_timeout: Duration,
    /// Where the guest's kernel and initramfs are on the compute hosts
    /// (`guest_dir` of the guest role: vmlinuz, initramfs.cpio.gz).
    pub guest_dir: String,
    /// Apply the scenario's link rate/MTU with tc on the migration NIC (the built-in
    /// lab, or a file that says so); otherwise only check and record them.
    pub shape_link: bool,
    /// Driver-specific settings as written in the file (e.g. nova's credentials).
    pub driver_options: Value,
}

/// Everything one run needs.
pub struct RunContext<'a> {
    pub scenario: &'a Scenario,
    /// The run's index in the experiment's order (names its samples file).
    pub index: u32,
    pub source: &'a HostEnd,
    pub destination: &'a HostEnd,
    /// Where the outside ping probe runs (a host on the guest network); None: no probe.
    pub prober: Option<&'a HostEnd>,
    /// The full guest this run migrates (`guest:` of the experiment file, a host of
    /// the inventory's `guests` group, connected over SSH); None: the driver's own
    /// lab guest.
    pub guest: Option<&'a HostEnd>,
    pub settings: &'a RunSettings,
    /// Set on Ctrl-C: finish or cancel the current step, record the run as interrupted.
    pub interrupted: &'a AtomicBool,
    /// The results directory (a driver may keep logs there, e.g. the serial log).
    pub results_dir: PathBuf,
}

/// The guest a driver prepared: enough for the later calls to find it again.
#[derive(Debug, Clone, Default)]
pub struct GuestHandle {
    /// Domain / instance name.
    pub name: String,
    /// The guest's address on the guest network (what the probe pings).
    pub ip: Option<String>,
    /// Driver-specific state (QMP socket paths, PIDs, serial log path...).
    pub data: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("{host}: {message}")]
    Host { host: String, message: String },
    /// The guest's kernel failed where it ran (its console says so): the run's
    /// guest is not usable, whatever the migration reported.
    #[error("{host}: the guest's kernel failed after the migration: {line}")]
    GuestCrashed { host: String, line: String },
    #[error("{0}")]
    Other(String),
}

#[async_trait]
pub trait Driver: Send + Sync {
    fn kind(&self) -> DriverKind;
    /// Start the guest on the source with the scenario's flavor and load (and, for
    /// qmp, the destination's `-incoming` side); return once it runs and its load
    /// started.
    async fn prepare(&self, ctx: &RunContext<'_>) -> Result<GuestHandle, DriverError>;
    /// Set capabilities/parameters, trigger the migration to the destination's
    /// migration address, switch to post-copy per the algorithm, and sample until it
    /// ends. Fills QEMU's figures, `outcome` and `error` into `row`; appends samples.
    async fn migrate(
        &self,
        ctx: &RunContext<'_>,
        guest: &GuestHandle,
        row: &mut MigrationResult,
        samples: &mut Vec<Sample>,
    ) -> Result<(), DriverError>;
    /// Ask QEMU where the guest now runs to announce it again (`announce-self`).
    /// Ok(false): this QEMU cannot.
    async fn announce(
        &self,
        ctx: &RunContext<'_>,
        guest: &GuestHandle,
    ) -> Result<bool, DriverError>;
    /// Stop the guest on both hosts wherever ferry started it.
    async fn cleanup(&self, ctx: &RunContext<'_>, guest: &GuestHandle) -> Result<(), DriverError>;
}
