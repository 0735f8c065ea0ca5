//! The playbook model: what the loader produces and the engine runs.
//!
//! Values are `serde_json::Value` (ordered maps) everywhere, so variables,
//! op arguments and registered results share one representation. Every item
//! keeps the source position it came from, for errors and events.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

pub use crate::vars::Vars;
pub use crate::yaml::SourceLoc;

/// A loaded playbook: plays in order, with `import_playbook` already expanded.
#[derive(Debug, Clone, Serialize)]
pub struct Playbook {
    pub path: PathBuf,
    pub plays: Vec<Play>,
}

/// One play.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Play {
    pub name: Option<String>,
    /// Host pattern (`hosts:`), possibly a list joined with `:`.
    pub hosts: String,
    pub gather_facts: Option<bool>,
    pub vars: Vars,
    /// `vars_files`, already loaded (in order; later wins), with the file each came from.
    pub vars_files: Vec<(PathBuf, Vars)>,
    pub become_: Option<bool>,
    pub become_user: Option<String>,
    /// `serial`: batch sizes (numbers or percentages as written, e.g. "50%").
    pub serial: Vec<Value>,
    pub max_fail_percentage: Option<f64>,
    pub any_errors_fatal: bool,
    /// `check_mode:` for every task of the play (a task's or block's own wins).
    pub check_mode: Option<bool>,
    /// `environment:` for every task of the play (merged before blocks' and tasks').
    pub environment: Vec<Value>,
    pub tags: Vec<String>,
    /// pre_tasks, role tasks, tasks, post_tasks: already in run order is NOT assumed;
    /// the engine runs `pre_tasks`, then `role_tasks`, then `tasks`, then `post_tasks`.
    pub pre_tasks: Vec<TaskItem>,
    /// Tasks of the play's roles, expanded in role order (each task knows its role).
    pub role_tasks: Vec<TaskItem>,
    /// The roles `roles:` lists, in order: their defaults and vars are seen by every
    /// task of the play, as Ansible's (public) roles' are.
    pub roles: Vec<Arc<RoleContext>>,
    pub tasks: Vec<TaskItem>,
    pub post_tasks: Vec<TaskItem>,
    /// Handlers of the play and of its roles, in definition order.
    pub handlers: Vec<Task>,
    /// `experiment:` as written (the experiment stage defines its contents).
    pub experiment: Option<Value>,
    /// Where `experiment:`'s value was written.
    pub experiment_loc: Option<SourceLoc>,
    /// Directory of the playbook file the play came from (search paths for files/templates).
    pub base_dir: PathBuf,
    pub loc: SourceLoc,
}

/// A task, or a block of tasks with rescue/always.
#[derive(Debug, Clone, Serialize)]
#[allow(clippy::large_enum_variant)]
pub enum TaskItem {
    Task(Task),
    Block(Block),
}

/// `block:` / `rescue:` / `always:` with the keywords that apply to all of them.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Block {
    pub name: Option<String>,
    pub block: Vec<TaskItem>,
    pub rescue: Vec<TaskItem>,
    pub always: Vec<TaskItem>,
    /// Keywords set on the block (when, tags, become, vars, ignore_errors, ...), inherited by its tasks.
    pub keywords: TaskKeywords,
    pub loc: SourceLoc,
}

/// A role a task came from: its directory and its layers of variables.
#[derive(Debug, Clone, Serialize, Default)]
pub struct RoleContext {
    pub name: String,
    pub dir: PathBuf,
    /// `defaults/main.yml`: lowest precedence of all.
    pub defaults: Vars,
    /// `vars/main.yml`: above play vars.
    pub vars: Vars,
    /// Parameters given where the role was listed (`- role: x`, `vars:`).
    pub params: Vars,
}

