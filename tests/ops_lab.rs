//! Issue 6: every host op ferry has, run with `ferry run` over SSH on a lab
//! host, checked as a user would:
//!
//! - `--check` on a fresh host changes nothing there (the host's overlay, its
//!   hostname, sysctl value and running services are the same before and
//!   after) and predicts exactly the tasks run 1 then changes (commands it
//!   cannot check, reported skipped, aside);
//! - run 1 succeeds, every task meant to change reports changed, and each op's
//!   effect is there (file content and mode, `dpkg -s`, `id`, hostname, sysctl,
//!   a live service pid, the git HEAD, the built binary, ...);
//! - run 2 reports changed=0 and leaves every managed file as it was (inode,
//!   mtime, mode, owner, content hash);
//! - the playbook uses every host op `ferry::ops::names()` lists (control ops
//!   that never touch the host are an explicit allow-list).
//!
//! The fixture is real: a `.deb` built with `dpkg-deb`, an OpenPGP key made
//! with `gpg`, an ed25519 key from `ssh-keygen`, a git repo served by
//! `file://` from the controller's /var/tmp (which lab hosts see), a local
//! wheel for pip. Needs root and those tools: fails naming what is missing.

#[path = "common/lab.rs"]
mod lab_fixture;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use lab_fixture::{LabGuard, recap_hosts, text};
use sha2::Digest;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Ops that run on the controller only and never touch the host.
const CONTROL_OPS: &[&str] = &[
    "debug",
    "set_fact",
    "assert",
    "fail",
    "meta",
    "pause",
    "include_vars",
    "add_host",
    "group_by",
];

/// Tasks that are ok on a fresh host too (they only read, or the state is
/// already there): everything else must report changed in run 1.
const OK_ON_FRESH_HOST: &[&str] = &[
    "ping",
    "setup",
    "stat a system file",
    "slurp a system file",
    "package already installed",
    "modprobe a built-in module",
    "wait for the service's port",
    "wait for a file's content",
];

