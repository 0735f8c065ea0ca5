//! Issue 7's end-to-end test, run by ferry itself on a 2-host lab
//! (`ferry lab up --hosts 2 --link-rate 1gbit`):
//!
//! 1. `ferry check` and `ferry run -i LAB playbooks/testbed.yml` (qemu_source:
//!    package) succeed; a second run reports changed=0 for every host.
//! 2. `playbooks/guest.yml -e guest_start=true` builds the busybox guest and
//!    starts it under libvirt on host 1; it answers ping on the guest network.
//! 3. With no further setup: `virsh migrate --live` host 1 -> host 2 over
//!    `qemu+tcp://` to host 2's management address. Host 1's migration NIC
//!    carries the guest's memory, its management NIC only libvirt's RPC.
//! 4. Back with post-copy (`--postcopy --bandwidth 40`, then
//!    `virsh migrate-postcopy` once `domjobinfo` on the source shows data
//!    moving): completes, the domain runs on host 1, the guest answers ping,
//!    and libvirt's lifecycle events say the post-copy phase ran (the source
//!    suspended for post-copy, the destination resumed in post-copy).
//!
//! Needs root, QEMU, libvirt, busybox-static, linux-image-amd64, gcc and cpio:
//! fails naming what is missing. Prints the figures docs/testbed.md records.

#[path = "common/lab.rs"]
mod lab_fixture;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use lab_fixture::{LabGuard, recap_hosts, text};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const GUEST: &str = "ferry-guest";

fn require_tools() {
    let mut missing = Vec::new();
    for (tool, package) in [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("libvirtd", "libvirt-daemon-system"),
        ("virtlogd", "libvirt-daemon-system"),
        ("virsh", "libvirt-clients"),
        ("busybox", "busybox-static"),
        ("gcc", "gcc libc6-dev"),
        ("cpio", "cpio"),
        ("sshd", "openssh-server"),
    ] {
        let found = Command::new("sh")
            .args([
                "-c",
                &format!("command -v {tool} || test -x /usr/sbin/{tool}"),
            ])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !found {
            missing.push(format!("{tool} (install {package})"));
        }
    }
    let kernel = std::fs::read_dir("/boot")
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("vmlinuz-"))
        })
        .unwrap_or(false);
    if !kernel {
        missing.push("/boot/vmlinuz-* (install linux-image-amd64)".into());
    }
    assert!(
        missing.is_empty(),
        "the testbed end-to-end test needs: {}",
        missing.join(", ")
    );
}

/// `ferry run`/`check` on the lab's inventory; returns the output and its wall time.
fn ferry(lab: &LabGuard, args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let out = lab
        .ferry(args)
        .current_dir(ROOT)
        .output()
        .expect("run ferry");
    (out, started.elapsed())
}

fn assert_ok(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} exited {}:\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The NIC inside `host` holding address `ip`.
fn iface_with(lab: &LabGuard, host: &str, ip: &str) -> String {
    let out = lab.exec_ok(host, "ip -o -4 addr show");
    out.lines()
        .find(|l| l.contains(&format!(" inet {ip}/")))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("{host}: no NIC holds {ip}:\n{out}"))
        .to_string()
}

/// tx and rx byte counters of a NIC, read inside the host (its own sysfs).
fn counters(lab: &LabGuard, host: &str, iface: &str) -> (u64, u64) {
    let out = lab.exec_ok(host,
        &format!(
            "cat /sys/class/net/{iface}/statistics/tx_bytes /sys/class/net/{iface}/statistics/rx_bytes"
        ),
    );
    let n: Vec<u64> = out
        .split_whitespace()
        .map(|s| s.parse().expect("a byte counter"))
        .collect();
    (n[0], n[1])
}

fn virsh(lab: &LabGuard, host: &str, args: &str) -> Output {
    lab.exec(host, &format!("virsh -c qemu:///system {args}"))
}

