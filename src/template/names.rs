//! The filters and tests a template names, each checked against the one
//! environment when the template is checked: minijinja itself finds an unknown
//! filter only when it renders, on a host, after the tasks before it ran.

use std::collections::HashMap;
use std::sync::Mutex;

use minijinja::ErrorKind;
use minijinja::machinery::{Token, tokenize};

/// A filter or a test the environment does not have, named at byte `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Unknown {
    pub kind: &'static str,
    pub name: String,
    pub offset: usize,
}

/// The first filter (`| name`) or test (`is [not] name`) in `src` that the
/// environment lacks. `in_expr`: `src` is a bare expression (`when:`), not a
/// template. Text that does not tokenize is the parser's to report: none here.
pub(super) fn first_unknown(src: &str, in_expr: bool) -> Option<Unknown> {
    let tokens: Vec<_> = tokenize(src, in_expr, super::syntax())
        .map_while(Result::ok)
        .collect();
    for (i, (token, _)) in tokens.iter().enumerate() {
        let (kind, mut at) = match token {
            Token::Pipe => ("filter", i + 1),
            Token::Ident("is") => ("test", i + 1),
            _ => continue,
        };
        if kind == "test" && matches!(tokens.get(at), Some((Token::Ident("not"), _))) {
            at += 1;
        }
        let Some((Token::Ident(name), span)) = tokens.get(at) else {
            continue;
        };
        if !exists(kind, name) {
            return Some(Unknown {
                kind,
                name: name.to_string(),
                offset: span.start_offset as usize,
            });
        }
    }
    None
}

/// Whether the environment has the filter or test `name`: evaluating it on
/// `none` fails with "unknown filter/test" only when it has not (any other
/// failure, such as a missing argument, means it is there). Remembered.
fn exists(kind: &'static str, name: &str) -> bool {
    static SEEN: Mutex<Option<HashMap<(&'static str, String), bool>>> = Mutex::new(None);
    let key = (kind, name.to_string());
    if let Some(&known) = SEEN.lock().unwrap().get_or_insert_default().get(&key) {
        return known;
    }
    let (expr, unknown) = match kind {
        "filter" => (format!("none | {name}"), ErrorKind::UnknownFilter),
        _ => (format!("none is {name}"), ErrorKind::UnknownTest),
    };
    let found = match super::env().compile_expression(&expr) {
        Ok(e) => e.eval(()).map_or_else(|e| e.kind() != unknown, |_| true),
        Err(e) => e.kind() != unknown,
    };
    SEEN.lock()
        .unwrap()
        .get_or_insert_default()
        .insert(key, found);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_filters_and_tests_are_found_where_they_are_written() {
        let u = first_unknown("a {{ x | to_jsn }}", false).unwrap();
        assert_eq!((u.kind, u.name.as_str(), u.offset), ("filter", "to_jsn", 9));
        let u = first_unknown("x is not definedd", true).unwrap();
        assert_eq!((u.kind, u.name.as_str(), u.offset), ("test", "definedd", 9));
    }

    #[test]
    fn known_ones_and_pipes_in_strings_pass() {
        for s in [
            "{{ x | default('a|b') | to_json | regex_replace('a', 'b') }}",
            "{% if x is defined and y is not none %}{{ x | map('upper') | list }}{% endif %}",
            "{% raw %}{{ x | nosuch }}{% endraw %} plain | text",
            "{{ d | dict2items | selectattr('key', 'match', 'a') | items2dict }}",
        ] {
            assert_eq!(first_unknown(s, false), None, "{s}");
        }
        assert_eq!(first_unknown("x | bool and y is succeeded", true), None);
    }
}
