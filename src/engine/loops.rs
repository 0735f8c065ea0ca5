//! Loops: `loop:`/`with_*` items, `loop_control` (loop_var, index_var, extended, pause,
//! break_when), and the items' results gathered into one task result.

use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::ops::{Op, Render};
use crate::playbook::{Task, TaskKeywords, Vars};

use super::play_run::PlayRun;
use super::task::TaskOutput;
use super::{Engine, EventKind};

impl Engine {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_loop(
        &self,
        pr: &PlayRun<'_>,
        h: usize,
        t: &Task,
        kw: &TaskKeywords,
        op: &'static dyn Op,
        vars: &Vars,
        l: &Value,
    ) -> TaskOutput {
        let render = self.task_render(pr, h);
        let items = match render.render_value(l, vars) {
            Ok(Value::Array(a)) => a,
            Ok(Value::Null) => Vec::new(),
            Ok(other) => {
                return TaskOutput::failed(format!("loop needs a list, got {}", kind_of(&other)));
            }
            Err(e) => return TaskOutput::failed(format!("loop: {e}")),
        };
        let loop_var = if t.loop_var.is_empty() {
            "item".to_string()
        } else {
            t.loop_var.clone()
        };
        let pause = match &t.loop_pause {
            None => None,
            Some(p) => match render.render_value(p, vars) {
                Ok(v) => match v
                    .as_f64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                {
                    Some(secs) if secs > 0.0 => Some(Duration::from_secs_f64(secs)),
                    Some(_) => None,
                    None => {
                        return TaskOutput::failed(format!(
                            "loop_control.pause: {v} is not a number of seconds"
                        ));
                    }
                },
                Err(e) => return TaskOutput::failed(format!("loop_control.pause: {e}")),
            },
        };
        let no_log = kw.no_log.unwrap_or(false);
        let mut total = TaskOutput::default();
        let mut results = Vec::new();
        let n = items.len();
        for (i, item) in items.iter().enumerate() {
            if self.interrupted() {
                break;
            }
            if i > 0
                && let Some(p) = pause
            {
                tokio::time::sleep(p).await;
            }
            let item = item.clone();
            let item_start = Instant::now();
            let mut iv = vars.clone();
            iv.insert(loop_var.clone(), item.clone());
            iv.insert("ansible_loop_var".into(), loop_var.clone().into());
            if let Some(index_var) = &t.loop_index_var {
                iv.insert("ansible_index_var".into(), index_var.clone().into());
                iv.insert(index_var.clone(), i.into());
            }
            if t.loop_extended {
                let mut l = Map::new();
                l.insert("index".into(), (i + 1).into());
                l.insert("index0".into(), i.into());
                l.insert("first".into(), (i == 0).into());
                l.insert("last".into(), (i + 1 == n).into());
                l.insert("length".into(), n.into());
                l.insert("revindex".into(), (n - i).into());
                l.insert("revindex0".into(), (n - i - 1).into());
                if t.loop_extended_allitems.unwrap_or(true) {
                    l.insert("allitems".into(), Value::Array(items.clone()));
                }
                if i + 1 < n {
                    l.insert("nextitem".into(), items[i + 1].clone());
                }
                if i > 0 {
                    l.insert("previtem".into(), items[i - 1].clone());
                }
                iv.insert("ansible_loop".into(), Value::Object(l));
            }
            let mut o = match self.conditions(render.as_ref(), &kw.when, &iv) {
                Err(e) => TaskOutput::failed(format!("when: {e}")),
                Ok(false) => TaskOutput::skipped("Conditional result was False"),
                Ok(true) => self.run_item(pr, h, t, kw, op, &iv).await,
            };
            o.result.insert(loop_var.clone(), item.clone());
            o.result
                .insert("ansible_loop_var".into(), loop_var.clone().into());
            if let Some(index_var) = &t.loop_index_var {
                o.result.insert(index_var.clone(), i.into());
                o.result
                    .insert("ansible_index_var".into(), index_var.clone().into());
            }
            if let Some(l) = iv.get("ansible_loop").filter(|_| t.loop_extended) {
                o.result.insert("ansible_loop".into(), l.clone());
            }
            let label = match &t.loop_label {
                Some(lbl) => render
                    .render_value(&Value::String(lbl.clone()), &iv)
                    .unwrap_or_else(|_| Value::String(lbl.clone())),
                None => item.clone(),
            };
            let mut ev = self.host_result(&pr.names[h], t, &o, no_log, false, false, Some(label));
            ev.duration_secs = item_start.elapsed().as_secs_f64();
            ev.ignored = o.failed && kw.ignore_errors.unwrap_or(false);
            self.emit(EventKind::ItemResult(ev));
            total.changed |= o.changed;
            total.failed |= o.failed;
            total.not_checked |= o.not_checked;
            total.unreachable |= o.unreachable;
            total.facts.extend(std::mem::take(&mut o.facts));
            total.included.extend(std::mem::take(&mut o.included));
            if o.control.is_some() {
                total.control = o.control;
            }
            total.delegated_to = o.delegated_to.take();
            let unreachable = o.unreachable;
            let stop = if t.loop_break_when.is_empty() || unreachable {
                Ok(false)
            } else {
                if let Some(r) = &t.register {
                    iv.insert(r.clone(), Value::Object(o.result.clone()));
                    crate::template::mark_data(&mut iv, r);
                }
                self.conditions(render.as_ref(), &t.loop_break_when, &iv)
            };
            results.push(Value::Object(o.result));
            if unreachable {
                break;
            }
            match stop {
                Ok(false) => {}
                Ok(true) => break,
                Err(e) => {
                    total.failed = true;
                    self.warn(Some(&pr.names[h]), format!("loop_control.break_when: {e}"));
                    break;
                }
            }
        }
        total.skipped = results.is_empty()
            || results
                .iter()
                .all(|r| r.get("skipped").and_then(Value::as_bool) == Some(true));
        let mut result = Map::new();
        result.insert("changed".into(), total.changed.into());
        result.insert("failed".into(), total.failed.into());
        if total.failed {
            total.msg = Some("One or more items failed".into());
            result.insert("msg".into(), "One or more items failed".into());
        } else if total.skipped {
            total.msg = Some(if n == 0 {
                "No items in the list".into()
            } else {
                "All items skipped".into()
            });
            result.insert("skipped".into(), true.into());
        }
        result.insert("results".into(), Value::Array(results));
        total.result = result;
        total
    }
}

pub(super) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}
