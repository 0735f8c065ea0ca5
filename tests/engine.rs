//! Engine tests on the local transport: Ansible's outcomes and recap counts,
//! failures that stay on their host, timeouts, the plain output and the JSONL events.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ferry::engine::{
    ConnectFuture, Engine, EventKind, EventSink, Fanout, HostStats, Outcome, Recorder, RunOptions,
    StaticHosts, local_connector,
};
use ferry::playbook::{Playbook, Vars};
use ferry::report::{JsonlReporter, PlainReporter};
use ferry::transport::local::LocalTransport;
use ferry::transport::{Transport, TransportError};
use serde_json::{Value, json};

// ---- playbooks through the real loader (`ferry check`'s, without the variable checks)

/// Load the playbook at `path`; panics, showing the problems, if the loader refuses it.
fn load(path: &Path) -> Playbook {
    let mut loaded = ferry::playbook::loader::Loader::new().load(&[path.to_path_buf()]);
    let errors: Vec<String> = loaded
        .problems
        .iter()
        .filter(|p| p.is_error())
        .map(|p| format!("{}: {}", p.loc, p.message))
        .collect();
    assert!(
        errors.is_empty(),
        "the loader refused {}: {errors:#?}",
        path.display()
    );
    loaded.playbooks.remove(0)
}

fn fixture(name: &str) -> Playbook {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    load(&path)
}

/// A playbook written in the test, loaded from a file of its own.
fn inline(yaml: &str) -> Playbook {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inline.yml");
    std::fs::write(&path, yaml).unwrap();
    load(&path)
}

// ---- running

fn hosts(names: &[&str], workdir: &Path) -> Arc<StaticHosts> {
    let mut h = StaticHosts::default();
    for n in names {
        let mut v = Vars::new();
        v.insert("workdir".into(), workdir.display().to_string().into());
        v.insert("ansible_connection".into(), "local".into());
        h.hosts.insert(n.to_string(), v);
    }
    Arc::new(h)
}

struct Run {
    code: u8,
    stats: indexmap::IndexMap<String, HostStats>,
    events: Vec<ferry::engine::Event>,
    engine: Engine,
}

impl Run {
    fn stat(&self, host: &str) -> HostStats {
        self.stats[host]
    }
    /// Results that failed and were not ignored.
    fn failures(&self) -> Vec<ferry::engine::HostResult> {
        self.events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::HostResult(x) if x.outcome == Outcome::Failed && !x.ignored => {
                    Some(x.clone())
                }
                _ => None,
            })
            .collect()
    }
    /// Final outcomes of one task, per host.
    fn outcomes(&self, task: &str) -> Vec<(String, Outcome)> {
        self.events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::HostResult(r) if r.task == task => Some((r.host.clone(), r.outcome)),
                _ => None,
            })
            .collect()
    }
}

async fn run_with(
    pb: &Playbook,
    names: &[&str],
    workdir: &Path,
    opts: RunOptions,
    connector: Arc<dyn ferry::engine::Connector>,
    extra: Vec<Arc<dyn EventSink>>,
) -> Run {
    let rec = Arc::new(Recorder::default());
    let mut sinks: Vec<Arc<dyn EventSink>> = vec![rec.clone()];
    sinks.extend(extra);
    let engine = Engine::new(
        opts,
        hosts(names, workdir),
        connector,
        Arc::new(Fanout(sinks)),
    );
    let code = engine.run(std::slice::from_ref(pb)).await;
    let events = rec.0.lock().unwrap().clone();
    Run {
        code,
        stats: engine.stats(),
        events,
        engine,
    }
}

async fn run(pb: &Playbook, names: &[&str], workdir: &Path, opts: RunOptions) -> Run {
    run_with(pb, names, workdir, opts, local_connector(), Vec::new()).await
}

fn stats(
    ok: u32,
    changed: u32,
    failed: u32,
    skipped: u32,
    rescued: u32,
    ignored: u32,
) -> HostStats {
    HostStats {
        ok,
        changed,
        unreachable: 0,
        failed,
        skipped,
        rescued,
        ignored,
        not_checked: 0,
    }
}

