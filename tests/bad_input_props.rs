//! Property tests over what a user writes: YAML, inventories and templates.
//! Whatever the text, ferry never panics, and it either accepts the input or
//! rejects it with a position (file:line:col, or the template line) and a
//! message. Inputs are mutations of real files (a character inserted,
//! deleted or replaced, lines swapped) and strings of the characters that
//! mean something to YAML and Jinja.

use std::path::{Path, PathBuf};

use ferry::inventory::Inventory;
use proptest::prelude::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn seed(rel: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(rel)).unwrap()
}

/// One edit of a seed text.
#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, char),
    Delete(usize),
    Replace(usize, char),
    SwapLines(usize, usize),
}

fn significant() -> impl Strategy<Value = char> {
    prop::sample::select(vec![
        ':', '-', ' ', '\n', '\t', '{', '}', '[', ']', '&', '*', '!', '|', '>', '\'', '"', '#',
        '%', '?', ',', '@', '`', '\\', '=', 'a', '1', '.', '\u{feff}', 'é', '\r',
    ])
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), significant()).prop_map(|(i, c)| Edit::Insert(i, c)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), significant()).prop_map(|(i, c)| Edit::Replace(i, c)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for e in edits {
        let n = chars.len().max(1);
        match *e {
            Edit::Insert(i, c) => chars.insert(i % (chars.len() + 1), c),
            Edit::Delete(i) if !chars.is_empty() => {
                chars.remove(i % n);
            }
            Edit::Replace(i, c) if !chars.is_empty() => chars[i % n] = c,
            Edit::SwapLines(a, b) => {
                let s: String = chars.iter().collect();
                let mut lines: Vec<&str> = s.split('\n').collect();
                let l = lines.len();
                lines.swap(a % l, b % l);
                chars = lines.join("\n").chars().collect();
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

/// Strings made of YAML's and Jinja's syntax characters and a few words.
fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            significant().prop_map(String::from),
            prop::sample::select(vec![
                "{{",
                "}}",
                "{%",
                "%}",
                "{#",
                "#}",
                "hosts:",
                "children:",
                "vars:",
                "all:",
                "- ",
                "  ",
                "\n  ",
                "if ",
                "for x in ",
                "endif",
                "endfor",
                "x",
                "|default(",
                ")",
                "&a ",
                "*a",
                "!!str ",
                "--- ",
                "...",
                "0x",
                "1e99",
                "~",
                "<<: ",
            ])
            .prop_map(String::from),
        ],
        0..60,
    )
    .prop_map(|v| v.concat())
}

/// `file:line:col: ` at the start of an error's first line, with line >= 1.
fn positioned(msg: &str, file: &Path) -> bool {
    let Some(rest) = msg.strip_prefix(&format!("{}:", file.display())) else {
        return false;
    };
    let mut parts = rest.splitn(3, ':');
    let line = parts.next().and_then(|l| l.parse::<u32>().ok());
    let col = parts.next().and_then(|c| c.parse::<u32>().ok());
    matches!((line, col), (Some(l), Some(_)) if l >= 1) && parts.next().is_some_and(|m| m.len() > 1)
}

fn check_yaml(text: &str) -> Result<(), TestCaseError> {
    let path = PathBuf::from("fuzz/input.yml");
    if let Err(e) = ferry::yaml::parse_str(text, &path) {
        let loc = e.loc();
        prop_assert!(loc.line >= 1, "no line: {e}");
        prop_assert!(!e.message().is_empty(), "no message");
    }
    Ok(())
}

fn check_inventory(text: &str) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inventory.yml");
    std::fs::write(&path, text).unwrap();
    if let Err(e) = Inventory::load(std::slice::from_ref(&path)) {
        let msg = e.to_string();
        prop_assert!(positioned(&msg, &path), "not positioned: {msg}");
    }
    Ok(())
}

fn check_template(text: &str) -> Result<(), TestCaseError> {
    let mut vars = ferry::playbook::Vars::new();
    vars.insert("x".into(), "1".into());
    vars.insert("a".into(), serde_json::json!([1, 2]));
    let ctx = ferry::template::context(&vars);
    if let Err(e) = ferry::template::render_str(text, &ctx) {
        prop_assert!(e.line.is_some_and(|l| l >= 1), "no line: {e:?}");
        prop_assert!(!e.message.is_empty());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn yaml_mutations_parse_or_fail_with_a_position(
        edits in prop::collection::vec(edit(), 1..6),
        which in 0usize..3,
    ) {
        let seeds = ["inventories/lab.yml", "playbooks/testbed.yml", "tests/fixtures/bad/inventory.yml"];
        let text = apply(&seed(seeds[which % seeds.len()]), &edits);
        check_yaml(&text)?;
    }

    #[test]
    fn yaml_soup_parses_or_fails_with_a_position(text in soup()) {
        check_yaml(&text)?;
    }

    #[test]
    fn inventory_mutations_load_or_fail_with_a_position(edits in prop::collection::vec(edit(), 1..6)) {
        let text = apply(&seed("tests/fixtures/bad/inventory.yml"), &edits);
        check_inventory(&text)?;
    }

    #[test]
    fn inventory_soup_loads_or_fails_with_a_position(text in soup()) {
        check_inventory(&text)?;
    }

    #[test]
    fn template_mutations_render_or_fail_with_a_line(edits in prop::collection::vec(edit(), 1..6)) {
        let text = apply("[libvirt]\n{% if x %}\nlisten = {{ x | default('0.0.0.0') }}\n{% for i in a %}n{{ i }} = {{ i * 2 }}\n{% endfor %}\n{% endif %}\n", &edits);
        check_template(&text)?;
    }

    #[test]
    fn template_soup_renders_or_fails_with_a_line(text in soup()) {
        check_template(&text)?;
    }
}
