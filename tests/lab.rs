//! The built-in lab, end to end: real namespaces, real sshd, OpenSSH with strict
//! host key checking against the known_hosts the lab wrote. Needs root.

#[path = "common/lab.rs"]
mod lab_fixture;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use lab_fixture::{LabGuard, ferry_bin, require_root, unique_name};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn machine_links() -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip link");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

/// Live (not zombie) processes whose command line or root dir mentions `needle`.
fn live_processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let state = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next()
            .unwrap_or("");
        if state == "Z" || state == "X" {
            continue;
        }
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        let root = std::fs::read_link(format!("/proc/{pid}/root"))
            .map(|r| r.display().to_string())
            .unwrap_or_default();
        if (cmd.contains(needle) || root.contains(needle)) && pid != std::process::id() {
            found.push(format!("{pid}: {cmd} (root {root})"));
        }
    }
    found
}

fn one_line_error(o: &Output) -> String {
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected a one-line error, got:\n{err}");
    lines[0].to_string()
}

#[test]
fn three_hosts_are_separate_machines_reachable_on_every_network() {
    let lab = LabGuard::up("sep", 3);
    assert_eq!(lab.hosts.len(), 3);
    assert!(
        lab.inventory.is_absolute() && lab.inventory.exists(),
        "{:?}",
        lab.inventory
    );

    // Each host answers over real SSH with its own hostname.
    for h in &lab.hosts {
        assert_eq!(lab.ssh_ok(&h.name, "hostname").trim(), h.name);
    }

    // Strict host key checking is real: an empty known_hosts is refused.
    let refused = Command::new("ssh")
        .arg("-F")
        .arg(lab.ssh_config())
        .args([
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
        ])
        .arg(&lab.hosts[0].name)
        .arg("true")
        .output()
        .unwrap();
    assert!(
        !refused.status.success(),
        "ssh without the lab's known_hosts must fail"
    );

    // A file under /etc on host 1 is on no other host and not on this machine.
    let marker = format!("/etc/{}-marker", lab.name);
    lab.ssh_ok("1", &format!("echo from-host-1 > {marker}"));
    assert_eq!(
        lab.ssh_ok("1", &format!("cat {marker}")).trim(),
        "from-host-1"
    );
    let on_2 = lab.ssh("2", &format!("test -e {marker}"));
    assert_eq!(on_2.status.code(), Some(1), "{marker} leaked to host 2");
    assert!(
        !Path::new(&marker).exists(),
        "{marker} leaked to this machine"
    );

    // Hosts reach each other on the management, migration and guest networks.
    for from in &lab.hosts {
        let targets: Vec<&str> = lab
            .hosts
            .iter()
            .filter(|h| h.index != from.index)
            .flat_map(|h| {
                [
                    h.mgmt_ip.as_str(),
                    h.migration_ip.as_str(),
                    h.guest_ip.as_str(),
                ]
            })
            .collect();
        let script = format!(
            "for ip in {}; do busybox ping -c 1 -W 2 $ip >/dev/null || echo unreachable $ip; done",
            targets.join(" ")
        );
        let out = lab.ssh_ok(&from.name, &script);
        assert_eq!(out.trim(), "", "from {}", from.name);
    }
    // And each address belongs to the interface the inventory names.
    let inv = std::fs::read_to_string(&lab.inventory).unwrap();
    for key in [
        "ansible_host:",
        "migration_iface: \"mig0\"",
        "guest_bridge_iface: \"brguest\"",
        "controller:",
    ] {
        assert!(inv.contains(key), "inventory lacks {key}:\n{inv}");
    }
    let addrs = lab.ssh_ok("2", "ip -o -4 addr show");
    assert!(
        addrs.contains(&format!("mig0    inet {}/24", lab.hosts[1].migration_ip)),
        "{addrs}"
    );
    assert!(
        addrs.contains(&format!("brguest    inet {}/24", lab.hosts[1].guest_ip)),
        "{addrs}"
    );

    // Hosts know each other by name.
    let resolved = lab.ssh_ok("1", &format!("getent hosts {}", lab.hosts[2].name));
    assert!(resolved.starts_with(&lab.hosts[2].mgmt_ip), "{resolved}");
    assert!(
        !Path::new("/etc/hosts").exists()
            || !std::fs::read_to_string("/etc/hosts")
                .unwrap()
                .contains(&lab.name)
    );

    // `ferry lab exec` enters the host by name or index and passes the exit code through.
    let out = lab.exec("2", "hostname; exit 7");
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        lab.hosts[1].name
    );
    let out = lab.exec(&lab.hosts[0].name.clone(), &format!("cat {marker}"));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "from-host-1");

    // Status lists every host as answering.
    let out = lab
        .ferry(&["lab", "status", "--name", &lab.name])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().filter(|l| l.ends_with(" yes")).count(),
        3,
        "{text}"
    );
}

