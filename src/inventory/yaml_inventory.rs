//! Ansible's YAML inventory shape: groups with `hosts`, `vars`, `children`, host ranges.

use std::path::Path;

use crate::vars::Vars;
use crate::vars::scope::Locs;
use crate::yaml::SourceLoc;
use crate::yaml::{self, Node, NodeKind};

use super::{
    Group, GroupCycle, Host, Inventory, InventoryError, check_name, invalid, priority_of, snippet,
};

pub(super) fn parse_yaml(path: &Path) -> Result<Option<Node>, InventoryError> {
    if let Err(e) = std::fs::metadata(path) {
        return Err(InventoryError::Read {
            path: path.to_path_buf(),
            source: e,
        });
    }
    let docs = yaml::parse_file(path)?;
    let mut docs = docs.into_iter();
    let first = docs.next();
    if let Some(extra) = docs.next() {
        return Err(invalid(
            &extra.loc,
            "more than one YAML document",
            "keep one document (one `---`) per inventory or vars file",
        ));
    }
    Ok(first)
}

/// A vars file or inline `vars:` mapping: values and where each was written.
pub(super) fn vars_of(node: &Node, what: &str) -> Result<(Vars, Locs), InventoryError> {
    crate::vars::of_mapping(node).ok_or_else(|| {
        invalid(
            &node.loc,
            format!("{what} must be a mapping of variable names to values"),
            "write `name: value` lines under it",
        )
    })
}

impl Inventory {
    /// Parse one YAML inventory file into this inventory.
    pub fn parse_yaml_inventory(&mut self, path: &Path) -> Result<(), InventoryError> {
        let Some(doc) = parse_yaml(path)? else {
            return Ok(());
        };
        match &doc.kind {
            NodeKind::Null => Ok(()),
            NodeKind::Map(pairs) => {
                for (k, v) in pairs {
                    let name = k.key_text();
                    self.parse_group(&name, &k.loc, v, None)?;
                }
                Ok(())
            }
            _ => Err(invalid(
                &doc.loc,
                "an inventory must be a mapping of group names (usually `all:`)",
                "start the file with `all:` and put `hosts:`, `vars:` and `children:` under it",
            )),
        }
    }

    pub(super) fn ensure_group(&mut self, name: &str, loc: Option<&SourceLoc>) {
        let g = self
            .groups
            .entry(name.to_string())
            .or_insert_with(|| Group {
                name: name.to_string(),
                priority: 1,
                ..Group::default()
            });
        if g.loc.is_none() {
            g.loc = loc.cloned();
        }
    }

