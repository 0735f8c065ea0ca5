//! `set_fact`: set host variables for the rest of the run.

use async_trait::async_trait;
use serde_json::Value;

use super::{Op, OpContext, OpError, OpOutcome};

use super::schema::Spec;

/// What `set_fact` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "set_fact",
    flags: "open",
    params: "cacheable:bool",
    rules: "",
};

pub struct SetFact;

#[async_trait]
impl Op for SetFact {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn needs_connection(&self) -> bool {
        false
    }
    async fn run_unplanned(&self, ctx: &OpContext<'_>) -> Result<OpOutcome, OpError> {
        let mut o = OpOutcome::ok();
        for (k, v) in ctx.args {
            if k == "cacheable" || k == "_raw_params" {
                continue;
            }
            o.facts.insert(k.clone(), v.clone());
        }
        if o.facts.is_empty() {
            return Err(OpError::Args(
                "set_fact needs at least one `name: value`".into(),
            ));
        }
        o.result.insert(
            "ansible_facts".into(),
            Value::Object(o.facts.clone().into_iter().collect()),
        );
        Ok(o)
    }
}
