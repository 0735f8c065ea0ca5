//! `lookup`/`query`/`q`: `file`, `env` and `template`, with files looked up as Ansible does
//! (under `role_path` and `playbook_dir`).

use std::path::{Path, PathBuf};

use minijinja::value::Rest;
use minijinja::{Environment, Error, ErrorKind, State, Value};

use super::filters::json_err;

/// Add `lookup`, `query` and `q` to `env`.
pub(super) fn register(env: &mut Environment<'static>) {
    env.add_function("lookup", lookup);
    env.add_function("query", query);
    env.add_function("q", query);
}

/// Where `lookup('file'|'template')` looks for a relative name.
pub(super) fn search_paths(state: &State, sub: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(rp) = state
        .lookup("role_path")
        .and_then(|v| v.as_str().map(PathBuf::from))
    {
        out.push(rp.join(sub));
        out.push(rp.clone());
    }
    if let Some(pd) = state
        .lookup("playbook_dir")
        .and_then(|v| v.as_str().map(PathBuf::from))
    {
        out.push(pd.join(sub));
        out.push(pd);
    }
    out
}

pub(super) fn find_file(state: &State, sub: &str, name: &str) -> Result<PathBuf, Error> {
    let p = Path::new(name);
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    for d in search_paths(state, sub) {
        let c = d.join(p);
        if c.exists() {
            return Ok(c);
        }
    }
    if p.exists() {
        return Ok(p.to_path_buf());
    }
    Err(Error::new(
        ErrorKind::InvalidOperation,
        format!("lookup: file not found: {name}"),
    ))
}

pub(super) fn lookup_one(state: &State, kind: &str, term: &str) -> Result<Value, Error> {
    match kind {
        "file" => {
            let p = find_file(state, "files", term)?;
            let s = std::fs::read_to_string(&p).map_err(json_err)?;
            // Ansible strips the trailing newline by default (rstrip=True).
            Ok(Value::from(s.trim_end_matches('\n').to_string()))
        }
        "env" => Ok(Value::from(std::env::var(term).unwrap_or_default())),
        "template" => {
            let p = find_file(state, "templates", term)?;
            let mut ctx = indexmap::IndexMap::new();
            for name in state.known_variables() {
                if let Some(v) = state.lookup(&name) {
                    ctx.insert(name.to_string(), v);
                }
            }
            let src = std::fs::read_to_string(&p).map_err(json_err)?;
            state
                .env()
                .render_named_str(&p.display().to_string(), &src, Value::from_pairs(ctx))
                .map(Value::from)
        }
        other => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("lookup plugin `{other}` is not supported (ferry has file, env, template)"),
        )),
    }
}

pub(super) fn lookup(state: &State, kind: &str, terms: Rest<String>) -> Result<Value, Error> {
    let vals: Vec<Value> = terms
        .iter()
        .map(|t| lookup_one(state, kind, t))
        .collect::<Result<_, _>>()?;
    // Like Ansible: several terms joined with commas, one term as itself.
    if vals.len() == 1 {
        Ok(vals.into_iter().next().unwrap_or_default())
    } else {
        Ok(Value::from(
            vals.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(","),
        ))
    }
}

pub(super) fn query(state: &State, kind: &str, terms: Rest<String>) -> Result<Value, Error> {
    let vals: Vec<Value> = terms
        .iter()
        .map(|t| lookup_one(state, kind, t))
        .collect::<Result<_, _>>()?;
    Ok(Value::from(vals))
}
