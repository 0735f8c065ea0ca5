//! What every op shares: its environment (`OpEnv`), its report (`OpReport`),
//! its error (`OpError`) and the strict parameter reader (`Args`).
//!
//! An op is a pure part (parse `Params` from the task's arguments, compute
//! the desired content) and an I/O part (`run`) that uses only the
//! `Transport` trait.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::playbook::model::Vars;
use crate::transport::check_state::{CheckTransport, OverlayRead};
use crate::transport::{CommandOutput, CommandSpec, Transport, TransportError};

/// The template rendering seam: (template source, template path) -> text.
pub type RenderFn<'a> = &'a (dyn Fn(&str, &Path) -> Result<String, String> + Send + Sync);

/// What the engine hands an op besides its parameters.
#[derive(Clone, Default)]
pub struct OpEnv<'a> {
    /// `--check`: compute what would change, change nothing.
    pub check: bool,
    /// `--diff`: fill `OpReport::diff` for content changes.
    pub diff: bool,
    /// Controller-side search paths for `src:` (the op also looks in
    /// `files/` or `templates/` below each).
    pub base_dirs: Vec<PathBuf>,
    /// Renders a template with the host's variables (for `template`).
    pub render: Option<RenderFn<'a>>,
    /// Inventory name of the host the task is for (`fetch` files its copies under it).
    pub host: String,
}

/// Before/after of one file's content, for `--diff`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct FileDiff {
    pub path: String,
    pub before: String,
    pub after: String,
}

impl FileDiff {
    /// A unified diff of before -> after, with `before: PATH`/`after: PATH` headers.
    pub fn unified(&self) -> String {
        similar::TextDiff::from_lines(&self.before, &self.after)
            .unified_diff()
            .context_radius(3)
            .header(
                &format!("before: {}", self.path),
                &format!("after: {}", self.path),
            )
            .to_string()
    }
}

/// What an op did (or, in check mode, would do).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct OpReport {
    pub changed: bool,
    pub msg: Option<String>,
    /// Ansible's return values (path, mode, owner, checksum, ...).
    pub result: Vars,
    pub diff: Option<FileDiff>,
}

impl OpReport {
    pub fn new(changed: bool) -> Self {
        Self {
            changed,
            ..Self::default()
        }
    }
    pub fn with(mut self, key: &str, v: impl Into<Value>) -> Self {
        self.result.insert(key.to_string(), v.into());
        self
    }
    pub fn set(&mut self, key: &str, v: impl Into<Value>) {
        self.result.insert(key.to_string(), v.into());
    }
    pub fn msg(mut self, m: impl Into<String>) -> Self {
        self.msg = Some(m.into());
        self
    }
}

/// Why an op failed.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// The task's parameters are wrong; nothing was touched.
    #[error("{op}: {msg}")]
    Params { op: &'static str, msg: String },
    /// The host could not be reached, or the connection broke.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The op ran and failed on the host; `result` carries rc/stdout/stderr where known.
    #[error("{msg}")]
    Failed { msg: String, result: Vars },
}

impl OpError {
    pub fn params(op: &'static str, msg: impl Into<String>) -> Self {
        OpError::Params {
            op,
            msg: msg.into(),
        }
    }
    pub fn failed(msg: impl Into<String>) -> Self {
        OpError::Failed {
            msg: msg.into(),
            result: Vars::new(),
        }
    }
    /// A failure carrying a command's rc/stdout/stderr.
    pub fn command(msg: impl Into<String>, out: &CommandOutput) -> Self {
        let mut result = Vars::new();
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

/// Strict reader of an op's arguments: each getter takes the Ansible name
/// and its aliases; `finish` rejects every argument nobody asked for.
pub struct Args<'a> {
    op: &'static str,
    map: &'a Vars,
    used: RefCell<Vec<String>>,
}

impl<'a> Args<'a> {
    pub fn new(op: &'static str, map: &'a Vars) -> Self {
        Self {
            op,
            map,
            used: RefCell::new(Vec::new()),
        }
    }

    pub fn err(&self, msg: impl Into<String>) -> OpError {
        OpError::params(self.op, msg)
    }

    /// The raw value under the first of `names` present (null counts as absent).
    pub fn value(&self, names: &[&str]) -> Result<Option<&'a Value>, OpError> {
        let mut found: Option<(&str, &'a Value)> = None;
        for n in names {
            self.used.borrow_mut().push(n.to_string());
            if let Some(v) = self.map.get(*n) {
                if v.is_null() {
                    continue;
                }
                if let Some((first, _)) = found {
                    return Err(self.err(format!(
                        "parameters `{first}` and `{n}` are aliases; give only one"
                    )));
                }
                found = Some((n, v));
            }
        }
        Ok(found.map(|(_, v)| v))
    }

