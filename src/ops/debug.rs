//! `debug`: show a message (`msg`) or a variable (`var`).

use async_trait::async_trait;
use serde_json::Value;

use super::{Op, OpContext, OpError, OpOutcome};

use super::schema::Spec;

/// What `debug` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "debug",
    flags: "",
    params: "msg:raw; var:str; verbosity:int",
    rules: "msg|var",
};

pub struct Debug;

#[async_trait]
impl Op for Debug {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn needs_connection(&self) -> bool {
        false
    }
    async fn run_unplanned(&self, ctx: &OpContext<'_>) -> Result<OpOutcome, OpError> {
        let mut o = OpOutcome::ok();
        if let Some(var) = ctx.arg_str("var") {
            let v = ctx
                .render
                .eval_expr(&var, ctx.vars)
                .unwrap_or_else(|_| Value::String("VARIABLE IS NOT DEFINED!".into()));
            o.msg = Some(match &v {
                Value::String(s) => format!("{var}: {s}"),
                other => format!("{var}: {other}"),
            });
            o.result.insert(var, v);
        } else {
            let msg = ctx
                .args
                .get("msg")
                .cloned()
                .unwrap_or_else(|| "Hello world!".into());
            o.msg = Some(match &msg {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            o.result.insert("msg".into(), msg);
        }
        Ok(o)
    }
}
