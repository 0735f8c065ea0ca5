//! `ferry check`: load and validate inventory, variables, templates and
//! playbooks; connect nowhere. Prints every problem, exits 0 when clean, 1 otherwise.

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::CmdResult;
use crate::cli::CheckArgs;
use crate::inventory::{Group, Host, Inventory};
use crate::playbook::diag::CheckReport;
use crate::playbook::model::Vars;
use crate::yaml::{self, Node};

pub fn check(args: CheckArgs) -> CmdResult {
    // INTEGRATION POINT (inventory branch): replace `interim_inventory` with
    // `Inventory::load(&args.inv.inventory)` and `interim_extra_vars` with the
    // `-e` parser of `crate::vars`; nothing else here depends on how they load.
    let inventory = interim_inventory(&args.inv.inventory)?;
    let extra_vars = interim_extra_vars(&args.inv.extra_vars)?;

    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    match super::load_and_check(&args.playbooks, &inventory, &extra_vars) {
        Ok((playbooks, warnings)) => {
            if !warnings.is_empty() {
                print!("{}", CheckReport::new(warnings).render(color));
            }
            let plays: usize = playbooks.iter().map(|p| p.plays.len()).sum();
            let tasks: usize = playbooks.iter().map(count_tasks).sum();
            println!(
                "ok: {} playbook(s), {plays} play(s), {tasks} task(s) checked",
                playbooks.len()
            );
            Ok(0)
        }
        Err(report) => {
            print!("{}", report.render(color));
            Ok(1)
        }
    }
}

/// Tasks in a playbook (handlers included), counting inside blocks.
pub fn count_tasks(pb: &crate::playbook::Playbook) -> usize {
    fn items(v: &[crate::playbook::TaskItem]) -> usize {
        v.iter()
            .map(|i| match i {
                crate::playbook::TaskItem::Task(_) => 1,
                crate::playbook::TaskItem::Block(b) => {
                    items(&b.block) + items(&b.rescue) + items(&b.always)
                }
            })
            .sum()
    }
    pb.plays
        .iter()
        .map(|p| {
            items(&p.pre_tasks)
                + items(&p.role_tasks)
                + items(&p.tasks)
                + items(&p.post_tasks)
                + p.handlers.len()
        })
        .sum()
}

/// Interim: hosts, groups and inline vars of Ansible YAML inventories, enough
/// for `ferry check` until the inventory module's `Inventory::load` is merged.
pub fn interim_inventory(paths: &[PathBuf]) -> miette::Result<Inventory> {
    let mut inv = Inventory::default();
    for p in paths {
        let docs = yaml::parse_file(p).map_err(miette::Report::new)?;
        for doc in docs {
            for (k, v) in doc.as_map().unwrap_or(&[]) {
                interim_group(&mut inv, &k.key_text(), v);
            }
        }
    }
    Ok(inv)
}

fn interim_group(inv: &mut Inventory, name: &str, node: &Node) {
    let mut group = inv.groups.get(name).cloned().unwrap_or(Group {
        name: name.to_string(),
        ..Group::default()
    });
    if let Some(hosts) = node.get("hosts").and_then(Node::as_map) {
        for (h, hv) in hosts {
            let hname = h.key_text();
            let host = inv.hosts.entry(hname.clone()).or_insert_with(|| Host {
                name: hname.clone(),
                vars: Vars::new(),
            });
            if let serde_json::Value::Object(m) = hv.to_value() {
                host.vars.extend(m);
            }
            if !group.hosts.contains(&hname) {
                group.hosts.push(hname);
            }
        }
    }
    if let Some(serde_json::Value::Object(m)) = node.get("vars").map(Node::to_value) {
        group.vars.extend(m);
    }
    let children: Vec<(String, Node)> = node
        .get("children")
        .and_then(Node::as_map)
        .map(|c| c.iter().map(|(k, v)| (k.key_text(), v.clone())).collect())
        .unwrap_or_default();
    for (c, _) in &children {
        if !group.children.contains(c) {
            group.children.push(c.clone());
        }
    }
    inv.groups.insert(name.to_string(), group);
    for (c, cv) in children {
        interim_group(inv, &c, &cv);
    }
}

/// Interim: `-e k=v`, `-e '{"k": 1}'`/YAML, `-e @file.yml`.
pub fn interim_extra_vars(items: &[String]) -> miette::Result<Vars> {
    let mut out = Vars::new();
    for item in items {
        let (node, path) = match item.strip_prefix('@') {
            Some(f) => {
                let docs =
                    yaml::parse_file(std::path::Path::new(f)).map_err(miette::Report::new)?;
                (docs.into_iter().next(), f.to_string())
            }
            None if item.trim_start().starts_with('{') => {
                let docs = yaml::parse_str(item, std::path::Path::new("<extra-vars>"))
                    .map_err(miette::Report::new)?;
                (docs.into_iter().next(), "<extra-vars>".into())
            }
            None => {
                for tok in crate::playbook::loader::split_free_form(item) {
                    match tok.split_once('=') {
                        Some((k, v)) => {
                            out.insert(
                                k.to_string(),
                                serde_json::Value::String(v.trim_matches(['"', '\'']).to_string()),
                            );
                        }
                        None => {
                            return Err(miette::miette!(
                                "--extra-vars: `{tok}` is not key=value, YAML/JSON or @file"
                            ));
                        }
                    }
                }
                continue;
            }
        };
        match node.map(|n| n.to_value()) {
            Some(serde_json::Value::Object(m)) => out.extend(m),
            Some(serde_json::Value::Null) | None => {}
            Some(_) => return Err(miette::miette!("--extra-vars {path}: expected a mapping")),
        }
    }
    Ok(out)
}
