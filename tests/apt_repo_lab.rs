//! `apt` by name from a served repository: the path every real compute node
//! takes, run by `ferry run` on a lab host.
//!
//! The test builds two versions of a tiny `.deb` with `dpkg-deb --build`,
//! indexes them with `dpkg-scanpackages` (a flat repository) and serves the
//! directory with `python3 -m http.server` bound to the machine's side of the
//! lab's management bridge (lab hosts have no other route). On the host the
//! playbook makes that repository the only apt source (`apt_repository` with
//! `[trusted=yes]`, the Debian mirror's file removed inside the host's overlay
//! root), then installs the package by name, leaves it when a newer version
//! appears and `state: present`, upgrades it with `state: latest`, and
//! removes it. What a user checks: `dpkg -s` on the host, the file the
//! package ships, the recap's changed/ok counts, a second run changing
//! nothing, and the server's log showing the host fetched from it.
//!
//! Needs root, dpkg-deb, dpkg-scanpackages (dpkg-dev) and python3: fails
//! naming what is missing.

#[path = "common/lab.rs"]
mod lab_fixture;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lab_fixture::{LabGuard, recap_hosts, text};
use serde_json::Value;

const PKG: &str = "ferrylab-served";

const PLAYBOOK: &str = r#"- hosts: all
  gather_facts: false
  tasks:
    - name: the testbed's repository is the host's only apt source (one-line or deb822 form)
      file: {path: "{{ item }}", state: absent}
      loop: [/etc/apt/sources.list, /etc/apt/sources.list.d/debian.sources]
    - name: the served repository
      apt_repository:
        repo: "deb [trusted=yes] {{ repo_url }} ./"
        filename: ferry-served
    - name: the package by name
      apt:
        name: ferrylab-served
        state: "{{ pkg_state }}"
        update_cache: "{{ refresh | bool }}"
"#;

/// Fail loudly naming every missing tool.
fn require_tools() {
    let mut missing = Vec::new();
    for (tool, pkg) in [
        ("dpkg-deb", "dpkg"),
        ("dpkg-scanpackages", "dpkg-dev"),
        ("python3", "python3"),
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            missing.push(format!("{tool} (apt-get install {pkg})"));
        }
    }
    assert!(missing.is_empty(), "missing: {}", missing.join(", "));
}

/// Build `PKG` at `version` into `repo`: it ships /usr/share/PKG/version.
fn build_deb(work: &Path, repo: &Path, version: &str) {
    let root = work.join(format!("build-{version}"));
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(root.join(format!("usr/share/{PKG}"))).unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: {PKG}\nVersion: {version}\nArchitecture: all\nMaintainer: ferry tests <ferry@example.invalid>\n\
             Description: ferry's served-repository test package\n"
        ),
    )
    .unwrap();
    std::fs::write(
        root.join(format!("usr/share/{PKG}/version")),
        format!("{version}\n"),
    )
    .unwrap();
    let deb = repo.join(format!("{PKG}_{version}_all.deb"));
    let out = Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&root)
        .arg(&deb)
        .output()
        .expect("run dpkg-deb");
    assert!(out.status.success(), "dpkg-deb: {}", text(&out.stderr));
}

/// Write the flat repository's index (`Packages`) for every .deb in `repo`.
fn index(repo: &Path) {
    let out = Command::new("dpkg-scanpackages")
        .args(["--multiversion", ".", "/dev/null"])
        .current_dir(repo)
        .output()
        .expect("run dpkg-scanpackages");
    assert!(
        out.status.success(),
        "dpkg-scanpackages: {}",
        text(&out.stderr)
    );
    let path = repo.join("Packages");
    let before = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
    std::fs::write(&path, &out.stdout).unwrap();
    // python's http.server answers If-Modified-Since to the whole second: an index
    // rewritten within the second apt last fetched it is "304 Not Modified", and apt
    // keeps the old one (seen in a fast clean-root run: `--check` saw no 1.1). Each new
    // index gets a later second than the one before.
    if let Some(next) = before.map(|b| b + Duration::from_secs(1))
        && std::time::SystemTime::now() < next
    {
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(next))
            .unwrap();
    }
}

/// `python3 -m http.server` serving `dir` on `listen`, killed by PID on drop.
struct Server {
    child: Child,
    log: PathBuf,
    url: String,
}

