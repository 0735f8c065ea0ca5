//! `service` / `systemd` through `ferry run`, both ways a host can manage
//! daemons, whatever this machine itself runs as PID 1:
//!
//! - on a host running systemd: a lab host's network namespace holds a
//!   `systemd-nspawn --boot` container (an overlay of this machine's root,
//!   systemd as its PID 1, booted to a target of just `ssh.service`, sshd on
//!   port 2222 with a host key made for the test). `ferry run` writes a unit,
//!   `daemon_reload`s, starts and enables it, restarts it, stops and disables
//!   it; `systemctl` inside says what a user would check (is-active,
//!   is-enabled, MainPID), and each second run changes nothing;
//! - on a host without systemd (a plain lab host: its root is an overlay of
//!   `/` without the machine's `/run` mount, so never systemd): an init
//!   script in `/etc/init.d`, started, left running, stopped.
//!
//! Needs root, systemd-nspawn (systemd-container), systemd, ssh-keygen and
//! ssh: fails naming what is missing.

#[path = "common/lab.rs"]
mod lab_fixture;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use lab_fixture::{LabGuard, read_events, recap_hosts, text};
use serde_json::Value;

const PORT: u16 = 2222;

fn require_tools() {
    let mut missing = Vec::new();
    for (path, pkg) in [
        ("/usr/bin/systemd-nspawn", "systemd-container"),
        ("/lib/systemd/systemd", "systemd"),
        ("/usr/bin/ssh-keygen", "openssh-client"),
        ("/usr/sbin/sshd", "openssh-server"),
    ] {
        if !Path::new(path).exists() {
            missing.push(format!("{path} (apt-get install {pkg})"));
        }
    }
    assert!(missing.is_empty(), "missing: {}", missing.join(", "));
}

/// A `systemd-nspawn --boot` container in a lab host's network namespace:
/// stopped (SIGTERM to nspawn: an orderly shutdown) and unmounted on drop.
struct Booted {
    child: Option<Child>,
    key: PathBuf,
    root: PathBuf,
    console: PathBuf,
    known_hosts: PathBuf,
    ip: String,
}

