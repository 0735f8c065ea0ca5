//! Check mode on the local connection (no lab needed): `ferry run --check`
//! sees what earlier tasks would have made and changes nothing; the
//! `check_mode:` keyword; `ansible_check_mode`; the recap's `not_checked`;
//! the `--diff` output of copy, template, lineinfile, ini_file and sysctl
//! (insta snapshot), the same in check mode and in the real run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

struct Run {
    out: Output,
    events: Vec<Value>,
}

impl Run {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    fn show(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.out.status,
            self.stdout(),
            String::from_utf8_lossy(&self.out.stderr)
        )
    }
    /// (outcome, not_checked) of each task's host_result, by task name.
    fn results(&self) -> Vec<(String, String, bool)> {
        self.events
            .iter()
            .filter(|e| e["event"] == "host_result")
            .map(|e| {
                (
                    e["task"].as_str().unwrap_or("").to_string(),
                    e["outcome"].as_str().unwrap_or("").to_string(),
                    e["not_checked"] == true,
                )
            })
            .collect()
    }
    fn outcome(&self, task: &str) -> String {
        self.results()
            .into_iter()
            .find(|r| r.0 == task)
            .unwrap_or_else(|| panic!("no result for `{task}`: {}", self.show()))
            .1
    }
    fn recap(&self) -> &Value {
        self.events
            .iter()
            .find(|e| e["event"] == "recap")
            .expect("a recap event")
    }
}

/// A playbook dir with a local inventory (host `box`) and `d` = a fresh work dir.
struct Setup {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    work: PathBuf,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_path_buf();
    let work = base.join("work");
    std::fs::create_dir(&work).unwrap();
    std::fs::write(
        base.join("inventory.yml"),
        "all:\n  hosts:\n    box:\n      ansible_connection: local\n",
    )
    .unwrap();
    Setup {
        _tmp: tmp,
        base,
        work,
    }
}

fn ferry(s: &Setup, pb: &str, flags: &[&str]) -> Run {
    let pb_path = s.base.join("pb.yml");
    std::fs::write(&pb_path, pb).unwrap();
    let events = s.base.join(format!("events-{}.jsonl", flags.join("")));
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("run")
        .arg("-i")
        .arg(s.base.join("inventory.yml"))
        .arg("-e")
        .arg(format!("d={}", s.work.display()))
        .args(flags)
        .arg("--events")
        .arg(&events)
        .arg(&pb_path)
        .current_dir(&s.base)
        .output()
        .expect("run ferry");
    let events = std::fs::read_to_string(&events)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("events are JSON"))
        .collect();
    Run { out, events }
}

/// Every path below `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

const WOULD_BE: &str = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: nested dirs
      file: {path: "{{ d }}/a/b", state: directory, mode: "0750"}
    - name: a file in them
      copy: {content: "one\n", dest: "{{ d }}/a/b/f"}
    - name: edit the would-be content
      lineinfile: {path: "{{ d }}/a/b/f", line: two}
    - name: the same line again
      lineinfile: {path: "{{ d }}/a/b/f", line: two}
    - name: stat it
      stat: {path: "{{ d }}/a/b/f"}
      register: st
    - name: it is what the tasks before would have made
      assert:
        that:
          - st.stat.exists
          - st.stat.size == 8
          - st.stat.mode == '0644'
    - name: a link and a file through it
      file: {src: "{{ d }}/a/b", dest: "{{ d }}/l", state: link}
    - name: the file is there through the link
      copy: {content: "one\ntwo\n", dest: "{{ d }}/l/f"}
    - name: a link to the file
      file: {src: "{{ d }}/a/b/f", dest: "{{ d }}/fl", state: link}
    - name: write through that link
      copy: {content: "through the link\n", dest: "{{ d }}/fl"}
    - name: stat the file behind it
      stat: {path: "{{ d }}/a/b/f"}
      register: behind
    - name: the write went through the link
      assert: {that: "behind.stat.size == 17 and not behind.stat.islnk"}
    - name: an unguarded command
      command: "touch {{ d }}/cmd"
      register: c
    - name: a task using its output
      copy: {content: "{{ c.stdout }}", dest: "{{ d }}/out"}
    - name: a guarded command whose file would exist
      command: "touch {{ d }}/a/b/f"
      args: {creates: "{{ d }}/a/b/f"}
    - name: remove the tree
      file: {path: "{{ d }}/a", state: absent}
    - name: stat it again
      stat: {path: "{{ d }}/a/b/f"}
      register: gone
    - name: it would be gone
      assert: {that: not gone.stat.exists}
"#;

