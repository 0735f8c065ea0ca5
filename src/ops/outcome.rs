//! What an op gives back: its outcome ([`OpOutcome`], with a [`Diff`], a [`Control`] for
//! the engine or [`InventoryChange`]s), or why it could not do its work ([`OpError`]).

use serde_json::{Map, Value};

use crate::transport::{CommandOutput, TransportError};
use crate::vars::Vars;

/// Before/after of one file's content, for `--diff`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Diff {
    pub path: Option<String>,
    pub before: String,
    pub after: String,
}

impl Diff {
    /// The diff of one file's content.
    pub fn file(path: impl Into<String>, before: String, after: String) -> Self {
        Diff {
            path: Some(path.into()),
            before,
            after,
        }
    }

    /// A unified diff of before -> after, with `before: PATH`/`after: PATH` headers.
    pub fn unified(&self) -> String {
        let path = self.path.as_deref().unwrap_or_default();
        similar::TextDiff::from_lines(&self.before, &self.after)
            .unified_diff()
            .context_radius(3)
            .header(&format!("before: {path}"), &format!("after: {path}"))
            .to_string()
    }
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

/// What an op did (or, in check mode, would do) on one host.
#[derive(Debug, Clone, Default)]
pub struct OpOutcome {
    pub changed: bool,
    pub failed: bool,
    pub skipped: bool,
    pub msg: Option<String>,
    /// The registered result (Ansible's keys: rc, stdout, stderr, stdout_lines, path,
    /// mode, ...). The engine adds `changed`, `failed`, `msg` (and `skipped`).
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
/// (`engine::HostSource::change`); later plays' `hosts:` see it.
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
    pub fn new(changed: bool) -> Self {
        Self {
            changed,
            ..Self::default()
        }
    }
    pub fn ok() -> Self {
        Self::default()
    }
    pub fn changed() -> Self {
        Self::new(true)
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
    /// Same as [`OpOutcome::with_msg`].
    pub fn msg(self, msg: impl Into<String>) -> Self {
        self.with_msg(msg)
    }
    /// One registered result key.
    pub fn with(mut self, key: &str, v: impl Into<Value>) -> Self {
        self.result.insert(key.to_string(), v.into());
        self
    }
    pub fn set(&mut self, key: &str, v: impl Into<Value>) {
        self.result.insert(key.to_string(), v.into());
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

/// Why an op did not do its work.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// The task's arguments are wrong (the text names the op); nothing was touched.
    #[error("{0}")]
    Args(String),
    /// The host could not be reached, or the connection broke.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The op ran and failed; `result` carries rc/stdout/stderr where known.
    #[error("{msg}")]
    Failed {
        msg: String,
        result: Map<String, Value>,
    },
}

impl OpError {
    /// Wrong arguments of `op`.
    pub fn params(op: &str, msg: impl Into<String>) -> Self {
        OpError::Args(format!("{op}: {}", msg.into()))
    }
    pub fn failed(msg: impl Into<String>) -> Self {
        OpError::Failed {
            msg: msg.into(),
            result: Map::new(),
        }
    }
    /// A failure carrying a command's rc/stdout/stderr.
    pub fn command(msg: impl Into<String>, out: &CommandOutput) -> Self {
        let mut result = Map::new();
        result.insert("rc".into(), out.rc.into());
        result.insert(
            "stdout".into(),
            String::from_utf8_lossy(&out.stdout).into_owned().into(),
        );
        result.insert(
            "stderr".into(),
            String::from_utf8_lossy(&out.stderr).into_owned().into(),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        let msg = msg.into();
        let msg = if stderr.trim().is_empty() {
            format!("{msg} (rc {})", out.rc)
        } else {
            format!("{msg} (rc {}): {}", out.rc, stderr.trim())
        };
        OpError::Failed { msg, result }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unified_diff_has_headers() {
        let d = Diff::file("/f", "a\nb\n".into(), "a\nc\n".into());
        let u = d.unified();
        assert!(u.contains("--- before: /f"), "{u}");
        assert!(u.contains("-b\n+c\n"), "{u}");
    }
}
