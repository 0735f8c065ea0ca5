//! `ferry experiment` killed with SIGKILL in the middle of its matrix, then
//! `--resume DIR`: the matrix finishes with no duplicate and no missing row. On a
//! 2-host built-in lab with the qmp driver and real TCG guests (the lab guest put
//! on the hosts by playbooks/guest.yml), through the real binary.
//!
//! Needs root, QEMU, socat, iputils ping, busybox-static, linux-image-amd64, gcc
//! and cpio (what the drivers' lab test needs).

#[path = "common/lab.rs"]
mod lab_fixture;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use lab_fixture::{LabGuard, text};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn rows(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("results.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn sigkill_mid_matrix_then_resume_records_every_run_once() {
    lab_fixture::require_root();
    let lab = LabGuard::up("expresume", 2);
    let _build = lab.provision_guest();
    let inv = lab.inventory.display().to_string();

    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("resume.yml");
    std::fs::write(
        &file,
        "name: resume\ndriver: qmp\npairs: compute\nrepetitions: 3\nseed: 11\n\
         timeouts: {migration: 60s, boot: 90s, answer: 10s}\n\
         scale: {flavor: 0.0625, min_memory_mib: 96, note: resume test}\n\
         matrix:\n  flavor: [m1.tiny]\n  algorithm: [precopy]\n  link: [{name: lab-1g, rate: 1gbit}]\n",
    )
    .unwrap();
    let out = work.path().join("results");
    let args = [
        "experiment",
        "-i",
        &inv,
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let mut child = lab
        .ferry(&args)
        .current_dir(ROOT)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ferry experiment");

    // Kill it once the first row is recorded (the second run is then under way).
    let parent = out.join("resume");
    let deadline = Instant::now() + Duration::from_secs(240);
    let dir: PathBuf = loop {
        let found = std::fs::read_dir(&parent)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .map(|e| e.path());
        if let Some(d) = found
            && !rows(&d).is_empty()
        {
            break d;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("ferry experiment ended ({status}) before a row was recorded");
        }
        assert!(Instant::now() < deadline, "no row recorded in 240 s");
        std::thread::sleep(Duration::from_millis(200));
    };
    std::thread::sleep(Duration::from_secs(3));
    child.kill().expect("SIGKILL ferry experiment");
    let _ = child.wait();
    let before = rows(&dir);
    assert!(
        !before.is_empty() && before.len() < 3,
        "killed mid-matrix: {} rows",
        before.len()
    );

    let resumed = lab
        .ferry(&[
            "experiment",
            "-i",
            &inv,
            file.to_str().unwrap(),
            "--resume",
            dir.to_str().unwrap(),
        ])
        .current_dir(ROOT)
        .output()
        .expect("run ferry experiment --resume");
    let stdout = text(&resumed.stdout);
    assert!(
        resumed.status.success(),
        "--resume: {stdout}{}",
        text(&resumed.stderr)
    );
    assert_eq!(
        stdout.lines().last().map(PathBuf::from),
        Some(dir.clone()),
        "the last stdout line is the results directory"
    );

    let after = rows(&dir);
    let ids: Vec<&str> = after
        .iter()
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "no duplicate row: {ids:?}");
    let prov: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("provenance.json")).unwrap()).unwrap();
    let order: HashSet<&str> = prov["matrix"]["order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    eprintln!(
        "rows lost: {} (planned {}, recorded {}, duplicates {})",
        order.difference(&unique).count(),
        order.len(),
        unique.len(),
        ids.len() - unique.len()
    );
    assert_eq!(unique, order, "no missing row");
    assert!(
        after.iter().all(|r| r["outcome"] == "completed"),
        "{after:?}"
    );
    let csv = std::fs::read_to_string(dir.join("results.csv")).unwrap();
    assert_eq!(
        csv.lines().count(),
        1 + 3,
        "the CSV holds the header and the same three rows"
    );
}