#[tokio::test]
async fn features_give_ansibles_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let pb = fixture("features.yml");
    let r = run(&pb, &["h1", "h2", "h3"], dir.path(), RunOptions::default()).await;

    // h2 failed one task and stopped; the others went on: exit 2.
    assert_eq!(r.code, 2);
    assert_eq!(r.stat("h1"), stats(15, 10, 0, 2, 1, 1));
    assert_eq!(r.stat("h3"), stats(15, 10, 0, 2, 1, 1));
    assert_eq!(r.stat("h2"), stats(14, 9, 1, 1, 1, 1));

    for h in ["h1", "h2", "h3"] {
        let out = dir.path().join(h);
        assert_eq!(
            std::fs::read_to_string(out.join("items")).unwrap(),
            "a\nb\nc\n"
        );
        assert!(out.join("handled").exists(), "{h}: notified handler ran");
        assert!(out.join("stack").exists(), "{h}: listening handler ran");
        assert!(
            !out.join("not-reached").exists(),
            "{h}: block stopped at its failure"
        );
        assert!(
            !out.join("never").exists(),
            "{h}: `never` tag is not run by default"
        );
        assert_eq!(
            out.join("after").exists(),
            h != "h2",
            "{h}: task after h2's failure"
        );
        assert_eq!(
            std::fs::read_to_string(out.join("tries"))
                .unwrap()
                .lines()
                .count(),
            3
        );
    }
    let facts = r.engine.host_facts("h1");
    assert_eq!(facts["color"], json!("red"));
    assert_eq!(facts["answer"], json!(42));
    assert_eq!(r.engine.host_facts("h3")["color"], json!("blue"));
    assert_eq!(facts["tries"]["attempts"], json!(3));
    assert_eq!(facts["looped"]["results"].as_array().unwrap().len(), 3);
    assert_eq!(facts["looped"]["changed"], json!(true));

    // The failure inside the block is shown as failed, and counted as rescued.
    let rescued: Vec<(String, bool)> = r
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::HostResult(x) if x.task == "fails on purpose" => {
                Some((x.host.clone(), x.outcome == Outcome::Failed && x.rescued))
            }
            _ => None,
        })
        .collect();
    assert_eq!(rescued.len(), 3);
    assert!(rescued.iter().all(|(_, r)| *r), "{rescued:?}");
    // Handlers ran once per host, at the flush, as handler events.
    let handler_starts = r
        .events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::TaskStart { handler: true, .. }))
        .count();
    assert_eq!(handler_starts, 2);
}

#[tokio::test]
async fn tags_select_as_ansible_does() {
    let dir = tempfile::tempdir().unwrap();
    let pb = inline(
        r#"
- hosts: all
  gather_facts: false
  tasks:
    - { name: untagged, debug: { msg: u } }
    - { name: tag a, debug: { msg: a }, tags: [a] }
    - { name: tag b, debug: { msg: b }, tags: [b] }
    - { name: always, debug: { msg: always }, tags: [always] }
    - { name: never, debug: { msg: never }, tags: [never, debugonly] }
"#,
    );
    let ran = |r: &Run| -> Vec<String> {
        r.events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::HostResult(x) => Some(x.task.clone()),
                _ => None,
            })
            .collect()
    };
    let r = run(&pb, &["h1"], dir.path(), RunOptions::default()).await;
    assert_eq!(ran(&r), ["untagged", "tag a", "tag b", "always"]);
    let opts = RunOptions {
        tags: vec!["a".into()],
        ..RunOptions::default()
    };
    let r = run(&pb, &["h1"], dir.path(), opts).await;
    assert_eq!(ran(&r), ["tag a", "always"]);
    let opts = RunOptions {
        tags: vec!["debugonly".into()],
        skip_tags: vec!["always".into()],
        ..RunOptions::default()
    };
    let r = run(&pb, &["h1"], dir.path(), opts).await;
    assert_eq!(ran(&r), ["never"]);
    let opts = RunOptions {
        skip_tags: vec!["b".into()],
        start_at_task: Some("tag a".into()),
        ..RunOptions::default()
    };
    let r = run(&pb, &["h1"], dir.path(), opts).await;
    assert_eq!(ran(&r), ["tag a", "always"]);
    assert_eq!(r.code, 0);
}

#[tokio::test]
async fn hanging_command_is_killed_at_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let pb = inline(
        r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: hang on h1
      shell: "sleep 60; echo finished"
      when: inventory_hostname == 'h1'
      timeout: 1
    - name: next
      command: "true"
"#,
    );
    let started = std::time::Instant::now();
    let r = run(&pb, &["h1", "h2"], dir.path(), RunOptions::default()).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "the run did not wait for `sleep 60`"
    );
    assert_eq!(r.code, 2);
    assert_eq!(r.stat("h1"), stats(0, 0, 1, 0, 0, 0));
    assert_eq!(r.stat("h2"), stats(1, 1, 0, 1, 0, 0));
    let msg = r
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::HostResult(x) if x.host == "h1" => x.msg.clone(),
            _ => None,
        })
        .unwrap();
    assert!(msg.contains("timed out"), "{msg}");
}

#[tokio::test]
async fn unreachable_host_is_marked_and_others_finish() {
    let dir = tempfile::tempdir().unwrap();
    let pb = inline(
        r#"
- hosts: all
  gather_facts: false
  tasks:
    - { name: one, command: "true" }
    - { name: two, command: "true" }
"#,
    );
    let connector: Arc<dyn ferry::engine::Connector> =
        Arc::new(|host: &str, _: &Vars| -> ConnectFuture {
            let host = host.to_string();
            Box::pin(async move {
                if host == "h3" {
                    Err(TransportError::Unreachable {
                        host,
                        reason: "connection refused".into(),
                    })
                } else {
                    Ok(Arc::new(LocalTransport::new(host)) as Arc<dyn Transport>)
                }
            })
        });
    let r = run_with(
        &pb,
        &["h1", "h2", "h3"],
        dir.path(),
        RunOptions::default(),
        connector,
        Vec::new(),
    )
    .await;
    assert_eq!(r.code, 4);
    assert_eq!(r.stat("h1"), stats(2, 2, 0, 0, 0, 0));
    assert_eq!(r.stat("h2"), stats(2, 2, 0, 0, 0, 0));
    let h3 = r.stat("h3");
    assert_eq!((h3.unreachable, h3.ok, h3.failed), (1, 0, 0));
    assert_eq!(r.outcomes("two").len(), 2);
}

