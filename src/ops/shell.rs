//! `shell`: a command line through a shell (`executable:` picks which).

use async_trait::async_trait;

use super::command::{command_line, run_guarded, shell_quote};
use super::{Op, OpContext, OpError, OpOutcome};

pub struct Shell;

#[async_trait]
impl Op for Shell {
    fn name(&self) -> &'static str {
        "shell"
    }
    async fn run(&self, ctx: &OpContext<'_>) -> Result<OpOutcome, OpError> {
        let line = command_line(ctx)?;
        let line = match ctx.arg_str("executable") {
            Some(exe) => format!("{} -c {}", shell_quote(&exe), shell_quote(&line)),
            None => line,
        };
        run_guarded(ctx, line).await
    }
}
