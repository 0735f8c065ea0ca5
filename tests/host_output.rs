//! Text that came back from a host is data: ferry never evaluates it as a
//! template, however it reaches a later task (a registered result, a loop's
//! results, a skipped task's result, a fact set from it, host facts).

use std::path::Path;
use std::sync::Arc;

use ferry::engine::{
    Engine, EventKind, EventSink, Fanout, Outcome, Recorder, RunOptions, StaticHosts,
    local_connector,
};
use ferry::playbook::Vars;

fn load(path: &Path) -> ferry::playbook::Playbook {
    let mut loaded = ferry::playbook::loader::Loader::new().load(&[path.to_path_buf()]);
    let errors: Vec<String> = loaded
        .problems
        .iter()
        .filter(|p| p.is_error())
        .map(|p| format!("{}: {}", p.loc, p.message))
        .collect();
    assert!(errors.is_empty(), "the loader refused it: {errors:#?}");
    loaded.playbooks.remove(0)
}

#[tokio::test]
async fn host_output_that_looks_like_a_template_is_never_evaluated() {
    let dir = tempfile::tempdir().unwrap();
    let pb_path = dir.path().join("pb.yml");
    // `secret` is a variable the host output names: evaluating the output would
    // print it, and `{{ 7 * 6 }}` would read 42.
    std::fs::write(
        &pb_path,
        r#"
- hosts: all
  gather_facts: false
  vars:
    secret: s3cr3t
  tasks:
    - name: output with template syntax
      shell: "printf '%s' '{{ \"{{\" }} secret }} {{ \"{{\" }} 7 * 6 }}'"
      register: out
    - name: a loop's results
      shell: "printf '%s' '{{ \"{%\" }} if true %}yes{{ \"{%\" }} endif %}'"
      loop: [1]
      register: looped
    - name: a fact set from it
      set_fact:
        kept: "{{ out.stdout }}"
    - name: a mapping holding the result
      set_fact:
        nested: { inner: "{{ out.stdout }}" }
    - name: write what was read
      copy:
        dest: "{{ workdir }}/seen"
        content: "{{ out.stdout }}|{{ looped.results[0].stdout }}|{{ kept }}|{{ nested.inner }}|{{ out }}\n"
"#,
    )
    .unwrap();
    let pb = load(&pb_path);
    let mut h = StaticHosts::default();
    let mut v = Vars::new();
    v.insert("workdir".into(), dir.path().display().to_string().into());
    v.insert("ansible_connection".into(), "local".into());
    h.hosts.insert("h1".into(), v);
    let rec = Arc::new(Recorder::default());
    let sinks: Vec<Arc<dyn EventSink>> = vec![rec.clone()];
    let engine = Engine::new(
        RunOptions::default(),
        Arc::new(h),
        local_connector(),
        Arc::new(Fanout(sinks)),
    );
    let code = engine.run(std::slice::from_ref(&pb)).await;
    let failures: Vec<String> = rec
        .0
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::HostResult(r) if r.outcome == Outcome::Failed => {
                Some(format!("{}: {:?}", r.task, r.msg))
            }
            _ => None,
        })
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(code, 0);
    let seen = std::fs::read_to_string(dir.path().join("seen")).unwrap();
    let raw = "{{ secret }} {{ 7 * 6 }}";
    let parts: Vec<&str> = seen.trim_end().splitn(5, '|').collect();
    assert_eq!(parts[0], raw, "registered stdout: {seen}");
    assert_eq!(
        parts[1], "{% if true %}yes{% endif %}",
        "loop result: {seen}"
    );
    assert_eq!(parts[2], raw, "set_fact from it: {seen}");
    assert_eq!(parts[3], raw, "a mapping holding it: {seen}");
    // `{{ 7 * 6 }}` evaluated would read ` 42` after the secret; the result's `delta`
    // (a time such as '0.001542') may hold the digits, never after a space.
    assert!(
        parts[4].contains(raw) && !seen.contains("s3cr3t") && !seen.contains(" 42"),
        "the whole result: {seen}"
    );
}
