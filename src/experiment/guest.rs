//! The lab guest (guest/: a Debian kernel and a busybox initramfs whose init reads
//! the kernel command line): its address, the command line that asks for a
//! scenario's load, and the load reports it prints on its serial console.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use super::driver::HostEnd;
use super::result::MigrationResult;
use super::scenario::{Direction, DiskWhen, Load};

/// UDP port of a network load: where the guest streams to (discard: nobody needs
/// to listen), and where it receives an inbound stream.
pub const NETWORK_LOAD_PORT: u16 = 9;

/// The guest's address with prefix on the guest network, from `host`'s variables:
/// `guest_vm_ip` if set, else `.200` of the host's own `guest_ip`/`guest_prefix`
/// network (what roles/guest's default gives), else None.
pub fn guest_address(host: &HostEnd) -> Option<(String, u32)> {
    if let Some(v) = host.var("guest_vm_ip") {
        let (ip, prefix) = v.split_once('/').unwrap_or((&v, "24"));
        return Some((ip.to_string(), prefix.parse().unwrap_or(24)));
    }
    let ip = host.var("guest_ip")?;
    let prefix = host.var("guest_prefix").and_then(|p| p.parse().ok())?;
    let (net, _) = ip.rsplit_once('.')?;
    Some((format!("{net}.200"), prefix))
}

/// Why a load cannot be asked of the lab guest.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoadError {
    #[error("a network load needs a prober (the stream's other end) on the guest network")]
    NoStreamPeer,
    #[error("a disk load needs a guest disk (flavor disk > 0 and a driver that attaches one)")]
    NoDisk,
}

/// One part of a load as the load program takes it: its option (`-m`, `-c`, `-n`,
/// `-r`, `-d`), the init's kernel parameter for it (`dirty`, `cpu`, `net`,
/// `netin`, `disk`) and the value (the same for both).
#[derive(Debug, Clone, PartialEq)]
pub struct LoadPart {
    pub option: &'static str,
    pub param: &'static str,
    pub value: String,
}

/// `load` as the load program's parts. `stream_to`: where a network load sends
/// (the prober's address on the guest network; an inbound stream needs none: the
/// guest listens and the prober sends, see [`super::load_process`]); `disk`: the
/// guest's disk device, when it has one.
pub fn load_parts(
    load: &Load,
    stream_to: Option<&str>,
    disk: Option<&str>,
) -> Result<Vec<LoadPart>, LoadError> {
    let mut parts = Vec::new();
    let mut push = |option, param, value: String| {
        parts.push(LoadPart {
            option,
            param,
            value,
        })
    };
    if let Some(m) = &load.memory {
        let rate = m.rate_mib_s.unwrap_or(0.0);
        push("-m", "dirty", format!("{},{rate}", m.working_set_mib));
    }
    if let Some(n) = load.cpu_threads.filter(|n| *n > 0) {
        push("-c", "cpu", n.to_string());
    }
    if let Some(n) = &load.network {
        if n.direction == Direction::In {
            push("-r", "netin", NETWORK_LOAD_PORT.to_string());
        } else {
            let to = stream_to.ok_or(LoadError::NoStreamPeer)?;
            push(
                "-n",
                "net",
                format!("{to}:{NETWORK_LOAD_PORT},{}", n.rate_mbit),
            );
        }
    }
    if let Some(d) = &load.disk {
        let dev = disk.ok_or(LoadError::NoDisk)?;
        let when = match d.when {
            DiskWhen::Before => "before",
            DiskWhen::During => "during",
            DiskWhen::Both => "both",
        };
        push("-d", "disk", format!("{dev},{},{when}", d.write_mib));
    }
    Ok(parts)
}

/// The kernel command line of a lab guest at `ip`/`prefix` running `load` (see
/// [`load_parts`] for `stream_to` and `disk`).
pub fn kernel_cmdline(
    ip: &str,
    prefix: u32,
    load: &Load,
    stream_to: Option<&str>,
    disk: Option<&str>,
) -> Result<String, LoadError> {
    let mut c = format!("console=ttyS0 quiet ferry.ip={ip}/{prefix}");
    for p in load_parts(load, stream_to, disk)? {
        c.push_str(&format!(" ferry.{}={}", p.param, p.value));
    }
    Ok(c)
}

