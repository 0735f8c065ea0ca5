//! `group_by`: put each host in a group named from its variables (`key`),
//! created if new, under `parents` (default `all`); later plays can target it.
//!
//! As in Ansible, spaces in names become `-`, and the task is changed when the
//! host joined the group (or a parent link was made).

use async_trait::async_trait;
use serde_json::Value;

use super::{InventoryChange, Op, OpContext, OpError, OpOutcome};

use super::schema::Spec;

/// What `group_by` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "group_by",
    flags: "",
    params: "key:str!; parents:list",
    rules: "",
};

pub struct GroupBy;

fn group_name(v: &Value) -> String {
    match v {
        Value::String(s) => s.replace(' ', "-"),
        other => other.to_string().replace(' ', "-"),
    }
}

#[async_trait]
impl Op for GroupBy {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn needs_connection(&self) -> bool {
        false
    }
    async fn run_unplanned(&self, ctx: &OpContext<'_>) -> Result<OpOutcome, OpError> {
        let Some(key) = ctx.args.get("key").filter(|v| !v.is_null()) else {
            return Ok(OpOutcome::failed(
                "the 'key' param is required when using group_by",
            ));
        };
        let group = group_name(key);
        if group.is_empty() {
            return Ok(OpOutcome::failed(
                "group_by: `key` rendered to an empty name",
            ));
        }
        let parents: Vec<String> = match ctx.args.get("parents") {
            None | Some(Value::Null) => vec!["all".into()],
            Some(Value::Array(a)) => a.iter().map(group_name).collect(),
            Some(v) => vec![group_name(v)],
        };
        let mut o = OpOutcome::ok();
        o.result.insert("add_group".into(), group.clone().into());
        o.result
            .insert("parent_groups".into(), Value::from(parents.clone()));
        o.inventory.push(InventoryChange::AddToGroup {
            host: ctx.host.to_string(),
            group,
            parents,
        });
        Ok(o)
    }
}
