//! The op contract's shape: an op queries the host and plans ([`super::Op::plan`]: what it
//! would change, the diff, the outcome it reports), then applies that plan
//! ([`super::Op::apply`]). Check mode is the plan without the apply, decided here in
//! [`perform`], not by the op: in check mode `apply` is never called, and the plan's
//! [`Change`]s are recorded in the simulated host ([`super::check_state`]) so later
//! check-mode tasks see what this one would have made.
//!
//! Every op that changes a host plans; one that changes none (`debug`, `stat`, ...)
//! does its whole work in [`super::Op::run_unplanned`] (docs/ops.md, "Check mode").

use std::any::Any;

use super::check_state::{CheckOverlay, CheckTransport};
use super::{Op, OpContext, OpError, OpOutcome};
use crate::transport::{Become, FileSpec, Transport, TransportError};

/// One change an op would make, as the simulated host records it.
#[derive(Debug, Clone)]
pub enum Change {
    /// A file with this content (`mode`/`owner`/`group`: None keeps what the path has,
    /// or a new file's defaults).
    File(FileSpec),
    /// A directory with its missing parents (`mkdir -p`), each made one with these.
    Dir {
        path: String,
        mode: Option<u32>,
        owner: Option<String>,
        group: Option<String>,
    },
    /// New attributes of an existing path.
    Attrs {
        path: String,
        mode: Option<u32>,
        owner: Option<String>,
        group: Option<String>,
    },
    /// A path removed with everything below it.
    Remove(String),
    /// A symlink to `target` (replacing what is there).
    Link {
        path: String,
        target: String,
        owner: Option<String>,
        group: Option<String>,
    },
    /// A hard link at `path` to `src`.
    HardLink { path: String, src: String },
    /// A file recorded as given: owned by the connecting user even under `become`
    /// (the empty file `file: state=touch` creates, the copy `get_url` makes of a
    /// host file; as before they were split; a real run makes it the become user's).
    AsGiven(FileSpec),
    /// A change outside the simulated file system (a running kernel value, a
    /// loaded module, a service's state): said, not recorded.
    Host(String),
    /// A path a task check mode does not run would make or change (a command's
    /// `creates:`/`removes:`): recorded unknown, so a later task reading it is
    /// reported not checked.
    Unknown(String),
    /// The modification time (seconds) of a file just recorded (an unpacked
    /// archive member's).
    Mtime { path: String, mtime: i64 },
    /// Packages `pip` would install (`Some(version when known)`) or remove (`None`)
    /// in the Python environment `env` (a venv path or pip command), which it would
    /// create first when `created`.
    Pip {
        env: String,
        created: bool,
        packages: Vec<(String, Option<Option<String>>)>,
    },
    /// A local account added (`home`: Some, its home directory) or removed (None):
    /// a later task needing it (`authorized_key`) finds it.
    Account { name: String, home: Option<String> },
    /// A file written on the controller (`fetch`; `content` None: unknown), recorded
    /// in the controller's simulated state.
    Local {
        path: String,
        content: Option<Vec<u8>>,
    },
}

impl Change {
    /// A directory made with its missing parents, mode `mode` (None: the default), owned
    /// as the connection makes it.
    pub fn dir(path: &str, mode: Option<u32>) -> Change {
        Change::Dir {
            path: path.to_string(),
            mode,
            owner: None,
            group: None,
        }
    }
}

/// What an op found and would do.
pub struct Plan {
    /// What the op reports: `changed`, the registered result, the diff. In a real run
    /// the apply's outcome takes its place.
    pub outcome: OpOutcome,
    /// What would change, in order.
    pub changes: Vec<Change>,
    /// What the op's apply needs (its own type; see [`Plan::changes`]); None: nothing
    /// to apply.
    work: Option<Box<dyn Any + Send + Sync>>,
    /// The apply finds out what is there as it acts ([`Plan::found_by_apply`]).
    found_by_apply: bool,
    /// A command removing what planning left on the host for the apply
    /// ([`Plan::with_cleanup`]).
    cleanup: Option<String>,
    /// What the op plans next from this step's outcome ([`Plan::then`]).
    next: Option<Box<dyn Any + Send + Sync>>,
}

impl Plan {
    /// Nothing to apply: the host is as asked (or the op did its whole work already,
    /// as an op not yet split into plan and apply does).
    pub fn done(outcome: OpOutcome) -> Self {
        Plan {
            outcome,
            changes: Vec::new(),
            work: None,
            found_by_apply: false,
            cleanup: None,
            next: None,
        }
    }

    /// These changes to make; `work` is what the op's apply needs to make them. (The
    /// outcome says whether the task changes something: work may change nothing the
    /// task reports, as `service`'s `daemon_reload`.)
    pub fn changes(outcome: OpOutcome, changes: Vec<Change>, work: impl Any + Send + Sync) -> Self {
        Plan {
            outcome,
            changes,
            work: Some(Box::new(work)),
            found_by_apply: false,
            cleanup: None,
            next: None,
        }
    }

