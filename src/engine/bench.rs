//! `ferry bench provision`: a provisioning benchmark that prints figures.
//!
//! Brings up a lab of N hosts with `ferry lab up` (or uses `-i INV`), runs a workload of
//! W tasks per host twice (from nothing, then with nothing to change) and prints the wall
//! time of each run, tasks per second, the controller's peak RSS and CPU time.
//!
//! SCAFFOLDING(integration): the workload uses `command`/`shell` only until the file, copy,
//! template and lineinfile ops land (see [`workload`]); host loading goes through the same
//! seam as `ferry run` (`command::load_hosts`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use miette::{IntoDiagnostic, miette};
use serde_json::Value;

use super::{Engine, Recorder, RunOptions};
use crate::CmdResult;
use crate::cli::{BenchProvisionArgs, ConnectOpts, InventoryOpts};
use crate::playbook::{Play, Playbook, Task, TaskItem};

/// The benchmark's tasks for one host, cycling through: ensure a directory, copy a small
/// file, template a small file with a host var, a shell command guarded by `creates:`, a
/// lineinfile with `create: true`; the last task is a read-only `cat` with `changed_when: false`.
pub fn workload(tasks: u32) -> Playbook {
    let root = "/tmp/ferry-bench";
    let mut items = Vec::new();
    let mk = |name: String, op: &str, raw: String, creates: Option<String>| {
        let mut t = Task {
            name: Some(name),
            op: op.into(),
            ..Task::default()
        };
        t.args.insert("_raw_params".into(), Value::String(raw));
        if let Some(c) = creates {
            t.args.insert("creates".into(), Value::String(c));
        }
        t
    };
    for i in 0..tasks.saturating_sub(1) {
        let d = format!("{root}/d{}", i / 5);
        let t = match i % 5 {
            0 => mk(
                format!("directory {i}"),
                "command",
                format!("mkdir -p -m 0755 {d}"),
                Some(d.clone()),
            ),
            1 => mk(
                format!("copy {i}"),
                "shell",
                format!(
                    "mkdir -p {d} && printf 'small file {i}\\n' > {d}/copy{i} && chmod 0644 {d}/copy{i}"
                ),
                Some(format!("{d}/copy{i}")),
            ),
            2 => mk(
                format!("template {i}"),
                "shell",
                format!(
                    "mkdir -p {d} && printf 'host {{{{ inventory_hostname }}}} {i}\\n' > {d}/tmpl{i}"
                ),
                Some(format!("{d}/tmpl{i}")),
            ),
            3 => mk(
                format!("guarded shell {i}"),
                "shell",
                format!("mkdir -p {d} && date > {d}/stamp{i}"),
                Some(format!("{d}/stamp{i}")),
            ),
            _ => {
                let mut t = mk(
                    format!("lineinfile {i}"),
                    "shell",
                    format!(
                        "mkdir -p {d} && touch {d}/lines && (grep -qx 'line {i}' {d}/lines && echo same || echo 'line {i}' >> {d}/lines)"
                    ),
                    None,
                );
                t.changed_when = vec!["'same' not in __r.stdout".into()];
                t.register = Some("__r".into());
                t
            }
        };
        items.push(TaskItem::Task(t));
    }
    let mut last = mk(
        "read back".into(),
        "command",
        format!("cat {root}/d0/lines"),
        None,
    );
    last.changed_when = vec!["false".into()];
    last.failed_when = vec!["false".into()];
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
fn lab_up(hosts: u32) -> miette::Result<PathBuf> {
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
    let inventory = match &args.inventory {
        Some(i) => i.clone(),
        None => lab_up(args.hosts)?,
    };
    let inv = InventoryOpts {
        inventory: vec![inventory.clone()],
        ..InventoryOpts::default()
    };
    let connect = ConnectOpts::default();
    let hosts = super::command::load_hosts(&inv)?;
    let n_hosts = hosts
        .select("all")
        .map_err(|e| miette!("{}: {e}", inventory.display()))?
        .len();
    let pb = workload(args.tasks);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .into_diagnostic()?;
    println!(
        "bench provision: {n_hosts} hosts x {} tasks (command/shell workload until the file ops land)",
        args.tasks
    );
    let mut worst = 0;
    for run in 1..=2 {
        let rec = Arc::new(Recorder::default());
        let engine = Engine::new(
            RunOptions {
                forks: n_hosts.max(1),
                ..RunOptions::default()
            },
            hosts.clone(),
            super::command::connector(&connect),
            rec.clone(),
        );
        let start = Instant::now();
        let code = rt.block_on(engine.run(std::slice::from_ref(&pb)));
        let wall = start.elapsed().as_secs_f64();
        let stats = engine.stats();
        let changed: u32 = stats.values().map(|s| s.changed).sum();
        let failed: u32 = stats.values().map(|s| s.failed + s.unreachable).sum();
        let total = (n_hosts as f64) * f64::from(args.tasks);
        let (rss, cpu) = usage();
        println!(
            "run {run}: wall {wall:.3} s, {:.0} tasks/s, changed {changed}, failed {failed}, exit {code}; controller peak RSS {rss:.1} MiB, CPU {cpu:.2} s",
            total / wall.max(1e-9)
        );
        worst = worst.max(code);
    }
    Ok(worst)
}
