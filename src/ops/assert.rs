//! `assert`: every expression in `that` must hold.

use async_trait::async_trait;
use serde_json::Value;

use super::{Op, OpContext, OpError, OpOutcome};

use super::schema::Spec;

/// What `assert` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "assert",
    flags: "",
    params: "that:list!; fail_msg:raw/msg; success_msg:raw; quiet:bool",
    rules: "",
};

pub struct Assert;

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[async_trait]
impl Op for Assert {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn needs_connection(&self) -> bool {
        false
    }
    fn raw_args(&self) -> &'static [&'static str] {
        &["that"]
    }
    async fn run_unplanned(&self, ctx: &OpContext<'_>) -> Result<OpOutcome, OpError> {
        // `that` holds raw expressions: the engine leaves it unrendered (see `raw_args`).
        let that: Vec<String> = match ctx.args.get("that") {
            Some(Value::Array(a)) => a.iter().map(text).collect(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Bool(b)) => vec![b.to_string()],
            _ => return Err(OpError::Args("assert needs `that:`".into())),
        };
        for expr in &that {
            let ok = ctx
                .render
                .eval_condition(expr, ctx.vars)
                .map_err(|e| OpError::Args(format!("assert `{expr}`: {e}")))?;
            if !ok {
                let msg = ctx
                    .args
                    .get("fail_msg")
                    .or_else(|| ctx.args.get("msg"))
                    .map(text)
                    .unwrap_or_else(|| "Assertion failed".into());
                let mut o = OpOutcome::failed(msg);
                o.result.insert("assertion".into(), expr.clone().into());
                o.result.insert("evaluated_to".into(), false.into());
                return Ok(o);
            }
        }
        let msg = ctx
            .args
            .get("success_msg")
            .map(text)
            .unwrap_or_else(|| "All assertions passed".into());
        Ok(OpOutcome::ok().with_msg(msg))
    }
}
