//! (Over 600 lines, a third of them its tests: the matrix loop, its connections, store and tally are one piece of state.)
//!
//! The orchestration around the runs: connect to the experiment's hosts (one
//! transport per host, as the engine does), gather their facts for provenance,
//! create or resume the results directory, then run the matrix in order (one run
//! at a time; with `parallel_pairs`, pairs that share no host at once), append
//! every row as it ends, and stop cleanly on Ctrl-C.
//!
//! What ferry itself costs is measured: the stage's wall time outside the runs
//! (connecting, facts, provenance, the store, events), per run and in total.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use futures::future::join_all;

use super::driver::{Driver, HostEnd, RunContext, RunSettings};
use super::events::{ExperimentEvent, ExperimentSink};
use super::pairs::ResolvedHosts;
use super::result::{MigrationResult, Outcome, Provenance, Sample};
use super::scenario::{HostPair, Scenario};
use super::spec::ExperimentSpec;
use super::store::{ResultsStore, StoreError};
use crate::engine::Connector;
use crate::vars::Vars;

/// An experiment ready to run: its spec, where it was written, and its hosts.
#[derive(Debug, Clone)]
pub struct ExperimentPlan {
    pub spec: ExperimentSpec,
    /// The file the experiment is written in (a playbook or a file of its own).
    pub file: PathBuf,
    /// Its bytes as read (copied to `experiment.yml`, hashed for provenance).
    pub file_bytes: Vec<u8>,
    pub hosts: ResolvedHosts,
}

/// Where results go and how the run is stopped.
pub struct RunnerOptions {
    /// `--out`: results go to `<out>/<name>/<UTC timestamp>/`.
    pub out: PathBuf,
    /// `--resume DIR`: continue that directory instead.
    pub resume: Option<PathBuf>,
    /// Set on Ctrl-C.
    pub interrupted: Arc<AtomicBool>,
}

