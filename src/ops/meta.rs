//! `meta`: engine control (flush_handlers, end_play, end_host, noop).

use async_trait::async_trait;

use super::{Control, Op, OpContext, OpError, OpOutcome};

use super::schema::Spec;

/// What `meta` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "meta",
    flags: "free",
    params: "_raw_params:str!=flush_handlers,end_play,end_host,end_batch,noop,refresh_inventory,clear_facts,clear_host_errors,reset_connection",
    rules: "",
};

pub struct Meta;

#[async_trait]
impl Op for Meta {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn needs_connection(&self) -> bool {
        false
    }
    fn silent(&self) -> bool {
        true
    }
    async fn run_unplanned(&self, ctx: &OpContext<'_>) -> Result<OpOutcome, OpError> {
        let what = ctx.arg_str("_raw_params").unwrap_or_default();
        let control = match what.trim() {
            "flush_handlers" => Control::FlushHandlers,
            "end_play" => Control::EndPlay,
            "end_host" => Control::EndHost,
            "noop" => Control::Noop,
            other => {
                return Err(OpError::Args(format!(
                    "meta: unknown action `{other}` (known: flush_handlers, end_play, end_host, noop)"
                )));
            }
        };
        Ok(OpOutcome {
            control: Some(control),
            ..OpOutcome::default()
        })
    }
}