    pub(super) fn parse_group(
        &mut self,
        name: &str,
        loc: &SourceLoc,
        node: &Node,
        parent: Option<&str>,
    ) -> Result<(), InventoryError> {
        check_name(name, loc, "group")?;
        self.ensure_group(name, Some(loc));
        if let Some(parent) = parent {
            self.add_child(parent, name, loc)?;
        }
        let pairs = match &node.kind {
            NodeKind::Null => return Ok(()),
            NodeKind::Map(pairs) => pairs,
            _ => {
                return Err(invalid(
                    &node.loc,
                    format!(
                        "group `{name}` must be a mapping with `hosts:`, `vars:` or `children:`"
                    ),
                    "indent `hosts:`, `vars:` and `children:` under the group name",
                ));
            }
        };
        for (k, v) in pairs {
            let key = k.key_text();
            match key.as_str() {
                "vars" => {
                    let (vars, locs) = vars_of(v, &format!("`vars` of group `{name}`"))?;
                    let g = &mut self.groups[name];
                    for (k, val) in vars {
                        // As Ansible: the priority orders the group, it is not a variable.
                        if k == "ansible_group_priority" {
                            g.priority = priority_of(&val, &locs[&k])?;
                            continue;
                        }
                        g.vars.insert(k.clone(), val);
                        g.var_locs.insert(k.clone(), locs[&k].clone());
                    }
                }
                "children" => match &v.kind {
                    NodeKind::Null => {}
                    NodeKind::Map(children) => {
                        for (ck, cv) in children {
                            self.parse_group(&ck.key_text(), &ck.loc, cv, Some(name))?;
                        }
                    }
                    _ => {
                        return Err(invalid(
                            &v.loc,
                            format!(
                                "`children` of group `{name}` must be a mapping of group names"
                            ),
                            "write each child group as `name:` (a list is not accepted)",
                        ));
                    }
                },
                "hosts" => match &v.kind {
                    NodeKind::Null => {}
                    NodeKind::Map(hosts) => {
                        for (hk, hv) in hosts {
                            self.parse_host(&hk.key_text(), &hk.loc, hv, name)?;
                        }
                    }
                    _ => {
                        return Err(invalid(
                            &v.loc,
                            format!("`hosts` of group `{name}` must be a mapping of host names"),
                            "write each host as `name:` (a list `- name` is not accepted)",
                        ));
                    }
                },
                other => {
                    let hint = ["hosts", "vars", "children"]
                        .iter()
                        .map(|c| (strsim::levenshtein(other, c), *c))
                        .min()
                        .filter(|(d, _)| *d <= 2)
                        .map(|(_, c)| format!("did you mean `{c}`? "))
                        .unwrap_or_default();
                    return Err(invalid(
                        &k.loc,
                        format!("unknown key `{other}` in group `{name}`"),
                        format!("{hint}a group takes only `hosts:`, `vars:` and `children:`"),
                    ));
                }
            }
        }
        Ok(())
    }

    pub(super) fn parse_host(
        &mut self,
        pattern: &str,
        loc: &SourceLoc,
        node: &Node,
        group: &str,
    ) -> Result<(), InventoryError> {
        let (vars, locs) = vars_of(node, &format!("host `{pattern}`"))?;
        self.add_hosts(pattern, loc, &vars, &locs, group)
    }

    /// Add the hosts of a host key (ranges expanded, `:PORT` read) to a group, with vars.
    pub(super) fn add_hosts(
        &mut self,
        pattern: &str,
        loc: &SourceLoc,
        vars: &Vars,
        locs: &Locs,
        group: &str,
    ) -> Result<(), InventoryError> {
        for (name, port) in super::pattern::expand_host_pattern(pattern).map_err(|m| {
            invalid(
                loc,
                m.to_string(),
                "write ranges as `name[01:10]` or `name[a:f]`",
            )
        })? {
            check_name(&name, loc, "host")?;
            let host = self.hosts.entry(name.clone()).or_insert_with(|| Host {
                name: name.clone(),
                loc: loc.clone(),
                ..Host::default()
            });
            if let Some(port) = port {
                host.vars.insert("ansible_port".into(), port.into());
                host.var_locs.insert("ansible_port".into(), loc.clone());
            }
            for (k, v) in vars {
                host.vars.insert(k.clone(), v.clone());
            }
            host.var_locs.extend(locs.clone());
            let g = &mut self.groups[group];
            if !g.hosts.contains(&name) {
                g.hosts.push(name);
            }
        }
        Ok(())
    }

    /// Make `child` a child group of `parent`, refusing cycles.
    pub(super) fn add_child(
        &mut self,
        parent: &str,
        child: &str,
        loc: &SourceLoc,
    ) -> Result<(), InventoryError> {
        if let Some(mut path) = self.path_down(child, parent) {
            path.push(child.to_string());
            let (src, span) = snippet(loc);
            return Err(InventoryError::Cycle(Box::new(GroupCycle {
                loc: loc.clone(),
                cycle: path,
                src,
                span,
            })));
        }
        let p = &mut self.groups[parent];
        if !p.children.iter().any(|c| c == child) {
            p.children.push(child.to_string());
        }
        Ok(())
    }
}