#[tokio::test]
async fn run_once_delegate_serial_and_check_mode() {
    let dir = tempfile::tempdir().unwrap();
    let pb = inline(
        r#"
- hosts: all
  gather_facts: false
  serial: 2
  tasks:
    - name: once
      command: echo from {{ inventory_hostname }}
      run_once: true
      register: once
    - name: every host sees the run_once result
      assert:
        that: once.stdout == 'from ' + ansible_play_hosts[0]
    - name: delegated
      command: echo {{ inventory_hostname }}
      delegate_to: h1
      register: d
    - name: delegated ran with the host's own vars
      assert:
        that: d.stdout == inventory_hostname
    - name: guarded command
      command: touch {{ workdir }}/made
      args:
        creates: "{{ workdir }}/made"
"#,
    );
    let r = run(&pb, &["h1", "h2", "h3"], dir.path(), RunOptions::default()).await;
    assert_eq!(r.code, 0);
    // serial 2: h1,h2 then h3; run_once once per batch.
    assert_eq!(
        r.outcomes("once")
            .iter()
            .map(|x| x.0.as_str())
            .collect::<Vec<_>>(),
        ["h1", "h3"]
    );
    let delegated: Vec<Option<String>> = r
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::HostResult(x) if x.task == "delegated" => Some(x.delegated_to.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(delegated, vec![Some("h1".to_string()); 3]);
    // `creates:` makes the command "ok" once the file exists (h1 and h2 race in batch 1).
    let guarded = r.outcomes("guarded command");
    assert!(
        guarded.iter().any(|(_, o)| *o == Outcome::Ok),
        "{guarded:?}"
    );
    assert!(dir.path().join("made").exists());

    // Check mode: an unguarded command is skipped, nothing is made.
    let dir2 = tempfile::tempdir().unwrap();
    let pb2 = inline(
        r#"
- hosts: all
  gather_facts: false
  tasks:
    - { name: would make, command: "touch {{ workdir }}/x" }
"#,
    );
    let opts = RunOptions {
        check: true,
        ..RunOptions::default()
    };
    let r = run(&pb2, &["h1"], dir2.path(), opts).await;
    assert_eq!(r.code, 0);
    assert_eq!(
        r.stat("h1"),
        HostStats {
            not_checked: 1,
            ..stats(0, 0, 0, 1, 0, 0)
        }
    );
    assert!(!dir2.path().join("x").exists());
}

#[tokio::test]
async fn force_handlers_and_any_errors_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = r#"
- hosts: all
  gather_facts: false
  tasks:
    - { name: change, command: "true", notify: note }
    - { name: boom, fail: { msg: no }, when: inventory_hostname == 'h1' }
  handlers:
    - { name: note, command: "touch {{ workdir }}/{{ inventory_hostname }}-note" }
"#;
    let pb = inline(yaml);
    let r = run(&pb, &["h1", "h2"], dir.path(), RunOptions::default()).await;
    assert_eq!(r.code, 2);
    assert!(
        !dir.path().join("h1-note").exists(),
        "no handlers on a failed host"
    );
    assert!(dir.path().join("h2-note").exists());

    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        force_handlers: true,
        ..RunOptions::default()
    };
    let r = run(&pb, &["h1", "h2"], dir.path(), opts).await;
    assert_eq!(r.code, 2);
    assert!(dir.path().join("h1-note").exists(), "--force-handlers");

    let dir = tempfile::tempdir().unwrap();
    let pb = inline(
        r#"
- hosts: all
  gather_facts: false
  any_errors_fatal: true
  tasks:
    - { name: boom, fail: { msg: no }, when: inventory_hostname == 'h1' }
    - { name: later, command: "true" }
"#,
    );
    let r = run(&pb, &["h1", "h2"], dir.path(), RunOptions::default()).await;
    assert_eq!(r.code, 2);
    assert!(
        r.outcomes("later").is_empty(),
        "any_errors_fatal ends the play for all"
    );
}

