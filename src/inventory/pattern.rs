//! Ansible host patterns: `all`, `*`, group and host names, globs (`compute*`), regexes
//! (`~web\d+`), subscripts (`web[0]`, `web[1:3]`), unions `a:b` / `a,b`, intersections
//! `a:&b`, exclusions `a:!b`. As in Ansible, plain terms are applied first, then `&`
//! terms, then `!` terms, whatever order they are written in.

use std::collections::HashSet;

use super::{Inventory, InventoryError};

fn perr(pattern: &str, message: impl Into<String>, help: impl Into<String>) -> InventoryError {
    InventoryError::Pattern {
        pattern: pattern.to_string(),
        message: message.into(),
        help: help.into(),
    }
}

/// Split a pattern into terms: on `,` when there is one, else on `:` outside `[...]`.
pub(crate) fn split_pattern(pattern: &str) -> Vec<String> {
    let pattern = pattern.trim();
    if pattern.contains(',') {
        return pattern
            .split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
    }
    let mut terms = Vec::new();
    let mut cur = String::new();
    let mut depth = 0i32;
    for ch in pattern.chars() {
        match ch {
            '[' => {
                depth += 1;
                cur.push(ch);
            }
            ']' => {
                depth -= 1;
                cur.push(ch);
            }
            ':' if depth == 0 => {
                terms.push(std::mem::take(&mut cur));
            }
            _ => cur.push(ch),
        }
    }
    terms.push(cur);
    terms
        .into_iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

fn glob_to_regex(glob: &str) -> String {
    let mut re = String::from("^");
    for ch in glob.chars() {
        match ch {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    re
}

/// Subscript `name[3]` / `name[1:3]` / `name[-1]` split off a term.
/// `[start]` or `[start:end]`.
type Subscript = (i64, Option<i64>);

/// A subscript that does not read (the caller names the pattern and says what to write).
#[derive(Debug, thiserror::Error)]
enum SubscriptError {
    #[error("`]` without `[`")]
    Unopened,
    #[error("subscript `[{0}]` is not a number or range")]
    NotANumber(String),
}

fn split_subscript(term: &str) -> Result<(&str, Option<Subscript>), SubscriptError> {
    if !term.ends_with(']') || term.starts_with('~') {
        return Ok((term, None));
    }
    let Some(open) = term.rfind('[') else {
        return Err(SubscriptError::Unopened);
    };
    let base = &term[..open];
    let inner = &term[open + 1..term.len() - 1];
    let parse = |s: &str| -> Result<i64, SubscriptError> {
        s.trim()
            .parse::<i64>()
            .map_err(|_| SubscriptError::NotANumber(inner.to_string()))
    };
    if inner.contains('*') || inner.contains('?') || base.is_empty() {
        return Ok((term, None));
    }
    match inner.split_once(':') {
        None => Ok((base, Some((parse(inner)?, None)))),
        Some((a, b)) => {
            let start = if a.trim().is_empty() { 0 } else { parse(a)? };
            let end = if b.trim().is_empty() { -1 } else { parse(b)? };
            Ok((base, Some((start, Some(end)))))
        }
    }
}

/// Hosts matched by one term (without its `&`/`!` prefix).
fn match_term(inv: &Inventory, pattern: &str, term: &str) -> Result<Vec<String>, InventoryError> {
    if inv.hosts.contains_key(term) {
        return Ok(vec![term.to_string()]);
    }
    let (base, sub) = split_subscript(term)
        .map_err(|m| perr(pattern, m.to_string(), "write `group[0]` or `group[0:2]`"))?;
    let mut out: Vec<String> = Vec::new();
    let push = |v: Vec<String>, out: &mut Vec<String>| {
        for h in v {
            if !out.contains(&h) {
                out.push(h);
            }
        }
    };
    if base == "all" || base == "*" {
        push(inv.group_hosts("all"), &mut out);
    } else {
        let matcher: Option<regex::Regex> = if let Some(re) = base.strip_prefix('~') {
            Some(regex::Regex::new(re).map_err(|e| {
                perr(
                    pattern,
                    format!("bad regular expression: {e}"),
                    "fix the regex after `~`",
                )
            })?)
        } else if base.contains(['*', '?', '[']) {
            Some(regex::Regex::new(&glob_to_regex(base)).map_err(|e| {
                perr(
                    pattern,
                    format!("bad glob: {e}"),
                    "use `*` and `?` in globs",
                )
            })?)
        } else {
            None
        };
        let is_match = |name: &str| match &matcher {
            Some(re) => re.is_match(name),
            None => name == base,
        };
        let mut any_group = false;
        for g in inv.groups.keys() {
            if is_match(g) {
                any_group = true;
                push(inv.group_hosts(g), &mut out);
            }
        }
        if !any_group || matcher.is_some() {
            let hosts: Vec<String> = inv.hosts.keys().filter(|h| is_match(h)).cloned().collect();
            push(hosts, &mut out);
        }
    }
    if let Some((start, end)) = sub {
        let n = out.len() as i64;
        let norm = |i: i64| if i < 0 { n + i } else { i };
        let s = norm(start);
        let e = match end {
            None => s,
            Some(e) => norm(e),
        };
        if end.is_none() && (s < 0 || s >= n) {
            return Ok(Vec::new());
        }
        let s = s.max(0);
        let e = e.min(n - 1);
        if s > e {
            return Ok(Vec::new());
        }
        out = out[s as usize..=e as usize].to_vec();
    }
    Ok(out)
}

fn ordered_terms(pattern: &str) -> Result<Vec<String>, InventoryError> {
    let terms = split_pattern(pattern);
    if terms.is_empty() {
        return Err(perr(
            pattern,
            "the pattern is empty",
            "give a group or host name, or `all`",
        ));
    }
    let mut regular = Vec::new();
    let mut and = Vec::new();
    let mut not = Vec::new();
    for t in terms {
        if let Some(rest) = t.strip_prefix('&') {
            if rest.is_empty() {
                return Err(perr(pattern, "`&` with nothing after it", "write `a:&b`"));
            }
            and.push(t);
        } else if let Some(rest) = t.strip_prefix('!') {
            if rest.is_empty() {
                return Err(perr(pattern, "`!` with nothing after it", "write `a:!b`"));
            }
            not.push(t);
        } else {
            regular.push(t);
        }
    }
    if regular.is_empty() {
        regular.push("all".to_string());
    }
    regular.extend(and);
    regular.extend(not);
    Ok(regular)
}

pub(crate) fn select(inv: &Inventory, pattern: &str) -> Result<Vec<String>, InventoryError> {
    let mut hosts: Vec<String> = Vec::new();
    for t in ordered_terms(pattern)? {
        if let Some(rest) = t.strip_prefix('!') {
            let that: HashSet<String> = match_term(inv, pattern, rest)?.into_iter().collect();
            hosts.retain(|h| !that.contains(h));
        } else if let Some(rest) = t.strip_prefix('&') {
            let that: HashSet<String> = match_term(inv, pattern, rest)?.into_iter().collect();
            hosts.retain(|h| that.contains(h));
        } else {
            for h in match_term(inv, pattern, &t)? {
                if !hosts.contains(&h) {
                    hosts.push(h);
                }
            }
        }
    }
    Ok(hosts)
}

pub(crate) fn unmatched_terms(
    inv: &Inventory,
    pattern: &str,
) -> Result<Vec<String>, InventoryError> {
    let mut out = Vec::new();
    for t in split_pattern(pattern) {
        let bare = t.trim_start_matches(['&', '!']);
        if match_term(inv, pattern, bare)?.is_empty() && !inv.groups.contains_key(bare) {
            out.push(t);
        }
    }
    Ok(out)
}

/// `--limit @file` reads one pattern per line; anything else is a pattern.
pub(crate) fn limit_pattern(limit: &str) -> Result<String, InventoryError> {
    match limit.strip_prefix('@') {
        None => Ok(limit.to_string()),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                perr(
                    limit,
                    format!("cannot read limit file: {e}"),
                    "give `@FILE` with one host per line",
                )
            })?;
            Ok(text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .collect::<Vec<_>>()
                .join(","))
        }
    }
}

