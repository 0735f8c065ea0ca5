//! Ansible compatibility: every playbook in `tests/ansible_compat/` runs with
//! `ansible-playbook` against host 1 of a fresh lab and with `ferry run`
//! against host 2 (same inventory, `--limit`), twice each; the files under the
//! playbook's target dirs (paths, types, modes, owners, contents, link
//! targets) and the changed counts of both runs must be the same. Check mode:
//! `ferry run --check` on a fresh host changes nothing and predicts the first
//! real run's changed tasks. Bad input is refused before any host is touched.
//!
//! Needs root (the lab) and ansible from PyPI: the test uses
//! `$FERRY_ANSIBLE_VENV`, `/opt/ferry/ansible-venv` (what `.ci/setup` makes), or a venv it creates in
//! the temp dir with `pip install 'ansible>=12,<13'` (ansible-core plus the
//! community.general and ansible.posix collections that ini_file and sysctl
//! live in). When that cannot be installed it says so loudly and skips.

#[path = "common/lab.rs"]
mod lab_fixture;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use lab_fixture::LabGuard;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ansible_compat")
}

fn has_collections(venv: &Path) -> bool {
    venv.join("bin/ansible-playbook").exists()
        && std::fs::read_dir(venv.join("lib"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|py| {
                py.path()
                    .join("site-packages/ansible_collections/community/general")
                    .is_dir()
            })
}

/// A venv with ansible-playbook and the collections the corpus uses, found or made;
/// none to be had fails the test, naming what to install (CI installs it: a skip
/// here would hide that the comparison never ran).
fn ansible_venv() -> PathBuf {
    ansible_venv_found().unwrap_or_else(|| {
        panic!(
            "the Ansible comparison needs ansible-playbook with community.general: none in \
             $FERRY_ANSIBLE_VENV, /opt/ferry/ansible-venv or a venv of its own (python3 -m venv \
             && pip install 'ansible>=12,<13' failed); run `bash .ci/setup`"
        )
    })
}

fn ansible_venv_found() -> Option<PathBuf> {
    static VENV: OnceLock<Option<PathBuf>> = OnceLock::new();
    VENV.get_or_init(|| {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(v) = std::env::var_os("FERRY_ANSIBLE_VENV") {
            candidates.push(v.into());
        }
        candidates.push("/opt/ferry/ansible-venv".into());
        let own = std::env::temp_dir().join("ferry-ansible-compat-venv");
        candidates.push(own.clone());
        if let Some(v) = candidates.iter().find(|v| has_collections(v)) {
            return Some(v.clone());
        }
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&own)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(own.join("bin/pip"))
                .args(["install", "-q", "ansible>=12,<13"])
                .status()
                .is_ok_and(|s| s.success());
        if made && has_collections(&own) {
            return Some(own);
        }
        None
    })
    .clone()
}

/// What the playbook's header says about itself.
struct Header {
    targets: Vec<String>,
    files: Vec<String>,
    ignore: Vec<String>,
}

fn header(pb: &Path) -> Header {
    let text = std::fs::read_to_string(pb).unwrap();
    let field = |key: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(&format!("# {key}:")))
            .flat_map(|v| v.split_whitespace().map(str::to_string))
            .collect()
    };
    Header {
        targets: field("compat-targets"),
        files: field("compat-files"),
        ignore: field("compat-ignore"),
    }
}

/// A file:// repo on the controller (visible on the hosts, which overlay `/`):
/// branch main (two commits) and tag v1 on the first.
fn make_repo(dir: &Path) -> String {
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t", "-C"])
            .arg(dir)
            .args(args)
            .output()
            .expect("run git");
        assert!(out.status.success(), "git {args:?}: {out:?}");
    };
    std::fs::create_dir_all(dir).unwrap();
    git(&["init", "-q", "-b", "main"]);
    std::fs::write(dir.join("VERSION"), "1.0\n").unwrap();
    std::fs::write(dir.join("README"), "compat repo\n").unwrap();
    git(&["add", "."]);
    git(&["commit", "-qm", "one"]);
    git(&["tag", "v1"]);
    std::fs::write(dir.join("VERSION"), "2.0\n").unwrap();
    git(&["commit", "-qam", "two"]);
    format!("file://{}", dir.display())
}

fn ansible(venv: &Path, lab: &LabGuard, host: &str, pb: &Path, extra: &[String]) -> Output {
    ansible_with(venv, lab, &lab.inventory, host, pb, extra)
}