#[test]
fn link_rate_shapes_the_migration_network() {
    let lab = LabGuard::up_with("rate", 2, &["--link-rate", "100mbit"]);
    let server = lab.hosts[1].migration_ip.clone();
    // One-shot server inside host 2, bounded client run from host 1 over the migration network.
    lab.ssh_ok("2", &format!("iperf3 -s -1 -D -B {server}"));
    let mut result = None;
    for _ in 0..50 {
        let out = lab.ssh("1", &format!("timeout 20 iperf3 -c {server} -t 4 -O 1 -J"));
        if out.status.success() {
            result = Some(String::from_utf8_lossy(&out.stdout).into_owned());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let json: serde_json::Value =
        serde_json::from_str(&result.expect("iperf3 client ran")).unwrap();
    let mbit = json["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap()
        / 1e6;
    assert!(
        (90.0..=110.0).contains(&mbit),
        "measured {mbit:.1} Mbit/s, want 100 +- 10 %"
    );
    let inv = std::fs::read_to_string(&lab.inventory).unwrap();
    assert!(inv.contains("migration_link_rate: \"100mbit\""), "{inv}");
}

#[test]
fn down_leaves_no_namespace_link_mount_process_or_state() {
    let mut lab = LabGuard::up("down", 2);
    let prefix = lab.state().prefix;
    let state_dir = lab.state_dir.display().to_string();
    // A daemon started inside a host is a process of the lab too.
    lab.ssh_ok("2", "iperf3 -s -D");
    let anchors: Vec<u32> = lab
        .state()
        .hosts
        .iter()
        .map(|h| h.anchor.as_ref().unwrap().pid)
        .collect();
    assert!(machine_links().iter().any(|l| l.starts_with(&prefix)));

    lab.down();

    let links: Vec<String> = machine_links()
        .into_iter()
        .filter(|l| l.starts_with(&prefix))
        .collect();
    assert!(links.is_empty(), "links left: {links:?}");
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&netns.stdout).contains(&lab.name));
    let mounts = Command::new("mount").output().unwrap();
    let mounts = String::from_utf8_lossy(&mounts.stdout);
    assert!(
        !mounts.contains(&state_dir) && !mounts.contains(&lab.name),
        "{mounts}"
    );
    // Killed processes are reaped by init; wait a little for that.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = live_processes_mentioning(&state_dir);
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "processes left: {left:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    for pid in anchors {
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.rsplit(')').next().unwrap().trim_start().starts_with('Z'))
            .unwrap_or(false);
        assert!(!alive, "anchor {pid} still alive");
    }
    assert!(!lab.state_dir.exists(), "state dir left");

    // Down again is harmless; status and exec say there is no such lab.
    let again = lab
        .ferry(&["lab", "down", "--name", &lab.name])
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
    let status = lab
        .ferry(&["lab", "status", "--name", &lab.name])
        .output()
        .unwrap();
    assert!(!status.status.success());
    assert!(one_line_error(&status).contains("no lab named"));
}

