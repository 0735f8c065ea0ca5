//! `sysctl`: a kernel parameter in a sysctl file (and, with `reload`, applied
//! with `sysctl -p FILE`; with `sysctl_set`, checked and set with `sysctl -w`).

use super::attrs::FileAttrs;
use super::content::{ContentPlan, WriteOpts, apply_content, plan_content, read_for_diff};
use super::plan::Commands;
use super::{Args, Change, Diff, OpContext, OpError, OpOutcome, Plan, sh, sh_quote};
use crate::transport::Transport;
use crate::vars::Vars;

use super::schema::Spec;

/// What `sysctl` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "sysctl",
    flags: "",
    params: "name:str!/key; value:str/val; state:str=present,absent; sysctl_file:path; reload:bool; sysctl_set:bool; ignoreerrors:bool",
    rules: "",
};

crate::ops::planned_op!(SysctlOp, SPEC);

#[derive(Debug, Clone)]
pub struct Params {
    pub name: String,
    pub value: Option<String>,
    pub state_present: bool,
    pub sysctl_file: String,
    pub reload: bool,
    pub sysctl_set: bool,
    pub ignoreerrors: bool,
}

impl Params {
    pub fn parse(args: &Vars) -> Result<Params, OpError> {
        let a = Args::new("sysctl", args);
        let p = Params {
            name: a.req_str("name")?,
            value: a.str("value")?,
            state_present: a.choice("state", "present")? == "present",
            sysctl_file: a
                .str("sysctl_file")?
                .unwrap_or_else(|| "/etc/sysctl.conf".into()),
            reload: a.bool_or("reload", true)?,
            sysctl_set: a.bool_or("sysctl_set", false)?,
            ignoreerrors: a.bool_or("ignoreerrors", false)?,
        };
        a.finish()?;
        if p.state_present && p.value.is_none() {
            return Err(OpError::params(
                "sysctl",
                "value is required with state=present",
            ));
        }
        if p.name.contains(|c: char| c.is_whitespace() || c == '=') {
            return Err(OpError::params("sysctl", format!("bad key `{}`", p.name)));
        }
        Ok(p)
    }
}

fn kv(line: &str) -> Option<(&str, &str)> {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
        return None;
    }
    t.split_once('=').map(|(k, v)| (k.trim(), v.trim()))
}

