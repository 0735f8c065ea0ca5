//! `ferry lab up|down|status|exec`: turn arguments into lab calls and print the outcome.

use std::io::Write;
use std::time::Instant;

use crate::CmdResult;
use crate::cli::{LabExecArgs, LabNameArgs, LabUpArgs};
use crate::exit;

use crate::lab::lifecycle::{self, LabSpec};

/// Print a line to stdout; a closed pipe (e.g. `| head -1`) is not an error worth a panic.
macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

pub fn up(args: LabUpArgs) -> CmdResult {
    let started = Instant::now();
    let spec = LabSpec {
        name: args.lab.name,
        state_dir: args.lab.state_dir,
        hosts: args.hosts,
        link_rate: args.link_rate,
        mtu: args.mtu,
        range: args.range,
    };
    let lab = lifecycle::up(&spec)?;
    let plan = lab.plan();
    out!(
        "lab {}: {} hosts up in {:.1} s; management {}, migration {} (mtu {}, {}), guest {}",
        lab.name,
        lab.hosts.len(),
        started.elapsed().as_secs_f64(),
        plan.mgmt_net(),
        plan.migration_net(),
        lab.mtu,
        lab.link_rate
            .as_ref()
            .map(|r| r.text.as_str())
            .unwrap_or("unshaped"),
        plan.guest_net(),
    );
    let n = lab.hosts.len().max(1) as f64;
    out!(
        "cost per host: {:.0} ms to bring up (16 hosts at a time), {:.1} MiB held by its anchor and sshd (PSS; kernel memory not counted)",
        started.elapsed().as_secs_f64() * 1000.0 / n,
        lab.processes_pss_kib() as f64 / 1024.0 / n,
    );
    out!("ssh: ssh -F {} {}-1", lab.ssh_config().display(), lab.name);
    out!("{}", lab.inventory().display());
    Ok(exit::OK)
}

pub fn down(args: LabNameArgs) -> CmdResult {
    let r = lifecycle::down(&args.name, args.state_dir.as_deref())?;
    if r.processes == 0 && r.links == 0 && !r.state_removed {
        out!("lab {}: nothing to remove", args.name);
    } else {
        out!(
            "lab {}: stopped {} processes, deleted {} links{}",
            args.name,
            r.processes,
            r.links,
            if r.state_removed {
                ", removed its state"
            } else {
                ""
            }
        );
    }
    Ok(exit::OK)
}

pub fn status(args: LabNameArgs) -> CmdResult {
    let (lab, hosts) = lifecycle::status(&args.name, args.state_dir.as_deref())?;
    out!(
        "lab {} ({} hosts, range {}, state {})",
        lab.name,
        hosts.len(),
        lab.range,
        lab.state_dir.display()
    );
    out!(
        "{:<20} {:<15} {:<15} {:<15} {:<10} {:>5} {:>8} {:>8}  answers",
        "host",
        "mgmt",
        "migration",
        "guest",
        "rate",
        "mtu",
        "anchor",
        "sshd"
    );
    let pid = |p: Option<u32>| p.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
    let mut down = 0;
    for h in &hosts {
        if !h.answers {
            down += 1;
        }
        out!(
            "{:<20} {:<15} {:<15} {:<15} {:<10} {:>5} {:>8} {:>8}  {}",
            h.name,
            h.mgmt_ip,
            h.migration_ip,
            h.guest_ip,
            h.link_rate.as_deref().unwrap_or("unshaped"),
            h.mtu,
            pid(h.anchor_pid),
            pid(h.sshd_pid),
            if h.answers { "yes" } else { "no" }
        );
    }
    Ok(if down == 0 {
        exit::OK
    } else {
        exit::HOST_UNREACHABLE
    })
}

pub fn exec(args: LabExecArgs) -> CmdResult {
    let code = lifecycle::exec(
        &args.lab.name,
        args.lab.state_dir.as_deref(),
        &args.host,
        &args.command,
    )?;
    Ok(u8::try_from(code).unwrap_or(255))
}