/// A writer the test can read back.
#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn plain_output_snapshot_and_events_match_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let pb = fixture("features.yml");
    let buf = Buf::default();
    let events_path = dir.path().join("events.jsonl");
    let sinks: Vec<Arc<dyn EventSink>> = vec![
        Arc::new(PlainReporter::new(Box::new(buf.clone()), 0)),
        Arc::new(JsonlReporter::create(&events_path).unwrap()),
    ];
    // One fork: hosts report in inventory order, so the output is stable.
    let opts = RunOptions {
        forks: 1,
        ..RunOptions::default()
    };
    let r = run_with(
        &pb,
        &["h1", "h2", "h3"],
        dir.path(),
        opts,
        local_connector(),
        sinks,
    )
    .await;
    assert_eq!(r.code, 2);
    let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(!out.contains('\x1b'), "no escape codes in plain output");
    let masked = regex::Regex::new(r"\d+\.\d\ds\b")
        .unwrap()
        .replace_all(&out, "X.XXs");
    let masked = masked.replace(&dir.path().display().to_string(), "WORKDIR");
    insta::assert_snapshot!("plain_features", masked);

    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/events.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let text = std::fs::read_to_string(&events_path).unwrap();
    let mut kinds = std::collections::BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let ev: Value = serde_json::from_str(line).unwrap();
        let errors: Vec<String> = validator.iter_errors(&ev).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "line {}: {line}\n{errors:?}", n + 1);
        kinds.insert(ev["event"].as_str().unwrap().to_string());
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        [
            "host_result",
            "item_result",
            "play_start",
            "recap",
            "run_start",
            "task_start",
            "warning"
        ]
    );
    // The schema rejects what it should: an unknown event, a bad outcome.
    assert!(!validator.is_valid(&json!({"ts": 1.0, "event": "nope"})));
    let mut bad: Value =
        serde_json::from_str(text.lines().find(|l| l.contains("host_result")).unwrap()).unwrap();
    bad["outcome"] = json!("great");
    assert!(!validator.is_valid(&bad));
}

#[tokio::test]
async fn no_log_hides_output_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let pb = inline(
        r#"
- hosts: all
  gather_facts: false
  tasks:
    - { name: secret, shell: "echo s3cret-value; exit 3", no_log: true }
"#,
    );
    let buf = Buf::default();
    let r = run_with(
        &pb,
        &["h1"],
        dir.path(),
        RunOptions {
            verbosity: 3,
            ..RunOptions::default()
        },
        local_connector(),
        vec![Arc::new(PlainReporter::new(Box::new(buf.clone()), 3))],
    )
    .await;
    assert_eq!(r.code, 2);
    let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(!out.contains("s3cret"), "{out}");
    let json = serde_json::to_string(
        &r.events
            .iter()
            .map(|e| serde_json::to_value(e).unwrap())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    assert!(!json.contains("s3cret"), "{json}");
}

#[tokio::test]
async fn interrupt_lets_running_tasks_finish_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let pb = inline(
        r#"
- hosts: all
  gather_facts: false
  tasks:
    - { name: running, shell: "sleep 1; touch {{ workdir }}/{{ inventory_hostname }}-done" }
    - { name: not started, command: "touch {{ workdir }}/never" }
"#,
    );
    let rec = Arc::new(Recorder::default());
    let engine = Engine::new(
        RunOptions::default(),
        hosts(&["h1", "h2"], dir.path()),
        local_connector(),
        rec.clone(),
    );
    let flag = engine.interrupt_flag();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let code = engine.run(std::slice::from_ref(&pb)).await;
    assert_eq!(code, 130);
    assert!(dir.path().join("h1-done").exists() && dir.path().join("h2-done").exists());
    assert!(!dir.path().join("never").exists());
    let recap = rec.0.lock().unwrap().iter().find_map(|e| match &e.kind {
        EventKind::Recap {
            interrupted,
            exit_code,
            ..
        } => Some((*interrupted, *exit_code)),
        _ => None,
    });
    assert_eq!(recap, Some((true, 130)));
}

#[tokio::test]
async fn command_options_and_small_ops() {
    let dir = tempfile::tempdir().unwrap();
    let pb = inline(
        r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: stdin and chdir
      command: cat
      args: { stdin: hello, chdir: "{{ workdir }}" }
      register: s
    - name: pwd in chdir
      shell: pwd
      args: { chdir: "{{ workdir }}" }
      register: p
    - name: executable
      shell: echo $0
      args: { executable: /bin/bash }
      register: e
    - name: removes a missing file is ok
      command: rm {{ workdir }}/missing
      args: { removes: "{{ workdir }}/missing" }
    - name: environment
      shell: echo $FERRY_TEST
      environment: { FERRY_TEST: "{{ inventory_hostname }}-env" }
      register: envout
    - { name: raw, raw: "echo raw-out", register: r }
    - { name: ping, ping: }
    - { name: debug var, debug: { var: s.stdout } }
    - name: check results
      assert:
        that:
          - s.stdout == 'hello'
          - s.rc == 0
          - p.stdout == workdir
          - "'bash' in e.stdout"
          - envout.stdout == inventory_hostname + '-env'
          - r.stdout_lines == ['raw-out']
    - name: a failing assert says its message
      assert: { that: ["1 == 2"], fail_msg: "one is not two" }
      ignore_errors: true
      register: a
    - name: its result
      assert: { that: ["a.failed", "a.msg == 'one is not two'"] }
    - name: until exhausted
      command: "false"
      register: u
      until: u.rc == 0
      retries: 1
      delay: 0
      ignore_errors: true
    - { name: attempts counted, assert: { that: ["u.attempts == 2", "u is failed"] } }
    - { name: end h2 here, meta: end_host, when: inventory_hostname == 'h2' }
    - { name: only h1, command: "true" }
"#,
    );
    let r = run(&pb, &["h1", "h2"], dir.path(), RunOptions::default()).await;
    let failures = r.failures();
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(r.code, 0);
    assert_eq!(
        r.outcomes("only h1"),
        vec![("h1".to_string(), Outcome::Changed)]
    );
    assert_eq!(r.stat("h1").ignored, 2);
}

