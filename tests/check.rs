//! `ferry check` as a user runs it: the real binary on the bad and good
//! fixture corpus, with snapshots of what it prints; and a property test
//! that any playbook ferry accepts round-trips through the model.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use ferry::inventory::Inventory;
use ferry::playbook::model::shape;
use proptest::prelude::*;
use serde_json::{Value, json};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Run `ferry check` from the repository root, so paths in the output are relative.
fn ferry_check(inventory: &Path, playbook: &Path) -> (i32, String, String) {
    let out = Command::cargo_bin("ferry")
        .expect("ferry binary")
        .current_dir(ROOT)
        .env("NO_COLOR", "1")
        .arg("check")
        .arg("-i")
        .arg(inventory)
        .arg(playbook)
        .output()
        .expect("run ferry check");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Each bad fixture with the first `file:line:col` ferry must report for it
/// (paths relative to the fixture's directory) and whether it is only a warning.
const BAD: &[(&str, &str, bool)] = &[
    ("bad_choice", "playbook.yml:6:9", false),
    ("bad_host_pattern", "playbook.yml:1:10", false),
    ("bad_indentation", "playbook.yml:6:8", false),
    ("bad_loop_control", "playbook.yml:4:18", false),
    ("bad_register_name", "playbook.yml:4:17", false),
    ("circular_import", "second.yml:4:20", false),
    ("circular_include", "b.yml:3:18", false),
    ("condition_syntax_error", "playbook.yml:6:26", false),
    ("duplicate_key", "playbook.yml:7:9", false),
    ("error_in_role", "roles/nova/tasks/main.yml:6:5", false),
    ("experiment_bad_values", "playbook.yml:4:23", false),
    (
        "experiment_missing_migration_ip",
        "playbook.yml:3:21",
        false,
    ),
    ("experiment_play_bad_axis", "playbook.yml:11:7", false),
    ("experiment_unknown_key", "playbook.yml:4:1", false),
    ("experiment_unknown_pair_host", "playbook.yml:3:21", false),
    ("experiment_with_tasks", "playbook.yml:5:5", false),
    ("free_form_not_kv", "playbook.yml:3:7", false),
    ("host_pattern_matches_nothing", "playbook.yml:1:10", true),
    ("import_playbook_missing", "playbook.yml:1:20", false),
    ("include_file_missing", "playbook.yml:3:21", false),
    ("invalid_var_name", "playbook.yml:3:5", false),
    ("inventory_bad_host_range", "inventory.yml:3:5", false),
    ("inventory_circular_children", "inventory.yml:7:13", false),
    ("inventory_hosts_as_list", "inventory.yml:5:9", false),
    ("inventory_unclosed_bracket", "inventory.yml:5:28", false),
    ("inventory_unknown_alias", "inventory.yml:3:9", false),
    ("inventory_unknown_group_key", "inventory.yml:4:7", false),
    ("listen_in_task", "playbook.yml:5:7", false),
    ("loop_and_with_items", "playbook.yml:6:7", false),
    ("meta_bad_choice", "playbook.yml:3:13", false),
    ("missing_copy_src", "playbook.yml:5:9", false),
    ("missing_required_arg", "playbook.yml:4:7", false),
    ("missing_template_file", "playbook.yml:5:9", false),
    ("mutually_exclusive", "playbook.yml:6:9", false),
    ("param_at_task_level", "playbook.yml:5:7", false),
    ("play_without_hosts", "playbook.yml:1:3", false),
    ("playbook_not_a_list", "playbook.yml:1:1", false),
    ("role_not_found", "playbook.yml:3:7", false),
    ("tab_indentation", "playbook.yml:4:1", false),
    ("task_not_a_mapping", "playbook.yml:3:7", false),
    ("task_without_op", "playbook.yml:3:7", false),
    (
        "template_file_syntax_error",
        "templates/qemu.conf.j2:4:4",
        false,
    ),
    (
        "template_file_unclosed_block",
        "templates/app.conf.j2:3:1",
        false,
    ),
    ("template_syntax_error", "playbook.yml:5:43", false),
    ("two_ops", "playbook.yml:5:7", false),
    ("unclosed_quote", "playbook.yml:3:13", false),
    ("undefined_handler", "playbook.yml:7:15", false),
    (
        "undefined_in_template_file",
        "templates/libvirtd.conf.j2:4:16",
        false,
    ),
    ("undefined_variable", "playbook.yml:8:51", false),
    ("unknown_alias", "playbook.yml:4:14", false),
    ("unknown_filter", "playbook.yml:5:39", false),
    ("unknown_op", "playbook.yml:4:7", false),
    ("unknown_play_key", "playbook.yml:3:3", false),
    ("unknown_task_key", "playbook.yml:7:7", false),
    (
        "unknown_test_in_template_file",
        "templates/qemu.conf.j2:2:23",
        false,
    ),
    ("unquoted_template", "playbook.yml:6:14", false),
    ("unsupported_param", "playbook.yml:7:9", false),
    ("value_apt_key_without_data", "playbook.yml:4:7", false),
    ("value_apt_repository_bad_line", "playbook.yml:4:7", false),
    ("value_modprobe_bad_name", "playbook.yml:4:7", false),
    ("value_setup_gather_subset", "playbook.yml:5:7", false),
    ("value_sysctl_without_value", "playbook.yml:4:7", false),
    ("vars_files_missing", "playbook.yml:3:7", false),
    ("wrong_type", "playbook.yml:7:9", false),
    ("wrong_type_keyword", "playbook.yml:5:16", false),
];

#[test]
fn every_bad_fixture_is_listed() {
    let dir = Path::new(ROOT).join("tests/fixtures/bad");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/bad")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let listed: Vec<String> = BAD.iter().map(|(n, _, _)| n.to_string()).collect();
    assert_eq!(on_disk, listed);
    assert!(
        listed.len() >= 50,
        "the corpus has {} fixtures",
        listed.len()
    );
}

#[test]
fn bad_fixtures_report_the_right_place() {
    let mut failures = Vec::new();
    for (name, first, warning_only) in BAD {
        let base = PathBuf::from("tests/fixtures/bad").join(name);
        let own_inventory = base.join("inventory.yml");
        let inventory = if Path::new(ROOT).join(&own_inventory).exists() {
            own_inventory
        } else {
            PathBuf::from("tests/fixtures/bad/inventory.yml")
        };
        let (code, stdout, stderr) = ferry_check(&inventory, &base.join("playbook.yml"));
        assert!(
            !stderr.contains("panicked"),
            "{name}: ferry panicked:\n{stderr}"
        );
        let expected_code = if *warning_only { 0 } else { 1 };
        let severity = if *warning_only { "warning" } else { "error" };
        let headline = format!("{}/{first}: {severity}: ", base.display());
        // An inventory that cannot be loaded stops `ferry check` before the
        // playbook: its error is the command's error, on stderr, still with
        // its place and a hint.
        let inventory_error = format!("× {}/{first}: ", base.display());
        let positioned = stdout.starts_with(&headline)
            || (stdout.is_empty()
                && first.starts_with("inventory.yml:")
                && stderr.contains(&inventory_error)
                && stderr.contains("help: "));
        if code != expected_code || !positioned {
            failures.push(format!(
                "{name}: exit {code} (want {expected_code}), want first line `{headline}...`, got:\n{stdout}{stderr}"
            ));
        }
        let shown = if stdout.is_empty() { &stderr } else { &stdout };
        insta::assert_snapshot!(format!("bad_{name}"), shown);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn good_fixture_checks_clean() {
    let (code, stdout, stderr) = ferry_check(
        Path::new("tests/fixtures/good/inventory.yml"),
        Path::new("tests/fixtures/good/basic/playbook.yml"),
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        stdout,
        "ok: 1 playbook(s), 2 play(s), 11 task(s), 1 experiment(s) checked\n"
    );
}

#[test]
fn the_studies_experiment_checks_clean_against_the_example_10g_inventory() {
    let (code, stdout, stderr) = ferry_check(
        Path::new("inventories/example-10g"),
        Path::new("experiments/icclab-10g.yml"),
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        stdout,
        "ok: 0 playbook(s), 0 play(s), 0 task(s), 1 experiment(s) checked\n"
    );
}

#[test]
fn the_lab_quick_playbook_checks_clean_against_the_lab_inventory() {
    let (code, stdout, stderr) = ferry_check(
        Path::new("inventories/lab.yml"),
        Path::new("experiments/lab-quick.yml"),
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.ends_with(", 1 experiment(s) checked\n"), "{stdout}");
}

#[test]
fn a_pair_host_without_migration_ip_is_named() {
    // The example inventory, copied, with compute2's migration_ip removed.
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("example-10g");
    std::fs::create_dir_all(inv.join("group_vars")).unwrap();
    let src = Path::new(ROOT).join("inventories/example-10g");
    for f in ["group_vars/all.yml", "group_vars/compute.yml"] {
        std::fs::copy(src.join(f), inv.join(f)).unwrap();
    }
    let hosts = std::fs::read_to_string(src.join("hosts.yml")).unwrap();
    let without: String = hosts
        .lines()
        .filter(|l| l.trim() != "migration_ip: 10.10.0.12")
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        without.lines().count() + 1,
        hosts.lines().count(),
        "one line removed"
    );
    std::fs::write(inv.join("hosts.yml"), without).unwrap();
    let (code, stdout, stderr) = ferry_check(&inv, Path::new("experiments/icclab-10g.yml"));
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.starts_with(
            "experiments/icclab-10g.yml:13:20: error: pair host `compute2` has no `migration_ip`\n"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("set `migration_ip:`"), "{stdout}");
    assert!(stdout.ends_with("1 error, 0 warnings\n"), "{stdout}");
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let pb = dir.path().join("pb.yml");
    std::fs::write(
        &pb,
        "- hosts: all\n  tasks:\n    - coppy: {}\n    - debug: msg=x\n      notfy: h\n    - file:\n        path: /x\n        state: dir\n",
    )
    .unwrap();
    let err = ferry::playbook::load_and_check(&[pb], &Inventory::default(), &Default::default())
        .expect_err("three mistakes");
    let lines: Vec<(u32, u32)> = err
        .problems
        .iter()
        .map(|p| (p.loc.line, p.loc.col))
        .collect();
    assert_eq!(lines, vec![(3, 7), (5, 7), (8, 9)]);
}

// ----- round trip

fn word() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,8}".prop_filter("not a YAML 1.1 word", |s| {
        !matches!(
            s.as_str(),
            "yes" | "no" | "on" | "off" | "true" | "false" | "null" | "y" | "n"
        )
    })
}

