//! One task on its hosts: `run_once`, `when`, the op's outcome turned into the task's
//! result (`changed_when`, `failed_when`, `register`), and its effects recorded
//! (counters, host state, facts, notifications, the event).

use std::sync::atomic::Ordering;
use std::time::Instant;

use futures::future::join_all;
use serde_json::{Map, Value};

use crate::ops::{self, Control, Diff, OpOutcome, Render};
use crate::playbook::{Task, TaskKeywords, Vars};

use super::play_run::PlayRun;
use super::{Engine, EventKind, HostResult, Outcome, Strategy, truncate};

pub(super) const NO_LOG_MSG: &str =
    "the output has been hidden due to the fact that 'no_log: true' was specified for this result";

/// What one task (all its loop items) did on one host.
#[derive(Debug, Default)]
pub(super) struct TaskOutput {
    pub(super) changed: bool,
    pub(super) failed: bool,
    pub(super) skipped: bool,
    pub(super) unreachable: bool,
    /// Check mode could not check it (a command it skipped, or a task using such a result).
    pub(super) not_checked: bool,
    pub(super) msg: Option<String>,
    pub(super) result: Map<String, Value>,
    pub(super) diff: Option<Diff>,
    pub(super) facts: Vars,
    pub(super) included: Vars,
    pub(super) control: Option<Control>,
    pub(super) attempts: Option<u32>,
    pub(super) delegated_to: Option<String>,
    pub(super) duration: f64,
}

impl TaskOutput {
    pub(super) fn skipped(msg: &str) -> Self {
        let mut result = Map::new();
        result.insert("changed".into(), false.into());
        result.insert("skipped".into(), true.into());
        result.insert("skip_reason".into(), msg.into());
        Self {
            skipped: true,
            msg: Some(msg.into()),
            result,
            ..Self::default()
        }
    }
    pub(super) fn failed(msg: String) -> Self {
        let mut result = Map::new();
        result.insert("changed".into(), false.into());
        result.insert("failed".into(), true.into());
        result.insert("msg".into(), msg.clone().into());
        Self {
            failed: true,
            msg: Some(msg),
            result,
            ..Self::default()
        }
    }
    pub(super) fn unreachable(msg: String) -> Self {
        let mut o = Self::failed(msg);
        o.failed = false;
        o.unreachable = true;
        o.result.insert("unreachable".into(), true.into());
        o
    }
    pub(super) fn outcome(&self) -> Outcome {
        if self.unreachable {
            Outcome::Unreachable
        } else if self.failed {
            Outcome::Failed
        } else if self.skipped {
            Outcome::Skipped
        } else if self.changed {
            Outcome::Changed
        } else {
            Outcome::Ok
        }
    }
}

impl Engine {
    /// Run one task on the given (active) hosts, then apply its effects.
    pub(super) async fn run_task(
        &self,
        pr: &PlayRun<'_>,
        t: &Task,
        kw: &TaskKeywords,
        rescuable: bool,
        active: Vec<usize>,
        handler: bool,
    ) {
        let run_once = kw.run_once.unwrap_or(false)
            || ops::lookup(&t.op).is_some_and(|op| op.bypass_host_loop());
        let targets: Vec<usize> = if run_once {
            active.iter().copied().take(1).collect()
        } else {
            active.clone()
        };
        let silent = ops::lookup(&t.op).is_some_and(|op| op.silent());
        if !silent {
            self.emit(EventKind::TaskStart {
                task: t.display_name(),
                op: t.op.clone(),
                loc: t.loc.to_string(),
                handler,
                hosts: targets.iter().map(|&h| pr.names[h].clone()).collect(),
            });
        }
        let outs = join_all(targets.iter().map(|&h| async move {
            let _permit = self.forks.acquire().await.expect("forks semaphore closed");
            let out = self.run_on_host(pr, t, kw, h).await;
            let control = out.control;
            let newly_failed = out.failed && !kw.ignore_errors.unwrap_or(false);
            let register = t
                .register
                .as_ref()
                .map(|r| (r.clone(), Value::Object(out.result.clone())));
            let facts = (out.facts.clone(), out.included.clone());
            if silent && !out.failed {
                if out.control == Some(Control::EndHost) {
                    pr.state(h).ended = true;
                }
            } else {
                self.apply(pr, t, kw, rescuable, h, out);
            }
            (control, newly_failed, register, facts)
        }))
        .await;
        if run_once {
            // The result of a run_once task is every host's result.
            if let Some((_, _, register, (facts, included))) = outs.first() {
                let mut all = self.facts.lock().unwrap();
                let mut all_included = self.included.lock().unwrap();
                for &h in active.iter().skip(1) {
                    let f = all.entry(pr.names[h].clone()).or_default();
                    if let Some((k, v)) = register {
                        f.insert(k.clone(), v.clone());
                    }
                    f.extend(facts.clone());
                    if !included.is_empty() {
                        all_included
                            .entry(pr.names[h].clone())
                            .or_default()
                            .extend(included.clone());
                    }
                }
            }
        }
        let any_failed = outs.iter().any(|o| o.1);
        if any_failed && kw.any_errors_fatal.unwrap_or(false) && !rescuable {
            self.warn(
                None,
                "any_errors_fatal: a host failed, ending the play for all hosts",
            );
            pr.ended.store(true, Ordering::SeqCst);
        }
        if let Some(pct) = pr.play.max_fail_percentage {
            let total = pr.names.len() as f64;
            let failed = (0..pr.names.len())
                .filter(|&h| {
                    let s = pr.state(h);
                    s.failed || s.unreachable
                })
                .count() as f64;
            if total > 0.0 && failed * 100.0 / total > pct && !pr.ended.load(Ordering::SeqCst) {
                self.warn(
                    None,
                    format!("max_fail_percentage {pct}% exceeded: ending the play"),
                );
                pr.ended.store(true, Ordering::SeqCst);
            }
        }
        let controls: Vec<Control> = outs.iter().filter_map(|o| o.0).collect();
        if controls.contains(&Control::EndPlay) {
            pr.ended.store(true, Ordering::SeqCst);
        }
        if controls.contains(&Control::FlushHandlers) && !handler {
            // Under `free`, each host flushes its own handlers when it gets there.
            let which: Vec<usize> = match self.opts.strategy {
                Strategy::Linear => (0..pr.names.len()).collect(),
                Strategy::Free => active.clone(),
            };
            Box::pin(self.flush_handlers(pr, &which)).await;
        }
    }

