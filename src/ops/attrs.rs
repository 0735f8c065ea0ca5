//! File attributes shared by the file ops: `mode` (octal or symbolic),
//! `owner`, `group`; comparing them with a `FileStat` and fixing them in one
//! command.

use serde_json::Value;

use super::{Args, OpError, sh_ok, sh_quote};
use crate::transport::{FileStat, Transport};

/// A requested mode: octal (`"0644"`, `"644"`, `0644`) or symbolic
/// (`u=rwx,g=rx,o=rx`, `u+x`, `a-w`, `g=u`), or `preserve` (copy only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModeSpec {
    Octal(u32),
    Symbolic(String),
    Preserve,
}

/// Why a `mode:` value is not one (the text names the value and the fix).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ModeError(String);

impl From<String> for ModeError {
    fn from(msg: String) -> Self {
        ModeError(msg)
    }
}

impl ModeSpec {
    /// Parse a `mode:` value. An integer is the mode itself, as in Ansible:
    /// the YAML loader reads an unquoted `0644` as YAML 1.1 octal (420 =
    /// 0o644). An unquoted number without the leading zero (`mode: 644`) is
    /// the decimal 644 = 0o1204, which Ansible applies silently (sticky bit,
    /// odd permissions); ferry refuses every integer that would set the
    /// setuid/setgid/sticky bits and asks for a quoted string instead.
    pub fn parse(v: &Value) -> Result<ModeSpec, ModeError> {
        let s = match v {
            Value::Number(n) => {
                let m = match (n.as_u64(), n.as_f64()) {
                    (Some(u), _) => u,
                    (None, Some(f)) if f >= 0.0 && f.fract() == 0.0 && f < 1e6 => f as u64,
                    _ => return Err(format!("mode {n} is not an octal number").into()),
                };
                if m >= 0o1000 {
                    return Err(format!(
                        "unquoted mode {m} is the decimal number {m} (octal {m:o}) as YAML reads it; \
                         write it as a quoted string (\"0{m}\") or with a leading zero (0{m})"
                    ).into());
                }
                return Ok(ModeSpec::Octal(m as u32));
            }
            Value::String(s) => {
                let s = s.trim();
                s.strip_prefix("0o").unwrap_or(s).to_string()
            }
            other => return Err(format!("mode must be a string or number, got {other}").into()),
        };
        if s == "preserve" {
            return Ok(ModeSpec::Preserve);
        }
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            let m = u32::from_str_radix(&s, 8)
                .map_err(|_| format!("mode `{s}` is not an octal number"))?;
            if m > 0o7777 {
                return Err(format!("mode `{s}` is out of range (at most 7777)").into());
            }
            return Ok(ModeSpec::Octal(m));
        }
        // Validate now so bad symbolic modes fail before any host is touched.
        apply_symbolic(&s, 0o644, false)?;
        Ok(ModeSpec::Symbolic(s))
    }

    /// The mode this spec gives a file whose current mode is `current`.
    pub fn resolve(&self, current: u32, is_dir: bool) -> Result<u32, ModeError> {
        match self {
            ModeSpec::Octal(m) => Ok(*m),
            ModeSpec::Symbolic(s) => apply_symbolic(s, current & 0o7777, is_dir),
            ModeSpec::Preserve => Ok(current & 0o7777),
        }
    }
}

