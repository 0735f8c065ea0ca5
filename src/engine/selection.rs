//! Which tasks run at all: `--tags`/`--skip-tags` and `--start-at-task`.

use crate::playbook::Task;

use super::Engine;

impl Engine {
    /// Whether `--start-at-task` lets this task run (and clears it once reached).
    pub(super) fn started(&self, t: &Task) -> bool {
        let mut pending = self.pending_start.lock().unwrap();
        match pending.as_deref() {
            None => true,
            Some(name) if t.name.as_deref() == Some(name) || t.display_name() == name => {
                *pending = None;
                true
            }
            Some(_) => false,
        }
    }

    /// Ansible's tag selection, `always` and `never` included.
    pub(super) fn tags_match(&self, task_tags: &[String]) -> bool {
        let has = |t: &str| task_tags.iter().any(|x| x == t);
        let untagged = task_tags.is_empty();
        let only: Vec<&str> = if self.opts.tags.is_empty() {
            vec!["all"]
        } else {
            self.opts.tags.iter().map(String::as_str).collect()
        };
        let skip: Vec<&str> = self.opts.skip_tags.iter().map(String::as_str).collect();
        let in_list = |list: &[&str]| {
            list.iter()
                .any(|l| has(l) || (untagged && *l == "untagged"))
        };
        let mut run = has("always")
            || (only.contains(&"all") && !has("never"))
            || in_list(&only)
            || (only.contains(&"tagged") && !untagged && !has("never"));
        if run && !skip.is_empty() {
            if skip.contains(&"all") {
                if !has("always") || skip.contains(&"always") {
                    run = false;
                }
            } else if in_list(&skip) || (skip.contains(&"tagged") && !untagged) {
                run = false;
            }
        }
        run
    }
}
