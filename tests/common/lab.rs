//! `LabGuard`: a built-in lab for one test, taken down when the guard drops
//! (also when the test panics).
//!
//! Use it from an integration test with
//! `#[path = "common/lab.rs"] mod lab_fixture;` and `LabGuard::up("mytest", 2)`.
//! Needs root (the lab makes namespaces): without it the test fails, naming
//! what is missing.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::Digest;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use ferry::lab::{HostRecord, LabState};

/// Bytes (a command's output) as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every event of an `--events` JSONL file.
pub fn read_events(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read the events file {}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).expect("an events line is JSON"))
        .collect()
}

/// The last recap's counters per host.
pub fn recap_hosts(events: &[serde_json::Value]) -> serde_json::Map<String, serde_json::Value> {
    events
        .iter()
        .rfind(|e| e["event"] == "recap")
        .expect("a recap event")["hosts"]
        .as_object()
        .expect("recap hosts")
        .clone()
}

/// The `ferry` binary under test.
pub fn ferry_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ferry"))
}

/// A name no other test (in this or a parallel process) uses: `PREFIX-PID-N`.
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let prefix: String = prefix.chars().take(14).collect();
    format!("{prefix}-{}-{n}", std::process::id())
}

/// Fail loudly when not root: the lab cannot exist without it.
/// The tools of `tools` (`(tool, Debian package)`) found neither on PATH nor in
/// /usr/sbin, as `tool (install package)`.
pub fn missing_tools(tools: &[(&str, &str)]) -> Vec<String> {
    tools
        .iter()
        .filter(|(tool, _)| {
            !Command::new("sh")
                .args([
                    "-c",
                    &format!("command -v {tool} || test -x /usr/sbin/{tool}"),
                ])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(|(tool, package)| format!("{tool} (install {package})"))
        .collect()
}

pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test brings up a ferry lab and needs root (run the suite as root)"
    );
}

/// One host of the lab, as a test sees it.
#[derive(Debug, Clone)]
pub struct LabHost {
    pub index: u32,
    pub name: String,
    pub mgmt_ip: String,
    pub migration_ip: String,
    pub guest_ip: String,
}

pub struct LabGuard {
    pub name: String,
    pub state_dir: PathBuf,
    /// The inventory `ferry lab up` wrote (the last line it printed).
    pub inventory: PathBuf,
    pub hosts: Vec<LabHost>,
    /// Whatever `ferry lab up` printed.
    pub up_stdout: String,
    down_done: bool,
}

impl LabGuard {
    /// Bring up a lab of `hosts` hosts named after `prefix` (made unique), in a free range.
    pub fn up(prefix: &str, hosts: u32) -> LabGuard {
        Self::up_with(prefix, hosts, &[])
    }

    /// As [`LabGuard::up`], with more `ferry lab up` arguments (e.g. `--link-rate 100mbit`).
    pub fn up_with(prefix: &str, hosts: u32, args: &[&str]) -> LabGuard {
        require_root();
        let name = unique_name(prefix);
        let state_dir = Path::new(ferry::lab::STATE_ROOT).join(&name);
        let mut guard = LabGuard {
            name,
            state_dir,
            inventory: PathBuf::new(),
            hosts: Vec::new(),
            up_stdout: String::new(),
            down_done: false,
        };
        // The guard exists before `up` runs, so a half-made lab is still taken down.
        let out = guard.lab_up(hosts, args);
        assert!(
            out.status.success(),
            "ferry lab up --name {} --hosts {hosts} {args:?} failed: {}",
            guard.name,
            String::from_utf8_lossy(&out.stderr)
        );
        guard
    }

    /// Run `ferry lab up` on this lab again (idempotent; grows or shrinks) and reload it.
    pub fn lab_up(&mut self, hosts: u32, args: &[&str]) -> Output {
        let out = self
            .ferry(&[
                "lab",
                "up",
                "--name",
                &self.name.clone(),
                "--hosts",
                &hosts.to_string(),
            ])
            .args(args)
            .output()
            .expect("run ferry lab up");
        if out.status.success() {
            self.up_stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            let last = self
                .up_stdout
                .lines()
                .last()
                .unwrap_or("")
                .trim()
                .to_string();
            self.inventory = PathBuf::from(last);
            self.reload();
        }
        out
    }

