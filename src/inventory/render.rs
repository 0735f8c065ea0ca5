//! `ferry inventory --list` / `--graph` output, in `ansible-inventory`'s shapes.

use serde_json::{Map, Value};

use super::Inventory;
use crate::vars::VarLayers;

/// The inventory as `ansible-inventory --list` prints it: one entry per non-empty group
/// (`hosts` = direct hosts, `children`), `all` without `hosts`, and `_meta.hostvars` with
/// each host's merged inventory variables.
pub fn list_json(inv: &Inventory) -> Value {
    let mut out = Map::new();
    let mut seen = std::collections::HashSet::new();
    fn group(
        inv: &Inventory,
        name: &str,
        out: &mut Map<String, Value>,
        seen: &mut std::collections::HashSet<String>,
    ) {
        let g = &inv.groups[name];
        let mut entry = Map::new();
        if name != "all" && !g.hosts.is_empty() {
            entry.insert("hosts".into(), Value::from(g.hosts.clone()));
        }
        if !g.children.is_empty() {
            entry.insert("children".into(), Value::from(g.children.clone()));
        }
        if !entry.is_empty() {
            out.insert(name.to_string(), Value::Object(entry));
        }
        for c in &g.children {
            if seen.insert(c.clone()) {
                group(inv, c, out, seen);
            }
        }
    }
    group(inv, "all", &mut out, &mut seen);
    let mut hostvars = Map::new();
    for h in inv.group_hosts("all") {
        let vars = VarLayers::for_host(inv, &h).flatten_user();
        if !vars.is_empty() {
            hostvars.insert(h, Value::Object(vars.into_iter().collect()));
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