fn op_task(handlers: Vec<String>) -> impl Strategy<Value = Value> {
    let op = prop_oneof![
        (word(), word()).prop_map(|(a, b)| json!({"copy": {"content": a, "dest": format!("/tmp/{b}")}})),
        (word(), prop::bool::ANY).prop_map(|(p, r)| json!({"file": {"path": format!("/srv/{p}"), "state": "directory", "recurse": r}})),
        word().prop_map(|c| json!({"command": {"_raw_params": format!("echo {c}"), "creates": "/tmp/x"}})),
        word().prop_map(|m| json!({"debug": {"msg": m}})),
        (word(), word()).prop_map(|(k, v)| json!({"set_fact": {k: v}})),
        (word(), 1i64..9).prop_map(|(n, v)| json!({"sysctl": {"name": format!("net.{n}"), "value": v.to_string()}})),
    ];
    (
        op,
        prop::option::of(word()),
        prop::option::of(prop::collection::vec(word(), 1..3)),
        prop::option::of(prop::bool::ANY),
        prop::option::of(word()),
        prop::option::of(prop::sample::subsequence(
            handlers.clone(),
            0..=handlers.len(),
        )),
        prop::option::of((1u32..5, 0u32..4)),
        prop::option::of(prop::collection::vec(word(), 1..3)),
    )
        .prop_map(
            |(op, name, tags, become_, register, notify, retries, loop_)| {
                let mut m = op.as_object().cloned().unwrap_or_default();
                if let Some(n) = name {
                    m.insert("name".into(), json!(n));
                }
                if let Some(t) = tags {
                    m.insert("tags".into(), json!(t));
                }
                if let Some(b) = become_ {
                    m.insert("become".into(), json!(b));
                }
                if let Some(r) = register {
                    m.insert("register".into(), json!(r));
                }
                if let Some(n) = notify.filter(|n| !n.is_empty()) {
                    m.insert("notify".into(), json!(n));
                }
                if let Some((r, d)) = retries {
                    m.insert("retries".into(), json!(r));
                    m.insert("delay".into(), json!(d as f64 + 0.5));
                    m.insert("until".into(), json!("1 == 1"));
                }
                if let Some(l) = loop_ {
                    m.insert("loop".into(), json!(l));
                    m.insert("when".into(), json!(["item != 'zzz'"]));
                }
                Value::Object(m)
            },
        )
}