    pub fn str(&self, names: &[&str]) -> Result<Option<String>, OpError> {
        match self.value(names)? {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(v) => Err(self.err(format!("`{}` must be a string, got {v}", names[0]))),
        }
    }

    pub fn req_str(&self, names: &[&str]) -> Result<String, OpError> {
        self.str(names)?
            .ok_or_else(|| self.err(format!("missing required parameter `{}`", names[0])))
    }

    /// Ansible booleans: true/false, yes/no, on/off, 1/0.
    pub fn bool(&self, names: &[&str]) -> Result<Option<bool>, OpError> {
        match self.value(names)? {
            None => Ok(None),
            Some(v) => parse_bool(v)
                .map(Some)
                .ok_or_else(|| self.err(format!("`{}` must be a boolean, got {v}", names[0]))),
        }
    }

    pub fn bool_or(&self, names: &[&str], default: bool) -> Result<bool, OpError> {
        Ok(self.bool(names)?.unwrap_or(default))
    }

    pub fn u64(&self, names: &[&str]) -> Result<Option<u64>, OpError> {
        match self.value(names)? {
            None => Ok(None),
            Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
            Some(Value::String(s)) if s.trim().parse::<u64>().is_ok() => {
                Ok(s.trim().parse::<u64>().ok())
            }
            Some(v) => Err(self.err(format!(
                "`{}` must be a non-negative integer, got {v}",
                names[0]
            ))),
        }
    }