impl Booted {
    fn start(lab: &LabGuard, work: &Path, key: PathBuf) -> Booted {
        let host = &lab.hosts[0];
        let anchor = lab
            .record(&host.name)
            .anchor
            .expect("the lab host's anchor process")
            .pid;
        let (upper, wk, root) = (work.join("upper"), work.join("work"), work.join("root"));
        for d in [&upper, &wk, &root] {
            std::fs::create_dir_all(d).unwrap();
        }
        let mount = Command::new("mount")
            .args(["-t", "overlay", "ferry-booted", "-o"])
            .arg(format!(
                "lowerdir=/,upperdir={},workdir={}",
                upper.display(),
                wk.display()
            ))
            .arg(&root)
            .output()
            .expect("run mount");
        assert!(
            mount.status.success(),
            "mount the overlay: {}",
            text(&mount.stderr)
        );
        let mut b = Booted {
            child: None,
            key,
            root: root.clone(),
            console: work.join("console.log"),
            known_hosts: work.join("known_hosts"),
            ip: host.mgmt_ip.clone(),
        };
        let w = |rel: &str, content: &str| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, content).unwrap();
        };
        // Its own machine id (systemd refuses the machine's), a target of just
        // sshd, sshd on the lab host's address with a host key of its own,
        // the lab's key for root.
        let id = std::fs::read_to_string("/proc/sys/kernel/random/uuid")
            .unwrap()
            .trim()
            .replace('-', "");
        w("etc/machine-id", &format!("{id}\n"));
        w(
            "etc/systemd/system/ferrytest.target",
            "[Unit]\nDescription=ferry test boot\nRequires=basic.target ssh.service\n\
             After=basic.target ssh.service\nAllowIsolate=yes\n",
        );
        let key = root.join("etc/ssh/ferrytest_host_ed25519_key");
        let _ = std::fs::remove_file(&key);
        let kg = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .output()
            .expect("run ssh-keygen");
        assert!(kg.status.success(), "ssh-keygen: {}", text(&kg.stderr));
        w(
            "etc/ssh/sshd_config.d/ferrytest.conf",
            &format!(
                "Port {PORT}\nListenAddress {}\nHostKey /etc/ssh/ferrytest_host_ed25519_key\n",
                b.ip
            ),
        );
        let pubkey = std::fs::read_to_string(lab.state_dir.join("id_ed25519.pub")).unwrap();
        w("root/.ssh/authorized_keys", &pubkey);
        let hostkey = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        std::fs::write(&b.known_hosts, format!("[{}]:{PORT} {hostkey}", b.ip)).unwrap();

        let child = Command::new("systemd-nspawn")
            .args(["--keep-unit", "--register=no", "--link-journal=no", "-q"])
            .arg(format!("--network-namespace-path=/proc/{anchor}/ns/net"))
            .arg("-D")
            .arg(&root)
            .args(["--boot", "--", "systemd.unit=ferrytest.target"])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&b.console).unwrap())
            .stderr(std::fs::File::create(work.join("nspawn.err")).unwrap())
            .process_group(0)
            .spawn()
            .expect("start systemd-nspawn");
        b.child = Some(child);
        let started = Instant::now();
        loop {
            if b.ssh("systemctl is-system-running --wait >/dev/null; true")
                .status
                .success()
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the container's sshd did not answer within 60 s:\n{}\n{}",
                std::fs::read_to_string(&b.console).unwrap_or_default(),
                std::fs::read_to_string(work.join("nspawn.err")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        b
    }

    /// `cmd` inside the container, over ssh as root with strict host key checking.
    fn ssh(&self, cmd: &str) -> Output {
        Command::new("ssh")
            .args(["-p", &PORT.to_string(), "-i"])
            .arg(&self.key)
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .args([
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=5",
                "-o",
                "LogLevel=ERROR",
            ])
            .arg(format!("root@{}", self.ip))
            .arg(cmd)
            .output()
            .expect("run ssh")
    }

    fn ssh_ok(&self, cmd: &str) -> String {
        let out = self.ssh(cmd);
        assert!(
            out.status.success(),
            "in the container: {cmd:?} exited {}: {}{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout).trim().to_string()
    }
}

impl Drop for Booted {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let started = Instant::now();
            while child.try_wait().ok().flatten().is_none() {
                if started.elapsed() > Duration::from_secs(30) {
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = Command::new("umount").arg(&self.root).status();
    }
}

const UNIT_PLAY: &str = r#"- hosts: booted
  gather_facts: false
  tasks:
    - name: the unit
      copy:
        dest: /etc/systemd/system/ferry-demo.service
        content: |
          [Unit]
          Description=ferry demo
          [Service]
          ExecStart=/bin/sleep infinity
          [Install]
          WantedBy=multi-user.target
    - name: the daemon
      systemd:
        name: ferry-demo
        state: "{{ want }}"
        enabled: "{{ boot | bool }}"
        daemon_reload: true
"#;

const INIT_PLAY: &str = r#"- hosts: all
  gather_facts: false
  tasks:
    - name: the init script
      copy:
        dest: /etc/init.d/ferry-initd
        mode: "0755"
        content: |
          #!/bin/sh
          PF=/run/ferry-initd.pid
          case "$1" in
            start) setsid sleep 100000 </dev/null >/dev/null 2>&1 & echo $! > $PF ;;
            stop) kill $(cat $PF) && rm -f $PF ;;
            restart) $0 stop; $0 start ;;
            status) [ -f $PF ] && kill -0 $(cat $PF) ;;
          esac
    - name: the daemon
      service: {name: ferry-initd, state: "{{ want }}"}
"#;