impl Server {
    fn start(dir: &Path, listen: &str, log: PathBuf) -> Server {
        let port = {
            let l = std::net::TcpListener::bind((listen, 0))
                .unwrap_or_else(|e| panic!("bind {listen}:0 to find a free port: {e}"));
            l.local_addr().unwrap().port()
        };
        let child = Command::new("python3")
            .args(["-u", "-m", "http.server", "--bind", listen, "--directory"])
            .arg(dir)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create the server log"))
            .spawn()
            .expect("start python3 -m http.server");
        let s = Server {
            child,
            log,
            url: format!("http://{listen}:{port}/"),
        };
        let started = Instant::now();
        while std::net::TcpStream::connect((listen, port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "http.server on {listen}:{port} did not answer: {}",
                s.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many times `from` fetched `file` successfully (status 200).
    fn fetches(&self, from: &str, file: &str) -> usize {
        self.log_text()
            .lines()
            .filter(|l| l.starts_with(&format!("{from} ")))
            .filter(|l| l.contains(&format!("/{file} HTTP/")) && l.contains("\" 200 "))
            .count()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

/// `ferry run` of the playbook with `state` and `refresh`; returns (changed, ok) of `host`.
fn run(lab: &LabGuard, work: &Path, what: &str, vars: &Value, extra: &[&str]) -> (u64, u64) {
    let playbook = work.join("served.yml").display().to_string();
    let events = work.join(format!("{what}.jsonl"));
    let vars = vars.to_string();
    let mut args = vec![playbook.as_str(), "-e", vars.as_str()];
    args.extend_from_slice(extra);
    let (_, ev) = lab.run_ok(what, &args, &events);
    let host = &lab.hosts[0].name;
    let r = &recap_hosts(&ev)[host];
    (
        r["changed"].as_u64().expect("changed count"),
        r["ok"].as_u64().expect("ok count"),
    )
}

/// `dpkg-query`'s status and version of `PKG` inside the host ("" when unknown).
fn dpkg_status(lab: &LabGuard) -> String {
    let out = lab.exec(
        "1",
        &format!("dpkg-query -W -f='${{db:Status-Abbrev}}|${{Version}}' {PKG} 2>/dev/null"),
    );
    text(&out.stdout).trim().to_string()
}

#[test]
fn apt_installs_upgrades_and_removes_by_name_from_a_served_repository() {
    lab_fixture::require_root();
    require_tools();
    let lab = LabGuard::up("aptrepo", 1);
    let host = lab.hosts[0].clone();
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("served.yml"), PLAYBOOK).unwrap();
    let repo = work.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    build_deb(work.path(), &repo, "1.0");
    index(&repo);
    let machine_ip = lab.state().plan().machine_mgmt_ip().to_string();
    let server = Server::start(&repo, &machine_ip, work.path().join("http.log"));
    let vars = |state: &str, refresh: bool| serde_json::json!({"repo_url": server.url, "pkg_state": state, "refresh": refresh});
    assert!(
        Command::new("dpkg")
            .args(["-s", PKG])
            .output()
            .is_ok_and(|o| !o.status.success()),
        "{PKG} is installed on this machine: remove it (dpkg -r {PKG})"
    );

    // Install by name: the Debian source goes, the served one comes (with its
    // apt-get update), the package is installed from it.
    assert_eq!(
        run(&lab, work.path(), "install", &vars("present", false), &[]),
        (3, 3),
        "first run: source removed, repository added, package installed"
    );
    assert_eq!(dpkg_status(&lab), "ii |1.0", "dpkg -s on the host");
    assert_eq!(
        lab.exec_ok("1", &format!("cat /usr/share/{PKG}/version")),
        "1.0\n"
    );
    assert!(
        server.fetches(&host.mgmt_ip, &format!("{PKG}_1.0_all.deb")) == 1,
        "the host did not fetch the .deb from the served repository:\n{}",
        server.log_text()
    );
    let sources = lab.exec_ok("1", "cat /etc/apt/sources.list.d/ferry-served.list");
    assert!(
        sources.contains(&format!("deb [trusted=yes] {} ./", server.url)),
        "sources file: {sources}"
    );
    assert_eq!(
        run(
            &lab,
            work.path(),
            "install-again",
            &vars("present", false),
            &[]
        ),
        (0, 3),
        "second run changes nothing"
    );

    // A newer version published: `present` keeps 1.0 (even after an update of
    // the cache, which alone is not a change), `--check` with `latest`
    // predicts the upgrade and changes nothing, `latest` upgrades.
    build_deb(work.path(), &repo, "1.1");
    index(&repo);
    assert_eq!(
        run(
            &lab,
            work.path(),
            "present-newer",
            &vars("present", true),
            &[]
        ),
        (0, 3),
        "state=present with a newer version available changes nothing"
    );
    assert_eq!(dpkg_status(&lab), "ii |1.0");
    assert_eq!(
        run(
            &lab,
            work.path(),
            "check-latest",
            &vars("latest", true),
            &["--check"]
        )
        .0,
        1,
        "--check predicts the upgrade"
    );
    assert_eq!(dpkg_status(&lab), "ii |1.0", "--check changed nothing");
    assert_eq!(
        run(&lab, work.path(), "latest", &vars("latest", true), &[]),
        (1, 3),
        "state=latest upgrades"
    );
    assert_eq!(dpkg_status(&lab), "ii |1.1", "dpkg -s after the upgrade");
    assert_eq!(
        lab.exec_ok("1", &format!("cat /usr/share/{PKG}/version")),
        "1.1\n"
    );
    assert_eq!(
        server.fetches(&host.mgmt_ip, &format!("{PKG}_1.1_all.deb")),
        1,
        "1.1 fetched once:\n{}",
        server.log_text()
    );
    assert_eq!(
        run(
            &lab,
            work.path(),
            "latest-again",
            &vars("latest", true),
            &[]
        ),
        (0, 3),
        "latest again changes nothing"
    );

    // Remove.
    assert_eq!(
        run(&lab, work.path(), "absent", &vars("absent", false), &[]),
        (1, 3),
        "state=absent removes"
    );
    let gone = lab.exec("1", &format!("dpkg -s {PKG}"));
    assert!(
        !gone.status.success() || !text(&gone.stdout).contains("Status: install ok installed"),
        "dpkg -s after removal: {}",
        text(&gone.stdout)
    );
    assert!(
        lab.exec("1", &format!("test -e /usr/share/{PKG}/version"))
            .status
            .code()
            == Some(1),
        "the package's file is gone"
    );
    assert_eq!(
        run(
            &lab,
            work.path(),
            "absent-again",
            &vars("absent", false),
            &[]
        ),
        (0, 3),
        "absent again changes nothing"
    );
    // The machine itself never saw the package: the host's root is an overlay.
    assert!(
        !Command::new("dpkg")
            .args(["-s", PKG])
            .output()
            .unwrap()
            .status
            .success(),
        "{PKG} leaked onto the machine"
    );
}
