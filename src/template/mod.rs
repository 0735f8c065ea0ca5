//! The one minijinja Environment (strict undefined, Ansible filters).
//!
//! - Undefined variables are errors (`UndefinedBehavior::Strict`); `default`/`d`
//!   and `is defined` still work on a plain undefined name.
//! - `trim_blocks` on, `lstrip_blocks` off, trailing newline kept: what
//!   Ansible's template module does.
//! - Filters and tests Ansible playbooks use most: minijinja's builtins where
//!   their meaning matches Jinja2's, minijinja-contrib's, and the rest written
//!   here (`bool` with Ansible's yes/no meaning, `to_json`, `to_yaml`,
//!   `regex_replace`, `b64encode`, `combine`, `dict2items`, tests `match`,
//!   `succeeded`, ...).
//! - `lookup('file'|'env'|'template', ...)`: files are looked up as Ansible
//!   does, under `role_path` (files/ or templates/) and `playbook_dir`
//!   (files/ or templates/, then the directory itself) when those variables
//!   are in the context.
//! - A string that is one `{{ expression }}` and nothing else renders to the
//!   expression's own type (a list stays a list), as Ansible does.
//!
//! Template names given to [`env`]'s loader are file paths.
//!
//! Filters and tests written here are in `filters`, lookups in `lookup`, the tests in
//! `tests`; this file is the Environment, rendering and the variable check.

mod filters;
mod lookup;
mod names;

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior, Value};

use crate::vars::Vars;
use filters::ansible_bool_str;

/// A template or expression that failed to parse or render.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    /// The template file, when the text came from one.
    pub file: Option<PathBuf>,
    /// 1-based line within the template text.
    pub line: Option<usize>,
    /// Byte range within the template text.
    pub range: Option<std::ops::Range<usize>>,
    /// The undefined variable, when that is what went wrong.
    pub undefined: Option<String>,
    /// Whether this is a syntax error (found without any variables).
    pub syntax: bool,
    pub message: String,
}

impl TemplateError {
    /// An error that is only its message (no file, line or variable to point at).
    pub fn new(message: impl Into<String>) -> Self {
        TemplateError {
            file: None,
            line: None,
            range: None,
            undefined: None,
            syntax: false,
            message: message.into(),
        }
    }
}

/// The program's one template environment.
pub fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(build_env)
}

fn build_env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Ansible never escapes: `domain.xml.j2` keeps `/` and `<` as written.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_syntax(syntax());
    env.set_loader(|name| match std::fs::read_to_string(name) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("cannot read template {name}"),
        )
        .with_source(e)),
    });
    minijinja_contrib::add_to_environment(&mut env);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);

    filters::register(&mut env);
    lookup::register(&mut env);
    env
}

/// Jinja's delimiters, `trim_blocks` on, `lstrip_blocks` off, trailing newline kept.
fn syntax() -> minijinja::syntax::SyntaxConfig {
    minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(false)
        .keep_trailing_newline(true)
        .build()
        .expect("default delimiters are valid")
}

/// Names the environment itself provides (functions and globals), never user variables.
pub fn env_globals() -> &'static HashSet<String> {
    static G: OnceLock<HashSet<String>> = OnceLock::new();
    G.get_or_init(|| env().globals().map(|(k, _)| k.to_string()).collect())
}

/// The reserved variable listing the names whose values are data, never
/// templates: registered results, facts gathered from hosts and `set_fact`
/// values (already rendered once). It is not a valid variable name, so no
/// playbook can set or read it, and the template context hides it.
pub const DATA_VARS: &str = "ferry:data";

/// Mark the variable `name` of `vars` as data: a template reading it gets its
/// text as it is, never evaluated (Ansible marks such values unsafe).
pub fn mark_data(vars: &mut Vars, name: &str) {
    let entry = vars
        .entry(DATA_VARS.to_string())
        .or_insert_with(|| serde_json::Value::Array(Vec::new()));
    if let serde_json::Value::Array(names) = entry
        && !names.iter().any(|n| n.as_str() == Some(name))
    {
        names.push(name.into());
    }
}

