//! Inventories and variables, checked against what Ansible itself answers.
//!
//! The expected files under tests/fixtures/inventories/ were written by ansible-core
//! (`tests/fixtures/inventories/regen.sh`), so these tests compare ferry with Ansible
//! without needing Ansible installed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use assert_cmd::Command;
use ferry::inventory::{Inventory, to_document};
use ferry::playbook::Vars;
use ferry::vars::{Layer, Scope, extra_vars_scopes, parse_extra_vars};
use serde_json::{Value, json};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inventories")
}

fn case_args(case: &str) -> Vec<String> {
    let text = std::fs::read_to_string(fixtures().join(case).join("args")).unwrap();
    text.split_whitespace().map(String::from).collect()
}

fn ferry_in(case: &str, extra: &[&str]) -> String {
    let out = Command::cargo_bin("ferry")
        .unwrap()
        .current_dir(fixtures().join(case))
        .arg("inventory")
        .args(case_args(case))
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ferry inventory failed in {case}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn load_case(case: &str) -> Inventory {
    let dir = fixtures().join(case);
    let args = case_args(case);
    let paths: Vec<PathBuf> = args
        .chunks(2)
        .map(|c| {
            assert_eq!(c[0], "-i");
            dir.join(&c[1])
        })
        .collect();
    Inventory::load(&paths).unwrap()
}

fn assert_list_matches_ansible(case: &str) {
    let ours: Value = serde_json::from_str(&ferry_in(case, &["--list"])).unwrap();
    let theirs: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join(case).join("expected.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        ours, theirs,
        "ferry inventory --list differs from ansible-inventory in {case}"
    );
    let graph = ferry_in(case, &["--graph"]);
    let expected = std::fs::read_to_string(fixtures().join(case).join("expected.graph")).unwrap();
    assert_eq!(
        graph, expected,
        "--graph differs from ansible-inventory in {case}"
    );
}

#[test]
fn list_matches_ansible_nested_groups() {
    assert_list_matches_ansible("nested");
}

#[test]
fn list_matches_ansible_group_vars_and_host_vars_dirs() {
    assert_list_matches_ansible("vars_dirs");
}

#[test]
fn list_matches_ansible_several_inventories_and_a_directory() {
    assert_list_matches_ansible("multi");
}

#[test]
fn list_matches_ansible_inventory_precedence() {
    assert_list_matches_ansible("precedence");
}

#[test]
fn list_matches_ansible_ini_inventory() {
    assert_list_matches_ansible("ini");
}

#[test]
fn list_matches_ansible_directory_mixing_ini_and_yaml() {
    assert_list_matches_ansible("mixed");
}

fn assert_patterns_match_ansible(case: &str) {
    let inv = load_case(case);
    let expected: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join(case).join("expected_patterns.json")).unwrap(),
    )
    .unwrap();
    assert!(expected.len() >= 5, "{case}: too few patterns to say much");
    for e in expected {
        let pattern = e["pattern"].as_str().unwrap();
        let want: Vec<String> = serde_json::from_value(e["hosts"].clone()).unwrap();
        let got = inv.select(pattern).unwrap();
        assert_eq!(got, want, "pattern `{pattern}` in {case}");
    }
}

#[test]
fn host_patterns_select_what_ansible_selects() {
    assert_patterns_match_ansible("nested");
    assert_patterns_match_ansible("multi");
    assert_patterns_match_ansible("ini");
}

