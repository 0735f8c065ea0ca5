//! `shell`: a command line through a shell (`executable:` picks which).

use async_trait::async_trait;

use super::command::{apply_guarded, command_line, plan_guarded, shell_quote};
use super::{Op, OpContext, OpError, OpOutcome, Plan};

use super::schema::Spec;

/// What `shell` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "shell",
    flags: "free",
    params: "_raw_params:str; cmd:str; creates:path; removes:path; chdir:path; stdin:str; stdin_add_newline:bool; executable:path",
    rules: "_raw_params|cmd one:_raw_params|cmd",
};

pub struct Shell;

#[async_trait]
impl Op for Shell {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    async fn plan(&self, ctx: &OpContext<'_>) -> Result<Plan, OpError> {
        let line = command_line(ctx)?;
        let line = match ctx.arg_str("executable") {
            Some(exe) => format!("{} -c {}", shell_quote(&exe), shell_quote(&line)),
            None => line,
        };
        plan_guarded(ctx, line).await
    }
    async fn apply(&self, ctx: &OpContext<'_>, plan: Plan) -> Result<OpOutcome, OpError> {
        apply_guarded(ctx, plan).await
    }
}