#[tokio::test]
async fn free_strategy_and_max_fail_percentage() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = r#"
- hosts: all
  gather_facts: false
  max_fail_percentage: 30
  tasks:
    - { name: first, fail: { msg: x }, when: inventory_hostname == 'h1' }
    - { name: second, command: "true" }
"#;
    // 1 of 3 failed = 33% > 30%: the play ends for everyone.
    let r = run(
        &inline(yaml),
        &["h1", "h2", "h3"],
        dir.path(),
        RunOptions::default(),
    )
    .await;
    assert_eq!(r.code, 2);
    assert!(r.outcomes("second").is_empty());
    // 1 of 4 = 25%: the others go on.
    let r = run(
        &inline(yaml),
        &["h1", "h2", "h3", "h4"],
        dir.path(),
        RunOptions::default(),
    )
    .await;
    assert_eq!(r.outcomes("second").len(), 3);

    let pb = inline(
        r#"
- hosts: all
  gather_facts: false
  tasks:
    - { name: slow on h1, shell: "sleep 0.5", when: inventory_hostname == 'h1' }
    - { name: mark, shell: "echo {{ inventory_hostname }} >> {{ workdir }}/order" }
"#,
    );
    let opts = RunOptions {
        strategy: ferry::engine::Strategy::Free,
        ..RunOptions::default()
    };
    let r = run(&pb, &["h1", "h2"], dir.path(), opts).await;
    assert_eq!(r.code, 0);
    // Under `free`, h2 does not wait for h1's slow task.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("order")).unwrap(),
        "h2\nh1\n"
    );
}

#[tokio::test]
async fn exec_runs_one_command_and_prints_per_host() {
    let dir = tempfile::tempdir().unwrap();
    let pb = ferry::cmd::exec::adhoc_playbook(
        "all",
        &["echo".into(), "hi there".into()],
        false,
        Some(10),
    );
    let buf = Buf::default();
    let r = run_with(
        &pb,
        &["h1", "h2"],
        dir.path(),
        RunOptions::default(),
        local_connector(),
        vec![Arc::new(ferry::report::AdhocReporter::new(Box::new(
            buf.clone(),
        )))],
    )
    .await;
    assert_eq!(r.code, 0);
    let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "h1 | CHANGED | rc=0 >>",
            "h2 | CHANGED | rc=0 >>",
            "hi there",
            "hi there"
        ]
    );
}

// ---- control ops and loop_control, through the real loader and inventory

/// Outcomes in host-name order (hosts run in parallel, so events interleave).
fn sorted(mut v: Vec<(String, Outcome)>) -> Vec<(String, Outcome)> {
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Write `inventory.yml` and `playbook.yml` into `dir`, load and check them as
/// `ferry run` does, and run them with the local transport (`--limit` as given).
async fn run_loaded(dir: &Path, inventory: &str, playbook: &str, limit: Option<&str>) -> Run {
    let inv_path = dir.join("inventory.yml");
    let pb_path = dir.join("playbook.yml");
    std::fs::write(&inv_path, inventory).unwrap();
    std::fs::write(&pb_path, playbook).unwrap();
    let inv = ferry::inventory::Inventory::load(&[inv_path]).unwrap();
    let (pbs, _warnings) =
        ferry::playbook::load_and_check(std::slice::from_ref(&pb_path), &inv, &Vars::new())
            .unwrap_or_else(|r| panic!("ferry check refused it:\n{}", r.render(false)));
    let rec = Arc::new(Recorder::default());
    let engine = Engine::new(
        RunOptions::default(),
        Arc::new(ferry::engine::InventoryHosts::new(
            inv,
            limit.map(str::to_string),
        )),
        local_connector(),
        rec.clone(),
    );
    let code = engine.run(&pbs).await;
    let events = rec.0.lock().unwrap().clone();
    Run {
        code,
        stats: engine.stats(),
        events,
        engine,
    }
}

fn local_inventory(dir: &Path, hosts: &[(&str, &str)]) -> String {
    let mut y = format!(
        "all:\n  vars:\n    ansible_connection: local\n    workdir: {}\n  hosts:\n",
        dir.display()
    );
    for (h, kind) in hosts {
        y.push_str(&format!("    {h}: {{kind: {kind}}}\n"));
    }
    y
}

/// What a host's task wrote into the work dir.
fn read(dir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(name)).ok()
}

const GROUPS_PLAYBOOK: &str = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: group by kind
      group_by: { key: "kind_{{ kind }}", parents: [kinds] }
    - name: group_names in the same play
      copy: { content: "{{ group_names | join(',') }}\n", dest: "{{ workdir }}/{{ inventory_hostname }}-groups" }
    - name: add a host
      add_host: { name: new1, groups: [added, extra], color: blue, kind: z }
    - name: add it again, unchanged
      add_host: { name: new1, groups: added, color: blue }
- hosts: kind_a:added
  gather_facts: false
  tasks:
    - name: later play
      copy: { content: "{{ color | default('none') }} {{ groups['kinds'] | default([]) | length }}\n", dest: "{{ workdir }}/{{ inventory_hostname }}-later" }
"#;