    /// Re-read the lab's state (hosts and addresses).
    pub fn reload(&mut self) {
        let state = self.state();
        let plan = state.plan();
        self.hosts = state
            .hosts
            .iter()
            .map(|h| LabHost {
                index: h.index,
                name: h.name.clone(),
                mgmt_ip: plan.mgmt_ip(h.index).to_string(),
                migration_ip: plan.migration_ip(h.index).to_string(),
                guest_ip: plan.guest_ip(h.index).to_string(),
            })
            .collect();
    }

    /// The lab's recorded state (`lab.json`).
    pub fn state(&self) -> LabState {
        LabState::load(&self.state_dir)
            .expect("read lab.json")
            .expect("the lab has state")
    }

    pub fn record(&self, host: &str) -> HostRecord {
        let state = self.state();
        ferry::lab::lifecycle::find_host(&state, host)
            .expect("host exists")
            .clone()
    }

    /// A `ferry` command.
    pub fn ferry(&self, args: &[&str]) -> Command {
        let mut c = Command::new(ferry_bin());
        c.args(args);
        c
    }

    pub fn host(&self, host: &str) -> &LabHost {
        self.hosts
            .iter()
            .find(|h| h.name == host || host.parse::<u32>().ok() == Some(h.index))
            .unwrap_or_else(|| panic!("lab {} has no host {host}", self.name))
    }

    pub fn ssh_config(&self) -> PathBuf {
        self.state_dir.join("ssh_config")
    }
    pub fn known_hosts(&self) -> PathBuf {
        self.state_dir.join("known_hosts")
    }
    pub fn private_key(&self) -> PathBuf {
        self.state_dir.join("id_ed25519")
    }

