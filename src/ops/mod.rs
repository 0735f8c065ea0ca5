//! Operations: one file per op, each with its schema, check, apply and diff.
//!
//! The engine never knows which op it runs: it looks an op up by name with
//! [`lookup`], renders the task's arguments, and calls [`Op::run`] with an
//! [`OpContext`]. An op checks the current state through the context's
//! transport and changes it only where it differs; it reports what it did
//! in an [`OpOutcome`].

pub mod add_host;
pub mod apt;
pub mod apt_key;
pub mod apt_repository;
pub mod assert;
pub mod attrs;
pub mod authorized_key;
pub mod blockinfile;
pub mod build;
pub mod command;
pub mod content;
pub mod copy;
pub mod debug;
pub mod fail;
pub mod fetch;
pub mod file;
pub mod get_url;
pub mod git;
pub mod group;
pub mod group_by;
pub mod hostname;
pub mod include_vars;
pub mod ini_file;
pub mod lineinfile;
pub mod meta;
pub mod modprobe;
pub mod outcome;
pub mod pause;
pub mod ping;
pub mod pip;
pub mod raw;
pub mod registry;
pub mod replace;
pub mod schema;
pub mod script;
pub mod service;
pub mod set_fact;
pub mod setup;
pub mod shell;
pub mod slurp;
pub mod stat;
pub mod sysctl;
pub mod template;
pub mod unarchive;
pub mod user;
pub mod wait_for;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::playbook::Vars;
use crate::transport::{Become, CommandOutput, Transport, TransportError};

/// Renders templates and evaluates conditions for ops that need it
/// (`assert`'s `that`, `debug`'s `var`, the `template` op).
/// The engine passes its renderer; the integrator swaps in `crate::template`.
pub trait Render: Send + Sync {
    /// Render every string inside `value` (lists and maps walked), keeping native types.
    fn render_value(&self, value: &Value, vars: &Vars) -> Result<Value, String>;
    /// Evaluate a bare Jinja expression (as `when:` has them) to a bool.
    fn eval_condition(&self, expr: &str, vars: &Vars) -> Result<bool, String>;
    /// Evaluate a bare Jinja expression to a value (`debug: var=`).
    fn eval_expr(&self, expr: &str, vars: &Vars) -> Result<Value, String>;
    /// Render a whole template file's text (`name` is for error messages) to text.
    fn render_template(&self, source: &str, name: &str, vars: &Vars) -> Result<String, String> {
        let _ = name;
        match self.render_value(&Value::String(source.to_string()), vars)? {
            Value::String(s) => Ok(s),
            other => Ok(other.to_string()),
        }
    }
}

/// Everything an op gets to do its work on one host.
pub struct OpContext<'a> {
    /// Inventory name of the host the task is for (not the delegate).
    pub host: &'a str,
    /// Where the op runs: the host's transport, or the delegate's under `delegate_to`.
    pub transport: Arc<dyn Transport>,
    /// The op's arguments, rendered.
    pub args: &'a Vars,
    /// The task's variable view (all layers merged, loop item included).
    pub vars: &'a Vars,
    /// `--check`: report what would change, change nothing.
    pub check: bool,
    /// `--diff`: fill [`OpOutcome::diff`] where there is something to show.
    pub diff: bool,
    /// Directory of the playbook the task came from (relative `src:` lookups).
    pub base_dir: &'a Path,
    /// Directory of the role the task came from, if any (looked up before `base_dir`).
    pub role_dir: Option<&'a Path>,
    /// `become:` resolved for this task.
    pub become_: Option<Become>,
    /// `environment:` of the task, rendered.
    pub env: Vec<(String, String)>,
    /// The task's `timeout:`; ops pass it on to commands they run.
    pub timeout: Option<Duration>,
    /// The template seam.
    pub render: &'a dyn Render,
}