/// Whether `vars` marks `name` as data (see [`mark_data`]).
fn is_data(vars: &Vars, name: &str) -> bool {
    matches!(vars.get(DATA_VARS), Some(serde_json::Value::Array(names))
        if names.iter().any(|n| n.as_str() == Some(name)))
}

/// A variable mapping as a template context. Variables are templated when a
/// template reads them, as Ansible does: a role default
/// `listen: "{{ mgmt_ip }}"` reads as the host's `mgmt_ip`. A variable whose
/// value needs an undefined variable is an error naming both; text that is not
/// a valid template (command output with braces) is read as it is.
pub fn context(vars: &Vars) -> Value {
    context_with(vars, None)
}

/// [`context`] over `vars` and `shared`: a map of values every host of a play sees
/// alike (`groups`, `play_hosts`), built once and shared (a minijinja value is
/// reference-counted), so a context costs nothing per host for them. Names in
/// `shared` are magic variables: they win over `vars`, and are data, never templates.
pub fn context_with(vars: &Vars, shared: Option<&Value>) -> Value {
    Value::from_object(LazyVars {
        vars: vars.clone(),
        shared: shared.cloned(),
        rendered: std::sync::Mutex::new(std::collections::HashMap::new()),
    })
}

/// The context object behind [`context`]: each variable rendered on first
/// read, then kept.
#[derive(Debug)]
struct LazyVars {
    vars: Vars,
    shared: Option<Value>,
    rendered: std::sync::Mutex<std::collections::HashMap<String, Option<Value>>>,
}

/// Whether a value holds template syntax anywhere inside. A registered task
/// result (an object with `changed` and `failed`) is read as it is: command
/// output is data, never a template (Ansible marks it unsafe).
fn holds_template(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Object(m) if m.contains_key("changed") && m.contains_key("failed") => {
            false
        }
        serde_json::Value::String(s) => is_template(s),
        serde_json::Value::Array(a) => a.iter().any(holds_template),
        serde_json::Value::Object(m) => m.values().any(holds_template),
        _ => false,
    }
}

impl LazyVars {
    fn shared_var(&self, name: &str) -> Option<Value> {
        let v = self.shared.as_ref()?.get_attr(name).ok()?;
        (!v.is_undefined()).then_some(v)
    }
}

impl minijinja::value::Object for LazyVars {
    fn get_value(self: &std::sync::Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        if let Some(v) = self.shared_var(name) {
            return Some(v);
        }
        if let Some(done) = self.rendered.lock().unwrap().get(name) {
            return done.clone();
        }
        if name == DATA_VARS {
            return None;
        }
        let raw = self.vars.get(name)?;
        // Other hosts' variables are theirs to render, never in this host's
        // context; data (host output, facts) is never rendered at all.
        if name == "hostvars" || is_data(&self.vars, name) || !holds_template(raw) {
            return Some(Value::from(minijinja::value::Serde(raw)));
        }
        // Mark it as being rendered: a variable that needs itself is a loop.
        self.rendered.lock().unwrap().insert(
            name.to_string(),
            Some(Value::from(Error::new(
                ErrorKind::InvalidOperation,
                format!("recursive loop: variable `{name}` needs itself"),
            ))),
        );
        let ctx = Value::from_dyn_object(self.clone());
        let value = match render_json(raw, &ctx) {
            Ok(v) => Value::from(minijinja::value::Serde(&v)),
            // Not a template at all (command output with braces): the text as it is.
            Err(e) if e.syntax => Value::from(minijinja::value::Serde(raw)),
            Err(e) => Value::from(Error::new(
                ErrorKind::UndefinedError,
                format!("variable `{name}`: {}", e.message),
            )),
        };
        self.rendered
            .lock()
            .unwrap()
            .insert(name.to_string(), Some(value.clone()));
        Some(value)
    }