/// As [`ansible`], with an inventory of the test's own (the lab's hosts, other vars).
fn ansible_with(
    venv: &Path,
    lab: &LabGuard,
    inventory: &Path,
    host: &str,
    pb: &Path,
    extra: &[String],
) -> Output {
    let tmp = lab.state_dir.join("ansible-local");
    Command::new(venv.join("bin/ansible-playbook"))
        .arg("-i")
        .arg(inventory)
        .args(["-l", host])
        .args(extra)
        .arg(pb)
        .current_dir(pb.parent().unwrap())
        .env("ANSIBLE_REMOTE_TMP", "/var/tmp/ansible-compat")
        .env("ANSIBLE_LOCAL_TEMP", &tmp)
        .env("ANSIBLE_HOST_KEY_CHECKING", "False")
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
        .env("ANSIBLE_PYTHON_INTERPRETER", "/usr/bin/python3")
        .output()
        .expect("run ansible-playbook")
}

/// `changed=N` for `host` in ansible's PLAY RECAP.
fn ansible_changed(out: &Output, host: &str) -> u64 {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .skip_while(|l| !l.starts_with("PLAY RECAP"))
        .find(|l| l.split_whitespace().next() == Some(host))
        .unwrap_or_else(|| panic!("no recap line for {host} in:\n{text}"));
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("changed="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no changed= in {line}"))
}

/// One `ferry run`'s events: tasks (by name and location) that changed, tasks
/// skipped, and the recap's changed count.
#[derive(Debug)]
struct FerryRun {
    out: Output,
    changed_tasks: BTreeSet<String>,
    skipped_tasks: BTreeSet<String>,
    recap_changed: u64,
}

fn ferry(lab: &LabGuard, host: &str, pb: &Path, extra: &[String], flags: &[&str]) -> FerryRun {
    let events = lab.state_dir.join(format!(
        "events-{}.jsonl",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let out = Command::new(lab_fixture::ferry_bin())
        .arg("run")
        .arg("-i")
        .arg(&lab.inventory)
        .args(["-l", host])
        .args(extra)
        .args(flags)
        .arg("--events")
        .arg(&events)
        .arg(pb)
        .current_dir(pb.parent().unwrap())
        .output()
        .expect("run ferry");
    let text = std::fs::read_to_string(&events).unwrap_or_default();
    let (mut changed_tasks, mut skipped_tasks, mut recap_changed) =
        (BTreeSet::new(), BTreeSet::new(), 0);
    let mut loc_of: BTreeMap<String, String> = BTreeMap::new();
    for line in text.lines() {
        let ev: serde_json::Value = serde_json::from_str(line).expect("events are JSON");
        let s = |k: &str| ev[k].as_str().unwrap_or("").to_string();
        match ev["event"].as_str() {
            Some("task_start") => {
                loc_of.insert(s("task"), s("loc"));
            }
            Some("host_result") if ev["host"] == host => {
                let task = s("task");
                let key = format!("{task} @{}", loc_of.get(&task).cloned().unwrap_or_default());
                if ev["changed"] == true {
                    changed_tasks.insert(key);
                } else if ev["outcome"] == "skipped" {
                    skipped_tasks.insert(key);
                }
            }
            Some("recap") => {
                recap_changed = ev["hosts"][host]["changed"].as_u64().unwrap_or(0);
            }
            _ => {}
        }
    }
    FerryRun {
        out,
        changed_tasks,
        skipped_tasks,
        recap_changed,
    }
}

fn show(o: &Output) -> String {
    format!(
        "exit {}\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Paths, types, modes, owners, link targets and sha256 of everything under
/// the header's targets and files, as seen on `host`.
fn tree(lab: &LabGuard, host: &str, h: &Header) -> String {
    let prune: String = h
        .ignore
        .iter()
        .map(|n| format!("-name '{n}' -prune -o "))
        .collect();
    let mut script = String::new();
    for t in &h.targets {
        script.push_str(&format!(
            "find {t} {prune}-printf '%p %y %m %u %g %l\\n' | sort; \
             find {t} {prune}-type f -print | sort | xargs -r sha256sum; "
        ));
    }
    for f in &h.files {
        script.push_str(&format!("stat -c '%n %F %a %U %G' {f}; sha256sum {f}; "));
    }
    let out = lab.exec(host, &script);
    assert!(out.status.success(), "listing on {host}: {}", show(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn setup(playbook: &str) -> (PathBuf, Header, tempfile::TempDir, Vec<String>, LabGuard) {
    let pb = corpus_dir().join(playbook);
    let h = header(&pb);
    assert!(
        !h.targets.is_empty(),
        "{playbook}: no `# compat-targets:` line"
    );
    let repo_dir = tempfile::Builder::new()
        .prefix("ferry-compat-repo")
        .tempdir_in("/var/tmp")
        .unwrap();
    let repo = make_repo(repo_dir.path());
    let extra = vec!["-e".to_string(), format!("compat_repo={repo}")];
    let lab = LabGuard::up("compat", 2);
    (pb, h, repo_dir, extra, lab)
}

/// ansible-playbook on host 1, ferry run on host 2, twice each: same files,
/// same changed counts.
fn compat(playbook: &str) {
    let venv = ansible_venv();
    let (pb, h, _repo, extra, lab) = setup(playbook);
    let (a_host, f_host) = (lab.hosts[0].name.clone(), lab.hosts[1].name.clone());
    let mut a_counts = Vec::new();
    let mut f_runs = Vec::new();
    for _ in 0..2 {
        let a = ansible(&venv, &lab, &a_host, &pb, &extra);
        assert!(
            a.status.success(),
            "{playbook}: ansible-playbook failed: {}",
            show(&a)
        );
        a_counts.push(ansible_changed(&a, &a_host));
        let f = ferry(&lab, &f_host, &pb, &extra, &[]);
        assert!(
            f.out.status.success(),
            "{playbook}: ferry run failed: {}",
            show(&f.out)
        );
        f_runs.push(f);
    }
    let f_counts: Vec<u64> = f_runs.iter().map(|r| r.recap_changed).collect();
    assert_eq!(
        a_counts,
        f_counts,
        "{playbook}: changed counts (run 1, run 2) differ: ansible {a_counts:?}, ferry {f_counts:?}; \
         ferry's changed tasks: {:#?}",
        f_runs.iter().map(|r| &r.changed_tasks).collect::<Vec<_>>()
    );
    let events_total: usize = f_runs[0].changed_tasks.len();
    assert!(
        events_total > 0,
        "{playbook}: ferry's events show no changed task in run 1"
    );
    let (ta, tf) = (tree(&lab, &a_host, &h), tree(&lab, &f_host, &h));
    assert!(
        !ta.trim().is_empty(),
        "{playbook}: ansible made nothing under {:?}",
        h.targets
    );
    assert_eq!(
        ta, tf,
        "{playbook}: files differ (left ansible, right ferry)"
    );
}

/// `ferry run --check` on a fresh host changes nothing and says which tasks
/// would change: exactly those the first real run then changes (commands it
/// could not check, reported skipped, aside).
fn check_predicts(playbook: &str) {
    let (pb, _h, _repo, extra, lab) = setup(playbook);
    let host = lab.hosts[1].name.clone();
    let before = lab.overlay_listing(2);
    let check = ferry(&lab, &host, &pb, &extra, &["--check"]);
    let after = lab.overlay_listing(2);
    assert_eq!(before, after, "{playbook}: --check changed the host");
    assert!(
        check.out.status.success(),
        "{playbook}: ferry --check failed: {}",
        show(&check.out)
    );
    let real = ferry(&lab, &host, &pb, &extra, &[]);
    assert!(
        real.out.status.success(),
        "{playbook}: ferry run failed: {}",
        show(&real.out)
    );
    let expected: BTreeSet<String> = real
        .changed_tasks
        .difference(&check.skipped_tasks)
        .cloned()
        .collect();
    assert_eq!(
        check.changed_tasks, expected,
        "{playbook}: --check predicted other changes than run 1 made"
    );
    assert!(
        !check.changed_tasks.is_empty(),
        "{playbook}: --check predicted no change at all on a fresh host"
    );
    eprintln!(
        "{playbook}: check predicted {} changed tasks; skipped {:?}",
        check.changed_tasks.len(),
        check.skipped_tasks
    );
}

macro_rules! corpus {
    ($($name:ident, $check:ident => $file:literal,)*) => {
        $(
            #[test]
            fn $name() { compat($file) }

            #[test]
            fn $check() { check_predicts($file) }
        )*

        #[test]
        fn every_corpus_playbook_has_a_test() {
            let listed: BTreeSet<&str> = [$($file),*].into_iter().collect();
            let on_disk: BTreeSet<String> = std::fs::read_dir(corpus_dir()).unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".yml"))
                .collect();
            assert_eq!(on_disk, listed.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>());
            assert!(listed.len() >= 10);
        }
    };
}

corpus! {
    file_tree, check_file_tree => "01_file_tree.yml",
    copy_modes, check_copy_modes => "02_copy_modes.yml",
    lineinfile, check_lineinfile => "03_lineinfile.yml",
    blockinfile_replace, check_blockinfile_replace => "04_blockinfile_replace.yml",
    ini_file, check_ini_file => "05_ini_file.yml",
    handlers, check_handlers => "06_handlers.yml",
    loops, check_loops => "07_loops.yml",
    register_when, check_register_when => "08_register_when.yml",
    template, check_template => "09_template.yml",
    git, check_git => "10_git.yml",
    source_build, check_source_build => "11_source_build.yml",
    system, check_system => "12_system.yml",
    diff_playbook, check_diff_playbook => "13_diff.yml",
    fetch_unarchive, check_fetch_unarchive => "14_fetch_unarchive.yml",
    pip_apt_repository, check_pip_apt_repository => "15_pip_apt_repository.yml",
    control, check_control => "16_control.yml",
}

/// A throwaway inventory (no lab) for `ferry check`.
fn plain_inventory(dir: &Path) -> PathBuf {
    let inv = dir.join("inventory.yml");
    std::fs::write(&inv, "all:\n  hosts:\n    h1: {}\n").unwrap();
    inv
}

/// `ferry check` of `pb` against a throwaway inventory in `dir` (no lab).
fn ferry_check(dir: &Path, pb: &Path) -> Output {
    Command::new(lab_fixture::ferry_bin())
        .arg("check")
        .arg("-i")
        .arg(plain_inventory(dir))
        .arg(pb)
        .output()
        .unwrap()
}

#[test]
fn unsupported_parameter_is_rejected_by_check_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let pb = dir.path().join("bad.yml");
    std::fs::write(
        &pb,
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: copy with a typo\n      \
         copy: {content: x, dest: /tmp/x, unsafe_writes_typo: true}\n",
    )
    .unwrap();
    let out = ferry_check(dir.path(), &pb);
    let all = show(&out);
    assert!(!out.status.success(), "ferry check accepted it: {all}");
    assert!(
        all.contains("unsafe_writes_typo"),
        "the parameter is not named: {all}"
    );
    assert!(all.contains("bad.yml:5"), "no file:line: {all}");
}

#[test]
fn copy_with_missing_source_fails_before_any_host_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let pb = dir.path().join("missing.yml");
    std::fs::write(
        &pb,
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: a directory first\n      \
         file: {path: /srv/compat/missing, state: directory}\n    - name: copy a file nobody wrote\n      \
         copy: {src: no-such-file.txt, dest: /srv/compat/missing/x}\n",
    )
    .unwrap();
    let out = ferry_check(dir.path(), &pb);
    assert!(
        !out.status.success(),
        "ferry check accepted it: {}",
        show(&out)
    );
    assert!(show(&out).contains("no-such-file.txt"), "{}", show(&out));

    let lab = LabGuard::up("compatbad", 1);
    let host = lab.hosts[0].name.clone();
    let before = lab.overlay_listing(1);
    let run = ferry(&lab, &host, &pb, &[], &[]);
    assert!(
        !run.out.status.success(),
        "ferry run accepted it: {}",
        show(&run.out)
    );
    assert!(
        show(&run.out).contains("no-such-file.txt"),
        "{}",
        show(&run.out)
    );
    assert_eq!(before, lab.overlay_listing(1), "the host was touched");
    let probe = lab.exec(&host, "test -e /srv/compat/missing");
    assert!(!probe.status.success(), "the task before the bad copy ran");
}

#[test]
fn failing_validate_leaves_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let lab = LabGuard::up("compatval", 1);
    let host = lab.hosts[0].name.clone();
    let out = lab.exec(
        &host,
        "mkdir -p /srv/compat/val && printf 'old\\n' > /srv/compat/val/f.conf",
    );
    assert!(out.status.success(), "{}", show(&out));
    let before = lab.exec(
        &host,
        "stat -c '%i %Y %a' /srv/compat/val/f.conf; cat /srv/compat/val/f.conf",
    );
    let pb = dir.path().join("validate.yml");
    std::fs::write(
        &pb,
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: new content the validator refuses\n      \
         copy: {content: \"new\\n\", dest: /srv/compat/val/f.conf, validate: \"grep -q old %s\"}\n    \
         - name: lineinfile too\n      \
         lineinfile: {path: /srv/compat/val/f.conf, line: added, validate: \"grep -q never %s\"}\n      \
         ignore_errors: true\n",
    )
    .unwrap();
    let run = ferry(&lab, &host, &pb, &[], &[]);
    assert!(
        !run.out.status.success(),
        "validate did not fail: {}",
        show(&run.out)
    );
    let after = lab.exec(
        &host,
        "stat -c '%i %Y %a' /srv/compat/val/f.conf; cat /srv/compat/val/f.conf",
    );
    assert_eq!(
        String::from_utf8_lossy(&before.stdout),
        String::from_utf8_lossy(&after.stdout),
        "the file changed"
    );
    let leftovers = lab.exec(&host, "ls -A /srv/compat/val");
    assert_eq!(
        String::from_utf8_lossy(&leftovers.stdout),
        "f.conf\n",
        "temp files left"
    );
}

/// `ferry run --diff` of a copy, a template and a lineinfile on a fresh host.
#[test]
fn diff_output_snapshot() {
    let (pb, _h, _repo, extra, lab) = setup("13_diff.yml");
    let host = lab.hosts[1].name.clone();
    let run = ferry(&lab, &host, &pb, &extra, &["--diff"]);
    assert!(run.out.status.success(), "{}", show(&run.out));
    let text = String::from_utf8_lossy(&run.out.stdout).replace(&host, "HOST");
    let timing = regex::Regex::new(r"\(\d+\.\d+s\)").unwrap();
    let text = timing.replace_all(&text, "(T)");
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("ran in "))
        .map(|l| format!("{l}\n"))
        .collect();
    insta::assert_snapshot!(text);
}

/// `ferry run --check --diff` on a fresh host shows the diffs the real run
/// then shows (the lineinfile's diff is against the content the copy before
/// it would have written), and changes nothing.
#[test]
fn check_diff_shows_what_the_run_then_does() {
    let (pb, _h, _repo, extra, lab) = setup("13_diff.yml");
    let host = lab.hosts[1].name.clone();
    let stable = |o: &Output| -> String {
        let text = String::from_utf8_lossy(&o.stdout).replace(&host, "HOST");
        let timing = regex::Regex::new(r"\(\d+\.\d+s\)").unwrap();
        timing
            .replace_all(&text, "(T)")
            .lines()
            .filter(|l| !l.starts_with("ran in ") && !l.starts_with("HOST : "))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    let before = lab.overlay_listing(2);
    let check = ferry(&lab, &host, &pb, &extra, &["--check", "--diff"]);
    assert!(check.out.status.success(), "{}", show(&check.out));
    assert_eq!(before, lab.overlay_listing(2), "--check changed the host");
    let real = ferry(&lab, &host, &pb, &extra, &["--diff"]);
    assert!(real.out.status.success(), "{}", show(&real.out));
    let check_text = stable(&check.out);
    assert!(check_text.contains("+second line, edited"), "{check_text}");
    assert_eq!(check_text, stable(&real.out));
}

/// `play_precedence` (one variable per layer: role defaults, inventory host,
/// play vars, vars_files, role vars, block vars, task vars, set_fact, -e) run
/// on the same lab host by `ansible-playbook` and by `ferry run`: every
/// variable resolves to the same layer in both, and to the answer kept in
/// the fixture's expected.json.
#[test]
fn play_precedence_through_ferry_run_and_ansible_playbook_agrees() {
    let venv = ansible_venv();
    let lab = LabGuard::up("prec", 1);
    let host = lab.hosts[0].clone();
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inventories/play_precedence");
    let work = tempfile::tempdir().unwrap();
    // The fixture's inventory with h1 reached as the lab host.
    let fixture_inv = std::fs::read_to_string(dir.join("hosts.yml")).unwrap();
    let connection = format!(
        "      ansible_host: \"{}\"\n      ansible_user: root\n      ansible_ssh_private_key_file: \"{}\"\n      \
         ansible_ssh_common_args: \"-o UserKnownHostsFile={} -o StrictHostKeyChecking=yes\"\n",
        host.mgmt_ip,
        lab.private_key().display(),
        lab.known_hosts().display()
    );
    let inv_text = fixture_inv.replace("      ansible_connection: local\n", &connection);
    assert_ne!(
        inv_text, fixture_inv,
        "hosts.yml no longer says ansible_connection: local"
    );
    let inv = work.path().join("hosts.yml");
    std::fs::write(&inv, inv_text).unwrap();
    let pb = dir.join("play.yml");
    let out = |who: &str| format!("out=/root/precedence-{who}.json");
    let a = ansible_with(
        &venv,
        &lab,
        &inv,
        "h1",
        &pb,
        &[
            "-e".into(),
            "k9=extra_vars".into(),
            "-e".into(),
            out("ansible"),
        ],
    );
    assert!(a.status.success(), "ansible-playbook: {}", show(&a));
    let f = Command::new(lab_fixture::ferry_bin())
        .arg("run")
        .arg("-i")
        .arg(&inv)
        .args(["-e", "k9=extra_vars", "-e", &out("ferry")])
        .arg(&pb)
        .current_dir(&dir)
        .output()
        .expect("run ferry");
    assert!(f.status.success(), "ferry run: {}", show(&f));
    let answers = |who: &str| -> serde_json::Value {
        let text = lab.exec_ok("1", &format!("cat /root/precedence-{who}.json"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{who}'s answers {text:?}: {e}"))
    };
    let (ansible_says, ferry_says) = (answers("ansible"), answers("ferry"));
    let kept: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    for n in 1..=9 {
        let k = format!("k{n}");
        assert!(
            ansible_says.get(&k).is_some(),
            "ansible wrote no {k}: {ansible_says}"
        );
        assert_eq!(
            ferry_says[&k], ansible_says[&k],
            "{k}: ferry run and ansible-playbook disagree"
        );
        assert_eq!(
            ansible_says[&k], kept[&k],
            "{k}: ansible-playbook and the kept expected.json disagree"
        );
    }
}

/// The `ansible-inventory` (and `ansible`, `ansible-playbook`) answers kept in
/// tests/fixtures/inventories, which tests/inventory.rs compares ferry with,
/// regenerated now by `regen.sh` on a copy of the fixtures with this Ansible:
/// every kept file must equal the fresh one, so the comparison stays with
/// what Ansible says, not with what it once said.
#[test]
fn kept_ansible_inventory_answers_match_a_fresh_run() {
    let venv = ansible_venv();
    let kept = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inventories");
    let work = tempfile::tempdir().unwrap();
    let copy = work.path().join("inventories");
    let cp = Command::new("cp")
        .arg("-a")
        .arg(&kept)
        .arg(&copy)
        .output()
        .expect("run cp");
    assert!(cp.status.success(), "cp -a: {}", show(&cp));
    let files = expected_files(&copy);
    for f in &files {
        // Fresh means written by this run: no kept copy can pass for one.
        std::fs::remove_file(copy.join(f)).unwrap();
    }
    assert!(files.len() >= 15, "too few kept answers: {files:?}");
    let regen = Command::new("sh")
        .arg(copy.join("regen.sh"))
        .env("ANSIBLE_INVENTORY_BIN", venv.join("bin/ansible-inventory"))
        .env(
            "PATH",
            format!("{}:/usr/bin:/bin", venv.join("bin").display()),
        )
        .env("ANSIBLE_LOCAL_TEMP", work.path().join("ansible-local"))
        .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
        .output()
        .expect("run regen.sh");
    assert!(regen.status.success(), "regen.sh: {}", show(&regen));
    let mut drift = Vec::new();
    for f in &files {
        let old = std::fs::read_to_string(kept.join(f)).unwrap();
        let new = std::fs::read_to_string(copy.join(f))
            .unwrap_or_else(|e| panic!("regen.sh wrote no {}: {e}", f.display()));
        if old != new {
            drift.push(format!("--- kept {}\n{old}\n+++ fresh\n{new}", f.display()));
        }
    }
    assert!(
        drift.is_empty(),
        "Ansible's answers drifted from the kept fixtures (run regen.sh and review):\n{}",
        drift.join("\n")
    );
}

/// `expected*` files under `dir`, relative to it.
fn expected_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("expected"))
            {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}