#[tokio::test]
async fn add_host_and_group_by_change_what_later_plays_target() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let inv = local_inventory(d, &[("h1", "a"), ("h2", "b")]);
    let r = run_loaded(d, &inv, GROUPS_PLAYBOOK, None).await;
    assert_eq!(r.code, 0, "{:#?}", r.events);
    // group_by is per host and changed when the host joined; add_host runs once
    // (on the first host), changed only when it changed the inventory.
    assert_eq!(
        sorted(r.outcomes("group by kind")),
        vec![
            ("h1".into(), Outcome::Changed),
            ("h2".into(), Outcome::Changed)
        ]
    );
    assert_eq!(
        r.outcomes("add a host"),
        vec![("h1".into(), Outcome::Changed)]
    );
    assert_eq!(
        r.outcomes("add it again, unchanged"),
        vec![("h1".into(), Outcome::Ok)]
    );
    assert_eq!(read(d, "h1-groups").as_deref(), Some("kind_a,kinds\n"));
    assert_eq!(read(d, "h2-groups").as_deref(), Some("kind_b,kinds\n"));
    // The later play ran on h1 (kind_a) and on the added host, with its host var,
    // and not on h2; the new host connected (local transport) and wrote its file.
    assert_eq!(
        sorted(r.outcomes("later play")),
        vec![
            ("h1".into(), Outcome::Changed),
            ("new1".into(), Outcome::Changed)
        ]
    );
    assert_eq!(read(d, "h1-later").as_deref(), Some("none 2\n"));
    assert_eq!(read(d, "new1-later").as_deref(), Some("blue 2\n"));
    assert!(read(d, "h2-later").is_none());
    assert_eq!(r.stat("h1"), stats(5, 4, 0, 0, 0, 0));
    assert_eq!(r.stat("h2"), stats(2, 2, 0, 0, 0, 0));
}

#[tokio::test]
async fn limit_still_applies_to_hosts_added_at_run_time() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let inv = local_inventory(d, &[("h1", "a"), ("h2", "b")]);
    // As Ansible: `--limit h1` keeps the added host out of later plays.
    let r = run_loaded(d, &inv, GROUPS_PLAYBOOK, Some("h1")).await;
    assert_eq!(r.code, 0, "{:#?}", r.events);
    assert_eq!(
        sorted(r.outcomes("later play")),
        vec![("h1".into(), Outcome::Changed)]
    );
    assert!(read(d, "new1-later").is_none());
    assert!(!r.stats.contains_key("h2"));
}

#[tokio::test]
async fn include_vars_layers_files_dirs_and_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("vars/conf.d/sub")).unwrap();
    std::fs::write(
        d.join("vars/app.yml"),
        "port: 8080\ncolor: from_file\nname: app\n",
    )
    .unwrap();
    std::fs::write(d.join("vars/conf.d/10-a.yml"), "a: 1\nshared: from_a\n").unwrap();
    std::fs::write(d.join("vars/conf.d/20-b.yaml"), "b: 2\nshared: from_b\n").unwrap();
    std::fs::write(
        d.join("vars/conf.d/sub/30-c.json"),
        r#"{"c": 3, "shared": "from_c"}"#,
    )
    .unwrap();
    std::fs::write(d.join("vars/conf.d/notes.txt"), "not vars\n").unwrap();
    std::fs::write(d.join("vars/list.yml"), "- a\n- b\n").unwrap();
    std::fs::write(d.join("vars/settings.yml"), "settings: {b: 2, c: {y: 2}}\n").unwrap();
    let inv = local_inventory(d, &[("h1", "a")]);
    let pb = r#"
- hosts: all
  gather_facts: false
  vars: { port: 1, name: play, settings: { a: 1, c: { x: 1 } } }
  tasks:
    - { name: set_fact first, set_fact: { color: from_set_fact } }
    - { name: a file from vars/, include_vars: app.yml, register: inc }
    - name: a dir, nested, depth 1, only yaml/json
      include_vars: { dir: vars/conf.d, name: conf, depth: 1, ignore_unknown_extensions: true }
    - name: the whole dir
      include_vars: { dir: vars/conf.d, name: deep, ignore_files: ['\.txt'] }
    - name: hash_behaviour merge
      include_vars: { file: settings.yml, hash_behaviour: merge }
    - name: a dir with an unknown extension fails
      include_vars: { dir: vars/conf.d, name: bad }
      ignore_errors: true
      register: bad_ext
    - name: a file that is not a mapping fails
      include_vars: { file: list.yml }
      ignore_errors: true
      register: not_map
    - name: a missing file fails naming it
      include_vars: { file: "{{ 'nowhere' }}.yml" }
      ignore_errors: true
      register: missing
    - name: check
      assert:
        that:
          - port == 8080
          - name == 'app'
          - color == 'from_set_fact'
          - "conf == {'a': 1, 'b': 2, 'shared': 'from_b'}"
          - deep.c == 3 and deep.shared == 'from_c'
          - inc.ansible_facts.port == 8080
          - inc.ansible_included_var_files[0].endswith('/vars/app.yml')
          - inc is not changed
          - bad_ext is failed and 'notes.txt' in bad_ext.msg
          - not_map is failed and 'dictionary' in not_map.msg
          - missing is failed and 'nowhere.yml' in missing.msg
          - "settings == {'a': 1, 'b': 2, 'c': {'x': 1, 'y': 2}}"
