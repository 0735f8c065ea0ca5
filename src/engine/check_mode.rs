//! Check mode's bookkeeping: whether a task runs in check mode, and which registered
//! results are unknown because check mode could not run the task that made them.

use crate::playbook::{Task, TaskKeywords};

use super::Engine;
use super::task::TaskOutput;
use super::var_use::task_uses_var;

impl Engine {
    /// Whether a task runs in check mode: its `check_mode:` keyword, else `--check`.
    pub(super) fn check_mode(&self, kw: &TaskKeywords) -> bool {
        kw.check_mode.unwrap_or(self.opts.check)
    }

    /// In check mode, a variable the task uses that a task check mode could
    /// not run registered (or set): its value is unknown, so the task is not
    /// checked either.
    pub(super) fn uses_unchecked(&self, host: &str, t: &Task, kw: &TaskKeywords) -> Option<String> {
        if !self.check_mode(kw) {
            return None;
        }
        let unchecked = self.unchecked_vars.lock().unwrap();
        let names = unchecked.get(host)?;
        let mut names: Vec<&String> = names.iter().collect();
        names.sort();
        names.into_iter().find(|n| task_uses_var(t, kw, n)).cloned()
    }

    /// Remember what a not-checked task would have registered or set; a task
    /// that ran registers a known value again.
    pub(super) fn track_unchecked(&self, host: &str, t: &Task, out: &TaskOutput) {
        let mut set: Vec<String> = t.register.iter().cloned().collect();
        if out.not_checked && t.op.trim_start_matches("ansible.builtin.") == "set_fact" {
            set.extend(t.args.keys().filter(|k| *k != "cacheable").cloned());
        }
        if set.is_empty() {
            return;
        }
        let mut all = self.unchecked_vars.lock().unwrap();
        let names = all.entry(host.to_string()).or_default();
        for n in set {
            if out.not_checked {
                names.insert(n);
            } else {
                names.remove(&n);
            }
        }
    }
}
