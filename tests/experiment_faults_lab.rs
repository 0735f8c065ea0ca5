//! The migration link cut while a pre-copy migration is in flight, on a 2-host
//! built-in lab with the qmp driver and real TCG guests (playbooks/guest.yml),
//! through `ferry experiment`: a matrix of three repetitions over a 50 Mbit/s
//! link (so a migration lasts seconds), cut in two ways while QEMU sends:
//!
//! - run 0: both hosts' migration veths set down (a pulled cable: TCP
//!   retransmits for minutes, QEMU hears nothing) → at the migration timeout
//!   the row is recorded `failed`, saying the migration stalled; the guest kept
//!   running on the source throughout (QMP `query-status` on the source says
//!   `running` at every poll) and answers the probe after the cancel;
//! - run 1: the destination resets the migration connection (iptables REJECT
//!   with tcp-reset on its migration NIC) → the row is `failed` with QEMU's
//!   error, the guest still runs on the source;
//! - run 2, with the link restored: completes.
//!
//! Every run of the matrix has its row (none lost), counted in the output as
//! `rows lost: N` for the README's reliability table.
//!
//! Needs root, QEMU, socat, iptables, iputils ping, busybox-static,
//! linux-image-amd64, gcc and cpio.

#[path = "common/lab.rs"]
mod lab_fixture;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lab_fixture::{LabGuard, text};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// Bytes that must have crossed the migration link before it is cut: the
/// migration is under way (an idle 128 MiB guest sends tens of MB).
const CUT_AFTER_BYTES: u64 = 2_000_000;