    fn enumerate(self: &std::sync::Arc<Self>) -> minijinja::value::Enumerator {
        let shared = self
            .shared
            .iter()
            .flat_map(|s| s.try_iter().into_iter().flatten());
        let own = self
            .vars
            .keys()
            .filter(|k| k.as_str() != DATA_VARS)
            .filter(|k| self.shared_var(k).is_none())
            .map(|k| Value::from(k.as_str()));
        minijinja::value::Enumerator::Values(own.chain(shared).collect())
    }
}

/// Whether a string holds template syntax at all.
pub fn is_template(s: &str) -> bool {
    s.contains('{') && (s.contains("{{") || s.contains("{%") || s.contains("{#"))
}

/// The expression of a string that is exactly one `{{ ... }}` and nothing else.
fn single_expression(s: &str) -> Option<&str> {
    // Exactly one expression, nothing around it: `"{{ x }}\n"` is a string
    // ending in a newline (as in Ansible), not `x` with the newline lost.
    let inner = s.strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.strip_prefix('-').unwrap_or(inner);
    let inner = inner.strip_suffix('-').unwrap_or(inner);
    if inner.contains("{{") || inner.contains("}}") || inner.contains("{%") {
        return None;
    }
    Some(inner)
}

/// Render a plain string from a playbook (a task argument, a var). Keeps the
/// native type when the string is one expression; strings without template
/// syntax come back unchanged.
pub fn render_value(s: &str, ctx: &Value) -> Result<serde_json::Value, TemplateError> {
    if !is_template(s) {
        return Ok(serde_json::Value::String(s.to_string()));
    }
    if let Some(expr) = single_expression(s) {
        let compiled = env()
            .compile_expression(expr)
            .map_err(|e| convert(e, None, s))?;
        let v = compiled.eval(ctx).map_err(|e| convert(e, None, s))?;
        if v.is_undefined() {
            return Err(undefined_result(expr));
        }
        return to_json_value(&v).map_err(|e| convert(e, None, s));
    }
    render_str(s, ctx).map(serde_json::Value::String)
}

/// Render a string template to a string.
pub fn render_str(s: &str, ctx: &Value) -> Result<String, TemplateError> {
    env().render_str(s, ctx).map_err(|e| convert(e, None, s))
}

/// Render a template file (the `template` op, `lookup('template')`).
pub fn render_file(path: &Path, ctx: &Value) -> Result<String, TemplateError> {
    let src = std::fs::read_to_string(path).map_err(|e| TemplateError {
        file: Some(path.to_path_buf()),
        line: None,
        range: None,
        undefined: None,
        syntax: false,
        message: format!("cannot read template {}: {e}", path.display()),
    })?;
    let name = path.display().to_string();
    env()
        .render_named_str(&name, &src, ctx)
        .map_err(|e| convert(e, Some(path), &src))
}

/// Evaluate a `when:`/`changed_when:`/`failed_when:`/`until:` condition.
/// A bare expression (Ansible wraps it in `{{ }}` itself); a string that is
/// itself a `{{ }}` template is accepted too.
pub fn eval_condition(expr: &str, ctx: &Value) -> Result<bool, TemplateError> {
    let e = condition_expression(expr);
    let compiled = env()
        .compile_expression(e)
        .map_err(|err| convert(err, None, expr))?;
    let v = compiled.eval(ctx).map_err(|err| convert(err, None, expr))?;
    if v.is_undefined() {
        return Err(undefined_result(e));
    }
    Ok(truthy(&v))
}

/// An expression whose whole value is undefined: name what it was.
fn undefined_result(expr: &str) -> TemplateError {
    let name = leading_name(expr.trim()).to_string();
    TemplateError {
        file: None,
        line: None,
        range: None,
        undefined: Some(name.clone()).filter(|n| !n.is_empty()),
        syntax: false,
        message: if name.is_empty() {
            format!("`{}` is undefined", expr.trim())
        } else {
            format!("undefined variable `{name}`")
        },
    }
}