impl OpContext<'_> {
    /// Search order for a relative file (`files/` or `templates/` under the role, then the playbook dir).
    pub fn find_file(&self, sub: &str, name: &str) -> PathBuf {
        let p = Path::new(name);
        if p.is_absolute() {
            return p.to_path_buf();
        }
        let mut candidates = Vec::new();
        if let Some(r) = self.role_dir {
            candidates.push(r.join(sub).join(name));
            candidates.push(r.join(name));
        }
        candidates.push(self.base_dir.join(sub).join(name));
        candidates.push(self.base_dir.join(name));
        candidates
            .iter()
            .find(|c| c.exists())
            .cloned()
            .unwrap_or_else(|| self.base_dir.join(name))
    }

    /// A string argument, if present (numbers and bools are turned into text).
    pub fn arg_str(&self, key: &str) -> Option<String> {
        match self.args.get(key)? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }

    /// A boolean argument with Ansible's truthy strings (yes/no/true/false/1/0).
    pub fn arg_bool(&self, key: &str) -> Result<Option<bool>, String> {
        match self.args.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => truthy(v)
                .map(Some)
                .ok_or_else(|| format!("argument `{key}` must be a boolean, got {v}")),
        }
    }
}

/// Ansible's notion of a boolean argument.
pub fn truthy(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => Some(n.as_f64() != Some(0.0)),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "1" | "y" => Some(true),
            "no" | "false" | "off" | "0" | "n" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A change an op made (or would make), as text.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Diff {
    pub path: Option<String>,
    pub before: String,
    pub after: String,
}

/// What the engine should do after this task (the `meta` op).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Control {
    FlushHandlers,
    EndPlay,
    EndHost,
    Noop,
}

/// What an op did on one host.
#[derive(Debug, Clone, Default)]
pub struct OpOutcome {
    pub changed: bool,
    pub failed: bool,
    pub skipped: bool,
    pub msg: Option<String>,
    /// The registered result (Ansible's keys: rc, stdout, stderr, stdout_lines, ...).
    /// The engine adds `changed`, `failed`, `msg` (and `skipped`) from the fields above.
    pub result: Map<String, Value>,
    pub diff: Option<Diff>,
    /// Variables to set on the host for the rest of the run (set_fact, setup's facts).
    pub facts: Vars,
    /// Only the `meta` op sets this.
    pub control: Option<Control>,
    /// Variables at `include_vars` precedence (above task vars, below set_fact),
    /// set on the host for the rest of the run.
    pub included_vars: Vars,
    /// Changes to the run's inventory (`add_host`, `group_by`): the engine applies
    /// them and reports the task changed when they changed something.
    pub inventory: Vec<InventoryChange>,
}

/// A change to the hosts and groups a run sees, applied by the engine
/// ([`crate::engine::HostSource::change`]); later plays' `hosts:` see it.
#[derive(Debug, Clone, PartialEq)]
pub enum InventoryChange {
    /// `add_host`: the host (created if new) gains `vars` as host vars and joins `groups`
    /// (created under `all` if new).
    AddHost {
        name: String,
        groups: Vec<String>,
        vars: Vars,
    },
    /// `group_by`: `host` joins `group` (created if new), made a child of each of `parents`.
    AddToGroup {
        host: String,
        group: String,
        parents: Vec<String>,
    },
}

impl OpOutcome {
    pub fn ok() -> Self {
        Self::default()
    }
    pub fn changed() -> Self {
        Self {
            changed: true,
            ..Self::default()
        }
    }
    pub fn failed(msg: impl Into<String>) -> Self {
        Self {
            failed: true,
            msg: Some(msg.into()),
            ..Self::default()
        }
    }
    pub fn skipped(msg: impl Into<String>) -> Self {
        Self {
            skipped: true,
            msg: Some(msg.into()),
            ..Self::default()
        }
    }
    pub fn with_msg(mut self, msg: impl Into<String>) -> Self {
        self.msg = Some(msg.into());
        self
    }
    /// Put a command's rc/stdout/stderr(_lines) into the result, as Ansible registers them.
    pub fn with_command_output(mut self, out: &CommandOutput) -> Self {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = stdout.strip_suffix('\n').unwrap_or(&stdout).to_string();
        let stderr = stderr.strip_suffix('\n').unwrap_or(&stderr).to_string();
        let lines = |s: &str| Value::Array(s.lines().map(|l| Value::String(l.into())).collect());
        self.result.insert("rc".into(), Value::from(out.rc));
        self.result.insert("stdout_lines".into(), lines(&stdout));
        self.result.insert("stderr_lines".into(), lines(&stderr));
        self.result.insert("stdout".into(), Value::String(stdout));
        self.result.insert("stderr".into(), Value::String(stderr));
        self
    }
}