- hosts: all
  gather_facts: false
  tasks:
    - name: included vars last for the run
      assert: { that: ["port == 8080", "conf.a == 1"] }
"#;
    let r = run_loaded(d, &inv, pb, None).await;
    let failed = r.failures();
    assert!(failed.is_empty(), "{failed:#?}");
    assert_eq!(r.code, 0);
    assert_eq!(r.stat("h1").ignored, 3);
}

#[tokio::test]
async fn loop_control_index_extended_pause_and_break_when() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let inv = local_inventory(d, &[("h1", "a")]);
    let pb = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: extended loop
      debug: { msg: "{{ idx }}" }
      loop: [x, y, z]
      loop_control: { index_var: idx, extended: true, pause: 0.3 }
      register: ext
    - name: without extended there is no ansible_loop
      debug: { msg: "{{ ansible_loop.index }}" }
      loop: [x]
      ignore_errors: true
      register: plain
    - name: allitems left out
      debug: { msg: "{{ ansible_loop.allitems | default('none') }}" }
      loop: [x]
      loop_control: { extended: true, extended_allitems: false }
      register: noall
    - name: stop at b
      debug: { msg: "{{ item }}" }
      loop: [a, b, c, d]
      loop_control: { break_when: ["item == 'b'"] }
      register: broke
    - name: check
      assert:
        that:
          - ext.results | map(attribute='idx') | list == [0, 1, 2]
          - ext.results | map(attribute='msg') | map('string') | list == ['0', '1', '2']
          - ext.results[0].ansible_index_var == 'idx'
          - "ext.results[1].ansible_loop == {'index': 2, 'index0': 1, 'first': false, 'last': false, 'length': 3, 'revindex': 2, 'revindex0': 1, 'allitems': ['x', 'y', 'z'], 'nextitem': 'z', 'previtem': 'x'}"
          - ext.results[0].ansible_loop.previtem is not defined
          - ext.results[2].ansible_loop.nextitem is not defined
          - plain is failed
          - noall.results[0].msg == 'none'
          - broke.results | map(attribute='item') | list == ['a', 'b']
"#;
    let started = std::time::Instant::now();
    let r = run_loaded(d, &inv, pb, None).await;
    let elapsed = started.elapsed();
    assert_eq!(r.code, 0, "{:#?}", r.events);
    assert_eq!(r.stat("h1").failed, 0);
    assert_eq!(r.stat("h1").ignored, 1);
    // Two pauses of 0.3 s between three items (none before the first).
    assert!(
        elapsed >= std::time::Duration::from_millis(600),
        "loop_control.pause did not pause: {elapsed:?}"
    );
}

#[tokio::test]
async fn pause_waits_its_seconds_once_and_never_waits_for_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let inv = local_inventory(d, &[("h1", "a"), ("h2", "b")]);
    let pb = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: a prompt without a duration does not block
      pause: { prompt: "Press enter" }
      register: p
    - name: one second
      pause: { seconds: 1 }
      register: s
    - name: check
      assert:
        that:
          - p.user_input == ''
          - p is not changed
          - s.stdout.startswith('Paused for 1.0')
          - s.delta >= 1
"#;
    let started = std::time::Instant::now();
    let r = run_loaded(d, &inv, pb, None).await;
    let elapsed = started.elapsed();
    assert_eq!(r.code, 0, "{:#?}", r.events);
    // Once for the play (on the first host), as Ansible's pause.
    assert_eq!(r.outcomes("one second"), vec![("h1".into(), Outcome::Ok)]);
    assert_eq!(
        sorted(r.outcomes("check")),
        vec![("h1".into(), Outcome::Ok), ("h2".into(), Outcome::Ok)]
    );
    assert!(elapsed >= std::time::Duration::from_secs(1), "{elapsed:?}");
    assert!(
        elapsed < std::time::Duration::from_secs(30),
        "the prompt waited for input: {elapsed:?}"
    );
}

/// `StaticHosts` (tests, `ferry exec` on a list, the bench) takes add_host and group_by too.
#[tokio::test]
async fn static_hosts_take_added_hosts_and_groups() {
    let dir = tempfile::tempdir().unwrap();
    let pb = inline(
        r#"
- hosts: all
  gather_facts: false
  tasks:
    - { name: group, group_by: { key: "g_{{ inventory_hostname }}" } }
    - { name: add, add_host: { name: s3, groups: [late], ansible_connection: local, workdir: "{{ workdir }}", tag: three } }
    - { name: add again, add_host: { name: s3, groups: [late], tag: three } }
- hosts: g_s1:late
  gather_facts: false
  tasks:
    - name: later
      copy: { content: "{{ tag | default('none') }}\n", dest: "{{ workdir }}/{{ inventory_hostname }}-later" }
"#,
    );
    let r = run(&pb, &["s1", "s2"], dir.path(), RunOptions::default()).await;
    assert_eq!(r.code, 0, "{:#?}", r.events);
    assert_eq!(
        r.outcomes("add"),
        vec![("s1".to_string(), Outcome::Changed)]
    );
    assert_eq!(
        r.outcomes("add again"),
        vec![("s1".to_string(), Outcome::Ok)]
    );
    assert_eq!(
        sorted(r.outcomes("later")),
        vec![
            ("s1".to_string(), Outcome::Changed),
            ("s3".to_string(), Outcome::Changed)
        ]
    );
    assert_eq!(read(dir.path(), "s3-later").as_deref(), Some("three\n"));
    assert_eq!(read(dir.path(), "s1-later").as_deref(), Some("none\n"));
}

