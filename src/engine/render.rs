//! The engine's [`Render`]: every template, argument and condition goes through
//! `crate::template`, the one minijinja Environment.

use serde_json::Value;

use crate::ops::Render;
use crate::template;
use crate::template::TemplateError;
use crate::vars::Vars;

/// Renders with `crate::template` (strict undefined, Ansible's filters and tests), over
/// the task's variables and the play's shared magic variables
/// (`template::context_with`).
#[derive(Debug, Default)]
pub struct TemplateRender {
    shared: Option<minijinja::Value>,
}

impl TemplateRender {
    /// A renderer whose contexts also see `shared` (a map; see `template::context_with`).
    pub fn with_shared(shared: minijinja::Value) -> Self {
        Self {
            shared: Some(shared),
        }
    }

    fn ctx(&self, vars: &Vars) -> minijinja::Value {
        template::context_with(vars, self.shared.as_ref())
    }
}

impl Render for TemplateRender {
    fn render_value(&self, value: &Value, vars: &Vars) -> Result<Value, TemplateError> {
        template::render_json(value, &self.ctx(vars))
    }
    fn eval_condition(&self, expr: &str, vars: &Vars) -> Result<bool, TemplateError> {
        template::eval_condition(expr, &self.ctx(vars))
    }
    fn eval_expr(&self, expr: &str, vars: &Vars) -> Result<Value, TemplateError> {
        let expr = expr.trim();
        let expr = expr
            .strip_prefix("{{")
            .and_then(|e| e.strip_suffix("}}"))
            .unwrap_or(expr);
        template::render_value(&format!("{{{{ {expr} }}}}"), &self.ctx(vars))
    }
    fn render_template(
        &self,
        source: &str,
        name: &str,
        vars: &Vars,
    ) -> Result<String, TemplateError> {
        let path = std::path::Path::new(name);
        let ctx = self.ctx(vars);
        if path.is_file() {
            template::render_file(path, &ctx)
        } else {
            template::render_str(source, &ctx)
        }
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
        let r = TemplateRender::default();
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
        let err = r
            .render_value(&json!("{{ nope }}"), &v)
            .unwrap_err()
            .to_string();
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
        let r = TemplateRender::default();
        assert_eq!(
            r.render_value(&json!("mkdir {{ out }}"), &v).unwrap(),
            json!("mkdir /w/h1")
        );
        assert_eq!(
            r.render_value(&json!("{{ deeper }}"), &v).unwrap(),
            json!(["/w/h1/x", {"n": 42}])
        );
        assert!(r.eval_condition("out == '/w/h1'", &v).unwrap());
        let err = r
            .render_value(&json!("{{ me }}"), &v)
            .unwrap_err()
            .to_string();
        assert!(err.contains("me"), "{err}");
    }

    #[test]
    fn conditions_and_result_tests() {
        let v = vars(json!({"r": {"changed": true, "failed": false, "rc": 0}, "s": "no"}));
        let r = TemplateRender::default();
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
        let r = TemplateRender::default();
        assert_eq!(
            r.render_value(&json!("{{ out }}"), &v).unwrap(),
            json!("z/x")
        );
        assert_eq!(
            r.render_value(&json!("{{ l[0] }}"), &v).unwrap(),
            json!("z")
        );
        assert!(r.eval_condition("out == 'z/x'", &v).unwrap());
        let err = r
            .render_value(&json!("{{ me }}"), &v)
            .unwrap_err()
            .to_string();
        assert!(err.contains("itself"), "{err}");
        let v = vars(json!({"out": "{{ nope }}/x"}));
        let err = r
            .render_value(&json!("{{ out }}"), &v)
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope") && err.contains("out"), "{err}");
    }
}
