//! `authorized_key`: SSH public keys in a user's authorized_keys.

use super::attrs::FileAttrs;
use super::content::{Edit, EditWork};
use super::content::{WriteOpts, plan_edit};
use super::lineinfile::{split_lines, strip_eol};
use super::{Args, Change, OpContext, OpError, OpOutcome, Plan, sh, sh_ok, sh_quote};
use crate::ops::check_state::CheckOverlay;
use crate::transport::{FileStat, Transport};
use crate::vars::Vars;

use super::schema::Spec;

/// What `authorized_key` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "authorized_key",
    flags: "",
    params: "user:str!; key:str!; state:str=present,absent; path:path; manage_dir:bool; exclusive:bool",
    rules: "",
};

crate::ops::planned_op!(AuthorizedKeyOp, SPEC);

#[derive(Debug, Clone)]
pub struct Params {
    pub user: String,
    /// One key per line.
    pub keys: Vec<String>,
    pub state_present: bool,
    pub path: Option<String>,
    pub manage_dir: bool,
    pub exclusive: bool,
}

impl Params {
    pub fn parse(args: &Vars) -> Result<Params, OpError> {
        let a = Args::new("authorized_key", args);
        let key = a.req_str("key")?;
        let p = Params {
            user: a.req_str("user")?,
            keys: key
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string)
                .collect(),
            state_present: a.choice("state", "present")? == "present",
            path: a.str("path")?,
            manage_dir: a.bool_or("manage_dir", true)?,
            exclusive: a.bool_or("exclusive", false)?,
        };
        a.finish()?;
        super::user::check_name("authorized_key", &p.user)?;
        for k in &p.keys {
            if blob(k).is_none() {
                return Err(OpError::params(
                    "authorized_key",
                    format!("`{k}` is not an SSH public key (TYPE BASE64 [COMMENT])"),
                ));
            }
        }
        Ok(p)
    }
}

fn is_type(s: &str) -> bool {
    s.starts_with("ssh-") || s.starts_with("ecdsa-") || s.starts_with("sk-")
}

/// The key material of a line (after any options), which identifies it.
pub fn blob(line: &str) -> Option<&str> {
    let t: Vec<&str> = line.split_whitespace().collect();
    let i = t.iter().position(|w| is_type(w))?;
    t.get(i + 1).copied()
}

/// The authorized_keys content with `p`'s keys present or absent.
pub fn edit(p: &Params, content: &str) -> Edit {
    let mut lines = split_lines(content);
    if let Some(last) = lines.last_mut()
        && !last.ends_with('\n')
    {
        last.push('\n');
    }
    let wanted: Vec<&str> = p.keys.iter().filter_map(|k| blob(k)).collect();
    if p.state_present {
        for k in &p.keys {
            let b = blob(k);
            match lines.iter().position(|l| blob(l) == b) {
                Some(i) => {
                    if strip_eol(&lines[i]) != k {
                        lines[i] = format!("{k}\n");
                    }
                }
                None => lines.push(format!("{k}\n")),
            }
        }
        if p.exclusive {
            lines.retain(|l| blob(l).is_none_or(|b| wanted.contains(&b)));
        }
    } else {
        lines.retain(|l| blob(l).is_none_or(|b| !wanted.contains(&b)));
    }
    let out = lines.concat();
    let changed = out != content;
    Edit {
        msg: if changed {
            "keys updated".into()
        } else {
            String::new()
        },
        content: out,
        changed,
        found: 0,
    }
}

/// What the apply does: make the key file's directory (the command and what it
/// does), then write the keys.
pub struct Work {
    mkdir: Option<(String, String)>,
    edit: Option<EditWork>,
}