/// A host key whose range or port does not read (the caller says where and what to write).
#[derive(Debug, thiserror::Error)]
pub(crate) enum HostKeyError {
    #[error("`{port}` in `{key}` is not a port number")]
    Port { port: String, key: String },
    #[error("`[` without `]` in host `{key}`")]
    Unclosed { key: String },
    #[error("range `[{inner}]` in host `{key}` is not `start:end`")]
    NotARange { inner: String, key: String },
    #[error("bad step `{step}` in `{key}`")]
    Step { step: String, key: String },
    #[error("range step 0 in `{key}`")]
    ZeroStep { key: String },
    #[error("range `[{inner}]` in `{key}` runs backwards")]
    Backwards { inner: String, key: String },
    #[error("range `[{inner}]` in host `{key}` is neither numeric nor one letter to one letter")]
    Mixed { inner: String, key: String },
}

/// Expand an inventory host key: ranges `web[01:03]`, `db[a:c]`, `n[0:10:2]`, and a
/// trailing `:PORT`. Returns (name, port) pairs.
pub(crate) fn expand_host_pattern(key: &str) -> Result<Vec<(String, Option<u16>)>, HostKeyError> {
    let k = || key.to_string();
    let (name, port) = match key.rsplit_once(':') {
        Some((n, p)) if !n.contains(':') && !p.contains(']') && !p.is_empty() => {
            let port = p.parse::<u16>().map_err(|_| HostKeyError::Port {
                port: p.to_string(),
                key: k(),
            })?;
            (n, Some(port))
        }
        _ => (key, None),
    };
    let mut names = vec![String::new()];
    let mut rest = name;
    while let Some(open) = rest.find('[') {
        let close = rest[open..]
            .find(']')
            .map(|c| c + open)
            .ok_or_else(|| HostKeyError::Unclosed { key: k() })?;
        let prefix = &rest[..open];
        let inner = &rest[open + 1..close];
        let parts: Vec<&str> = inner.split(':').collect();
        if parts.len() < 2 || parts.len() > 3 {
            return Err(HostKeyError::NotARange {
                inner: inner.to_string(),
                key: k(),
            });
        }
        let step: usize = match parts.get(2) {
            Some(s) => s.parse().map_err(|_| HostKeyError::Step {
                step: s.to_string(),
                key: k(),
            })?,
            None => 1,
        };
        if step == 0 {
            return Err(HostKeyError::ZeroStep { key: k() });
        }
        let (a, b) = (parts[0], parts[1]);
        let items: Vec<String> = if let (Ok(x), Ok(y)) = (a.parse::<u64>(), b.parse::<u64>()) {
            if x > y {
                return Err(HostKeyError::Backwards {
                    inner: inner.to_string(),
                    key: k(),
                });
            }
            let width = if a.starts_with('0') && a.len() > 1 {
                a.len()
            } else {
                0
            };
            (x..=y)
                .step_by(step)
                .map(|i| format!("{i:0width$}"))
                .collect()
        } else if a.len() == 1 && b.len() == 1 && a.chars().all(|c| c.is_ascii_alphabetic()) {
            let (x, y) = (a.as_bytes()[0], b.as_bytes()[0]);
            if x > y {
                return Err(HostKeyError::Backwards {
                    inner: inner.to_string(),
                    key: k(),
                });
            }
            (x..=y)
                .step_by(step)
                .map(|c| (c as char).to_string())
                .collect()
        } else {
            return Err(HostKeyError::Mixed {
                inner: inner.to_string(),
                key: k(),
            });
        };
        names = names
            .into_iter()
            .flat_map(|n| items.iter().map(move |i| format!("{n}{prefix}{i}")))
            .collect();
        rest = &rest[close + 1..];
    }
    Ok(names
        .into_iter()
        .map(|n| (format!("{n}{rest}"), port))
        .collect())
}
