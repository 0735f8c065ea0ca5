//! Operations: one file per op, each declaring its parameters once ([`schema::Spec`]) and
//! implementing the one op contract, [`Op`].
//!
//! The engine never knows which op it runs: it looks an op up by name in the one
//! registry ([`lookup`], [`registry`]), renders the task's arguments, and calls
//! [`perform`] with an [`OpContext`]. An op queries the current state through the
//! context's transport and plans what differs ([`Op::plan`]); [`perform`] applies the
//! plan ([`Op::apply`]) unless the task is in check mode, so check mode changes nothing
//! by construction ([`plan`]). It reports what it did in an [`OpOutcome`]. `ferry check` validates a task
//! against the op's declaration and, where the arguments are literals, with the op's
//! own parser ([`Op::check_args`]).

/// An op that changes no host (`slurp`, `stat`), with a `Params::parse(&Vars)` and a
/// `run(&dyn Transport, &Params, &OpContext) -> Result<OpOutcome, OpError>` in its module:
/// the type `$ty` implementing [`Op`] with declaration `$spec`.
macro_rules! host_op {
    ($ty:ident, $spec:expr) => {
        $crate::ops::planned_op!(@op $ty, $spec, {
            async fn run_unplanned(
                &self,
                ctx: &$crate::ops::OpContext<'_>,
            ) -> Result<$crate::ops::OpOutcome, $crate::ops::OpError> {
                let p = Params::parse(ctx.args)?;
                run(&ctx.host_transport(), &p, ctx).await
            }
        });
    };
}
pub(crate) use host_op;