fn task_item(handlers: Vec<String>) -> impl Strategy<Value = Value> {
    let leaf = op_task(handlers.clone());
    prop_oneof![
        3 => leaf,
        1 => (
            prop::collection::vec(op_task(handlers.clone()), 1..3),
            prop::collection::vec(op_task(handlers), 0..2),
            prop::option::of(prop::bool::ANY),
        )
            .prop_map(|(block, rescue, ignore)| {
                let mut m = serde_json::Map::new();
                m.insert("block".into(), Value::Array(block));
                if !rescue.is_empty() {
                    m.insert("rescue".into(), Value::Array(rescue));
                }
                if let Some(i) = ignore {
                    m.insert("ignore_errors".into(), json!(i));
                }
                Value::Object(m)
            }),
    ]
}

fn play() -> impl Strategy<Value = Value> {
    prop::collection::vec(word(), 0..3)
        .prop_flat_map(|mut handlers| {
            handlers.sort();
            handlers.dedup();
            let handler_tasks: Vec<Value> = handlers
                .iter()
                .map(|h| json!({"name": h, "command": {"_raw_params": "true"}}))
                .collect();
            (
                prop::collection::vec(task_item(handlers.clone()), 1..6),
                prop::option::of(word()),
                prop::option::of(prop::bool::ANY),
                prop::option::of(prop::collection::btree_map(word(), 0i64..100, 0..3)),
                prop::option::of(prop::collection::vec(word(), 1..3)),
                Just(handler_tasks),
            )
        })
        .prop_map(|(tasks, name, gather, vars, tags, handlers)| {
            let mut m = serde_json::Map::new();
            if let Some(n) = name {
                m.insert("name".into(), json!(n));
            }
            m.insert("hosts".into(), json!("all"));
            if let Some(g) = gather {
                m.insert("gather_facts".into(), json!(g));
            }
            if let Some(v) = vars.filter(|v| !v.is_empty()) {
                m.insert("vars".into(), json!(v));
            }
            if let Some(t) = tags {
                m.insert("tags".into(), json!(t));
            }
            m.insert("tasks".into(), Value::Array(tasks));
            if !handlers.is_empty() {
                m.insert("handlers".into(), Value::Array(handlers));
            }
            Value::Object(m)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// A playbook ferry accepts comes back from the model with every key and value.
    #[test]
    fn accepted_playbooks_round_trip(plays in prop::collection::vec(play(), 1..3)) {
        let input = Value::Array(plays);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("playbook.yml");
        // JSON is YAML: the loader reads it as it reads any playbook.
        std::fs::write(&path, serde_json::to_string_pretty(&input).unwrap()).unwrap();
        let result = ferry::playbook::load_and_check(
            std::slice::from_ref(&path),
            &Inventory::default(),
            &Default::default(),
        );
        let (playbooks, _) = match result {
            Ok(ok) => ok,
            Err(report) => return Err(TestCaseError::fail(format!("rejected:\n{report}"))),
        };
        prop_assert_eq!(playbooks.len(), 1);
        let back = shape::playbook(&playbooks[0]);
        prop_assert_eq!(back, input);
    }
}

#[test]
fn good_fixture_loads_into_the_model() {
    let root = Path::new(ROOT).join("tests/fixtures/good");
    let inventory = ferry::inventory::Inventory::load(&[root.join("inventory.yml")]).unwrap();
    let (pbs, warnings) = ferry::playbook::load_and_check(
        &[root.join("basic/playbook.yml")],
        &inventory,
        &Default::default(),
    )
    .unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let play = &pbs[0].plays[0];
    assert_eq!(play.hosts, "compute:controller");
    assert_eq!(play.become_, Some(true));
    // The role's task, with its role context and the parameter given where it was listed.
    let ferry::playbook::TaskItem::Task(role_task) = &play.role_tasks[0] else {
        panic!("role task expected")
    };
    let role = role_task.role.as_ref().expect("role context");
    assert_eq!(role.name, "web");
    assert_eq!(role.params["web_port"], json!(8080));
    assert_eq!(role.defaults["web_root"], json!("/srv/www"));
    // Free-form k=v split, octal mode kept as YAML 1.1 reads it.
    let ferry::playbook::TaskItem::Task(file) = &play.tasks[1] else {
        panic!()
    };
    assert_eq!(file.op, "file");
    assert_eq!(file.args["state"], json!("directory"));
    // command/shell: known k=v pulled out, the rest kept as `_raw_params`.
    let ferry::playbook::TaskItem::Task(shell) = &play.tasks[3] else {
        panic!()
    };
    assert_eq!(shell.args["_raw_params"], json!("./configure && make"));
    assert_eq!(shell.args["creates"], json!("/opt/qemu/bin/qemu"));
    assert_eq!(shell.args["chdir"], json!("/opt/qemu"));
    // include_tasks with a static name is expanded at load time.
    let ferry::playbook::TaskItem::Block(include) = &play.tasks[5] else {
        panic!()
    };
    let ferry::playbook::TaskItem::Task(line) = &include.block[0] else {
        panic!()
    };
    assert_eq!(line.op, "lineinfile");
    assert!(line.loc.file.ends_with("extra.yml"));
    assert_eq!(line.loc.line, 1);
    // Handlers of the play and of its role.
    let names: Vec<_> = play
        .handlers
        .iter()
        .filter_map(|h| h.name.clone())
        .collect();
    assert_eq!(names, vec!["reload web", "restart libvirtd"]);
    // The experiment play keeps its mapping and position.
    let exp = &pbs[0].plays[1];
    assert_eq!(
        exp.experiment.as_ref().unwrap()["matrix"]["flavor"],
        json!(["m1.tiny", "m1.small"])
    );
    assert_eq!(exp.experiment_loc.as_ref().unwrap().line, 46);
}

#[test]
fn template_errors_name_file_line_and_variable() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("nova.conf.j2");
    std::fs::write(
        &t,
        "[DEFAULT]\nhost = {{ inventory_hostname }}\nflag = {{ migration_flag }}\n",
    )
    .unwrap();
    let ctx = ferry::template::context(
        &serde_json::from_value(json!({"inventory_hostname": "c1"})).unwrap(),
    );
    let e = ferry::template::render_file(&t, &ctx).unwrap_err();
    assert_eq!(e.undefined.as_deref(), Some("migration_flag"));
    assert_eq!(e.line, Some(3));
    assert!(e.message.contains("nova.conf.j2:3"), "{}", e.message);
    let ok = ferry::template::render_file(
        &t,
        &ferry::template::context(
            &serde_json::from_value(
                json!({"inventory_hostname": "c1", "migration_flag": "VIR_MIGRATE_LIVE"}),
            )
            .unwrap(),
        ),
    )
    .unwrap();
    assert_eq!(ok, "[DEFAULT]\nhost = c1\nflag = VIR_MIGRATE_LIVE\n");
}

#[test]
fn lookups_read_files_env_and_templates() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("files")).unwrap();
    std::fs::create_dir_all(dir.path().join("templates")).unwrap();
    std::fs::write(dir.path().join("files/key.pub"), "ssh-ed25519 AAAA\n").unwrap();
    std::fs::write(dir.path().join("templates/t.j2"), "x={{ x }}").unwrap();
    let ctx = ferry::template::context(
        &serde_json::from_value(json!({"playbook_dir": dir.path(), "x": 5})).unwrap(),
    );
    let out = ferry::template::render_str(
        "{{ lookup('file', 'key.pub') }}|{{ lookup('template', 't.j2') }}|{{ lookup('env', 'FERRY_TEST_UNSET_VAR') }}",
        &ctx,
    )
    .unwrap();
    assert_eq!(out, "ssh-ed25519 AAAA|x=5|");
}

