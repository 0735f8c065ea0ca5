//! `group`: a local group present (with gid) or absent.

use super::plan::Commands;
use super::{Args, Change, OpContext, OpError, OpOutcome, Plan, sh, sh_quote};
use crate::transport::Transport;
use crate::vars::Vars;

use super::schema::Spec;

/// What `group` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "group",
    flags: "",
    params: "name:str!; state:str=present,absent; gid:int; system:bool",
    rules: "",
};

crate::ops::planned_op!(GroupOp, SPEC, commands);

#[derive(Debug, Clone)]
pub struct Params {
    pub name: String,
    pub state_present: bool,
    pub gid: Option<u64>,
    pub system: bool,
}

impl Params {
    pub fn parse(args: &Vars) -> Result<Params, OpError> {
        let a = Args::new("group", args);
        let p = Params {
            name: a.req_str("name")?,
            state_present: a.choice("state", "present")? == "present",
            gid: a.u64("gid")?,
            system: a.bool_or("system", false)?,
        };
        a.finish()?;
        super::user::check_name("group", &p.name)?;
        Ok(p)
    }
}

/// The command that brings the group from `current` (its `getent group`
/// line, if any) to `p`; None when nothing is to do.
pub fn decide(p: &Params, current: Option<&str>) -> Option<String> {
    let n = sh_quote(&p.name);
    match (current, p.state_present) {
        (None, false) => None,
        (Some(_), false) => Some(format!("groupdel {n}")),
        (None, true) => {
            let mut c = "groupadd".to_string();
            if let Some(g) = p.gid {
                c.push_str(&format!(" -g {g}"));
            }
            if p.system {
                c.push_str(" -r");
            }
            Some(format!("{c} {n}"))
        }
        (Some(line), true) => {
            let gid = line.split(':').nth(2).and_then(|g| g.parse::<u64>().ok());
            match p.gid {
                Some(g) if Some(g) != gid => Some(format!("groupmod -g {g} {n}")),
                _ => None,
            }
        }
    }
}

pub async fn plan(t: &dyn Transport, p: &Params, _: &OpContext<'_>) -> Result<Plan, OpError> {
    let out = sh(t, format!("getent group {}", sh_quote(&p.name))).await?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let current = (out.rc == 0 && !text.is_empty()).then_some(text.as_str());
    let cmd = decide(p, current);
    let state = if p.state_present { "present" } else { "absent" };
    let mut r = OpOutcome::new(cmd.is_some())
        .with("name", p.name.clone())
        .with("state", state);
    if let Some(g) = p.gid {
        r.set("gid", g);
    }
    Ok(match cmd {
        None => Plan::done(r),
        Some(c) => {
            let change = Change::Host(format!("group {} {state}", p.name));
            let work = Commands(vec![(c, format!("group {}", p.name))]);
            Plan::changes(r, vec![change], work)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plans() {
        let p = Params::parse(&serde_json::from_value(json!({"name": "kvm", "gid": 110})).unwrap())
            .unwrap();
        assert_eq!(decide(&p, None).unwrap(), "groupadd -g 110 kvm");
        assert_eq!(decide(&p, Some("kvm:x:110:")), None);
        assert_eq!(
            decide(&p, Some("kvm:x:109:")).unwrap(),
            "groupmod -g 110 kvm"
        );
        let p = Params::parse(
            &serde_json::from_value(json!({"name": "kvm", "state": "absent"})).unwrap(),
        )
        .unwrap();
        assert_eq!(decide(&p, None), None);
        assert_eq!(decide(&p, Some("kvm:x:1:")).unwrap(), "groupdel kvm");
    }
}
