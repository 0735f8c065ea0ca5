//! The engine's [`Render`]: every template, argument and condition goes through
//! `crate::template`, the one minijinja Environment.

use std::sync::Arc;

use minijinja::Value as MjValue;
use minijinja::value::{Enumerator, Object, ObjectRepr};
use serde_json::Value;

use crate::ops::Render;
use crate::playbook::Vars;
use crate::template;

/// Renders with `crate::template` (strict undefined, Ansible's filters and tests).
pub struct TemplateRender;

impl Render for TemplateRender {
    fn render_value(&self, value: &Value, vars: &Vars) -> Result<Value, String> {
        template::render_json(value, &lazy_context(vars)).map_err(|e| e.to_string())
    }
    fn eval_condition(&self, expr: &str, vars: &Vars) -> Result<bool, String> {
        template::eval_condition(expr, &lazy_context(vars)).map_err(|e| e.to_string())
    }
    fn eval_expr(&self, expr: &str, vars: &Vars) -> Result<Value, String> {
        let expr = expr.trim();
        let expr = expr
            .strip_prefix("{{")
            .and_then(|e| e.strip_suffix("}}"))
            .unwrap_or(expr);
        template::render_value(&format!("{{{{ {expr} }}}}"), &lazy_context(vars))
            .map_err(|e| e.to_string())
    }
    fn render_template(&self, source: &str, name: &str, vars: &Vars) -> Result<String, String> {
        let path = std::path::Path::new(name);
        let ctx = lazy_context(vars);
        if path.is_file() {
            template::render_file(path, &ctx).map_err(|e| e.to_string())
        } else {
            template::render_str(source, &ctx).map_err(|e| e.to_string())
        }
    }
}

/// The template context for `vars`: a variable whose value holds templates (a play var
/// `out: "{{ workdir }}/{{ inventory_hostname }}"`) is rendered when a template reads it,
/// against the same variables, as Ansible's lazy templating does. Only variables a
/// template reads are rendered; `hostvars` is left as it is (other hosts' templates need
/// their own variables). A variable that refers back to itself is an error, not a hang.
pub fn lazy_context(vars: &Vars) -> MjValue {
    MjValue::from_object(LazyVars {
        vars: Arc::new(vars.clone()),
        depth: 0,
    })
}

/// How deep variables may refer to variables that refer to variables.
const MAX_DEPTH: usize = 8;

#[derive(Debug)]
struct LazyVars {
    vars: Arc<Vars>,
    depth: usize,
}

fn holds_template(v: &Value) -> bool {
    match v {
        Value::String(s) => template::is_template(s),
        Value::Array(a) => a.iter().any(holds_template),
        Value::Object(m) => m.values().any(holds_template),
        _ => false,
    }
}

impl Object for LazyVars {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &MjValue) -> Option<MjValue> {
        let name = key.as_str()?;
        let v = self.vars.get(name)?;
        if name == "hostvars" || !holds_template(v) {
            return Some(MjValue::from(minijinja::value::Serde(v)));
        }
        if self.depth >= MAX_DEPTH {
            return Some(MjValue::from(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                format!("variable `{name}` refers to itself (recursive templating)"),
            )));
        }
        let inner = MjValue::from_object(LazyVars {
            vars: self.vars.clone(),
            depth: self.depth + 1,
        });
        match template::render_json(v, &inner) {
            Ok(r) => Some(MjValue::from(minijinja::value::Serde(&r))),
            Err(e) => Some(MjValue::from(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                format!("variable `{name}`: {e}"),
            ))),
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(
            self.vars
                .keys()
                .map(|k| MjValue::from(k.as_str()))
                .collect(),
        )
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.vars.len())
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
        let v = vars(json!({"n": 2, "l": [1, 2], "name": "x"}));
        let r = TemplateRender;
        assert_eq!(
            r.render_value(&json!("{{ n + 40 }}"), &v).unwrap(),
            json!(42)
        );
        assert_eq!(
            r.render_value(&json!("{{ l }}"), &v).unwrap(),
            json!([1, 2])
        );
        assert_eq!(
            r.render_value(&json!("n={{ n }}"), &v).unwrap(),
            json!("n=2")
        );
        let err = r.render_value(&json!("{{ nope }}"), &v).unwrap_err();
        assert!(err.contains("nope"), "{err}");
    }

    #[test]
    fn variables_holding_templates_are_rendered_when_read() {
        let v = vars(json!({
            "workdir": "/w",
            "inventory_hostname": "h1",
            "out": "{{ workdir }}/{{ inventory_hostname }}",
            "deeper": ["{{ out }}/x", {"n": "{{ 40 + 2 }}"}],
            "me": "{{ me }}",
        }));
        let r = TemplateRender;
        assert_eq!(
            r.render_value(&json!("mkdir {{ out }}"), &v).unwrap(),
            json!("mkdir /w/h1")
        );
        assert_eq!(
            r.render_value(&json!("{{ deeper }}"), &v).unwrap(),
            json!(["/w/h1/x", {"n": 42}])
        );
        assert!(r.eval_condition("out == '/w/h1'", &v).unwrap());
        let err = r.render_value(&json!("{{ me }}"), &v).unwrap_err();
        assert!(err.contains("me"), "{err}");
    }

    #[test]
    fn conditions_and_result_tests() {
        let v = vars(json!({"r": {"changed": true, "failed": false, "rc": 0}, "s": "no"}));
        let r = TemplateRender;
        assert!(r.eval_condition("r is changed", &v).unwrap());
        assert!(r.eval_condition("r is not failed", &v).unwrap());
        assert!(
            r.eval_condition("r.rc == 0 and r is succeeded", &v)
                .unwrap()
        );
        assert!(!r.eval_condition("s | bool", &v).unwrap());
        assert!(r.eval_condition("missing is not defined", &v).unwrap());
        assert!(r.eval_condition("missing", &v).is_err());
        assert_eq!(r.eval_expr("r.rc", &v).unwrap(), json!(0));
    }

    #[test]
    fn variables_holding_templates_render_lazily_and_recursion_is_an_error() {
        let v = vars(
            json!({"out": "{{ a }}/x", "a": "{{ b }}", "b": "z", "l": ["{{ b }}"], "me": "{{ me }}"}),
        );
        let r = TemplateRender;
        assert_eq!(
            r.render_value(&json!("{{ out }}"), &v).unwrap(),
            json!("z/x")
        );
        assert_eq!(
            r.render_value(&json!("{{ l[0] }}"), &v).unwrap(),
            json!("z")
        );
        assert!(r.eval_condition("out == 'z/x'", &v).unwrap());
        let err = r.render_value(&json!("{{ me }}"), &v).unwrap_err();
        assert!(err.contains("itself"), "{err}");
        let v = vars(json!({"out": "{{ nope }}/x"}));
        let err = r.render_value(&json!("{{ out }}"), &v).unwrap_err();
        assert!(err.contains("nope") && err.contains("out"), "{err}");
    }
}
