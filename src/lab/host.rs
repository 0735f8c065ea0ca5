//! A lab host's processes: the anchor that holds its namespaces, its sshd, and
//! how they are recognised and stopped.
//!
//! The anchor is started as
//! `unshare -n -m -u --propagation private -- /bin/sh -c SETUP`; the setup
//! script sets the hostname, disables IPv6, mounts the overlay root (lowerdir
//! `/`), proc, sysfs, `/dev` and the lab state dir into it, and finally
//! `exec chroot ROOT sleep infinity`, so the PID ferry spawned is the anchor
//! itself. Every process of a host has its root directory under the lab's
//! `hosts/` dir, which is how `down` finds them even after a crash.

use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::tools::Tools;
use super::{LabError, Result, io_err};

/// A process the lab started, recognised by PID, start time and command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabProcess {
    pub pid: u32,
    /// Field 22 of /proc/PID/stat (clock ticks after boot).
    pub start_time: u64,
    /// The command line, NUL-separated arguments joined by spaces.
    pub cmdline: String,
}

pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    // after: state ppid ... ; starttime is field 22 overall, i.e. index 19 here.
    let fields: Vec<&str> = after.split_whitespace().collect();
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

pub fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let parts: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    Some(parts.join(" "))
}

impl LabProcess {
    pub fn of(pid: u32) -> Option<LabProcess> {
        Some(LabProcess {
            pid,
            start_time: start_time(pid)?,
            cmdline: cmdline(pid)?,
        })
    }

    /// Still the same live process (not a zombie, not a reused PID: PID and
    /// start time together name one process). Its command line is checked by
    /// the callers that know what it should be (sshd rewrites its own title).
    pub fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.start_time)
    }

    /// Its command line now.
    pub fn cmdline_now(&self) -> String {
        cmdline(self.pid).unwrap_or_default()
    }
}

/// The paths of one host inside the state dir.
#[derive(Debug, Clone)]
pub struct HostPaths {
    pub dir: PathBuf,
}

impl HostPaths {
    pub fn new(state_dir: &Path, index: u32) -> HostPaths {
        HostPaths {
            dir: state_dir.join("hosts").join(index.to_string()),
        }
    }
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }
    pub fn host_key(&self) -> PathBuf {
        self.dir.join("ssh_host_ed25519_key")
    }
    pub fn sshd_config(&self) -> PathBuf {
        self.dir.join("sshd_config")
    }
    pub fn sshd_pid(&self) -> PathBuf {
        self.dir.join("sshd.pid")
    }
    pub fn sshd_log(&self) -> PathBuf {
        self.dir.join("sshd.log")
    }
    pub fn anchor_log(&self) -> PathBuf {
        self.dir.join("anchor.log")
    }
}

const SETUP: &str = r#"set -e
hostname "$1"
echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 2>/dev/null || true
echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6 2>/dev/null || true
ip link set lo up
mount -t overlay "ferry-lab-$1" -o lowerdir=/,upperdir="$2",workdir="$3" "$4"
mount -t proc proc "$4/proc"
mount -t sysfs sysfs "$4/sys"
mount --rbind /dev "$4/dev"
mount -t tmpfs tmpfs "$4/dev/shm"
mkdir -p "$4$5"
mount --bind "$5" "$4$5"
mkdir -p "$4/run/sshd"
exec chroot "$4" /bin/sleep infinity
"#;

const ANCHOR_CMDLINE: &str = "/bin/sleep infinity";

fn detached(cmd: &mut Command, log: &Path) -> Result<()> {
    let log = super::private_file::create_private(log)?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .process_group(0);
    Ok(())
}

fn wait_until(timeout: Duration, mut done: impl FnMut() -> Result<bool>) -> Result<bool> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(2);
    while start.elapsed() < timeout {
        if done()? {
            return Ok(true);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
    done()
}

fn first_line(path: &Path) -> String {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(|l| l.trim().to_string())
        })
        .unwrap_or_else(|| "no output".into())
}