/// Render every string inside a value (task arguments, vars), keeping native
/// types for strings that are one expression.
pub fn render_json(v: &serde_json::Value, ctx: &Value) -> Result<serde_json::Value, TemplateError> {
    use serde_json::Value as J;
    Ok(match v {
        J::String(s) => render_value(s, ctx)?,
        J::Array(items) => J::Array(
            items
                .iter()
                .map(|i| render_json(i, ctx))
                .collect::<Result<_, _>>()?,
        ),
        J::Object(m) => J::Object(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), render_json(v, ctx)?)))
                .collect::<Result<_, TemplateError>>()?,
        ),
        other => other.clone(),
    })
}

fn condition_expression(expr: &str) -> &str {
    single_expression(expr).unwrap_or(expr)
}

/// Ansible's truthiness of a rendered value: strings "yes"/"true"/"on"/"1" etc.
fn truthy(v: &Value) -> bool {
    match v.as_str() {
        Some(s) => ansible_bool_str(s).unwrap_or(!s.is_empty()),
        None => v.is_true(),
    }
}

/// Parse-only check of a string template; returns the variables it needs.
pub fn check_str(s: &str) -> Result<BTreeSet<String>, TemplateError> {
    if !is_template(s) {
        return Ok(BTreeSet::new());
    }
    if let Some(expr) = single_expression(s) {
        // An unknown filter positioned in `s` (the expression's own check
        // below would place it in `expr`).
        known_names(s, false, None)?;
        return check_expression(expr).map_err(|mut e| {
            e.range = None;
            e
        });
    }
    let t = env()
        .template_from_str(s)
        .map_err(|e| convert(e, None, s))?;
    known_names(s, false, None)?;
    Ok(filter_guarded(s, t.undeclared_variables(false)))
}

/// Parse-only check of a bare expression (`when:`); returns the variables it needs.
pub fn check_expression(expr: &str) -> Result<BTreeSet<String>, TemplateError> {
    let e = condition_expression(expr);
    let c = env()
        .compile_expression(e)
        .map_err(|err| convert(err, None, expr))?;
    known_names(expr, !expr.trim_start().starts_with("{{"), None)?;
    Ok(filter_guarded(e, c.undeclared_variables(false)))
}

/// Parse-only check of a template file; returns the variables it needs.
pub fn check_file(path: &Path, src: &str) -> Result<BTreeSet<String>, TemplateError> {
    let name = path.display().to_string();
    let t = env()
        .template_from_named_str(&name, src)
        .map_err(|e| convert(e, Some(path), src))?;
    known_names(src, false, Some(path))?;
    Ok(filter_guarded(src, t.undeclared_variables(false)))
}

/// An error for the first filter or test `src` names that ferry does not have.
fn known_names(src: &str, in_expr: bool, file: Option<&Path>) -> Result<(), TemplateError> {
    let Some(u) = names::first_unknown(src, in_expr) else {
        return Ok(());
    };
    Err(TemplateError {
        file: file.map(Path::to_path_buf),
        line: Some(src[..u.offset].matches('\n').count() + 1),
        range: Some(u.offset..u.offset + u.name.len()),
        undefined: None,
        syntax: true,
        message: format!(
            "unknown {} `{}`: ferry's Jinja has no {} of that name (check its spelling)",
            u.kind, u.name, u.kind
        ),
    })
}

