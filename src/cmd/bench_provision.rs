//! `ferry bench provision`: a provisioning benchmark that prints figures.
//!
//! Brings up a lab of N hosts with `ferry lab up` (or uses `-i INV`), runs a workload of
//! W tasks per host twice (from nothing, then with nothing to change) and prints the wall
//! time of each run, tasks per second, the controller's peak RSS and CPU time.
//!
//! The workload uses the real `file`, `copy`, `template`, `lineinfile`, `shell` and `command`
//! ops (see [`workload`]); hosts are loaded and reached as `ferry run` does.
//!
//! A measurement, not a demo: run 1 starts from nothing (the workload's directory is
//! removed on every host first, whatever an earlier run left), every host's files are
//! checked against the tree the workload defines after each run ([`bench_tree`]), and
//! run 1 changing other than every task, run 2 changing anything, a failure, or a wrong
//! file makes the benchmark fail. `--vs pyinfra` / `--vs ansible` run those tools on the
//! same hosts in the same run, with the same checks, and print the ratios.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use miette::{IntoDiagnostic, miette};

use crate::CmdResult;
use crate::cli::{BenchProvisionArgs, InventoryOpts};
use crate::engine::{Engine, EventKind, Outcome, Recorder, RunOptions};
use crate::playbook::Playbook;
use crate::transport::ConnectDefaults;

use super::bench_peers::PeerRun;
use super::bench_tree;

/// The small template the workload renders with host vars.
const TEMPLATE: &str = "host {{ inventory_hostname }} at {{ ansible_host | default('local') }}\n";

/// Peak RSS (MiB) and user+system CPU seconds of this process so far.
pub fn usage() -> (f64, f64) {
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF);
    match u {
        Ok(u) => {
            let cpu = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
            (
                u.max_rss() as f64 / 1024.0,
                cpu(u.user_time()) + cpu(u.system_time()),
            )
        }
        Err(_) => (0.0, 0.0),
    }
}

