//! Issue 7's `qemu_source: git` path, run by `ferry run` on a lab host.
//!
//! The test makes a small real C project standing in for QEMU in a temp dir:
//! a git repo with a `configure` script (QEMU's options: `--prefix`,
//! `--target-list`, `--enable-*`/`--disable-*`; unknown options are errors, as
//! in QEMU's) and a Makefile that builds and installs `bin/qemu-system-x86_64`.
//! The binary speaks just enough QMP for the role's post-copy check and names
//! its capability `x-postcopy-ram`, as the 2014 post-copy branch does, so the
//! whole role runs, verification included. The repo is served by `git daemon`
//! on the machine's side of the lab's management bridge (lab hosts have no
//! other route), and the role's host-side `git` clones it over `git://`.
//!
//! 1. First run: the build dependencies the project needs are all present on
//!    the host (lab hosts share this machine's `/usr` and dpkg database), so
//!    the "missing" check prints nothing and apt is not called; the clone is
//!    at the pinned commit; the binary at the prefix reports that commit's
//!    version; `qemu_postcopy_capability` is `x-postcopy-ram`.
//! 2. Second run: changed=0, the installed binary's inode and mtime unchanged,
//!    nothing fetched from the daemon.
//! 3. A new commit pinned: rebuilt and reinstalled; the binary reports the new
//!    version; a further run at that commit changes nothing.
//! 4. `qemu_python` set: configure gets `--python=` (and runs it), the changed
//!    flags rebuild.
//!
//! Needs root, git (with git-daemon), gcc and make: fails naming what is missing.

#[path = "common/lab.rs"]
mod lab_fixture;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use lab_fixture::{LabGuard, recap_hosts, text};
use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// The role's defaults (roles/qemu/defaults/main.yml): the test checks them as a user would.
const PREFIX: &str = "/opt/qemu-postcopy";
const SRC_DIR: &str = "/usr/local/src/qemu";

/// QEMU's configure, in miniature: the options the role passes, errors on others.
const CONFIGURE: &str = r#"#!/bin/sh
# A stand-in for QEMU's configure: same option shapes, writes config.mak and config.h.
prefix=/usr/local
targets=
flags=
for opt in "$@"; do
  case "$opt" in
    --prefix=*) prefix=${opt#--prefix=} ;;
    --target-list=*) targets=${opt#--target-list=} ;;
    --python=*)
      # QEMU's configure runs the Python it is given (2014's: Python 2 only).
      "${opt#--python=}" -c 'import sys' || { echo "ERROR: Cannot use '${opt#--python=}'" >&2; exit 1; }
      flags="$flags $opt" ;;
    --enable-*|--disable-*|--cc=*|--extra-cflags=*) flags="$flags $opt" ;;
    *) echo "ERROR: unknown option $opt" >&2; exit 1 ;;
  esac
done
case ",$targets," in
  *,x86_64-softmmu,*) ;;
  *) echo "ERROR: --target-list must include x86_64-softmmu (got '$targets')" >&2; exit 1 ;;
esac
command -v "${CC:-cc}" >/dev/null || { echo "ERROR: no C compiler" >&2; exit 1; }
printf 'prefix=%s\nCC=%s\n' "$prefix" "${CC:-cc}" > config.mak
printf '#define QEMU_VERSION "%s"\n#define QEMU_TARGETS "%s"\n#define QEMU_FLAGS "%s"\n' \
  "$(cat VERSION)" "$targets" "$flags" > config.h
echo "configured: prefix $prefix, targets $targets"
"#;

const MAKEFILE: &str = "include config.mak\n\
\n\
all: qemu-system-x86_64\n\
\n\
qemu-system-x86_64: qemu.c config.h\n\
\t$(CC) -O2 -o $@ qemu.c\n\
\n\
install: qemu-system-x86_64\n\
\tinstall -d $(prefix)/bin\n\
\tinstall -m 0755 qemu-system-x86_64 $(prefix)/bin/qemu-system-x86_64\n\
\n\
.PHONY: all install\n";

/// `--version`, and `-qmp stdio` answering qmp_capabilities,
/// query-migrate-capabilities (with the 2014 branch's `x-postcopy-ram`) and quit.
const QEMU_C: &str = r#"#include <stdio.h>
#include <string.h>
#include "config.h"