pub async fn plan(t: &dyn Transport, p: &Params, ctx: &OpContext<'_>) -> Result<Plan, OpError> {
    let out = sh(t, format!("getent passwd {}", sh_quote(&p.user))).await?;
    let pw = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let f: Vec<&str> = pw.split(':').collect();
    let (gid, home) = if out.rc == 0 && f.len() >= 7 {
        (f[3].to_string(), f[5].to_string())
    } else if let Some(Some(home)) = t.check_overlay().and_then(|o| o.account(&p.user)) {
        // In check mode, an earlier `user` task would have added the account.
        (String::new(), home)
    } else {
        return Err(OpError::failed(format!("user {} does not exist", p.user)));
    };
    let path = p
        .path
        .clone()
        .unwrap_or_else(|| format!("{home}/.ssh/authorized_keys"));
    let dir = path
        .rsplit_once('/')
        .map(|(d, _)| d.to_string())
        .unwrap_or(".".into());
    let mut mkdir = None;
    if p.state_present && p.manage_dir {
        let ds = t.stat(&dir).await?;
        if !ds.is_dir {
            let q = sh_quote(&dir);
            let cmd = format!(
                "mkdir -p {q} && chown {}:{gid} {q} && chmod 700 {q}",
                sh_quote(&p.user)
            );
            mkdir = Some((cmd, format!("creating {dir}")));
        }
    }
    let dir_changed = mkdir.is_some();
    let st = if dir_changed {
        FileStat::default()
    } else {
        t.stat(&path).await?
    };
    if !st.exists && !p.state_present {
        return Ok(Plan::done(
            OpOutcome::new(false)
                .with("user", p.user.clone())
                .with("path", path),
        ));
    }
    let before = if st.exists {
        t.get_file(&path).await?
    } else {
        Vec::new()
    };
    let e = edit(p, &String::from_utf8_lossy(&before));
    let mut e = e;
    if !st.exists {
        e.changed = true;
    }
    let attrs = FileAttrs {
        mode: Some(super::attrs::ModeSpec::Octal(0o600)),
        owner: Some(p.user.clone()),
        group: Some(gid),
    };
    let edit = plan_edit(
        t,
        &path,
        &st,
        &before,
        &e,
        &attrs,
        &WriteOpts::new(),
        ctx,
        None,
    )
    .await?;
    let mut changes = Vec::new();
    if dir_changed {
        // Said, not recorded in the simulated host (as before the split).
        changes.push(Change::Host(format!("directory {dir} (0700)")));
    }
    changes.extend(edit.changes.iter().cloned());
    let (mut r, edit) = if edit.pending() {
        let (o, w) = edit.into_work::<EditWork>(SPEC.name)?;
        (o, Some(w))
    } else {
        (edit.outcome, None)
    };
    r.changed |= dir_changed;
    r.set("user", p.user.clone());
    r.set("key", p.keys.join("\n"));
    r.set("exclusive", p.exclusive);
    if mkdir.is_none() && edit.is_none() {
        return Ok(Plan::done(r));
    }
    let work = Work { mkdir, edit };
    Ok(Plan::changes(r, changes, work))
}

pub async fn apply(
    t: &dyn Transport,
    _: &Params,
    _: &OpContext<'_>,
    outcome: OpOutcome,
    work: Work,
) -> Result<OpOutcome, OpError> {
    if let Some((cmd, what)) = work.mkdir {
        sh_ok(t, cmd, &what).await?;
    }
    match work.edit {
        Some(edit) => edit.apply(t, outcome).await,
        None => Ok(outcome),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const A: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAA alice@x";
    const B: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAB bob@y";

    fn p(v: serde_json::Value) -> Params {
        Params::parse(&serde_json::from_value(v).unwrap()).unwrap()
    }

    #[test]
    fn adds_updates_removes_keys() {
        let e = edit(&p(json!({"user": "u", "key": A})), &format!("{B}\n"));
        assert_eq!(e.content, format!("{B}\n{A}\n"));
        assert!(!edit(&p(json!({"user": "u", "key": A})), &e.content).changed);
        // same key, new comment/options: replaced in place
        let e2 = edit(
            &p(json!({"user": "u", "key": format!("from=\"10.0.0.1\" {A}")})),
            &e.content,
        );
        assert_eq!(e2.content, format!("{B}\nfrom=\"10.0.0.1\" {A}\n"));
        let e3 = edit(
            &p(json!({"user": "u", "key": A, "exclusive": true})),
            &e.content,
        );
        assert_eq!(e3.content, format!("{A}\n"));
        let e4 = edit(
            &p(json!({"user": "u", "key": B, "state": "absent"})),
            &e.content,
        );
        assert_eq!(e4.content, format!("{A}\n"));
        assert!(
            Params::parse(
                &serde_json::from_value(json!({"user": "u", "key": "nonsense"})).unwrap()
            )
            .is_err()
        );
    }
}
