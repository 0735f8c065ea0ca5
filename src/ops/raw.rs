//! `raw`: the command line as written, no guards; always changed, even in check mode it is not run.

use async_trait::async_trait;

use super::{Op, OpContext, OpError, OpOutcome};
use crate::transport::CommandSpec;

use super::schema::Spec;

/// What `raw` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "raw",
    flags: "free",
    params: "_raw_params:str!; executable:path",
    rules: "",
};

pub struct Raw;

#[async_trait]
impl Op for Raw {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    async fn run_unplanned(&self, ctx: &OpContext<'_>) -> Result<OpOutcome, OpError> {
        let line = ctx
            .arg_str("_raw_params")
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| OpError::Args("raw needs a free-form command".into()))?;
        if ctx.check {
            return Ok(OpOutcome::skipped("raw commands are not run in check mode"));
        }
        let mut spec = CommandSpec::new(match ctx.arg_str("executable") {
            Some(exe) => format!(
                "{} -c {}",
                super::command::shell_quote(&exe),
                super::command::shell_quote(&line)
            ),
            None => line,
        });
        spec.timeout = ctx.timeout;
        spec.become_ = ctx.become_.clone();
        spec.env = ctx.env.clone();
        let out = ctx.transport.run(&spec).await?;
        let mut o = OpOutcome::changed().with_command_output(&out);
        if out.timed_out || out.rc != 0 {
            o.failed = true;
            o.msg = Some(if out.timed_out {
                "command timed out and was killed".into()
            } else {
                "non-zero return code".into()
            });
        }
        Ok(o)
    }
}
