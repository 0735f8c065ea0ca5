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
/// host a task_start names gets one host_result of that task after it (with
/// `--strategy free` other hosts' events come in between).
fn assert_events_complete(events: &[Value]) {
    assert_eq!(
        events.first().map(|e| &e["event"]),
        Some(&"run_start".into())
    );
    assert_eq!(events.last().map(|e| &e["event"]), Some(&"recap".into()));
    let mut open: Vec<(String, String)> = Vec::new();
    for e in events {
        let task = e["task"].as_str().unwrap_or("").to_string();
        if e["event"] == "task_start" {
            for h in e["hosts"].as_array().unwrap() {
                open.push((task.clone(), h.as_str().unwrap().to_string()));
            }
        } else if e["event"] == "host_result" {
            let key = (task, e["host"].as_str().unwrap().to_string());
            let at = open
                .iter()
                .position(|o| *o == key)
                .unwrap_or_else(|| panic!("a result with no task_start before it: {key:?}"));
            open.remove(at);
        }
    }
    assert!(open.is_empty(), "started, never answered: {open:?}");
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

/// Big files ferry copies one after another, so a signal lands mid-copy.
fn copy_playbook(dir: &Path, files: usize, mib: usize) -> (PathBuf, Vec<String>) {
    let mut tasks = String::from(
        "    - { name: dir, file: { path: /srv/ferry-sig, state: directory, mode: \"0755\" } }\n",
    );
    let mut sums = Vec::new();
    for i in 0..files {
        let src = dir.join(format!("f{i}"));
        let block: Vec<u8> = (0..mib * 1024 * 1024)
            .map(|b| ((b * 31 + i * 7) % 251) as u8)
            .collect();
        std::fs::write(&src, &block).unwrap();
        use sha2::Digest;
        sums.push(hex::encode(sha2::Sha256::digest(&block)));
        tasks += &format!(
            "    - {{ name: copy {i}, copy: {{ src: \"{}\", dest: /srv/ferry-sig/f{i}, mode: \"0640\" }} }}\n",
            src.display()
        );
    }
    let pb = write(
        dir,
        "pb.yml",
        &format!("- hosts: all\n  gather_facts: false\n  tasks:\n{tasks}"),
    );
    (pb, sums)
}

/// On every host, each file is either absent or whole, and nothing else is
/// in the directory (no temp file left half-written).
fn assert_no_half_written(lab: &LabGuard, files: usize, sums: &[String]) -> usize {
    let mut whole = 0;
    for h in &lab.hosts {
        let listing = lab.exec_ok(&h.name, "ls -A /srv/ferry-sig 2>/dev/null || true");
        for name in listing.lines() {
            let i: usize = name
                .strip_prefix('f')
                .and_then(|n| n.parse().ok())
                .filter(|&i| i < files)
                .unwrap_or_else(|| panic!("{}: a stray file /srv/ferry-sig/{name}", h.name));
            let sum = lab.exec_ok(&h.name, &format!("sha256sum /srv/ferry-sig/{name}"));
            assert!(
                sum.starts_with(&sums[i]),
                "{}: /srv/ferry-sig/{name} is half-written",
                h.name
            );
            whole += 1;
        }
    }
    whole
}

fn interrupted_run_leaves_no_half_file(signal: nix::sys::signal::Signal, code: i32) {
    let lab = LabGuard::up("flt-sig", 2);
    let dir = tempfile::tempdir().unwrap();
    let files = 6;
    let (pb, sums) = copy_playbook(dir.path(), files, 16);
    let events = dir.path().join("events.jsonl");
    let child = spawn_run(&lab, &pb, &events, &[]);
    wait_for_task_start(&events, "copy 1", Duration::from_secs(120));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
    let (out, _) = wait_limited(child, Duration::from_secs(120), "interrupted run");
    assert_eq!(out.status.code(), Some(code), "{}", show(&out));
    for h in &lab.hosts {
        recap(&out, &h.name);
    }
    let whole = assert_no_half_written(&lab, files, &sums);
    assert!(
        whole < files * lab.hosts.len(),
        "the signal came too late to interrupt anything:\n{}",
        show(&out)
    );
    assert_events_complete(&read_events(&events));
    // A second run completes the work.
    let events2 = dir.path().join("events2.jsonl");
    let (out, _) = wait_limited(
        spawn_run(&lab, &pb, &events2, &[]),
        Duration::from_secs(300),
        "second run",
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(
        assert_no_half_written(&lab, files, &sums),
        files * lab.hosts.len()
    );
}

#[test]
fn sigint_mid_run_exit_130_no_half_written_file_and_a_second_run_completes() {
    interrupted_run_leaves_no_half_file(nix::sys::signal::Signal::SIGINT, 130);
}

#[test]
fn sigterm_mid_run_exit_143_no_half_written_file_and_a_second_run_completes() {
    interrupted_run_leaves_no_half_file(nix::sys::signal::Signal::SIGTERM, 143);
}

#[test]
fn disk_full_during_copy_fails_the_task_and_keeps_the_old_file() {
    let lab = LabGuard::up("flt-disk", 1);
    let host = lab.hosts[0].name.clone();
    // A 1 MiB filesystem at the destination, inside the host's mount namespace.
    lab.exec_ok(
        &host,
        "mkdir -p /srv/full && mount -t tmpfs -o size=1m tmpfs /srv/full && printf 'old\\n' > /srv/full/app.conf",
    );
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big");
    std::fs::write(&src, vec![b'x'; 3 * 1024 * 1024]).unwrap();
    let pb = write(
        dir.path(),
        "pb.yml",
        &format!(
            "- hosts: all\n  gather_facts: false\n  tasks:\n\
             \x20   - {{ name: too big, copy: {{ src: \"{}\", dest: /srv/full/app.conf }} }}\n",
            src.display()
        ),
    );
    let events = dir.path().join("events.jsonl");
    let (out, _) = wait_limited(
        spawn_run(&lab, &pb, &events, &[]),
        Duration::from_secs(120),
        "disk full",
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(recap(&out, &host).contains("failed=1"), "{}", show(&out));
    assert_eq!(lab.exec_ok(&host, "cat /srv/full/app.conf"), "old\n");
    assert_eq!(
        lab.exec_ok(&host, "ls -A /srv/full"),
        "app.conf\n",
        "no temp file left behind"
    );
    assert_events_complete(&read_events(&events));
}

#[test]
fn a_slow_host_holds_others_only_at_the_linear_barrier_and_not_with_free() {
    let lab = LabGuard::up("flt-slow", 3);
    let slow = lab.hosts[2].clone();
    // This kernel has no sch_netem (`tc qdisc ... netem delay 200ms` is
    // refused), so the slow host is slowed on the host: each of its tasks
    // takes 200 ms longer.
    let dir = tempfile::tempdir().unwrap();
    let n = 8;
    let mut tasks = String::new();
    for i in 0..n {
        tasks += &format!(
            "    - {{ name: t{i}, command: \"sleep {{{{ '0.2' if inventory_hostname == '{}' else '0' }}}}\" }}\n",
            slow.name
        );
    }
    let pb = write(
        dir.path(),
        "pb.yml",
        &format!("- hosts: all\n  gather_facts: false\n  tasks:\n{tasks}"),
    );
    let result_ts = |events: &[Value], host: &str, task: &str| -> f64 {
        events
            .iter()
            .find(|e| e["event"] == "host_result" && e["host"] == host && e["task"] == task)
            .and_then(|e| e["ts"].as_f64())
            .unwrap_or_else(|| panic!("no result of {task} on {host}"))
    };
    let fast: Vec<String> = lab.hosts[..2].iter().map(|h| h.name.clone()).collect();
    for strategy in ["linear", "free"] {
        let events_path = dir.path().join(format!("{strategy}.jsonl"));
        let (out, _) = wait_limited(
            spawn_run(&lab, &pb, &events_path, &["--strategy", strategy]),
            Duration::from_secs(180),
            strategy,
        );
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        let ev = read_events(&events_path);
        assert_events_complete(&ev);
        let last = format!("t{}", n - 1);
        if strategy == "linear" {
            for i in 0..n {
                let t = format!("t{i}");
                let slow_done = result_ts(&ev, &slow.name, &t);
                for f in &fast {
                    // In a task, the fast hosts do not wait for the slow one...
                    assert!(
                        result_ts(&ev, f, &t) <= slow_done,
                        "linear: {f} finished {t} after the slow host"
                    );
                    // ...but the next task starts only once it is done (the barrier).
                    if i + 1 < n {
                        assert!(result_ts(&ev, f, &format!("t{}", i + 1)) >= slow_done);
                    }
                }
            }
        } else {
            // Free: the fast hosts run ahead; each of the slow host's tasks
            // costs at least 200 ms more, so it ends at least half of that
            // (n x 100 ms) after them, however loaded the machine.
            let slow_end = result_ts(&ev, &slow.name, &last);
            for f in &fast {
                let fast_end = result_ts(&ev, f, &last);
                assert!(
                    fast_end + n as f64 * 0.1 <= slow_end,
                    "free: {f} ended at {fast_end}, the slow host at {slow_end}"
                );
            }
        }
    }
}

/// `ferry` with `fd` (1 or 2) a pipe whose reader is gone, as `ferry ... | head -0`
/// leaves it, and the other stream captured.
fn with_closed_pipe(fd: i32, args: &[&str]) -> Output {
    let (read, write) = nix::unistd::pipe().expect("a pipe");
    drop(read);
    let mut cmd = Command::new(lab_fixture::ferry_bin());
    cmd.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    if fd == 1 {
        cmd.stdout(Stdio::from(write)).stderr(Stdio::piped());
    } else {
        cmd.stderr(Stdio::from(write)).stdout(Stdio::piped());
    }
    cmd.output().expect("run ferry")
}

#[test]
fn a_closed_output_pipe_ends_ferry_quietly_not_in_a_panic() {
    let good = [
        "check",
        "-i",
        "tests/fixtures/good/inventory.yml",
        "tests/fixtures/good/basic/playbook.yml",
    ];
    let bad = [
        "check",
        "-i",
        "tests/fixtures/bad/inventory.yml",
        "tests/fixtures/bad/unknown_op/playbook.yml",
    ];
    let no_inventory = ["check", "-i", "/nonexistent/inventory.yml", "x.yml"];
    // What a shell shows for a program that SIGPIPE ended, as `yes | head -0`.
    for (fd, args, what) in [
        (1, &good[..], "a good check's report"),
        (1, &bad[..], "a bad check's errors"),
        (2, &no_inventory[..], "an error report on stderr"),
    ] {
        let out = with_closed_pipe(fd, args);
        let other = if fd == 1 { &out.stderr } else { &out.stdout };
        assert_eq!(
            (out.status.code(), text(other)),
            (Some(141), String::new()),
            "{what} to a closed pipe (fd {fd}): {}",
            show(&out)
        );
    }
    // A closed descriptor (`2>&-`) is not a pipe: the error's exit code, no panic.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "exec {} check -i /nonexistent/inventory.yml x.yml 2>&-",
            lab_fixture::ferry_bin().display()
        ))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
}
