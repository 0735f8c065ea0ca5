//! `setup`: gather host facts; they become `ansible_facts` and `ansible_*` variables.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{Op, OpContext, OpError, OpOutcome};
use crate::playbook::Vars;
use crate::transport::Transport;

use super::schema::Spec;

/// What `setup` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "setup",
    flags: "",
    params: "gather_subset:list; filter:list; gather_timeout:int; fact_path:path",
    rules: "",
};

pub struct Setup;

/// Every fact of the host in one round trip (`crate::facts::gather`), keyed
/// as Ansible names its variables (`ansible_distribution`, ..., and ferry's own `ferry_nics`).
async fn gather(t: &dyn Transport) -> Result<Map<String, Value>, OpError> {
    match crate::facts::gather(t).await {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(OpError::failed(format!("facts are not a mapping: {other}"))),
        Err(crate::facts::FactsError::Transport(e)) => Err(OpError::Transport(e)),
        Err(e) => Err(OpError::failed(e.to_string())),
    }
}

#[async_trait]
impl Op for Setup {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    async fn run(&self, ctx: &OpContext<'_>) -> Result<OpOutcome, OpError> {
        let facts = gather(ctx.transport.as_ref()).await?;
        let mut o = OpOutcome::ok();
        let mut set = Vars::new();
        // Variables keep their names (`ansible_kernel`, `ferry_nics`); inside
        // `ansible_facts` they lose the `ansible_` prefix, as in Ansible.
        let mut short = Map::new();
        for (k, v) in &facts {
            set.insert(k.clone(), v.clone());
            let key = k.strip_prefix("ansible_").unwrap_or(k);
            short.insert(key.to_string(), v.clone());
        }
        set.insert("ansible_facts".into(), Value::Object(short.clone()));
        o.result
            .insert("ansible_facts".into(), Value::Object(short));
        o.facts = set;
        Ok(o)
    }
}