/// The guest's state on `host` as libvirt says it, or "absent" when libvirt
/// answers that it has no such domain. Any other failure (libvirtd down or not
/// answering) fails the test: a dead libvirtd is not a guest that left.
fn domstate(lab: &LabGuard, host: &str) -> String {
    let out = virsh(lab, host, &format!("domstate {GUEST}"));
    if out.status.success() {
        return text(&out.stdout).trim().to_string();
    }
    let err = text(&out.stderr);
    assert!(
        err.contains("failed to get domain") || err.contains("Domain not found"),
        "{host}: virsh domstate {GUEST} failed, and not because the domain is absent \
         (is libvirtd running there?): {err}"
    );
    "absent".into()
}

/// `virsh event --loop --event lifecycle` (every domain) running on a host, its lines
/// in a file there: libvirt's own word on what a migration did.
struct LifecycleEvents {
    host: String,
    file: String,
}

impl LifecycleEvents {
    fn start(lab: &LabGuard, host: &str) -> LifecycleEvents {
        let file = format!("/var/tmp/ferry-e2e-events-{}", std::process::id());
        let ev = LifecycleEvents {
            host: host.to_string(),
            file,
        };
        let f = &ev.file;
        lab.exec_ok(
            host,
            &format!(
                "rm -f {f}; setsid stdbuf -oL timeout 600 virsh -c qemu:///system event --loop \
                 --event lifecycle </dev/null >{f} 2>&1 & echo $! > {f}.pid"
            ),
        );
        // Listening once virsh is connected: an unreachable libvirtd ends it with an error.
        std::thread::sleep(Duration::from_secs(1));
        // (Not a zombie: nobody reaps it once its shell has gone.)
        let alive = lab.exec(
            host,
            &format!("s=$(sed -n 's/^State:[[:space:]]*//p' /proc/$(cat {f}.pid)/status); [ -n \"$s\" ] && [ \"${{s%% *}}\" != Z ]"),
        );
        assert!(
            alive.status.success(),
            "{host}: virsh event exited (is libvirtd running there?): {}",
            lab.exec_ok(host, &format!("cat {f}"))
        );
        ev
    }

    /// Stop listening; the lines it printed.
    fn stop(self, lab: &LabGuard) -> String {
        let f = &self.file;
        std::thread::sleep(Duration::from_millis(500));
        lab.exec_ok(&self.host, &format!("kill $(cat {f}.pid); true"));
        lab.exec_ok(&self.host, &format!("cat {f}; rm -f {f} {f}.pid"))
    }
}

/// Ping the guest from `host`'s guest-bridge side until it answers (or `limit`).
fn wait_for_ping(lab: &LabGuard, host: &str, ip: &str, limit: Duration) -> Duration {
    try_ping(lab, host, ip, limit).unwrap_or_else(|last| {
        panic!("the guest ({ip}) did not answer ping from {host} within {limit:?}: {last}")
    })
}