#[test]
fn check_sees_what_earlier_tasks_would_have_made_and_changes_nothing() {
    let s = setup();
    let check = ferry(&s, WOULD_BE, &["--check"]);
    assert!(check.out.status.success(), "{}", check.show());
    assert_eq!(listing(&s.work), Vec::<String>::new(), "--check wrote");
    for (task, want) in [
        ("nested dirs", "changed"),
        ("a file in them", "changed"),
        ("edit the would-be content", "changed"),
        ("the same line again", "ok"),
        ("the file is there through the link", "ok"),
        ("an unguarded command", "skipped"),
        ("a task using its output", "skipped"),
        ("a guarded command whose file would exist", "ok"),
        ("write through that link", "changed"),
        ("remove the tree", "changed"),
    ] {
        assert_eq!(check.outcome(task), want, "{task}: {}", check.show());
    }
    let not_checked: Vec<String> = check
        .results()
        .into_iter()
        .filter(|r| r.2)
        .map(|r| r.0)
        .collect();
    assert_eq!(
        not_checked,
        ["an unguarded command", "a task using its output"]
    );
    let recap = check.recap();
    assert_eq!(recap["check"], true);
    assert_eq!(recap["hosts"]["box"]["not_checked"], 2);
    assert_eq!(recap["hosts"]["box"]["skipped"], 2);
    let text = check.stdout();
    assert!(text.contains("not_checked=2"), "{text}");
    assert!(
        text.contains("skipping: [box] => not checked: uses `c`"),
        "{text}"
    );
    assert!(text.contains("2 task results were not checked"), "{text}");

    // The real run changes what check mode said, and the same assertions hold.
    let real = ferry(&s, WOULD_BE, &[]);
    assert!(real.out.status.success(), "{}", real.show());
    for (task, outcome, _) in check.results() {
        if outcome != "skipped" {
            assert_eq!(real.outcome(&task), outcome, "{task}");
        }
    }
    assert_eq!(real.recap()["check"], false);
    assert_eq!(real.recap()["hosts"]["box"]["not_checked"], 0);
    assert!(!real.stdout().contains("not_checked"), "{}", real.stdout());
    assert_eq!(listing(&s.work), ["cmd", "fl", "l", "out"]);
}

const KEYWORD: &str = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: runs for real even under --check
      copy: {content: "real {{ ansible_check_mode }}\n", dest: "{{ d }}/real"}
      check_mode: false
    - name: a read-only command that runs under --check
      command: "cat {{ d }}/real"
      check_mode: false
      changed_when: false
      register: r
    - name: its output is known
      copy: {content: "{{ r.stdout }}\n", dest: "{{ d }}/copied"}
    - name: always only checked
      copy: {content: "never\n", dest: "{{ d }}/never"}
      check_mode: true
    - name: a block in check mode
      check_mode: true
      block:
        - name: mode inside the block
          debug: {msg: "check={{ ansible_check_mode }}"}
        - name: command inside the block
          command: "touch {{ d }}/never2"
- hosts: all
  gather_facts: false
  check_mode: true
  tasks:
    - name: a play in check mode
      copy: {content: "x\n", dest: "{{ d }}/never3"}
"#;

#[test]
fn check_mode_keyword_runs_a_task_for_real_or_only_checks_it() {
    let s = setup();
    let check = ferry(&s, KEYWORD, &["--check"]);
    assert!(check.out.status.success(), "{}", check.show());
    assert_eq!(listing(&s.work), ["real"]);
    assert_eq!(
        std::fs::read_to_string(s.work.join("real"))
            .unwrap()
            .to_lowercase(),
        "real false\n",
        "ansible_check_mode is false in a check_mode: false task"
    );
    assert_eq!(check.outcome("its output is known"), "changed");
    assert_eq!(check.outcome("always only checked"), "changed");
    assert_eq!(check.recap()["hosts"]["box"]["not_checked"], 1);

    std::fs::remove_file(s.work.join("real")).unwrap();
    let real = ferry(&s, KEYWORD, &[]);
    assert!(real.out.status.success(), "{}", real.show());
    assert_eq!(listing(&s.work), ["copied", "real"]);
    assert_eq!(real.outcome("always only checked"), "changed");
    assert_eq!(real.outcome("command inside the block"), "skipped");
    assert_eq!(real.outcome("a play in check mode"), "changed");
    let msg = real
        .events
        .iter()
        .find(|e| e["event"] == "host_result" && e["task"] == "mode inside the block")
        .map(|e| e["msg"].as_str().unwrap_or("").to_lowercase());
    assert_eq!(msg.as_deref(), Some("check=true"), "{}", real.show());
    assert_eq!(real.recap()["hosts"]["box"]["not_checked"], 1);
}