    /// A step whose apply finds out what is there and acts on it in one round trip
    /// (`copy` creating a new file where nothing is, `apt` updating a stale cache):
    /// nothing was asked of the host, and `outcome` and `changes` say what acting
    /// does. Check mode, which may not act to find out, asks the op to find out
    /// without acting ([`super::Op::plan_found`]) and takes that plan instead.
    pub fn found_by_apply(
        outcome: OpOutcome,
        changes: Vec<Change>,
        work: impl Any + Send + Sync,
    ) -> Self {
        Plan {
            found_by_apply: true,
            ..Plan::changes(outcome, changes, work)
        }
    }

    /// One step of several, each planned from what the steps before it did (`apt`:
    /// the package query follows the cache update): once this step is applied (in
    /// check mode: recorded), the op plans the next from its outcome and `next`
    /// ([`super::Op::plan_next`]).
    pub fn then(mut self, next: impl Any + Send + Sync) -> Self {
        self.next = Some(Box::new(next));
        self
    }

    /// `cleanup` removes what planning left on the host for the apply to use (an
    /// uploaded archive): the apply removes it itself; check mode, which never applies,
    /// runs `cleanup` instead ([`perform`]).
    pub fn with_cleanup(mut self, cleanup: String) -> Self {
        self.cleanup = Some(cleanup);
        self
    }

    /// Whether there is anything to apply.
    pub fn pending(&self) -> bool {
        self.work.is_some()
    }

    /// The outcome and the op's work, taken back by its apply.
    pub fn into_work<W: Any>(self, op: &str) -> Result<(OpOutcome, W), OpError> {
        let work = self
            .work
            .and_then(|w| w.downcast::<W>().ok())
            .ok_or_else(|| OpError::failed(format!("{op}: its plan carries no work to apply")))?;
        Ok((self.outcome, *work))
    }
}

/// The work of an op whose apply runs shell commands, in order: each line with what it
/// does, for the error when it does not exit 0.
#[derive(Debug, Clone, Default)]
pub struct Commands(pub Vec<(String, String)>);

impl Commands {
    pub async fn run(self, t: &dyn Transport) -> Result<(), OpError> {
        for (cmd, what) in self.0 {
            super::sh_ok(t, cmd, &what).await?;
        }
        Ok(())
    }
}

/// Run one op on one host: plan, then, unless the task is in check mode, apply (step
/// by step for an op planned in steps, [`Plan::then`]). In check mode the plan's
/// changes go to the simulated host (when the engine put one in front of the
/// transport: a `--check` run), and a step its apply would find out as it acts is
/// found out without acting ([`Plan::found_by_apply`]).
pub async fn perform<O: Op + ?Sized>(op: &O, ctx: &OpContext<'_>) -> Result<OpOutcome, OpError> {
    let mut plan = op.plan(ctx).await?;
    loop {
        let next = plan.next.take();
        if ctx.check && plan.found_by_apply {
            // Check mode may not act to find out what is there.
            plan = op.plan_found(ctx, plan).await?;
        }
        let next = plan.next.take().or(next);
        let outcome = step(op, ctx, plan).await?;
        match next {
            None => return Ok(outcome),
            Some(next) => plan = op.plan_next(ctx, outcome, next).await?,
        }
    }
}

/// One planned step: its outcome when there is nothing to apply or in check mode
/// (which records its changes), else what applying it did.
async fn step<O: Op + ?Sized>(
    op: &O,
    ctx: &OpContext<'_>,
    plan: Plan,
) -> Result<OpOutcome, OpError> {
    if !plan.pending() {
        return Ok(plan.outcome);
    }
    if ctx.check {
        if let Some(cmd) = plan.cleanup {
            // As the apply would, whatever it left: a failure is not the task's.
            let _ = super::sh(&ctx.host_transport(), cmd).await;
        }
        if let Some(sim) = ctx.transport.check_overlay() {
            record(sim, &plan.changes, ctx.become_.as_ref()).await?;
        }
        return Ok(plan.outcome);
    }
    op.apply(ctx, plan).await
}

