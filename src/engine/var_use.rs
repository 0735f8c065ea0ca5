//! Which variables a task reads before its op runs (check mode's "uses an unchecked result",
//! and whether `hostvars` must be built).

use serde_json::Value;

use crate::playbook::{Task, TaskKeywords};

/// Whether any text of the task (args, conditions, loop) names `word`; used to
/// build expensive views (`hostvars`) only for the tasks that read them.
pub(super) fn task_mentions(t: &Task, kw: &TaskKeywords, word: &str) -> bool {
    pub(super) fn in_value(v: &Value, word: &str) -> bool {
        match v {
            Value::String(s) => s.contains(word),
            Value::Array(a) => a.iter().any(|x| in_value(x, word)),
            Value::Object(m) => m.values().any(|x| in_value(x, word)),
            _ => false,
        }
    }
    t.args.values().any(|v| in_value(v, word))
        || kw.when.iter().any(|w| w.contains(word))
        || kw.vars.values().any(|v| in_value(v, word))
        || t.changed_when.iter().any(|w| w.contains(word))
        || t.failed_when.iter().any(|w| w.contains(word))
        || t.until.as_deref().is_some_and(|w| w.contains(word))
        || t.loop_.as_ref().is_some_and(|v| in_value(v, word))
        || kw.delegate_to.as_deref().is_some_and(|w| w.contains(word))
}

/// Whether the task reads variable `name` before its op runs: in `when`, in
/// the Jinja parts of its arguments, loop, vars and environment, or in
/// `delegate_to` (`changed_when`/`failed_when`/`until` see its own new result).
pub(super) fn task_uses_var(t: &Task, kw: &TaskKeywords, name: &str) -> bool {
    pub(super) fn in_expr(e: &str, name: &str) -> bool {
        let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
        e.match_indices(name).any(|(i, _)| {
            let before = e[..i].chars().next_back();
            let after = e[i + name.len()..].chars().next();
            !before.is_some_and(|c| ident(c) || c == '.') && !after.is_some_and(ident)
        })
    }
    pub(super) fn in_template(s: &str, name: &str) -> bool {
        let mut rest = s;
        while let Some(i) = rest.find(['{']) {
            let tail = &rest[i..];
            let close = if tail.starts_with("{{") {
                "}}"
            } else if tail.starts_with("{%") {
                "%}"
            } else {
                rest = &rest[i + 1..];
                continue;
            };
            let end = tail.find(close).unwrap_or(tail.len());
            if in_expr(&tail[2..end], name) {
                return true;
            }
            rest = &tail[end.min(tail.len())..];
            if rest.len() < 2 {
                break;
            }
            rest = &rest[2..];
        }
        false
    }
    pub(super) fn in_value(v: &Value, name: &str) -> bool {
        match v {
            Value::String(s) => in_template(s, name),
            Value::Array(a) => a.iter().any(|x| in_value(x, name)),
            Value::Object(m) => m.values().any(|x| in_value(x, name)),
            _ => false,
        }
    }
    t.args.values().any(|v| in_value(v, name))
        || kw.when.iter().any(|w| in_expr(w, name))
        || kw.vars.values().any(|v| in_value(v, name))
        || kw.environment.iter().any(|v| in_value(v, name))
        || t.loop_.as_ref().is_some_and(|v| in_value(v, name))
        || kw
            .delegate_to
            .as_deref()
            .is_some_and(|d| in_template(d, name))
}

#[cfg(test)]
mod uses_var_tests {
    use super::*;
    use serde_json::json as j;

    #[test]
    fn only_jinja_names_count() {
        let task = |args: Value, when: &[&str]| {
            let t = Task {
                args: serde_json::from_value(args).unwrap(),
                ..Task::default()
            };
            let kw = TaskKeywords {
                when: when.iter().map(|w| w.to_string()).collect(),
                ..TaskKeywords::default()
            };
            (t, kw)
        };
        let uses = |args: Value, when: &[&str], name: &str| {
            let (t, kw) = task(args, when);
            task_uses_var(&t, &kw, name)
        };
        assert!(uses(
            j!({"content": "said {{ content.stdout }}"}),
            &[],
            "content"
        ));
        assert!(uses(j!({"x": ["a", "{% if c %}y{% endif %}"]}), &[], "c"));
        assert!(uses(j!({}), &["failing is failed"], "failing"));
        assert!(!uses(j!({"content": "plain content"}), &[], "content"));
        assert!(!uses(
            j!({"x": "{{ r.content }} {{ contents }}"}),
            &[],
            "content"
        ));
        assert!(!uses(j!({"x": "{{ a }"}), &["not other"], "b"));
    }
}
