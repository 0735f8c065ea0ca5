//! `ping`: one round trip to the host; returns `ping: pong` (or `data:`).

use async_trait::async_trait;

use super::{Op, OpContext, OpError, OpOutcome};
use crate::transport::CommandSpec;

use super::schema::Spec;

/// What `ping` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "ping",
    flags: "",
    params: "data:str",
    rules: "",
};

pub struct Ping;

#[async_trait]
impl Op for Ping {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    async fn run_unplanned(&self, ctx: &OpContext<'_>) -> Result<OpOutcome, OpError> {
        let data = ctx.arg_str("data").unwrap_or_else(|| "pong".into());
        if data == "crash" {
            return Ok(OpOutcome::failed("boom"));
        }
        let mut spec = CommandSpec::new("true");
        spec.timeout = ctx.timeout;
        spec.become_ = ctx.become_.clone();
        let out = ctx.transport.run(&spec).await?;
        if out.rc != 0 {
            return Ok(OpOutcome::failed(format!("`true` exited with {}", out.rc)));
        }
        let mut o = OpOutcome::ok();
        o.result.insert("ping".into(), data.into());
        Ok(o)
    }
}
