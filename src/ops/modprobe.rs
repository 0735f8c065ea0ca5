//! `modprobe`: a kernel module loaded (with parameters) or unloaded.

use super::plan::Commands;
use super::{Args, Change, OpContext, OpError, OpOutcome, Plan, sh, sh_quote};
use crate::transport::Transport;
use crate::vars::Vars;

use super::schema::Spec;

/// What `modprobe` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "modprobe",
    flags: "",
    params: "name:str!; state:str=present,absent; params:str",
    rules: "",
};

crate::ops::planned_op!(ModprobeOp, SPEC, commands);

#[derive(Debug, Clone)]
pub struct Params {
    pub name: String,
    pub state_present: bool,
    pub params: String,
}

impl Params {
    pub fn parse(args: &Vars) -> Result<Params, OpError> {
        let a = Args::new("modprobe", args);
        let p = Params {
            name: a.req_str("name")?,
            state_present: a.choice("state", "present")? == "present",
            params: a.str("params")?.unwrap_or_default(),
        };
        a.finish()?;
        if !p
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(OpError::params(
                "modprobe",
                format!(
                    "module name `{}` may hold only letters, digits, `_` and `-`",
                    p.name
                ),
            ));
        }
        Ok(p)
    }
}

/// Whether the module is loaded as asked; if not, the command that loads or unloads it.
pub async fn plan(t: &dyn Transport, p: &Params, _: &OpContext<'_>) -> Result<Plan, OpError> {
    // /sys/module lists loaded and built-in modules, with `_` for `-`.
    let sysname = p.name.replace('-', "_");
    let out = sh(
        t,
        format!("[ -d /sys/module/{sysname} ] && echo loaded || echo absent"),
    )
    .await?;
    let loaded = String::from_utf8_lossy(&out.stdout).trim() == "loaded";
    let state = if p.state_present { "present" } else { "absent" };
    let outcome = OpOutcome::new(loaded != p.state_present)
        .with("name", p.name.clone())
        .with("params", p.params.clone())
        .with("state", state);
    if loaded == p.state_present {
        return Ok(Plan::done(outcome));
    }
    let cmd = if p.state_present {
        let params: Vec<String> = p.params.split_whitespace().map(sh_quote).collect();
        format!("modprobe {} {}", sh_quote(&p.name), params.join(" "))
    } else {
        format!("modprobe -r {}", sh_quote(&p.name))
    };
    let change = Change::Host(format!("module {} {state}", p.name));
    let work = Commands(vec![(cmd, format!("modprobe {}", p.name))]);
    Ok(Plan::changes(outcome, vec![change], work))
}
