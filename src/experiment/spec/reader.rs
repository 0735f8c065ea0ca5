//! Reading an experiment file's values: the problems found so far, and one reader
//! per kind of scalar or collection, each reporting a wrong value where it is.

use std::time::Duration;

use crate::experiment::quantity::{parse_duration, parse_rate};
use crate::playbook::diag::Problem;
use crate::suggest::suggest;
use crate::yaml::SourceLoc;
use crate::yaml::{Node, NodeKind};

pub(super) struct SpecReader {
    pub(super) problems: Vec<Problem>,
}

impl SpecReader {
    pub(super) fn error(
        &mut self,
        loc: &SourceLoc,
        msg: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.problems
            .push(Problem::error(loc, msg).hint(hint.into()));
    }

    /// The mapping's entries, with unknown keys reported (and a suggestion).
    pub(super) fn entries<'n>(
        &mut self,
        node: &'n Node,
        known: &[&str],
        what: &str,
    ) -> Vec<(&'n str, &'n Node)> {
        let Some(map) = node.as_map() else {
            self.problems.push(
                Problem::error(
                    &node.loc,
                    format!("{what} must be a mapping, not {}", node.type_name()),
                )
                .label("here"),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in map {
            let key = match &k.kind {
                NodeKind::Str(s) => s.as_str(),
                _ => {
                    self.problems.push(Problem::error(
                        &k.loc,
                        format!("{what} keys are names, not {}", k.type_name()),
                    ));
                    continue;
                }
            };
            if known.contains(&key) {
                out.push((key, v));
            } else {
                let hint = match suggest(key, known.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("{what} keys: {}", known.join(", ")),
                };
                self.problems.push(
                    Problem::error(&k.loc, format!("unknown {what} key `{key}`"))
                        .label("unknown key")
                        .hint(hint)
                        .span_len(key.len()),
                );
            }
        }
        out
    }

    pub(super) fn string(&mut self, key: &str, v: &Node) -> Option<String> {
        match &v.kind {
            NodeKind::Str(s) if !s.trim().is_empty() => Some(s.clone()),
            NodeKind::Int(_) | NodeKind::Float(_) => v.scalar_text(),
            _ => {
                self.error(
                    &v.loc,
                    format!("`{key}` must be a non-empty string, not {}", v.type_name()),
                    format!("write `{key}: some-text`"),
                );
                None
            }
        }
    }

    pub(super) fn uint(&mut self, key: &str, v: &Node, min: u64) -> Option<u64> {
        match v.as_i64() {
            Some(i) if i >= min as i64 => Some(i as u64),
            _ => {
                self.error(
                    &v.loc,
                    format!(
                        "`{key}` must be a whole number >= {min}, not {}",
                        describe(v)
                    ),
                    format!("write e.g. `{key}: {}`", min.max(1)),
                );
                None
            }
        }
    }

    pub(super) fn positive(&mut self, key: &str, v: &Node) -> Option<f64> {
        match v.as_f64() {
            Some(f) if f > 0.0 => Some(f),
            _ => {
                self.error(
                    &v.loc,
                    format!("`{key}` must be a number > 0, not {}", describe(v)),
                    format!("write e.g. `{key}: 1`"),
                );
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, key: &str, v: &Node) -> Option<bool> {
        match v.as_bool() {
            Some(b) => Some(b),
            None => {
                self.error(
                    &v.loc,
                    format!("`{key}` must be true or false, not {}", describe(v)),
                    format!("write `{key}: true` or `{key}: false`"),
                );
                None
            }
        }
    }

    pub(super) fn duration(
        &mut self,
        key: &str,
        v: &Node,
        bare: Duration,
        bare_name: &str,
    ) -> Option<Duration> {
        let d = v.scalar_text().and_then(|t| parse_duration(&t, bare));
        if d.is_none() {
            self.error(
                &v.loc,
                format!("`{key}` must be a duration, not {}", describe(v)),
                format!(
                    "write e.g. `{key}: 250ms`, `2s` or `5m` (a bare number is in {bare_name})"
                ),
            );
        }
        d
    }

    pub(super) fn rate(&mut self, key: &str, v: &Node) -> Option<u64> {
        let r = v.as_str().and_then(parse_rate);
        if r.is_none() {
            self.error(
                &v.loc,
                format!("`{key}` must be a rate like `1gbit` or `100mbit`, not {}", describe(v)),
                "rates are written as tc writes them: a number and kbit, mbit, gbit (decimal: 1gbit = 10^9 bits/s)",
            );
        }
        r
    }

    pub(super) fn list<'n>(&mut self, key: &str, v: &'n Node) -> &'n [Node] {
        match &v.kind {
            NodeKind::Seq(items) if !items.is_empty() => items,
            NodeKind::Seq(_) => {
                self.error(
                    &v.loc,
                    format!("`{key}` is empty"),
                    format!(
                        "give `{key}` at least one value, or leave the key out for its default"
                    ),
                );
                &[]
            }
            _ => {
                self.error(
                    &v.loc,
                    format!("`{key}` must be a list, not {}", v.type_name()),
                    format!("write `{key}: [a, b]`"),
                );
                &[]
            }
        }
    }
}

/// A node as a message shows it: `` `text` `` for scalars, its type otherwise.
pub(super) fn describe(v: &Node) -> String {
    match v.scalar_text() {
        Some(t) => format!("`{t}`"),
        None => v.type_name().to_string(),
    }
}
