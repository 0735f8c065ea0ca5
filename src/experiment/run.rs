//! One run of the matrix, measured: link applied, guest prepared, probes around
//! the migration (NIC counters, outside ping, host CPU), the driver's migration,
//! the guest's first answer on the destination (re-announced if needed), clean-up.

use std::time::{Duration, Instant, SystemTime};

use super::clock;
use super::driver::{Driver, DriverError, GuestHandle, HostEnd, RunContext};
use super::full_guest;
use super::guest;
use super::host_sample::HostSample;
use super::link;
use super::load_process::{self, LoadProcess};
use super::probe::{self, PingProbe};
use super::result::{MigrationResult, Outcome, Sample};
use super::scenario::Direction;

/// How often the run reads the probe's log while it waits for the guest.
const ANSWER_POLL: Duration = Duration::from_millis(100);

/// Run `ctx.scenario` once with `driver`. Never fails: whatever goes wrong is the
/// row's `outcome` and `error` (a run that fails is recorded, never dropped).
pub async fn run_one(ctx: &RunContext<'_>, driver: &dyn Driver) -> (MigrationResult, Vec<Sample>) {
    let sc = ctx.scenario;
    let mut row = MigrationResult {
        index: ctx.index,
        run_id: sc.run_id(),
        scenario_key: sc.key(),
        scenario: Some(sc.clone()),
        driver: format!("{:?}", driver.kind()).to_lowercase(),
        started_at: clock::rfc3339(SystemTime::now()),
        dirty_rate_set_mib_s: sc.load.memory.as_ref().and_then(|m| m.rate_mib_s),
        ..MigrationResult::default()
    };
    let mut samples = Vec::new();
    let started = Instant::now();
    let mut phases = Phases::default();
    let mut guest: Option<GuestHandle> = None;
    let mut stream: Option<LoadProcess> = None;
    let mut guest_load: Option<LoadProcess> = None;
    let result = measured_run(
        ctx,
        driver,
        &mut row,
        &mut samples,
        &mut phases,
        &mut guest,
        [&mut stream, &mut guest_load],
    )
    .await;
    if let Err(e) = result {
        if row.outcome.is_none() || row.outcome == Some(Outcome::Completed) {
            row.outcome = Some(
                if ctx.interrupted.load(std::sync::atomic::Ordering::Relaxed) {
                    Outcome::Interrupted
                } else {
                    e.outcome
                },
            );
        }
        row.error = Some(match row.error.take() {
            Some(prev) if !prev.contains(&e.message) => format!("{prev}; {}", e.message),
            Some(prev) => prev,
            None => e.message,
        });
    }
    let t = Instant::now();
    if let Some(s) = stream {
        match s.stop().await {
            Ok(sender) => record_sender(&mut row, sender),
            Err(e) => {
                let msg = format!("inbound stream: {e}");
                add_error(&mut row, msg);
            }
        }
    }
    phases.part("stream_stop", t);
    // A full guest's load, started over SSH: stopped always, its reports recorded.
    let t = Instant::now();
    if let Some(l) = guest_load {
        match l.stop().await {
            Ok(mean) => full_guest::record_load(&mut row, sc, mean),
            Err(e) => {
                let msg = format!("the full guest's load: {e}");
                add_error(&mut row, msg);
            }
        }
    }
    phases.part("guest_load_stop", t);
    let t = Instant::now();
    if let Some(g) = &guest
        && let Err(e) = driver.cleanup(ctx, g).await
    {
        if matches!(e, DriverError::GuestCrashed { .. }) {
            // The migration may have "completed", but the guest did not survive it.
            row.outcome = Some(Outcome::Failed);
        }
        let msg = format!("clean-up: {e}");
        add_error(&mut row, msg);
    }
    // No answer, and no kernel failure on the consoles the clean-up kept: if the
    // guest's load program fell silent too, the guest hung there (not the network).
    if phases.silent_after_migration
        && row.outcome == Some(Outcome::Timeout)
        && let Some(why) = guest::silent_on_destination(&ctx.results_dir, ctx.index)
    {
        row.outcome = Some(Outcome::Failed);
        add_error(&mut row, why);
    }
    let wall = started.elapsed().as_secs_f64() * 1000.0;
    row.run_wall_ms = Some(wall);
    let accounted = phases.boot_ms
        + phases.settle_ms
        + phases.answer_wait_ms
        + row.migration_wall_ms.unwrap_or(0.0);
    phases.part("cleanup", t);
    let overhead = (wall - accounted).max(0.0);
    row.overhead_ms = Some(overhead);
    let mut parts = serde_json::Map::new();
    let mut known = 0.0;
    for (name, ms) in phases.parts.iter().filter(|(_, ms)| *ms >= 0.5) {
        known += ms;
        parts.insert((*name).into(), serde_json::json!(ms.round()));
    }
    parts.insert(
        "other".into(),
        serde_json::json!((overhead - known).max(0.0).round()),
    );
    row.overhead_parts_ms = Some(serde_json::Value::Object(parts));
    row.samples = samples.len() as u32;
    (row, samples)
}