/// Drop names the text only uses guarded (`x | default(...)`, `x is defined`)
/// and names the environment provides itself.
fn filter_guarded(src: &str, names: HashSet<String>) -> BTreeSet<String> {
    let globals = env_globals();
    names
        .into_iter()
        .filter(|n| !globals.contains(n) && !is_guarded(src, n))
        .collect()
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Byte offsets where `name` occurs as a whole word in `s`.
pub fn word_positions<'a>(s: &'a str, name: &'a str) -> impl Iterator<Item = usize> + 'a {
    s.match_indices(name).map(|(i, _)| i).filter(move |&i| {
        let before_ok = s[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !is_ident_char(c) && c != '.');
        let after_ok = s[i + name.len()..]
            .chars()
            .next()
            .is_none_or(|c| !is_ident_char(c));
        before_ok && after_ok
    })
}

/// Whether some use of `name` in `src` is guarded by `| default`, `| d`,
/// `| mandatory` or `is (not) defined/undefined` (after any `.attr`/`[key]`).
fn is_guarded(src: &str, name: &str) -> bool {
    word_positions(src, name).any(|i| {
        let mut rest = &src[i + name.len()..];
        // Skip `.attr` and `[key]` chains.
        loop {
            if let Some(r) = rest.strip_prefix('.') {
                let end = r.find(|c: char| !is_ident_char(c)).unwrap_or(r.len());
                rest = &r[end..];
            } else if let Some(r) = rest.strip_prefix('[') {
                match r.find(']') {
                    Some(end) => rest = &r[end + 1..],
                    None => return false,
                }
            } else {
                break;
            }
        }
        let rest = rest.trim_start();
        let word = |r: &str, w: &str| {
            r.strip_prefix(w)
                .filter(|after| after.chars().next().is_none_or(|c| !is_ident_char(c)))
                .is_some()
        };
        if let Some(r) = rest.strip_prefix('|') {
            let r = r.trim_start();
            return word(r, "default") || word(r, "d") || word(r, "mandatory");
        }
        if let Some(r) = rest.strip_prefix("is") {
            if !r.starts_with(char::is_whitespace) {
                return false;
            }
            let r = r.trim_start();
            let r = r.strip_prefix("not").map(str::trim_start).unwrap_or(r);
            return word(r, "defined") || word(r, "undefined");
        }
        false
    })
}

fn convert(e: Error, file: Option<&Path>, src: &str) -> TemplateError {
    let syntax = matches!(
        e.kind(),
        ErrorKind::SyntaxError
            | ErrorKind::BadEscape
            | ErrorKind::UnknownFilter
            | ErrorKind::UnknownTest
    );
    let undefined = if e.kind() == ErrorKind::UndefinedError {
        e.range()
            .and_then(|r| src.get(r))
            .map(|s| leading_name(s).to_string())
            .filter(|s| !s.is_empty())
    } else {
        None
    };
    let mut message = match (&undefined, e.kind()) {
        // A variable whose own template needs an undefined one (see `context`).
        (_, ErrorKind::UndefinedError)
            if e.detail().is_some_and(|d| d.starts_with("variable `")) =>
        {
            e.detail().unwrap_or_default().to_string()
        }
        (Some(name), _) => format!("undefined variable `{name}`"),
        (None, ErrorKind::UndefinedError) => "undefined value".to_string(),
        _ => {
            let mut m = e.kind().to_string();
            if let Some(d) = e.detail() {
                m = format!("{m}: {d}");
            }
            m
        }
    };
    if let Some(f) = file {
        let line = e.line().map(|l| format!(":{l}")).unwrap_or_default();
        message = format!("{message} (in template {}{line})", f.display());
    }
    TemplateError {
        file: file.map(Path::to_path_buf),
        line: e.line(),
        range: e.range(),
        undefined,
        syntax,
        message,
    }
}

fn leading_name(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(s.len());
    &s[..end]
}

/// A minijinja value as JSON (undefined becomes null).
pub fn to_json_value(v: &Value) -> Result<serde_json::Value, Error> {
    serde_json::to_value(v).map_err(|e| {
        Error::new(ErrorKind::InvalidOperation, "value is not representable").with_source(e)
    })
}

#[cfg(test)]
mod tests;
