//! `setup`: gather host facts; they become `ansible_facts` and `ansible_*` variables.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{Op, OpContext, OpError, OpOutcome};
use crate::playbook::Vars;
use crate::transport::{CommandSpec, Transport};

pub struct Setup;

/// SEAM(integration): replace the body with `crate::facts::gather(t)` (written on the
/// `transport` branch). This minimal version reads hostname, kernel and arch in one round trip.
async fn gather(t: &dyn Transport) -> Result<Map<String, Value>, OpError> {
    let out = t
        .run(&CommandSpec::new("hostname; uname -s; uname -r; uname -m"))
        .await?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let mut facts = Map::new();
    for key in ["hostname", "system", "kernel", "architecture"] {
        facts.insert(key.into(), lines.next().unwrap_or("").trim().into());
    }
    Ok(facts)
}

#[async_trait]
impl Op for Setup {
    fn name(&self) -> &'static str {
        "setup"
    }
    async fn run(&self, ctx: &OpContext<'_>) -> Result<OpOutcome, OpError> {
        let facts = gather(ctx.transport.as_ref()).await?;
        let mut o = OpOutcome::ok();
        let mut set = Vars::new();
        for (k, v) in &facts {
            set.insert(format!("ansible_{k}"), v.clone());
        }
        set.insert("ansible_facts".into(), Value::Object(facts.clone()));
        o.result
            .insert("ansible_facts".into(), Value::Object(facts.clone()));
        o.facts = set;
        Ok(o)
    }
}