/// `ferry lab up --name bench --hosts N`; the last line it prints is the inventory path.
pub(super) fn lab_up(hosts: u32) -> miette::Result<PathBuf> {
    let exe = std::env::current_exe().into_diagnostic()?;
    let out = std::process::Command::new(exe)
        .args([
            "lab",
            "up",
            "--name",
            "bench",
            "--hosts",
            &hosts.to_string(),
        ])
        .stderr(std::process::Stdio::inherit())
        .output()
        .into_diagnostic()?;
    if !out.status.success() {
        return Err(miette!(
            "`ferry lab up --hosts {hosts}` failed ({})",
            out.status
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .ok_or_else(|| miette!("`ferry lab up` printed no inventory path"))?;
    Ok(PathBuf::from(last.trim()))
}

pub fn provision(args: BenchProvisionArgs) -> CmdResult {
    on_inventory_or_lab(&args.inventory, args.hosts, |inv| provision_on(&args, inv))
}

/// `bench` on `inventory`, or, when none is given, on a lab of `hosts` made for it
/// and removed after it (whatever `bench` returned).
pub(super) fn on_inventory_or_lab(
    inventory: &[PathBuf],
    hosts: u32,
    bench: impl FnOnce(&[PathBuf]) -> CmdResult,
) -> CmdResult {
    if !inventory.is_empty() {
        return bench(inventory);
    }
    let made = [lab_up(hosts)?];
    let result = bench(&made);
    lab_down();
    result
}

/// `ferry lab down --name bench` (the lab this benchmark made); a failure is only reported.
pub(super) fn lab_down() {
    let down = std::env::current_exe().and_then(|exe| {
        std::process::Command::new(exe)
            .args(["lab", "down", "--name", "bench"])
            .stdout(std::process::Stdio::null())
            .status()
    });
    match down {
        Ok(s) if s.success() => {}
        Ok(s) => eprintln!("`ferry lab down --name bench` failed ({s})"),
        Err(e) => eprintln!("cannot run `ferry lab down --name bench`: {e}"),
    }
}

/// Where one run's wall time went, from the engine's event timestamps: the first task
/// (which opens every connection), and over the other tasks the sum of their walls
/// against the sums of each task's median and slowest host (the linear strategy waits
/// for the slowest host before the next task).
fn breakdown(events: &[crate::engine::Event], start: f64, end: f64) -> String {
    let starts: Vec<f64> = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::TaskStart { .. }))
        .map(|e| e.ts)
        .collect();
    if starts.is_empty() {
        return "no tasks".into();
    }
    let mut per_task: Vec<Vec<f64>> = vec![Vec::new(); starts.len()];
    for e in events {
        if let EventKind::HostResult(r) = &e.kind {
            let i = starts.partition_point(|&t| t <= e.ts).saturating_sub(1);
            per_task[i].push(r.duration_secs);
        }
    }
    let wall = |i: usize| starts.get(i + 1).copied().unwrap_or(end) - starts[i];
    let (mut rest_wall, mut rest_median, mut rest_max) = (0.0, 0.0, 0.0);
    for (i, d) in per_task.iter_mut().enumerate().skip(1) {
        d.sort_by(f64::total_cmp);
        rest_wall += wall(i);
        rest_median += d.get(d.len() / 2).copied().unwrap_or(0.0);
        rest_max += d.last().copied().unwrap_or(0.0);
    }
    format!(
        "breakdown: before the first task {:.3} s; first task (opens the connections) {:.3} s; {} other tasks {:.3} s wall = sum of median host times {:.3} s + waiting for the slowest host {:.3} s + engine between tasks {:.3} s",
        starts[0] - start,
        wall(0),
        starts.len() - 1,
        rest_wall,
        rest_median,
        rest_max - rest_median,
        rest_wall - rest_max,
    )
}

/// One run's figures.
struct RunFigures {
    wall: f64,
    changed: u32,
    failed: u32,
}

fn provision_on(args: &BenchProvisionArgs, inventory: &[PathBuf]) -> CmdResult {
    let inv = InventoryOpts {
        inventory: inventory.to_vec(),
        ..InventoryOpts::default()
    };
    let hosts = super::load_hosts(&inv)?;
    let names = hosts
        .select("all")
        .map_err(|e| miette!("{}: {e}", inventory[0].display()))?;
    let n_hosts = names.len();
    let with_vars: Vec<(String, crate::vars::Vars)> = names
        .iter()
        .map(|n| (n.clone(), hosts.host_vars(n)))
        .collect();
    let dir = tempfile::tempdir().into_diagnostic()?;
    let template = dir.path().join("small.j2");
    std::fs::write(&template, TEMPLATE).into_diagnostic()?;
    let pb = bench_tree::workload(args.tasks, &template);
    // The peers' inputs first: a peer asked for and missing fails before anything runs.
    let peers = args
        .vs
        .iter()
        .map(|&p| PeerRun::prepare(p, &pb, &with_vars, inventory, dir.path()))
        .collect::<miette::Result<Vec<_>>>()?;
    let rt = super::runtime()?;
    println!(
        "bench provision: {n_hosts} hosts x {} tasks (file, copy, template, guarded shell, lineinfile; read-only cat last), {} strategy",
        args.tasks, args.strategy
    );
    let mut problems = Vec::new();
    let check_tree = |who: &str, run: u32, problems: &mut Vec<String>| {
        if let Err(e) = rt.block_on(bench_tree::check(&with_vars, args.tasks, 3)) {
            problems.push(format!("{who} run {run}: {e}"));
        }
    };
    rt.block_on(bench_tree::clear(&with_vars))
        .map_err(|e| miette!("{e}"))?;
    let mut ferry = Vec::new();
    for run in 1..=2 {
        let f = ferry_run(args, &hosts, n_hosts, &pb, &rt, run);
        check_tree("ferry", run, &mut problems);
        ferry.push(f);
    }
    let (rss, _) = usage();
    let want_changed = (n_hosts as u32) * args.tasks.saturating_sub(1);
    for (i, f) in ferry.iter().enumerate() {
        let run = i + 1;
        if f.failed > 0 {
            problems.push(format!("ferry run {run}: {} host/task failures", f.failed));
        }
        let want = if run == 1 { want_changed } else { 0 };
        if f.changed != want {
            problems.push(format!(
                "ferry run {run}: {} changed, expected {want}",
                f.changed
            ));
        }
    }
    let mut peer_walls = Vec::new();
    for p in &peers {
        rt.block_on(bench_tree::clear(&with_vars))
            .map_err(|e| miette!("{e}"))?;
        let mut walls = Vec::new();
        for run in 1..=2 {
            let w = p.run()?;
            println!("{} run {run}: wall {w:.3} s", p.label());
            check_tree(p.label(), run, &mut problems);
            walls.push(w);
        }
        peer_walls.push((p.label(), walls));
    }
    println!();
    println!("| hosts x tasks | run 1 | run 2 | changed run 1 / run 2 | controller peak RSS |");
    println!("|---|---|---|---|---|");
    println!(
        "| {n_hosts} x {} (ferry) | {:.2} s | {:.2} s | {} / {} | {rss:.1} MiB |",
        args.tasks, ferry[0].wall, ferry[1].wall, ferry[0].changed, ferry[1].changed
    );
    for (label, walls) in &peer_walls {
        println!(
            "| {label} | {:.2} s ({:.1}x ferry) | {:.2} s ({:.1}x ferry) | | |",
            walls[0],
            walls[0] / ferry[0].wall.max(1e-9),
            walls[1],
            walls[1] / ferry[1].wall.max(1e-9),
        );
    }
    if problems.is_empty() {
        return Ok(crate::exit::OK);
    }
    for p in &problems {
        eprintln!("bench provision: {p}");
    }
    Err(miette!(
        "the benchmark is not a measurement: {} problem(s) above",
        problems.len()
    ))
}

/// One run of the workload by ferry's engine; prints its line and the first failures.
fn ferry_run(
    args: &BenchProvisionArgs,
    hosts: &Arc<dyn crate::engine::HostSource>,
    n_hosts: usize,
    pb: &Playbook,
    rt: &tokio::runtime::Runtime,
    run: u32,
) -> RunFigures {
    let rec = Arc::new(Recorder::default());
    let engine = Engine::new(
        RunOptions {
            forks: n_hosts.max(1),
            strategy: args.strategy,
            ..RunOptions::default()
        },
        hosts.clone(),
        super::connector(ConnectDefaults::default()),
        rec.clone(),
    );
    let trips0 = crate::transport::remote::round_trips();
    let start_ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    let start = Instant::now();
    let code = rt.block_on(engine.run(std::slice::from_ref(pb)));
    let trips = crate::transport::remote::round_trips() - trips0;
    let wall = start.elapsed().as_secs_f64();
    let stats = engine.stats();
    let changed: u32 = stats.values().map(|s| s.changed).sum();
    let failed: u32 = stats.values().map(|s| s.failed + s.unreachable).sum();
    let total = (n_hosts as f64) * f64::from(args.tasks);
    let (rss, cpu) = usage();
    println!(
        "ferry run {run}: wall {wall:.3} s, {:.0} tasks/s, changed {changed}, failed {failed}, exit {code}; controller peak RSS {rss:.1} MiB, CPU {cpu:.2} s; {:.1} round trips per host",
        total / wall.max(1e-9),
        trips as f64 / (n_hosts.max(1) as f64)
    );
    // The first few failures, so a run that failed says why.
    let events = rec.0.lock().unwrap();
    let failures = events.iter().filter_map(|e| match &e.kind {
        EventKind::HostResult(r) if matches!(r.outcome, Outcome::Failed | Outcome::Unreachable) => {
            Some(format!(
                "  {}: {} [{}]: {}{}",
                r.host,
                r.task,
                r.op,
                r.msg.as_deref().unwrap_or(""),
                r.stderr
                    .as_deref()
                    .map(|e| format!(" ({})", e.trim()))
                    .unwrap_or_default()
            ))
        }
        _ => None,
    });
    for line in failures.take(3) {
        eprintln!("{line}");
    }
    println!("  {}", breakdown(&events, start_ts, start_ts + wall));
    RunFigures {
        wall,
        changed,
        failed,
    }
}
