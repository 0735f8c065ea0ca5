//! `ferry run` over real SSH on a `ferry lab` (real sshd per host, network namespaces):
//! Ansible's outcomes and recap, host key checking, a jump host, become, failures
//! (sshd killed, a failing task, a hanging command) and the `--events` JSONL schema.
//! Needs root (the lab makes namespaces).

#[path = "common/lab.rs"]
mod lab_fixture;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use lab_fixture::LabGuard;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// The recap line of `host` in ferry's output.
fn recap(out: &Output, host: &str) -> String {
    let stdout = text(&out.stdout);
    let prefix = format!("{host} : ");
    stdout
        .lines()
        .rev()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no recap line for {host}:\n{}", show(out)))
        .trim()
        .to_string()
}

/// An inventory naming the lab's hosts `h1..hN` (the names the feature playbook uses),
/// with `common_args` as every host's `ansible_ssh_common_args` (None: the lab's).
fn alias_inventory(lab: &LabGuard, dir: &Path, common_args: Option<&str>) -> PathBuf {
    let lab_args = format!(
        "-o UserKnownHostsFile={} -o StrictHostKeyChecking=yes",
        lab.known_hosts().display()
    );
    let mut s = format!(
        "all:\n  vars:\n    ansible_user: root\n    ansible_ssh_private_key_file: \"{}\"\n    workdir: /tmp/ferry-features\n",
        lab.private_key().display()
    );
    let a = common_args.unwrap_or(&lab_args);
    if !a.is_empty() {
        s += &format!("    ansible_ssh_common_args: \"{a}\"\n");
    }
    s += "  hosts:\n";
    for h in &lab.hosts {
        s += &format!("    h{}: {{ ansible_host: \"{}\" }}\n", h.index, h.mgmt_ip);
    }
    let p = dir.join("inventory.yml");
    std::fs::write(&p, s).unwrap();
    p
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

fn ferry(args: &[&str]) -> Command {
    let mut c = Command::new(lab_fixture::ferry_bin());
    c.args(args);
    c
}

fn run(inv: &Path, playbook: &Path, more: &[&str]) -> Output {
    ferry(&[
        "run",
        "-i",
        inv.to_str().unwrap(),
        playbook.to_str().unwrap(),
    ])
    .args(more)
    .output()
    .expect("run ferry")
}

fn exec_ok(lab: &LabGuard, host: &str, cmd: &str) -> String {
    let out = lab.exec(host, cmd);
    assert!(
        out.status.success(),
        "lab exec {host} {cmd:?}: {}",
        show(&out)
    );
    text(&out.stdout)
}

#[test]
fn feature_playbook_over_ssh_gives_ansibles_outcomes_and_valid_events() {
    let lab = LabGuard::up("engfeat", 3);
    let dir = tempfile::tempdir().unwrap();
    let inv = alias_inventory(&lab, dir.path(), None);
    let events = dir.path().join("events.jsonl");
    let out = run(
        &inv,
        &fixture("features.yml"),
        &["--events", events.to_str().unwrap()],
    );
    // h2 fails one task and stops; the others go on: exit 2.
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    // The counts ansible-playbook gives for this playbook (tests/engine.rs, local).
    let line = "ok=15 changed=10 unreachable=0 failed=0 skipped=2 rescued=1 ignored=1";
    assert_eq!(recap(&out, "h1"), format!("h1 : {line}"));
    assert_eq!(recap(&out, "h3"), format!("h3 : {line}"));
    assert_eq!(
        recap(&out, "h2"),
        "h2 : ok=14 changed=9 unreachable=0 failed=1 skipped=1 rescued=1 ignored=1"
    );
    assert!(
        text(&out.stdout).contains("fatal: [h2]: FAILED! h2 fails here"),
        "{}",
        show(&out)
    );
    for h in &lab.hosts {
        let name = format!("h{}", h.index);
        let d = format!("/tmp/ferry-features/{name}");
        assert_eq!(
            exec_ok(&lab, &h.name, &format!("cat {d}/items")),
            "a\nb\nc\n"
        );
        let files = exec_ok(&lab, &h.name, &format!("ls {d}"));
        let files: Vec<&str> = files.lines().collect();
        assert!(files.contains(&"handled"), "{name}: {files:?}");
        assert!(files.contains(&"stack"), "{name}: {files:?}");
        assert!(!files.contains(&"not-reached"), "{name}: {files:?}");
        assert!(!files.contains(&"never"), "{name}: {files:?}");
        assert_eq!(files.contains(&"after"), name != "h2", "{name}: {files:?}");
        assert_eq!(
            exec_ok(&lab, &h.name, &format!("wc -l < {d}/tries")).trim(),
            "3"
        );
    }

    // Every event line validates against the documented schema.
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/events.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let body = std::fs::read_to_string(&events).unwrap();
    let mut failed_hosts = Vec::new();
    for (n, line) in body.lines().enumerate() {
        let ev: Value = serde_json::from_str(line).unwrap();
        let errors: Vec<String> = validator.iter_errors(&ev).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "line {}: {line}\n{errors:?}", n + 1);
        if ev["event"] == "host_result" && ev["outcome"] == "failed" && ev["task"] == "fail on h2" {
            failed_hosts.push(ev["host"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(failed_hosts, ["h2"], "{body}");
}

/// `ssh-keygen -lf` of the lab's recorded key for `ip`: `SHA256:...`.
fn lab_fingerprint(lab: &LabGuard, ip: &str) -> String {
    let kh = std::fs::read_to_string(lab.known_hosts()).unwrap();
    let line = kh
        .lines()
        .find(|l| {
            l.split_whitespace()
                .next()
                .unwrap_or("")
                .split(',')
                .any(|h| h == ip)
        })
        .unwrap_or_else(|| panic!("{ip} not in the lab's known_hosts:\n{kh}"));
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), format!("{line}\n")).unwrap();
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(f.path())
        .output()
        .unwrap();
    let s = text(&out.stdout);
    s.split_whitespace()
        .find(|w| w.starts_with("SHA256:"))
        .unwrap_or_else(|| panic!("ssh-keygen -lf: {s}"))
        .to_string()
}

#[test]
fn host_keys_unknown_refused_accepted_then_changed_refused() {
    let lab = LabGuard::up("enghkey", 1);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    // No known_hosts from the lab: only $HOME/.ssh/known_hosts (absent) counts.
    let inv = alias_inventory(&lab, dir.path(), Some(""));
    let pb = write(
        dir.path(),
        "ping.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: hostname\n",
    );
    let fp = lab_fingerprint(&lab, &lab.hosts[0].mgmt_ip);
    let go = |more: &[&str]| {
        ferry(&["run", "-i", inv.to_str().unwrap(), pb.to_str().unwrap()])
            .args(more)
            .env("HOME", &home)
            .env_remove("SSH_AUTH_SOCK")
            .output()
            .unwrap()
    };

    let out = go(&[]);
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        all.contains("h1") && all.contains(&fp),
        "unknown key names host and {fp}:\n{all}"
    );
    assert!(all.contains("unknown"), "{all}");
    let recorded = home.join(".ssh/known_hosts");
    assert!(!recorded.exists(), "a refused key is not recorded");

    let out = go(&["--accept-new-host-keys"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let kh = std::fs::read_to_string(&recorded).expect("the accepted key is recorded");
    assert!(kh.contains(&lab.hosts[0].mgmt_ip), "{kh}");

    let out = go(&[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the recorded key passes: {}",
        show(&out)
    );

    // Another key recorded for the host: a changed key, refused even with --accept-new-host-keys.
    let other = dir.path().join("other");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(st.success());
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let other_b64 = other_pub.split_whitespace().nth(1).unwrap();
    let changed: String = kh
        .lines()
        .map(|l| {
            let mut w: Vec<&str> = l.split_whitespace().collect();
            if w.len() >= 3 {
                w[1] = "ssh-ed25519";
                w[2] = other_b64;
            }
            w.join(" ") + "\n"
        })
        .collect();
    std::fs::write(&recorded, &changed).unwrap();
    for more in [&[][..], &["--accept-new-host-keys"][..]] {
        let out = go(more);
        assert_eq!(out.status.code(), Some(4), "{}", show(&out));
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(
            all.contains("CHANGED") && all.contains(&fp) && all.contains("h1"),
            "changed key refused naming the host and the fingerprint {fp}:\n{all}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(&recorded).unwrap(),
        changed,
        "a changed key is never recorded"
    );
}

/// A blackhole route to one address in the root namespace, removed when dropped.
struct Blackhole(String);

impl Blackhole {
    fn add(ip: &str) -> Blackhole {
        let st = Command::new("ip")
            .args(["route", "add", "blackhole", &format!("{ip}/32")])
            .status()
            .expect("run ip (install iproute2)");
        assert!(st.success(), "ip route add blackhole {ip}/32");
        Blackhole(ip.to_string())
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["route", "del", "blackhole", &format!("{}/32", self.0)])
            .status();
    }
}

#[test]
fn jump_host_reaches_a_host_unreachable_directly() {
    let lab = LabGuard::up("engjump", 2);
    let dir = tempfile::tempdir().unwrap();
    let (m1, m2) = (lab.hosts[0].mgmt_ip.clone(), lab.hosts[1].mgmt_ip.clone());
    let kh = lab.known_hosts().display().to_string();
    let inv = write(
        dir.path(),
        "inv.yml",
        &format!(
            "all:\n  vars:\n    ansible_user: root\n    ansible_ssh_private_key_file: \"{}\"\n  hosts:\n    \
             direct: {{ ansible_host: \"{m2}\", ansible_ssh_common_args: \"-o UserKnownHostsFile={kh} -o ConnectTimeout=2\" }}\n    \
             jumped: {{ ansible_host: \"{m2}\", ansible_ssh_common_args: \"-J root@{m1} -o UserKnownHostsFile={kh}\" }}\n",
            lab.private_key().display()
        ),
    );
    let pb = write(
        dir.path(),
        "pb.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: cat /proc/sys/kernel/hostname\n      register: hn\n    - debug: { var: hn.stdout }\n",
    );
    let _hole = Blackhole::add(&m2);
    let out = run(&inv, &pb, &[]);
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    assert!(
        recap(&out, "direct").contains("unreachable=1"),
        "{}",
        show(&out)
    );
    assert!(
        recap(&out, "jumped").starts_with("jumped : ok=2 changed=1 unreachable=0 failed=0"),
        "{}",
        show(&out)
    );
    assert!(
        text(&out.stdout).contains(&format!("hn.stdout: {}", lab.hosts[1].name)),
        "the jumped host is host 2: {}",
        show(&out)
    );
}

#[test]
fn become_user_writes_a_file_owned_by_that_user() {
    let lab = LabGuard::up("engbecome", 1);
    let host = lab.hosts[0].name.clone();
    exec_ok(&lab, &host, "useradd -m ferryalice");
    let dir = tempfile::tempdir().unwrap();
    let pb = write(
        dir.path(),
        "pb.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - shell: id -un > /tmp/become-out; touch /tmp/become-file\n      become: true\n      become_user: ferryalice\n",
    );
    let out = run(&lab.inventory, &pb, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(exec_ok(&lab, &host, "cat /tmp/become-out"), "ferryalice\n");
    assert_eq!(
        exec_ok(&lab, &host, "stat -c %U /tmp/become-file"),
        "ferryalice\n"
    );
}

#[test]
fn failures_stay_on_their_host() {
    let lab = LabGuard::up("engfail", 3);
    let dir = tempfile::tempdir().unwrap();
    let (n1, n2, n3) = (
        lab.hosts[0].name.clone(),
        lab.hosts[1].name.clone(),
        lab.hosts[2].name.clone(),
    );

    // A task failing on one host: the others go on, exit 2.
    let pb = write(
        dir.path(),
        "fail.yml",
        &format!(
            "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: \"true\"\n    \
             - command: /bin/false\n      when: inventory_hostname == '{n2}'\n    - command: \"true\"\n"
        ),
    );
    let out = run(&lab.inventory, &pb, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert_eq!(
        recap(&out, &n2),
        format!("{n2} : ok=1 changed=1 unreachable=0 failed=1 skipped=0 rescued=0 ignored=0")
    );
    for n in [&n1, &n3] {
        assert_eq!(
            recap(&out, n),
            format!("{n} : ok=2 changed=2 unreachable=0 failed=0 skipped=1 rescued=0 ignored=0")
        );
    }

    // A command that hangs: killed at its timeout, the host failed, the run finishes.
    let pb = write(
        dir.path(),
        "hang.yml",
        &format!(
            "- hosts: all\n  gather_facts: false\n  tasks:\n    - shell: \"if [ $(hostname) = {n1} ]; then sleep 600; fi\"\n      timeout: 2\n    \
             - command: \"true\"\n"
        ),
    );
    let started = std::time::Instant::now();
    let out = run(&lab.inventory, &pb, &[]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "the run finished"
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(recap(&out, &n1).contains("failed=1"), "{}", show(&out));
    assert!(
        text(&out.stdout).contains("timed out after 2s and was killed"),
        "{}",
        show(&out)
    );
    for n in [&n2, &n3] {
        assert!(
            recap(&out, n).contains("ok=2 changed=2 unreachable=0 failed=0"),
            "{}",
            show(&out)
        );
    }
    let procs = exec_ok(&lab, &n1, "ps -eo args");
    assert!(
        !procs.contains("sleep 600"),
        "the hung command was killed:\n{procs}"
    );

    // One host's sshd killed before the run: that host unreachable, the others complete, exit 4.
    let pid = lab.record(&n2).sshd.expect("sshd recorded").pid;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let out = run(&lab.inventory, &pb, &[]);
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    assert!(
        recap(&out, &n2).contains("ok=0 changed=0 unreachable=1 failed=0"),
        "{}",
        show(&out)
    );
    assert!(
        recap(&out, &n3).contains("ok=2 changed=2 unreachable=0 failed=0"),
        "{}",
        show(&out)
    );
}

#[test]
fn facts_show_the_migration_nic_and_name_unreachable_hosts() {
    let lab = LabGuard::up("engfacts", 3);
    let (n1, n3) = (lab.hosts[0].name.clone(), lab.hosts[2].name.clone());
    let inv = lab.inventory.to_str().unwrap().to_string();
    let out = ferry(&["facts", "-i", &inv, &n1]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let facts: Value = serde_json::from_slice(&out.stdout).expect("facts are JSON");
    let hosts: Vec<&String> = facts.as_object().unwrap().keys().collect();
    assert_eq!(hosts, [&n1], "only the pattern's hosts");
    let mig = &facts[&n1]["ansible_mig0"];
    assert_eq!(mig["mtu"], 1500, "{mig}");
    assert_eq!(
        mig["ipv4"]["address"],
        lab.hosts[0].migration_ip.as_str(),
        "{mig}"
    );
    assert_eq!(facts[&n1]["ansible_hostname"], n1.as_str());

    // Host 3's sshd killed: named on stderr, exit 4, the others still printed.
    let pid = lab.record(&n3).sshd.expect("sshd recorded").pid;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let out = ferry(&["facts", "-i", &inv]).output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    let facts: Value = serde_json::from_slice(&out.stdout).expect("facts are JSON");
    let mut hosts: Vec<String> = facts.as_object().unwrap().keys().cloned().collect();
    hosts.sort();
    assert_eq!(
        hosts,
        [lab.hosts[0].name.clone(), lab.hosts[1].name.clone()]
    );
    let err = text(&out.stderr);
    assert!(err.contains(&n3) && err.contains("UNREACHABLE"), "{err}");
    assert_eq!(
        facts[&lab.hosts[1].name]["ansible_mig0"]["ipv4"]["address"],
        lab.hosts[1].migration_ip.as_str()
    );
}

/// A host `add_host` made (here a second name for the lab host, with its own
/// `ansible_host`) is targeted by a later play, which connects to it over SSH.
#[test]
fn a_later_play_connects_to_a_host_add_host_made() {
    let lab = LabGuard::up("engaddhost", 1);
    let dir = tempfile::tempdir().unwrap();
    let inv = alias_inventory(&lab, dir.path(), None);
    let pb = write(
        dir.path(),
        "pb.yml",
        r#"- hosts: all
  gather_facts: false
  tasks:
    - name: add a host
      add_host: { name: added1, groups: [late], ansible_host: "{{ ansible_host }}", note: hi }
- hosts: late
  gather_facts: false
  tasks:
    - name: on the added host
      shell: echo "{{ note }} {{ inventory_hostname }} $(hostname)" > /tmp/added-host-out
"#,
    );
    let out = run(&inv, &pb, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let host = lab.hosts[0].name.clone();
    assert_eq!(
        exec_ok(&lab, &host, "cat /tmp/added-host-out"),
        format!("hi added1 {}", exec_ok(&lab, &host, "hostname"))
    );
    let stdout = text(&out.stdout);
    let recap_of = |h: &str| {
        stdout
            .lines()
            .skip_while(|l| !l.starts_with("PLAY RECAP"))
            .find(|l| l.split_whitespace().next() == Some(h))
            .map(|l| l.split_whitespace().skip(2).collect::<Vec<_>>().join(" "))
    };
    for h in ["h1", "added1"] {
        assert_eq!(
            recap_of(h).as_deref(),
            Some("ok=1 changed=1 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0"),
            "{}",
            show(&out)
        );
    }
}