/// The playbook: `@DIR@` is the fixture directory (controller side, also seen
/// by the host), `@REPO@` the git repo URL, `@PUBKEY@` an ssh public key.
/// Every task is `- name:` then the op as the next key, so the op of each task
/// can be read off the text.
const PLAYBOOK: &str = r#"---
- name: every host op on a lab host
  hosts: all
  gather_facts: false
  vars:
    greeting: hello from the lab
  tasks:
    - name: ping
      ping:
    - name: setup
      setup:
    - name: base directory
      file: {path: /srv/opslab, state: directory, mode: "0755"}
    - name: raw, guarded by its output
      raw: "if [ -e /srv/opslab/raw.out ]; then echo kept; else echo raw > /srv/opslab/raw.out && echo made; fi"
      register: raw_out
      changed_when: "'made' in raw_out.stdout"
    - name: command once
      command: touch /srv/opslab/command.out
      args:
        creates: /srv/opslab/command.out
    - name: shell once
      shell: echo "shell $((6 * 7))" > /srv/opslab/shell.out
      args:
        creates: /srv/opslab/shell.out
    - name: script once
      script: opslab-script.sh /srv/opslab/script.out first second
      args:
        creates: /srv/opslab/script.out
    - name: copy content
      copy: {content: "copied\n", dest: /srv/opslab/copy.txt, mode: "0640"}
    - name: template
      template: {src: opslab.j2, dest: /srv/opslab/template.txt, mode: "0644"}
    - name: lineinfile
      lineinfile: {path: /srv/opslab/line.conf, line: "answer = 42", create: true, mode: "0644"}
    - name: blockinfile
      blockinfile:
        path: /srv/opslab/block.conf
        create: true
        block: |
          first line
          second line
    - name: the file replace edits
      copy: {content: "alpha=1\nbeta=2\n", dest: /srv/opslab/replace.conf, force: false}
    - name: replace
      replace: {path: /srv/opslab/replace.conf, regexp: '^alpha=1$', replace: 'alpha=one'}
    - name: ini_file
      ini_file: {path: /srv/opslab/app.ini, section: main, option: mode, value: lab}
    - name: stat a system file
      stat: {path: /etc/debian_version, checksum_algorithm: sha256}
      register: st
    - name: slurp a system file
      slurp: {src: /etc/debian_version}
      register: sl
    - name: keep what stat and slurp saw
      copy:
        content: "{{ st.stat.checksum }} {{ sl.content | b64decode }}"
        dest: /srv/opslab/stat_slurp.txt
    - name: fetch a file to the controller
      fetch: {src: /etc/debian_version, dest: "@DIR@/fetched/debian_version", flat: true}
    - name: get_url from the host's own file
      get_url: {url: "file:///etc/debian_version", dest: /srv/opslab/debian_version, mode: "0600"}
    - name: unarchive target
      file: {path: /srv/opslab/app, state: directory, mode: "0755"}
    - name: unarchive
      unarchive: {src: opslab-app.tar.gz, dest: /srv/opslab/app}
    - name: apt from a local deb
      apt: {deb: ferrylab-demo_1.0_all.deb}
    - name: package already installed
      package: {name: coreutils, state: present}
    - name: apt_key
      apt_key: {file: opslab-key.asc, keyring: /etc/apt/trusted.gpg.d/opslab.asc}
    - name: apt_repository
      apt_repository:
        repo: deb [trusted=yes] file:/srv/opslab/repo ./
        filename: opslab
        update_cache: false
    - name: wheel directory
      copy: {src: compatdemo-1.0-py3-none-any.whl, dest: /srv/opslab/wheels/, mode: "0644"}
    - name: pip into a venv from a local wheel
      pip:
        name: compatdemo
        virtualenv: /opt/opslab-venv
        virtualenv_command: /usr/bin/python3 -m venv
        extra_args: --no-index --find-links /srv/opslab/wheels
    - name: service by command and pidfile
      service:
        name: opslab-http
        state: started
        start_command: /usr/bin/python3 -m http.server 7070 --bind 127.0.0.1 --directory /srv/opslab
        pidfile: /run/opslab-http.pid
    - name: systemd by command and pidfile
      systemd:
        name: opslab-sleep
        state: started
        start_command: sleep 100000
        pidfile: /run/opslab-sleep.pid
    - name: wait for the service's port
      wait_for: {host: 127.0.0.1, port: 7070, timeout: 30}
    - name: wait for a file's content
      wait_for: {path: /srv/opslab/copy.txt, search_regex: "^copied$", timeout: 30}
    - name: sysctl in its own file
      sysctl:
        name: net.ipv4.ip_forward
        value: "1"
        sysctl_file: /etc/sysctl.d/90-opslab.conf
        reload: true
    - name: modprobe a built-in module
      modprobe: {name: kernel, state: present}
    - name: group
      group: {name: opslabgrp, gid: 4811}
    - name: user
      user:
        name: opslabuser
        uid: 4811
        group: opslabgrp
        shell: /bin/sh
        home: /home/opslabuser
        create_home: true
        comment: Ops Lab
    - name: authorized_key
      authorized_key: {user: opslabuser, key: "@PUBKEY@"}
    - name: hostname
      hostname: {name: opslab-renamed}
    - name: git checkout
      git: {repo: "@REPO@", dest: /srv/opslab/src, version: main}
    - name: build
      build: {src: /srv/opslab/src, prefix: /srv/opslab/prefix}
"#;

const TEMPLATE: &str =
    "host={{ inventory_hostname }}\ngreeting={{ greeting }}\nfamily={{ ansible_os_family }}\n";

const SCRIPT: &str = "#!/bin/sh\nset -e\nout=$1; shift\necho \"script $*\" > \"$out\"\n";

