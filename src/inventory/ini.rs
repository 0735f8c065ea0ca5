//! Ansible's INI inventory: host lines (`name k=v ...`), `[group]`, `[group:vars]`,
//! `[group:children]`; `#`/`;` comments. Values are read as Ansible reads them (Python
//! literals: numbers, `True`/`False`/`None`, quoted strings, lists and dicts; anything else
//! stays a string).

use std::path::Path;
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::Value;

use super::{Inventory, InventoryError, SourceLoc, check_name, invalid};
use crate::vars::Vars;
use crate::vars::scope::Locs;

#[derive(Clone, Copy, PartialEq)]
enum State {
    Hosts,
    Vars,
    Children,
}

pub(super) fn parse(inv: &mut Inventory, path: &Path, text: &str) -> Result<(), InventoryError> {
    let file = Arc::new(path.to_path_buf());
    let at = |line: usize, col: usize| SourceLoc {
        file: file.clone(),
        line: line as u32,
        col: col as u32,
    };
    let mut group = "ungrouped".to_string();
    let mut state = State::Hosts;
    // Groups named in `:children` or `:vars` before being declared, as Ansible defers them.
    let mut pending: IndexMap<String, (SourceLoc, State, Vec<String>)> = IndexMap::new();
    for (i, raw) in text.lines().enumerate() {
        let lineno = i + 1;
        let indent = raw.len() - raw.trim_start().len();
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let loc = at(lineno, indent + 1);
        if line.starts_with('[') {
            let header = line.split('#').next().unwrap_or("").trim();
            let Some(inner) = header.strip_prefix('[').and_then(|h| h.strip_suffix(']')) else {
                return Err(invalid(
                    &loc,
                    format!("bad section header `{line}`"),
                    "write `[group]`, `[group:vars]` or `[group:children]`",
                ));
            };
            let (name, kind) = match inner.split_once(':') {
                Some((n, k)) => (n, Some(k)),
                None => (inner, None),
            };
            check_name(name, &loc, "group")?;
            state = match kind {
                None | Some("hosts") => State::Hosts,
                Some("vars") => State::Vars,
                Some("children") => State::Children,
                Some(other) => {
                    return Err(invalid(
                        &loc,
                        format!("unknown section kind `:{other}` in `[{inner}]`"),
                        "a section is `[group]`, `[group:vars]` or `[group:children]`",
                    ));
                }
            };
            group = name.to_string();
            if state == State::Vars && !inv.groups.contains_key(name) {
                pending
                    .entry(group.clone())
                    .or_insert((loc.clone(), State::Vars, Vec::new()));
                continue;
            }
            inv.ensure_group(&group, Some(&loc));
            if state != State::Vars
                && let Some((_, _, parents)) = pending.shift_remove(&group)
            {
                for p in parents {
                    inv.add_child(&p, &group, &loc)?;
                }
            }
            continue;
        }
        match state {
            State::Hosts => {
                let words = shell_words(line)
                    .map_err(|m| invalid(&loc, m.to_string(), "close the quote"))?;
                let Some((first, rest)) = words.split_first() else {
                    continue;
                };
                let mut vars = Vars::new();
                let mut locs = Locs::new();
                for w in rest {
                    let Some((k, v)) = w.split_once('=') else {
                        let col = raw.rfind(w.as_str()).map(|c| c + 1).unwrap_or(indent + 1);
                        return Err(invalid(
                            &at(lineno, col),
                            format!("expected key=value host variable, got `{w}`"),
                            "write host variables as `name key=value key2=value2`",
                        ));
                    };
                    let col = raw.find(w.as_str()).map(|c| c + 1).unwrap_or(indent + 1);
                    vars.insert(k.to_string(), python_literal(v));
                    locs.insert(k.to_string(), at(lineno, col));
                }
                inv.ensure_group(&group, None);
                inv.add_hosts(first, &loc, &vars, &locs, &group)?;
            }
            State::Vars => {
                let Some((k, v)) = line.split_once('=') else {
                    return Err(invalid(
                        &loc,
                        format!("expected key=value, got `{line}`"),
                        format!("write `key=value` lines under `[{group}:vars]`"),
                    ));
                };
                let (k, v) = (k.trim(), v.trim());
                inv.ensure_group(&group, None);
                let value = python_literal(v);
                let g = &mut inv.groups[group.as_str()];
                if k == "ansible_group_priority" {
                    g.priority = super::priority_of(&value, &loc)?;
                    continue;
                }
                g.vars.insert(k.to_string(), value);
                g.var_locs.insert(k.to_string(), loc.clone());
            }
            State::Children => {
                let child = line.split_whitespace().next().unwrap_or(line);
                check_name(child, &loc, "group")?;
                if inv.groups.contains_key(child) {
                    inv.add_child(&group, child, &loc)?;
                } else {
                    pending
                        .entry(child.to_string())
                        .or_insert((loc.clone(), State::Children, Vec::new()))
                        .2
                        .push(group.clone());
                }
            }
        }
    }
    // As Ansible: a `:children` entry or a `:vars` section must name a group that some
    // `[group]` or `[group:children]` section declares.
    if let Some((name, (loc, state, _))) = pending.into_iter().next() {
        return Err(if state == State::Children {
            invalid(
                &loc,
                format!("`:children` names the undefined group `{name}`"),
                format!("declare it with a `[{name}]` section (it may be empty)"),
            )
        } else {
            invalid(
                &loc,
                format!("`[{name}:vars]` is for the undefined group `{name}`"),
                format!("declare the group with a `[{name}]` section or fix the name"),
            )
        });
    }
    Ok(())
}

/// A host line whose quote is not closed.
#[derive(Debug, thiserror::Error)]
#[error("unclosed quote")]
struct UnclosedQuote;

/// Words of a host line, shell-like quoting, `#` starts a comment.
fn shell_words(line: &str) -> Result<Vec<String>, UnclosedQuote> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '#') if !in_word => break,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(UnclosedQuote);
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// A value as Python's `ast.literal_eval` would read it, or the text itself.
fn python_literal(v: &str) -> Value {
    let t = v.trim();
    match t {
        "True" => return Value::Bool(true),
        "False" => return Value::Bool(false),
        "None" => return Value::Null,
        _ => {}
    }
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    let leading_zero =
        digits.len() > 1 && digits.starts_with('0') && digits.chars().all(|c| c.is_ascii_digit());
    if !leading_zero
        && !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit() || c == '_')
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && let Ok(i) = t.replace('_', "").parse::<i64>()
    {
        return Value::from(i);
    }
    if t.contains(['.', 'e', 'E'])
        && t.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c))
        && let Ok(f) = t.parse::<f64>()
        && let Some(n) = serde_json::Number::from_f64(f)
    {
        return Value::Number(n);
    }
    if t.len() >= 2
        && ((t.starts_with('"') && t.ends_with('"')) || (t.starts_with('\'') && t.ends_with('\'')))
    {
        return Value::String(t[1..t.len() - 1].to_string());
    }
    if t.starts_with('[') || t.starts_with('{') {
        if let Ok(v) = serde_json::from_str::<Value>(t) {
            return v;
        }
        // Python literals with single quotes and True/False/None.
        let jsonish = t
            .replace('\'', "\"")
            .replace("True", "true")
            .replace("False", "false")
            .replace("None", "null");
        if let Ok(v) = serde_json::from_str::<Value>(&jsonish) {
            return v;
        }
    }
    Value::String(v.to_string())
}