/// Ping until an answer (its delay) or `limit` (the last ping's output).
fn try_ping(lab: &LabGuard, host: &str, ip: &str, limit: Duration) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        let out = lab.exec(host, &format!("busybox ping -c 1 -W 1 {ip}"));
        if out.status.success() {
            return Ok(started.elapsed());
        }
        if started.elapsed() >= limit {
            return Err(text(&out.stdout));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// After a migration to `dest`, ping the guest from `other` (the other host): the
/// frames cross the lab's guest bridge, which learns the guest's new port from
/// QEMU's self-announcement (RARP) at the end of the migration. If that
/// announcement was lost (seen once on a machine loaded by many parallel tests),
/// the bridge keeps sending to the old port until its entry ages out (300 s): the
/// test then says so loudly, asks QEMU to announce again (QMP `announce-self`,
/// what an operator would do) and requires an answer after that.
fn ping_after_migration(lab: &LabGuard, other: &str, dest: &str, ip: &str) {
    let Err(last) = try_ping(lab, other, ip, Duration::from_secs(30)) else {
        return;
    };
    let fdb = std::process::Command::new("bridge")
        .args(["fdb", "show", "br", &lab.state().names().guest_bridge()])
        .output()
        .map(|o| format!("{}{}", text(&o.stdout), text(&o.stderr)))
        .unwrap_or_else(|e| format!("(bridge fdb show: {e})"));
    let announce = virsh(
        lab,
        dest,
        &format!(
            "qemu-monitor-command {GUEST} '{{\"execute\":\"announce-self\",\"arguments\":\
             {{\"initial\":50,\"max\":550,\"rounds\":5,\"step\":100}}}}'"
        ),
    );
    assert_ok("virsh qemu-monitor-command announce-self", &announce);
    match try_ping(lab, other, ip, Duration::from_secs(30)) {
        Ok(_) => eprintln!(
            "\n!!! WARNING: the guest ({ip}) answered ping from {other} only after a second \
             announce-self on {dest}: the lab bridge had not learned its new port from the \
             migration's announcement.\nguest bridge fdb then:\n{fdb}"
        ),
        Err(again) => panic!(
            "the guest ({ip}) did not answer ping from {other} after migrating to {dest}, \
             even after a second announce-self: {last}\n{again}\nguest bridge fdb:\n{fdb}"
        ),
    }
}

struct Moved {
    wall: Duration,
    mig_tx: u64,
    mgmt_tx: u64,
}

/// Counters of the source's migration and management NICs around `migrate`.
fn measured(lab: &LabGuard, src: &str, migrate: impl FnOnce()) -> Moved {
    let h = lab.host(src).clone();
    let mig = iface_with(lab, src, &h.migration_ip);
    let mgmt = iface_with(lab, src, &h.mgmt_ip);
    let (mig0, _) = counters(lab, src, &mig);
    let (mgmt0, _) = counters(lab, src, &mgmt);
    let started = Instant::now();
    migrate();
    let wall = started.elapsed();
    let (mig1, _) = counters(lab, src, &mig);
    let (mgmt1, _) = counters(lab, src, &mgmt);
    Moved {
        wall,
        mig_tx: mig1 - mig0,
        mgmt_tx: mgmt1 - mgmt0,
    }
}

/// The migration NIC carried the guest's memory; the management NIC far less.
fn assert_over_migration_network(what: &str, m: &Moved, guest_mib: u64) {
    // Pages the guest never touched go as zero-page flags: a 128 MiB guest
    // sends ~70 MiB. A quarter of its RAM is the floor of "its memory went here".
    let floor = guest_mib * 1024 * 1024 / 4;
    assert!(
        m.mig_tx >= floor,
        "{what}: the migration NIC sent only {} bytes (guest {guest_mib} MiB: expected >= {floor}); \
         did the migration go over the management network? ({} bytes there)",
        m.mig_tx,
        m.mgmt_tx
    );
    assert!(
        m.mgmt_tx < 1024 * 1024 && m.mgmt_tx * 50 < m.mig_tx,
        "{what}: the management NIC sent {} bytes (migration NIC {}): migration data crossed it",
        m.mgmt_tx,
        m.mig_tx
    );
}

/// Destroys the guest on every lab host before the lab goes down (also on panic).
struct GuestCleanup<'a>(&'a LabGuard);

impl Drop for GuestCleanup<'_> {
    fn drop(&mut self) {
        for h in &self.0.hosts {
            let _ = virsh(self.0, &h.name, &format!("destroy {GUEST}"));
        }
    }
}

