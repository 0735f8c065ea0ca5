//! `hostname`: the running hostname and `/etc/hostname`.

use super::attrs::FileAttrs;
use super::content::{WriteOpts, apply_content, plan_content};
use super::{Args, Change, OpContext, OpError, OpOutcome, Plan, sh, sh_quote};
use crate::transport::{FileSpec, FileStat, Transport};
use crate::vars::Vars;

use super::schema::Spec;

/// What `hostname` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "hostname",
    flags: "",
    params: "name:str!; use:str",
    rules: "",
};

crate::ops::planned_op!(HostnameOp, SPEC);

#[derive(Debug, Clone)]
pub struct Params {
    pub name: String,
}

impl Params {
    pub fn parse(args: &Vars) -> Result<Params, OpError> {
        let a = Args::new("hostname", args);
        let p = Params {
            name: a.req_str("name")?,
        };
        // `use` picks Ansible's strategy; ferry always does what `debian` does.
        if let Some(u) = a.str("use")?
            && !matches!(u.as_str(), "debian" | "systemd" | "generic")
        {
            return Err(a.err(format!(
                "`use: {u}` is not supported (debian, systemd, generic)"
            )));
        }
        a.finish()?;
        if p.name.is_empty()
            || !p
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(OpError::params(
                "hostname",
                format!("bad hostname `{}`", p.name),
            ));
        }
        Ok(p)
    }
}

/// (set the running name, rewrite /etc/hostname) given what the host has.
pub fn decide(p: &Params, running: &str, etc: Option<&str>) -> (bool, bool) {
    (
        running.trim() != p.name,
        etc.map(str::trim) != Some(p.name.as_str()),
    )
}

/// What the apply does: rewrite /etc/hostname (it was `stat`, holding `etc`), set the
/// running name.
pub struct Work {
    write: Option<(FileStat, Option<String>)>,
    set_running: bool,
}

pub async fn plan(t: &dyn Transport, p: &Params, _: &OpContext<'_>) -> Result<Plan, OpError> {
    let out = sh(t, "hostname").await?;
    let running = String::from_utf8_lossy(&out.stdout).into_owned();
    let st = t.stat("/etc/hostname").await?;
    let etc = if st.exists {
        Some(String::from_utf8_lossy(&t.get_file("/etc/hostname").await?).into_owned())
    } else {
        None
    };
    let (set_running, write) = decide(p, &running, etc.as_deref());
    let outcome = OpOutcome::new(set_running || write).with("name", p.name.clone());
    let mut changes = Vec::new();
    if write {
        changes.push(Change::File(FileSpec {
            path: "/etc/hostname".into(),
            content: format!("{}\n", p.name).into_bytes(),
            ..FileSpec::default()
        }));
    }
    if set_running {
        changes.push(Change::Host(format!("running hostname {}", p.name)));
    }
    if changes.is_empty() {
        return Ok(Plan::done(outcome));
    }
    let work = Work {
        write: write.then_some((st, etc)),
        set_running,
    };
    Ok(Plan::changes(outcome, changes, work))
}

pub async fn apply(
    t: &dyn Transport,
    p: &Params,
    ctx: &OpContext<'_>,
    outcome: OpOutcome,
    work: Work,
) -> Result<OpOutcome, OpError> {
    if let Some((st, etc)) = &work.write {
        let content = format!("{}\n", p.name);
        let opts = WriteOpts::new();
        let write = plan_content(
            t,
            "/etc/hostname",
            st,
            etc.as_deref().map(str::as_bytes),
            content.as_bytes(),
            &FileAttrs::default(),
            &opts,
            ctx,
        )
        .await?;
        apply_content(t, write, &opts).await?;
    }
    if work.set_running {
        let out = sh(t, format!("hostname {}", sh_quote(&p.name))).await?;
        if out.rc != 0 {
            return Err(OpError::command("setting the hostname", &out));
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plans() {
        let p = Params::parse(&serde_json::from_value(json!({"name": "node1"})).unwrap()).unwrap();
        assert_eq!(decide(&p, "node1\n", Some("node1\n")), (false, false));
        assert_eq!(decide(&p, "old\n", Some("node1\n")), (true, false));
        assert_eq!(decide(&p, "node1\n", None), (false, true));
        assert!(Params::parse(&serde_json::from_value(json!({"name": "a b"})).unwrap()).is_err());
        assert!(
            Params::parse(&serde_json::from_value(json!({"name": "a", "use": "alpine"})).unwrap())
                .is_err()
        );
    }
}
