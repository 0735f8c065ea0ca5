//! `command`: run a program on the host (creates, removes, chdir, stdin).
//!
//! Never "ok" unless guarded by `creates`/`removes` (or `changed_when` in the task);
//! skipped in check mode unless a guard shows it would not run. Planned: the guards
//! are the plan, running the command is the apply.

use async_trait::async_trait;
use serde_json::Value;

use super::{Change, Op, OpContext, OpError, OpOutcome, Plan};
use crate::transport::CommandSpec;

use super::schema::Spec;

/// What `command` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "command",
    flags: "free",
    params: "_raw_params:str; cmd:str; argv:list; creates:path; removes:path; chdir:path; stdin:str; stdin_add_newline:bool; strip_empty_ends:bool",
    rules: "_raw_params|cmd|argv one:_raw_params|cmd|argv",
};

pub struct Command;

/// Quote one word for `/bin/sh`.
pub fn shell_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// The command line of a `command`/`shell` task: `_raw_params`, `cmd`, or `argv` (quoted).
pub fn command_line(ctx: &OpContext<'_>) -> Result<String, OpError> {
    if let Some(Value::Array(argv)) = ctx.args.get("argv") {
        let words: Vec<String> = argv
            .iter()
            .map(|w| match w {
                Value::String(s) => shell_quote(s),
                other => shell_quote(&other.to_string()),
            })
            .collect();
        return Ok(words.join(" "));
    }
    ctx.arg_str("_raw_params")
        .or_else(|| ctx.arg_str("cmd"))
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| OpError::Args("no command given (free-form, `cmd:` or `argv:`)".into()))
}

/// A command check mode does not run would presumably make its `creates:` path
/// and remove its `removes:` path: what those become is unknown to later
/// tasks (they are reported not checked when they read them).
pub fn guard_changes(ctx: &OpContext<'_>, line: &str) -> Vec<Change> {
    let mut changes = vec![Change::Host(format!("runs `{line}`"))];
    for g in ["creates", "removes"] {
        if let Some(p) = ctx.arg_str(g) {
            changes.push(Change::Unknown(p));
        }
    }
    changes
}

/// What a command's apply runs: its command line.
pub struct Work(pub String);

/// The plan of a command that would run: check mode reports it skipped (and what
/// its guards name unknown); a real run runs it.
pub fn would_run(ctx: &OpContext<'_>, line: String, skipped: &str) -> Plan {
    let changes = guard_changes(ctx, &line);
    Plan::changes(OpOutcome::skipped(skipped), changes, Work(line))
}

/// Plan a command line with the guards `command` and `shell` share: a guard that
/// says it need not run makes the task ok; otherwise it would run.
pub async fn plan_guarded(ctx: &OpContext<'_>, cmdline: String) -> Result<Plan, OpError> {
    let t = &ctx.transport;
    if let Some(creates) = ctx.arg_str("creates")
        && t.exists(&creates).await?
    {
        let mut o = OpOutcome::ok().with_msg(format!("skipped, since {creates} exists"));
        o.result.insert("cmd".into(), cmdline.into());
        o.result.insert("rc".into(), 0.into());
        return Ok(Plan::done(o));
    }
    if let Some(removes) = ctx.arg_str("removes")
        && !t.exists(&removes).await?
    {
        let mut o = OpOutcome::ok().with_msg(format!("skipped, since {removes} does not exist"));
        o.result.insert("cmd".into(), cmdline.into());
        o.result.insert("rc".into(), 0.into());
        return Ok(Plan::done(o));
    }
    Ok(would_run(
        ctx,
        cmdline,
        "Command would have run if not in check mode",
    ))
}

/// Run a planned command line (the apply of `command` and `shell`), with the
/// options they share.
pub async fn apply_guarded(ctx: &OpContext<'_>, plan: Plan) -> Result<OpOutcome, OpError> {
    let (_, Work(cmdline)) = plan.into_work::<Work>(SPEC.name)?;
    let t = &ctx.transport;
    let mut spec = CommandSpec::new(cmdline.clone());
    spec.cwd = ctx.arg_str("chdir");
    spec.env = ctx.env.clone();
    spec.timeout = ctx.timeout;
    spec.become_ = ctx.become_.clone();
    if let Some(stdin) = ctx.arg_str("stdin") {
        let add_nl = ctx.arg_bool("stdin_add_newline")?;
        let mut bytes = stdin.into_bytes();
        if add_nl.unwrap_or(true) {
            bytes.push(b'\n');
        }
        spec.stdin = Some(bytes);
    }
    let start = std::time::Instant::now();
    let out = t.run(&spec).await?;
    let mut o = OpOutcome::changed().with_command_output(&out);
    o.result.insert("cmd".into(), cmdline.into());
    o.result.insert(
        "delta".into(),
        format!("{:.6}", start.elapsed().as_secs_f64()).into(),
    );
    if out.timed_out {
        o.failed = true;
        let secs = ctx.timeout.map(|d| d.as_secs_f64()).unwrap_or_default();
        o.msg = Some(format!("command timed out after {secs}s and was killed"));
    } else if out.rc != 0 {
        o.failed = true;
        o.msg = Some("non-zero return code".into());
    }
    Ok(o)
}

#[async_trait]
impl Op for Command {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    async fn plan(&self, ctx: &OpContext<'_>) -> Result<Plan, OpError> {
        plan_guarded(ctx, command_line(ctx)?).await
    }
    async fn apply(&self, ctx: &OpContext<'_>, plan: Plan) -> Result<OpOutcome, OpError> {
        apply_guarded(ctx, plan).await
    }
}