/// Runs one scenario: [`DriverRuns`] calls [`super::run::run_one`] with the driver.
#[async_trait]
pub trait RunExecutor: Send + Sync {
    async fn run(&self, ctx: &RunContext<'_>) -> (MigrationResult, Vec<Sample>);
    /// `qmp`, `virsh` or `nova`: the rows' `driver`.
    fn driver_name(&self) -> String;
}

/// The real runs: `run_one` with a driver.
pub struct DriverRuns(pub Arc<dyn Driver>);

#[async_trait]
impl RunExecutor for DriverRuns {
    async fn run(&self, ctx: &RunContext<'_>) -> (MigrationResult, Vec<Sample>) {
        super::run::run_one(ctx, self.0.as_ref()).await
    }
    fn driver_name(&self) -> String {
        serde_json::to_value(self.0.kind())
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{host}: cannot connect: {message}")]
    Connect { host: String, message: String },
    #[error("--resume {}: {message}", dir.display())]
    Resume { dir: PathBuf, message: String },
}

/// How the stage ended.
#[derive(Debug, Clone)]
pub struct RunnerOutcome {
    pub dir: PathBuf,
    pub ran: usize,
    pub completed: usize,
    pub failed: usize,
    pub interrupted: bool,
}

/// The settings every run shares, from the spec.
pub fn run_settings(spec: &ExperimentSpec, shape_link: bool) -> RunSettings {
    RunSettings {
        driver: spec.driver,
        migration_timeout: spec.timeouts.migration,
        boot_timeout: spec.timeouts.boot,
        sample_interval: spec.sample_interval,
        probe_interval: spec.probe_interval,
        answer_timeout: spec.timeouts.answer,
        guest_dir: spec.guest_dir.clone(),
        shape_link,
        driver_options: spec.driver_options.clone(),
    }
}

/// Groups of run indexes that may run at the same time as each other group: with
/// `parallel`, pairs sharing a host land in one group; without, one group of all.
/// Each group keeps the run order.
pub fn lanes(runs: &[Scenario], parallel: bool) -> Vec<Vec<usize>> {
    if !parallel {
        return vec![(0..runs.len()).collect()];
    }
    // Union the pairs that share a host.
    let mut pairs: Vec<HostPair> = Vec::new();
    for r in runs {
        if !pairs.contains(&r.pair) {
            pairs.push(r.pair.clone());
        }
    }
    let mut group: Vec<usize> = (0..pairs.len()).collect();
    fn root(g: &mut [usize], mut i: usize) -> usize {
        while g[i] != i {
            g[i] = g[g[i]];
            i = g[i];
        }
        i
    }
    for i in 0..pairs.len() {
        for j in 0..i {
            let shares = [&pairs[i].source, &pairs[i].destination]
                .iter()
                .any(|h| **h == pairs[j].source || **h == pairs[j].destination);
            if shares {
                let (a, b) = (root(&mut group, i), root(&mut group, j));
                group[a] = b;
            }
        }
    }
    let mut lanes: Vec<(usize, Vec<usize>)> = Vec::new();
    for (idx, r) in runs.iter().enumerate() {
        let p = pairs.iter().position(|p| *p == r.pair).unwrap_or(0);
        let g = root(&mut group, p);
        match lanes.iter_mut().find(|(k, _)| *k == g) {
            Some((_, v)) => v.push(idx),
            None => lanes.push((g, vec![idx])),
        }
    }
    lanes.into_iter().map(|(_, v)| v).collect()
}

/// Connects to every host of the plan (pairs and prober), all at once.
async fn connect_hosts(
    plan: &ExperimentPlan,
    host_vars: &(dyn Fn(&str) -> Vars + Sync),
    connector: &Arc<dyn Connector>,
) -> Result<HashMap<String, HostEnd>, RunnerError> {
    let mut names: Vec<String> = Vec::new();
    for p in &plan.hosts.pairs {
        for h in [&p.source, &p.destination] {
            if !names.contains(h) {
                names.push(h.clone());
            }
        }
    }
    for p in [&plan.hosts.prober, &plan.hosts.guest]
        .into_iter()
        .flatten()
    {
        if !names.contains(p) {
            names.push(p.clone());
        }
    }
    let jobs = names.iter().map(|name| {
        let vars = host_vars(name);
        let fut = connector.connect(name, &vars);
        async move { (name.clone(), vars, fut.await) }
    });
    let mut out = HashMap::new();
    let mut first_error = None;
    for (name, vars, r) in join_all(jobs).await {
        match r {
            Ok(transport) => {
                out.insert(
                    name.clone(),
                    HostEnd {
                        name,
                        transport,
                        vars,
                    },
                );
            }
            Err(e) => {
                first_error.get_or_insert(RunnerError::Connect {
                    host: name,
                    message: e.to_string(),
                });
            }
        }
    }
    match first_error {
        Some(e) => {
            close_all(&out).await;
            Err(e)
        }
        None => Ok(out),
    }
}

async fn close_all(hosts: &HashMap<String, HostEnd>) {
    join_all(hosts.values().map(|h| h.transport.close())).await;
}

/// Runs the experiment. Rows are appended as runs end; on Ctrl-C the current runs
/// finish (or record themselves as interrupted) and no new run starts.
pub async fn run_experiment(
    plan: &ExperimentPlan,
    host_vars: &(dyn Fn(&str) -> Vars + Sync),
    connector: Arc<dyn Connector>,
    executor: &dyn RunExecutor,
    opts: &RunnerOptions,
    sink: &dyn ExperimentSink,
) -> Result<RunnerOutcome, RunnerError> {
    let stage_start = Instant::now();
    let spec = &plan.spec;
    // On resume the seed (and so the order) is the one recorded.
    let recorded = match &opts.resume {
        Some(dir) => Some(super::store::read_provenance(dir)?),
        None => None,
    };
    let seed = recorded
        .as_ref()
        .map(|p| p.seed)
        .or(spec.seed)
        .unwrap_or_else(super::matrix::fresh_seed);
    let runs = super::matrix::expand(spec, &plan.hosts.pairs, seed);
    let matrix = super::matrix::describe(spec, &plan.hosts.pairs, &runs);
    let sha = super::provenance::sha256_hex(&plan.file_bytes);
    if let (Some(dir), Some(prov)) = (&opts.resume, &recorded) {
        if prov.matrix.get("order") != matrix.get("order") {
            return Err(RunnerError::Resume {
                dir: dir.clone(),
                message: "the experiment's matrix (axes, repetitions, pairs) is not the one recorded in provenance.json; resume with the file as it was, or start a new directory".into(),
            });
        }
        if prov.experiment_sha256 != sha {
            sink.emit(&ExperimentEvent::Warning {
                message: format!(
                    "{} changed since {} was started (same matrix; other settings may differ)",
                    plan.file.display(),
                    dir.display()
                ),
            });
        }
    }

    let t = Instant::now();
    let hosts = connect_hosts(plan, host_vars, &connector).await?;
    let facts: HashMap<String, serde_json::Value> = join_all(hosts.values().map(|h| async {
        (
            h.name.clone(),
            crate::facts::gather(h.transport.as_ref()).await,
        )
    }))
    .await
    .into_iter()
    .filter_map(|(n, f)| match f {
        Ok(f) => Some((n, f)),
        Err(e) => {
            sink.emit(&ExperimentEvent::Warning {
                message: format!(
                    "{n}: facts not gathered ({e}); its versions are missing from provenance"
                ),
            });
            None
        }
    })
    .collect();
    let mut host_names: Vec<String> = hosts.keys().cloned().collect();
    host_names.sort();
    sink.emit(&ExperimentEvent::HostsReady {
        hosts: host_names.clone(),
        wall_ms: ms(t.elapsed()),
    });

    let store = match &opts.resume {
        Some(dir) => {
            let (store, state) = ResultsStore::resume(dir)?;
            sink.emit(&ExperimentEvent::Resumed {
                rows: state.rows,
                interrupted: state.interrupted,
                partial_line: state.partial.map(|p| p.line),
            });
            store
        }
        None => {
            let started = SystemTime::now();
            let (repo_commit, repo_dirty) = match super::provenance::repo_state(&plan.file) {
                Some((c, d)) => (Some(c), Some(d)),
                None => (None, None),
            };
            let provenance = Provenance {
                experiment: spec.name.clone(),
                ferry_version: crate::VERSION_LONG.to_string(),
                experiment_file: plan.file.display().to_string(),
                experiment_sha256: sha,
                repo_commit,
                repo_dirty,
                started_at: super::clock::rfc3339(started),
                seed,
                scale: spec.scale.clone(),
                matrix,
                hosts: host_names
                    .iter()
                    .filter_map(|n| hosts.get(n))
                    .map(|h| super::provenance::host_from_facts(h, facts.get(&h.name)))
                    .collect(),
            };
            ResultsStore::create(
                &opts.out,
                &spec.name,
                started,
                &plan.file_bytes,
                &provenance,
            )?
        }
    };
    let dir = store.dir().to_path_buf();
    let to_run = runs.iter().filter(|r| !store.is_done(&r.run_id())).count();
    sink.emit(&ExperimentEvent::Started {
        experiment: spec.name.clone(),
        dir: dir.clone(),
        total: runs.len(),
        to_run,
        seed,
        pairs: plan
            .hosts
            .pairs
            .iter()
            .map(|p| format!("{} -> {}", p.source, p.destination))
            .collect(),
        resumed: opts.resume.is_some(),
    });

    let settings = run_settings(spec, plan.hosts.shape_link);
    let store = Mutex::new(store);
    let tally = Mutex::new(Tally::default());
    let lanes = lanes(&runs, spec.parallel_pairs);
    let driver = executor.driver_name();
    let lane_jobs = lanes.iter().map(|lane| {
        let (store, tally, settings, hosts, runs, dir, driver) =
            (&store, &tally, &settings, &hosts, &runs, &dir, &driver);
        async move {
            for &i in lane {
                if opts.interrupted.load(Ordering::SeqCst) {
                    break;
                }
                let scenario = &runs[i];
                let run_id = scenario.run_id();
                if store.lock().unwrap().is_done(&run_id) {
                    continue;
                }
                let (Some(source), Some(destination)) = (
                    hosts.get(&scenario.pair.source),
                    hosts.get(&scenario.pair.destination),
                ) else {
                    continue;
                };
                let prober = match &plan.hosts.prober {
                    Some(p) => hosts.get(p),
                    None => Some(destination),
                };
                sink.emit(&ExperimentEvent::RunStarted {
                    index: i as u32,
                    run_id: run_id.clone(),
                    source: source.name.clone(),
                    destination: destination.name.clone(),
                });
                let ctx = RunContext {
                    scenario,
                    index: i as u32,
                    source,
                    destination,
                    prober,
                    guest: plan.hosts.guest.as_ref().and_then(|g| hosts.get(g)),
                    settings,
                    interrupted: &opts.interrupted,
                    results_dir: dir.clone(),
                };
                let t = Instant::now();
                let (mut row, samples) = executor.run(&ctx).await;
                let wall = t.elapsed();
                // The row says which run it is, whatever the run filled in.
                row.index = i as u32;
                row.run_id = run_id.clone();
                row.scenario_key = scenario.key();
                row.scenario = Some(scenario.clone());
                if row.driver.is_empty() {
                    row.driver = driver.clone();
                }
                if row.outcome.is_none() {
                    row.outcome = Some(Outcome::Failed);
                    row.error
                        .get_or_insert_with(|| "the run recorded no outcome".into());
                }
                row.samples = samples.len() as u32;
                let appended = store.lock().unwrap().append(&row, &samples);
                {
                    let mut t = tally.lock().unwrap();
                    t.run_time += wall;
                    t.ran += 1;
                    match row.outcome {
                        Some(Outcome::Completed) => t.completed += 1,
                        Some(Outcome::Interrupted) => {}
                        _ => t.failed += 1,
                    }
                    if let Some(o) = row.overhead_ms {
                        *t.in_run_overhead_ms.get_or_insert(0.0) += o;
                    }
                }
                if let Err(e) = appended {
                    return Err(RunnerError::Store(e));
                }
                sink.emit(&ExperimentEvent::RunFinished {
                    index: i as u32,
                    run_id,
                    outcome: row.outcome,
                    error: row.error.clone(),
                    total_time_ms: row.total_time_ms,
                    downtime_ms: row.downtime_ms,
                    probe_downtime_ms: row.probe_downtime_ms,
                    run_wall_ms: ms(wall),
                });
            }
            Ok(())
        }
    });
    let results = join_all(lane_jobs).await;
    close_all(&hosts).await;
    let first_error = results.into_iter().find_map(Result::err);
    let tally = tally.into_inner().unwrap();
    let wall = stage_start.elapsed();
    let orchestration = wall.saturating_sub(tally.run_time);
    let interrupted = opts.interrupted.load(Ordering::SeqCst);
    sink.emit(&ExperimentEvent::Finished {
        dir: dir.clone(),
        ran: tally.ran,
        completed: tally.completed,
        failed: tally.failed,
        interrupted,
        wall_ms: ms(wall),
        orchestration_ms: ms(orchestration),
        orchestration_per_run_ms: if tally.ran > 0 {
            ms(orchestration) / tally.ran as f64
        } else {
            0.0
        },
        in_run_overhead_ms: tally.in_run_overhead_ms,
    });
    sink.finish();
    if let Some(e) = first_error {
        return Err(e);
    }
    Ok(RunnerOutcome {
        dir,
        ran: tally.ran,
        completed: tally.completed,
        failed: tally.failed,
        interrupted,
    })
}

#[derive(Default)]
struct Tally {
    ran: usize,
    completed: usize,
    failed: usize,
    run_time: Duration,
    in_run_overhead_ms: Option<f64>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::store::read_rows;
    use std::collections::HashSet;
    use std::sync::atomic::AtomicUsize;

