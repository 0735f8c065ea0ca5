//! Secrets as the real binary shows them: `no_log: true` hides values in the
//! terminal output, the `--events` JSONL and error messages; at `-vvv`,
//! values of variables named like secrets are masked in the commands shown,
//! unless `--show-secrets`. Runs on the local connection (no lab).

use std::path::Path;
use std::process::Command;

const SECRET: &str = "hunter2-pw-9f3";

fn run(dir: &Path, more: &[&str]) -> (i32, String, String) {
    let events = dir.join("events.jsonl");
    let _ = std::fs::remove_file(&events);
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("run")
        .arg("-i")
        .arg(dir.join("inventory.yml"))
        .arg(dir.join("pb.yml"))
        .arg("--events")
        .arg(&events)
        .args(more)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.code().unwrap_or(-1),
        shown,
        std::fs::read_to_string(&events).unwrap(),
    )
}

fn setup(tasks: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("inventory.yml"),
        "all:\n  hosts:\n    here:\n      ansible_connection: local\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("pb.yml"),
        format!(
            "- hosts: all\n  gather_facts: false\n  vars:\n    db_password: \"{SECRET}\"\n    workdir: \"{}\"\n  tasks:\n{tasks}",
            dir.path().display()
        ),
    )
    .unwrap();
    dir
}

#[test]
fn no_log_hides_values_in_output_events_and_errors() {
    let dir = setup(
        "    - name: prints it\n      shell: \"echo {{ db_password }}\"\n      no_log: true\n\
         \x20   - name: fails with it\n      shell: \"echo {{ db_password }} >&2; exit 3\"\n      no_log: true\n      ignore_errors: true\n\
         \x20   - name: a loop over it\n      debug: { msg: \"{{ item }}\" }\n      loop: [\"{{ db_password }}\"]\n      no_log: true\n\
         \x20   - name: until it\n      command: \"echo {{ db_password }}\"\n      register: r\n      until: r.rc == 1\n      retries: 1\n      delay: 0\n      no_log: true\n      ignore_errors: true\n\
         \x20   - name: fails for real\n      fail: { msg: \"bad {{ db_password }}\" }\n      no_log: true\n",
    );
    for v in [&[][..], &["-vvv"][..]] {
        let (code, shown, events) = run(dir.path(), v);
        assert_eq!(code, 2, "{shown}");
        assert!(!shown.contains(SECRET), "terminal {v:?}:\n{shown}");
        assert!(!events.contains(SECRET), "events {v:?}:\n{events}");
        assert!(shown.contains("no_log"), "says why it is hidden:\n{shown}");
    }
}

#[test]
fn secret_named_variables_are_masked_at_vvv_unless_asked() {
    let dir = setup(
        "    - name: uses it\n      shell: \"echo user {{ db_password }} > {{ workdir }}/out\"\n",
    );
    let (code, shown, events) = run(dir.path(), &["-vvv"]);
    assert_eq!(code, 0, "{shown}");
    assert!(
        shown.contains("echo user ******** >"),
        "the command shown, masked:\n{shown}"
    );
    assert!(!shown.contains(SECRET), "terminal:\n{shown}");
    assert!(!events.contains(SECRET), "events:\n{events}");
    // The command itself got the real value.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out")).unwrap(),
        format!("user {SECRET}\n")
    );
    let (code, shown, _) = run(dir.path(), &["-vvv", "--show-secrets"]);
    assert_eq!(code, 0, "{shown}");
    assert!(
        shown.contains(&format!("echo user {SECRET} >")),
        "--show-secrets shows it:\n{shown}"
    );
}
