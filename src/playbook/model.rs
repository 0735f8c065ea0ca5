//! The playbook model: what the loader produces and the engine runs.
//!
//! Values are `serde_json::Value` (ordered maps) everywhere, so variables,
//! op arguments and registered results share one representation. Every item
//! keeps the source position it came from, for errors and events.

use std::path::PathBuf;
use std::sync::Arc;

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::Value;

/// A variable mapping, in the order it was written.
pub type Vars = IndexMap<String, Value>;

/// Where something was written: file, 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Default)]
pub struct SourceLoc {
    pub file: Arc<PathBuf>,
    pub line: u32,
    pub col: u32,
}

impl std::fmt::Display for SourceLoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

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
    pub tags: Vec<String>,
    /// pre_tasks, role tasks, tasks, post_tasks: already in run order is NOT assumed;
    /// the engine runs `pre_tasks`, then `role_tasks`, then `tasks`, then `post_tasks`.
    pub pre_tasks: Vec<TaskItem>,
    /// Tasks of the play's roles, expanded in role order (each task knows its role).
    pub role_tasks: Vec<TaskItem>,
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
    pub environment: Vars,
    pub delegate_to: Option<String>,
    pub run_once: Option<bool>,
    pub no_log: Option<bool>,
    pub any_errors_fatal: Option<bool>,
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
