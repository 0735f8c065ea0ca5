//! Fault injection on the built-in lab: what a user checks after a host dies,
//! a link goes down or slows, ferry is interrupted, or a disk fills up.
//! Needs root (the lab makes namespaces). Timing checks use margins that hold
//! on a loaded 2-core machine; every wait says what it waits for.

#[path = "common/lab.rs"]
mod lab_fixture;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use lab_fixture::{LabGuard, read_events, text};
use serde_json::Value;

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

fn recap(out: &Output, host: &str) -> String {
    let prefix = format!("{host} : ");
    text(&out.stdout)
        .lines()
        .rev()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no recap line for {host}:\n{}", show(out)))
        .trim()
        .to_string()
}

/// `ferry run` on the lab's inventory, started in the background with its events.
fn spawn_run(lab: &LabGuard, playbook: &Path, events: &Path, more: &[&str]) -> Child {
    Command::new(lab_fixture::ferry_bin())
        .arg("run")
        .arg("-i")
        .arg(&lab.inventory)
        .arg(playbook)
        .arg("--events")
        .arg(events)
        .args(more)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ferry run")
}

/// Wait for a child ferry, killing it (by its PID) if it runs past `limit`.
fn wait_limited(child: Child, limit: Duration, what: &str) -> (Output, Duration) {
    let t0 = Instant::now();
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => (out.expect("wait for ferry"), t0.elapsed()),
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("{what}: ferry still running after {limit:?} (killed)");
        }
    }
}

/// The events written so far (the last line may be partial while ferry runs).
fn events_so_far(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Wait until the events show `task` started (ferry is mid-run there).
fn wait_for_task_start(events: &Path, task: &str, limit: Duration) {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if events_so_far(events)
            .iter()
            .any(|e| e["event"] == "task_start" && e["task"] == task)
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("task `{task}` did not start within {limit:?}");
}

/// Every event file line is JSON, run_start first, recap last, and each
/// task_start is answered by one host_result per host it names.
fn assert_events_complete(events: &[Value]) {
    assert_eq!(
        events.first().map(|e| &e["event"]),
        Some(&"run_start".into())
    );
    assert_eq!(events.last().map(|e| &e["event"]), Some(&"recap".into()));
    for (i, e) in events.iter().enumerate() {
        if e["event"] != "task_start" {
            continue;
        }
        let task = &e["task"];
        let mut answered: Vec<String> = events[i + 1..]
            .iter()
            .take_while(|x| x["event"] != "task_start" && x["event"] != "recap")
            .filter(|x| x["event"] == "host_result" && &x["task"] == task)
            .map(|x| x["host"].as_str().unwrap().to_string())
            .collect();
        answered.sort();
        let mut hosts: Vec<String> = e["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap().to_string())
            .collect();
        hosts.sort();
        assert_eq!(answered, hosts, "task {task}: a host_result per host");
    }
}

/// The PIDs of `root` and all its descendants (read from /proc).
fn process_tree(root: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let after = stat.rsplit(')').next().unwrap_or("");
        let ppid: u32 = after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        parent_of.push((pid, ppid));
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        tree.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    tree
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

#[test]
fn sshd_killed_mid_run_that_host_unreachable_others_finish() {
    let lab = LabGuard::up("flt-sshd", 3);
    let dir = tempfile::tempdir().unwrap();
    let pb = write(
        dir.path(),
        "pb.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n\
         \x20   - { name: first, command: \"true\" }\n\
         \x20   - { name: slow, command: sleep 3 }\n\
         \x20   - { name: write, copy: { content: \"done\\n\", dest: /tmp/ferry-fault-done } }\n\
         \x20   - { name: last, command: \"true\" }\n",
    );
    let events = dir.path().join("events.jsonl");
    let child = spawn_run(&lab, &pb, &events, &[]);
    wait_for_task_start(&events, "slow", Duration::from_secs(60));
    // The host's whole sshd: the listener and the session ferry holds.
    let victim = lab.hosts[1].name.clone();
    let sshd = lab.record(&victim).sshd.expect("sshd recorded").pid;
    for pid in process_tree(sshd) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let (out, _) = wait_limited(child, Duration::from_secs(120), "sshd killed");
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    let r = recap(&out, &victim);
    assert!(
        r.contains("ok=1 changed=1 unreachable=1 failed=0"),
        "{r}\n{}",
        show(&out)
    );
    for h in [&lab.hosts[0].name, &lab.hosts[2].name] {
        assert!(
            recap(&out, h).contains("ok=4 changed=4 unreachable=0 failed=0"),
            "{}",
            show(&out)
        );
        assert_eq!(lab.exec_ok(h, "cat /tmp/ferry-fault-done"), "done\n");
    }
    let events = read_events(&events);
    assert_events_complete(&events);
    let victim_results: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "host_result" && e["host"] == victim.as_str())
        .collect();
    assert_eq!(victim_results.len(), 2, "{victim_results:#?}");
    assert_eq!(victim_results[1]["task"], "slow");
    assert_eq!(victim_results[1]["outcome"], "unreachable");
}

#[test]
fn management_link_cut_mid_task_the_task_ends_at_its_timeout() {
    let lab = LabGuard::up("flt-link", 2);
    let dir = tempfile::tempdir().unwrap();
    let pb = write(
        dir.path(),
        "pb.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n\
         \x20   - { name: first, command: \"true\" }\n\
         \x20   - { name: held, command: sleep 2, timeout: 5 }\n\
         \x20   - { name: last, command: \"true\" }\n",
    );
    let events = dir.path().join("events.jsonl");
    let child = spawn_run(&lab, &pb, &events, &[]);
    wait_for_task_start(&events, "held", Duration::from_secs(60));
    let victim = lab.hosts[1].clone();
    let link = lab.state().names().host_links(victim.index)[0].clone();
    let cut = Instant::now();
    let st = Command::new("ip")
        .args(["link", "set", &link, "down"])
        .status()
        .unwrap();
    assert!(st.success(), "ip link set {link} down");
    // Not forever: the 5 s timeout plus a margin for a loaded machine.
    let (out, _) = wait_limited(child, Duration::from_secs(90), "link cut");
    let took = cut.elapsed();
    let _ = Command::new("ip")
        .args(["link", "set", &link, "up"])
        .status();
    assert!(
        took < Duration::from_secs(5 + 25),
        "ferry ended {took:?} after the cut, the task's timeout is 5 s:\n{}",
        show(&out)
    );
    let r = recap(&out, &victim.name);
    assert!(
        r.contains("unreachable=1") || r.contains("failed=1"),
        "{r}\n{}",
        show(&out)
    );
    assert!(
        recap(&out, &lab.hosts[0].name).contains("ok=3 changed=3 unreachable=0 failed=0"),
        "{}",
        show(&out)
    );
    assert_events_complete(&read_events(&events));
}