/// Start host `name`'s anchor; returns once it sleeps inside its new root.
pub fn start_anchor(
    tools: &Tools,
    name: &str,
    paths: &HostPaths,
    state_dir: &Path,
) -> Result<LabProcess> {
    for d in [paths.upper(), paths.work(), paths.root()] {
        std::fs::create_dir_all(&d).map_err(io_err(&d))?;
    }
    // /etc/hostname inside the host (the overlay is not mounted now, so writing the upper dir is safe).
    let etc = paths.upper().join("etc");
    std::fs::create_dir_all(&etc).map_err(io_err(&etc))?;
    std::fs::write(etc.join("hostname"), format!("{name}\n"))
        .map_err(io_err(etc.join("hostname")))?;
    // root's shell start files: the host's own, not this machine's (which may
    // run slow tool setup, e.g. pyenv, on every SSH command). Kept once written.
    let home = paths.upper().join("root");
    if !home.exists() {
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&home)
            .map_err(io_err(&home))?;
    }
    for (file, text) in [
        (".bashrc", "# root's .bashrc on a ferry lab host\n"),
        (
            ".profile",
            "# root's .profile on a ferry lab host\n[ -n \"$BASH\" ] && [ -f ~/.bashrc ] && . ~/.bashrc\n",
        ),
    ] {
        let p = home.join(file);
        if !p.exists() {
            std::fs::write(&p, text).map_err(io_err(&p))?;
        }
    }
    let mut cmd = Command::new(&tools.unshare);
    cmd.args([
        "-n",
        "-m",
        "-u",
        "--propagation",
        "private",
        "--",
        "/bin/sh",
        "-c",
        SETUP,
        "sh",
        name,
    ])
    .arg(paths.upper())
    .arg(paths.work())
    .arg(paths.root())
    .arg(state_dir);
    detached(&mut cmd, &paths.anchor_log())?;
    let mut child = cmd.spawn().map_err(|e| LabError::Host {
        host: name.into(),
        detail: format!("cannot start {}: {e}", tools.unshare.display()),
    })?;
    let pid = child.id();
    let ready = wait_until(Duration::from_secs(20), || {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(LabError::Host {
                host: name.into(),
                detail: format!(
                    "host setup failed ({status}): {}",
                    first_line(&paths.anchor_log())
                ),
            });
        }
        Ok(cmdline(pid).as_deref() == Some(ANCHOR_CMDLINE))
    })?;
    // The child is left running on purpose: it is the host.
    adopt(child, ready, name, "host setup did not finish", "anchor")
}

/// Keep a started child running once it is `ready` (it is part of the lab from now
/// on), or kill it and say it did not get ready in time.
fn adopt(
    mut child: Child,
    ready: bool,
    name: &str,
    not_ready: &str,
    what: &str,
) -> Result<LabProcess> {
    let pid = child.id();
    if !ready {
        let _ = child.kill();
        let _ = child.wait();
        return Err(LabError::Host {
            host: name.into(),
            detail: format!("{not_ready} within 20 s"),
        });
    }
    std::mem::forget(child);
    LabProcess::of(pid).ok_or_else(|| LabError::Host {
        host: name.into(),
        detail: format!("{what} exited right after starting"),
    })
}

/// Whether `p` is a live anchor of this lab (cmdline and root dir checked).
pub fn is_anchor(p: &LabProcess, paths: &HostPaths) -> bool {
    p.alive()
        && p.cmdline_now() == ANCHOR_CMDLINE
        && std::fs::read_link(format!("/proc/{}/root", p.pid)).ok() == Some(paths.root())
}

/// Write host `index`'s sshd_config.
pub fn write_sshd_config(
    paths: &HostPaths,
    mgmt_ip: std::net::Ipv4Addr,
    authorized_keys: &Path,
) -> Result<()> {
    let text = format!(
        "# Written by `ferry lab up`; sshd of one lab host.\n\
         ListenAddress {mgmt_ip}:22\n\
         HostKey {key}\n\
         PidFile {pid}\n\
         PermitRootLogin prohibit-password\n\
         PubkeyAuthentication yes\n\
         AuthorizedKeysFile {ak}\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UsePAM no\n\
         UseDNS no\n\
         KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org\n\
         MaxStartups 200:30:400\n\
         MaxSessions 64\n\
         PrintMotd no\n\
         AcceptEnv LANG LC_*\n\
         Subsystem sftp internal-sftp\n",
        key = paths.host_key().display(),
        pid = paths.sshd_pid().display(),
        ak = authorized_keys.display(),
    );
    super::private_file::write_atomic(&paths.sshd_config(), text.as_bytes())
}

/// Generate an ed25519 key pair at `path` unless it exists.
pub fn ensure_key(tools: &Tools, path: &Path, comment: &str) -> Result<()> {
    if path.exists() && path.with_extension("pub").exists() {
        return Ok(());
    }
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(path.with_extension("pub"));
    super::tools::run(
        Command::new(&tools.ssh_keygen)
            .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
            .arg(path),
    )?;
    Ok(())
}