const DIFFS: &str = r#"
- hosts: all
  gather_facts: false
  vars:
    name: diffed
  tasks:
    - name: copy
      copy: {content: "first\nsecond\n", dest: "{{ d }}/copied.txt"}
    - name: lineinfile on the copy
      lineinfile: {path: "{{ d }}/copied.txt", regexp: '^second', line: "second, edited"}
    - name: template
      template: {src: t.j2, dest: "{{ d }}/t.conf"}
    - name: ini base
      copy: {content: "[DEFAULT]\ndebug = false\n\n[libvirt]\nvirt_type = kvm\n", dest: "{{ d }}/nova.conf"}
    - name: ini_file
      ini_file: {path: "{{ d }}/nova.conf", section: libvirt, option: virt_type, value: qemu}
    - name: sysctl
      sysctl: {name: vm.swappiness, value: "10", sysctl_file: "{{ d }}/sysctl.conf", reload: false}
    - name: sysctl edit
      sysctl: {name: vm.swappiness, value: "20", sysctl_file: "{{ d }}/sysctl.conf", reload: false}
"#;

/// The diff lines of a run's output, the work dir and timings made stable.
fn diff_text(r: &Run, work: &Path) -> String {
    let timing = regex::Regex::new(r"\(\d+\.\d+s\)").unwrap();
    let text = r.stdout().replace(&work.display().to_string(), "WORK");
    timing
        .replace_all(&text, "(T)")
        .lines()
        .filter(|l| !l.starts_with("ran in "))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn diff_of_file_ops_in_check_mode_and_for_real() {
    let s = setup();
    std::fs::create_dir(s.base.join("templates")).unwrap();
    std::fs::write(
        s.base.join("templates/t.j2"),
        "name = {{ name }}\nlisten = 0.0.0.0\n",
    )
    .unwrap();
    let check = ferry(&s, DIFFS, &["--check", "--diff"]);
    assert!(check.out.status.success(), "{}", check.show());
    assert_eq!(listing(&s.work), Vec::<String>::new());
    let check_text = diff_text(&check, &s.work);
    insta::assert_snapshot!(check_text);
    let real = ferry(&s, DIFFS, &["--diff"]);
    assert!(real.out.status.success(), "{}", real.show());
    let real_text = diff_text(&real, &s.work);
    // The real run shows the same diffs; only the recap's check-mode column differs.
    let body = |t: &str| t.split("PLAY RECAP").next().unwrap().to_string();
    assert_eq!(body(&check_text), body(&real_text));
}

const MORE_OPS: &str = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: dir
      file: {path: "{{ d }}/m", state: directory}
    - name: keys file
      authorized_key: {user: root, path: "{{ d }}/m/keys", manage_dir: false, key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEt3cKhV0Fcl0gZmJYzTp0XrdUnk3pRDJCZBrIZbIbVr t@x"}
    - name: same key again
      authorized_key: {user: root, path: "{{ d }}/m/keys", manage_dir: false, key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEt3cKhV0Fcl0gZmJYzTp0XrdUnk3pRDJCZBrIZbIbVr t@x"}
    - name: block
      blockinfile: {path: "{{ d }}/m/hosts", create: true, block: "10.0.0.1 a\n10.0.0.2 b"}
    - name: replace in the block
      replace: {path: "{{ d }}/m/hosts", regexp: '(\d+) b$', replace: '\1 bee'}
    - name: replace again finds nothing
      replace: {path: "{{ d }}/m/hosts", regexp: '(\d+) b$', replace: '\1 bee'}
    - name: read it back
      slurp: {src: "{{ d }}/m/hosts"}
      register: hosts
    - name: copy what was read
      copy: {content: "{{ hosts.content | b64decode }}", dest: "{{ d }}/m/hosts.copy"}
    - name: the same from the host's side
      copy: {src: "{{ d }}/m/hosts", remote_src: true, dest: "{{ d }}/m/hosts.copy"}
    - name: touch
      file: {path: "{{ d }}/m/touched", state: touch, mode: "0600"}
    - name: hard link
      file: {src: "{{ d }}/m/hosts", dest: "{{ d }}/m/hosts.hard", state: hard}
    - name: hard link again
      file: {src: "{{ d }}/m/hosts", dest: "{{ d }}/m/hosts.hard", state: hard}
    - name: recurse
      file: {path: "{{ d }}/m", state: directory, mode: "0750", recurse: true}
    - name: recurse again
      file: {path: "{{ d }}/m", state: directory, mode: "0750", recurse: true}
    - name: wait for the file
      wait_for: {path: "{{ d }}/m/hosts", timeout: 5}
"#;

/// Tasks (by name) that changed, and that were skipped.
fn changed_and_skipped(r: &Run) -> (Vec<String>, Vec<String>) {
    let mut changed = Vec::new();
    let mut skipped = Vec::new();
    for (task, outcome, _) in r.results() {
        match outcome.as_str() {
            "changed" => changed.push(task),
            "skipped" => skipped.push(task),
            _ => {}
        }
    }
    (changed, skipped)
}

#[test]
fn check_predicts_the_first_run_of_more_ops() {
    let s = setup();
    let check = ferry(&s, MORE_OPS, &["--check"]);
    assert!(check.out.status.success(), "{}", check.show());
    assert_eq!(listing(&s.work), Vec::<String>::new(), "--check wrote");
    let real = ferry(&s, MORE_OPS, &[]);
    assert!(real.out.status.success(), "{}", real.show());
    let (check_changed, check_skipped) = changed_and_skipped(&check);
    let (real_changed, _) = changed_and_skipped(&real);
    assert!(check_skipped.is_empty(), "{check_skipped:?}");
    assert_eq!(check_changed, real_changed);
    assert_eq!(
        check_changed,
        [
            "dir",
            "keys file",
            "block",
            "replace in the block",
            "copy what was read",
            "touch",
            "hard link",
            "recurse"
        ]
    );
}

const NEW_OPS: &str = r#"
- hosts: all
  gather_facts: false
  vars:
    fetched: "{{ d }}/../fetched"
  tasks:
    - name: dir
      file: {path: "{{ d }}/x", state: directory}
    - name: unpack
      unarchive: {src: app.tar.gz, dest: "{{ d }}/x"}
    - name: unpack again
      unarchive: {src: app.tar.gz, dest: "{{ d }}/x"}
    - name: get a member
      get_url: {url: "file://{{ d }}/x/app/README", dest: "{{ d }}/readme.copy"}
    - name: read the copy
      slurp: {src: "{{ d }}/readme.copy"}
      register: sl
    - name: it is the member
      assert: {that: "sl.content | b64decode == 'hello\n'"}
    - name: fetch a member
      fetch: {src: "{{ d }}/x/app/README", dest: "{{ fetched }}/", flat: true}
    - name: copy it back
      copy: {src: "{{ fetched }}/README", dest: "{{ d }}/back"}
    - name: a guarded command
      command: "touch {{ d }}/made"
      args: {creates: "{{ d }}/made"}
    - name: stat what it would make
      stat: {path: "{{ d }}/made"}
    - name: fetch what it would make
      fetch: {src: "{{ d }}/made", dest: "{{ fetched }}/made", flat: true}
    - name: copy that back
      copy: {src: "{{ fetched }}/made", dest: "{{ d }}/made.back"}
"#;

/// unarchive records what it would extract (a later get_url file:// and a
/// second unarchive see it), fetch records its controller copy (a copy back
/// reads it), and what a skipped guarded command would make is unknown: the
/// tasks reading it are not checked.
#[test]
fn check_follows_unarchive_get_url_fetch_and_guarded_commands() {
    let s = setup();
    let src = s.base.join("src/app");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("README"), "hello\n").unwrap();
    std::fs::create_dir_all(s.base.join("files")).unwrap();
    let tar = Command::new("tar")
        .arg("-czf")
        .arg(s.base.join("files/app.tar.gz"))
        .arg("-C")
        .arg(s.base.join("src"))
        .arg("app")
        .status()
        .expect("tar on the controller");
    assert!(tar.success());
    let check = ferry(&s, NEW_OPS, &["--check"]);
    assert!(check.out.status.success(), "{}", check.show());
    assert_eq!(listing(&s.work), Vec::<String>::new(), "--check wrote");
    assert!(!s.base.join("fetched").exists(), "--check fetched");
    let want = [
        ("dir", "changed", false),
        ("unpack", "changed", false),
        ("unpack again", "ok", false),
        ("get a member", "changed", false),
        ("it is the member", "ok", false),
        ("fetch a member", "changed", false),
        ("copy it back", "changed", false),
        ("a guarded command", "skipped", true),
        ("stat what it would make", "skipped", true),
        ("fetch what it would make", "skipped", true),
        ("copy that back", "skipped", true),
    ];
    for (task, outcome, not_checked) in want {
        let r = check.results().into_iter().find(|r| r.0 == task);
        assert_eq!(
            r,
            Some((task.to_string(), outcome.to_string(), not_checked)),
            "{}",
            check.show()
        );
    }
    let real = ferry(&s, NEW_OPS, &[]);
    assert!(real.out.status.success(), "{}", real.show());
    for (task, outcome, not_checked) in want {
        if !not_checked {
            assert_eq!(real.outcome(task), outcome, "{task}: {}", real.show());
        }
    }
    assert_eq!(
        std::fs::read_to_string(s.work.join("made.back")).unwrap(),
        ""
    );
}