#[tokio::test]
async fn environment_from_a_template_a_mapping_and_a_list_merged_as_ansible_does() {
    let dir = tempfile::tempdir().unwrap();
    let pb = inline(
        r#"
- hosts: all
  gather_facts: false
  vars:
    proxy_env: { FERRY_A: from-play-var, FERRY_B: play }
    more: { FERRY_C: "{{ inventory_hostname }}" }
  environment: "{{ proxy_env }}"
  tasks:
    - name: env
      shell: 'echo "$FERRY_A $FERRY_B $FERRY_C"'
      environment:
        - { FERRY_B: task }
        - "{{ more }}"
      register: out
    - assert: { that: ["out.stdout == 'from-play-var task h1'"] }
    - name: not a mapping
      command: "true"
      environment: "{{ inventory_hostname }}"
"#,
    );
    let r = run(&pb, &["h1"], dir.path(), RunOptions::default()).await;
    let failures = r.failures();
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert_eq!(failures[0].task, "not a mapping");
    let msg = failures[0].msg.clone().unwrap_or_default();
    assert!(msg.contains("environment must be a mapping"), "{msg}");
}

/// Each layer of `docs/variables.md`'s order (one that `ferry run` assembles per task) wins
/// over every layer below it: variable `w_X` is set by layer X and by every layer below X,
/// each to its own layer's name, so `w_X == 'X'` only when X wins over all of those.
#[tokio::test]
async fn each_variable_layer_wins_over_the_layers_below_it() {
    const LAYERS: [&str; 10] = [
        "defaults",
        "inventory",
        "play",
        "vars_file",
        "role_vars",
        "block",
        "task",
        "include_vars",
        "set_fact",
        "role_params",
    ];
    // The variables layer `level` sets, as YAML flow mapping entries.
    let entries = |level: usize| -> String {
        LAYERS[level..]
            .iter()
            .map(|x| format!("w_{x}: {}", LAYERS[level]))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let role = d.join("roles/r");
    for sub in ["defaults", "vars", "tasks"] {
        std::fs::create_dir_all(role.join(sub)).unwrap();
    }
    std::fs::write(
        role.join("defaults/main.yml"),
        format!("{{{}}}\n", entries(0)),
    )
    .unwrap();
    std::fs::write(d.join("vars_file.yml"), format!("{{{}}}\n", entries(3))).unwrap();
    std::fs::write(role.join("vars/main.yml"), format!("{{{}}}\n", entries(4))).unwrap();
    std::fs::write(d.join("included.yml"), format!("{{{}}}\n", entries(7))).unwrap();
    let that: Vec<String> = LAYERS
        .iter()
        .map(|x| format!("\"w_{x} == '{x}'\""))
        .collect();
    std::fs::write(
        role.join("tasks/main.yml"),
        format!(
            r#"
- include_vars: {{ file: "{}" }}
- set_fact: {{ {} }}
- block:
    - name: every layer wins over the ones below
      assert: {{ that: [{}] }}
      vars: {{ {} }}
  vars: {{ {} }}
"#,
            d.join("included.yml").display(),
            entries(8),
            that.join(", "),
            entries(6),
            entries(5),
        ),
    )
    .unwrap();
    let inv = format!(
        "all:\n  hosts:\n    h1: {{ansible_connection: local, {}}}\n",
        entries(1)
    );
    let pb = format!(
        r#"
- hosts: all
  gather_facts: false
  vars: {{ {} }}
  vars_files: [vars_file.yml]
  roles:
    - {{ role: r, {} }}
"#,
        entries(2),
        entries(9),
    );
    let r = run_loaded(d, &inv, &pb, None).await;
    let failed = r.failures();
    assert!(failed.is_empty(), "{failed:#?}");
    assert_eq!(r.code, 0);
    assert_eq!(r.stat("h1").ok, 3);
}

/// The magic variables a host gets from the inventory (`inventory_hostname`,
/// `group_names`) win over every user layer, as Ansible's do: a play var of the same
/// name does not change them.
#[tokio::test]
async fn magic_variables_win_over_the_users_layers() {
    let dir = tempfile::tempdir().unwrap();
    let inv = "web:\n  hosts:\n    h1: {ansible_connection: local, group_names: [inv]}\n";
    let pb = r#"
- hosts: all
  gather_facts: false
  vars: { inventory_hostname: evil, group_names: [play] }
  tasks:
    - assert:
        that:
          - inventory_hostname == 'h1'
          - group_names == ['web']
"#;
    let r = run_loaded(dir.path(), inv, pb, None).await;
    let failed = r.failures();
    assert!(failed.is_empty(), "{failed:#?}");
    assert_eq!(r.code, 0);
}