#[test]
fn limit_narrows_a_pattern_and_reads_a_file() {
    let inv = load_case("nested");
    assert_eq!(
        inv.select_limited("compute:controllers", Some("ctl0*:compute1"))
            .unwrap(),
        vec!["compute1", "ctl01", "ctl02", "ctl03"]
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("limit");
    std::fs::write(&file, "# retry\nctl02\nlonely\n").unwrap();
    let limit = format!("@{}", file.display());
    assert_eq!(
        inv.select_limited("all", Some(&limit)).unwrap(),
        vec!["ctl02", "lonely"]
    );
    assert_eq!(
        inv.unmatched_terms("compute:nosuch:!gpu").unwrap(),
        vec!["nosuch"]
    );
}

#[test]
fn bad_patterns_are_errors_naming_the_pattern() {
    let inv = load_case("nested");
    for bad in ["", "compute:&", "~web(", "compute:!"] {
        let err = inv.select(bad).unwrap_err().to_string();
        assert!(err.contains(&format!("`{bad}`")), "{err}");
    }
}

#[test]
fn explain_names_every_inventory_layer_with_file_and_line() {
    let out = ferry_in(
        "precedence",
        &["--host", "h1", "--explain", "v_hv", "-e", "v_hv=cli"],
    );
    let lines: Vec<&str> = out.lines().collect();
    let expected = [
        ("v_hv = \"cli\"", ""),
        ("set by extra vars (-e) at -e #1", "\"cli\""),
        ("overrides host_vars file at ", "host_vars/h1.yml:1:1"),
        ("overrides inventory host vars at ", "hosts.yml:28:15"),
        (
            "overrides group_vars file (child) at ",
            "group_vars/child.yml:2:1",
        ),
        (
            "overrides group_vars file (all) at ",
            "group_vars/all.yml:3:1",
        ),
        (
            "overrides inventory group vars (child) at ",
            "hosts.yml:24:13",
        ),
        (
            "overrides inventory group vars (parent) at ",
            "hosts.yml:16:9",
        ),
        ("overrides inventory group vars (all) at ", "hosts.yml:8:5"),
    ];
    assert_eq!(lines.len(), expected.len(), "{out}");
    for (line, (start, has)) in lines.iter().zip(expected) {
        assert!(
            line.trim_start().starts_with(start),
            "{line:?} should start with {start:?}"
        );
        assert!(line.contains(has), "{line:?} should name {has:?}");
    }
}

#[test]
fn host_view_matches_ansible_and_extra_vars_win() {
    let out = ferry_in("precedence", &["--host", "h1"]);
    let ours: Value = serde_json::from_str(&out).unwrap();
    let list: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("precedence/expected.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(ours, list["_meta"]["hostvars"]["h1"]);
    let out = ferry_in("precedence", &["--host", "h1", "-e", "v_all=cli"]);
    let ours: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(ours["v_all"], "cli");
}

fn scope_from_file(layer: Layer, path: &Path) -> Arc<Scope> {
    let text = std::fs::read_to_string(path).unwrap();
    let (vars, locs) = ferry::inventory::parse_vars_text(&text, path).unwrap();
    Arc::new(Scope::new(layer, path.display().to_string(), vars, locs))
}

fn scope_of(layer: Layer, from: u32, value: &str) -> Arc<Scope> {
    let vars: Vars = (from..=9)
        .map(|n| (format!("k{n}"), Value::from(value)))
        .collect();
    Arc::new(Scope::plain(layer, value, vars))
}

/// play_precedence/play.yml sets k<N> in layer N and every layer below; Ansible's answer
/// is in expected.json. The same layers built through VarLayers give the same answer.
#[test]
fn every_play_layer_resolves_as_ansible_resolves_it() {
    let dir = fixtures().join("play_precedence");
    let inv = Inventory::load(&[dir.join("hosts.yml")]).unwrap();
    let host = inv.layers("h1");
    let role = "r".to_string();
    let mut play = host.clone();
    play.push(scope_of(Layer::PlayVars, 3, "play_vars"));
    play.push(scope_from_file(
        Layer::PlayVarsFile,
        &dir.join("vars_file.yml"),
    ));
    play.push(scope_from_file(
        Layer::RoleVars { role: role.clone() },
        &dir.join("roles/r/vars/main.yml"),
    ));
    // Role defaults come last here but must still sit below the inventory.
    play.push(scope_from_file(
        Layer::RoleDefaults { role },
        &dir.join("roles/r/defaults/main.yml"),
    ));
    let mut facts = Vars::new();
    facts.insert("k8".into(), json!("set_fact"));
    facts.insert("k9".into(), json!("set_fact"));
    let play = play.with(Arc::new(Scope::plain(Layer::SetFact, "set_fact", facts)));
    let extra = extra_vars_scopes(&["k9=extra_vars".to_string()]).unwrap();
    let mut play = play;
    for s in extra {
        play.push(Arc::new(s));
    }
    // The task: block vars then task vars, pushed per task on a shared view.
    let task = play
        .with(scope_of(Layer::BlockVars, 6, "block_vars"))
        .with(scope_of(Layer::TaskVars, 7, "task_vars"));
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    for n in 1..=9 {
        let name = format!("k{n}");
        assert_eq!(
            task.get(&name),
            expected.get(&name),
            "{name}: ferry and Ansible disagree"
        );
    }
    // --explain of k9 names every layer, highest first.
    let e = task.explain("k9").unwrap();
    let layers: Vec<String> = std::iter::once(&e.winner)
        .chain(e.overridden.iter())
        .map(|s| s.layer.to_string())
        .collect();
    assert_eq!(
        layers,
        [
            "extra vars (-e)",
            "registered vars / set_fact",
            "task vars",
            "block vars",
            "role vars (r)",
            "play vars_files",
            "play vars",
            "inventory host vars",
            "role defaults (r)",
        ]
    );
    assert!(
        e.overridden[3]
            .loc
            .as_ref()
            .unwrap()
            .to_string()
            .ends_with("roles/r/vars/main.yml:5:1")
    );
    // Building the task view shares the layers: the host view is untouched.
    assert_eq!(host.get("k9"), Some(&json!("inventory_host")));
    assert_eq!(host.scopes().len(), 1);
}

#[test]
fn magic_vars_sit_above_everything() {
    let inv = load_case("nested");
    let mut v = inv.layers("compute2");
    v.push(inv.host_magic("compute2"));
    for s in extra_vars_scopes(&["inventory_hostname=evil".into()]).unwrap() {
        v.push(Arc::new(s));
    }
    assert_eq!(v.get("inventory_hostname"), Some(&json!("compute2")));
    assert_eq!(v.get("inventory_hostname_short"), Some(&json!("compute2")));
    assert_eq!(
        v.get("group_names"),
        Some(&json!(["compute", "fast", "gpu"]))
    );
    assert_eq!(v.get("mtu"), Some(&json!(9000)));
    let short = inv.host_magic("sta.example.org");
    assert_eq!(short.vars["inventory_hostname_short"], json!("sta"));
}

#[test]
fn extra_vars_read_kv_json_yaml_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ev.yml");
    std::fs::write(&file, "from_file: [1, 2]\nover: file\nflag: yes\n").unwrap();
    let vars = parse_extra_vars(&[
        "a=1 msg=\"hello world\" path='/x y'".into(),
        "{\"n\": 3, \"over\": \"json\"}".into(),
        format!("@{}", file.display()),
        "{k: v, list: [a]}".into(),
    ])
    .unwrap();
    assert_eq!(vars["a"], json!("1"));
    assert_eq!(vars["msg"], json!("hello world"));
    assert_eq!(vars["path"], json!("/x y"));
    assert_eq!(vars["n"], json!(3));
    assert_eq!(vars["over"], json!("file"));
    assert_eq!(vars["from_file"], json!([1, 2]));
    assert_eq!(vars["flag"], json!(true));
    assert_eq!(vars["list"], json!(["a"]));
    for (bad, says) in [
        ("novalue", "`novalue` is not `key=value`"),
        ("a=\"open", "unclosed quote"),
        ("@/no/such/file.yml", "cannot read /no/such/file.yml"),
        ("[1, 2]", "must be a mapping"),
    ] {
        let err = parse_extra_vars(&[bad.to_string()])
            .unwrap_err()
            .to_string();
        assert!(err.contains(says), "-e {bad}: {err}");
    }
}

#[test]
fn bad_inventories_name_file_line_and_column() {
    let bad = fixtures().join("bad");
    for (file, line_col, says) in [
        (
            "cycle.yml",
            ":10:9:",
            "circular group children: a -> b -> c -> a",
        ),
        ("unknown_key.yml", ":4:7:", "did you mean `hosts`"),
        ("tab.yml", ":3:1:", "tab"),
        (
            "hosts_list.yml",
            ":5:9:",
            "`hosts` of group `web` must be a mapping",
        ),
        ("dup_key.yml", ":5:7:", "duplicate key `port`"),
        (
            "bad_vars.yml",
            ":3:5:",
            "`vars` of group `all` must be a mapping",
        ),
        ("bad_range.yml", ":3:5:", "runs backwards"),
        ("not_a_map.yml", ":1:1:", "mapping of group names"),
        (
            "bad_group_vars/hosts.yml",
            "group_vars/all.yml:1:1:",
            "must be a mapping",
        ),
    ] {
        let err = Inventory::load(&[bad.join(file)]).unwrap_err();
        let text = format!("{err}");
        let help = miette::Diagnostic::help(&err).map(|h| h.to_string());
        assert!(text.contains(line_col), "{file}: {text}");
        assert!(
            text.contains(says) || help.as_deref().unwrap_or("").contains(says),
            "{file}: {text} / {help:?}"
        );
        assert!(help.is_some(), "{file}: an error says what to do");
    }
    let err = Inventory::load(&[bad.join("missing.yml")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.yml"), "{err}");
}

#[test]
fn cli_reports_errors_and_unknown_hosts() {
    let out = Command::cargo_bin("ferry")
        .unwrap()
        .current_dir(fixtures().join("bad"))
        .args(["inventory", "-i", "cycle.yml", "--list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cycle.yml:10:9"), "{err}");
    let out = Command::cargo_bin("ferry")
        .unwrap()
        .current_dir(fixtures().join("nested"))
        .args(["inventory", "-i", "hosts.yml", "--host", "nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`nope`"));
}

mod roundtrip {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
            "[a-z]{0,8}".prop_map(Value::from),
            "[ -~]{0,12}".prop_map(Value::from),
            prop_oneof![
                Just("yes"),
                Just("no"),
                Just("on"),
                Just("off"),
                Just("0755"),
                Just("1.5"),
                Just("~"),
                Just("null")
            ]
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z_]{1,6}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn vars() -> impl Strategy<Value = Vars> {
        prop::collection::btree_map("[a-z_][a-z0-9_]{0,7}", value(), 0..4)
            .prop_map(|m| m.into_iter().collect())
    }

    /// A random inventory in Ansible's YAML shape: groups g0..gN whose children only name
    /// later groups (no cycles), hosts with vars, ranges of host names.
    fn inventory_doc() -> impl Strategy<Value = Value> {
        (1usize..6, 1usize..8).prop_flat_map(|(ng, nh)| {
            (
                prop::collection::vec(
                    (
                        vars(),
                        prop::collection::vec((0..nh, vars()), 0..4),
                        prop::collection::vec(any::<prop::sample::Index>(), 0..3),
                    ),
                    ng,
                ),
                vars(),
                prop::collection::vec(0..nh, 0..3),
            )
                .prop_map(move |(groups, all_vars, all_hosts)| {
                    let mut all = serde_json::Map::new();
                    all.insert("vars".into(), Value::Object(all_vars.into_iter().collect()));
                    let hosts: serde_json::Map<String, Value> = all_hosts
                        .iter()
                        .map(|h| (format!("h{h}"), Value::Null))
                        .collect();
                    all.insert("hosts".into(), Value::Object(hosts));
                    let mut doc = serde_json::Map::new();
                    doc.insert("all".into(), Value::Object(all));
                    for (i, (gvars, ghosts, kids)) in groups.into_iter().enumerate() {
                        let mut g = serde_json::Map::new();
                        g.insert("vars".into(), Value::Object(gvars.into_iter().collect()));
                        let hosts: serde_json::Map<String, Value> = ghosts
                            .into_iter()
                            .map(|(h, v)| (format!("h{h}"), Value::Object(v.into_iter().collect())))
                            .collect();
                        g.insert("hosts".into(), Value::Object(hosts));
                        let later = ng - i - 1;
                        if later > 0 {
                            let children: serde_json::Map<String, Value> = kids
                                .into_iter()
                                .map(|k| (format!("g{}", i + 1 + k.index(later)), Value::Null))
                                .collect();
                            g.insert("children".into(), Value::Object(children));
                        }
                        doc.insert(format!("g{i}"), Value::Object(g));
                    }
                    // A range of host names too.
                    doc.insert(
                        "ranged".into(),
                        json!({"hosts": {"r[01:03]": {"port_of": "r"}}}),
                    );
                    Value::Object(doc)
                })
        })
    }

    fn load_text(dir: &Path, name: &str, text: &str) -> Inventory {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        Inventory::load(&[path]).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    fn same_model(a: &Inventory, b: &Inventory) -> Result<(), TestCaseError> {
        // Declaration order of hosts may change (a host is written at its first group);
        // every order that selects hosts (group hosts, children) is compared below.
        let mut ha: Vec<_> = a.hosts.keys().collect();
        let mut hb: Vec<_> = b.hosts.keys().collect();
        ha.sort();
        hb.sort();
        prop_assert_eq!(ha, hb);
        for (name, h) in &a.hosts {
            prop_assert_eq!(&h.vars, &b.hosts[name].vars, "host {}", name);
        }
        prop_assert_eq!(a.groups.len(), b.groups.len());
        for (name, g) in &a.groups {
            let o = &b.groups[name];
            prop_assert_eq!(&g.hosts, &o.hosts, "hosts of {}", name);
            prop_assert_eq!(&g.children, &o.children, "children of {}", name);
            prop_assert_eq!(&g.vars, &o.vars, "vars of {}", name);
        }
        prop_assert_eq!(
            ferry::inventory::list_json(a),
            ferry::inventory::list_json(b)
        );
        prop_assert_eq!(a.select("all").unwrap(), b.select("all").unwrap());
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn inventories_round_trip_without_losing_a_key(doc in inventory_doc()) {
            let dir = tempfile::tempdir().unwrap();
            // The generated document, as YAML and as JSON (JSON is YAML too).
            let yaml = serde_saphyr::to_string(&doc).unwrap();
            let first = load_text(dir.path(), "a.yml", &yaml);
            let from_json = load_text(dir.path(), "b.yml", &serde_json::to_string_pretty(&doc).unwrap());
            same_model(&first, &from_json)?;
            // Every variable written is in the model, with its value.
            for (gname, g) in doc.as_object().unwrap() {
                if let Some(vars) = g.get("vars").and_then(Value::as_object) {
                    for (k, v) in vars {
                        prop_assert_eq!(first.groups[gname.as_str()].vars.get(k), Some(v), "group {} var {}", gname, k);
                    }
                }
            }
            // Model -> document -> model keeps everything.
            let back = serde_saphyr::to_string(&to_document(&first)).unwrap();
            let second = load_text(dir.path(), "c.yml", &back);
            same_model(&first, &second)?;
        }
    }
}

#[test]
fn a_view_renders_templates_without_flattening() {
    let inv = load_case("vars_dirs");
    let view = inv.layers("web1").with(Arc::new(Scope::plain(
        Layer::TaskVars,
        "task",
        [("greeting".to_string(), json!("hi"))]
            .into_iter()
            .collect(),
    )));
    let env = minijinja::Environment::new();
    let out = env
        .render_str(
            "{{ greeting }} {{ http_port }} {{ doc_root }} {{ site }} {{ tls }}",
            view.to_context(),
        )
        .unwrap();
    assert_eq!(out, "hi 8080 /srv/tls from_group_vars_all True");
    // Names are listed once each, whatever the number of layers setting them.
    let names = view.names();
    assert_eq!(names.iter().filter(|n| *n == "http_port").count(), 1);
    assert_eq!(inv.host_vars("web1")["http_port"], json!(8080));
}

#[test]
fn template_values_keep_types_and_order() {
    let inv = load_case("nested");
    let view = inv.layers("lonely");
    let env = minijinja::Environment::new();
    let out = env
        .render_str(
            "{{ nested.list[2].three + answer }} {{ nested | list | join(',') }} {{ nested.yes_bool }}",
            view.to_context(),
        )
        .unwrap();
    assert_eq!(out, "45 list,yes_bool,off_bool,quoted True");
}

#[test]
fn vars_files_naming_nothing_are_warnings() {
    let inv = Inventory::load(&[fixtures().join("bad/stray_vars/hosts.yml")]).unwrap();
    let w: Vec<String> = inv.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w[0].contains("group_vars/webb.yml:1:1: warning: `webb` is not a group"),
        "{w:?}"
    );
    assert!(w[0].contains("did you mean `web`?"), "{w:?}");
    assert!(
        w[1].contains("host_vars/web2.yml:1:1: warning: `web2` is not a host"),
        "{w:?}"
    );
    // The files that do match are read.
    assert_eq!(inv.host_vars("web1")["x"], json!(1));
    let hv = inv.hostvars();
    assert_eq!(hv["web1"]["x"], json!(1));
}

#[test]
fn list_with_limit_matches_ansible() {
    let ours: Value = serde_json::from_str(&ferry_in(
        "nested",
        &["--list", "--limit", "compute:ctl01:!gpu"],
    ))
    .unwrap();
    let theirs: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("nested/expected_limit.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(ours, theirs);
}

#[test]
fn group_hosts_of_an_unknown_group_is_empty_not_a_panic() {
    let inv = Inventory::default();
    assert!(inv.group_hosts("all").is_empty());
    let inv = load_case("nested");
    assert!(inv.group_hosts("no_such_group").is_empty());
    assert!(!inv.group_hosts("all").is_empty());
}

/// An inventory built in code (as a library user or a test does) may lack the
/// implicit `all` and `ungrouped` groups: `all` still means every host, and
/// nothing panics.
#[test]
fn an_inventory_built_without_all_answers_instead_of_panicking() {
    use ferry::inventory::{Group, Host};
    let mut inv = Inventory::default();
    for h in ["h1", "h2", "lone"] {
        inv.hosts.insert(
            h.into(),
            Host {
                name: h.into(),
                ..Host::default()
            },
        );
    }
    inv.groups.insert(
        "web".into(),
        Group {
            name: "web".into(),
            hosts: vec!["h1".into(), "h2".into()],
            priority: 1,
            ..Group::default()
        },
    );
    inv.finish();
    assert_eq!(inv.group_hosts("all"), vec!["h1", "h2", "lone"]);
    assert_eq!(inv.group_hosts("web"), vec!["h1", "h2"]);
    assert_eq!(inv.select("all").unwrap(), vec!["h1", "h2", "lone"]);
    assert_eq!(inv.select("web:!h2").unwrap(), vec!["h1"]);
    assert_eq!(inv.host_groups("h1"), vec!["web"]);
    assert_eq!(inv.group_names("h1"), vec!["web"]);
    assert!(inv.host_groups("lone").is_empty());
    assert!(inv.group_hosts("nosuch").is_empty());
}
