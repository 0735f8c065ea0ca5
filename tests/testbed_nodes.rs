//! Issue 7's compute-node plumbing on a 2-host lab, checked as a user would:
//!
//! - `migration_network` persists the migration NIC the way the host's OS
//!   does (`migration_persist: auto`): host 1 is made a netplan system
//!   (`/etc/netplan` exists), host 2 an ifupdown one (an `/etc/network/interfaces`
//!   with only the loopback stanza). Host 1 gets `/etc/netplan/60-ferry-migration.yaml`
//!   (mode 0600, the live address and MTU), host 2 the `source` line and
//!   `/etc/network/interfaces.d/ferry-migration`, each nothing of the other
//!   kind, and this machine's own `/etc` nothing at all (lab hosts have their
//!   own `/etc` overlay).
//! - `nova_compute` with `migration_via_hostnames` and `nova_ssh_keys`: each
//!   host resolves the other's name to its migration address; a `nova` user
//!   exists with a login shell, owns its key, and authorizes both hosts'
//!   keys; `nova` on host 1 runs a command on host 2 over SSH to host 2's
//!   migration address with strict host key checking (and back).
//! - A second run changes nothing.
//!
//! The lab's own sshd serves only root's key on the management address, so
//! the test starts in each host what a compute node has anyway: a system-style
//! sshd (per-user `~/.ssh/authorized_keys`, PAM), here listening on the
//! migration address, and stops it by PID at the end.
//!
//! Needs root, openssh-server/-client and util-linux's `runuser`: fails naming
//! what is missing.

#[path = "common/lab.rs"]
mod lab_fixture;

use std::path::Path;
use std::process::{Command, Output};

use lab_fixture::{LabGuard, recap_hosts, text};
use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const NOVA_HOME: &str = "/var/lib/nova";

const PLAYBOOK: &str = r#"---
- name: Compute-node plumbing
  hosts: compute
  become: true
  vars:
    migration_via_hostnames: true
    nova_ssh_keys: true
  roles:
    - migration_network
    - nova_compute
"#;

/// An ifupdown system's interfaces file without the `source` line (as older releases ship it).
const INTERFACES: &str = "# The loopback network interface\nauto lo\niface lo inet loopback\n";

fn require_tools() {
    let mut missing = Vec::new();
    for (tool, package) in [
        ("/usr/sbin/sshd", "openssh-server"),
        ("ssh", "openssh-client"),
        ("ssh-keygen", "openssh-client"),
        ("ssh-keyscan", "openssh-client"),
        ("runuser", "util-linux"),
        ("useradd", "passwd"),
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !found {
            missing.push(format!("{tool} (install {package})"));
        }
    }
    assert!(
        missing.is_empty(),
        "the compute-node test needs: {}",
        missing.join(", ")
    );
}

/// A compute node's sshd, on the migration address; stopped by PID on drop.
struct NodeSshd<'a> {
    lab: &'a LabGuard,
    host: String,
}

const SSHD_DIR: &str = "/etc/ferry-test-sshd";
const SSHD_PID: &str = "/run/ferry-test-sshd.pid";

impl<'a> NodeSshd<'a> {
    fn start(lab: &'a LabGuard, host: &str, listen: &str) -> NodeSshd<'a> {
        let guard = NodeSshd {
            lab,
            host: host.to_string(),
        };
        lab.exec_ok(
            host,
            &format!(
                "set -e; mkdir -p {SSHD_DIR}; \
                 ssh-keygen -q -t ed25519 -N '' -C {host} -f {SSHD_DIR}/host_key; \
                 printf '%s\\n' 'ListenAddress {listen}:22' 'HostKey {SSHD_DIR}/host_key' \
                   'PidFile {SSHD_PID}' 'UsePAM yes' 'PasswordAuthentication no' \
                   'KbdInteractiveAuthentication no' 'KexAlgorithms curve25519-sha256' \
                   > {SSHD_DIR}/sshd_config; \
                 /usr/sbin/sshd -f {SSHD_DIR}/sshd_config -E {SSHD_DIR}/log; \
                 for i in $(seq 50); do [ -s {SSHD_PID} ] && exit 0; sleep 0.1; done; \
                 echo 'sshd wrote no pid file' >&2; cat {SSHD_DIR}/log >&2; exit 1"
            ),
        );
        guard
    }
}

impl Drop for NodeSshd<'_> {
    fn drop(&mut self) {
        let _ = self.lab.exec(
            &self.host,
            &format!("[ -s {SSHD_PID} ] && kill \"$(cat {SSHD_PID})\""),
        );
    }
}