int main(int argc, char **argv) {
    int qmp = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            printf("QEMU emulator version %s (ferry test stand-in; targets %s;%s)\n",
                   QEMU_VERSION, QEMU_TARGETS, QEMU_FLAGS);
            return 0;
        }
        if (strcmp(argv[i], "-qmp") == 0 && i + 1 < argc && strcmp(argv[i + 1], "stdio") == 0)
            qmp = 1;
    }
    if (!qmp) {
        fprintf(stderr, "usage: %s --version | -qmp stdio\n", argv[0]);
        return 1;
    }
    printf("{\"QMP\": {\"version\": {\"package\": \"%s\"}, \"capabilities\": []}}\n", QEMU_VERSION);
    fflush(stdout);
    char line[4096];
    while (fgets(line, sizeof line, stdin)) {
        if (strstr(line, "\"qmp_capabilities\"")) {
            printf("{\"return\": {}}\n");
        } else if (strstr(line, "\"query-migrate-capabilities\"")) {
            printf("{\"return\": [{\"state\": false, \"capability\": \"xbzrle\"}, "
                   "{\"state\": false, \"capability\": \"x-postcopy-ram\"}]}\n");
        } else if (strstr(line, "\"quit\"")) {
            printf("{\"return\": {}}\n");
            return 0;
        } else {
            printf("{\"error\": {\"class\": \"CommandNotFound\"}}\n");
        }
        fflush(stdout);
    }
    return 0;
}
"#;

/// The playbook the test runs: the qemu role alone, on the compute nodes.
const PLAYBOOK: &str = r#"---
- name: QEMU from git
  hosts: compute
  become: true
  roles:
    - qemu
"#;

fn require_tools() -> PathBuf {
    let mut missing = Vec::new();
    for (tool, package) in [("git", "git"), ("gcc", "gcc libc6-dev"), ("make", "make")] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !found {
            missing.push(format!("{tool} (install {package})"));
        }
    }
    let daemon = Command::new("git")
        .arg("--exec-path")
        .output()
        .ok()
        .map(|o| PathBuf::from(text(&o.stdout).trim()).join("git-daemon"))
        .filter(|p| p.is_file());
    if daemon.is_none() {
        missing.push("git-daemon (install git; `git --exec-path`/git-daemon)".into());
    }
    assert!(
        missing.is_empty(),
        "the qemu_source: git lab test needs: {}",
        missing.join(", ")
    );
    daemon.unwrap()
}

/// `git` in `dir` with a fixed identity; panics unless it exits 0; returns stdout.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=ferry test",
            "-c",
            "user.email=test@ferry.invalid",
        ])
        .args(args)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} in {} failed: {}",
        dir.display(),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Commit `version` of the stand-in project; returns the commit id.
fn commit_version(repo: &Path, version: &str, message: &str) -> String {
    std::fs::write(repo.join("VERSION"), format!("{version}\n")).unwrap();
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", message]);
    git(repo, &["rev-parse", "HEAD"]).trim().to_string()
}