/// Keywords a task (or block) may carry besides its op.
#[derive(Debug, Clone, Serialize, Default)]
pub struct TaskKeywords {
    /// Conditions, all must hold (a string or list in YAML). Raw Jinja expressions.
    pub when: Vec<String>,
    pub tags: Vec<String>,
    pub become_: Option<bool>,
    pub become_user: Option<String>,
    pub ignore_errors: Option<bool>,
    pub vars: Vars,
    /// `environment:` as Ansible keeps it: a list of mappings or templated strings that
    /// must render to mappings, merged in order (the play's come first).
    pub environment: Vec<Value>,
    pub delegate_to: Option<String>,
    pub run_once: Option<bool>,
    pub no_log: Option<bool>,
    pub any_errors_fatal: Option<bool>,
    /// `timeout:` in seconds: the task is killed and fails after this long.
    pub timeout: Option<f64>,
    /// `check_mode:` true runs the task in check mode even in a real run;
    /// false runs it for real even under `--check`.
    pub check_mode: Option<bool>,
}

/// One task: exactly one op with its arguments, plus keywords.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Task {
    pub name: Option<String>,
    /// Canonical op name, `ansible.builtin.` stripped (e.g. "copy", "command").
    pub op: String,
    /// The op's arguments: a mapping (free-form `k=v` already split; the free-form
    /// command string of `command`/`shell`/`raw` is kept under `_raw_params`, as Ansible does).
    pub args: Vars,
    pub keywords: TaskKeywords,
    /// `loop:` / `with_items:` (a list, or a Jinja string to render to a list).
    pub loop_: Option<Value>,
    pub loop_var: String,
    pub loop_label: Option<String>,
    /// `loop_control.index_var`: a variable holding the item's index (from 0).
    pub loop_index_var: Option<String>,
    /// `loop_control.extended`: `ansible_loop` (index, first, last, revindex, ...).
    pub loop_extended: bool,
    /// `loop_control.extended_allitems: false` leaves `ansible_loop.allitems` out.
    pub loop_extended_allitems: Option<bool>,
    /// `loop_control.pause`: seconds between items (a number, or a template rendering to one).
    pub loop_pause: Option<Value>,
    /// `loop_control.break_when`: conditions checked after each item; the loop stops when all hold.
    pub loop_break_when: Vec<String>,
    pub register: Option<String>,
    pub notify: Vec<String>,
    /// Handlers only: `listen:` topics.
    pub listen: Vec<String>,
    pub changed_when: Vec<String>,
    pub failed_when: Vec<String>,
    pub until: Option<String>,
    pub retries: Option<u32>,
    pub delay: Option<f64>,
    /// Set when the task came from a role.
    pub role: Option<Arc<RoleContext>>,
    pub loc: SourceLoc,
}

impl Task {
    /// The name shown to the user: `name:`, else the op and its free-form arguments.
    pub fn display_name(&self) -> String {
        if let Some(n) = &self.name {
            return match &self.role {
                Some(r) => format!("{} : {}", r.name, n),
                None => n.clone(),
            };
        }
        match self.args.get("_raw_params").and_then(Value::as_str) {
            Some(raw) => format!("{} {}", self.op, raw),
            None => self.op.clone(),
        }
    }
}

/// The model written back in Ansible's shape (what the loader reads), for
/// round-trip tests and tools: ops under their canonical names with their
/// canonical parameter names; keywords only when set.
pub mod shape {
    use serde_json::{Map, Value, json};

    use super::*;

    fn put<T: Serialize>(m: &mut Map<String, Value>, k: &str, v: &Option<T>) {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    }

    fn put_list(m: &mut Map<String, Value>, k: &str, v: &[String]) {
        if !v.is_empty() {
            m.insert(k.into(), json!(v));
        }
    }

    fn put_vars(m: &mut Map<String, Value>, k: &str, v: &Vars) {
        if !v.is_empty() {
            m.insert(k.into(), Value::Object(v.clone().into_iter().collect()));
        }
    }

    fn put_environment(m: &mut Map<String, Value>, env: &[Value]) {
        match env {
            [] => {}
            [one] => {
                m.insert("environment".into(), one.clone());
            }
            many => {
                m.insert("environment".into(), Value::Array(many.to_vec()));
            }
        }
    }

