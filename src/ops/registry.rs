//! The table of ops by name, and the adapter that lets the file and system
//! ops (each a `Params::parse` + `run(&dyn Transport, &Params, &OpEnv)`) run
//! under the engine's [`Op`] trait.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::outcome::{BecomeTransport, OpEnv, OpError as HostOpError, OpReport};
use super::{Diff, Op, OpContext, OpError, OpOutcome};
use crate::transport::Transport;

/// Search paths for a task's `src:` on the controller: the role's, then the playbook's.
fn base_dirs(ctx: &OpContext<'_>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(r) = ctx.role_dir {
        dirs.push(r.to_path_buf());
    }
    dirs.push(ctx.base_dir.to_path_buf());
    dirs
}

/// Turn a host op's report (or failure) into the engine's outcome.
fn outcome(res: Result<OpReport, HostOpError>) -> Result<OpOutcome, OpError> {
    match res {
        Ok(rep) => {
            let mut out = if rep.changed {
                OpOutcome::changed()
            } else {
                OpOutcome::ok()
            };
            out.msg = rep.msg;
            out.result = rep.result.into_iter().collect::<Map<String, Value>>();
            out.diff = rep.diff.map(|d| Diff {
                path: Some(d.path),
                before: d.before,
                after: d.after,
            });
            Ok(out)
        }
        Err(HostOpError::Params { op, msg }) => Err(OpError::Args(format!("{op}: {msg}"))),
        Err(HostOpError::Transport(e)) => Err(OpError::Transport(e)),
        Err(HostOpError::Failed { msg, result }) => {
            let mut out = OpOutcome::failed(msg);
            out.result = result.into_iter().collect();
            Ok(out)
        }
    }
}

/// Run a host op with the task's become, check/diff flags, search paths and renderer.
pub(super) async fn run_host_op<P, F>(
    ctx: &OpContext<'_>,
    parse: fn(&crate::playbook::Vars) -> Result<P, HostOpError>,
    run: F,
) -> Result<OpOutcome, OpError>
where
    P: Sync,
    F: for<'a> AsyncRunner<'a, P>,
{
    let params = match parse(ctx.args) {
        Ok(p) => p,
        Err(e) => return outcome(Err(e)),
    };
    let vars = ctx.vars;
    let renderer = ctx.render;
    let render = move |source: &str, path: &Path| {
        renderer.render_template(source, &path.display().to_string(), vars)
    };
    let env = OpEnv {
        check: ctx.check,
        diff: ctx.diff,
        base_dirs: base_dirs(ctx),
        render: Some(&render),
        host: ctx.host.to_string(),
    };
    let inner: &dyn Transport = &*ctx.transport;
    let res = match &ctx.become_ {
        Some(b) => {
            let t = BecomeTransport {
                inner,
                become_: b.clone(),
            };
            run.call(&t, &params, &env).await
        }
        None => run.call(inner, &params, &env).await,
    };
    outcome(res)
}

/// An op's `run` function, callable with borrowed arguments.
pub(super) trait AsyncRunner<'a, P: 'a> {
    type Fut: std::future::Future<Output = Result<OpReport, HostOpError>> + Send + 'a;
    fn call(&self, t: &'a dyn Transport, p: &'a P, env: &'a OpEnv<'a>) -> Self::Fut;
}

impl<'a, P: 'a, F, Fut> AsyncRunner<'a, P> for F
where
    F: Fn(&'a dyn Transport, &'a P, &'a OpEnv<'a>) -> Fut,
    Fut: std::future::Future<Output = Result<OpReport, HostOpError>> + Send + 'a,
{
    type Fut = Fut;
    fn call(&self, t: &'a dyn Transport, p: &'a P, env: &'a OpEnv<'a>) -> Fut {
        self(t, p, env)
    }
}

macro_rules! host_ops {
    ($($ty:ident => $module:ident, $name:literal;)*) => {
        $(
            #[doc = concat!("The `", $name, "` op (see `ops::", stringify!($module), "`).")]
            pub struct $ty;

            #[async_trait]
            impl Op for $ty {
                fn name(&self) -> &'static str {
                    $name
                }
                async fn run(&self, ctx: &OpContext<'_>) -> Result<OpOutcome, OpError> {
                    run_host_op(ctx, super::$module::Params::parse, super::$module::run).await
                }
            }
        )*

        /// Every host op, for the registry.
        pub(super) static HOST_OPS: &[&(dyn Op + 'static)] = &[$(&$ty),*];
    };
}

host_ops! {
    AptOp => apt, "apt";
    AptKeyOp => apt_key, "apt_key";
    AptRepositoryOp => apt_repository, "apt_repository";
    PackageOp => apt, "package";
    AuthorizedKeyOp => authorized_key, "authorized_key";
    BlockinfileOp => blockinfile, "blockinfile";
    BuildOp => build, "build";
    CopyOp => copy, "copy";
    FetchOp => fetch, "fetch";
    FileOp => file, "file";
    GetUrlOp => get_url, "get_url";
    GitOp => git, "git";
    GroupOp => group, "group";
    HostnameOp => hostname, "hostname";
    IniFileOp => ini_file, "ini_file";
    LineinfileOp => lineinfile, "lineinfile";
    ModprobeOp => modprobe, "modprobe";
    PipOp => pip, "pip";
    ReplaceOp => replace, "replace";
    ServiceOp => service, "service";
    SystemdOp => service, "systemd";
    SlurpOp => slurp, "slurp";
    StatOp => stat, "stat";
    SysctlOp => sysctl, "sysctl";
    TemplateOp => template, "template";
    UnarchiveOp => unarchive, "unarchive";
    UserOp => user, "user";
    WaitForOp => wait_for, "wait_for";
}
