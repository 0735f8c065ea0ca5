//! `script`: copy a controller-side script (found in `files/` like `copy`'s
//! `src`) to a temp file on the host, run it there with its arguments, and
//! remove it. Free form (`script: setup.sh --fast`) or `cmd:`; `creates`,
//! `removes`, `chdir`, `executable` (the interpreter, else the script runs
//! by itself through its `#!` line). Like `command`, never "ok" unless a
//! guard says it need not run, and skipped in check mode otherwise. Planned: the
//! plan reads the script and decides the guards, the apply sends and runs it.

use async_trait::async_trait;

use super::command::{guard_changes, shell_quote};
use super::sha256_hex;
use super::{Op, OpContext, OpError, OpOutcome, Plan};
use crate::transport::{CommandSpec, FileSpec};

use super::schema::Spec;

/// What `script` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "script",
    flags: "free",
    params: "_raw_params:str; cmd:str; creates:path; removes:path; chdir:path; executable:path",
    rules: "_raw_params|cmd one:_raw_params|cmd",
};

pub struct Script;

/// Split `path arg arg` into the script and the rest of the line (kept as written).
pub fn split_line(line: &str) -> (String, String) {
    let line = line.trim();
    match line.split_once(char::is_whitespace) {
        Some((p, rest)) => (p.to_string(), rest.trim().to_string()),
        None => (line.to_string(), String::new()),
    }
}

/// What the apply sends and runs: the script (as found on the controller) and its
/// arguments as written.
struct Work {
    name: String,
    script_args: String,
    data: Vec<u8>,
}

const KNOWN: &[&str] = &[
    "_raw_params",
    "cmd",
    "creates",
    "removes",
    "chdir",
    "executable",
];

#[async_trait]
impl Op for Script {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    async fn plan(&self, ctx: &OpContext<'_>) -> Result<Plan, OpError> {
        let unknown: Vec<&str> = ctx
            .args
            .keys()
            .map(String::as_str)
            .filter(|k| !KNOWN.contains(k))
            .collect();
        if !unknown.is_empty() {
            return Err(OpError::Args(format!(
                "script: unsupported parameter {}; ferry supports: {}",
                unknown
                    .iter()
                    .map(|u| format!("`{u}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                KNOWN.join(", ")
            )));
        }
        let line = ctx
            .arg_str("_raw_params")
            .or_else(|| ctx.arg_str("cmd"))
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| OpError::Args("script: no script given (free-form or `cmd:`)".into()))?;
        let (name, script_args) = split_line(&line);
        let local = ctx.find_file("files", &name);
        let data = std::fs::read(&local).map_err(|e| {
            OpError::Args(format!(
                "script: could not read `{name}` ({}): {e}",
                local.display()
            ))
        })?;
        let t = &ctx.transport;
        if let Some(creates) = ctx.arg_str("creates")
            && t.stat(&creates).await?.exists
        {
            let mut o = OpOutcome::ok().with_msg(format!("skipped, since {creates} exists"));
            o.result.insert("rc".into(), 0.into());
            return Ok(Plan::done(o));
        }
        if let Some(removes) = ctx.arg_str("removes")
            && !t.stat(&removes).await?.exists
        {
            let mut o =
                OpOutcome::ok().with_msg(format!("skipped, since {removes} does not exist"));
            o.result.insert("rc".into(), 0.into());
            return Ok(Plan::done(o));
        }
        let outcome = OpOutcome::skipped("Command would have run if not in check mode");
        let changes = guard_changes(ctx, &line);
        let work = Work {
            name,
            script_args,
            data,
        };
        Ok(Plan::changes(outcome, changes, work))
    }
    async fn apply(&self, ctx: &OpContext<'_>, plan: Plan) -> Result<OpOutcome, OpError> {
        let (
            _,
            Work {
                name,
                script_args,
                data,
            },
        ) = plan.into_work::<Work>(SPEC.name)?;
        let t = &ctx.transport;
        let base = name.rsplit('/').next().unwrap_or("script");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let remote = format!(
            "/tmp/.ferry-script-{}-{nanos}-{}",
            &sha256_hex(&data)[..12],
            base
        );
        t.put_file(&FileSpec {
            path: remote.clone(),
            content: data,
            mode: Some(0o700),
            owner: None,
            group: None,
            become_: ctx.become_.clone(),
        })
        .await?;
        let qr = shell_quote(&remote);
        let run = match ctx.arg_str("executable") {
            Some(exe) => format!("{} {qr}", shell_quote(&exe)),
            None => qr.clone(),
        };
        let cmdline = if script_args.is_empty() {
            run
        } else {
            format!("{run} {script_args}")
        };
        let mut spec = CommandSpec::new(format!("{cmdline}; rc=$?; rm -f {qr}; exit $rc"));
        spec.cwd = ctx.arg_str("chdir");
        spec.env = ctx.env.clone();
        spec.timeout = ctx.timeout;
        spec.become_ = ctx.become_.clone();
        let out = t.run(&spec).await;
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                let mut clean = CommandSpec::new(format!("rm -f {qr}"));
                clean.become_ = ctx.become_.clone();
                let _ = t.run(&clean).await;
                return Err(e.into());
            }
        };
        let mut o = OpOutcome::changed().with_command_output(&out);
        if out.timed_out {
            o.failed = true;
            let secs = ctx.timeout.map(|d| d.as_secs_f64()).unwrap_or_default();
            o.msg = Some(format!("script timed out after {secs}s and was killed"));
        } else if out.rc != 0 {
            o.failed = true;
            o.msg = Some("non-zero return code".into());
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_script_and_args() {
        assert_eq!(
            split_line(" setup.sh --a 'b c' "),
            ("setup.sh".into(), "--a 'b c'".into())
        );
        assert_eq!(split_line("x.sh"), ("x.sh".into(), String::new()));
    }
}