/// An op split into plan and apply, with a `Params::parse(&Vars)` and a
/// `plan(&dyn Transport, &Params, &OpContext) -> Result<Plan, OpError>` in its module:
/// the type `$ty` implementing [`Op`] with declaration `$spec`. Its apply is the
/// module's `apply(&dyn Transport, &Params, &OpContext, OpOutcome, Work) ->
/// Result<OpOutcome, OpError>` (`Work`: what its plan hands its apply), or with
/// `commands` the [`plan::Commands`] its plan carries, run in order, or with `edit`
/// the [`content::EditWork`] of a text-editing op, or with `place` the
/// [`place::Work`] of an op placing files as `copy` does (the module brings
/// `place`'s `Work`, `apply` and `plan_found`, which answers [`Op::plan_found`]),
/// or with `steps` an op planned in several steps ([`Plan::then`]): besides `plan`,
/// `apply` and `Work`, the module's `plan_step(t, p, ctx, outcome, Step)` plans the
/// next step and `plan_found(t, p, outcome, Work)` answers [`Op::plan_found`].
macro_rules! planned_op {
    ($ty:ident, $spec:expr) => {
        $crate::ops::planned_op!(@planned $ty, $spec, |ctx, plan| {
            let p = Params::parse(ctx.args)?;
            let (outcome, work) = plan.into_work::<Work>($spec.name)?;
            apply(&ctx.host_transport(), &p, ctx, outcome, work).await
        });
    };
    ($ty:ident, $spec:expr, commands) => {
        $crate::ops::planned_op!(@planned $ty, $spec, |ctx, plan| {
            let (outcome, work) = plan.into_work::<$crate::ops::Commands>($spec.name)?;
            work.run(&ctx.host_transport()).await?;
            Ok(outcome)
        });
    };
    ($ty:ident, $spec:expr, edit) => {
        $crate::ops::planned_op!(@planned $ty, $spec, |ctx, plan| {
            let (outcome, work) = plan.into_work::<$crate::ops::EditWork>($spec.name)?;
            work.apply(&ctx.host_transport(), outcome).await
        });
    };
    ($ty:ident, $spec:expr, place) => {
        $crate::ops::planned_op!(@planned $ty, $spec, |ctx, plan| {
            let (outcome, work) = plan.into_work::<Work>($spec.name)?;
            apply(&ctx.host_transport(), ctx, outcome, work).await
        }, {
            async fn plan_found(
                &self,
                ctx: &$crate::ops::OpContext<'_>,
                plan: $crate::ops::Plan,
            ) -> Result<$crate::ops::Plan, $crate::ops::OpError> {
                plan_found(&ctx.host_transport(), ctx, $spec.name, plan).await
            }
        });
    };
    ($ty:ident, $spec:expr, steps) => {
        $crate::ops::planned_op!(@planned $ty, $spec, |ctx, plan| {
            let p = Params::parse(ctx.args)?;
            let (outcome, work) = plan.into_work::<Work>($spec.name)?;
            apply(&ctx.host_transport(), &p, ctx, outcome, work).await
        }, {
            async fn plan_found(
                &self,
                ctx: &$crate::ops::OpContext<'_>,
                plan: $crate::ops::Plan,
            ) -> Result<$crate::ops::Plan, $crate::ops::OpError> {
                let p = Params::parse(ctx.args)?;
                let (outcome, work) = plan.into_work::<Work>($spec.name)?;
                plan_found(&ctx.host_transport(), &p, outcome, work).await
            }
            async fn plan_next(
                &self,
                ctx: &$crate::ops::OpContext<'_>,
                outcome: $crate::ops::OpOutcome,
                next: Box<dyn std::any::Any + Send + Sync>,
            ) -> Result<$crate::ops::Plan, $crate::ops::OpError> {
                let p = Params::parse(ctx.args)?;
                let next = next.downcast::<Step>().map_err(|_| {
                    $crate::ops::OpError::failed(format!("{}: no next step to plan", $spec.name))
                })?;
                plan_step(&ctx.host_transport(), &p, ctx, outcome, *next).await
            }
        });
    };
    (@planned $ty:ident, $spec:expr, |$ctx:ident, $plan:ident| $apply:block) => {
        $crate::ops::planned_op!(@planned $ty, $spec, |$ctx, $plan| $apply, {});
    };
    (@planned $ty:ident, $spec:expr, |$ctx:ident, $plan:ident| $apply:block, { $($more:tt)* }) => {
        $crate::ops::planned_op!(@op $ty, $spec, {
            async fn plan(
                &self,
                ctx: &$crate::ops::OpContext<'_>,
            ) -> Result<$crate::ops::Plan, $crate::ops::OpError> {
                let p = Params::parse(ctx.args)?;
                plan(&ctx.host_transport(), &p, ctx).await
            }
            async fn apply(
                &self,
                $ctx: &$crate::ops::OpContext<'_>,
                $plan: $crate::ops::Plan,
            ) -> Result<$crate::ops::OpOutcome, $crate::ops::OpError> $apply
            $($more)*
        });
    };
    (@op $ty:ident, $spec:expr, { $($methods:tt)* }) => {
        #[doc = concat!("The op declared by `", stringify!($spec), "` in this module.")]
        pub struct $ty;

        #[async_trait::async_trait]
        impl $crate::ops::Op for $ty {
            fn spec(&self) -> &'static $crate::ops::schema::Spec {
                &$spec
            }
            fn check_args(
                &self,
                args: &$crate::vars::Vars,
            ) -> Result<(), $crate::ops::OpError> {
                Params::parse(args).map(|_| ())
            }
            $($methods)*
        }
    };
}
pub(crate) use planned_op;

pub mod add_host;
pub mod apt;
pub mod apt_key;
pub mod apt_repository;
pub mod args;
pub mod assert;
pub mod attrs;
pub mod authorized_key;
pub mod blockinfile;
pub mod build;
pub mod check_state;
pub mod command;
pub mod content;
pub mod copy;
pub mod debug;
pub mod fail;
pub mod fetch;
pub mod file;
pub mod get_url;
pub mod git;
pub mod group;
pub mod group_by;
pub mod host;
pub mod hostname;
pub mod include_vars;
pub mod ini_file;
pub mod lineinfile;
pub mod meta;
pub mod modprobe;
pub mod outcome;
pub mod pause;
pub mod ping;
pub mod pip;
pub mod place;
pub mod plan;
pub mod raw;
pub mod registry;
pub mod replace;
pub mod schema;
pub mod script;
pub mod service;
pub mod set_fact;
pub mod setup;
pub mod shell;
pub mod slurp;
pub mod stat;
pub mod sysctl;
pub mod template;
pub mod unarchive;
pub mod user;
pub mod wait_for;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

pub use args::{Args, parse_bool};
pub use content::EditWork;
pub use host::{BecomeTransport, find_src, sh, sh_ok, sh_quote, sha256_hex};
pub use outcome::{Control, Diff, InventoryChange, OpError, OpOutcome};
pub use plan::{Change, Commands, Plan, perform};
pub use registry::{lookup, names};