    /// Run `cmd` (a shell command line) on `host` (name or 1-based index) over
    /// OpenSSH, with the lab's ssh_config and strict host key checking against
    /// the written known_hosts.
    pub fn ssh(&self, host: &str, cmd: &str) -> Output {
        let h = self.host(host);
        let started = std::time::Instant::now();
        let out = Command::new("ssh")
            .arg("-F")
            .arg(self.ssh_config())
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                self.known_hosts().display()
            ))
            .args([
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=10",
            ])
            .arg(&h.name)
            .arg(cmd)
            .output()
            .expect("run ssh (install openssh-client)");
        if started.elapsed() > std::time::Duration::from_secs(2) {
            eprintln!(
                "slow: ssh {} {cmd:?} took {:.1} s",
                h.name,
                started.elapsed().as_secs_f64()
            );
        }
        out
    }

    /// As [`LabGuard::ssh`], panicking unless it exits 0; returns stdout.
    pub fn ssh_ok(&self, host: &str, cmd: &str) -> String {
        let out = self.ssh(host, cmd);
        assert!(
            out.status.success(),
            "ssh {host} {cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run `cmd` (a shell command line) inside `host` through `ferry lab exec`.
    pub fn exec(&self, host: &str, cmd: &str) -> Output {
        self.ferry(&[
            "lab", "exec", "--name", &self.name, host, "--", "sh", "-c", cmd,
        ])
        .output()
        .expect("run ferry lab exec")
    }

    /// As [`LabGuard::exec`], panicking unless it exits 0; returns stdout.
    pub fn exec_ok(&self, host: &str, cmd: &str) -> String {
        let out = self.exec(host, cmd);
        assert!(
            out.status.success(),
            "in {host}: {cmd:?} exited {}: {}{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// `ferry run -i <lab inventory> ARGS --events EVENTS` from the crate root, panicking
    /// (with both outputs) unless it exits 0; returns the output and the events.
    pub fn run_ok(
        &self,
        what: &str,
        args: &[&str],
        events: &Path,
    ) -> (Output, Vec<serde_json::Value>) {
        let inventory = self.inventory.display().to_string();
        let events_arg = events.display().to_string();
        let mut all = vec!["run", "-i", &inventory];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--events", &events_arg]);
        let out = self
            .ferry(&all)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run ferry run");
        assert!(
            out.status.success(),
            "ferry run ({what}) exited {}:\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        (out, read_events(events))
    }

    /// `ferry SUBCOMMAND -i <lab inventory> -i MORE... ARGS` from the crate root,
    /// panicking (with both outputs) unless it exits 0; returns stdout.
    pub fn ferry_ok(&self, subcommand: &str, more: &[&Path], args: &[&str]) -> String {
        let mut c = self.ferry(&[subcommand, "-i"]);
        c.arg(&self.inventory);
        for m in more {
            c.arg("-i").arg(m);
        }
        let out = c
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run ferry");
        assert!(
            out.status.success(),
            "ferry {subcommand} {args:?} exited {}:\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// `playbooks/guest.yml` on every host (the lab guest's kernel and initramfs,
    /// built in a fresh directory), panicking unless it succeeds; the build
    /// directory, kept as long as the caller holds it.
    pub fn provision_guest(&self) -> tempfile::TempDir {
        let build = tempfile::tempdir().expect("a build directory");
        let vars = format!("guest_build_dir={}", build.path().display());
        let events = build.path().join("guest-events.jsonl");
        self.run_ok(
            "playbooks/guest.yml",
            &["playbooks/guest.yml", "-e", &vars],
            &events,
        );
        build
    }

    /// Every file the host's overlay holds (its changes against `/`), with mode,
    /// owner, size, mtime and content hash: equal before and after means a run
    /// changed nothing on host `index` (1-based).
    ///
    /// Left out: ferry's agent cache (`/root/.cache/ferry`, and `/root/.cache`
    /// when connecting made it), which the first connection to a host fills
    /// whatever the playbook says, as Ansible leaves `~/.ansible/tmp`; a
    /// playbook's change is what is compared (tests/transport.rs tests the cache).
    pub fn overlay_listing(&self, index: u32) -> BTreeMap<String, String> {
        let mut all = self.overlay_listing_all(index);
        all.retain(|path, desc| {
            !(path.starts_with("root/.cache/ferry")
                || (path == "root/.cache" && desc.starts_with("dir ")))
        });
        all
    }

    fn overlay_listing_all(&self, index: u32) -> BTreeMap<String, String> {
        let upper = self.state_dir.join(format!("hosts/{index}/upper"));
        assert!(upper.is_dir(), "no overlay upper dir {}", upper.display());
        let mut out = BTreeMap::new();
        let mut stack = vec![upper.clone()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let p = e.path();
                let m = std::fs::symlink_metadata(&p).unwrap();
                let rel = p.strip_prefix(&upper).unwrap().display().to_string();
                let desc = if m.is_dir() {
                    stack.push(p.clone());
                    // A directory copied up unchanged (a temp file made and
                    // removed in it, e.g. by sshd) is not a change.
                    let lower = std::fs::symlink_metadata(Path::new("/").join(&rel)).ok();
                    if lower.is_some_and(|l| {
                        (l.mode(), l.uid(), l.gid()) == (m.mode(), m.uid(), m.gid())
                    }) {
                        continue;
                    }
                    format!("dir {:o} {}:{}", m.mode(), m.uid(), m.gid())
                } else if m.file_type().is_symlink() {
                    format!("link -> {}", std::fs::read_link(&p).unwrap().display())
                } else {
                    let sum = sha2::Sha256::digest(std::fs::read(&p).unwrap_or_default());
                    format!(
                        "file {:o} {}:{} {} mtime {} {:x}",
                        m.mode(),
                        m.uid(),
                        m.gid(),
                        m.size(),
                        m.mtime(),
                        sum
                    )
                };
                out.insert(rel, desc);
            }
        }
        out
    }

    /// Take the lab down now (Drop does it otherwise); panics if `down` fails.
    pub fn down(&mut self) -> Output {
        self.down_done = true;
        let out = self
            .ferry(&["lab", "down", "--name", &self.name])
            .output()
            .expect("run ferry lab down");
        assert!(
            out.status.success(),
            "ferry lab down --name {} failed: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        if self.down_done {
            return;
        }
        let out = Command::new(ferry_bin())
            .args(["lab", "down", "--name", &self.name])
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "ferry lab down --name {} failed: {}",
                self.name,
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!("cannot run ferry lab down --name {}: {e}", self.name),
        }
    }
}