#[test]
fn up_again_repairs_grows_and_shrinks_without_touching_what_is_fine() {
    let mut lab = LabGuard::up("idem", 2);
    let inventory = std::fs::read_to_string(&lab.inventory).unwrap();
    let before = lab.state();
    lab.ssh_ok("1", "echo kept > /etc/kept");

    // Same again: nothing changes.
    let out = lab.lab_up(2, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let again = lab.state();
    for (a, b) in before.hosts.iter().zip(&again.hosts) {
        assert_eq!(a.anchor, b.anchor, "{} was rebuilt", a.name);
        assert_eq!(a.sshd, b.sshd, "{}'s sshd was restarted", a.name);
    }
    assert_eq!(std::fs::read_to_string(&lab.inventory).unwrap(), inventory);
    assert_eq!(before.range, again.range);

    // Grow to 3: hosts 1 and 2 stay as they are, host 3 answers.
    let out = lab.lab_up(3, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let grown = lab.state();
    assert_eq!(grown.hosts.len(), 3);
    assert_eq!(grown.hosts[0].anchor, before.hosts[0].anchor);
    assert_eq!(
        lab.ssh_ok("3", "hostname").trim(),
        format!("{}-3", lab.name)
    );
    let inv = std::fs::read_to_string(&lab.inventory).unwrap();
    assert!(inv.contains(&format!("\"{}-3\"", lab.name)));

    // Rate and MTU change in place; an `up` without them keeps them; `none` unshapes.
    let out = lab.lab_up(3, &["--mtu", "9000", "--link-rate", "1gbit"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        lab.ssh_ok("1", "cat /sys/class/net/mig0/mtu").trim(),
        "9000"
    );
    assert!(
        lab.ssh_ok("2", "tc qdisc show dev mig0")
            .contains("rate 1Gbit")
    );
    assert_eq!(
        lab.state().hosts[0].anchor,
        before.hosts[0].anchor,
        "host 1 was rebuilt"
    );
    let out = lab.lab_up(3, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        lab.ssh_ok("3", "tc qdisc show dev mig0")
            .contains("rate 1Gbit")
    );
    assert_eq!(
        lab.ssh_ok("3", "cat /sys/class/net/mig0/mtu").trim(),
        "9000"
    );
    let out = lab.lab_up(3, &["--link-rate", "none"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!lab.ssh_ok("3", "tc qdisc show dev mig0").contains("tbf"));

    // A dead sshd and a dead host are repaired; files written on the host survive.
    let sshd1 = grown.hosts[0].sshd.clone().unwrap().pid;
    let anchor2 = grown.hosts[1].anchor.clone().unwrap().pid;
    for pid in [sshd1, anchor2] {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    let out = lab.lab_up(3, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(lab.ssh_ok("1", "cat /etc/kept").trim(), "kept");
    assert_eq!(
        lab.ssh_ok("2", "hostname").trim(),
        format!("{}-2", lab.name)
    );
    assert_eq!(
        lab.state().hosts[2].anchor,
        grown.hosts[2].anchor,
        "host 3 was fine"
    );

    // Shrink to 1: hosts 2 and 3 are gone, host 1 is untouched.
    let prefix = lab.state().prefix;
    let out = lab.lab_up(1, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shrunk = lab.state();
    assert_eq!(shrunk.hosts.len(), 1);
    assert_eq!(lab.ssh_ok("1", "cat /etc/kept").trim(), "kept");
    let links: Vec<String> = machine_links()
        .into_iter()
        .filter(|l| l.starts_with(&prefix) && (l.ends_with('2') || l.ends_with('3')))
        .collect();
    assert!(links.is_empty(), "links of removed hosts left: {links:?}");
    let inv = std::fs::read_to_string(&lab.inventory).unwrap();
    assert!(!inv.contains(&format!("\"{}-2\"", lab.name)), "{inv}");

    // A different range for an existing lab is refused.
    let out = lab.lab_up(1, &["--range", "10.99.0.0/16"]);
    assert!(!out.status.success());
    assert!(one_line_error(&out).contains("take it down"));
}

/// Bad input: a one-line error, non-zero exit, and nothing created.
#[test]
fn bad_input_is_refused_in_one_line_and_creates_nothing() {
    require_root();
    let occupied = LabGuard::up("occ", 1);
    let occupied_range = occupied.state().range.to_string();

    let check = |args: &[&str], env: &[(&str, &str)], setpriv: bool, want: &str| {
        let name = unique_name("bad");
        let mut cmd = if setpriv {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(ferry_bin());
            c
        } else {
            Command::new(ferry_bin())
        };
        cmd.args(["lab", "up", "--name", &name]).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        let line = one_line_error(&out);
        assert!(
            line.contains(want),
            "{args:?}: {line:?} should mention {want:?}"
        );
        assert!(
            !Path::new(ferry::lab::STATE_ROOT).join(&name).exists(),
            "{args:?} created state"
        );
        let prefix = ferry::lab::network::IfNames::for_lab(&name).prefix;
        let made: Vec<String> = machine_links()
            .into_iter()
            .filter(|l| l.starts_with(&prefix))
            .collect();
        assert!(made.is_empty(), "{args:?} created links {made:?}");
        assert!(!Path::new(&format!("/run/ferry/lab-{name}.lock")).exists());
    };
    check(
        &["--hosts", "0"],
        &[],
        false,
        "--hosts must be between 1 and 1000",
    );
    check(
        &["--link-rate", "10furlongs"],
        &[],
        false,
        "unknown unit \"furlongs\"",
    );
    check(
        &["--range", &occupied_range],
        &[],
        false,
        "is in use here (route",
    );
    check(&["--range", "8.8.0.0/16"], &[], false, "not private");
    check(&["--mtu", "20"], &[], false, "--mtu 20");
    check(&[], &[], true, "needs root");

    // Missing tools: a PATH holding everything but sshd.
    let dir = tempfile::tempdir().unwrap();
    for tool in [
        "ip",
        "tc",
        "unshare",
        "nsenter",
        "mount",
        "chroot",
        "sleep",
        "hostname",
        "ssh-keygen",
    ] {
        let real = lab_fixture_which(tool);
        std::os::unix::fs::symlink(real, dir.path().join(tool)).unwrap();
    }
    let path = dir.path().display().to_string();
    check(
        &[],
        &[("PATH", &path)],
        false,
        "sshd not found in PATH: apt-get install openssh-server",
    );
    std::fs::remove_file(dir.path().join("ip")).unwrap();
    check(
        &[],
        &[("PATH", &path)],
        false,
        "ip not found in PATH: apt-get install iproute2",
    );
}

fn lab_fixture_which(tool: &str) -> std::path::PathBuf {
    ferry::lab::tools::which(tool).unwrap_or_else(|| panic!("{tool} is needed by this test"))
}

/// `ferry lab down` cleans up after an `up` killed half-way.
#[test]
fn down_after_a_crash_half_way_through_up_leaves_nothing() {
    require_root();
    let name = unique_name("crash");
    struct Down(String);
    impl Drop for Down {
        fn drop(&mut self) {
            let _ = Command::new(ferry_bin())
                .args(["lab", "down", "--name", &self.0])
                .output();
        }
    }
    let _cleanup = Down(name.clone());
    let state_dir = Path::new(ferry::lab::STATE_ROOT).join(&name);
    let prefix = ferry::lab::network::IfNames::for_lab(&name).prefix;
    let mut up = Command::new(ferry_bin())
        .args(["lab", "up", "--name", &name, "--hosts", "12"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once some hosts exist but (almost surely) before it is done.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !state_dir.join("hosts/2/sshd.log").exists() {
        assert!(
            Instant::now() < deadline,
            "ferry lab up made no host in 30 s"
        );
        assert!(
            up.try_wait().unwrap().is_none(),
            "ferry lab up ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    up.kill().unwrap();
    up.wait().unwrap();
    assert!(!live_processes_mentioning(&state_dir.display().to_string()).is_empty());

    let out = Command::new(ferry_bin())
        .args(["lab", "down", "--name", &name])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let links: Vec<String> = machine_links()
        .into_iter()
        .filter(|l| l.starts_with(&prefix))
        .collect();
    assert!(links.is_empty(), "links left: {links:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = live_processes_mentioning(&state_dir.display().to_string());
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "processes left: {left:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!state_dir.exists(), "state dir left");
}