/// Start sshd inside the host; returns once it listens (its PidFile names it).
pub fn start_sshd(
    tools: &Tools,
    name: &str,
    anchor: &LabProcess,
    paths: &HostPaths,
) -> Result<LabProcess> {
    let _ = std::fs::remove_file(paths.sshd_pid());
    let mut cmd = Command::new(&tools.nsenter);
    cmd.args([
        "-t",
        &anchor.pid.to_string(),
        "-m",
        "-n",
        "-u",
        "-r",
        "-w",
        "--",
    ])
    .arg(&tools.sshd)
    .arg("-D")
    .arg("-f")
    .arg(paths.sshd_config())
    .arg("-E")
    .arg(paths.sshd_log());
    detached(&mut cmd, &paths.dir.join("sshd.stderr"))?;
    let mut child = cmd.spawn().map_err(|e| LabError::Host {
        host: name.into(),
        detail: format!("cannot start sshd: {e}"),
    })?;
    let pid = child.id();
    let ready = wait_until(Duration::from_secs(20), || {
        if let Ok(Some(status)) = child.try_wait() {
            let mut why = first_line(&paths.sshd_log());
            if why == "no output" {
                why = first_line(&paths.dir.join("sshd.stderr"));
            }
            return Err(LabError::Host {
                host: name.into(),
                detail: format!("sshd exited ({status}): {why}"),
            });
        }
        Ok(std::fs::read_to_string(paths.sshd_pid())
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            == Some(pid))
    })?;
    // sshd writes its pid file with its umask: keep lab state owner-only.
    if ready {
        let _ = std::fs::set_permissions(
            paths.sshd_pid(),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        );
    }
    adopt(child, ready, name, "sshd did not start", "sshd")
}

/// Whether `p` is this host's live sshd.
pub fn is_sshd(p: &LabProcess, paths: &HostPaths) -> bool {
    let now = p.cmdline_now();
    p.alive() && now.contains(&paths.sshd_config().display().to_string()) && now.contains("sshd")
}

fn ns_inode(pid: u32, ns: &str) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).ok()
}

/// Every live process belonging to the lab: its recorded processes that still
/// match, every process whose root dir is under `hosts_dir`, and every process
/// sharing a network namespace with a live anchor.
pub fn lab_processes(
    recorded: &[LabProcess],
    anchors: &[LabProcess],
    hosts_dir: &Path,
) -> Vec<LabProcess> {
    let mut netns = Vec::new();
    for a in anchors.iter().filter(|a| a.alive()) {
        if let Some(n) = ns_inode(a.pid, "net") {
            netns.push(n);
        }
    }
    let own_net = ns_inode(std::process::id(), "net");
    let hosts_dir_text = hosts_dir.display().to_string();
    let mut found: Vec<LabProcess> = recorded
        .iter()
        .filter(|p| {
            let now = p.cmdline_now();
            p.alive() && (now == ANCHOR_CMDLINE || now.contains(&hosts_dir_text))
        })
        .cloned()
        .collect();
    found.sort_by_key(|p| p.pid);
    found.dedup_by_key(|p| p.pid);
    let me = std::process::id();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me || found.iter().any(|p| p.pid == pid) {
            continue;
        }
        let rooted_here = std::fs::read_link(format!("/proc/{pid}/root"))
            .map(|r| r.starts_with(hosts_dir))
            .unwrap_or(false);
        let in_netns = ns_inode(pid, "net")
            .is_some_and(|n| Some(&n) != own_net.as_ref() && netns.contains(&n));
        if (rooted_here || in_netns)
            && let Some(p) = LabProcess::of(pid)
        {
            found.push(p);
        }
    }
    found
}

/// SIGTERM the processes, then SIGKILL what is still alive after `grace`.
pub fn terminate(procs: &[LabProcess], grace: Duration) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    for p in procs.iter().filter(|p| p.alive()) {
        let _ = kill(Pid::from_raw(p.pid as i32), Signal::SIGTERM);
    }
    let _ = wait_until(grace, || Ok(procs.iter().all(|p| !p.alive())));
    for p in procs.iter().filter(|p| p.alive()) {
        let _ = kill(Pid::from_raw(p.pid as i32), Signal::SIGKILL);
    }
    let _ = wait_until(Duration::from_secs(5), || {
        Ok(procs.iter().all(|p| !p.alive()))
    });
}