/// The load program's per-second reports in a serial log
/// (`ferry-load: t=N dirty_mib_s=X cpu_loops_s=Y net_mbit_s=Z disk_mib_s=W`).
pub fn load_reports(serial: &str) -> Vec<Map<String, Value>> {
    serial
        .lines()
        .filter_map(|l| l.split_once("ferry-load: t=").map(|(_, rest)| rest))
        .filter_map(|rest| {
            let mut fields = rest.split_whitespace();
            let t: f64 = fields.next()?.parse().ok()?;
            let mut m = Map::new();
            m.insert("t".into(), json!(t));
            for f in fields {
                let (k, v) = f.split_once('=')?;
                m.insert(k.into(), json!(v.parse::<f64>().ok()?));
            }
            Some(m)
        })
        .collect()
}

/// What a guest kernel prints when it fails: a panic, an oops header (`BUG:`,
/// `Oops:`, a general protection fault or invalid opcode, each numbered `[#N]`),
/// a soft lockup, an RCU stall, or a user process killed by a fault (the load
/// program segfaulting is the guest failing too).
const KERNEL_FAILURE_SIGNS: &[&str] = &[
    "Kernel panic",
    "] BUG: ",
    "BUG: soft lockup",
    "] Oops: ",
    "] general protection fault",
    "] invalid opcode: ",
    "self-detected stall",
    "detected stalls on CPU",
    " segfault at ",
    "] traps: ",
];

/// The first line of a kernel failure (see [`KERNEL_FAILURE_SIGNS`]) in a serial log.
pub fn kernel_failure(serial: &str) -> Option<String> {
    serial
        .lines()
        .find(|l| KERNEL_FAILURE_SIGNS.iter().any(|s| l.contains(s)))
        .map(|l| l.trim().to_string())
}

/// Where a run's guest console from `side` ("source", "destination") is kept in
/// the results directory.
pub fn serial_log(results_dir: &Path, index: u32, side: &str) -> PathBuf {
    results_dir
        .join("serial")
        .join(format!("{index}-{side}.log"))
}

/// Keep `console` (a guest's serial console as read from a host) at
/// [`serial_log`]; the first kernel failure in it, if any. Keeping is best
/// effort: a console that cannot be written is not a failed run.
pub fn keep_serial(results_dir: &Path, index: u32, side: &str, console: &[u8]) -> Option<String> {
    let path = serial_log(results_dir, index, side);
    if let Some(dir) = path.parent()
        && std::fs::create_dir_all(dir).is_ok()
    {
        let _ = std::fs::write(&path, console);
    }
    kernel_failure(&String::from_utf8_lossy(console))
}

/// When run `index`'s guest went silent on the destination: its load program
/// reported every second on the source's console, and the destination's kept
/// console holds not one report (nor anything else a failing kernel prints).
/// None when either console was not kept or the guest carried no load.
pub fn silent_on_destination(results_dir: &Path, index: u32) -> Option<String> {
    let read = |side| std::fs::read(serial_log(results_dir, index, side)).ok();
    let (source, destination) = (read("source")?, read("destination")?);
    let source = String::from_utf8_lossy(&source);
    let destination = String::from_utf8_lossy(&destination);
    (!load_reports(&source).is_empty() && load_reports(&destination).is_empty()).then(|| {
        format!(
            "the guest hung after the migration: its load program reported every second \
             on the source, and its console on the destination shows {} bytes and no report",
            destination.len()
        )
    })
}

/// Whether the guest's init said it is up.
pub fn booted(serial: &str) -> bool {
    serial.contains("ferry-guest: up")
}

/// The mean of each figure over `reports`, skipping the first (it includes the
/// working set's first touch); None when there are none. A `t=0` report (the rate
/// of a disk load's write before the rest starts) is not averaged: its figures are
/// kept as they are.
pub fn mean_load(reports: &[Map<String, Value>]) -> Option<Map<String, Value>> {
    let is_t0 = |r: &Map<String, Value>| r.get("t").and_then(Value::as_f64) == Some(0.0);
    let once: Vec<&Map<String, Value>> = reports.iter().filter(|r| is_t0(r)).collect();
    let reports: Vec<Map<String, Value>> = reports.iter().filter(|r| !is_t0(r)).cloned().collect();
    let used = if reports.len() > 1 {
        &reports[1..]
    } else {
        &reports[..]
    };
    if used.is_empty() && once.is_empty() {
        return None;
    }
    let mut sums: Map<String, Value> = Map::new();
    for r in used {
        for (k, v) in r {
            if k == "t" {
                continue;
            }
            let s = sums.get(k).and_then(Value::as_f64).unwrap_or(0.0);
            sums.insert(k.clone(), json!(s + v.as_f64().unwrap_or(0.0)));
        }
    }
    let n = used.len().max(1) as f64;
    let mut out: Map<String, Value> = sums
        .into_iter()
        .map(|(k, v)| {
            let mean = v.as_f64().unwrap_or(0.0) / n;
            (k, json!((mean * 10.0).round() / 10.0))
        })
        .collect();
    out.insert("reports".into(), json!(used.len()));
    for r in once {
        out.extend(
            r.iter()
                .filter(|(k, _)| *k != "t")
                .map(|(k, v)| (k.clone(), v.clone())),
        );
    }
    Some(out)
}

