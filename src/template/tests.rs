//! The template module's tests: rendering, filters, lookups and the variable check.

use super::*;
use serde_json::json;

fn ctx(v: serde_json::Value) -> Value {
    Value::from(minijinja::value::Serde(&v))
}

fn vars(v: serde_json::Value) -> Vars {
    serde_json::from_value(v).unwrap()
}

/// Variables are templated when read (a role default naming an inventory
/// variable), keeping native types, as in Ansible.
#[test]
fn variables_are_templated_when_read() {
    let c = context(&vars(json!({
        "mgmt_ip": "10.0.0.1",
        "listen": "{{ mgmt_ip if not via_mig else 'x' }}",
        "via_mig": "{{ 1 > 2 }}",
        "uri": "qemu+tcp://{{ listen }}/system",
        "ports": ["{{ 49152 }}", 49215],
        "out": {"stdout": "a {{ b"},
        "reg": {"stdout": "{{ mgmt_ip }} {{ nope }}", "changed": true, "failed": false},
    })));
    assert_eq!(
        render_value("{{ uri }}", &c).unwrap(),
        json!("qemu+tcp://10.0.0.1/system")
    );
    assert_eq!(
        render_value("{{ ports }}", &c).unwrap(),
        json!([49152, 49215])
    );
    assert!(eval_condition("not via_mig", &c).unwrap());
    assert_eq!(
        render_value("{{ out.stdout }}", &c).unwrap(),
        json!("a {{ b")
    );
    assert_eq!(
        render_value("{{ reg.stdout }}", &c).unwrap(),
        json!("{{ mgmt_ip }} {{ nope }}")
    );
    assert!(eval_condition("nope is not defined", &c).unwrap());
    let missing = context(&vars(json!({"listen": "{{ mgmt_ip }}"})));
    let e = render_value("x={{ listen }}", &missing).unwrap_err();
    assert!(
        e.message.contains("listen") && e.message.contains("mgmt_ip"),
        "{e:?}"
    );
    let looped = context(&vars(json!({"a": "{{ b }}", "b": "{{ a }}"})));
    let e = render_value("{{ a }}", &looped).unwrap_err();
    assert!(e.message.contains("recursive loop"), "{e:?}");
}

#[test]
fn xml_and_html_templates_are_not_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("domain.xml.j2");
    std::fs::write(&f, "<cmdline>ip={{ ip }}</cmdline>\n").unwrap();
    let c = context(&vars(json!({"ip": "10.0.0.2/24 <&>"})));
    assert_eq!(
        render_file(&f, &c).unwrap(),
        "<cmdline>ip=10.0.0.2/24 <&></cmdline>\n"
    );
}

#[test]
fn whole_expression_keeps_its_type() {
    let c = ctx(json!({"xs": [1, 2], "n": 3}));
    assert_eq!(render_value("{{ xs }}", &c).unwrap(), json!([1, 2]));
    assert_eq!(render_value("{{ n + 1 }}", &c).unwrap(), json!(4));
    assert_eq!(render_value("n={{ n }}", &c).unwrap(), json!("n=3"));
    assert_eq!(render_value("plain", &c).unwrap(), json!("plain"));
}

#[test]
fn undefined_is_an_error_naming_the_variable() {
    let e = render_value("x={{ nope }}", &ctx(json!({}))).unwrap_err();
    assert_eq!(e.undefined.as_deref(), Some("nope"), "{e:?}");
    assert_eq!(
        render_str("{{ nope | default('d') }}", &ctx(json!({}))).unwrap(),
        "d"
    );
}

#[test]
fn ansible_filters() {
    let c = ctx(json!({"a": {"x": 1}, "b": {"y": 2}, "s": "Hello World", "r": {"changed": true}}));
    let r = |t: &str| render_str(t, &c).unwrap();
    assert_eq!(r("{{ 'yes' | bool }} {{ 'no' | bool }}"), "True False");
    assert_eq!(r("{{ a | combine(b) | to_json }}"), r#"{"x":1,"y":2}"#);
    assert_eq!(
        r("{{ s | regex_replace('(\\\\w+) (\\\\w+)', '\\\\2 \\\\1') }}"),
        "World Hello"
    );
    assert_eq!(r("{{ s | regex_search('W\\\\w+') }}"), "World");
    assert_eq!(r("{{ 'abc' | b64encode | b64decode }}"), "abc");
    assert_eq!(
        r("{{ '/a/b/c.txt' | basename }} {{ '/a/b/c.txt' | dirname }}"),
        "c.txt /a/b"
    );
    assert_eq!(r("{{ \"it's\" | quote }}"), r#"'it'"'"'s'"#);
    assert_eq!(
        r("{{ a | dict2items | items2dict | to_json }}"),
        r#"{"x":1}"#
    );
    assert_eq!(
        r("{{ r is changed }} {{ r is failed }} {{ r is succeeded }}"),
        "True False True"
    );
    assert_eq!(
        r("{{ s is match('Hel') }} {{ s is search('Wor') }} {{ s is match('Wor') }}"),
        "True True False"
    );
    assert_eq!(r("{{ a | to_yaml }}").trim(), "x: 1");
}

#[test]
fn undefined_whole_expressions_are_errors() {
    let c = ctx(json!({"r": {"rc": 0}}));
    let e = render_value("{{ nope }}", &c).unwrap_err();
    assert_eq!(e.undefined.as_deref(), Some("nope"));
    assert!(eval_condition("nope", &c).is_err());
    assert!(eval_condition("r.missing", &c).is_err());
    assert!(eval_condition("r.rc == 0", &c).unwrap());
    assert_eq!(
        render_json(&json!({"a": ["{{ r.rc }}", "x{{ r.rc }}"]}), &c).unwrap(),
        json!({"a": [0, "x0"]})
    );
}

#[test]
fn conditions() {
    let c = ctx(json!({"x": 2, "flag": "yes"}));
    assert!(eval_condition("x > 1", &c).unwrap());
    assert!(eval_condition("flag | bool", &c).unwrap());
    assert!(!eval_condition("{{ x == 3 }}", &c).unwrap());
    assert!(eval_condition("y is not defined", &c).unwrap());
}

#[test]
fn needed_variables_skip_guarded_ones() {
    let need = check_str(
        "{{ a }} {{ b | default(1) }} {% for i in c %}{{ i }}{% endfor %} {{ d.e is defined }}",
    )
    .unwrap();
    assert_eq!(need.into_iter().collect::<Vec<_>>(), vec!["a", "c"]);
    assert!(check_str("{{ a ").unwrap_err().syntax);
}

#[test]
fn product_filter() {
    let c = ctx(serde_json::json!({}));
    assert_eq!(
        render_value("{{ ['a', 'b'] | product([1, 2]) | list }}", &c).unwrap(),
        serde_json::json!([["a", 1], ["a", 2], ["b", 1], ["b", 2]])
    );
}

#[test]
fn text_around_one_expression_is_kept() {
    let ctx = ctx(serde_json::json!({"x": "made", "n": 3}));
    assert_eq!(
        render_value("{{ x }}\n", &ctx).unwrap(),
        serde_json::json!("made\n")
    );
    assert_eq!(
        render_value(" {{ n }}", &ctx).unwrap(),
        serde_json::json!(" 3")
    );
    assert_eq!(render_value("{{ n }}", &ctx).unwrap(), serde_json::json!(3));
}

#[test]
fn trim_blocks_like_ansible() {
    let out = render_str("{% if true %}\nx\n{% endif %}\n", &ctx(json!({}))).unwrap();
    assert_eq!(out, "x\n");
}