use crate::template::TemplateError;
use crate::transport::{Become, Transport};
use crate::vars::Vars;

/// Renders templates and evaluates conditions for ops that need it
/// (`assert`'s `that`, `debug`'s `var`, the `template` op).
/// The engine passes its renderer; the integrator swaps in `crate::template`.
pub trait Render: Send + Sync {
    /// Render every string inside `value` (lists and maps walked), keeping native types.
    fn render_value(&self, value: &Value, vars: &Vars) -> Result<Value, TemplateError>;
    /// Evaluate a bare Jinja expression (as `when:` has them) to a bool.
    fn eval_condition(&self, expr: &str, vars: &Vars) -> Result<bool, TemplateError>;
    /// Evaluate a bare Jinja expression to a value (`debug: var=`).
    fn eval_expr(&self, expr: &str, vars: &Vars) -> Result<Value, TemplateError>;
    /// Render a whole template file's text (`name` is for error messages) to text.
    fn render_template(
        &self,
        source: &str,
        name: &str,
        vars: &Vars,
    ) -> Result<String, TemplateError> {
        let _ = name;
        match self.render_value(&Value::String(source.to_string()), vars)? {
            Value::String(s) => Ok(s),
            other => Ok(other.to_string()),
        }
    }
}

/// Everything an op gets to do its work on one host.
#[derive(Clone)]
pub struct OpContext<'a> {
    /// Inventory name of the host the task is for (not the delegate).
    pub host: &'a str,
    /// Where the op runs: the host's transport, or the delegate's under `delegate_to`.
    pub transport: Arc<dyn Transport>,
    /// The op's arguments, rendered.
    pub args: &'a Vars,
    /// The task's variable view (all layers merged, loop item included).
    pub vars: &'a Vars,
    /// `--check`: report what would change, change nothing.
    pub check: bool,
    /// `--diff`: fill [`OpOutcome::diff`] where there is something to show.
    pub diff: bool,
    /// Directory of the playbook the task came from (relative `src:` lookups).
    pub base_dir: &'a Path,
    /// Directory of the role the task came from, if any (looked up before `base_dir`).
    pub role_dir: Option<&'a Path>,
    /// `become:` resolved for this task.
    pub become_: Option<Become>,
    /// `environment:` of the task, rendered.
    pub env: Vec<(String, String)>,
    /// The task's `timeout:`; ops pass it on to commands they run.
    pub timeout: Option<Duration>,
    /// The template seam.
    pub render: &'a dyn Render,
}

impl OpContext<'_> {
    /// Controller-side search paths for a task's `src:`: the role's, then the playbook's.
    pub fn base_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        if let Some(r) = self.role_dir {
            dirs.push(r.to_path_buf());
        }
        dirs.push(self.base_dir.to_path_buf());
        dirs
    }

    /// Render a controller-side template file's text with the task's variables.
    pub fn render_file(&self, source: &str, path: &Path) -> Result<String, TemplateError> {
        self.render
            .render_template(source, &path.display().to_string(), self.vars)
    }

    /// The host's transport, running commands and writing files as the task's
    /// `become` user.
    pub fn host_transport(&self) -> BecomeTransport<'_> {
        BecomeTransport {
            inner: &*self.transport,
            become_: self.become_.clone(),
        }
    }

    /// Search order for a relative file (`files/` or `templates/` under the role, then the playbook dir).
    pub fn find_file(&self, sub: &str, name: &str) -> PathBuf {
        let p = Path::new(name);
        if p.is_absolute() {
            return p.to_path_buf();
        }
        let mut candidates = Vec::new();
        if let Some(r) = self.role_dir {
            candidates.push(r.join(sub).join(name));
            candidates.push(r.join(name));
        }
        candidates.push(self.base_dir.join(sub).join(name));
        candidates.push(self.base_dir.join(name));
        candidates
            .iter()
            .find(|c| c.exists())
            .cloned()
            .unwrap_or_else(|| self.base_dir.join(name))
    }

    /// A string argument, if present (numbers and bools are turned into text).
    pub fn arg_str(&self, key: &str) -> Option<String> {
        match self.args.get(key)? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }

    /// A boolean argument with Ansible's truthy strings (yes/no/true/false/1/0).
    pub fn arg_bool(&self, key: &str) -> Result<Option<bool>, OpError> {
        match self.args.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => truthy(v).map(Some).ok_or_else(|| {
                OpError::Args(format!("argument `{key}` must be a boolean, got {v}"))
            }),
        }
    }
}

