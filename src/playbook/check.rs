//! The checks that need everything loaded: host patterns against the
//! inventory, and variables no layer could define.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use super::diag::{CheckReport, Problem};
use super::loader::Loader;
use super::model::{Playbook, SourceLoc, Vars};
use crate::inventory::Inventory;

/// Variables Ansible (and ferry) define on their own for every host.
pub const MAGIC_VARS: &[&str] = &[
    "inventory_hostname",
    "inventory_hostname_short",
    "inventory_dir",
    "inventory_file",
    "groups",
    "group_names",
    "hostvars",
    "play_hosts",
    "playbook_dir",
    "role_path",
    "role_name",
    "omit",
    "vars",
    "environment",
];

/// Load every playbook and check everything. Ok: the playbooks and the
/// warnings (host patterns matching nothing). Err: every problem found,
/// warnings included, sorted by file and line.
///
/// `ferry run` calls this before it opens any connection.
pub fn load_and_check(
    paths: &[PathBuf],
    inventory: &Inventory,
    extra_vars: &Vars,
) -> Result<(Vec<Playbook>, Vec<Problem>), CheckReport> {
    let loaded = Loader::new().load(paths);
    let mut problems = loaded.problems;

    for (pattern, loc) in &loaded.host_patterns {
        problems.extend(check_pattern_at_run(
            inventory,
            pattern,
            loc,
            &loaded.runtime_hosts,
        ));
    }

    // Names every host sees: magic, -e, and what tasks set at run time.
    let mut common: HashSet<&str> = MAGIC_VARS.iter().copied().collect();
    common.extend(extra_vars.keys().map(String::as_str));
    common.extend(loaded.runtime_vars.iter().map(String::as_str));
    // Names each host's inventory view defines (host vars, its groups' vars,
    // group_vars/ and host_vars/ files), as the engine builds it.
    let host_known: HashMap<&str, HashSet<String>> = inventory
        .hosts
        .keys()
        .map(|h| {
            let names = inventory.host_vars(h).into_keys().collect();
            (h.as_str(), names)
        })
        .collect();
    // Names any host defines (for plays whose hosts the check cannot resolve).
    let any_host: HashSet<&str> = host_known
        .values()
        .flat_map(|n| n.iter().map(String::as_str))
        .collect();
    // Each play's hosts; None: unknown (templated pattern, or no host matches).
    let play_hosts: Vec<Option<Vec<String>>> = loaded
        .play_scopes
        .iter()
        .map(|s| {
            let pattern = s.hosts.as_deref()?;
            // (A hand-made inventory without `all` cannot resolve patterns.)
            if crate::template::is_template(pattern) || !inventory.groups.contains_key("all") {
                return None;
            }
            inventory.select(pattern).ok().filter(|h| !h.is_empty())
        })
        .collect();
    for u in &loaded.uses {
        let scope = loaded.play_scopes.get(u.play);
        if scope.is_some_and(|s| s.open) {
            continue;
        }
        let name = u.name.as_str();
        if common.contains(name)
            || name.starts_with("ansible_")
            || scope.is_some_and(|s| s.vars.contains(name))
            || u.local.iter().any(|l| l == name)
        {
            continue;
        }
        let hosts = play_hosts.get(u.play).cloned().flatten();
        let missing: Vec<&str> = match &hosts {
            Some(hosts) => hosts
                .iter()
                .map(String::as_str)
                .filter(|h| !host_known.get(h).is_some_and(|n| n.contains(name)))
                .collect(),
            None if any_host.contains(name) => Vec::new(),
            None => vec![""],
        };
        if missing.is_empty() {
            continue;
        }
        let some_hosts = hosts.as_ref().is_some_and(|h| missing.len() < h.len());
        if some_hosts {
            // Defined for some hosts of the play, not for these.
            let defined_on = hosts
                .iter()
                .flatten()
                .find(|h| !missing.contains(&h.as_str()))
                .map(String::as_str)
                .unwrap_or_default();
            problems.push(
                Problem::error(
                    &u.loc,
                    format!(
                        "undefined variable `{name}` for host{} {}",
                        if missing.len() > 1 { "s" } else { "" },
                        missing.join(", ")
                    ),
                )
                .label(format!("needs `{name}`"))
                .hint(format!(
                    "`{defined_on}` defines `{name}` in the inventory, {} not: set it there (host vars, a group var or group_vars/), or write `{name} | default(...)`",
                    missing.join(", ")
                ))
                .span_len(name.len()),
            );
            continue;
        }
        let mut candidates: Vec<&str> = common
            .iter()
            .copied()
            .chain(any_host.iter().copied())
            .collect();
        if let Some(s) = scope {
            candidates.extend(s.vars.iter().map(String::as_str));
        }
        candidates.extend(u.local.iter().map(String::as_str));
        candidates.sort();
        candidates.dedup();
        let hint = match crate::suggest::suggest(name, candidates) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!(
                "no layer defines `{name}` (inventory, play or role vars, vars_files, register, set_fact, -e); define it or write `{name} | default(...)`"
            ),
        };
        problems.push(
            Problem::error(&u.loc, format!("undefined variable `{name}`"))
                .label("not defined anywhere")
                .hint(hint)
                .span_len(name.len()),
        );
    }

    let report = CheckReport::new(problems);
    if report.has_errors() {
        return Err(report);
    }
    Ok((loaded.playbooks, report.problems))
}

fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

/// Problems of one `hosts:` pattern: a term with bad syntax is an error, a
/// term that matches nothing in the inventory a warning (as Ansible warns).
pub fn check_pattern(inventory: &Inventory, pattern: &str, loc: &SourceLoc) -> Vec<Problem> {
    check_pattern_at_run(inventory, pattern, loc, &[])
}

/// [`check_pattern`], where `runtime` names hosts and groups that `add_host` and
/// `group_by` create during the run (templates match any text where they vary).
pub fn check_pattern_at_run(
    inventory: &Inventory,
    pattern: &str,
    loc: &SourceLoc,
    runtime: &[String],
) -> Vec<Problem> {
    let runtime_globs: Vec<String> = runtime
        .iter()
        .map(|n| {
            regex::Regex::new(r"\{\{.*?\}\}|\{%.*?%\}")
                .map(|re| re.replace_all(n, "*").into_owned())
                .unwrap_or_else(|_| n.clone())
        })
        .collect();
    let mut out = Vec::new();
    if crate::template::is_template(pattern) {
        return out;
    }
    let sep = if pattern.contains(',') { ',' } else { ':' };
    let terms: Vec<&str> = pattern.split(sep).map(str::trim).collect();
    for (i, raw) in terms.iter().enumerate() {
        let term = raw.trim_start_matches(['&', '!']);
        let bad = term.is_empty()
            || term.contains(char::is_whitespace)
            || (raw.len() - term.len()) > 1
            || (i == 0 && raw.starts_with('&'));
        if bad {
            out.push(
                Problem::error(loc, format!("bad host pattern `{pattern}`"))
                    .label("this pattern")
                    .hint("terms are host or group names or globs, joined with `:`; `:&g` intersects, `:!g` excludes"),
            );
            return out;
        }
    }
    for raw in terms {
        if raw.starts_with('!') {
            continue;
        }
        let term = raw.trim_start_matches('&');
        if term.starts_with('~') {
            continue;
        }
        let matches = term == "all"
            || term == "*"
            || term == "localhost"
            || term == "127.0.0.1"
            || inventory.groups.contains_key(term)
            || inventory.hosts.contains_key(term)
            || (term.contains(['*', '?'])
                && (inventory.hosts.keys().any(|h| glob_match(term, h))
                    || inventory.groups.keys().any(|g| glob_match(term, g))))
            || runtime_globs
                .iter()
                .any(|r| r == term || glob_match(r, term) || glob_match(term, r));
        if !matches {
            let names = inventory
                .groups
                .keys()
                .chain(inventory.hosts.keys())
                .map(String::as_str);
            let hint = match crate::suggest::suggest(term, names) {
                Some(s) => format!("did you mean `{s}`?"),
                None if inventory.hosts.is_empty() => {
                    "the inventory has no hosts: pass one with `-i INVENTORY`".to_string()
                }
                None => "no host or group in the inventory has this name".to_string(),
            };
            out.push(
                Problem::warning(loc, format!("host pattern `{term}` matches no host"))
                    .label("matches nothing")
                    .hint(hint),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_text(pb: &str, files: &[(&str, &str)]) -> Result<Vec<Problem>, CheckReport> {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let path = dir.path().join("p.yml");
        std::fs::write(&path, pb).unwrap();
        let inv_path = dir.path().join("inv.yml");
        std::fs::write(&inv_path, "all:\n  hosts:\n    h1: {}\n").unwrap();
        let inv = Inventory::load(&[inv_path]).unwrap();
        load_and_check(&[path], &inv, &Vars::new()).map(|(_, w)| w)
    }

    fn messages(r: &Result<Vec<Problem>, CheckReport>) -> Vec<String> {
        match r {
            Ok(w) => w.iter().map(|p| p.message.clone()).collect(),
            Err(rep) => rep.problems.iter().map(|p| p.message.clone()).collect(),
        }
    }

    /// Groups and hosts made by group_by/add_host are targets of later plays, and
    /// the names include_vars and add_host define are known there.
    #[test]
    fn runtime_hosts_groups_and_included_names_are_known() {
        let pb = r#"
- hosts: all
  tasks:
    - include_vars: app.yml
    - group_by: { key: "os_{{ ansible_system }}" }
    - add_host: { name: "new:2222", groups: [extra], color: blue }
- hosts: os_Linux:extra:new
  tasks:
    - debug: { msg: "{{ app_port }} {{ color }}" }
"#;
        let r = check_text(pb, &[("vars/app.yml", "app_port: 1\n")]);
        assert_eq!(messages(&r), Vec::<String>::new());
        // A group nobody makes is still warned about.
        let r = check_text(
            &pb.replace("os_Linux:extra:new", "nowhere"),
            &[("vars/app.yml", "app_port: 1\n")],
        );
        assert_eq!(
            messages(&r),
            vec!["host pattern `nowhere` matches no host".to_string()]
        );
        // And a name no layer defines is still an error.
        let r = check_text(
            &pb.replace("app_port", "app_prt"),
            &[("vars/app.yml", "app_port: 1\n")],
        );
        assert_eq!(
            messages(&r),
            vec!["undefined variable `app_prt`".to_string()]
        );
    }

    #[test]
    fn loop_control_keys_are_checked() {
        let pb = |lc: &str| {
            format!(
                "- hosts: all\n  tasks:\n    - debug: {{ msg: \"{{{{ i }}}}\" }}\n      loop: [a]\n      loop_control: {lc}\n"
            )
        };
        assert!(
            check_text(
                &pb("{ index_var: i, extended: true, pause: 0.5, break_when: [\"i > 0\"] }"),
                &[]
            )
            .is_ok()
        );
        for (bad, what) in [
            (
                "{ index_var: i, pause: soon }",
                "`pause` must be a number of seconds",
            ),
            ("{ index_var: 1x }", "`index_var` must be a variable name"),
            (
                "{ index_var: i, extended: maybe }",
                "`extended` must be a boolean",
            ),
            ("{ index_var: i, pauze: 1 }", "pauze"),
        ] {
            let m = messages(&check_text(&pb(bad), &[])).join("\n");
            assert!(m.contains(what), "{bad}: {m}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob_match("compute*", "compute-1"));
        assert!(glob_match("c?mp*", "compute"));
        assert!(!glob_match("compute*", "db1"));
    }
}