    /// Runs a real command on the source host's transport per run, and sets the
    /// interrupt flag (as Ctrl-C does) once `stop_after` runs have ended.
    struct CommandRuns {
        done: AtomicUsize,
        stop_after: usize,
    }

    #[async_trait]
    impl RunExecutor for CommandRuns {
        async fn run(&self, ctx: &RunContext<'_>) -> (MigrationResult, Vec<Sample>) {
            let t = Instant::now();
            let cmd = format!("echo {} {}", ctx.index, ctx.destination.name);
            let out = ctx
                .source
                .transport
                .run(&crate::transport::CommandSpec::new(cmd))
                .await;
            let ok = matches!(&out, Ok(o) if o.rc == 0 && String::from_utf8_lossy(&o.stdout).trim() == format!("{} {}", ctx.index, ctx.destination.name));
            let row = MigrationResult {
                outcome: Some(if ok {
                    Outcome::Completed
                } else {
                    Outcome::Failed
                }),
                total_time_ms: Some(ms(t.elapsed())),
                overhead_ms: Some(0.5),
                ..MigrationResult::default()
            };
            if self.done.fetch_add(1, Ordering::SeqCst) + 1 == self.stop_after {
                ctx.interrupted.store(true, Ordering::SeqCst);
            }
            let sample = Sample {
                t_ms: 0.0,
                status: "completed".into(),
                ..Sample::default()
            };
            (row, vec![sample])
        }
        fn driver_name(&self) -> String {
            "command".into()
        }
    }