#[test]
fn import_role_brings_its_tasks_and_handlers() {
    let pb = Path::new(ROOT).join("tests/fixtures/good/include_role/playbook.yml");
    let (pbs, _) =
        ferry::playbook::load_and_check(&[pb], &Inventory::default(), &Default::default()).unwrap();
    let play = &pbs[0].plays[0];
    let ferry::playbook::TaskItem::Block(role) = &play.tasks[0] else {
        panic!("block expected")
    };
    assert_eq!(role.keywords.when, vec!["x | default(true)"]);
    let ferry::playbook::TaskItem::Task(t) = &role.block[0] else {
        panic!()
    };
    assert_eq!(t.role.as_ref().unwrap().name, "r");
    assert_eq!(play.handlers.len(), 1);
    assert_eq!(play.handlers[0].name.as_deref(), Some("r handler"));
    // A bare name in with_items is a variable, as in Ansible.
    let ferry::playbook::TaskItem::Task(cmd) = &play.tasks[2] else {
        panic!()
    };
    assert_eq!(cmd.loop_, Some(json!("{{ things }}")));
}

#[test]
fn a_variable_one_host_of_the_play_lacks_is_named_with_that_host() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("roles/r/tasks")).unwrap();
    std::fs::create_dir_all(d.join("roles/r/templates")).unwrap();
    std::fs::create_dir_all(d.join("roles/r/defaults")).unwrap();
    std::fs::write(
        d.join("inv.yml"),
        "all:\n  children:\n    web:\n      hosts:\n        w1: {ip: 10.0.0.1}\n        w2: {}\n    db:\n      hosts:\n        d1: {}\n",
    )
    .unwrap();
    std::fs::write(
        d.join("roles/r/defaults/main.yml"),
        "addr: \"{{ ip }}\"\nport: 80\n",
    )
    .unwrap();
    std::fs::write(
        d.join("roles/r/templates/t.j2"),
        "# uses ip\nport = {{ port }}\nip = {{ ip }}\n",
    )
    .unwrap();
    std::fs::write(
        d.join("roles/r/tasks/main.yml"),
        "- template: {src: t.j2, dest: /tmp/t}\n- shell: |\n    echo start\n    ping -c1 {{ ip }}\n",
    )
    .unwrap();
    std::fs::write(d.join("pb.yml"), "- hosts: web\n  roles: [r]\n").unwrap();
    let inv = Inventory::load(&[d.join("inv.yml")]).unwrap();
    let err = ferry::playbook::load_and_check(&[d.join("pb.yml")], &inv, &Default::default())
        .expect_err("w2 lacks ip");
    let text = err.render(false);
    // The template line (not its comment) and the role default that need it.
    assert!(text.contains("t.j2:3:"), "{text}");
    assert!(text.contains("defaults/main.yml:1:"), "{text}");
    // Inside a literal block: the line and column of the use itself.
    assert!(text.contains("tasks/main.yml:4:17:"), "{text}");
    assert!(
        text.contains("undefined variable `ip` for host w2"),
        "{text}"
    );
    assert!(!text.contains("w1,") && !text.contains("d1"), "{text}");
    // Every host of the play defines it: clean, though d1 (not in the play) does not.
    std::fs::write(
        d.join("inv.yml"),
        "all:\n  children:\n    web:\n      hosts:\n        w1: {ip: 10.0.0.1}\n        w2: {ip: 10.0.0.2}\n    db:\n      hosts:\n        d1: {}\n",
    )
    .unwrap();
    let inv = Inventory::load(&[d.join("inv.yml")]).unwrap();
    ferry::playbook::load_and_check(&[d.join("pb.yml")], &inv, &Default::default())
        .unwrap_or_else(|r| panic!("{}", r.render(false)));
}