/// `msg` after what the row's `error` already says.
fn add_error(row: &mut MigrationResult, msg: String) {
    row.error = Some(match row.error.take() {
        Some(prev) => format!("{prev}; {msg}"),
        None => msg,
    });
}

/// An inbound stream's sender figures go beside the guest's in `load_achieved`.
fn record_sender(
    row: &mut MigrationResult,
    sender: Option<serde_json::Map<String, serde_json::Value>>,
) {
    let mut all = match row.load_achieved.take() {
        Some(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    all.insert("sender".into(), serde_json::json!(sender));
    row.load_achieved = Some(serde_json::Value::Object(all));
}

/// Wall time of the phases that are not ferry's overhead, ms.
#[derive(Debug, Default)]
struct Phases {
    boot_ms: f64,
    settle_ms: f64,
    answer_wait_ms: f64,
    /// The migration ended but the guest never answered the probe after it.
    silent_after_migration: bool,
    /// Steps of the overhead, ms (`overhead_parts_ms`).
    parts: Vec<(&'static str, f64)>,
}

impl Phases {
    /// Count the time since `since` as overhead step `name`.
    fn part(&mut self, name: &'static str, since: Instant) {
        self.parts
            .push((name, since.elapsed().as_secs_f64() * 1000.0));
    }
}

/// Why a run stopped early: the outcome to record and what to say.
struct RunError {
    outcome: Outcome,
    message: String,
}

impl From<DriverError> for RunError {
    fn from(e: DriverError) -> Self {
        RunError {
            outcome: Outcome::Failed,
            message: e.to_string(),
        }
    }
}

fn timeout(message: String) -> RunError {
    RunError {
        outcome: Outcome::Timeout,
        message,
    }
}

async fn measured_run<'a>(
    ctx: &RunContext<'a>,
    driver: &dyn Driver,
    row: &mut MigrationResult,
    samples: &mut Vec<Sample>,
    phases: &mut Phases,
    guest_slot: &mut Option<GuestHandle>,
    [stream_slot, guest_load_slot]: [&mut Option<LoadProcess<'a>>; 2],
) -> Result<(), RunError> {
    let (src, dst) = (ctx.source, ctx.destination);
    let src_if = src.require_var("migration_iface")?;
    let dst_if = dst.require_var("migration_iface")?;

    // 1. The link: shaped where the experiment may, otherwise read and recorded.
    let link_of = async |h: &HostEnd, iface: &str| {
        if ctx.settings.shape_link {
            link::apply(h, iface, &ctx.scenario.link).await
        } else {
            link::read(h, iface).await
        }
    };
    let t = Instant::now();
    let (ls, ld) = tokio::join!(link_of(src, &src_if), link_of(dst, &dst_if));
    phases.part("link", t);
    let (ls, ld) = (ls?, ld?);
    row.link_rate_bps = match (ls.rate_bps, ld.rate_bps) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    row.link_mtu = match (ls.mtu, ld.mtu) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };

    // 1b. An inbound network load: the prober's sender streams from before the
    //     guest is up (into the void until it is).
    if let Some(n) = (ctx.scenario.load.network.as_ref()).filter(|n| n.direction == Direction::In) {
        let p = ctx.prober.ok_or_else(|| {
            RunError::from(DriverError::Other(
                "an inbound network load needs a prober (its sender) on the guest network".into(),
            ))
        })?;
        let ip = match ctx.guest {
            Some(fg) => full_guest::address(fg)?,
            None => guest::guest_address(src).map(|(ip, _)| ip).ok_or_else(|| {
                RunError::from(DriverError::Other(format!(
                    "{}: no guest address for the inbound stream: set guest_vm_ip, or guest_ip and guest_prefix",
                    src.name
                )))
            })?,
        };
        let tag = format!("{}-{}", ctx.index, probe::unix_s(SystemTime::now()) as u64);
        let t = Instant::now();
        let program = format!("{}/load", ctx.settings.guest_dir.trim_end_matches('/'));
        let args = load_process::sender_args(&ip, n.rate_mbit);
        *stream_slot =
            Some(LoadProcess::start(p, &program, &args, &format!("stream-{tag}")).await?);
        phases.part("stream", t);
    }

    // 2. The guest, up with its load.
    let t = Instant::now();
    let g = tokio::time::timeout(
        ctx.settings.boot_timeout + Duration::from_secs(30),
        driver.prepare(ctx),
    )
    .await
    .map_err(|_| {
        timeout(format!(
            "the driver did not prepare the guest within {:?}",
            ctx.settings.boot_timeout
        ))
    })??;
    phases.boot_ms = t.elapsed().as_secs_f64() * 1000.0;
    let guest_ip = g.ip.clone();
    *guest_slot = Some(g.clone());

    // 2b. A full guest: its load started over SSH, running once it has reported.
    if let Some(fg) = ctx.guest {
        let t = Instant::now();
        let stream_to = ctx.prober.and_then(|p| p.var("guest_ip"));
        let tag = format!("{}-{}", ctx.index, probe::unix_s(SystemTime::now()) as u64);
        *guest_load_slot = full_guest::start_load(
            fg,
            ctx.scenario,
            stream_to.as_deref(),
            &format!("guest-{tag}"),
            ctx.settings.boot_timeout,
        )
        .await?;
        phases.boot_ms += t.elapsed().as_secs_f64() * 1000.0;
    }

    // 3. The probe, answered once before the migration starts.
    let t = Instant::now();
    let tag = format!(
        "{}-{}",
        ctx.index,
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis()
    );
    let probe = match (ctx.prober, &guest_ip) {
        (Some(p), Some(ip)) => {
            let probe = PingProbe::start(p, ip, ctx.settings.probe_interval, &tag).await?;
            let deadline = Instant::now() + ctx.settings.boot_timeout;
            loop {
                if !probe.read().await?.answers.is_empty() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = probe.stop().await;
                    return Err(timeout(format!(
                        "the guest ({ip}) did not answer the probe from {} within {:?} before the migration",
                        p.name, ctx.settings.boot_timeout
                    )));
                }
                tokio::time::sleep(ANSWER_POLL).await;
            }
            Some(probe)
        }
        _ => None,
    };
    phases.settle_ms = t.elapsed().as_secs_f64() * 1000.0;

    // 4. The migration, between two readings of both hosts' NIC and CPU counters.
    let t = Instant::now();
    let (bs, bd) = tokio::join!(
        HostSample::read(src, &src_if),
        HostSample::read(dst, &dst_if)
    );
    let (bs, bd) = (bs?, bd?);
    phases.part("counters", t);
    let migration_start = SystemTime::now();
    let t = Instant::now();
    let migrated = driver.migrate(ctx, &g, row, samples).await;
    let returned = SystemTime::now();
    let driver_ms = t.elapsed().as_secs_f64() * 1000.0 - row.migration_wall_ms.unwrap_or(0.0);
    phases.parts.push(("driver", driver_ms.max(0.0)));
    // The driver times the migration from its `migrate` command (after setting
    // capabilities): that is when QEMU's total time starts.
    let migration_start = row
        .migration_wall_ms
        .and_then(|ms| returned.checked_sub(Duration::from_secs_f64(ms / 1000.0)))
        .filter(|t| *t >= migration_start)
        .unwrap_or(migration_start);
    if row.migration_wall_ms.is_none() {
        row.migration_wall_ms = returned
            .duration_since(migration_start)
            .ok()
            .map(|d| d.as_secs_f64() * 1000.0);
    }
    let t = Instant::now();
    let (as_, ad) = tokio::join!(
        HostSample::read(src, &src_if),
        HostSample::read(dst, &dst_if)
    );
    phases.part("counters_after", t);
    if let (Ok(a), Ok(b)) = (&as_, &ad) {
        row.nic_source_tx_bytes = Some(a.tx_bytes.saturating_sub(bs.tx_bytes));
        row.nic_destination_rx_bytes = Some(b.rx_bytes.saturating_sub(bd.rx_bytes));
        row.source_cpu_busy = bs.cpu_busy_until(a);
        row.destination_cpu_busy = bd.cpu_busy_until(b);
    }
    if let Err(e) = migrated {
        if let Some(p) = &probe {
            let _ = p.stop().await;
        }
        return Err(e.into());
    }

    // 5. The guest's first answer after the migration's end (where it now runs),
    //    re-announced once if it does not answer within answer_timeout.
    let Some(probe) = probe else {
        return Ok(());
    };
    // QEMU's total time dates the end more exactly than our last poll.
    let start_p = probe.prober_time(migration_start);
    let end_p = match row.total_time_ms {
        Some(ms) if row.outcome == Some(Outcome::Completed) => start_p + ms / 1000.0,
        _ => probe.prober_time(returned),
    };
    let t = Instant::now();
    let mut answered = wait_answer(&probe, end_p, ctx.settings.answer_timeout).await?;
    if answered.is_none() && row.outcome == Some(Outcome::Completed) {
        row.reannounced = true;
        match driver.announce(ctx, &g).await {
            Ok(true) => {}
            Ok(false) => {
                row.error =
                    Some("the guest did not answer and this QEMU cannot announce-self".into())
            }
            Err(e) => row.error = Some(format!("announce-self: {e}")),
        }
        answered = wait_answer(&probe, end_p, ctx.settings.answer_timeout).await?;
    }
    phases.answer_wait_ms = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    let log = probe.stop().await?;
    phases.part("probe_stop", t);
    row.probe_answered = Some(log.answers.len() as u64);
    row.probe_sent = log
        .transmitted
        .or_else(|| log.answers.last().map(|a| a.seq));
    match answered.or_else(|| probe::first_after(&log.answers, end_p)) {
        Some(first) => {
            row.first_answer_after_ms = Some((first.t - end_p) * 1000.0);
            row.probe_downtime_ms =
                probe::longest_gap(&log.answers, start_p, first.t).map(|g| g * 1000.0);
        }
        None => {
            let to = probe.prober_time(SystemTime::now());
            row.probe_downtime_ms = log.answers.last().map(|a| (to - a.t.max(start_p)) * 1000.0);
            if row.outcome == Some(Outcome::Completed) {
                phases.silent_after_migration = true;
                return Err(timeout(format!(
                    "the guest did not answer the probe after the migration within {:?}{} \
                     (its console is kept in serial/{}-destination.log)",
                    ctx.settings.answer_timeout,
                    if row.reannounced {
                        " (nor after announce-self)"
                    } else {
                        ""
                    },
                    ctx.index
                )));
            }
        }
    }
    Ok(())
}

/// Poll the probe until an answer at or after `end` (prober clock), or `limit`.
async fn wait_answer(
    probe: &PingProbe<'_>,
    end: f64,
    limit: Duration,
) -> Result<Option<probe::Answer>, RunError> {
    let deadline = Instant::now() + limit;
    loop {
        let log = probe.read().await?;
        if let Some(a) = probe::first_after(&log.answers, end) {
            return Ok(Some(a));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(ANSWER_POLL).await;
    }
}
