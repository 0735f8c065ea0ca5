//! `ferry inventory`: `--list` (ansible-inventory's JSON), `--host H` (one host's merged
//! variables), `--host H --explain VAR`, `--graph [PATTERN]`.

use std::sync::Arc;

use miette::IntoDiagnostic;

use crate::CmdResult;
use crate::cli::InventoryArgs;
use crate::exit;
use crate::inventory::{Inventory, graph, list_json, list_json_of};
use crate::vars::extra_vars_scopes;

pub fn inventory(args: InventoryArgs) -> CmdResult {
    if args.inv.inventory.is_empty() {
        return Err(miette::miette!(
            help = "give an inventory file or directory, e.g. `ferry inventory -i inventories/lab.yml --list`",
            "no inventory given (-i)"
        ));
    }
    let inv = Inventory::load(&args.inv.inventory)?;
    for w in &inv.warnings {
        eprintln!("{w}");
    }
    if let Some(host) = &args.host {
        if !inv.hosts.contains_key(host) {
            return Err(miette::miette!(
                help = "`ferry inventory -i INV --graph` lists the hosts",
                "host `{host}` is not in the inventory"
            ));
        }
        let mut layers = inv.layers(host);
        layers.push(inv.host_magic(host));
        for scope in extra_vars_scopes(&args.inv.extra_vars)? {
            layers.push(Arc::new(scope));
        }
        if let Some(var) = &args.explain {
            match layers.explain(var) {
                Some(e) => emit(&e.to_string()),
                None => {
                    emit(&format!(
                        "{var} is not set for {host} by the inventory or -e\n"
                    ));
                    return Ok(exit::ERROR);
                }
            }
            return Ok(exit::OK);
        }
        let vars = layers.flatten_user();
        emit(&(serde_json::to_string_pretty(&vars).into_diagnostic()? + "\n"));
        return Ok(exit::OK);
    }
    if args.graph {
        let root = args.inv.limit.as_deref().unwrap_or("all");
        if !inv.groups.contains_key(root) {
            return Err(miette::miette!("no group `{root}` to graph"));
        }
        emit(&graph(&inv, root));
        return Ok(exit::OK);
    }
    // --list is the default, as the most useful view.
    let json = match &args.inv.limit {
        None => list_json(&inv),
        Some(limit) => list_json_of(&inv, &inv.select_limited("all", Some(limit))?),
    };
    emit(&(serde_json::to_string_pretty(&json).into_diagnostic()? + "\n"));
    Ok(exit::OK)
}

/// Write to stdout; a closed pipe (`| head`) is not an error.
fn emit(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// `ferry inventory from-vagrant [--dir DIR] [--out FILE]`.
pub fn from_vagrant(args: crate::cli::FromVagrantArgs) -> CmdResult {
    use crate::inventory::vagrant::{VagrantDir, inventory_yaml, known_hosts_path, read_cluster};
    let cluster = read_cluster(&VagrantDir::new(&args.dir))?;
    for w in &cluster.warnings {
        eprintln!("warning: {w}");
    }
    let known_hosts = known_hosts_path(args.out.as_deref(), &args.dir)?;
    let yaml = inventory_yaml(&cluster, &known_hosts);
    let Some(out) = &args.out else {
        emit(&yaml);
        return Ok(exit::OK);
    };
    std::fs::write(out, &yaml)
        .into_diagnostic()
        .map_err(|e| e.wrap_err(format!("write {}", out.display())))?;
    let names: Vec<&str> = cluster.hosts.iter().map(|h| h.name.as_str()).collect();
    eprintln!(
        "wrote {} ({}); the first `ferry run -i {} --accept-new-host-keys ...` records host keys in {}",
        out.display(),
        names.join(", "),
        out.display(),
        known_hosts.display()
    );
    Ok(exit::OK)
}
