//! One loop item (or a task without a loop) on one host: delegation, connecting,
//! rendering the arguments, check mode, running the op, and `retries`/`until`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::ops::check_state::CheckTransport;
use crate::ops::{Op, OpContext, OpError, OpOutcome, Render};
use crate::playbook::{Task, TaskKeywords, Vars};
use crate::transport::{Become, Transport};

use super::Engine;
use super::connect::{NoTransport, Traced};
use super::play_run::PlayRun;
use super::task::TaskOutput;

impl Engine {
    /// One item (or the whole task without a loop): connect, render, run with retries.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_item(
        &self,
        pr: &PlayRun<'_>,
        h: usize,
        t: &Task,
        kw: &TaskKeywords,
        op: &'static dyn Op,
        vars: &Vars,
    ) -> TaskOutput {
        let host = &pr.names[h];
        let render = self.task_render(pr, h);
        let no_log = kw.no_log.unwrap_or(false);
        let mut delegated_to = None;
        let mut check_t: Option<Arc<CheckTransport>> = None;
        let transport: Arc<dyn Transport> = if op.needs_connection() {
            let target = match &kw.delegate_to {
                Some(d) => match render.render_value(&Value::String(d.clone()), vars) {
                    Ok(Value::String(s)) => {
                        delegated_to = Some(s.clone());
                        s
                    }
                    Ok(other) => return TaskOutput::failed(format!("delegate_to: got {other}")),
                    Err(e) => return TaskOutput::failed(format!("delegate_to: {e}")),
                },
                None => host.clone(),
            };
            let transport: Arc<dyn Transport> = match self.transport_for(&target).await {
                Ok(t) if self.opts.verbosity >= 3 => Arc::new(Traced {
                    inner: t,
                    sink: self.sink.clone(),
                    hide: no_log,
                    secrets: if self.opts.show_secrets {
                        Vec::new()
                    } else {
                        super::connect::secret_values(vars)
                    },
                }),
                Ok(t) => t,
                Err(e) => {
                    let mut o = TaskOutput::unreachable(e.to_string());
                    o.delegated_to = delegated_to;
                    return o;
                }
            };
            // A --check run: the task sees what earlier tasks would have done
            // on that machine (by any inventory name that reaches it).
            if self.opts.check && self.check_mode(kw) {
                let (state, controller) = {
                    let mut states = self.check_states.lock().unwrap();
                    let state = states.entry(transport.endpoint()).or_default().clone();
                    // The controller is the machine `local` connections reach.
                    let controller = states.entry("local".into()).or_default().clone();
                    (state, controller)
                };
                let ct =
                    Arc::new(CheckTransport::new(transport, state).with_controller(controller));
                check_t = Some(ct.clone());
                ct
            } else {
                transport
            }
        } else {
            Arc::new(NoTransport(host.clone()))
        };
        // One render call for all arguments: the template context is built once.
        let raw = op.raw_args();
        let to_render: Map<String, Value> = t
            .args
            .iter()
            .filter(|(k, _)| !raw.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut rendered = if to_render.is_empty() {
            Map::new()
        } else {
            match render.render_value(&Value::Object(to_render), vars) {
                Ok(Value::Object(m)) => m,
                Ok(_) => Map::new(),
                Err(e) => return TaskOutput::failed(format!("arguments: {e}")),
            }
        };
        let args: Vars = t
            .args
            .iter()
            .map(|(k, v)| {
                let v = rendered.remove(k).unwrap_or_else(|| v.clone());
                (k.clone(), v)
            })
            .collect();
        let mut env = Vec::new();
        for item in &kw.environment {
            let rendered = match render.render_value(item, vars) {
                Ok(Value::Object(m)) => m,
                Ok(other) => {
                    return TaskOutput::failed(format!(
                        "environment must be a mapping of variable names to values, got {other}"
                    ));
                }
                Err(e) => return TaskOutput::failed(format!("environment: {e}")),
            };
            for (k, v) in rendered {
                let v = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                match env.iter_mut().find(|(name, _)| *name == k) {
                    Some(slot) => slot.1 = v,
                    None => env.push((k, v)),
                }
            }
        }
        let become_ = kw.become_.unwrap_or(false).then(|| Become {
            user: kw.become_user.clone(),
            password: self.opts.become_password.clone(),
        });
        let timeout = kw
            .timeout
            .map(Duration::from_secs_f64)
            .or(self.opts.default_timeout);
        let role_dir = t.role.as_ref().map(|r| r.dir.as_path());
        let ctx = OpContext {
            host,
            transport,
            args: &args,
            vars,
            check: self.check_mode(kw),
            diff: self.opts.diff,
            base_dir: if pr.play.base_dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                &pr.play.base_dir
            },
            role_dir,
            become_,
            env,
            timeout,
            render: render.as_ref(),
        };
        let retries = if t.until.is_some() {
            t.retries.unwrap_or(3)
        } else {
            0
        };
        let delay = Duration::from_secs_f64(t.delay.unwrap_or(5.0).max(0.0));
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let run = crate::ops::perform(op, &ctx);
            let res = match timeout {
                // Backstop: transports kill commands at the timeout; this ends an op stuck elsewhere.
                Some(d) => match tokio::time::timeout(d + Duration::from_secs(5), run).await {
                    Ok(r) => r,
                    Err(_) => Ok(OpOutcome::failed(format!(
                        "task timed out after {}s",
                        d.as_secs_f64()
                    ))),
                },
                None => run.await,
            };
            let outcome = match res {
                Ok(o) => o,
                Err(OpError::Transport(e)) if e.is_unreachable() => {
                    let mut o = TaskOutput::unreachable(e.to_string());
                    o.delegated_to = delegated_to;
                    return o;
                }
                Err(OpError::Failed { msg, result }) => OpOutcome {
                    result,
                    ..OpOutcome::failed(msg)
                },
                Err(e) => OpOutcome::failed(e.to_string()),
            };
            let outcome = self.change_inventory(outcome);
            let mut o = self.finish(render.as_ref(), t, outcome, vars);
            o.not_checked = o.skipped && ctx.check;
            // It read what a task check mode could not run would have made:
            // its own result is unknown too.
            if let Some(p) = check_t.as_ref().and_then(|c| c.unknown_seen()) {
                o = TaskOutput::skipped(&format!(
                    "reads {p}, which a task check mode could not run would make or change"
                ));
                o.not_checked = true;
            }
            o.delegated_to = delegated_to.clone();
            let Some(until) = &t.until else {
                return o;
            };
            o.result.insert("attempts".into(), attempts.into());
            o.attempts = Some(attempts);
            let mut uv = vars.clone();
            if let Some(r) = &t.register {
                uv.insert(r.clone(), Value::Object(o.result.clone()));
                crate::template::mark_data(&mut uv, r);
            }
            match render.eval_condition(until, &uv) {
                Ok(true) => return o,
                Ok(false) if attempts > retries || self.interrupted() => {
                    o.failed = true;
                    o.result.insert("failed".into(), true.into());
                    if o.msg.is_none() {
                        o.msg = Some(format!(
                            "`until: {until}` still false after {attempts} attempts"
                        ));
                    }
                    return o;
                }
                Ok(false) => {
                    self.warn(
                        Some(host),
                        format!(
                            "FAILED - RETRYING: {} ({} retries left)",
                            t.display_name(),
                            retries + 1 - attempts
                        ),
                    );
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return TaskOutput::failed(format!("until: {e}")),
            }
        }
    }
}
