//! Security on the lab: the lab's sshd takes keys only, its state files are
//! the owner's alone, a file ferry writes is never readable wider than asked
//! while it is being written, and `no_log` hides values everywhere ferry
//! shows them. Needs root (the lab makes namespaces).

#[path = "common/lab.rs"]
mod lab_fixture;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lab_fixture::{LabGuard, text};

#[test]
fn lab_sshd_refuses_a_password_and_lab_state_is_owner_only() {
    let lab = LabGuard::up("sec-sshd", 1);
    let h = lab.hosts[0].clone();
    // A password login (the key refused by giving none): sshd offers only publickey.
    let out = Command::new("ssh")
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "PreferredAuthentications=password,keyboard-interactive",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=10",
            &format!("root@{}", h.mgmt_ip),
            "true",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(!out.status.success(), "a login without a key worked: {err}");
    assert!(
        err.contains("Permission denied (publickey)"),
        "sshd must offer publickey only: {err}"
    );
    // With the key it works (the refusal above was the method, not the network).
    assert_eq!(lab.ssh_ok(&h.name, "echo in"), "in\n");

    // Every file of the lab's own state (not the hosts' root filesystem
    // changes, which keep their own modes; not public keys) is 0600 or tighter.
    let mut wide = Vec::new();
    let mut seen = 0;
    fn walk(dir: &Path, wide: &mut Vec<String>, seen: &mut usize) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                if !matches!(name.as_str(), "upper" | "work" | "root") {
                    walk(&p, wide, seen);
                }
            } else if meta.is_file() && !name.ends_with(".pub") {
                *seen += 1;
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    wide.push(format!("{} {mode:o}", p.display()));
                }
            }
        }
    }
    walk(&lab.state_dir, &mut wide, &mut seen);
    assert!(
        seen >= 5,
        "only {seen} state files under {}",
        lab.state_dir.display()
    );
    assert!(wide.is_empty(), "lab state readable by others: {wide:#?}");
}

#[test]
fn a_file_is_never_readable_wider_than_its_mode_while_written() {
    let lab = LabGuard::up("sec-mode", 1);
    let h = lab.hosts[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("secret.bin");
    std::fs::write(&src, vec![b's'; 32 * 1024 * 1024]).unwrap();
    let pb = dir.path().join("pb.yml");
    std::fs::write(
        &pb,
        format!(
            "- hosts: all\n  gather_facts: false\n  tasks:\n\
             \x20   - {{ name: dir, file: {{ path: /srv/sec, state: directory, mode: \"0755\" }} }}\n\
             \x20   - {{ name: secret, copy: {{ src: \"{}\", dest: /srv/sec/secret, mode: \"0600\" }} }}\n",
            src.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(lab_fixture::ferry_bin())
        .args(["run", "-i"])
        .arg(&lab.inventory)
        .arg(&pb)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Watch the directory from inside the host (its root filesystem, through
    // the anchor's /proc root) while ferry writes.
    let anchor = lab.record(&h.name).anchor.expect("anchor").pid;
    let watched = format!("/proc/{anchor}/root/srv/sec");
    let t0 = Instant::now();
    let mut modes: Vec<(String, u32)> = Vec::new();
    loop {
        if let Ok(rd) = std::fs::read_dir(&watched) {
            for e in rd.flatten() {
                if let Ok(m) = e.metadata() {
                    modes.push((
                        e.file_name().to_string_lossy().into_owned(),
                        m.permissions().mode() & 0o777,
                    ));
                }
            }
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(180),
            "ferry still running"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let temps: Vec<&(String, u32)> = modes
        .iter()
        .filter(|(n, _)| n.contains(".ferry-"))
        .collect();
    assert!(
        !temps.is_empty(),
        "the watch never saw the temp file: {modes:?}"
    );
    let wide: Vec<&(String, u32)> = modes.iter().filter(|(_, m)| m & 0o077 != 0).collect();
    assert!(
        wide.is_empty(),
        "readable wider than 0600 while written: {wide:?}"
    );
    let final_mode = std::fs::metadata(format!("{watched}/secret"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(final_mode & 0o777, 0o600);
}