    fn plan(dir: &std::path::Path) -> (ExperimentPlan, Inventory) {
        let inv_path = dir.join("hosts.yml");
        std::fs::write(&inv_path, "all:\n  children:\n    lab:\n      vars: {ansible_connection: local}\n      hosts:\n        h1: {migration_ip: 127.0.0.1}\n        h2: {migration_ip: 127.0.0.1}\n        h3: {migration_ip: 127.0.0.1}\n").unwrap();
        let inventory = Inventory::load(&[inv_path]).unwrap();
        let file = dir.join("exp.yml");
        let text = "name: loop\ndriver: qmp\npairs: lab\nwarmup: 1\nrepetitions: 2\nseed: 5\nmatrix:\n  flavor: [m1.tiny, m1.small]\n  algorithm: [precopy, postcopy]\n";
        std::fs::write(&file, text).unwrap();
        let src = crate::experiment::source::standalone(&file).unwrap();
        let spec = src.parse().unwrap();
        let hosts = crate::experiment::pairs::resolve(&spec, &inventory, None, None).unwrap();
        (
            ExperimentPlan {
                spec,
                file,
                file_bytes: text.as_bytes().to_vec(),
                hosts,
            },
            inventory,
        )
    }

    use crate::inventory::Inventory;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn interrupted_then_resumed_records_every_run_once() {
        let tmp = tempfile::tempdir().unwrap();
        let (plan, inventory) = plan(tmp.path());
        let view = crate::engine::InventoryHosts::new(inventory, None);
        let vars = |h: &str| {
            use crate::engine::HostSource;
            view.base_vars(h)
        };
        let connector: Arc<dyn Connector> =
            Arc::new(|host: &str, vars: &Vars| -> crate::engine::ConnectFuture {
                let params = crate::transport::ConnectParams::from_host_vars(
                    host,
                    vars,
                    &crate::transport::ConnectDefaults::default(),
                );
                Box::pin(async move { crate::transport::connect(&params?).await })
            });
        let sink = crate::experiment::events::CollectedEvents::default();
        let out = tmp.path().join("results");
        let opts = RunnerOptions {
            out: out.clone(),
            resume: None,
            interrupted: Arc::new(AtomicBool::new(false)),
        };
        let first = CommandRuns {
            done: AtomicUsize::new(0),
            stop_after: 3,
        };
        let o1 = run_experiment(&plan, &vars, connector.clone(), &first, &opts, &sink)
            .await
            .unwrap();
        assert!(o1.interrupted);
        assert_eq!((o1.ran, o1.completed), (3, 3));
        assert!(o1.dir.starts_with(out.join("loop")));
        let prov = crate::experiment::store::read_provenance(&o1.dir).unwrap();
        assert_eq!(prov.seed, 5);
        assert_eq!(prov.hosts.len(), 3, "pairs h1->h2 and prober h3");
        assert!(
            prov.hosts.iter().all(|h| h.kernel.is_some()),
            "facts gathered over the transport: {:?}",
            prov.hosts
        );
        assert_eq!(
            prov.experiment_sha256,
            crate::experiment::provenance::sha256_hex(&plan.file_bytes)
        );

        let opts2 = RunnerOptions {
            out,
            resume: Some(o1.dir.clone()),
            interrupted: Arc::new(AtomicBool::new(false)),
        };
        let second = CommandRuns {
            done: AtomicUsize::new(0),
            stop_after: usize::MAX,
        };
        let o2 = run_experiment(&plan, &vars, connector, &second, &opts2, &sink)
            .await
            .unwrap();
        assert_eq!(o2.dir, o1.dir);
        assert!(!o2.interrupted);
        assert_eq!(o2.ran, 1 + 8 - 3);

        let rows = read_rows(&o1.dir).unwrap().rows;
        let ids: Vec<String> = rows.iter().map(|r| r.run_id.clone()).collect();
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "no duplicate: {ids:?}");
        let want: HashSet<String> = prov.matrix["order"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            unique.into_iter().cloned().collect::<HashSet<_>>(),
            want,
            "no missing row"
        );
        assert!(rows.iter().all(|r| r.outcome == Some(Outcome::Completed)
            && r.samples == 1
            && r.driver == "command"));
        assert!(
            rows[0].scenario.as_ref().unwrap().warmup,
            "the warm-up runs first"
        );
        let indexes: HashSet<u32> = rows.iter().map(|r| r.index).collect();
        assert_eq!(indexes, (0..9).collect());
        let events = sink.0.lock().unwrap();
        let finished: Vec<&ExperimentEvent> = events
            .iter()
            .filter(|e| matches!(e, ExperimentEvent::Finished { .. }))
            .collect();
        assert_eq!(finished.len(), 2);
        if let ExperimentEvent::Finished {
            in_run_overhead_ms,
            orchestration_ms,
            wall_ms,
            ..
        } = finished[1]
        {
            assert_eq!(*in_run_overhead_ms, Some(3.0));
            assert!(orchestration_ms <= wall_ms);
        }
    }

