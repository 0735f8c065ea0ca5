//! `fail`: fail the host with a message.

use async_trait::async_trait;
use serde_json::Value;

use super::{Op, OpContext, OpError, OpOutcome};

pub struct Fail;

#[async_trait]
impl Op for Fail {
    fn name(&self) -> &'static str {
        "fail"
    }
    fn needs_connection(&self) -> bool {
        false
    }
    async fn run(&self, ctx: &OpContext<'_>) -> Result<OpOutcome, OpError> {
        let msg = match ctx.args.get("msg") {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => "Failed as requested from task".into(),
        };
        Ok(OpOutcome::failed(msg))
    }
}