fn run_tool(what: &str, cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run ({e}); install it"));
    assert!(
        out.status.success(),
        "{what} exited {}: {}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Everything the playbook needs on the controller, in a fresh /var/tmp dir.
struct Fixture {
    dir: tempfile::TempDir,
    playbook: PathBuf,
    pubkey: String,
}

fn git(dir: &Path, args: &[&str]) {
    run_tool(
        &format!("git {args:?}"),
        Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t", "-C"])
            .arg(dir)
            .args(args),
    );
}

fn fixture() -> Fixture {
    let dir = tempfile::Builder::new()
        .prefix("ferry-opslab")
        .tempdir_in("/var/tmp")
        .unwrap();
    let d = dir.path();
    let files = d.join("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::create_dir_all(d.join("templates")).unwrap();
    std::fs::write(d.join("templates/opslab.j2"), TEMPLATE).unwrap();
    std::fs::write(files.join("opslab-script.sh"), SCRIPT).unwrap();
    let compat = Path::new(ROOT).join("tests/ansible_compat/files");
    std::fs::copy(
        compat.join("compat-app.tar.gz"),
        files.join("opslab-app.tar.gz"),
    )
    .unwrap();
    std::fs::copy(
        compat.join("compatdemo-1.0-py3-none-any.whl"),
        files.join("compatdemo-1.0-py3-none-any.whl"),
    )
    .unwrap();

    // A tiny .deb.
    let pkg = d.join("pkg");
    std::fs::create_dir_all(pkg.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(pkg.join("usr/share/ferrylab-demo")).unwrap();
    std::fs::write(
        pkg.join("DEBIAN/control"),
        "Package: ferrylab-demo\nVersion: 1.0\nArchitecture: all\n\
         Maintainer: ferry tests <ferry@example.invalid>\n\
         Description: a package built by tests/ops_lab.rs\n",
    )
    .unwrap();
    std::fs::write(pkg.join("usr/share/ferrylab-demo/VERSION"), "1.0\n").unwrap();
    run_tool(
        "dpkg-deb --build (install dpkg)",
        Command::new("dpkg-deb")
            .arg("--root-owner-group")
            .arg("--build")
            .arg(&pkg)
            .arg(files.join("ferrylab-demo_1.0_all.deb")),
    );

    // An OpenPGP key, armored; its agent stopped again.
    let gnupg = d.join("gnupg");
    std::fs::create_dir_all(&gnupg).unwrap();
    std::fs::set_permissions(&gnupg, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    run_tool(
        "gpg --quick-gen-key (install gpg)",
        Command::new("gpg").env("GNUPGHOME", &gnupg).args([
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--quick-gen-key",
            "opslab <opslab@example.invalid>",
            "ed25519",
            "sign",
            "never",
        ]),
    );
    let key = run_tool(
        "gpg --export",
        Command::new("gpg").env("GNUPGHOME", &gnupg).args([
            "--armor",
            "--export",
            "opslab@example.invalid",
        ]),
    );
    let _ = Command::new("gpgconf")
        .env("GNUPGHOME", &gnupg)
        .args(["--kill", "gpg-agent"])
        .output();
    assert!(
        key.contains("BEGIN PGP PUBLIC KEY BLOCK"),
        "gpg exported {key}"
    );
    std::fs::write(files.join("opslab-key.asc"), &key).unwrap();

    // An ssh key for authorized_key.
    run_tool(
        "ssh-keygen (install openssh-client)",
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "opslab", "-f"])
            .arg(d.join("id_opslab")),
    );
    let pubkey = std::fs::read_to_string(d.join("id_opslab.pub"))
        .unwrap()
        .trim()
        .to_string();

    // A git repo with a configure/make project for git + build.
    let repo = d.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    let configure = "#!/bin/sh\nprefix=/usr/local\nfor a in \"$@\"; do\n  case \"$a\" in --prefix=*) prefix=\"${a#--prefix=}\";; esac\ndone\nprintf 'PREFIX = %s\\n' \"$prefix\" > config.mk\n";
    std::fs::write(repo.join("configure"), configure).unwrap();
    std::fs::set_permissions(
        repo.join("configure"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(
        repo.join("Makefile"),
        "include config.mk\n\nhello: hello.c\n\tcc -O0 -o hello hello.c\n\n\
         install: hello\n\tmkdir -p $(PREFIX)/bin\n\tcp hello $(PREFIX)/bin/hello\n",
    )
    .unwrap();
    std::fs::write(
        repo.join("hello.c"),
        "#include <stdio.h>\nint main(void) { puts(\"hello from opslab\"); return 0; }\n",
    )
    .unwrap();
    std::fs::write(repo.join(".gitignore"), "config.mk\nhello\n.ferry-build\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "opslab"]);

    let pb = PLAYBOOK
        .replace("@DIR@", &d.display().to_string())
        .replace("@REPO@", &format!("file://{}", repo.display()))
        .replace("@PUBKEY@", &pubkey);
    let playbook = d.join("playbook.yml");
    std::fs::write(&playbook, pb).unwrap();
    Fixture {
        dir,
        playbook,
        pubkey,
    }
}

/// The op each task of [`PLAYBOOK`] uses, by task name.
fn playbook_ops() -> BTreeMap<String, String> {
    let mut ops = BTreeMap::new();
    let mut lines = PLAYBOOK.lines().peekable();
    while let Some(l) = lines.next() {
        if let Some(name) = l.strip_prefix("    - name: ") {
            let next = lines.next().expect("a task has an op line");
            let op = next.trim().split(':').next().expect("op key").to_string();
            ops.insert(name.to_string(), op);
        }
    }
    ops
}

/// One run's events for `host`: tasks that changed, tasks skipped, recap changed.
struct RunEvents {
    changed: BTreeSet<String>,
    skipped: BTreeSet<String>,
    ok: BTreeSet<String>,
    ops_run: BTreeSet<String>,
    recap_changed: u64,
}

fn run_events(events: &[serde_json::Value], host: &str) -> RunEvents {
    let mut r = RunEvents {
        changed: BTreeSet::new(),
        skipped: BTreeSet::new(),
        ok: BTreeSet::new(),
        ops_run: BTreeSet::new(),
        recap_changed: 0,
    };
    for ev in events {
        match ev["event"].as_str() {
            Some("task_start") => {
                r.ops_run
                    .insert(ev["op"].as_str().unwrap_or("").to_string());
            }
            Some("host_result") if ev["host"] == host => {
                let task = ev["task"].as_str().unwrap_or("").to_string();
                if ev["changed"] == true {
                    r.changed.insert(task);
                } else if ev["outcome"] == "skipped" {
                    r.skipped.insert(task);
                } else {
                    r.ok.insert(task);
                }
            }
            _ => {}
        }
    }
    r.recap_changed = recap_hosts(events)[host]["changed"].as_u64().unwrap_or(0);
    r
}

fn ferry_run(lab: &LabGuard, what: &str, fx: &Fixture, flags: &[&str]) -> RunEvents {
    let host = lab.hosts[0].name.clone();
    let events = fx.dir.path().join(format!("events-{what}.jsonl"));
    let pb = fx.playbook.display().to_string();
    let mut args: Vec<&str> = flags.to_vec();
    args.push(&pb);
    let (_out, ev) = lab.run_ok(what, &args, &events);
    run_events(&ev, &host)
}

/// Host state outside files that check mode must not touch.
fn live_state(lab: &LabGuard, host: &str) -> String {
    lab.exec_ok(
        host,
        "hostname; sysctl -n net.ipv4.ip_forward; \
         ls /run/opslab-*.pid 2>/dev/null; dpkg-query -W -f='${Status}\\n' ferrylab-demo 2>&1; \
         id opslabuser 2>&1; true",
    )
}

/// Paths the playbook manages on the host (files and the directories holding them).
const MANAGED: &[&str] = &[
    "/srv/opslab",
    "/opt/opslab-venv",
    "/home/opslabuser",
    "/etc/hostname",
    "/etc/passwd",
    "/etc/group",
    "/etc/shadow",
    "/etc/sysctl.d/90-opslab.conf",
    "/etc/apt/trusted.gpg.d/opslab.asc",
    "/etc/apt/sources.list.d/opslab.list",
    "/usr/share/ferrylab-demo",
    "/var/lib/dpkg/status",
    "/run/opslab-http.pid",
    "/run/opslab-sleep.pid",
];

/// Inode, mtime, mode, owner, size and sha256 of every managed path (recursively).
fn snapshot(lab: &LabGuard, host: &str) -> String {
    let paths = MANAGED.join(" ");
    lab.exec_ok(
        host,
        &format!(
            "find {paths} -printf '%p %y %i %T@ %m %u:%g %s %l\\n' | sort; \
             find {paths} -type f -print0 | sort -z | xargs -0 sha256sum"
        ),
    )
}

fn controller_fetched(fx: &Fixture) -> Option<(u64, i64, String)> {
    let p = fx.dir.path().join("fetched/debian_version");
    let m = std::fs::metadata(&p).ok()?;
    Some((
        m.ino(),
        m.mtime_nsec() + m.mtime() * 1_000_000_000,
        std::fs::read_to_string(&p).unwrap(),
    ))
}

/// What a user checks after run 1, op by op.
fn assert_effects(lab: &LabGuard, host: &str, fx: &Fixture) {
    let sh = |cmd: &str| lab.exec_ok(host, cmd);
    let host_file = |p: &str| sh(&format!("cat {p}"));
    let mode = |p: &str| sh(&format!("stat -c '%a %U:%G' {p}")).trim().to_string();
    let debian_version = std::fs::read_to_string("/etc/debian_version").unwrap();

    assert_eq!(mode("/srv/opslab"), "755 root:root", "file");
    assert_eq!(host_file("/srv/opslab/raw.out"), "raw\n", "raw");
    assert_eq!(mode("/srv/opslab/command.out"), "644 root:root", "command");
    assert_eq!(host_file("/srv/opslab/shell.out"), "shell 42\n", "shell");
    assert_eq!(
        host_file("/srv/opslab/script.out"),
        "script first second\n",
        "script"
    );
    assert_eq!(host_file("/srv/opslab/copy.txt"), "copied\n", "copy");
    assert_eq!(mode("/srv/opslab/copy.txt"), "640 root:root", "copy mode");
    assert_eq!(
        host_file("/srv/opslab/template.txt"),
        format!("host={host}\ngreeting=hello from the lab\nfamily=Debian\n"),
        "template (with a fact from setup)"
    );
    assert_eq!(
        host_file("/srv/opslab/line.conf"),
        "answer = 42\n",
        "lineinfile"
    );
    assert_eq!(
        host_file("/srv/opslab/block.conf"),
        "# BEGIN ANSIBLE MANAGED BLOCK\nfirst line\nsecond line\n# END ANSIBLE MANAGED BLOCK\n",
        "blockinfile"
    );
    assert_eq!(
        host_file("/srv/opslab/replace.conf"),
        "alpha=one\nbeta=2\n",
        "replace"
    );
    assert_eq!(
        host_file("/srv/opslab/app.ini"),
        // As Ansible writes a new file: an empty first line, then the section.
        "\n[main]\nmode = lab\n",
        "ini_file"
    );
    let sha = format!("{:x}", sha2::Sha256::digest(debian_version.as_bytes()));
    assert_eq!(
        host_file("/srv/opslab/stat_slurp.txt"),
        format!("{sha} {debian_version}"),
        "stat checksum + slurp content"
    );
    assert_eq!(
        controller_fetched(fx).map(|f| f.2),
        Some(debian_version.clone()),
        "fetch"
    );
    assert_eq!(
        host_file("/srv/opslab/debian_version"),
        debian_version,
        "get_url"
    );
    assert_eq!(
        mode("/srv/opslab/debian_version"),
        "600 root:root",
        "get_url mode"
    );
    let archived = run_tool(
        "tar -tzf",
        Command::new("tar")
            .arg("-tzf")
            .arg(fx.dir.path().join("files/opslab-app.tar.gz")),
    );
    for member in archived.lines().filter(|m| !m.ends_with('/')) {
        sh(&format!("test -f /srv/opslab/app/{member}"));
    }
    assert!(
        sh("dpkg -s ferrylab-demo").contains("Status: install ok installed"),
        "apt deb: dpkg -s"
    );
    assert_eq!(
        host_file("/usr/share/ferrylab-demo/VERSION"),
        "1.0\n",
        "apt deb"
    );
    assert_eq!(
        host_file("/etc/apt/trusted.gpg.d/opslab.asc"),
        std::fs::read_to_string(fx.dir.path().join("files/opslab-key.asc")).unwrap(),
        "apt_key"
    );
    assert_eq!(
        host_file("/etc/apt/sources.list.d/opslab.list"),
        "deb [trusted=yes] file:/srv/opslab/repo ./\n",
        "apt_repository"
    );
    assert_eq!(
        sh("/opt/opslab-venv/bin/python -c 'import compatdemo; print(compatdemo.VERSION)'"),
        "1.0\n",
        "pip"
    );
    for pidfile in ["/run/opslab-http.pid", "/run/opslab-sleep.pid"] {
        sh(&format!("kill -0 \"$(cat {pidfile})\""));
    }
    assert_eq!(
        sh(
            "python3 -c \"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:7070/copy.txt').read().decode(), end='')\""
        ),
        "copied\n",
        "service: the started server answers"
    );
    assert_eq!(sh("sysctl -n net.ipv4.ip_forward"), "1\n", "sysctl running");
    assert_eq!(
        host_file("/etc/sysctl.d/90-opslab.conf"),
        "net.ipv4.ip_forward=1\n",
        "sysctl_file"
    );
    assert_eq!(
        sh("id opslabuser"),
        "uid=4811(opslabuser) gid=4811(opslabgrp) groups=4811(opslabgrp)\n",
        "user, group"
    );
    assert_eq!(
        sh("getent passwd opslabuser"),
        "opslabuser:x:4811:4811:Ops Lab:/home/opslabuser:/bin/sh\n",
        "user"
    );
    assert_eq!(
        host_file("/home/opslabuser/.ssh/authorized_keys"),
        format!("{}\n", fx.pubkey),
        "authorized_key"
    );
    assert_eq!(
        mode("/home/opslabuser/.ssh/authorized_keys"),
        "600 opslabuser:opslabgrp",
        "authorized_key mode"
    );
    assert_eq!(sh("hostname"), "opslab-renamed\n", "hostname");
    assert_eq!(
        host_file("/etc/hostname"),
        "opslab-renamed\n",
        "/etc/hostname"
    );
    let head = run_tool(
        "git rev-parse",
        Command::new("git")
            .arg("-C")
            .arg(fx.dir.path().join("repo"))
            .args(["rev-parse", "HEAD"]),
    );
    assert_eq!(
        sh("git -C /srv/opslab/src rev-parse HEAD"),
        head,
        "git HEAD"
    );
    assert_eq!(
        sh("/srv/opslab/prefix/bin/hello"),
        "hello from opslab\n",
        "build: the installed binary runs"
    );
}

fn lab() -> LabGuard {
    LabGuard::up("opslab", 1)
}

/// `--check` on a fresh host changes nothing and predicts run 1's changes.
#[test]
fn check_on_a_fresh_host_predicts_the_first_run() {
    let fx = fixture();
    let lab = lab();
    let host = lab.hosts[0].name.clone();
    let (before, live_before) = (lab.overlay_listing(1), live_state(&lab, &host));
    let check = ferry_run(&lab, "check", &fx, &["--check"]);
    assert_eq!(
        before,
        lab.overlay_listing(1),
        "--check changed files on the host"
    );
    assert_eq!(
        live_before,
        live_state(&lab, &host),
        "--check changed the host's live state"
    );
    assert_eq!(
        controller_fetched(&fx),
        None,
        "--check wrote fetch's controller copy"
    );
    let run1 = ferry_run(&lab, "run1", &fx, &[]);
    let expected: BTreeSet<String> = run1.changed.difference(&check.skipped).cloned().collect();
    assert_eq!(
        check.changed, expected,
        "--check predicted other changes than run 1 made (check skipped {:?})",
        check.skipped
    );
    // What check mode cannot predict, and only that: commands (their effect
    // is unknown) and the
    // build of a tree a check-mode git clone would make (its content is not
    // recorded, so the build is "not checked").
    let not_predicted: BTreeSet<String> = [
        "raw, guarded by its output",
        "command once",
        "shell once",
        "script once",
        "build",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(check.skipped, not_predicted, "tasks --check skipped");
    assert!(
        check.changed.len() >= 20,
        "--check predicted only {:?}",
        check.changed
    );
}

/// Run 1 changes what it should, with the effects a user checks; run 2 changes nothing.
#[test]
fn every_host_op_changes_once_then_is_idempotent() {
    let fx = fixture();
    let lab = lab();
    let host = lab.hosts[0].name.clone();
    let run1 = ferry_run(&lab, "run1", &fx, &[]);
    let ops = playbook_ops();
    let should_change: BTreeSet<String> = ops
        .keys()
        .filter(|t| !OK_ON_FRESH_HOST.contains(&t.as_str()))
        .cloned()
        .collect();
    assert_eq!(run1.changed, should_change, "run 1's changed tasks");
    assert_eq!(run1.recap_changed, should_change.len() as u64);
    let used: BTreeSet<String> = ops.values().cloned().collect();
    assert_eq!(
        run1.ops_run, used,
        "the ops run (events) are the ops of the playbook"
    );
    assert_effects(&lab, &host, &fx);

    let (snap1, fetched1) = (snapshot(&lab, &host), controller_fetched(&fx));
    let pids1 = lab.exec_ok(&host, "cat /run/opslab-http.pid /run/opslab-sleep.pid");
    let run2 = ferry_run(&lab, "run2", &fx, &[]);
    assert_eq!(
        (run2.recap_changed, &run2.changed),
        (0, &BTreeSet::new()),
        "run 2 changed tasks"
    );
    assert!(run2.skipped.is_empty(), "run 2 skipped {:?}", run2.skipped);
    let snap2 = snapshot(&lab, &host);
    if snap1 != snap2 {
        let a: BTreeSet<&str> = snap1.lines().collect();
        let b: BTreeSet<&str> = snap2.lines().collect();
        panic!(
            "run 2 touched managed files:\n- {:#?}\n+ {:#?}",
            a.difference(&b).collect::<Vec<_>>(),
            b.difference(&a).collect::<Vec<_>>()
        );
    }
    assert_eq!(
        fetched1,
        controller_fetched(&fx),
        "run 2 rewrote fetch's copy"
    );
    assert_eq!(
        pids1,
        lab.exec_ok(&host, "cat /run/opslab-http.pid /run/opslab-sleep.pid"),
        "run 2 restarted a service"
    );
    // Stop what the playbook started (the lab's teardown would too).
    lab.exec_ok(
        &host,
        "kill \"$(cat /run/opslab-http.pid)\" \"$(cat /run/opslab-sleep.pid)\"",
    );
}

/// A new host op without a task in the lab playbook fails here.
#[test]
fn the_lab_playbook_uses_every_host_op() {
    let used: BTreeSet<String> = playbook_ops().into_values().collect();
    let missing: Vec<&str> = ferry::ops::names()
        .filter(|n| !CONTROL_OPS.contains(n) && !used.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "host ops without a task in tests/ops_lab.rs's playbook: {missing:?}"
    );
    for op in CONTROL_OPS {
        assert!(
            ferry::ops::lookup(op).is_some(),
            "CONTROL_OPS lists `{op}`, which is no op (any more)"
        );
    }
    for op in &used {
        assert!(
            ferry::ops::lookup(op).is_some(),
            "the playbook uses unknown op {op}"
        );
    }
}
