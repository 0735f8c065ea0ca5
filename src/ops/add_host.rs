//! `add_host`: add a host (or update one) in the run's inventory, with groups and
//! host vars; later plays' `hosts:` patterns see it and can connect to it.
//!
//! As in Ansible the op runs once for the play (not once per host; loop over
//! items to add several), `name: HOST:PORT` sets `ansible_ssh_port`, every key
//! but `name`/`groups` (and their aliases) becomes a host var, and the task is
//! changed when the inventory changed (a new host, new vars, a new group membership).
//! `--limit` still applies to later plays: a new host outside it is not selected.

use async_trait::async_trait;
use serde_json::Value;

use super::{InventoryChange, Op, OpContext, OpError, OpOutcome};
use crate::vars::Vars;

use super::schema::Spec;

/// What `add_host` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "add_host",
    flags: "open",
    params: "name:str!/host,hostname; groups:list/group,groupname",
    rules: "",
};

pub struct AddHost;

const NAME_KEYS: &[&str] = &["name", "hostname", "host"];
const GROUP_KEYS: &[&str] = &["groups", "groupname", "group"];

/// `host:port` (and `[v6]:port`) split as Ansible's `parse_address` does.
fn split_port(name: &str) -> (String, Option<u16>) {
    if let Some(rest) = name.strip_prefix('[')
        && let Some((h, tail)) = rest.split_once(']')
    {
        let port = tail.strip_prefix(':').and_then(|p| p.parse().ok());
        return (h.to_string(), port);
    }
    match name.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && !h.is_empty() => match p.parse() {
            Ok(port) => (h.to_string(), Some(port)),
            Err(_) => (name.to_string(), None),
        },
        _ => (name.to_string(), None),
    }
}

#[async_trait]
impl Op for AddHost {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn needs_connection(&self) -> bool {
        false
    }
    fn bypass_host_loop(&self) -> bool {
        true
    }
    async fn run_unplanned(&self, ctx: &OpContext<'_>) -> Result<OpOutcome, OpError> {
        let Some(raw_name) = NAME_KEYS.iter().find_map(|k| ctx.arg_str(k)) else {
            return Err(OpError::Args(
                "add_host: name, host or hostname needs to be provided".into(),
            ));
        };
        let (name, port) = split_port(raw_name.trim());
        if name.is_empty() || name.chars().any(char::is_whitespace) {
            return Err(OpError::Args(format!(
                "add_host: `{raw_name}` is not a host name (one word without spaces)"
            )));
        }
        let mut groups: Vec<String> = Vec::new();
        match GROUP_KEYS.iter().find_map(|k| ctx.args.get(*k)) {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) => {
                for g in a {
                    let g = match g {
                        Value::String(s) => s.trim().to_string(),
                        other => other.to_string(),
                    };
                    if !groups.contains(&g) {
                        groups.push(g);
                    }
                }
            }
            Some(Value::String(s)) => {
                for g in s.split(',').map(str::trim).filter(|g| !g.is_empty()) {
                    if !groups.iter().any(|x| x == g) {
                        groups.push(g.to_string());
                    }
                }
            }
            Some(other) => {
                return Err(OpError::Args(format!(
                    "add_host: groups must be a list, got {other}"
                )));
            }
        }
        let mut vars: Vars = ctx
            .args
            .iter()
            .filter(|(k, _)| {
                !NAME_KEYS.contains(&k.as_str())
                    && !GROUP_KEYS.contains(&k.as_str())
                    && k.as_str() != "_raw_params"
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(p) = port {
            vars.insert("ansible_ssh_port".into(), p.into());
        }
        let mut o = OpOutcome::ok();
        o.result.insert(
            "add_host".into(),
            serde_json::json!({
                "host_name": name,
                "groups": groups,
                "host_vars": Value::Object(vars.clone().into_iter().collect()),
            }),
        );
        o.inventory
            .push(InventoryChange::AddHost { name, groups, vars });
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::split_port;

    #[test]
    fn ports_split_off_like_ansible() {
        assert_eq!(split_port("web1:2222"), ("web1".into(), Some(2222)));
        assert_eq!(split_port("web1"), ("web1".into(), None));
        assert_eq!(split_port("[::1]:22"), ("::1".into(), Some(22)));
        assert_eq!(split_port("fe80::1"), ("fe80::1".into(), None));
    }
}