/// Record what the load achieved from both hosts' serial consoles: the source's
/// mean dirty rate (for a memory load) and every mean figure of both sides.
pub fn record_load(
    row: &mut MigrationResult,
    load: &Load,
    source_serial: &str,
    destination_serial: &str,
) {
    let s_load = mean_load(&load_reports(source_serial));
    let d_load = mean_load(&load_reports(destination_serial));
    row.dirty_rate_achieved_mib_s = s_load
        .as_ref()
        .filter(|_| load.memory.is_some())
        .and_then(|l| l.get("dirty_mib_s"))
        .and_then(Value::as_f64);
    if s_load.is_some() || d_load.is_some() {
        row.load_achieved = Some(json!({"source": s_load, "destination": d_load}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::scenario::{MemoryLoad, NetworkLoad};

    #[test]
    fn command_line_asks_for_each_load() {
        let load = Load {
            name: "mix".into(),
            memory: Some(MemoryLoad {
                working_set_mib: 32,
                rate_mib_s: Some(20.0),
            }),
            cpu_threads: Some(1),
            network: Some(NetworkLoad {
                rate_mbit: 5.0,
                direction: Direction::Out,
            }),
            disk: None,
        };
        let c = kernel_cmdline("10.0.3.200", 24, &load, Some("10.0.3.1"), None).unwrap();
        assert_eq!(
            c,
            "console=ttyS0 quiet ferry.ip=10.0.3.200/24 ferry.dirty=32,20 ferry.cpu=1 ferry.net=10.0.3.1:9,5"
        );
        let idle = kernel_cmdline("10.0.3.200", 24, &Load::default(), None, None).unwrap();
        assert_eq!(idle, "console=ttyS0 quiet ferry.ip=10.0.3.200/24");
        let max = Load {
            memory: Some(MemoryLoad {
                working_set_mib: 8,
                rate_mib_s: None,
            }),
            ..Load::default()
        };
        assert!(
            kernel_cmdline("a", 24, &max, None, None)
                .unwrap()
                .ends_with("ferry.dirty=8,0")
        );
        let disk = Load {
            disk: Some(crate::experiment::scenario::DiskLoad {
                write_mib: 4,
                when: DiskWhen::During,
            }),
            ..Load::default()
        };
        assert_eq!(
            kernel_cmdline("a", 24, &disk, None, None),
            Err(LoadError::NoDisk)
        );
        assert!(
            kernel_cmdline("a", 24, &disk, None, Some("/dev/vda"))
                .unwrap()
                .ends_with(" ferry.disk=/dev/vda,4,during")
        );
        let inbound = Load {
            network: Some(NetworkLoad {
                rate_mbit: 20.0,
                direction: Direction::In,
            }),
            ..Load::default()
        };
        // The guest listens; the prober sends (no peer address on the guest's line).
        assert_eq!(
            kernel_cmdline("a", 24, &inbound, None, None).unwrap(),
            "console=ttyS0 quiet ferry.ip=a/24 ferry.netin=9"
        );
    }

    #[test]
    fn reports_are_parsed_and_averaged() {
        let serial = "ferry-guest: up, eth0=x\n/ # \x1b[6nferry-load: start mem=32\n\
            ferry-load: t=1 dirty_mib_s=5.0 cpu_loops_s=10 net_mbit_s=0.0 disk_mib_s=0.0\n\
            ferry-load: t=2 dirty_mib_s=20.0 cpu_loops_s=100 net_mbit_s=0.0 disk_mib_s=0.0\n\
            garbage ferry-load: t=3 dirty_mib_s=30.0 cpu_loops_s=300 net_mbit_s=1.0 disk_mib_s=0.0\n";
        assert!(booted(serial));
        assert_eq!(kernel_failure(serial), None);
        let oops = "[   21.16] BUG: kernel NULL pointer dereference, address: 0\n[   21.26] Kernel panic - not syncing\n";
        assert_eq!(
            kernel_failure(oops).as_deref(),
            Some("[   21.16] BUG: kernel NULL pointer dereference, address: 0")
        );
        // As Debian's 6.1 kernel prints them: a fault in process context has no
        // "Oops:" line and no panic, and the guest may go on without its network.
        for (log, first) in [
            (
                "[   20.1] ferry-load: t=1\n[   21.5] general protection fault, probably for non-canonical address 0xdead: 0000 [#1] PREEMPT SMP NOPTI\n",
                "[   21.5] general protection fault, probably for non-canonical address 0xdead: 0000 [#1] PREEMPT SMP NOPTI",
            ),
            (
                "[   44.0] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [load:71]\n",
                "[   44.0] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [load:71]",
            ),
            (
                "[   43.2] rcu: INFO: rcu_preempt self-detected stall on CPU\n",
                "[   43.2] rcu: INFO: rcu_preempt self-detected stall on CPU",
            ),
            (
                "[   22.9] load[71]: segfault at 8 ip 0000000000401a2b sp 00007ffd error 4 in load[401000+9000]\n",
                "[   22.9] load[71]: segfault at 8 ip 0000000000401a2b sp 00007ffd error 4 in load[401000+9000]",
            ),
            (
                "[   23.0] invalid opcode: 0000 [#1] PREEMPT SMP NOPTI\n",
                "[   23.0] invalid opcode: 0000 [#1] PREEMPT SMP NOPTI",
            ),
        ] {
            assert_eq!(kernel_failure(log).as_deref(), Some(first), "{log}");
        }
        let r = load_reports(serial);
        assert_eq!(r.len(), 3);
        let m = mean_load(&r).unwrap();
        assert_eq!(m["dirty_mib_s"], json!(25.0));
        assert_eq!(m["cpu_loops_s"], json!(200.0));
        assert_eq!(m["reports"], json!(2));
        assert!(mean_load(&[]).is_none());
        // A disk load's write before the rest: its rate kept, not averaged.
        let before = "ferry-load: t=0 disk_before_mib_s=30.5\nferry-load: start mem=0\n\
            ferry-load: t=1 dirty_mib_s=0.0 cpu_loops_s=0 net_mbit_s=0.0 disk_mib_s=0.0\n\
            ferry-load: t=2 dirty_mib_s=0.0 cpu_loops_s=0 net_mbit_s=0.0 disk_mib_s=0.0\n";
        let m = mean_load(&load_reports(before)).unwrap();
        assert_eq!(m["disk_before_mib_s"], json!(30.5));
        assert_eq!(
            (m["disk_mib_s"].clone(), m["reports"].clone()),
            (json!(0.0), json!(1))
        );
    }

    #[test]
    fn a_guest_whose_load_fell_silent_on_the_destination_hung() {
        let dir = tempfile::tempdir().unwrap();
        let keep = |index, side, text: &str| keep_serial(dir.path(), index, side, text.as_bytes());
        let reports = "ferry-load: start mem=16\nferry-load: t=1 dirty_mib_s=15.6 cpu_loops_s=0 net_mbit_s=0.0 disk_mib_s=0.0\n";
        // Run 1: the reports go on after the migration; run 2: nothing arrived.
        assert_eq!(keep(1, "source", reports), None);
        assert_eq!(keep(1, "destination", reports), None);
        assert_eq!(keep(2, "source", reports), None);
        assert_eq!(keep(2, "destination", ""), None);
        assert_eq!(silent_on_destination(dir.path(), 1), None);
        let why = silent_on_destination(dir.path(), 2).unwrap();
        assert!(why.contains("hung after the migration"), "{why}");
        // An idle guest says nothing every second: silence proves nothing.
        assert_eq!(keep(3, "source", "ferry-guest: up\n"), None);
        assert_eq!(keep(3, "destination", ""), None);
        assert_eq!(silent_on_destination(dir.path(), 3), None);
        // A console not kept (another driver): nothing is claimed.
        assert_eq!(silent_on_destination(dir.path(), 4), None);
        assert!(serial_log(dir.path(), 2, "destination").is_file());
    }
}