fn rows(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("results.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn require_tools() {
    let missing = lab_fixture::missing_tools(&[
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("socat", "socat"),
        ("iptables", "iptables"),
        ("busybox", "busybox-static"),
        ("gcc", "gcc"),
        ("cpio", "cpio"),
        ("tc", "iproute2"),
    ]);
    assert!(
        missing.is_empty(),
        "the migration-link fault test needs: {}",
        missing.join(", ")
    );
}

/// Bytes this machine's ends of the hosts' migration veths have received so far
/// (what the hosts sent on their migration NICs), the largest of them.
fn migration_bytes(links: &[String]) -> u64 {
    links
        .iter()
        .map(|l| {
            std::fs::read_to_string(format!("/sys/class/net/{l}/statistics/rx_bytes"))
                .unwrap_or_else(|e| panic!("read {l}'s counter: {e}"))
                .trim()
                .parse::<u64>()
                .unwrap()
        })
        .max()
        .unwrap()
}

fn set_links(links: &[String], state: &str) {
    for l in links {
        let st = Command::new("ip")
            .args(["link", "set", l, state])
            .status()
            .unwrap();
        assert!(st.success(), "ip link set {l} {state}");
    }
}

/// The source's QEMU of run `index`, as QMP tells: (migration status, VM status),
/// or None when no such QEMU answers (not started yet, or already cleaned up).
fn qmp_state(lab: &LabGuard, host: &str, index: u32) -> Option<(String, String)> {
    let out = lab.exec(
        host,
        &format!(
            "for s in /var/tmp/ferry-exp/run-{index}-*/qmp.sock; do [ -S \"$s\" ] && \
             printf '%s\\n' '{{\"execute\":\"qmp_capabilities\"}}' '{{\"execute\":\"query-migrate\"}}' \
             '{{\"execute\":\"query-status\"}}' | timeout 5 socat - UNIX-CONNECT:\"$s\"; done; true"
        ),
    );
    let (mut migration, mut vm) = (None, None);
    for line in text(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let r = &v["return"];
        if r.get("running").is_some() {
            vm = r["status"].as_str().map(str::to_string);
        } else if r.is_object() && !r.as_object().unwrap().is_empty() {
            migration = r["status"].as_str().map(str::to_string);
        }
    }
    Some((migration?, vm?))
}

/// What the test saw of one cut run.
#[derive(Debug, Default)]
struct Cut {
    /// QMP (migration status, VM status) on the source, polled after the cut.
    polled: Vec<(String, String)>,
}

/// Wait until `CUT_AFTER_BYTES` more crossed the migration link, run `cut`, poll
/// the source's QMP until row `index` is recorded, then run `restore`.
fn cut_run(
    lab: &LabGuard,
    child: &mut std::process::Child,
    results: &dyn Fn() -> Option<PathBuf>,
    links: &[String],
    index: u32,
    cut: &dyn Fn(),
    restore: &dyn Fn(),
) -> Cut {
    let deadline = Instant::now() + Duration::from_secs(300);
    let base = migration_bytes(links);
    while migration_bytes(links) < base + CUT_AFTER_BYTES {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("ferry experiment ended ({status}) before run {index}'s migration started");
        }
        assert!(
            Instant::now() < deadline,
            "run {index}: no migration traffic within 300 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    cut();
    let mut seen = Cut::default();
    let source = &lab.hosts[0].name;
    loop {
        if let Some(s) = qmp_state(lab, source, index) {
            seen.polled.push(s);
        }
        if results().is_some_and(|d| rows(&d).len() > index as usize) {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            restore();
            panic!("ferry experiment ended ({status}) before run {index} was recorded");
        }
        if Instant::now() > deadline {
            restore();
            panic!("run {index} not recorded within 300 s of its cut");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    restore();
    let mut shown: Vec<((String, String), usize)> = Vec::new();
    for s in &seen.polled {
        match shown.last_mut() {
            Some((last, n)) if last == s => *n += 1,
            _ => shown.push((s.clone(), 1)),
        }
    }
    eprintln!("run {index}: source QMP (migration, VM) after the cut, polls: {shown:?}");
    seen
}

#[test]
fn migration_link_cut_mid_precopy_fails_the_run_keeps_the_guest_and_the_matrix_goes_on() {
    lab_fixture::require_root();
    require_tools();
    let lab = LabGuard::up("expcut", 2);
    let _build = lab.provision_guest();
    let inv = lab.inventory.display().to_string();

    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("cut.yml");
    std::fs::write(
        &file,
        "name: cut\ndriver: qmp\npairs: compute\nrepetitions: 3\nseed: 5\n\
         timeouts: {migration: 20s, boot: 90s, answer: 10s}\n\
         scale: {flavor: 0.0625, min_memory_mib: 128, note: link cut test}\n\
         matrix:\n  flavor: [m1.tiny]\n  algorithm: [precopy]\n  link: [{name: lab-50m, rate: 50mbit}]\n",
    )
    .unwrap();
    let out = work.path().join("results");
    let stderr = work.path().join("stderr");
    let mut child = lab
        .ferry(&[
            "experiment",
            "-i",
            &inv,
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .current_dir(ROOT)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("spawn ferry experiment");
    let parent = out.join("cut");
    let results = || {
        std::fs::read_dir(&parent)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .map(|e| e.path())
    };
    let names = lab.state().names();
    let links: Vec<String> = lab
        .hosts
        .iter()
        .map(|h| names.host_links(h.index)[1].clone())
        .collect();
    let destination = lab.hosts[1].name.clone();
    let reject = "iptables -I INPUT -i mig0 -p tcp -j REJECT --reject-with tcp-reset";

    // Run 0: the link goes down under the migration.
    let down = cut_run(
        &lab,
        &mut child,
        &results,
        &links,
        0,
        &|| set_links(&links, "down"),
        &|| set_links(&links, "up"),
    );
    // Run 1: the destination resets the migration connection.
    let reset = cut_run(
        &lab,
        &mut child,
        &results,
        &links,
        1,
        &|| {
            lab.exec_ok(&destination, reject);
        },
        &|| {
            lab.exec_ok(&destination, &reject.replace(" -I ", " -D "));
        },
    );

    let finished = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if finished.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            panic!("ferry experiment still running 300 s after the last cut");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let log = std::fs::read_to_string(&stderr).unwrap_or_default();
    assert!(status.success(), "ferry experiment exited {status}:\n{log}");
    let dir = results().expect("a results directory");
    let rows = rows(&dir);
    for r in &rows {
        eprintln!(
            "row {}: {} error {:?} transferred {:?} first answer +{:?} ms",
            r["index"],
            r["outcome"],
            r["error"],
            r["transferred_bytes"],
            r["first_answer_after_ms"]
        );
    }
    let prov: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("provenance.json")).unwrap()).unwrap();
    let planned = prov["matrix"]["order"].as_array().unwrap().len();
    eprintln!(
        "rows lost: {} (planned {planned}, recorded {})",
        planned.saturating_sub(rows.len()),
        rows.len()
    );
    assert_eq!(rows.len(), planned, "every run of the matrix has its row");
    assert_eq!(planned, 3);
    assert_eq!(
        rows[0]["scenario"]["pair"]["source"], lab.hosts[0].name,
        "the QMP polls were of the source"
    );

    let error = |i: usize| rows[i]["error"].as_str().unwrap_or("").to_string();
    // Run 0: stalled, failed (not "not converged"), guest kept on the source.
    assert_eq!(
        rows[0]["outcome"],
        "failed",
        "run 0 (link down): {}",
        error(0)
    );
    assert!(
        error(0).contains("stalled") && error(0).contains("link"),
        "run 0 says the migration stalled on its link: {}",
        error(0)
    );
    // Run 1: QEMU's own error.
    assert_eq!(rows[1]["outcome"], "failed", "run 1 (reset): {}", error(1));
    assert!(
        !error(1).contains("stalled") && error(1).to_lowercase().contains("connection reset"),
        "run 1 carries QEMU's error for the reset connection: {}",
        error(1)
    );
    for (i, seen) in [(0, &down), (1, &reset)] {
        assert!(
            !seen.polled.is_empty(),
            "run {i}: the source's QEMU answered QMP after the cut"
        );
        assert!(
            seen.polled.iter().all(|(_, vm)| vm == "running"),
            "run {i}: the guest kept running on the source: {:?}",
            seen.polled
        );
        assert!(
            rows[i]["first_answer_after_ms"].is_number(),
            "run {i}: the guest answered the probe after the failed migration: {:?}",
            rows[i]
        );
    }
    assert!(
        down.polled.iter().any(|(m, _)| m == "active"),
        "run 0: the source saw its migration still active while the link was down: {:?}",
        down.polled
    );
    // Run 2: the link restored, the matrix goes on and completes.
    assert_eq!(rows[2]["outcome"], "completed", "run 2: {}", error(2));
}
