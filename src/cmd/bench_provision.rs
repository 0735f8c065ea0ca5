//! `ferry bench provision`: a provisioning benchmark that prints figures.
//!
//! Brings up a lab of N hosts with `ferry lab up` (or uses `-i INV`), runs a workload of
//! W tasks per host twice (from nothing, then with nothing to change) and prints the wall
//! time of each run, tasks per second, the controller's peak RSS and CPU time.
//!
//! The workload uses the real `file`, `copy`, `template`, `lineinfile`, `shell` and `command`
//! ops (see [`workload`]); hosts are loaded and reached as `ferry run` does.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use miette::{IntoDiagnostic, miette};
use serde_json::{Value, json};

use crate::CmdResult;
use crate::cli::{BenchProvisionArgs, InventoryOpts};
use crate::engine::{Engine, EventKind, Outcome, Recorder, RunOptions};
use crate::playbook::{Play, Playbook, Task, TaskItem};
use crate::transport::ConnectDefaults;

/// The benchmark's tasks for one host, cycling through: ensure a directory (0755), copy a
/// small file (0644), template a small file with host vars (`template`, the controller file
/// given), a shell command guarded by `creates:`, a lineinfile with `create: true`; the last
/// task is a read-only `command: cat` with `changed_when: false`.
pub fn workload(tasks: u32, template: &std::path::Path) -> Playbook {
    let root = "/tmp/ferry-bench";
    let mut items = Vec::new();
    let mk = |name: String, op: &str, args: Value| {
        let mut t = Task {
            name: Some(name),
            op: op.into(),
            ..Task::default()
        };
        if let Value::Object(m) = args {
            t.args.extend(m);
        }
        t
    };
    for i in 0..tasks.saturating_sub(1) {
        let d = format!("{root}/d{}", i / 5);
        let t = match i % 5 {
            0 => mk(
                format!("directory {i}"),
                "file",
                json!({"path": d, "state": "directory", "mode": "0755"}),
            ),
            1 => mk(
                format!("copy {i}"),
                "copy",
                json!({"content": format!("small file {i}\n"), "dest": format!("{d}/copy{i}"), "mode": "0644"}),
            ),
            2 => mk(
                format!("template {i}"),
                "template",
                json!({"src": template.display().to_string(), "dest": format!("{d}/tmpl{i}"), "mode": "0644"}),
            ),
            3 => mk(
                format!("guarded shell {i}"),
                "shell",
                json!({"_raw_params": format!("date > {d}/stamp{i}"), "creates": format!("{d}/stamp{i}")}),
            ),
            _ => mk(
                format!("lineinfile {i}"),
                "lineinfile",
                json!({"path": format!("{d}/lines"), "line": format!("line {i}"), "create": true}),
            ),
        };
        items.push(TaskItem::Task(t));
    }
    let mut last = mk(
        "read back".into(),
        "command",
        json!({"_raw_params": format!("cat {root}/d0/copy1")}),
    );
    last.changed_when = vec!["false".into()];
    items.push(TaskItem::Task(last));
    Playbook {
        path: PathBuf::from("<bench>"),
        plays: vec![Play {
            name: Some("bench provision".into()),
            hosts: "all".into(),
            gather_facts: Some(false),
            tasks: items,
            ..Play::default()
        }],
    }
}

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
    let made_lab = args.inventory.is_empty();
    let inventory = if made_lab {
        vec![lab_up(args.hosts)?]
    } else {
        args.inventory.clone()
    };
    let result = provision_on(&args, &inventory);
    if made_lab {
        lab_down();
    }
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

fn provision_on(args: &BenchProvisionArgs, inventory: &[PathBuf]) -> CmdResult {
    let inv = InventoryOpts {
        inventory: inventory.to_vec(),
        ..InventoryOpts::default()
    };
    let hosts = super::load_hosts(&inv)?;
    let n_hosts = hosts
        .select("all")
        .map_err(|e| miette!("{}: {e}", inventory[0].display()))?
        .len();
    let dir = tempfile::tempdir().into_diagnostic()?;
    let template = dir.path().join("small.j2");
    std::fs::write(&template, TEMPLATE).into_diagnostic()?;
    let pb = workload(args.tasks, &template);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .into_diagnostic()?;
    println!(
        "bench provision: {n_hosts} hosts x {} tasks (file, copy, template, guarded shell, lineinfile; read-only cat last), {} strategy",
        args.tasks, args.strategy
    );
    let mut worst = 0;
    for run in 1..=2 {
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
        let start = Instant::now();
        let code = rt.block_on(engine.run(std::slice::from_ref(&pb)));
        let trips = crate::transport::remote::round_trips() - trips0;
        let wall = start.elapsed().as_secs_f64();
        let stats = engine.stats();
        let changed: u32 = stats.values().map(|s| s.changed).sum();
        let failed: u32 = stats.values().map(|s| s.failed + s.unreachable).sum();
        let total = (n_hosts as f64) * f64::from(args.tasks);
        let (rss, cpu) = usage();
        println!(
            "run {run}: wall {wall:.3} s, {:.0} tasks/s, changed {changed}, failed {failed}, exit {code}; controller peak RSS {rss:.1} MiB, CPU {cpu:.2} s; {:.1} round trips per host",
            total / wall.max(1e-9),
            trips as f64 / (n_hosts.max(1) as f64)
        );
        // The first few failures, so a run that failed says why.
        let events = rec.0.lock().unwrap();
        let failures = events.iter().filter_map(|e| match &e.kind {
            EventKind::HostResult(r)
                if matches!(r.outcome, Outcome::Failed | Outcome::Unreachable) =>
            {
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
        worst = worst.max(code);
    }
    Ok(worst)
}
