//! `fail`: fail the host with a message.

use async_trait::async_trait;
use serde_json::Value;

use super::{Op, OpContext, OpError, OpOutcome};

use super::schema::Spec;

/// What `fail` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "fail",
    flags: "",
    params: "msg:raw",
    rules: "",
};

pub struct Fail;

#[async_trait]
impl Op for Fail {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn needs_connection(&self) -> bool {
        false
    }
    async fn run_unplanned(&self, ctx: &OpContext<'_>) -> Result<OpOutcome, OpError> {
        let msg = match ctx.args.get("msg") {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => "Failed as requested from task".into(),
        };
        Ok(OpOutcome::failed(msg))
    }
}