/// Ansible's notion of a boolean argument.
pub fn truthy(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => Some(n.as_f64() != Some(0.0)),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "1" | "y" => Some(true),
            "no" | "false" | "off" | "0" | "n" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// One operation (`command`, `copy`, ...).
#[async_trait]
pub trait Op: Send + Sync {
    /// What the op takes, declared once (names, types, required, aliases, choices).
    fn spec(&self) -> &'static schema::Spec;
    /// Canonical name (without `ansible.builtin.`).
    fn name(&self) -> &'static str {
        self.spec().name
    }
    /// Rules that depend on a value (`sysctl` present needs `value`), checked by
    /// `ferry check` when every argument is a literal: the op's own parser, so check
    /// and run apply one definition. Ops without such rules accept.
    fn check_args(&self, args: &Vars) -> Result<(), OpError> {
        let _ = args;
        Ok(())
    }
    /// Whether the op talks to the host at all (`debug`, `set_fact`, `assert`,
    /// `fail`, `meta` do not: the engine needs no connection for them).
    fn needs_connection(&self) -> bool {
        true
    }
    /// Engine-control ops (`meta`) are neither shown nor counted in the recap.
    fn silent(&self) -> bool {
        false
    }
    /// Runs once for the whole play, on its first host (`add_host`, `pause`), as
    /// Ansible's `BYPASS_HOST_LOOP`: the engine treats the task as `run_once`.
    fn bypass_host_loop(&self) -> bool {
        false
    }
    /// Arguments the engine must not render (they are expressions the op evaluates itself,
    /// like `assert`'s `that`).
    fn raw_args(&self) -> &'static [&'static str] {
        &[]
    }
    /// Query the host and plan (see [`plan`]): what would change, the diff, what the
    /// task reports. An op that changes no host does its whole work in
    /// [`Op::run_unplanned`] instead.
    async fn plan(&self, ctx: &OpContext<'_>) -> Result<Plan, OpError> {
        Ok(Plan::done(self.run_unplanned(ctx).await?))
    }
    /// The plan of a step whose apply finds out what is there as it acts
    /// ([`Plan::found_by_apply`]), found out without acting: what check mode asks
    /// instead. Only ops making such plans are asked.
    async fn plan_found(&self, ctx: &OpContext<'_>, plan: Plan) -> Result<Plan, OpError> {
        let _ = (ctx, plan);
        Err(OpError::failed(format!(
            "{}: plans no step its apply finds out",
            self.name()
        )))
    }
    /// The plan of the step after one planned with [`Plan::then`], from that step's
    /// outcome. Only ops making such plans are asked.
    async fn plan_next(
        &self,
        ctx: &OpContext<'_>,
        outcome: OpOutcome,
        next: Box<dyn std::any::Any + Send + Sync>,
    ) -> Result<Plan, OpError> {
        let _ = (ctx, outcome, next);
        Err(OpError::failed(format!(
            "{}: plans no next step",
            self.name()
        )))
    }
    /// Make the plan's changes. Only a real run calls it ([`perform`]): never check mode.
    async fn apply(&self, ctx: &OpContext<'_>, plan: Plan) -> Result<OpOutcome, OpError> {
        let _ = (ctx, plan);
        Err(OpError::failed(format!(
            "{}: planned changes it cannot apply",
            self.name()
        )))
    }
    /// An op that changes no host (`debug`, `stat`, ...) does its whole work here:
    /// check mode runs it too.
    async fn run_unplanned(&self, ctx: &OpContext<'_>) -> Result<OpOutcome, OpError> {
        let _ = ctx;
        Err(OpError::failed(format!(
            "{}: neither plans nor runs",
            self.name()
        )))
    }
    /// Run the op on one host: [`perform`] (plan, then apply unless in check mode).
    /// No op overrides it.
    async fn run(&self, ctx: &OpContext<'_>) -> Result<OpOutcome, OpError> {
        perform(self, ctx).await
    }
}