/// The value the file gives `name` (the last setting wins).
pub fn file_value(content: &str, name: &str) -> Option<String> {
    content
        .lines()
        .filter_map(kv)
        .rfind(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Ansible's `fix_lines`: settings rewritten as `key=value`, duplicates
/// dropped, `name` set (or dropped for absent), comments kept.
pub fn fix_lines(content: &str, p: &Params) -> String {
    let mut out = String::new();
    let mut seen: Vec<String> = Vec::new();
    for line in content.split_inclusive('\n') {
        match kv(line) {
            None => {
                out.push_str(line);
                if !line.ends_with('\n') {
                    out.push('\n');
                }
            }
            Some((k, v)) => {
                if seen.iter().any(|s| s == k) {
                    continue;
                }
                seen.push(k.to_string());
                if k == p.name {
                    if p.state_present {
                        out.push_str(&format!("{k}={}\n", p.value.as_deref().unwrap_or("")));
                    }
                } else {
                    out.push_str(&format!("{k}={v}\n"));
                }
            }
        }
    }
    if p.state_present && !seen.contains(&p.name) {
        out.push_str(&format!(
            "{}={}\n",
            p.name,
            p.value.as_deref().unwrap_or("")
        ));
    }
    out
}

fn same(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

/// What the apply does: write the sysctl file, then set and reload the running values.
pub struct Work {
    file: Option<ContentPlan>,
    commands: Commands,
}

pub async fn plan(t: &dyn Transport, p: &Params, ctx: &OpContext<'_>) -> Result<Plan, OpError> {
    let st = t.stat(&p.sysctl_file).await?;
    let before = if st.exists {
        t.get_file(&p.sysctl_file).await?
    } else {
        Vec::new()
    };
    let text = String::from_utf8_lossy(&before).into_owned();
    let fv = file_value(&text, &p.name);
    let want = p.value.clone().unwrap_or_default();
    let write_file = match (&fv, p.state_present) {
        (None, true) => true,
        (None, false) => false,
        (Some(_), false) => true,
        (Some(v), true) => !same(v, &want),
    };
    let proc_value = if p.reload || p.sysctl_set {
        let out = sh(t, format!("sysctl -n {} 2>/dev/null", sh_quote(&p.name))).await?;
        (out.rc == 0).then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        None
    };
    let proc_ok = proc_value.as_deref().is_some_and(|v| same(v, &want));
    let mut changed = write_file;
    if !write_file && p.reload && p.state_present && !proc_ok {
        changed = true;
    }
    let set_proc = p.sysctl_set && p.state_present && !proc_ok;
    changed |= set_proc;
    let mut r = OpOutcome::new(changed);
    r.set("name", p.name.clone());
    r.set("value", want.clone());
    let mut work = Work {
        file: None,
        commands: Commands::default(),
    };
    let mut changes = Vec::new();
    if write_file {
        let content = fix_lines(&text, p);
        if ctx.diff {
            r.diff = Some(Diff {
                path: Some(p.sysctl_file.clone()),
                before: if st.exists {
                    read_for_diff(t, &p.sysctl_file, &st).await?
                } else {
                    String::new()
                },
                after: content.clone(),
            });
        }
        let file = plan_content(
            t,
            &p.sysctl_file,
            &st,
            Some(&before),
            content.as_bytes(),
            &FileAttrs::default(),
            &WriteOpts::new(),
            &OpContext {
                diff: false,
                ..ctx.clone()
            },
        )
        .await?;
        changes.extend(file.changes());
        work.file = Some(file);
    }
    let ignore = if p.ignoreerrors { "; true" } else { "" };
    if set_proc {
        let cmd = format!(
            "sysctl -w {}={}{ignore}",
            sh_quote(&p.name),
            sh_quote(&want)
        );
        work.commands.0.push((cmd, format!("setting {}", p.name)));
        changes.push(Change::Host(format!("{} = {want}", p.name)));
    }
    if changed && p.reload {
        let e = if p.ignoreerrors { "-e " } else { "" };
        let cmd = format!(
            "sysctl {e}-p {} >/dev/null{ignore}",
            sh_quote(&p.sysctl_file)
        );
        let what = format!("reloading {}", p.sysctl_file);
        work.commands.0.push((cmd, what));
        changes.push(Change::Host(format!("{} reloaded", p.sysctl_file)));
    }
    Ok(if changes.is_empty() {
        Plan::done(r)
    } else {
        Plan::changes(r, changes, work)
    })
}

pub async fn apply(
    t: &dyn Transport,
    _: &Params,
    _: &OpContext<'_>,
    outcome: OpOutcome,
    work: Work,
) -> Result<OpOutcome, OpError> {
    if let Some(file) = work.file {
        apply_content(t, file, &WriteOpts::new()).await?;
    }
    work.commands.run(t).await?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(v: serde_json::Value) -> Params {
        Params::parse(&serde_json::from_value(v).unwrap()).unwrap()
    }

    #[test]
    fn fixes_lines_like_ansible() {
        let c = "# comment\nnet.ipv4.ip_forward = 0\nvm.swappiness=10\nnet.ipv4.ip_forward=0\n";
        let q = p(json!({"name": "net.ipv4.ip_forward", "value": "1"}));
        assert_eq!(
            fix_lines(c, &q),
            "# comment\nnet.ipv4.ip_forward=1\nvm.swappiness=10\n"
        );
        assert_eq!(file_value(c, "net.ipv4.ip_forward").as_deref(), Some("0"));
        let q = p(json!({"name": "kernel.x", "value": 5}));
        assert!(
            fix_lines(c, &q).ends_with("net.ipv4.ip_forward=0\nvm.swappiness=10\nkernel.x=5\n")
        );
        let q = p(json!({"name": "vm.swappiness", "state": "absent"}));
        assert_eq!(fix_lines(c, &q), "# comment\nnet.ipv4.ip_forward=0\n");
    }

    #[test]
    fn params() {
        assert!(Params::parse(&serde_json::from_value(json!({"name": "a"})).unwrap()).is_err());
        assert!(same("4096 87380  6291456", "4096\t87380 6291456"));
    }
}