    /// Record a host's task result: counters, state, facts, notifications, event.
    pub(super) fn apply(
        &self,
        pr: &PlayRun<'_>,
        t: &Task,
        kw: &TaskKeywords,
        rescuable: bool,
        h: usize,
        out: TaskOutput,
    ) {
        let host = &pr.names[h];
        let ignore = kw.ignore_errors.unwrap_or(false);
        let mut rescued = false;
        {
            let mut stats = self.stats.lock().unwrap();
            let st = stats.entry(host.clone()).or_default();
            let mut s = pr.state(h);
            if out.unreachable {
                st.unreachable += 1;
                s.unreachable = true;
            } else if out.failed {
                if ignore {
                    st.ok += 1;
                    st.ignored += 1;
                    if out.changed {
                        st.changed += 1;
                    }
                } else if rescuable {
                    st.rescued += 1;
                    s.failed = true;
                    rescued = true;
                } else {
                    st.failed += 1;
                    s.failed = true;
                }
            } else if out.skipped {
                st.skipped += 1;
                if out.not_checked {
                    st.not_checked += 1;
                }
            } else {
                st.ok += 1;
                if out.changed {
                    st.changed += 1;
                    for n in &t.notify {
                        if !s.notified.contains(n) {
                            s.notified.push(n.clone());
                        }
                    }
                }
            }
            if out.control == Some(Control::EndHost) {
                s.ended = true;
            }
        }
        {
            let mut facts = self.facts.lock().unwrap();
            let f = facts.entry(host.clone()).or_default();
            if let Some(r) = &t.register {
                f.insert(r.clone(), Value::Object(out.result.clone()));
            }
            if !out.failed && !out.unreachable {
                f.extend(out.facts.clone());
                if !out.included.is_empty() {
                    self.included
                        .lock()
                        .unwrap()
                        .entry(host.clone())
                        .or_default()
                        .extend(out.included.clone());
                }
            }
            self.track_unchecked(host, t, &out);
            if rescued {
                f.insert(
                    "ansible_failed_result".into(),
                    Value::Object(out.result.clone()),
                );
                let mut task = Map::new();
                task.insert("name".into(), t.display_name().into());
                task.insert("action".into(), t.op.clone().into());
                f.insert("ansible_failed_task".into(), Value::Object(task));
            }
        }
        let no_log = kw.no_log.unwrap_or(false);
        let ev = self.host_result(host, t, &out, no_log, ignore && out.failed, rescued, None);
        self.emit(EventKind::HostResult(ev));
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn host_result(
        &self,
        host: &str,
        t: &Task,
        out: &TaskOutput,
        no_log: bool,
        ignored: bool,
        rescued: bool,
        item: Option<Value>,
    ) -> HostResult {
        let text = |k: &str| out.result.get(k).and_then(Value::as_str).map(truncate);
        HostResult {
            host: host.to_string(),
            task: t.display_name(),
            op: t.op.clone(),
            outcome: out.outcome(),
            changed: out.changed,
            ignored,
            rescued,
            not_checked: out.not_checked,
            duration_secs: out.duration,
            msg: if no_log {
                Some(NO_LOG_MSG.into())
            } else {
                out.msg.clone()
            },
            rc: if no_log {
                None
            } else {
                out.result.get("rc").and_then(Value::as_i64)
            },
            stdout: if no_log { None } else { text("stdout") },
            stderr: if no_log { None } else { text("stderr") },
            diff: if no_log { None } else { out.diff.clone() },
            item: if no_log { None } else { item },
            delegated_to: out.delegated_to.clone(),
            attempts: out.attempts,
            no_log,
        }
    }

    pub(super) fn conditions(
        &self,
        render: &dyn Render,
        conds: &[String],
        vars: &Vars,
    ) -> Result<bool, crate::template::TemplateError> {
        for c in conds {
            if !render.eval_condition(c, vars)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// One task on one host: `when`, the loop, and each item.
    pub(super) async fn run_on_host(
        &self,
        pr: &PlayRun<'_>,
        t: &Task,
        kw: &TaskKeywords,
        h: usize,
    ) -> TaskOutput {
        let start = Instant::now();
        let vars = self.task_vars(pr, h, t, kw);
        let Some(op) = ops::lookup(&t.op) else {
            return TaskOutput::failed(format!("{}: unknown op `{}`", t.loc, t.op));
        };
        if let Some(var) = self.uses_unchecked(&pr.names[h], t, kw) {
            let mut out = TaskOutput::skipped(&format!(
                "uses `{var}`, the result of a task check mode could not run"
            ));
            out.not_checked = true;
            return out;
        }
        let mut out = match &t.loop_ {
            None => match self.conditions(self.task_render(pr, h).as_ref(), &kw.when, &vars) {
                Err(e) => TaskOutput::failed(format!("when: {e}")),
                Ok(false) => TaskOutput::skipped("Conditional result was False"),
                Ok(true) => self.run_item(pr, h, t, kw, op, &vars).await,
            },
            Some(l) => self.run_loop(pr, h, t, kw, op, &vars, l).await,
        };
        out.duration = start.elapsed().as_secs_f64();
        out
    }

    /// Apply the inventory changes an op asked for (add_host, group_by): the task is
    /// changed when the inventory changed, failed when a change cannot be made.
    pub(super) fn change_inventory(&self, mut outcome: OpOutcome) -> OpOutcome {
        if outcome.failed {
            return outcome;
        }
        for c in std::mem::take(&mut outcome.inventory) {
            match self.hosts.change(&c) {
                Ok(true) => {
                    outcome.changed = true;
                    self.inv_epoch.fetch_add(1, Ordering::SeqCst);
                }
                Ok(false) => {}
                Err(e) => return OpOutcome::failed(e.to_string()),
            }
        }
        outcome
    }

    /// Turn an op's outcome into the task result: Ansible's keys, changed_when, failed_when.
    pub(super) fn finish(
        &self,
        render: &dyn Render,
        t: &Task,
        o: OpOutcome,
        vars: &Vars,
    ) -> TaskOutput {
        let mut result = o.result;
        result.insert("changed".into(), o.changed.into());
        result.insert("failed".into(), o.failed.into());
        if o.skipped {
            result.insert("skipped".into(), true.into());
        }
        if let Some(m) = &o.msg {
            result.entry("msg").or_insert_with(|| m.clone().into());
        }
        let mut out = TaskOutput {
            changed: o.changed,
            failed: o.failed,
            skipped: o.skipped,
            msg: o.msg,
            result,
            diff: o.diff,
            facts: o.facts,
            included: o.included_vars,
            control: o.control,
            ..TaskOutput::default()
        };
        if out.skipped || (t.changed_when.is_empty() && t.failed_when.is_empty()) {
            return out;
        }
        let mut cv = vars.clone();
        if let Some(r) = &t.register {
            cv.insert(r.clone(), Value::Object(out.result.clone()));
            crate::template::mark_data(&mut cv, r);
        }
        if !t.changed_when.is_empty() {
            match self.conditions(render, &t.changed_when, &cv) {
                Ok(c) => {
                    out.changed = c;
                    out.result.insert("changed".into(), c.into());
                }
                Err(e) => return TaskOutput::failed(format!("changed_when: {e}")),
            }
            if let Some(r) = &t.register {
                cv.insert(r.clone(), Value::Object(out.result.clone()));
                crate::template::mark_data(&mut cv, r);
            }
        }
        if !t.failed_when.is_empty() {
            match self.conditions(render, &t.failed_when, &cv) {
                Ok(f) => {
                    out.failed = f;
                    out.result.insert("failed".into(), f.into());
                    out.result.insert("failed_when_result".into(), f.into());
                    if !f {
                        out.msg = None;
                    } else if out.msg.is_none() {
                        out.msg = Some(format!("failed_when: {}", t.failed_when.join(" and ")));
                    }
                }
                Err(e) => return TaskOutput::failed(format!("failed_when: {e}")),
            }
        }
        out
    }
}
