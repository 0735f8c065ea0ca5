//! `raw`: the command line as written, no guards; always changed, even in check mode it is not run.
//! Planned: the plan is always to run it (check mode reports it skipped), the apply runs it.

use async_trait::async_trait;

use super::command::Work;
use super::{Change, Op, OpContext, OpError, OpOutcome, Plan};
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
    async fn plan(&self, ctx: &OpContext<'_>) -> Result<Plan, OpError> {
        let line = ctx
            .arg_str("_raw_params")
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| OpError::Args("raw needs a free-form command".into()))?;
        let outcome = OpOutcome::skipped("raw commands are not run in check mode");
        let changes = vec![Change::Host(format!("runs `{line}`"))];
        Ok(Plan::changes(outcome, changes, Work(line)))
    }
    async fn apply(&self, ctx: &OpContext<'_>, plan: Plan) -> Result<OpOutcome, OpError> {
        let (_, Work(line)) = plan.into_work::<Work>(SPEC.name)?;
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