    /// A list of strings; a single string is split on commas (as Ansible does).
    pub fn list(&self, names: &[&str]) -> Result<Option<Vec<String>>, OpError> {
        match self.value(names)? {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(
                s.split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect(),
            )),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    other => Err(self.err(format!(
                        "`{}` must be a list of strings, got {other}",
                        names[0]
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(self.err(format!("`{}` must be a list, got {v}", names[0]))),
        }
    }

    /// One of `choices`, or `default`.
    pub fn choice(
        &self,
        names: &[&str],
        choices: &[&str],
        default: &str,
    ) -> Result<String, OpError> {
        let v = self.str(names)?.unwrap_or_else(|| default.to_string());
        if choices.contains(&v.as_str()) {
            Ok(v)
        } else {
            Err(self.err(format!(
                "`{}` must be one of {}, got `{v}`",
                names[0],
                choices.join(", ")
            )))
        }
    }

    /// Reject every argument no getter asked for, naming them.
    pub fn finish(self) -> Result<(), OpError> {
        let used = self.used.borrow();
        let unknown: Vec<&str> = self
            .map
            .keys()
            .filter(|k| !used.iter().any(|u| u == *k))
            .map(|k| k.as_str())
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        let mut known: Vec<&str> = used.iter().map(|s| s.as_str()).collect();
        known.sort();
        known.dedup();
        Err(self.err(format!(
            "unsupported parameter{} {}; ferry supports: {}",
            if unknown.len() > 1 { "s" } else { "" },
            unknown
                .iter()
                .map(|u| format!("`{u}`"))
                .collect::<Vec<_>>()
                .join(", "),
            known.join(", ")
        )))
    }
}

pub fn parse_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "1" | "y" | "t" => Some(true),
            "no" | "false" | "off" | "0" | "n" | "f" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A transport that runs every command and writes every file as the task's
/// `become` user: ops build their `CommandSpec`/`FileSpec` without `become_`,
/// and the engine wraps the host's transport in this for a `become: true` task.
pub struct BecomeTransport<'a> {
    pub inner: &'a dyn Transport,
    pub become_: crate::transport::Become,
}

#[async_trait::async_trait]
impl Transport for BecomeTransport<'_> {
    fn host(&self) -> &str {
        self.inner.host()
    }
    fn endpoint(&self) -> String {
        self.inner.endpoint()
    }
    async fn run(&self, spec: &CommandSpec) -> Result<CommandOutput, TransportError> {
        let mut s = spec.clone();
        s.become_.get_or_insert_with(|| self.become_.clone());
        self.inner.run(&s).await
    }
    async fn put_file(&self, spec: &crate::transport::FileSpec) -> Result<(), TransportError> {
        let mut s = spec.clone();
        s.become_.get_or_insert_with(|| self.become_.clone());
        self.inner.put_file(&s).await
    }
    async fn get_file(&self, path: &str) -> Result<Vec<u8>, TransportError> {
        // In a --check run, what check mode would have written comes first.
        let mut path = path;
        let host_path;
        if let Some(o) = self.inner.check_overlay() {
            match o.overlay_read(path) {
                OverlayRead::Host(p) => {
                    host_path = p;
                    path = &host_path;
                }
                _ => return o.get_file(path).await,
            }
        }
        // Reading as another user needs a command; the trait's get_file has no become.
        let out = self
            .run(&CommandSpec::new(format!("cat -- {}", sh_quote(path))))
            .await?;
        if out.rc != 0 {
            return Err(TransportError::Other {
                host: self.host().to_string(),
                reason: format!(
                    "reading {path}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        Ok(out.stdout)
    }
    async fn stat(&self, path: &str) -> Result<crate::transport::FileStat, TransportError> {
        self.inner.stat(path).await
    }
    async fn close(&self) {}
    fn check_overlay(&self) -> Option<&CheckTransport> {
        self.inner.check_overlay()
    }
}

/// Quote a string for `/bin/sh`.
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// sha256 of bytes, lowercase hex (the form `FileStat::checksum` carries).
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// Run a shell command line on the host (as the task's user).
pub async fn sh(t: &dyn Transport, cmd: impl Into<String>) -> Result<CommandOutput, OpError> {
    Ok(t.run(&CommandSpec::new(cmd)).await?)
}

/// Run a command and fail unless it exits 0.
pub async fn sh_ok(
    t: &dyn Transport,
    cmd: impl Into<String>,
    what: &str,
) -> Result<CommandOutput, OpError> {
    let out = sh(t, cmd).await?;
    if out.rc != 0 {
        return Err(OpError::command(what.to_string(), &out));
    }
    Ok(out)
}

/// Find `src` on the controller: absolute as is, else under each base dir's
/// `sub/` (files, templates) and then the base dir itself.
pub fn find_src(src: &str, sub: &str, env: &OpEnv<'_>) -> Option<PathBuf> {
    let p = Path::new(src);
    if p.is_absolute() {
        return p.exists().then(|| p.to_path_buf());
    }
    for b in &env.base_dirs {
        for cand in [b.join(sub).join(p), b.join(p)] {
            if cand.exists() {
                return Some(cand);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(v: Value) -> Vars {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn args_reject_unknown_and_read_aliases() {
        let m = vars(json!({"dest": "/x", "bogus": 1, "force": "yes"}));
        let a = Args::new("copy", &m);
        assert_eq!(a.str(&["path", "dest"]).unwrap().as_deref(), Some("/x"));
        assert_eq!(a.bool(&["force"]).unwrap(), Some(true));
        let e = a.finish().unwrap_err().to_string();
        assert!(e.contains("`bogus`"), "{e}");
        assert!(e.starts_with("copy: unsupported parameter"), "{e}");
    }

    #[test]
    fn args_alias_twice_is_an_error() {
        let m = vars(json!({"dest": "/x", "path": "/y"}));
        let a = Args::new("file", &m);
        assert!(a.str(&["path", "dest"]).is_err());
    }

    #[test]
    fn args_choice_and_bool_errors() {
        let m = vars(json!({"state": "bogus", "force": "maybe"}));
        let a = Args::new("file", &m);
        assert!(
            a.choice(&["state"], &["file", "absent"], "file")
                .unwrap_err()
                .to_string()
                .contains("one of file, absent")
        );
        assert!(a.bool(&["force"]).is_err());
    }

    #[test]
    fn quoting() {
        assert_eq!(sh_quote("/etc/x.conf"), "/etc/x.conf");
        assert_eq!(sh_quote("a b'c"), "'a b'\\''c'");
        assert_eq!(sh_quote(""), "''");
    }

    #[tokio::test]
    async fn become_reads_what_check_mode_would_have_written() {
        use crate::transport::check_state::{CheckState, CheckTransport};
        use crate::transport::{FileSpec, local::LocalTransport};
        let dir = tempfile::tempdir().unwrap();
        let check = CheckTransport::new(
            std::sync::Arc::new(LocalTransport::new("h")),
            CheckState::new(),
        );
        let t = BecomeTransport {
            inner: &check,
            become_: crate::transport::Become {
                user: Some("nobody".into()),
                password: None,
            },
        };
        let path = format!("{}/new/f", dir.path().display());
        t.put_file(&FileSpec {
            path: path.clone(),
            content: b"would be\n".to_vec(),
            ..FileSpec::default()
        })
        .await
        .unwrap();
        assert!(t.check_overlay().is_some());
        assert_eq!(t.get_file(&path).await.unwrap(), b"would be\n");
        let st = t.stat(&path).await.unwrap();
        assert!(st.is_file && st.owner == "nobody", "{st:?}");
        assert!(!dir.path().join("new").exists(), "check mode wrote");
    }

    #[test]
    fn unified_diff_has_headers() {
        let d = FileDiff {
            path: "/f".into(),
            before: "a\nb\n".into(),
            after: "a\nc\n".into(),
        };
        let u = d.unified();
        assert!(u.contains("--- before: /f"), "{u}");
        assert!(u.contains("-b\n+c\n"), "{u}");
    }
}