/// chmod(1)-style symbolic mode applied to `current`.
pub fn apply_symbolic(spec: &str, current: u32, is_dir: bool) -> Result<u32, ModeError> {
    let mut mode = current;
    for clause in spec.split(',') {
        let clause = clause.trim();
        let bad = || format!("bad symbolic mode clause `{clause}` (e.g. u=rwx,g=rx,o=rx or u+x)");
        let op_at = clause.find(['+', '-', '=']).ok_or_else(bad)?;
        let (who, rest) = clause.split_at(op_at);
        let mut whomask = 0u32;
        for c in who.chars() {
            whomask |= match c {
                'u' => 0o4700,
                'g' => 0o2070,
                'o' => 0o1007,
                'a' => 0o7777,
                _ => return Err(bad().into()),
            };
        }
        if who.is_empty() {
            whomask = 0o7777;
        }
        // A clause may chain operators: u+x-w
        let mut chars = rest.chars().peekable();
        while let Some(op) = chars.next() {
            if !matches!(op, '+' | '-' | '=') {
                return Err(bad().into());
            }
            let mut perm = 0u32;
            while let Some(&c) = chars.peek() {
                if matches!(c, '+' | '-' | '=') {
                    break;
                }
                chars.next();
                perm |= match c {
                    'r' => 0o444,
                    'w' => 0o222,
                    'x' => 0o111,
                    'X' => {
                        if is_dir || current & 0o111 != 0 {
                            0o111
                        } else {
                            0
                        }
                    }
                    's' => 0o6000,
                    't' => 0o1000,
                    'u' => copy_class((mode >> 6) & 7),
                    'g' => copy_class((mode >> 3) & 7),
                    'o' => copy_class(mode & 7),
                    _ => return Err(bad().into()),
                };
            }
            let bits = perm & whomask;
            match op {
                '+' => mode |= bits,
                '-' => mode &= !bits,
                _ => {
                    // `=` clears the who's rwx (and s/t for the named class) first.
                    mode = (mode & !whomask) | bits;
                }
            }
        }
    }
    Ok(mode & 0o7777)
}

fn copy_class(bits: u32) -> u32 {
    bits | (bits << 3) | (bits << 6)
}

/// `mode`, `owner`, `group` of a task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileAttrs {
    pub mode: Option<ModeSpec>,
    pub owner: Option<String>,
    pub group: Option<String>,
}

impl FileAttrs {
    pub fn parse(a: &Args<'_>) -> Result<FileAttrs, OpError> {
        let mode = match a.value("mode")? {
            None => None,
            Some(v) => Some(ModeSpec::parse(v).map_err(|e| a.err(e.to_string()))?),
        };
        Ok(FileAttrs {
            mode,
            owner: a.str("owner")?,
            group: a.str("group")?,
        })
    }

    /// The mode wanted for a file that is `st` now (None: leave as is).
    pub fn wanted_mode(&self, st: &FileStat) -> Result<Option<u32>, OpError> {
        match &self.mode {
            None => Ok(None),
            Some(m) => m
                .resolve(st.mode, st.is_dir)
                .map(Some)
                .map_err(|e| OpError::params("file", e.to_string())),
        }
    }

    /// The chmod/chown/chgrp needed to bring `st` to these attributes.
    pub fn fix_command(
        &self,
        path: &str,
        st: &FileStat,
        recurse: bool,
    ) -> Result<Option<String>, OpError> {
        let mut cmds = Vec::new();
        let r = if recurse { "-R " } else { "" };
        let q = sh_quote(path);
        if let Some(o) = &self.owner
            && (!name_matches(o, &st.owner, st.uid) || recurse)
        {
            cmds.push(format!("chown -h {r}{} {q}", sh_quote(o)));
        }
        if let Some(g) = &self.group
            && (!name_matches(g, &st.group, st.gid) || recurse)
        {
            cmds.push(format!("chgrp -h {r}{} {q}", sh_quote(g)));
        }
        if !st.is_link
            && let Some(m) = self.wanted_mode(st)?
            && m != st.mode & 0o7777
        {
            cmds.push(format!("chmod {m:o} {q}"));
        }
        Ok((!cmds.is_empty()).then(|| cmds.join(" && ")))
    }
}

/// Whether a requested owner/group (name or number) is the current one.
pub fn name_matches(want: &str, name: &str, id: u32) -> bool {
    want == name || want.parse::<u32>().ok() == Some(id)
}

/// What fixing `path`'s attributes (now `st`) to `attrs` would do: the command and
/// the change the simulated host records; None when they are as asked.
pub fn plan_attrs(
    path: &str,
    st: &FileStat,
    attrs: &FileAttrs,
) -> Result<Option<(String, super::Change)>, super::OpError> {
    let Some(cmd) = attrs.fix_command(path, st, false)? else {
        return Ok(None);
    };
    let mode = if st.is_link {
        None
    } else {
        attrs.wanted_mode(st)?
    };
    let change = super::Change::Attrs {
        path: path.to_string(),
        mode,
        owner: attrs.owner.clone(),
        group: attrs.group.clone(),
    };
    Ok(Some((cmd, change)))
}