/// Why an op could not run at all (bad arguments, a transport failure).
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("{0}")]
    Args(String),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("{0}")]
    Other(String),
}

/// One operation (`command`, `copy`, ...).
#[async_trait]
pub trait Op: Send + Sync {
    /// Canonical name (without `ansible.builtin.`).
    fn name(&self) -> &'static str;
    /// Whether the op talks to the host at all (`debug`, `set_fact`, `assert`,
    /// `fail`, `meta` do not: the engine needs no connection for them).
    fn needs_connection(&self) -> bool {
        true
    }
    /// Engine-control ops (`meta`) are neither shown nor counted in the recap.
    fn silent(&self) -> bool {
        false
    }
    /// Runs once for the whole play, on its first host (`add_host`, `pause`), as
    /// Ansible's `BYPASS_HOST_LOOP`: the engine treats the task as `run_once`.
    fn bypass_host_loop(&self) -> bool {
        false
    }
    /// Arguments the engine must not render (they are expressions the op evaluates itself,
    /// like `assert`'s `that`).
    fn raw_args(&self) -> &'static [&'static str] {
        &[]
    }
    async fn run(&self, ctx: &OpContext<'_>) -> Result<OpOutcome, OpError>;
}

static OPS: &[&(dyn Op + 'static)] = &[
    &command::Command,
    &shell::Shell,
    &raw::Raw,
    &script::Script,
    &ping::Ping,
    &setup::Setup,
    &debug::Debug,
    &set_fact::SetFact,
    &assert::Assert,
    &fail::Fail,
    &meta::Meta,
    &pause::Pause,
    &include_vars::IncludeVars,
    &add_host::AddHost,
    &group_by::GroupBy,
];

/// The op registered under `name` (`ansible.builtin.` / `ansible.legacy.` prefixes accepted).
pub fn lookup(name: &str) -> Option<&'static dyn Op> {
    let name = name
        .strip_prefix("ansible.builtin.")
        .or_else(|| name.strip_prefix("ansible.legacy."))
        .unwrap_or(name);
    OPS.iter()
        .chain(registry::HOST_OPS.iter())
        .copied()
        .find(|op| op.name() == name)
}

/// Every registered op name (for "did you mean" suggestions).
pub fn names() -> impl Iterator<Item = &'static str> {
    OPS.iter()
        .chain(registry::HOST_OPS.iter())
        .map(|op| op.name())
}

#[cfg(test)]
mod tests {
    /// `ferry check` accepts an op when its schema is known; `ferry run` runs it when the
    /// registry has it. The two lists must name the same ops, or check passes what run
    /// refuses (as it once did for `mount` and `make`).
    #[test]
    fn every_op_check_accepts_runs_and_every_op_that_runs_is_checked() {
        let checked: std::collections::BTreeSet<&str> =
            super::schema::op_names().into_iter().collect();
        let runs: std::collections::BTreeSet<&str> = super::names().collect();
        let unrunnable: Vec<_> = checked.difference(&runs).collect();
        let unchecked: Vec<_> = runs.difference(&checked).collect();
        assert!(
            unrunnable.is_empty(),
            "check accepts, run refuses: {unrunnable:?}"
        );
        assert!(
            unchecked.is_empty(),
            "run has, check does not know: {unchecked:?}"
        );
        for name in &checked {
            assert!(super::lookup(name).is_some(), "{name}");
        }
    }
}
