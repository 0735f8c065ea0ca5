//! Inventory files on disk: a directory's inventory files, and `group_vars`/`host_vars`
//! files (YAML/JSON, or a directory of them) matched to groups and hosts.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;

use crate::vars::Vars;
use crate::vars::scope::{Layer, Locs, Scope};
use crate::yaml;
use crate::yaml::SourceLoc;

use super::yaml_inventory::{parse_yaml, vars_of};
use super::{InventoryError, InventoryWarning, VarsFile};

/// The inventory files inside an inventory directory (sorted; `group_vars`, `host_vars`
/// and hidden or backup files skipped), as Ansible reads a directory source.
pub(super) fn inventory_files_in(dir: &Path) -> Result<Vec<PathBuf>, InventoryError> {
    let rd = std::fs::read_dir(dir).map_err(|e| InventoryError::Read {
        path: dir.to_path_buf(),
        source: e,
    })?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let ext = p.extension().and_then(|e| e.to_str());
            p.is_file()
                && !name.starts_with('.')
                && !name.ends_with('~')
                && matches!(ext, None | Some("yml" | "yaml" | "json" | "ini"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Load `group_vars/` or `host_vars/`: for each known name, `NAME` (a directory of files,
/// read recursively in sorted order, or a file), `NAME.yml`, `NAME.yaml`, `NAME.json`.
pub(super) fn load_vars_dir(
    dir: &Path,
    names: &[String],
    layer: impl Fn(&str) -> Layer,
) -> Result<IndexMap<String, Vec<VarsFile>>, InventoryError> {
    let mut out = IndexMap::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    for name in names {
        let mut paths = Vec::new();
        for ext in ["", ".yml", ".yaml", ".json"] {
            let p = dir.join(format!("{name}{ext}"));
            if p.is_dir() {
                collect_dir(&p, &mut paths);
            } else if p.is_file() {
                paths.push(p);
            }
        }
        let mut files = Vec::new();
        for path in paths {
            let (vars, locs) = match parse_yaml(&path)? {
                None => (Vars::new(), Locs::new()),
                Some(node) => vars_of(&node, &format!("vars file {}", path.display()))?,
            };
            files.push(VarsFile {
                scope: Arc::new(Scope::new(
                    layer(name),
                    path.display().to_string(),
                    vars,
                    locs,
                )),
                path,
            });
        }
        if !files.is_empty() {
            out.insert(name.clone(), files);
        }
    }
    Ok(out)
}

/// Entries of `group_vars/` or `host_vars/` that name no group/host of the inventory.
pub(super) fn unmatched_vars_files(
    dir: &Path,
    names: &[String],
    what: &str,
) -> Vec<InventoryWarning> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    let mut out = Vec::new();
    for p in entries {
        let Some(file) = p.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if file.starts_with('.') || file.ends_with('~') {
            continue;
        }
        let stem = if p.is_dir() {
            file
        } else {
            match file.rsplit_once('.') {
                Some((stem, "yml" | "yaml" | "json")) => stem,
                Some(_) => continue,
                None => file,
            }
        };
        if names.iter().any(|n| n == stem) {
            continue;
        }
        let hint = names
            .iter()
            .map(|n| (strsim::levenshtein(stem, n), n))
            .min()
            .filter(|(d, _)| *d <= 2)
            .map(|(_, n)| format!(" (did you mean `{n}`?)"))
            .unwrap_or_default();
        out.push(InventoryWarning {
            loc: SourceLoc {
                file: Arc::new(p.clone()),
                line: 1,
                col: 1,
            },
            message: format!(
                "`{stem}` is not a {what} of the inventory, so these vars apply to nothing{hint}"
            ),
        });
    }
    out
}

pub(super) fn collect_dir(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') || name.ends_with('~') {
            continue;
        }
        if p.is_dir() {
            collect_dir(&p, out);
        } else {
            let ext = p.extension().and_then(|e| e.to_str());
            if matches!(ext, None | Some("yml") | Some("yaml") | Some("json")) {
                out.push(p);
            }
        }
    }
}

/// Parse a YAML/JSON text that must hold one mapping of variables (`-e`, vars files).
pub fn parse_vars_text(text: &str, path: &Path) -> Result<(Vars, Locs), InventoryError> {
    let docs = yaml::parse_str(text, path)?;
    match docs.first() {
        None => Ok((Vars::new(), Locs::new())),
        Some(node) => vars_of(node, "extra vars"),
    }
}