/// Bring `path` (now `st`) to `attrs` (in an apply: never check mode); returns
/// whether anything changed.
pub async fn ensure_attrs(
    t: &dyn Transport,
    path: &str,
    st: &FileStat,
    attrs: &FileAttrs,
) -> Result<bool, OpError> {
    match attrs.fix_command(path, st, false)? {
        None => Ok(false),
        Some(cmd) => {
            sh_ok(t, cmd, &format!("setting attributes of {path}")).await?;
            Ok(true)
        }
    }
}

/// Ansible's return values for a file.
pub fn stat_result(r: &mut super::OpOutcome, path: &str, st: &FileStat) {
    r.set("path", path);
    if st.exists {
        r.set("mode", format!("{:04o}", st.mode & 0o7777));
        r.set("owner", st.owner.clone());
        r.set("group", st.group.clone());
        r.set("uid", st.uid);
        r.set("gid", st.gid);
        r.set("size", st.size);
        r.set(
            "state",
            if st.is_link {
                "link"
            } else if st.is_dir {
                "directory"
            } else {
                "file"
            },
        );
    } else {
        r.set("state", "absent");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn octal_forms() {
        assert_eq!(
            ModeSpec::parse(&json!("0644")).unwrap(),
            ModeSpec::Octal(0o644)
        );
        assert_eq!(
            ModeSpec::parse(&json!("755")).unwrap(),
            ModeSpec::Octal(0o755)
        );
        // `mode: 0644` unquoted: the YAML loader gives 420 = 0o644.
        assert_eq!(
            ModeSpec::parse(&json!(420)).unwrap(),
            ModeSpec::Octal(0o644)
        );
        assert_eq!(
            ModeSpec::parse(&json!(0o600)).unwrap(),
            ModeSpec::Octal(0o600)
        );
        // `mode: 644` unquoted is decimal 644 = 0o1204: refused, not guessed.
        let e = ModeSpec::parse(&json!(644)).unwrap_err().to_string();
        assert!(e.contains("quoted"), "{e}");
        assert_eq!(
            ModeSpec::parse(&json!("01777")).unwrap(),
            ModeSpec::Octal(0o1777)
        );
        assert!(ModeSpec::parse(&json!("0698")).is_err());
        assert!(ModeSpec::parse(&json!("77777")).is_err());
        assert!(ModeSpec::parse(&json!("u=rwz")).is_err());
        assert!(ModeSpec::parse(&json!(true)).is_err());
    }

    #[test]
    fn symbolic_modes() {
        let m = |s: &str, cur: u32| apply_symbolic(s, cur, false).unwrap();
        assert_eq!(m("u=rwx,g=rx,o=rx", 0), 0o755);
        assert_eq!(m("u+x", 0o644), 0o744);
        assert_eq!(m("a-w", 0o664), 0o444);
        assert_eq!(m("go-rwx", 0o755), 0o700);
        assert_eq!(m("g=u", 0o740), 0o770);
        assert_eq!(m("o=", 0o777), 0o770);
        assert_eq!(m("+x", 0o644), 0o755);
        assert_eq!(m("u+s", 0o755), 0o4755);
        assert_eq!(m("+t", 0o777), 0o1777);
        assert_eq!(m("u=rw,go=r", 0o777), 0o644);
        assert_eq!(m("u+x-w", 0o644), 0o544);
        // X: execute only for directories or already-executable files
        assert_eq!(m("a+X", 0o644), 0o644);
        assert_eq!(m("a+X", 0o744), 0o755);
        assert_eq!(apply_symbolic("a+X", 0o644, true).unwrap(), 0o755);
    }

    #[test]
    fn attrs_fix_command() {
        let st = FileStat {
            exists: true,
            is_file: true,
            mode: 0o100644,
            owner: "root".into(),
            group: "root".into(),
            ..Default::default()
        };
        let same = FileAttrs {
            mode: Some(ModeSpec::Octal(0o644)),
            owner: Some("0".into()),
            group: Some("root".into()),
        };
        assert_eq!(same.fix_command("/f", &st, false).unwrap(), None);
        let other = FileAttrs {
            mode: Some(ModeSpec::Symbolic("u+x".into())),
            owner: Some("nobody".into()),
            group: None,
        };
        assert_eq!(
            other.fix_command("/f", &st, false).unwrap().unwrap(),
            "chown -h nobody /f && chmod 744 /f"
        );
    }
}