    fn keywords(m: &mut Map<String, Value>, k: &TaskKeywords) {
        put_list(m, "when", &k.when);
        put_list(m, "tags", &k.tags);
        put(m, "become", &k.become_);
        put(m, "become_user", &k.become_user);
        put(m, "ignore_errors", &k.ignore_errors);
        put_vars(m, "vars", &k.vars);
        put_environment(m, &k.environment);
        put(m, "delegate_to", &k.delegate_to);
        put(m, "run_once", &k.run_once);
        put(m, "no_log", &k.no_log);
        put(m, "any_errors_fatal", &k.any_errors_fatal);
    }

    pub fn task(t: &Task) -> Value {
        let mut m = Map::new();
        put(&mut m, "name", &t.name);
        m.insert(
            t.op.clone(),
            Value::Object(t.args.clone().into_iter().collect()),
        );
        keywords(&mut m, &t.keywords);
        put(&mut m, "loop", &t.loop_);
        let mut lc = Map::new();
        if t.loop_var != "item" {
            lc.insert("loop_var".into(), json!(t.loop_var));
        }
        put(&mut lc, "label", &t.loop_label);
        put(&mut lc, "index_var", &t.loop_index_var);
        if t.loop_extended {
            lc.insert("extended".into(), json!(true));
        }
        put(&mut lc, "extended_allitems", &t.loop_extended_allitems);
        put(&mut lc, "pause", &t.loop_pause);
        put_list(&mut lc, "break_when", &t.loop_break_when);
        if !lc.is_empty() {
            m.insert("loop_control".into(), Value::Object(lc));
        }
        put(&mut m, "register", &t.register);
        put_list(&mut m, "notify", &t.notify);
        put_list(&mut m, "listen", &t.listen);
        put_list(&mut m, "changed_when", &t.changed_when);
        put_list(&mut m, "failed_when", &t.failed_when);
        put(&mut m, "until", &t.until);
        put(&mut m, "retries", &t.retries);
        put(&mut m, "delay", &t.delay);
        Value::Object(m)
    }

    pub fn item(i: &TaskItem) -> Value {
        match i {
            TaskItem::Task(t) => task(t),
            TaskItem::Block(b) => {
                let mut m = Map::new();
                put(&mut m, "name", &b.name);
                m.insert("block".into(), items(&b.block));
                if !b.rescue.is_empty() {
                    m.insert("rescue".into(), items(&b.rescue));
                }
                if !b.always.is_empty() {
                    m.insert("always".into(), items(&b.always));
                }
                keywords(&mut m, &b.keywords);
                Value::Object(m)
            }
        }
    }

    pub fn items(v: &[TaskItem]) -> Value {
        Value::Array(v.iter().map(item).collect())
    }

    pub fn play(p: &Play) -> Value {
        let mut m = Map::new();
        put(&mut m, "name", &p.name);
        m.insert("hosts".into(), json!(p.hosts));
        put(&mut m, "gather_facts", &p.gather_facts);
        put_vars(&mut m, "vars", &p.vars);
        put(&mut m, "become", &p.become_);
        put(&mut m, "become_user", &p.become_user);
        if !p.serial.is_empty() {
            m.insert("serial".into(), Value::Array(p.serial.clone()));
        }
        put(&mut m, "max_fail_percentage", &p.max_fail_percentage);
        if p.any_errors_fatal {
            m.insert("any_errors_fatal".into(), json!(true));
        }
        put(&mut m, "check_mode", &p.check_mode);
        put_environment(&mut m, &p.environment);
        put_list(&mut m, "tags", &p.tags);
        for (k, v) in [
            ("pre_tasks", &p.pre_tasks),
            ("tasks", &p.tasks),
            ("post_tasks", &p.post_tasks),
        ] {
            if !v.is_empty() {
                m.insert(k.into(), items(v));
            }
        }
        if !p.handlers.is_empty() {
            m.insert(
                "handlers".into(),
                Value::Array(p.handlers.iter().map(task).collect()),
            );
        }
        put(&mut m, "experiment", &p.experiment);
        Value::Object(m)
    }

    pub fn playbook(pb: &Playbook) -> Value {
        Value::Array(pb.plays.iter().map(play).collect())
    }
}