    #[test]
    fn pairs_sharing_a_host_never_run_at_once() {
        let tmp = tempfile::tempdir().unwrap();
        let (plan, _) = plan(tmp.path());
        let pair = |a: &str, b: &str| HostPair {
            source: a.into(),
            destination: b.into(),
        };
        let mut runs = super::super::matrix::expand(
            &plan.spec,
            &[pair("a", "b"), pair("c", "d"), pair("b", "e")],
            1,
        );
        let l = lanes(&runs, true);
        assert_eq!(l.len(), 2, "a-b and b-e share b; c-d is free");
        let lane_of = |p: &HostPair| {
            l.iter()
                .position(|lane| lane.iter().any(|&i| runs[i].pair == *p))
                .unwrap()
        };
        assert_eq!(lane_of(&pair("a", "b")), lane_of(&pair("b", "e")));
        assert_ne!(lane_of(&pair("a", "b")), lane_of(&pair("c", "d")));
        assert!(
            l.iter().all(|lane| lane.windows(2).all(|w| w[0] < w[1])),
            "each lane keeps the run order"
        );
        assert_eq!(l.iter().map(Vec::len).sum::<usize>(), runs.len());
        runs.truncate(3);
        assert_eq!(lanes(&runs, false), vec![vec![0, 1, 2]]);
    }
}