fn make_project(repo: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(repo).unwrap();
    git(repo, &["init", "-q", "-b", "wp3-postcopy"]);
    std::fs::write(repo.join("configure"), CONFIGURE).unwrap();
    std::fs::set_permissions(
        repo.join("configure"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(repo.join("Makefile"), MAKEFILE).unwrap();
    std::fs::write(repo.join("qemu.c"), QEMU_C).unwrap();
    std::fs::write(
        repo.join(".gitignore"),
        "config.mak\nconfig.h\nqemu-system-x86_64\n",
    )
    .unwrap();
    commit_version(repo, "2.1.50-ferrytest-1", "stand-in QEMU, version 1")
}

/// `git daemon` on the machine's side of the lab bridge, killed by PID on drop.
struct GitDaemon {
    child: Child,
    log: PathBuf,
    url: String,
}

impl GitDaemon {
    fn start(bin: &Path, base: &Path, listen: &str, log: PathBuf) -> GitDaemon {
        let port = {
            let l = std::net::TcpListener::bind((listen, 0))
                .unwrap_or_else(|e| panic!("bind {listen}:0 to find a free port: {e}"));
            l.local_addr().unwrap().port()
        };
        let child = Command::new(bin)
            .arg("--reuseaddr")
            .arg("--export-all")
            .arg("--verbose")
            .arg("--informative-errors")
            .arg(format!("--base-path={}", base.display()))
            .arg(format!("--listen={listen}"))
            .arg(format!("--port={port}"))
            .arg(base)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create the git daemon log"))
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let d = GitDaemon {
            child,
            log,
            url: format!("git://{listen}:{port}/qemu.git"),
        };
        let started = Instant::now();
        while !d.log_text().contains("Ready to rumble") {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "git daemon on {listen}:{port} did not get ready: {}",
                d.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many upload-pack requests (clones/fetches) `from` made so far.
    fn fetches_from(&self, from: &str) -> usize {
        let log = self.log_text();
        // "[pid] Connection from IP:PORT" then "[pid] Request upload-pack for ..." by the same pid.
        let pids: Vec<String> = log
            .lines()
            .filter(|l| l.contains(&format!("Connection from {from}:")))
            .filter_map(|l| l.split(']').next().map(|p| format!("{p}]")))
            .collect();
        log.lines()
            .filter(|l| l.contains("Request upload-pack"))
            .filter(|l| pids.iter().any(|p| l.starts_with(p.as_str())))
            .count()
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

/// `ferry run` of the test playbook with the role's git variables; returns
/// the output and the events file's records.
fn run_role(lab: &LabGuard, work: &Path, name: &str, vars: &Value) -> (Output, Vec<Value>) {
    let playbook = work.join("qemu-git.yml").display().to_string();
    let events = work.join(format!("{name}.jsonl"));
    lab.run_ok(name, &[&playbook, "-e", &vars.to_string()], &events)
}

/// The recap counters of `host`.
fn recap(events: &[Value], host: &str) -> Value {
    recap_hosts(events)[host].clone()
}

/// The host_result of the task whose name ends with `task` on `host`.
fn result<'a>(events: &'a [Value], host: &str, task: &str) -> &'a Value {
    events
        .iter()
        .find(|e| {
            e["event"] == "host_result"
                && e["host"] == host
                && e["task"].as_str().is_some_and(|t| t.ends_with(task))
        })
        .unwrap_or_else(|| panic!("no result of task `{task}` on {host} in the events"))
}

/// inode and mtime (ns) of the installed binary, as `stat` inside the host sees them.
fn installed_identity(lab: &LabGuard, host: &str) -> String {
    lab.exec_ok(
        host,
        &format!("stat -c '%i %.9Y' {PREFIX}/bin/qemu-system-x86_64"),
    )
    .trim()
    .to_string()
}

#[test]
fn qemu_role_builds_from_a_git_daemon_in_the_lab_once_per_commit() {
    lab_fixture::require_root();
    let daemon_bin = require_tools();
    let machine_had_prefix = Path::new(PREFIX).exists();

    let lab = LabGuard::up("tbgit", 1);
    let host = lab.hosts[0].clone();
    let work = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(Path::new(ROOT).join("roles"), work.path().join("roles")).unwrap();
    std::fs::write(work.path().join("qemu-git.yml"), PLAYBOOK).unwrap();

    let served = work.path().join("served");
    let repo = served.join("qemu.git");
    let commit1 = make_project(&repo);
    let machine_ip = lab.state().plan().machine_mgmt_ip().to_string();
    let daemon = GitDaemon::start(
        &daemon_bin,
        &served,
        &machine_ip,
        work.path().join("git-daemon.log"),
    );
    let vars = |commit: &str| {
        serde_json::json!({
            "qemu_source": "git",
            "qemu_git_repo": daemon.url,
            "qemu_git_version": commit,
            // What the stand-in project needs to build: a C toolchain and git.
            // Both are installed on this machine, hence on the lab hosts.
            "qemu_build_packages": ["build-essential", "git"],
        })
    };

    // 1. First run: clone at commit 1 over git://, build, install, verify.
    let (out, ev) = run_role(&lab, work.path(), "run-1", &vars(&commit1));
    let stdout = text(&out.stdout);
    let missing = result(&ev, &host.name, "Find which build dependencies are missing");
    assert_eq!(
        missing["stdout"].as_str().map(str::trim),
        Some(""),
        "the lab host lacks build dependencies it shares with this machine: {missing}"
    );
    assert_eq!(
        result(&ev, &host.name, "Install missing build dependencies")["outcome"],
        "skipped",
        "with nothing missing, apt (which has no mirror in the lab) must not run"
    );
    assert_eq!(
        result(&ev, &host.name, "Clone QEMU at the pinned commit")["outcome"],
        "changed"
    );
    let build = result(
        &ev,
        &host.name,
        "Configure, build and install QEMU (rebuilds only when the commit or flags change)",
    );
    assert_eq!(build["outcome"], "changed", "{build}");
    assert!(
        daemon.fetches_from(&host.mgmt_ip) >= 1,
        "the host did not fetch from the git daemon:\n{}",
        daemon.log_text()
    );
    assert_eq!(
        lab.exec_ok(&host.name, &format!("git -C {SRC_DIR} rev-parse HEAD"))
            .trim(),
        commit1,
        "the clone on the host is at the pinned commit"
    );
    let version = lab.exec_ok(
        &host.name,
        &format!("{PREFIX}/bin/qemu-system-x86_64 --version"),
    );
    assert!(
        version.contains("version 2.1.50-ferrytest-1 ")
            && version.contains("targets x86_64-softmmu;")
            && version.contains("--disable-werror"),
        "the installed binary is not commit 1's build with the role's configure flags: {version}"
    );
    let marker = lab.exec_ok(&host.name, &format!("cat {PREFIX}/.ferry-build"));
    assert!(
        marker.contains(&format!("commit={commit1}\n")),
        "the build marker records another commit: {marker}"
    );
    assert!(
        stdout.contains("post-copy capability 'x-postcopy-ram'"),
        "the role did not record the 2014 branch's capability name:\n{stdout}"
    );
    assert!(
        recap(&ev, &host.name)["changed"].as_u64().unwrap() >= 2,
        "{}",
        recap(&ev, &host.name)
    );
    if !machine_had_prefix {
        assert!(
            !Path::new(PREFIX).exists(),
            "the build landed on the machine, not only in the lab host's own root"
        );
    }
    let installed1 = installed_identity(&lab, &host.name);

    // 2. Second run, same commit: nothing changes, nothing is rebuilt or fetched.
    let fetches = daemon.fetches_from(&host.mgmt_ip);
    let (out, ev) = run_role(&lab, work.path(), "run-2", &vars(&commit1));
    assert_eq!(
        recap(&ev, &host.name)["changed"],
        0,
        "the second run changed something:\n{}",
        text(&out.stdout)
    );
    assert_eq!(recap(&ev, &host.name)["failed"], 0);
    assert_eq!(
        installed_identity(&lab, &host.name),
        installed1,
        "the second run reinstalled the binary (inode/mtime changed)"
    );
    assert_eq!(
        daemon.fetches_from(&host.mgmt_ip),
        fetches,
        "the second run fetched again although the checkout is at the pinned commit"
    );

    // 3. A new commit, pinned: fetched, rebuilt, reinstalled.
    let commit2 = commit_version(&repo, "2.1.50-ferrytest-2", "stand-in QEMU, version 2");
    assert_ne!(commit1, commit2);
    let (out, ev) = run_role(&lab, work.path(), "run-3", &vars(&commit2));
    let build = result(
        &ev,
        &host.name,
        "Configure, build and install QEMU (rebuilds only when the commit or flags change)",
    );
    assert_eq!(build["outcome"], "changed", "{}", text(&out.stdout));
    assert!(
        daemon.fetches_from(&host.mgmt_ip) > fetches,
        "the new commit was not fetched from the git daemon:\n{}",
        daemon.log_text()
    );
    assert_eq!(
        lab.exec_ok(&host.name, &format!("git -C {SRC_DIR} rev-parse HEAD"))
            .trim(),
        commit2
    );
    let version = lab.exec_ok(
        &host.name,
        &format!("{PREFIX}/bin/qemu-system-x86_64 --version"),
    );
    assert!(
        version.contains("version 2.1.50-ferrytest-2 "),
        "the installed binary is not commit 2's build: {version}"
    );
    assert_ne!(
        installed_identity(&lab, &host.name),
        installed1,
        "the binary at the prefix was not reinstalled"
    );
    assert!(
        lab.exec_ok(&host.name, &format!("cat {PREFIX}/.ferry-build"))
            .contains(&format!("commit={commit2}\n"))
    );
    let installed2 = installed_identity(&lab, &host.name);

    // ... and at commit 2, a further run changes nothing again.
    let (out, ev) = run_role(&lab, work.path(), "run-4", &vars(&commit2));
    assert_eq!(
        recap(&ev, &host.name)["changed"],
        0,
        "a run at the already-built commit 2 changed something:\n{}",
        text(&out.stdout)
    );
    assert_eq!(installed_identity(&lab, &host.name), installed2);

    // 4. A toolchain variable (qemu_python, for the 2014 branch's Python 2)
    //    reaches configure as --python=, and changed flags rebuild.
    let mut with_python = vars(&commit2);
    with_python["qemu_python"] = "/usr/bin/python3".into();
    let (out, ev) = run_role(&lab, work.path(), "run-5", &with_python);
    let build = result(
        &ev,
        &host.name,
        "Configure, build and install QEMU (rebuilds only when the commit or flags change)",
    );
    assert_eq!(build["outcome"], "changed", "{}", text(&out.stdout));
    let version = lab.exec_ok(
        &host.name,
        &format!("{PREFIX}/bin/qemu-system-x86_64 --version"),
    );
    assert!(
        version.contains("version 2.1.50-ferrytest-2 ")
            && version.contains(" --python=/usr/bin/python3"),
        "qemu_python did not reach configure: {version}"
    );
    assert_ne!(installed_identity(&lab, &host.name), installed2);
    drop(daemon);
}
