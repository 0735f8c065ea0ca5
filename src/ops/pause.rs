//! `pause`: wait for some seconds or minutes, once for the whole play.
//!
//! ferry never reads the terminal: a `prompt` without `seconds`/`minutes` does
//! not wait (Ansible does the same when stdin is not a terminal, as under CI),
//! and the result says so; `user_input` is always empty. With a duration the
//! prompt is only shown as the task's message and the pause lasts that long.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde_json::Value;

use super::{Op, OpContext, OpError, OpOutcome};

use super::schema::Spec;

/// What `pause` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "pause",
    flags: "",
    params: "seconds:int; minutes:int; prompt:str; echo:bool",
    rules: "seconds|minutes",
};

pub struct Pause;

/// A whole number of seconds/minutes as Ansible's `int` takes it (floats truncated).
fn whole(key: &str, v: &Value) -> Result<i64, OpError> {
    let n = match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    n.ok_or_else(|| OpError::Args(format!("pause: `{key}` must be a whole number, got {v}")))
}

/// A float as Python prints it (`1.0`, `0.25`).
fn py_float(f: f64) -> String {
    if f.fract() == 0.0 {
        format!("{f:.1}")
    } else {
        f.to_string()
    }
}

#[async_trait]
impl Op for Pause {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn needs_connection(&self) -> bool {
        false
    }
    fn bypass_host_loop(&self) -> bool {
        true
    }
    async fn run_unplanned(&self, ctx: &OpContext<'_>) -> Result<OpOutcome, OpError> {
        let echo = ctx.arg_bool("echo")?.unwrap_or(true);
        let prompt = ctx.arg_str("prompt");
        let (seconds, unit) = match (ctx.args.get("minutes"), ctx.args.get("seconds")) {
            (Some(_), Some(_)) => {
                return Err(OpError::Args(
                    "pause: `minutes` and `seconds` are mutually exclusive".into(),
                ));
            }
            (Some(m), None) => (Some(whole("minutes", m)? * 60), "minutes"),
            (None, Some(s)) => (Some(whole("seconds", s)?), "seconds"),
            (None, None) => (None, "minutes"),
        };
        let start = SystemTime::now();
        let mut o = OpOutcome::ok();
        match seconds {
            Some(s) => {
                let s = s.max(1);
                tokio::time::sleep(Duration::from_secs(s as u64)).await;
                if let Some(p) = &prompt {
                    o.msg = Some(p.clone());
                }
            }
            None => {
                o.msg = Some(format!(
                    "{}: not waiting for a response, ferry does not read the terminal \
                     (give `seconds:` or `minutes:` to wait)",
                    prompt.as_deref().unwrap_or("Press enter to continue")
                ));
            }
        }
        let elapsed = start.elapsed().unwrap_or_default().as_secs_f64();
        let shown = if unit == "minutes" {
            (elapsed / 60.0 * 100.0).round() / 100.0
        } else {
            (elapsed * 100.0).round() / 100.0
        };
        for (k, v) in [
            ("rc", Value::from(0)),
            ("stderr", "".into()),
            (
                "stdout",
                format!("Paused for {} {unit}", py_float(shown)).into(),
            ),
            ("start", crate::clock::ansible_timestamp(start).into()),
            (
                "stop",
                crate::clock::ansible_timestamp(SystemTime::now()).into(),
            ),
            ("delta", Value::from(elapsed as i64)),
            ("echo", echo.into()),
            ("user_input", "".into()),
        ] {
            o.result.insert(k.into(), v);
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_python_floats() {
        assert_eq!(py_float(1.0), "1.0");
        assert_eq!(py_float(0.02), "0.02");
    }
}