fn run(lab: &LabGuard, work: &Path, name: &str) -> (Output, serde_json::Map<String, Value>) {
    let playbook = work.join("nodes.yml").display().to_string();
    let events = work.join(format!("{name}.jsonl"));
    let (out, events) = lab.run_ok(name, &[&playbook], &events);
    (out, recap_hosts(&events))
}

#[test]
fn migration_network_persists_by_os_and_nova_ssh_works_between_compute_nodes() {
    lab_fixture::require_root();
    require_tools();
    let machine_had = ["/etc/netplan", "/etc/network", NOVA_HOME].map(|p| Path::new(p).exists());
    let lab = LabGuard::up("tbnodes", 2);
    let (h1, h2) = (lab.hosts[0].clone(), lab.hosts[1].clone());
    let work = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(Path::new(ROOT).join("roles"), work.path().join("roles")).unwrap();
    std::fs::write(work.path().join("nodes.yml"), PLAYBOOK).unwrap();

    // Host 1 looks like a netplan system, host 2 like an ifupdown one.
    lab.exec_ok(&h1.name, "mkdir -p /etc/netplan");
    lab.exec_ok(
        &h2.name,
        &format!("mkdir -p /etc/network && printf '%s' '{INTERFACES}' > /etc/network/interfaces"),
    );
    let _sshd1 = NodeSshd::start(&lab, &h1.name, &h1.migration_ip);
    let _sshd2 = NodeSshd::start(&lab, &h2.name, &h2.migration_ip);

    let (out, r1) = run(&lab, work.path(), "run-1");
    for h in [&h1, &h2] {
        assert_eq!(r1[&h.name]["failed"], 0, "{r1:?}");
        assert!(
            r1[&h.name]["changed"].as_u64().unwrap() > 0,
            "a fresh host changes: {r1:?}\n{}",
            text(&out.stdout)
        );
    }

    // Persistence, by OS, agreeing with the live state.
    for h in [&h1, &h2] {
        let live = lab.exec_ok(
            &h.name,
            "ip -o -4 addr show dev mig0; cat /sys/class/net/mig0/mtu",
        );
        assert!(
            live.contains(&format!(" inet {}/24 ", h.migration_ip)),
            "{}: mig0 lacks its migration address live: {live}",
            h.name
        );
    }
    let mtu = lab
        .exec_ok(&h1.name, "cat /sys/class/net/mig0/mtu")
        .trim()
        .parse::<u64>()
        .unwrap();
    let netplan = lab.exec_ok(&h1.name,
        "stat -c '%a' /etc/netplan/60-ferry-migration.yaml; cat /etc/netplan/60-ferry-migration.yaml",
    );
    let (mode, yaml) = netplan.split_once('\n').unwrap();
    assert_eq!(mode, "600", "netplan refuses files others can read");
    let doc: Value = serde_saphyr::from_str(yaml)
        .unwrap_or_else(|e| panic!("the netplan file is not YAML ({e}):\n{yaml}"));
    let nic = &doc["network"]["ethernets"]["mig0"];
    assert_eq!(doc["network"]["version"], 2, "{yaml}");
    assert_eq!(
        nic["addresses"],
        serde_json::json!([format!("{}/24", h1.migration_ip)]),
        "{yaml}"
    );
    assert_eq!(nic["mtu"], mtu, "{yaml}");
    assert_eq!(nic["dhcp4"], false, "{yaml}");
    assert!(
        !lab.exec(
            &h1.name,
            "test -e /etc/network/interfaces.d/ferry-migration"
        )
        .status
        .success(),
        "the netplan host also got an ifupdown stanza"
    );

    let interfaces = lab.exec_ok(&h2.name, "cat /etc/network/interfaces");
    assert!(
        interfaces.starts_with(INTERFACES)
            && interfaces
                .lines()
                .any(|l| l == "source /etc/network/interfaces.d/*"),
        "/etc/network/interfaces lost its loopback stanza or does not read interfaces.d:\n{interfaces}"
    );
    let stanza = lab.exec_ok(&h2.name, "cat /etc/network/interfaces.d/ferry-migration");
    let lines: Vec<&str> = stanza
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert_eq!(
        lines,
        vec![
            "auto mig0".to_string(),
            "iface mig0 inet static".into(),
            format!("address {}/24", h2.migration_ip),
            format!("mtu {mtu}"),
        ],
        "the ifupdown stanza:\n{stanza}"
    );
    assert!(
        !lab.exec(&h2.name, "test -e /etc/netplan/60-ferry-migration.yaml")
            .status
            .success(),
        "the ifupdown host also got a netplan file"
    );

    // Host names resolve to migration addresses.
    for (from, to) in [(&h1, &h2), (&h2, &h1)] {
        let got = lab.exec_ok(&from.name, &format!("getent hosts {}", to.name));
        assert_eq!(
            got.split_whitespace().next(),
            Some(to.migration_ip.as_str()),
            "{}: {} resolves to {got:?}, not its migration address",
            from.name,
            to.name
        );
    }

    // The nova user, its key, and SSH between the compute nodes as nova.
    let mut pubkeys = Vec::new();
    for h in [&h1, &h2] {
        let pw = lab.exec_ok(&h.name, "getent passwd nova");
        let f: Vec<&str> = pw.trim().split(':').collect();
        assert_eq!(
            (f[5], f[6]),
            (NOVA_HOME, "/bin/bash"),
            "{}: nova's home/shell: {pw}",
            h.name
        );
        let key = lab.exec_ok(
            &h.name,
            &format!(
                "stat -c '%U %a' {NOVA_HOME}/.ssh/id_ed25519 {NOVA_HOME}/.ssh/authorized_keys"
            ),
        );
        assert_eq!(key, "nova 600\nnova 600\n", "{}: key owner/mode", h.name);
        pubkeys.push(
            lab.exec_ok(&h.name, &format!("cat {NOVA_HOME}/.ssh/id_ed25519.pub"))
                .trim()
                .to_string(),
        );
    }
    assert_ne!(pubkeys[0], pubkeys[1], "each node has its own key");
    for h in [&h1, &h2] {
        let ak = lab.exec_ok(&h.name, &format!("cat {NOVA_HOME}/.ssh/authorized_keys"));
        for k in &pubkeys {
            assert!(
                ak.lines().any(|l| l == k),
                "{}: authorized_keys lacks {k}:\n{ak}",
                h.name
            );
        }
    }
    for (from, to) in [(&h1, &h2), (&h2, &h1)] {
        let out = lab.exec(
            &from.name,
            &format!(
                "cd / && runuser -u nova -- ssh -o BatchMode=yes -o StrictHostKeyChecking=yes \
                 -o ConnectTimeout=10 {} 'id -un; hostname'",
                to.migration_ip
            ),
        );
        assert!(
            out.status.success(),
            "nova on {} cannot ssh to {} ({}) over the migration network: {}",
            from.name,
            to.name,
            to.migration_ip,
            text(&out.stderr)
        );
        assert_eq!(
            text(&out.stdout),
            format!("nova\n{}\n", to.name),
            "ssh as nova from {} landed elsewhere",
            from.name
        );
    }

    // Nothing of this on the machine itself.
    for (p, had) in ["/etc/netplan", "/etc/network", NOVA_HOME]
        .iter()
        .zip(machine_had)
    {
        if !had {
            assert!(!Path::new(p).exists(), "{p} appeared on the machine itself");
        }
    }
    let machine_hosts = std::fs::read_to_string("/etc/hosts").unwrap();
    assert!(
        !machine_hosts.contains(&h1.name),
        "the machine's /etc/hosts got the lab's names"
    );

    // Second run: nothing to change.
    let (out, r2) = run(&lab, work.path(), "run-2");
    for h in [&h1, &h2] {
        assert_eq!(
            r2[&h.name]["changed"],
            0,
            "the second run changed something on {}:\n{}",
            h.name,
            text(&out.stdout)
        );
    }
}