/// `ferry run -i INV PLAYBOOK -e VARS`; returns (changed, ok) of `host`.
fn run(inv: &Path, playbook: &Path, host: &str, what: &str, vars: Value) -> (u64, u64) {
    let events = playbook.with_file_name(format!("{what}.jsonl"));
    let out = Command::new(lab_fixture::ferry_bin())
        .arg("run")
        .arg("-i")
        .arg(inv)
        .arg(playbook)
        .args(["-e", &vars.to_string()])
        .arg("--events")
        .arg(&events)
        .output()
        .expect("run ferry run");
    assert!(
        out.status.success(),
        "ferry run ({what}) exited {}:\n{}\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    let r = &recap_hosts(&read_events(&events))[host];
    (r["changed"].as_u64().unwrap(), r["ok"].as_u64().unwrap())
}

#[test]
fn service_and_systemd_on_hosts_with_and_without_systemd() {
    lab_fixture::require_root();
    require_tools();
    let lab = LabGuard::up("service", 1);
    let work = tempfile::tempdir().unwrap();
    let host = lab.hosts[0].clone();

    // Without systemd: the lab host itself.
    assert!(
        lab.exec("1", "test -d /run/systemd/system").status.code() == Some(1),
        "a lab host must not see a running systemd"
    );
    let init = work.path().join("init.yml");
    std::fs::write(&init, INIT_PLAY).unwrap();
    let want = |s: &str| serde_json::json!({"want": s});
    assert_eq!(
        run(
            &lab.inventory,
            &init,
            &host.name,
            "init-start",
            want("started")
        ),
        (2, 2)
    );
    let pid = lab
        .exec_ok("1", "cat /run/ferry-initd.pid")
        .trim()
        .to_string();
    lab.exec_ok("1", &format!("kill -0 {pid}"));
    assert_eq!(
        run(
            &lab.inventory,
            &init,
            &host.name,
            "init-again",
            want("started")
        ),
        (0, 2)
    );
    assert_eq!(
        lab.exec_ok("1", "cat /run/ferry-initd.pid").trim(),
        pid,
        "a second start restarted it"
    );
    assert_eq!(
        run(
            &lab.inventory,
            &init,
            &host.name,
            "init-stop",
            want("stopped")
        ),
        (1, 2)
    );
    assert!(
        lab.exec(
            "1",
            &format!(
                "test ! -e /run/ferry-initd.pid && {{ test ! -e /proc/{pid} || grep -q '^State:.*Z' /proc/{pid}/status; }}"
            )
        )
        .status
        .success(),
        "the init script's daemon still runs after stopped"
    );

    // With systemd: a container booted in the lab host's network namespace.
    let cdir = work.path().join("booted");
    std::fs::create_dir_all(&cdir).unwrap();
    let booted = Booted::start(&lab, &cdir, lab.private_key());
    assert_eq!(
        booted.ssh_ok("readlink /proc/1/exe"),
        "/usr/lib/systemd/systemd",
        "PID 1 in the container is systemd"
    );
    booted.ssh_ok("test -d /run/systemd/system");
    let inv = work.path().join("booted.yml");
    std::fs::write(
        &inv,
        format!(
            "all:\n  hosts:\n    booted:\n      ansible_host: \"{}\"\n      ansible_port: {PORT}\n      ansible_user: root\n      \
             ansible_ssh_private_key_file: \"{}\"\n      ansible_ssh_common_args: \"-o UserKnownHostsFile={} -o StrictHostKeyChecking=yes\"\n",
            booted.ip,
            lab.private_key().display(),
            booted.known_hosts.display()
        ),
    )
    .unwrap();
    let unit = work.path().join("unit.yml");
    std::fs::write(&unit, UNIT_PLAY).unwrap();
    let v = |want: &str, boot: bool| serde_json::json!({"want": want, "boot": boot});
    let state = || {
        booted.ssh_ok(
            "echo $(systemctl is-active ferry-demo; systemctl is-enabled ferry-demo; systemctl show -P MainPID ferry-demo)",
        )
    };
    assert_eq!(
        run(&inv, &unit, "booted", "unit-start", v("started", true)),
        (2, 2)
    );
    let s1 = state();
    assert!(s1.starts_with("active enabled "), "after started: {s1}");
    let pid1 = s1.rsplit(' ').next().unwrap().to_string();
    assert_ne!(pid1, "0");
    assert_eq!(
        run(&inv, &unit, "booted", "unit-again", v("started", true)),
        (0, 2)
    );
    assert_eq!(state(), s1, "a second run touched the service");
    assert_eq!(
        run(&inv, &unit, "booted", "unit-restart", v("restarted", true)),
        (1, 2)
    );
    let s2 = state();
    assert!(s2.starts_with("active enabled "), "after restarted: {s2}");
    assert_ne!(s2, s1, "restarted kept the MainPID");
    assert_eq!(
        run(&inv, &unit, "booted", "unit-stop", v("stopped", false)),
        (1, 2)
    );
    assert_eq!(state(), "inactive disabled 0");
    assert_eq!(
        run(
            &inv,
            &unit,
            "booted",
            "unit-stop-again",
            v("stopped", false)
        ),
        (0, 2)
    );
    drop(booted);
}