#[test]
fn testbed_provisions_and_migrates_over_the_migration_network() {
    lab_fixture::require_root();
    require_tools();
    let lab = LabGuard::up_with("tbe2e", 2, &["--link-rate", "1gbit"]);
    let inv = lab.inventory.display().to_string();
    let (h1, h2) = (lab.hosts[0].clone(), lab.hosts[1].clone());
    let work = tempfile::tempdir().unwrap();
    let events = |n: &str| -> PathBuf { work.path().join(format!("{n}.jsonl")) };

    // 1. Provision: check clean, first run succeeds, second run changes nothing.
    for pb in ["playbooks/testbed.yml", "playbooks/guest.yml"] {
        let (out, _) = ferry(&lab, &["check", "-i", &inv, pb]);
        assert_ok(&format!("ferry check {pb}"), &out);
    }
    let first = events("testbed-1");
    let started = Instant::now();
    let (_, ev) = lab.run_ok(
        "playbooks/testbed.yml (first)",
        &["playbooks/testbed.yml"],
        &first,
    );
    let t_first = started.elapsed();
    let r1 = recap_hosts(&ev);
    for h in &lab.hosts {
        assert_eq!(r1[&h.name]["failed"], 0, "{}: {r1:?}", h.name);
        assert!(
            r1[&h.name]["changed"].as_u64().unwrap() > 0,
            "a fresh host changes: {r1:?}"
        );
    }
    let second = events("testbed-2");
    let started = Instant::now();
    let (out, ev) = lab.run_ok(
        "playbooks/testbed.yml (second)",
        &["playbooks/testbed.yml"],
        &second,
    );
    let t_second = started.elapsed();
    let r2 = recap_hosts(&ev);
    for h in &lab.hosts {
        assert_eq!(
            r2[&h.name]["changed"],
            0,
            "second run changed something on {}: {r2:?}\n{}",
            h.name,
            text(&out.stdout)
        );
        assert_eq!(r2[&h.name]["failed"], 0, "{r2:?}");
    }
    assert!(
        text(&out.stdout).contains(&format!("{} : ok=", h1.name)),
        "the recap names every host:\n{}",
        text(&out.stdout)
    );

    // 2. The guest, started by libvirt on host 1.
    let _cleanup = GuestCleanup(&lab);
    let build_dir = work.path().join("guest-build");
    let (out, t_guest) = ferry(
        &lab,
        &[
            "run",
            "-i",
            &inv,
            "playbooks/guest.yml",
            "-e",
            "guest_start=true",
            "-e",
            &format!("guest_build_dir={}", build_dir.display()),
        ],
    );
    assert_ok("ferry run playbooks/guest.yml -e guest_start=true", &out);
    assert_eq!(domstate(&lab, &h1.name), "running", "guest on host 1");
    // The guest's address: what the role wrote on its kernel command line.
    let xml = lab.exec_ok(&h1.name, &format!("cat /var/lib/ferry/guest/{GUEST}.xml"));
    let guest_ip = xml
        .split("ferry.ip=")
        .nth(1)
        .and_then(|s| s.split(['/', ' ', '<']).next())
        .unwrap_or_else(|| panic!("no ferry.ip= in the domain XML:\n{xml}"))
        .to_string();
    let memory_kib: u64 = xml
        .split("<memory unit='MiB'>")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(|mib| mib * 1024)
        .unwrap_or_else(|| panic!("no <memory unit='MiB'> in the domain XML:\n{xml}"));
    let guest_mib = memory_kib / 1024;
    let t_boot = wait_for_ping(&lab, &h2.name, &guest_ip, Duration::from_secs(120));

    // 3. Pre-copy live migration host 1 -> host 2, to host 2's management address.
    let pre = measured(&lab, &h1.name, || {
        lab.exec_ok(
            &h1.name,
            &format!(
                "virsh -c qemu+tcp://{}/system migrate --live {GUEST} qemu+tcp://{}/system",
                h1.mgmt_ip, h2.mgmt_ip
            ),
        );
    });
    assert_eq!(domstate(&lab, &h2.name), "running", "guest on host 2");
    assert_eq!(domstate(&lab, &h1.name), "absent", "guest left host 1");
    assert_over_migration_network("pre-copy host 1 -> host 2", &pre, guest_mib);
    ping_after_migration(&lab, &h1.name, &h2.name, &guest_ip);

    // 4. Post-copy back: switch once the source's domjobinfo shows data moving.
    let mut switch_at = Duration::ZERO;
    let src_events = LifecycleEvents::start(&lab, &h2.name);
    let dst_events = LifecycleEvents::start(&lab, &h1.name);
    let post = measured(&lab, &h2.name, || {
        let started = Instant::now();
        let migrate = lab
            .ferry(&[
                "lab",
                "exec",
                "--name",
                &lab.name,
                &h2.name,
                "--",
                "virsh",
                "-c",
                "qemu:///system",
                "migrate",
                "--live",
                "--postcopy",
                "--bandwidth",
                "40",
                GUEST,
                &format!("qemu+tcp://{}/system", h1.mgmt_ip),
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start virsh migrate --postcopy");
        let jobinfo = loop {
            let out = virsh(&lab, &h2.name, &format!("domjobinfo {GUEST}"));
            let jobinfo = text(&out.stdout);
            let processed = jobinfo
                .lines()
                .find(|l| l.starts_with("Data processed:"))
                .and_then(|l| l.split_whitespace().nth(2))
                .and_then(|n| n.parse::<f64>().ok())
                .unwrap_or(0.0);
            if processed > 0.0 {
                break jobinfo;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the post-copy migration moved no data within 60 s; domjobinfo:\n{jobinfo}"
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        switch_at = started.elapsed();
        let out = virsh(&lab, &h2.name, &format!("migrate-postcopy {GUEST}"));
        let done = migrate.wait_with_output().expect("wait for virsh migrate");
        assert!(
            out.status.success(),
            "virsh migrate-postcopy failed (the switch to post-copy did not happen): {}\n\
             domjobinfo before:\n{jobinfo}\nvirsh migrate: {}",
            text(&out.stderr),
            text(&done.stderr)
        );
        assert_ok("virsh migrate --live --postcopy (host 2 -> host 1)", &done);
    });
    assert_eq!(domstate(&lab, &h1.name), "running", "guest back on host 1");
    assert_eq!(domstate(&lab, &h2.name), "absent", "guest left host 2");
    // libvirt's events say the post-copy phase ran: the source paused for it,
    // the destination ran the guest in it (before all memory was there).
    let (src_said, dst_said) = (src_events.stop(&lab), dst_events.stop(&lab));
    eprintln!("source events:\n{src_said}destination events:\n{dst_said}");
    assert!(
        src_said.contains(&format!("'{GUEST}': Suspended Post-copy")),
        "host 2 (source) never paused for post-copy:\n{src_said}"
    );
    assert!(
        dst_said.contains(&format!("'{GUEST}': Resumed Post-copy")),
        "host 1 (destination) never ran the guest in post-copy:\n{dst_said}"
    );
    assert_over_migration_network("post-copy host 2 -> host 1", &post, guest_mib);
    ping_after_migration(&lab, &h2.name, &h1.name, &guest_ip);

    eprintln!(
        "figures: provision first {:.1} s, second {:.1} s; guest playbook {:.1} s, first ping {:.1} s later; \
         guest {guest_mib} MiB; pre-copy {:.2} s, migration NIC tx {} B, management NIC tx {} B; \
         post-copy {:.2} s (switch at {:.2} s), migration NIC tx {} B, management NIC tx {} B",
        t_first.as_secs_f64(),
        t_second.as_secs_f64(),
        t_guest.as_secs_f64(),
        t_boot.as_secs_f64(),
        pre.wall.as_secs_f64(),
        pre.mig_tx,
        pre.mgmt_tx,
        post.wall.as_secs_f64(),
        switch_at.as_secs_f64(),
        post.mig_tx,
        post.mgmt_tx
    );
}
