//! `ferry inventory --list` / `--graph` output, in `ansible-inventory`'s shapes.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::Inventory;

/// The inventory as `ansible-inventory --list` prints it: one entry per non-empty group
/// (`hosts` = direct hosts, `children`), `all` without `hosts`, and `_meta.hostvars` with
/// each host's merged inventory variables.
pub fn list_json(inv: &Inventory) -> Value {
    list_json_of(inv, &inv.group_hosts("all"))
}

/// `list_json` restricted to some hosts (`--limit`), as `ansible-inventory --limit` prints
/// it: other hosts are left out of groups and `_meta`, groups left empty disappear.
pub fn list_json_of(inv: &Inventory, hosts: &[String]) -> Value {
    let keep: HashSet<&str> = hosts.iter().map(String::as_str).collect();
    let mut out = Map::new();
    let mut seen = HashSet::new();
    fn group(
        inv: &Inventory,
        name: &str,
        keep: &HashSet<&str>,
        out: &mut Map<String, Value>,
        seen: &mut HashSet<String>,
    ) {
        let g = &inv.groups[name];
        let mut entry = Map::new();
        let hosts: Vec<Value> = g
            .hosts
            .iter()
            .filter(|h| keep.contains(h.as_str()))
            .map(|h| Value::from(h.as_str()))
            .collect();
        if name != "all" && !hosts.is_empty() {
            entry.insert("hosts".into(), Value::Array(hosts));
        }
        if !g.children.is_empty() {
            entry.insert("children".into(), Value::from(g.children.clone()));
        }
        if !entry.is_empty() {
            out.insert(name.to_string(), Value::Object(entry));
        }
        for c in &g.children {
            if seen.insert(c.clone()) {
                group(inv, c, keep, out, seen);
            }
        }
    }
    group(inv, "all", &keep, &mut out, &mut seen);
    let mut hostvars = Map::new();
    for h in hosts {
        let vars = inv.layers(h).flatten_user();
        if !vars.is_empty() {
            hostvars.insert(h.clone(), Value::Object(vars.into_iter().collect()));
        }
    }
    let mut meta = Map::new();
    meta.insert("hostvars".into(), Value::Object(hostvars));
    // ansible-core 2.19 names the output profile; ferry prints the same shape.
    meta.insert("profile".into(), Value::from("inventory_legacy"));
    out.insert("_meta".into(), Value::Object(meta));
    Value::Object(out)
}

/// The group tree as `ansible-inventory --graph` prints it (children, then hosts, in inventory order).
pub fn graph(inv: &Inventory, root: &str) -> String {
    let mut lines = Vec::new();
    fn name(n: &str, depth: usize) -> String {
        if depth == 0 {
            n.to_string()
        } else {
            format!("{}--{n}", "  |".repeat(depth))
        }
    }
    fn walk(inv: &Inventory, g: &str, depth: usize, lines: &mut Vec<String>) {
        lines.push(name(&format!("@{g}:"), depth));
        let group = &inv.groups[g];
        for k in &group.children {
            walk(inv, k, depth + 1, lines);
        }
        if g != "all" {
            for h in &group.hosts {
                lines.push(name(h, depth + 1));
            }
        }
    }
    walk(inv, root, 0, &mut lines);
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

/// The inventory written back in Ansible's YAML inventory shape (as a JSON value; print it
/// with any YAML or JSON writer): `all` with its vars, direct hosts and children, then every
/// other group at the top level with its hosts, vars and children. Each host's inline vars
/// are written at its first mention. Loading the result gives back the same hosts, groups,
/// memberships and vars (`group_vars/`/`host_vars/` files are not part of it).
pub fn to_document(inv: &Inventory) -> Value {
    let mut written = std::collections::HashSet::new();
    let mut doc = Map::new();
    let names: Vec<&String> = std::iter::once(&"all".to_string())
        .filter_map(|a| inv.groups.get_key_value(a).map(|(k, _)| k))
        .chain(inv.groups.keys().filter(|g| *g != "all"))
        .collect();
    for name in names {
        let g = &inv.groups[name];
        let mut entry = Map::new();
        if !g.vars.is_empty() {
            entry.insert(
                "vars".into(),
                Value::Object(g.vars.clone().into_iter().collect()),
            );
        }
        if !g.hosts.is_empty() {
            let mut hosts = Map::new();
            for h in &g.hosts {
                let vars = if written.insert(h.clone()) {
                    let v = &inv.hosts[h].vars;
                    if v.is_empty() {
                        Value::Null
                    } else {
                        Value::Object(v.clone().into_iter().collect())
                    }
                } else {
                    Value::Null
                };
                hosts.insert(h.clone(), vars);
            }
            entry.insert("hosts".into(), Value::Object(hosts));
        }
        let children: Map<String, Value> = g
            .children
            .iter()
            .filter(|c| !(name == "all" && *c == "ungrouped"))
            .map(|c| (c.clone(), Value::Null))
            .collect();
        if !children.is_empty() {
            entry.insert("children".into(), Value::Object(children));
        }
        if name == "ungrouped" && entry.is_empty() {
            continue;
        }
        doc.insert(
            name.clone(),
            if entry.is_empty() {
                Value::Null
            } else {
                Value::Object(entry)
            },
        );
    }
    Value::Object(doc)
}
