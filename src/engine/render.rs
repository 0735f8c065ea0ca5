//! SEAM(integration): a minimal private renderer for the engine, to be swapped for
//! `crate::template` (the one minijinja Environment) at merge time. Keep it small:
//! `render_value` and `eval_condition` are all the engine calls.

use std::sync::OnceLock;

use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;

use crate::ops::Render;
use crate::playbook::Vars;

fn result_flag(v: &minijinja::Value, key: &str) -> bool {
    v.get_attr(key).map(|x| x.is_true()).unwrap_or(false)
}

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_test("failed", |v: minijinja::Value| result_flag(&v, "failed"));
        env.add_test("succeeded", |v: minijinja::Value| {
            !result_flag(&v, "failed")
        });
        env.add_test("success", |v: minijinja::Value| !result_flag(&v, "failed"));
        env.add_test("changed", |v: minijinja::Value| result_flag(&v, "changed"));
        env.add_test("skipped", |v: minijinja::Value| result_flag(&v, "skipped"));
        env.add_filter("bool", |v: minijinja::Value| -> bool {
            match v.as_str() {
                Some(s) => matches!(
                    s.to_ascii_lowercase().as_str(),
                    "yes" | "true" | "on" | "1" | "y"
                ),
                None => v.is_true(),
            }
        });
        env
    })
}

fn context(vars: &Vars) -> minijinja::Value {
    minijinja::Value::from(minijinja::value::Serde(vars))
}

fn to_json(v: minijinja::Value) -> Result<Value, String> {
    serde_json::to_value(&v).map_err(|e| e.to_string())
}

/// If `s` is exactly one `{{ expr }}`, the expression (so its native type is kept).
fn single_expression(s: &str) -> Option<&str> {
    let t = s.trim();
    let inner = t.strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("{{") || inner.contains("}}") {
        return None;
    }
    Some(inner.trim())
}

/// Render a string; a result that is itself a template (a variable holding
/// `{{ ... }}`) is rendered again, as Ansible's lazy variables are.
fn render_str(s: &str, ctx: &minijinja::Value) -> Result<Value, String> {
    let mut v = render_once(s, ctx)?;
    for _ in 0..10 {
        match &v {
            Value::String(r) if r != s && (r.contains("{{") || r.contains("{%")) => {
                v = render_once(r, ctx)?;
            }
            _ => break,
        }
    }
    Ok(v)
}

fn render_once(s: &str, ctx: &minijinja::Value) -> Result<Value, String> {
    if !s.contains("{{") && !s.contains("{%") {
        return Ok(Value::String(s.to_string()));
    }
    if let Some(expr) = single_expression(s) {
        let e = env()
            .compile_expression(expr)
            .map_err(|e| format!("`{s}`: {e}"))?;
        let v = e.eval(ctx).map_err(|e| format!("`{s}`: {e}"))?;
        if v.is_undefined() {
            return Err(format!("`{s}`: undefined value"));
        }
        return to_json(v);
    }
    env()
        .render_str(s, ctx)
        .map(Value::String)
        .map_err(|e| format!("`{s}`: {e}"))
}

fn walk(v: &Value, ctx: &minijinja::Value) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) => render_str(s, ctx)?,
        Value::Array(a) => Value::Array(a.iter().map(|x| walk(x, ctx)).collect::<Result<_, _>>()?),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| Ok((k.clone(), walk(x, ctx)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// Render every string in `value`; a string that is one `{{ expr }}` keeps the expression's type.
pub fn render_value(value: &Value, vars: &Vars) -> Result<Value, String> {
    walk(value, &context(vars))
}

/// Evaluate a bare expression (`when:`, `changed_when:`, ...) to a bool.
pub fn eval_condition(expr: &str, vars: &Vars) -> Result<bool, String> {
    let expr = single_expression(expr).unwrap_or(expr);
    let e = env()
        .compile_expression(expr)
        .map_err(|e| format!("`{expr}`: {e}"))?;
    let v = e
        .eval(context(vars))
        .map_err(|e| format!("`{expr}`: {e}"))?;
    if v.is_undefined() {
        return Err(format!("`{expr}`: undefined value"));
    }
    Ok(match v.as_str() {
        // Ansible treats the strings "false"/"no" coming from variables as false.
        Some(s) => !matches!(
            s.to_ascii_lowercase().as_str(),
            "" | "false" | "no" | "0" | "off"
        ),
        None => v.is_true(),
    })
}

/// Evaluate a bare expression to a value.
pub fn eval_expr(expr: &str, vars: &Vars) -> Result<Value, String> {
    let expr = single_expression(expr).unwrap_or(expr);
    let e = env()
        .compile_expression(expr)
        .map_err(|e| format!("`{expr}`: {e}"))?;
    let v = e
        .eval(context(vars))
        .map_err(|e| format!("`{expr}`: {e}"))?;
    if v.is_undefined() {
        return Err(format!("`{expr}`: undefined value"));
    }
    to_json(v)
}

/// The engine's renderer behind the [`Render`] seam.
pub struct MiniRender;

impl Render for MiniRender {
    fn render_value(&self, value: &Value, vars: &Vars) -> Result<Value, String> {
        render_value(value, vars)
    }
    fn eval_condition(&self, expr: &str, vars: &Vars) -> Result<bool, String> {
        eval_condition(expr, vars)
    }
    fn eval_expr(&self, expr: &str, vars: &Vars) -> Result<Value, String> {
        eval_expr(expr, vars)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(v: Value) -> Vars {
        v.as_object().unwrap().clone().into_iter().collect()
    }

    #[test]
    fn keeps_native_types_and_renders_nested_variables() {
        let v = vars(json!({"n": 2, "l": [1, 2], "base": "/srv", "dir": "{{ base }}/x"}));
        assert_eq!(render_value(&json!("{{ n + 40 }}"), &v).unwrap(), json!(42));
        assert_eq!(render_value(&json!("{{ l }}"), &v).unwrap(), json!([1, 2]));
        assert_eq!(render_value(&json!("n={{ n }}"), &v).unwrap(), json!("n=2"));
        assert_eq!(
            render_value(&json!({"p": "{{ dir }}/f"}), &v).unwrap(),
            json!({"p": "/srv/x/f"})
        );
        let err = render_value(&json!("{{ nope }}"), &v).unwrap_err();
        assert!(err.contains("nope") || err.contains("undefined"), "{err}");
    }

    #[test]
    fn conditions_and_result_tests() {
        let v = vars(json!({"r": {"failed": false, "changed": true, "rc": 0}, "s": "no"}));
        assert!(eval_condition("r is changed", &v).unwrap());
        assert!(eval_condition("r is not failed", &v).unwrap());
        assert!(eval_condition("r.rc == 0 and r is succeeded", &v).unwrap());
        assert!(!eval_condition("s | bool", &v).unwrap());
        assert!(!eval_condition("s", &v).unwrap());
        assert!(eval_condition("missing is not defined", &v).unwrap());
        assert!(eval_condition("missing", &v).is_err());
    }
}