/// Record `changes` in the simulated host, as the task's `become` user would make them.
pub(crate) async fn record(
    sim: &CheckTransport,
    changes: &[Change],
    become_: Option<&Become>,
) -> Result<(), TransportError> {
    for c in changes {
        match c {
            Change::File(spec) => {
                let mut spec = spec.clone();
                spec.become_ = spec.become_.or_else(|| become_.cloned());
                sim.put_file(&spec).await?;
            }
            Change::Dir {
                path,
                mode,
                owner,
                group,
            } => {
                sim.would_mkdir(path, *mode, owner.as_deref(), group.as_deref())
                    .await?
            }
            Change::Attrs {
                path,
                mode,
                owner,
                group,
            } => sim.would_set_attrs(path, *mode, owner.as_deref(), group.as_deref()),
            Change::Remove(path) => sim.would_remove(path),
            Change::Link {
                path,
                target,
                owner,
                group,
            } => sim.would_link(path, target, owner.as_deref(), group.as_deref()),
            Change::HardLink { path, src } => sim.would_hardlink(path, src),
            Change::AsGiven(spec) => sim.would_put(spec),
            Change::Mtime { path, mtime } => sim.would_set_mtime(path, *mtime),
            Change::Pip {
                env,
                created,
                packages,
            } => sim.would_pip(env, |e| {
                e.created |= *created;
                e.packages.extend(packages.iter().cloned());
            }),
            Change::Host(_) => {}
            Change::Unknown(path) => sim.would_be_unknown(path),
            Change::Account { name, home } => sim.would_account(name, home.clone()),
            Change::Local { path, content } => sim.would_write_local(path, content.clone()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use serde_json::{Value, json};

    use super::*;
    use crate::ops::Render;
    use crate::ops::check_state::CheckState;
    use crate::template::TemplateError;
    use crate::transport::local::LocalTransport;
    use crate::vars::Vars;

    /// Nothing to render: the op under test takes literal arguments.
    struct Literal;

    impl Render for Literal {
        fn render_value(&self, value: &Value, _: &Vars) -> Result<Value, TemplateError> {
            Ok(value.clone())
        }
        fn eval_condition(&self, _: &str, _: &Vars) -> Result<bool, TemplateError> {
            Err(TemplateError::new("no conditions here"))
        }
        fn eval_expr(&self, _: &str, _: &Vars) -> Result<Value, TemplateError> {
            Err(TemplateError::new("no expressions here"))
        }
    }

    async fn hostname_now(t: &dyn Transport) -> String {
        let out = crate::ops::sh(t, "hostname").await.unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    #[tokio::test]
    async fn check_mode_records_the_plan_and_never_applies_it() {
        let local: Arc<dyn Transport> = Arc::new(LocalTransport::new("h"));
        let sim = Arc::new(CheckTransport::new(local.clone(), CheckState::new()));
        let (running, etc) = (
            hostname_now(&*local).await,
            std::fs::read("/etc/hostname").ok(),
        );
        let args: Vars = serde_json::from_value(json!({"name": "ferry-plan-check"})).unwrap();
        let vars = Vars::new();
        let ctx = OpContext {
            host: "h",
            transport: sim.clone(),
            args: &args,
            vars: &vars,
            check: true,
            diff: false,
            base_dir: Path::new("."),
            role_dir: None,
            become_: None,
            env: Vec::new(),
            timeout: None,
            render: &Literal,
        };
        let op = crate::ops::lookup("hostname").unwrap();
        let o = perform(op, &ctx).await.unwrap();
        assert!(o.changed, "a new name is a change: {o:?}");
        // Later check-mode tasks read the file the plan would write ...
        assert_eq!(
            sim.get_file("/etc/hostname").await.unwrap(),
            b"ferry-plan-check\n"
        );
        // ... and the machine is as it was: apply never ran.
        assert_eq!(hostname_now(&*local).await, running);
        assert_eq!(std::fs::read("/etc/hostname").ok(), etc);
    }

    fn ctx_for<'a>(
        t: Arc<dyn Transport>,
        args: &'a Vars,
        vars: &'a Vars,
        check: bool,
    ) -> OpContext<'a> {
        OpContext {
            host: "h",
            transport: t,
            args,
            vars,
            check,
            diff: false,
            base_dir: Path::new("."),
            role_dir: None,
            become_: None,
            env: Vec::new(),
            timeout: None,
            render: &Literal,
        }
    }

    #[tokio::test]
    async fn a_step_the_apply_finds_out_is_found_out_without_acting_in_check_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.conf");
        let dest = path.display().to_string();
        let local: Arc<dyn Transport> = Arc::new(LocalTransport::new("h"));
        let copy = crate::ops::lookup("copy").unwrap();
        let vars = Vars::new();
        let args = |content: &str| -> Vars {
            serde_json::from_value(json!({"dest": dest, "content": content})).unwrap()
        };
        let (a, b) = (args("one\n"), args("two\n"));
        // Check mode: nothing there, so the file would be created; only the
        // simulated host has it.
        let sim = Arc::new(CheckTransport::new(local.clone(), CheckState::new()));
        let o = perform(copy, &ctx_for(sim.clone(), &a, &vars, true))
            .await
            .unwrap();
        assert!(o.changed, "{o:?}");
        assert_eq!(sim.get_file(&dest).await.unwrap(), b"one\n");
        assert!(!path.exists(), "check mode created the file");
        // The same content again sees the would-be file: no change.
        let o = perform(copy, &ctx_for(sim.clone(), &a, &vars, true))
            .await
            .unwrap();
        assert!(!o.changed, "{o:?}");
        // A real run creates it; run again, it finds the file as it acts and
        // plans from it: unchanged, then replaced when the content differs.
        let o = perform(copy, &ctx_for(local.clone(), &a, &vars, false))
            .await
            .unwrap();
        assert!(
            o.changed && std::fs::read(&path).unwrap() == b"one\n",
            "{o:?}"
        );
        let o = perform(copy, &ctx_for(local.clone(), &a, &vars, false))
            .await
            .unwrap();
        assert!(!o.changed, "{o:?}");
        let o = perform(copy, &ctx_for(local.clone(), &b, &vars, false))
            .await
            .unwrap();
        assert!(
            o.changed && std::fs::read(&path).unwrap() == b"two\n",
            "{o:?}"
        );
    }
}
