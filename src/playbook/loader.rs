//! Loads playbooks, roles and task files into the model, keeping positions.
//!
//! The loader never stops at the first mistake: it records a [`Problem`] and
//! goes on with what it can, so `ferry check` reports everything in one run.
//! Besides the model it records what the later checks need and the model has
//! no room for: where each template/expression uses which variable and which
//! names are in scope there, where each `notify` and `src:` was written, and
//! where each `hosts:` pattern was written.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use super::diag::Problem;
use super::model::*;
use crate::ops::schema::{self, ArgProblem, OpSchema};
use crate::template;
use crate::yaml::{self, Node, NodeKind};

/// Keys a play may have.
pub const PLAY_KEYS: &[&str] = &[
    "name",
    "hosts",
    "gather_facts",
    "vars",
    "vars_files",
    "become",
    "become_user",
    "serial",
    "max_fail_percentage",
    "any_errors_fatal",
    "check_mode",
    "environment",
    "pre_tasks",
    "tasks",
    "post_tasks",
    "handlers",
    "roles",
    "tags",
    "experiment",
];

/// Keys a task may have besides its op.
pub const TASK_KEYS: &[&str] = &[
    "name",
    "when",
    "loop",
    "with_items",
    "loop_control",
    "register",
    "notify",
    "listen",
    "tags",
    "become",
    "become_user",
    "ignore_errors",
    "changed_when",
    "failed_when",
    "retries",
    "delay",
    "until",
    "delegate_to",
    "run_once",
    "no_log",
    "environment",
    "vars",
    "args",
    "any_errors_fatal",
    "timeout",
    "check_mode",
];

/// Keys a block may have.
pub const BLOCK_KEYS: &[&str] = &[
    "name",
    "block",
    "rescue",
    "always",
    "when",
    "tags",
    "become",
    "become_user",
    "ignore_errors",
    "vars",
    "environment",
    "delegate_to",
    "run_once",
    "no_log",
    "any_errors_fatal",
    "timeout",
    "check_mode",
];

/// Keys of `include_tasks` / `import_tasks` / `include_role` / `import_role` tasks.
const INCLUDE_KEYS: &[&str] = &[
    "name",
    "include_tasks",
    "import_tasks",
    "include_role",
    "import_role",
    "when",
    "tags",
    "vars",
    "become",
    "become_user",
    "ignore_errors",
    "environment",
    "delegate_to",
    "run_once",
    "no_log",
    "any_errors_fatal",
    "timeout",
    "check_mode",
];

const LOOP_CONTROL_KEYS: &[&str] = &[
    "loop_var",
    "label",
    "index_var",
    "extended",
    "extended_allitems",
    "pause",
    "break_when",
];

/// A variable a template or expression uses, and the names in scope there.
#[derive(Debug, Clone)]
pub struct VarUse {
    pub name: String,
    pub loc: SourceLoc,
    /// Index of the play (in [`Loaded::play_scopes`]) the use belongs to.
    pub play: usize,
    /// Names defined locally: loop var, task/block vars, role vars.
    pub local: Arc<Vec<String>>,
}

/// What a play defines for the variable check.
#[derive(Debug, Clone, Default)]
pub struct PlayScope {
    /// The play's `hosts:` pattern as written.
    pub hosts: Option<String>,
    pub vars: HashSet<String>,
    /// Variables could come from somewhere the check cannot see (templated
    /// vars_files, include_vars without a static file): skip the undefined check.
    pub open: bool,
}

/// Everything the loader produced.
#[derive(Debug, Default)]
pub struct Loaded {
    pub playbooks: Vec<Playbook>,
    pub problems: Vec<Problem>,
    pub uses: Vec<VarUse>,
    pub play_scopes: Vec<PlayScope>,
    /// Names set at run time for every later task: `register`, `set_fact` keys, `include_vars name:`.
    pub runtime_vars: HashSet<String>,
    /// `hosts:` patterns as written.
    pub host_patterns: Vec<(String, SourceLoc)>,
    /// Hosts and groups `add_host` / `group_by` create at run time, as written
    /// (templates included): `hosts:` patterns naming them are not warned about.
    pub runtime_hosts: Vec<String>,
}

#[derive(Clone)]
struct TaskCtx {
    /// Directory relative task files are resolved against.
    dir: PathBuf,
    role: Option<Arc<RoleContext>>,
    handler: bool,
    local: Arc<Vec<String>>,
    play_dir: PathBuf,
}

struct PlayState {
    handler_names: HashSet<String>,
    /// Handlers of roles pulled in by include_role/import_role.
    role_handlers: Vec<Task>,
    notifies: Vec<(String, SourceLoc)>,
}

/// Loads playbooks; one per `ferry check`/`ferry run`.
pub struct Loader {
    out: Loaded,
    import_stack: Vec<PathBuf>,
    include_stack: Vec<PathBuf>,
    play_state: Option<PlayState>,
    play_index: usize,
    /// An `include_vars` whose names cannot be known before the run was seen.
    vars_open: bool,
    sources: HashMap<PathBuf, (Arc<String>, yaml::LineIndex)>,
    /// Template files already checked: the names they need (None: syntax error reported).
    template_cache: HashMap<PathBuf, Option<Vec<(String, SourceLoc)>>>,
}

fn canon(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

fn is_identifier(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

impl Default for Loader {
    fn default() -> Self {
        Self::new()
    }
}

impl Loader {
    pub fn new() -> Loader {
        Loader {
            out: Loaded::default(),
            import_stack: Vec::new(),
            include_stack: Vec::new(),
            play_state: None,
            play_index: 0,
            vars_open: false,
            sources: HashMap::new(),
            template_cache: HashMap::new(),
        }
    }

    /// Load every playbook; problems are collected, not returned early.
    pub fn load(mut self, paths: &[PathBuf]) -> Loaded {
        for p in paths {
            let pb = self.load_playbook(p, None);
            if let Some(pb) = pb {
                self.out.playbooks.push(pb);
            }
        }
        self.out
    }

    fn problem(&mut self, p: Problem) {
        self.out.problems.push(p);
    }

    fn parse(&mut self, path: &Path, from: Option<&SourceLoc>) -> Option<Vec<Node>> {
        match std::fs::read_to_string(path) {
            Ok(src) => {
                let src = Arc::new(src);
                self.sources.insert(
                    path.to_path_buf(),
                    (src.clone(), yaml::LineIndex::new(&src)),
                );
                match yaml::parse_str(&src, path) {
                    Ok(docs) => Some(docs),
                    Err(e) => {
                        let mut p = Problem::error(&e.loc(), e.message())
                            .label(e.label().unwrap_or_else(|| "here".into()))
                            .hint_opt(e.hint());
                        p.span_len = e.span_len();
                        self.problem(p);
                        None
                    }
                }
            }
            Err(e) => {
                let loc = from.cloned().unwrap_or(SourceLoc {
                    file: Arc::new(path.to_path_buf()),
                    line: 0,
                    col: 0,
                });
                self.problem(
                    Problem::error(&loc, format!("cannot read {}: {e}", path.display()))
                        .label("this file"),
                );
                None
            }
        }
    }

    /// The first document of a YAML file, or None (empty file: Some(Null)).
    fn parse_one(&mut self, path: &Path, from: Option<&SourceLoc>) -> Option<Node> {
        let docs = self.parse(path, from)?;
        Some(docs.into_iter().next().unwrap_or(Node {
            kind: NodeKind::Null,
            loc: SourceLoc {
                file: Arc::new(path.to_path_buf()),
                line: 1,
                col: 1,
            },
        }))
    }

    fn load_playbook(&mut self, path: &Path, from: Option<&SourceLoc>) -> Option<Playbook> {
        let key = canon(path);
        if let Some(pos) = self.import_stack.iter().position(|p| *p == key) {
            let chain: Vec<String> = self.import_stack[pos..]
                .iter()
                .chain(std::iter::once(&key))
                .map(|p| file_name(p))
                .collect();
            if let Some(loc) = from {
                self.problem(
                    Problem::error(
                        loc,
                        format!("circular import_playbook: {}", chain.join(" -> ")),
                    )
                    .label("imports a playbook that is already being imported")
                    .hint("remove the import that closes the cycle"),
                );
            }
            return None;
        }
        let root = self.parse_one(path, from)?;
        self.import_stack.push(key);
        let base_dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let mut plays = Vec::new();
        match &root.kind {
            NodeKind::Seq(items) => {
                for item in items {
                    self.load_play_or_import(item, &base_dir, &mut plays);
                }
            }
            NodeKind::Null => {}
            _ => self.problem(
                Problem::error(
                    &root.loc,
                    format!("a playbook is a list of plays, found {}", root.type_name()),
                )
                .label("expected `- hosts: ...`")
                .hint("start each play with `- ` at the left margin"),
            ),
        }
        self.import_stack.pop();
        Some(Playbook {
            path: path.to_path_buf(),
            plays,
        })
    }

    fn load_play_or_import(&mut self, node: &Node, base_dir: &Path, plays: &mut Vec<Play>) {
        let Some(entries) = node.as_map() else {
            self.problem(
                Problem::error(
                    &node.loc,
                    format!("a play is a mapping, found {}", node.type_name()),
                )
                .label("not a play"),
            );
            return;
        };
        let import = entries
            .iter()
            .find(|(k, _)| matches!(k.as_str().map(schema::canonical), Some("import_playbook")));
        if let Some((k, v)) = import {
            for (other, _) in entries {
                let name = other.key_text();
                if name != k.key_text()
                    && name != "name"
                    && name != "vars"
                    && name != "when"
                    && name != "tags"
                {
                    self.problem(
                        Problem::error(
                            &other.loc,
                            format!("unknown key `{name}` on import_playbook"),
                        )
                        .label("not allowed here")
                        .hint("an import_playbook entry takes `name` and the file name only"),
                    );
                }
            }
            let Some(file) = v.as_str() else {
                self.problem(
                    Problem::error(&v.loc, "import_playbook takes a file name")
                        .label("not a file name"),
                );
                return;
            };
            if template::is_template(file) {
                self.problem(
                    Problem::error(
                        &v.loc,
                        "import_playbook needs a file name without templates",
                    )
                    .label("templated")
                    .hint("imports are resolved before any variable exists"),
                );
                return;
            }
            let target = base_dir.join(file);
            if !target.exists() {
                self.problem(
                    Problem::error(
                        &v.loc,
                        format!("imported playbook {} does not exist", target.display()),
                    )
                    .label("no such file")
                    .hint("file names are relative to the importing playbook's directory"),
                );
                return;
            }
            if let Some(pb) = self.load_playbook(&target, Some(&v.loc)) {
                plays.extend(pb.plays);
            }
            return;
        }
        if let Some(play) = self.load_play(node, base_dir) {
            plays.push(play);
        }
    }

    fn unknown_key(&mut self, key: &Node, allowed: &[&str], what: &str) {
        let name = key.key_text();
        let suggestion = super::suggest(&name, allowed.iter().copied());
        let mut p =
            Problem::error(&key.loc, format!("unknown {what} key `{name}`")).label("unknown key");
        p = match suggestion {
            Some(s) => p.hint(format!("did you mean `{s}`?")),
            None => p.hint(format!("{what} keys are: {}", allowed.join(", "))),
        };
        self.problem(p);
    }

    fn load_play(&mut self, node: &Node, base_dir: &Path) -> Option<Play> {
        let entries = node.as_map()?;
        let play_index = self.out.play_scopes.len();
        self.play_index = play_index;
        self.out.play_scopes.push(PlayScope {
            open: self.vars_open,
            ..PlayScope::default()
        });
        self.play_state = Some(PlayState {
            handler_names: HashSet::new(),
            role_handlers: Vec::new(),
            notifies: Vec::new(),
        });
        let mut play = Play {
            base_dir: base_dir.to_path_buf(),
            loc: node.loc.clone(),
            ..Play::default()
        };
        let ctx = TaskCtx {
            dir: base_dir.to_path_buf(),
            role: None,
            handler: false,
            local: Arc::new(Vec::new()),
            play_dir: base_dir.to_path_buf(),
        };
        let mut saw_hosts = false;
        let mut sections: Vec<(&str, &Node)> = Vec::new();
        for (k, v) in entries {
            let key = k.key_text();
            match key.as_str() {
                "name" => {
                    play.name = self.scalar_string(k, v);
                    self.template_uses(v, &ctx);
                }
                "hosts" => {
                    saw_hosts = true;
                    let pattern = match &v.kind {
                        NodeKind::Seq(items) => Some(
                            items
                                .iter()
                                .filter_map(|i| i.scalar_text())
                                .collect::<Vec<_>>()
                                .join(":"),
                        ),
                        _ => self.scalar_string(k, v),
                    };
                    if let Some(p) = pattern {
                        self.out.host_patterns.push((p.clone(), v.loc.clone()));
                        self.out.play_scopes[play_index].hosts = Some(p.clone());
                        play.hosts = p;
                    }
                }
                "gather_facts" => play.gather_facts = self.boolean(k, v),
                "vars" => {
                    play.vars = self.vars_map(k, v);
                    let scope = &mut self.out.play_scopes[play_index];
                    scope.vars.extend(play.vars.keys().cloned());
                    for (_, val) in v.as_map().unwrap_or(&[]) {
                        self.template_uses(val, &ctx);
                    }
                }
                "vars_files" => play.vars_files = self.vars_files(k, v, base_dir),
                "become" => play.become_ = self.boolean(k, v),
                "become_user" => play.become_user = self.scalar_string(k, v),
                "serial" => {
                    play.serial = match &v.kind {
                        NodeKind::Seq(items) => items.iter().map(Node::to_value).collect(),
                        NodeKind::Int(_) | NodeKind::Str(_) => vec![v.to_value()],
                        _ => {
                            self.wrong_type(k, v, "a number, a percentage or a list of them");
                            Vec::new()
                        }
                    }
                }
                "max_fail_percentage" => match v.as_f64() {
                    Some(f) => play.max_fail_percentage = Some(f),
                    None => self.wrong_type(k, v, "a number"),
                },
                "any_errors_fatal" => play.any_errors_fatal = self.boolean(k, v).unwrap_or(false),
                "check_mode" => play.check_mode = self.boolean(k, v),
                "environment" => {
                    play.environment = self.vars_env(k, v);
                    self.template_uses(v, &ctx);
                }
                "tags" => play.tags = self.tags(k, v),
                "pre_tasks" | "tasks" | "post_tasks" | "handlers" | "roles" => sections.push((
                    PLAY_KEYS
                        .iter()
                        .find(|x| **x == key)
                        .copied()
                        .unwrap_or("tasks"),
                    v,
                )),
                "experiment" => {
                    play.experiment = Some(v.to_value());
                    play.experiment_loc = Some(v.loc.clone());
                }
                _ => self.unknown_key(k, PLAY_KEYS, "play"),
            }
        }
        let vf_keys: Vec<String> = play
            .vars_files
            .iter()
            .flat_map(|(_, v)| v.keys().cloned())
            .collect();
        self.out.play_scopes[play_index].vars.extend(vf_keys);
        if !saw_hosts && play.experiment.is_none() {
            self.problem(
                Problem::error(&node.loc, "play has no `hosts:`")
                    .label("this play")
                    .hint("add `hosts: all` (or a group name from the inventory)"),
            );
        }
        // Roles first: their variables are in scope for the play's tasks.
        for (_, v) in sections.iter().filter(|(s, _)| *s == "roles") {
            self.roles(v, &ctx, &mut play);
        }
        for (section, v) in sections {
            match section {
                "pre_tasks" => play.pre_tasks = self.task_list(v, &ctx),
                "tasks" => play.tasks = self.task_list(v, &ctx),
                "post_tasks" => play.post_tasks = self.task_list(v, &ctx),
                "handlers" => {
                    let hctx = TaskCtx {
                        handler: true,
                        ..ctx.clone()
                    };
                    let hs = self.task_list(v, &hctx);
                    flatten_tasks(hs, &mut play.handlers);
                }
                _ => {}
            }
        }
        if play.experiment.is_some()
            && (!play.tasks.is_empty() || !play.pre_tasks.is_empty() || !play.post_tasks.is_empty())
            && let Some(loc) = play.experiment_loc.clone()
        {
            self.problem(
                Problem::error(
                    &loc,
                    "a play carries either `experiment:` or tasks, not both",
                )
                .label("experiment here")
                .hint("move the tasks into a play of their own before this one"),
            );
        }
        // Handlers notified but not defined.
        if let Some(state) = self.play_state.take() {
            play.handlers.extend(state.role_handlers);
            for (name, loc) in state.notifies {
                if template::is_template(&name) || state.handler_names.contains(&name) {
                    continue;
                }
                let suggestion =
                    super::suggest(&name, state.handler_names.iter().map(String::as_str));
                let p = Problem::error(
                    &loc,
                    format!("notified handler `{name}` is not defined in this play"),
                )
                .label("no handler has this name or listens to it");
                let p = match suggestion {
                    Some(s) => p.hint(format!("did you mean `{s}`?")),
                    None => p.hint("define it under `handlers:` (by `name:` or `listen:`)"),
                };
                self.problem(p);
            }
        }
        Some(play)
    }

    fn wrong_type(&mut self, k: &Node, v: &Node, expected: &str) {
        self.problem(
            Problem::error(
                &v.loc,
                format!(
                    "`{}` must be {expected}, found {}",
                    k.key_text(),
                    v.type_name()
                ),
            )
            .label(v.type_name()),
        );
    }

    fn scalar_string(&mut self, k: &Node, v: &Node) -> Option<String> {
        match v.scalar_text() {
            Some(s) => Some(s),
            None => {
                self.wrong_type(k, v, "a string");
                None
            }
        }
    }

    fn boolean(&mut self, k: &Node, v: &Node) -> Option<bool> {
        match &v.kind {
            NodeKind::Bool(b) => Some(*b),
            NodeKind::Str(s) => match s.to_ascii_lowercase().as_str() {
                "yes" | "true" | "on" | "1" => Some(true),
                "no" | "false" | "off" | "0" => Some(false),
                _ => {
                    self.wrong_type(k, v, "a boolean (yes/no, true/false)");
                    None
                }
            },
            NodeKind::Int(0) => Some(false),
            NodeKind::Int(1) => Some(true),
            _ => {
                self.wrong_type(k, v, "a boolean (yes/no, true/false)");
                None
            }
        }
    }

    fn string_list(&mut self, k: &Node, v: &Node) -> Vec<String> {
        match &v.kind {
            NodeKind::Null => Vec::new(),
            NodeKind::Seq(items) => items
                .iter()
                .filter_map(|i| match i.scalar_text() {
                    Some(s) => Some(s),
                    None => {
                        self.wrong_type(k, i, "a string");
                        None
                    }
                })
                .collect(),
            _ => match v.scalar_text() {
                Some(s) => vec![s],
                None => {
                    self.wrong_type(k, v, "a string or a list of strings");
                    Vec::new()
                }
            },
        }
    }

    fn tags(&mut self, k: &Node, v: &Node) -> Vec<String> {
        let raw = self.string_list(k, v);
        raw.iter()
            .flat_map(|t| t.split(','))
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect()
    }

    /// `when:`-like conditions: a string, a boolean or a list of them.
    fn conditions(&mut self, k: &Node, v: &Node, ctx: &TaskCtx) -> Vec<String> {
        let items: Vec<&Node> = match &v.kind {
            NodeKind::Seq(items) => items.iter().collect(),
            _ => vec![v],
        };
        let mut out = Vec::new();
        for i in items {
            let text = match &i.kind {
                NodeKind::Bool(b) => (if *b { "True" } else { "False" }).to_string(),
                NodeKind::Str(s) => s.clone(),
                NodeKind::Int(n) => n.to_string(),
                _ => {
                    self.wrong_type(k, i, "a condition (a string, a boolean or a list of them)");
                    continue;
                }
            };
            if matches!(i.kind, NodeKind::Str(_)) {
                self.expression_uses(i, &text, ctx);
            }
            out.push(text);
        }
        out
    }

    fn vars_map(&mut self, k: &Node, v: &Node) -> Vars {
        let mut out = Vars::new();
        match &v.kind {
            NodeKind::Null => {}
            NodeKind::Map(entries) => {
                for (vk, vv) in entries {
                    let name = vk.key_text();
                    if !is_identifier(&name) {
                        self.problem(
                            Problem::error(&vk.loc, format!("`{name}` is not a valid variable name"))
                                .label("invalid name")
                                .hint("variable names are letters, digits and `_`, not starting with a digit"),
                        );
                        continue;
                    }
                    out.insert(name, vv.to_value());
                }
            }
            _ => self.wrong_type(k, v, "a mapping of variables"),
        }
        out
    }

    fn vars_files(&mut self, k: &Node, v: &Node, base_dir: &Path) -> Vec<(PathBuf, Vars)> {
        let items: Vec<&Node> = match &v.kind {
            NodeKind::Seq(items) => items.iter().collect(),
            NodeKind::Str(_) => vec![v],
            _ => {
                self.wrong_type(k, v, "a list of file names");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for i in items {
            let Some(name) = i.as_str() else {
                // Ansible's list-of-alternatives form: take it as opaque.
                self.out.play_scopes[self.play_index].open = true;
                continue;
            };
            if template::is_template(name) {
                self.out.play_scopes[self.play_index].open = true;
                continue;
            }
            let path = base_dir.join(name);
            if !path.exists() {
                self.problem(
                    Problem::error(
                        &i.loc,
                        format!("vars file {} does not exist", path.display()),
                    )
                    .label("no such file")
                    .hint("vars_files are relative to the playbook's directory"),
                );
                continue;
            }
            if let Some(doc) = self.parse_one(&path, Some(&i.loc)) {
                let vars = match &doc.kind {
                    NodeKind::Null => Vars::new(),
                    NodeKind::Map(_) => self.vars_map(&doc, &doc),
                    _ => {
                        self.problem(
                            Problem::error(
                                &doc.loc,
                                format!("a vars file is a mapping, found {}", doc.type_name()),
                            )
                            .label("not a mapping"),
                        );
                        Vars::new()
                    }
                };
                out.push((path, vars));
            }
        }
        out
    }

    // ----- roles

    fn roles(&mut self, v: &Node, ctx: &TaskCtx, play: &mut Play) {
        let Some(items) = v.as_seq() else {
            if !v.is_null() {
                self.problem(
                    Problem::error(
                        &v.loc,
                        format!("`roles` is a list, found {}", v.type_name()),
                    )
                    .label("not a list"),
                );
            }
            return;
        };
        for item in items {
            let (name_node, params, keywords) = match &item.kind {
                NodeKind::Str(_) => (item, Vars::new(), TaskKeywords::default()),
                NodeKind::Map(entries) => {
                    let Some(n) = item.get("role").or_else(|| item.get("name")) else {
                        self.problem(
                            Problem::error(&item.loc, "role entry without `role:`")
                                .label("which role?")
                                .hint("write `- role: NAME` or just `- NAME`"),
                        );
                        continue;
                    };
                    let mut params = Vars::new();
                    let mut kw = TaskKeywords::default();
                    for (k, val) in entries {
                        match k.key_text().as_str() {
                            "role" | "name" => {}
                            "vars" => params.extend(self.vars_map(k, val)),
                            "tags" => kw.tags = self.tags(k, val),
                            "when" => kw.when = self.conditions(k, val, ctx),
                            "become" => kw.become_ = self.boolean(k, val),
                            "become_user" => kw.become_user = self.scalar_string(k, val),
                            other => {
                                if is_identifier(other) {
                                    params.insert(other.to_string(), val.to_value());
                                } else {
                                    self.unknown_key(
                                        k,
                                        &["role", "vars", "tags", "when", "become", "become_user"],
                                        "role",
                                    );
                                }
                            }
                        }
                    }
                    (n, params, kw)
                }
                _ => {
                    self.problem(
                        Problem::error(&item.loc, "a role entry is a name or a mapping")
                            .label("not a role"),
                    );
                    continue;
                }
            };
            let Some(name) = name_node.as_str() else {
                self.problem(
                    Problem::error(&name_node.loc, "a role name is a string").label("not a name"),
                );
                continue;
            };
            let Some((role, tasks, handlers)) = self.load_role(name, &name_node.loc, ctx, params)
            else {
                continue;
            };
            let has_kw = !keywords.when.is_empty()
                || !keywords.tags.is_empty()
                || keywords.become_.is_some()
                || keywords.become_user.is_some();
            if has_kw {
                play.role_tasks.push(TaskItem::Block(Block {
                    name: Some(format!("role {}", role.name)),
                    block: tasks,
                    keywords,
                    loc: name_node.loc.clone(),
                    ..Block::default()
                }));
            } else {
                play.role_tasks.extend(tasks);
            }
            if let Some(state) = self.play_state.as_mut() {
                for h in &handlers {
                    state.handler_names.extend(handler_names(h));
                }
            }
            play.handlers.extend(handlers);
        }
    }

    fn role_dir(&self, name: &str, play_dir: &Path) -> Option<PathBuf> {
        [play_dir.join("roles").join(name), play_dir.join(name)]
            .into_iter()
            .find(|p| {
                p.join("tasks").is_dir()
                    || p.join("handlers").is_dir()
                    || p.join("defaults").is_dir()
                    || p.join("vars").is_dir()
            })
    }

    fn role_file(dir: &Path, sub: &str) -> Option<PathBuf> {
        ["main.yml", "main.yaml"]
            .iter()
            .map(|f| dir.join(sub).join(f))
            .find(|p| p.is_file())
    }

    #[allow(clippy::type_complexity)]
    fn load_role(
        &mut self,
        name: &str,
        loc: &SourceLoc,
        ctx: &TaskCtx,
        params: Vars,
    ) -> Option<(Arc<RoleContext>, Vec<TaskItem>, Vec<Task>)> {
        let Some(dir) = self.role_dir(name, &ctx.play_dir) else {
            self.problem(
                Problem::error(loc, format!("role `{name}` not found"))
                    .label("no such role")
                    .hint(format!(
                        "roles are looked up in {}/roles/{name} and {}/{name}",
                        ctx.play_dir.display(),
                        ctx.play_dir.display()
                    )),
            );
            return None;
        };
        let mut var_docs: Vec<Node> = Vec::new();
        let mut load_vars = |this: &mut Self, sub: &str| -> Vars {
            match Self::role_file(&dir, sub).and_then(|p| this.parse_one(&p, Some(loc))) {
                Some(doc) if doc.as_map().is_some() => {
                    let vars = this.vars_map(&doc, &doc);
                    var_docs.push(doc);
                    vars
                }
                Some(doc) if !doc.is_null() => {
                    this.problem(
                        Problem::error(
                            &doc.loc,
                            format!("role {sub} file is a mapping, found {}", doc.type_name()),
                        )
                        .label("not a mapping"),
                    );
                    Vars::new()
                }
                _ => Vars::new(),
            }
        };
        let defaults = load_vars(self, "defaults");
        let vars = load_vars(self, "vars");
        let mut local: Vec<String> = ctx.local.as_ref().clone();
        local.extend(defaults.keys().cloned());
        local.extend(vars.keys().cloned());
        local.extend(params.keys().cloned());
        local.extend(["role_path".to_string(), "role_name".to_string()]);
        let role = Arc::new(RoleContext {
            name: name.to_string(),
            dir: dir.clone(),
            defaults,
            vars,
            params,
        });
        let rctx = TaskCtx {
            dir: dir.join("tasks"),
            role: Some(role.clone()),
            handler: false,
            local: Arc::new(local),
            play_dir: ctx.play_dir.clone(),
        };
        // Defaults and vars are templates too: what their values need, the
        // role's tasks and templates need when they use them.
        for doc in &var_docs {
            for (_, v) in doc.as_map().unwrap_or(&[]) {
                self.template_uses(v, &rctx);
            }
        }
        let mut tasks = Vec::new();
        if let Some(p) = Self::role_file(&dir, "tasks") {
            tasks = self.task_file(&p, loc, &rctx);
        }
        let mut handlers = Vec::new();
        if let Some(p) = Self::role_file(&dir, "handlers") {
            let hctx = TaskCtx {
                dir: dir.join("handlers"),
                handler: true,
                ..rctx.clone()
            };
            let hs = self.task_file(&p, loc, &hctx);
            flatten_tasks(hs, &mut handlers);
        }
        Some((role, tasks, handlers))
    }

    /// Load a task file (include/import/role), detecting include cycles.
    fn task_file(&mut self, path: &Path, from: &SourceLoc, ctx: &TaskCtx) -> Vec<TaskItem> {
        let key = canon(path);
        if let Some(pos) = self.include_stack.iter().position(|p| *p == key) {
            let chain: Vec<String> = self.include_stack[pos..]
                .iter()
                .chain(std::iter::once(&key))
                .map(|p| file_name(p))
                .collect();
            self.problem(
                Problem::error(from, format!("circular include: {}", chain.join(" -> ")))
                    .label("includes a file that is already being included")
                    .hint("remove the include that closes the cycle"),
            );
            return Vec::new();
        }
        let Some(doc) = self.parse_one(path, Some(from)) else {
            return Vec::new();
        };
        self.include_stack.push(key);
        let fctx = TaskCtx {
            dir: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
            ..ctx.clone()
        };
        let out = match &doc.kind {
            NodeKind::Null => Vec::new(),
            _ => self.task_list(&doc, &fctx),
        };
        self.include_stack.pop();
        out
    }

    // ----- tasks

    fn task_list(&mut self, v: &Node, ctx: &TaskCtx) -> Vec<TaskItem> {
        let items = match &v.kind {
            NodeKind::Null => return Vec::new(),
            NodeKind::Seq(items) => items,
            _ => {
                self.problem(
                    Problem::error(
                        &v.loc,
                        format!("a task list is a list, found {}", v.type_name()),
                    )
                    .label("expected `- name: ...`")
                    .hint("start each task with `- `"),
                );
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for item in items {
            if item.as_map().is_none() {
                self.problem(
                    Problem::error(
                        &item.loc,
                        format!("a task is a mapping, found {}", item.type_name()),
                    )
                    .label("not a task")
                    .hint(
                        "a task looks like `- name: ...` followed by one op, e.g. `command: ...`",
                    ),
                );
                continue;
            }
            if item.get("block").is_some() {
                if let Some(b) = self.block(item, ctx) {
                    out.push(TaskItem::Block(b));
                }
                continue;
            }
            let include = item.as_map().unwrap_or(&[]).iter().find(|(k, _)| {
                matches!(
                    k.as_str().map(schema::canonical),
                    Some("include_tasks" | "import_tasks" | "include_role" | "import_role")
                )
            });
            if let Some((k, v)) = include {
                if let Some(b) = self.include(item, k, v, ctx) {
                    out.push(TaskItem::Block(b));
                }
                continue;
            }
            if let Some(t) = self.task(item, ctx) {
                out.push(TaskItem::Task(t));
            }
        }
        out
    }

    /// Keywords shared by tasks, blocks and includes; returns false when the key is not one.
    fn keyword(&mut self, k: &Node, v: &Node, kw: &mut TaskKeywords, ctx: &TaskCtx) -> bool {
        match k.key_text().as_str() {
            "when" => kw.when = self.conditions(k, v, ctx),
            "tags" => kw.tags = self.tags(k, v),
            "become" => kw.become_ = self.boolean(k, v),
            "become_user" => {
                kw.become_user = self.scalar_string(k, v);
                self.template_uses(v, ctx);
            }
            "ignore_errors" => kw.ignore_errors = self.boolean(k, v),
            "vars" => {
                kw.vars = self.vars_map(k, v);
                for (_, val) in v.as_map().unwrap_or(&[]) {
                    self.template_uses(val, ctx);
                }
            }
            "environment" => {
                kw.environment = self.vars_env(k, v);
                self.template_uses(v, ctx);
            }
            "delegate_to" => {
                kw.delegate_to = self.scalar_string(k, v);
                self.template_uses(v, ctx);
            }
            "run_once" => kw.run_once = self.boolean(k, v),
            "no_log" => kw.no_log = self.boolean(k, v),
            "any_errors_fatal" => kw.any_errors_fatal = self.boolean(k, v),
            "check_mode" => kw.check_mode = self.boolean(k, v),
            // Ansible's task timeout (seconds): the command is killed, the task fails.
            "timeout" => match v.as_f64() {
                Some(f) if f > 0.0 => kw.timeout = Some(f),
                _ => self.wrong_type(k, v, "a positive number of seconds"),
            },
            _ => return false,
        }
        true
    }

    /// `environment:`: a mapping, a template that renders to one, or a list of those.
    fn vars_env(&mut self, k: &Node, v: &Node) -> Vec<Value> {
        let items = match &v.kind {
            NodeKind::Seq(items) => items.iter().collect(),
            NodeKind::Null => Vec::new(),
            _ => vec![v],
        };
        let mut out = Vec::new();
        for item in items {
            match &item.kind {
                NodeKind::Map(_) => out.push(item.to_value()),
                NodeKind::Str(s) if s.contains("{{") => out.push(item.to_value()),
                NodeKind::Null => {}
                _ => self.wrong_type(
                    k,
                    item,
                    "a mapping of environment variables (or a template that gives one)",
                ),
            }
        }
        out
    }

    /// The names a node's `vars:` defines, added to the local scope.
    fn with_local_vars(ctx: &TaskCtx, node: &Node) -> TaskCtx {
        let mut c = ctx.clone();
        if let Some(v) = node.get("vars").and_then(Node::as_map) {
            let mut l = ctx.local.as_ref().clone();
            l.extend(v.iter().map(|(k, _)| k.key_text()));
            c.local = Arc::new(l);
        }
        c
    }

    fn block(&mut self, node: &Node, ctx: &TaskCtx) -> Option<Block> {
        let ctx = &Self::with_local_vars(ctx, node);
        let mut b = Block {
            loc: node.loc.clone(),
            ..Block::default()
        };
        for (k, v) in node.as_map()? {
            let key = k.key_text();
            match key.as_str() {
                "name" => b.name = self.scalar_string(k, v),
                "block" => b.block = self.task_list(v, ctx),
                "rescue" => b.rescue = self.task_list(v, ctx),
                "always" => b.always = self.task_list(v, ctx),
                _ => {
                    if !self.keyword(k, v, &mut b.keywords, ctx) {
                        self.unknown_key(k, BLOCK_KEYS, "block");
                    }
                }
            }
        }
        Some(b)
    }

    fn include(&mut self, node: &Node, key: &Node, v: &Node, ctx: &TaskCtx) -> Option<Block> {
        let ctx = &Self::with_local_vars(ctx, node);
        let op = schema::canonical(key.as_str().unwrap_or("")).to_string();
        let mut b = Block {
            loc: node.loc.clone(),
            name: Some(op.clone()),
            ..Block::default()
        };
        for (k, val) in node.as_map()? {
            let name = k.key_text();
            if name == key.key_text() {
                continue;
            }
            if name == "name" {
                b.name = self.scalar_string(k, val);
                continue;
            }
            if !self.keyword(k, val, &mut b.keywords, ctx) {
                if ["loop", "with_items"].contains(&name.as_str()) {
                    self.problem(
                        Problem::error(&k.loc, format!("a loop over `{op}` is not supported"))
                            .label("loop here")
                            .hint("put the loop on the tasks inside the included file"),
                    );
                } else {
                    self.unknown_key(k, INCLUDE_KEYS, &op);
                }
            }
        }
        // The file or role name: a string, or a mapping with `file:` / `name:`.
        let (target, target_node) = match &v.kind {
            NodeKind::Str(s) => (s.clone(), v),
            NodeKind::Map(_) => {
                let field = if op.ends_with("_role") {
                    "name"
                } else {
                    "file"
                };
                match v.get(field) {
                    Some(n) if n.as_str().is_some() => {
                        (n.as_str().unwrap_or_default().to_string(), n)
                    }
                    _ => {
                        self.problem(
                            Problem::error(&v.loc, format!("`{op}` needs `{field}:`"))
                                .label(format!("no `{field}:`")),
                        );
                        return None;
                    }
                }
            }
            _ => {
                self.problem(
                    Problem::error(
                        &v.loc,
                        format!("`{op}` takes a name, found {}", v.type_name()),
                    )
                    .label("not a name"),
                );
                return None;
            }
        };
        if template::is_template(&target) {
            self.problem(
                Problem::error(
                    &target_node.loc,
                    format!("`{op}` needs a name without templates"),
                )
                .label("templated")
                .hint("ferry resolves includes when loading, before any variable exists"),
            );
            return None;
        }
        if op.ends_with("_role") {
            let (_, tasks, handlers) =
                self.load_role(&target, &target_node.loc, ctx, Vars::new())?;
            // Handlers of an included role become the play's handlers.
            if let Some(state) = self.play_state.as_mut() {
                for h in &handlers {
                    for n in handler_names(h) {
                        state.handler_names.insert(n);
                    }
                }
                state.role_handlers.extend(handlers);
            }
            b.block = tasks;
            return Some(b);
        }
        let candidates = [ctx.dir.join(&target), ctx.play_dir.join(&target)];
        let Some(path) = candidates.iter().find(|p| p.is_file()) else {
            self.problem(
                Problem::error(
                    &target_node.loc,
                    format!("task file {target} does not exist"),
                )
                .label("no such file")
                .hint(format!(
                    "looked in {} and {}",
                    ctx.dir.display(),
                    ctx.play_dir.display()
                )),
            );
            return None;
        };
        b.block = self.task_file(path, &target_node.loc, ctx);
        Some(b)
    }

    fn task(&mut self, node: &Node, ctx: &TaskCtx) -> Option<Task> {
        let entries = node.as_map()?;
        let mut task = Task {
            loc: node.loc.clone(),
            loop_var: "item".into(),
            role: ctx.role.clone(),
            ..Task::default()
        };
        // Find the op key first.
        let mut op_keys: Vec<(&Node, &Node, &'static OpSchema)> = Vec::new();
        let mut unknown: Vec<&Node> = Vec::new();
        for (k, v) in entries {
            let name = k.key_text();
            if TASK_KEYS.contains(&name.as_str()) {
                continue;
            }
            match schema::lookup(&name) {
                Some(s) => op_keys.push((k, v, s)),
                None => unknown.push(k),
            }
        }
        if op_keys.len() > 1 {
            let names: Vec<String> = op_keys.iter().map(|(k, _, _)| k.key_text()).collect();
            self.problem(
                Problem::error(
                    &op_keys[1].0.loc,
                    format!(
                        "a task has exactly one op, this one has {}: {}",
                        names.len(),
                        names.join(", ")
                    ),
                )
                .label("second op")
                .hint("split it into one task per op"),
            );
        }
        let first_op = op_keys.first().map(|(_, _, s)| *s);
        let mut misplaced_params = false;
        for k in unknown {
            let name = k.key_text();
            if let Some(s) = first_op
                && s.param(&name).is_some()
            {
                self.problem(
                    Problem::error(
                        &k.loc,
                        format!("`{name}` is a parameter of `{}`, not a task key", s.name),
                    )
                    .label("not a task key")
                    .hint(format!("indent it under `{}:`", s.name)),
                );
                misplaced_params = true;
                continue;
            }
            let kw_suggestion = super::suggest(&name, TASK_KEYS.iter().copied());
            let op_suggestion = super::suggest(schema::canonical(&name), schema::op_names());
            let (what, hint) = match (kw_suggestion, op_suggestion, first_op.is_some()) {
                (Some(s), _, true) | (Some(s), None, false) => {
                    ("unknown task key", Some(format!("did you mean `{s}`?")))
                }
                (_, Some(s), false) => ("unknown op", Some(format!("did you mean `{s}`?"))),
                (None, _, true) => (
                    "unknown task key",
                    Some(format!("task keys are: {}", TASK_KEYS.join(", "))),
                ),
                (_, _, false) => (
                    "unknown op",
                    Some("`ferry check` knows the ops listed in the README".to_string()),
                ),
            };
            self.problem(
                Problem::error(&k.loc, format!("{what} `{name}`"))
                    .label(if what == "unknown op" {
                        "unknown op"
                    } else {
                        "unknown key"
                    })
                    .hint_opt(hint),
            );
        }
        let Some((op_key, op_val, op_schema)) = op_keys.first().copied() else {
            if entries
                .iter()
                .all(|(k, _)| TASK_KEYS.contains(&k.key_text().as_str()))
            {
                self.problem(
                    Problem::error(&node.loc, "task has no op")
                        .label("this task")
                        .hint("add one op, e.g. `command: ...`, `copy: ...`, `debug: ...`"),
                );
            }
            return None;
        };
        task.op = op_schema.name.to_string();
        let ctx = &{
            let mut c = Self::with_local_vars(ctx, node);
            let lc = node.get("loop_control");
            let loop_var = lc
                .and_then(|lc| lc.get("loop_var"))
                .and_then(Node::as_str)
                .unwrap_or("item");
            if node.get("loop").is_some() || node.get("with_items").is_some() {
                let mut l = c.local.as_ref().clone();
                l.push(loop_var.to_string());
                if let Some(iv) = lc.and_then(|lc| lc.get("index_var")).and_then(Node::as_str) {
                    l.push(iv.to_string());
                }
                l.push("ansible_loop".into());
                c.local = Arc::new(l);
            }
            c
        };
        // Arguments: the op's value, then `args:` under it.
        let mut arg_locs: HashMap<String, SourceLoc> = HashMap::new();
        let mut args = self.op_args(op_key, op_val, op_schema, &mut arg_locs);
        if let Some((ak, av)) = node.get_entry("args") {
            match av.as_map() {
                Some(entries) => {
                    for (k, v) in entries {
                        let name = k.key_text();
                        arg_locs
                            .entry(name.clone())
                            .or_insert_with(|| k.loc.clone());
                        args.entry(name).or_insert_with(|| v.to_value());
                    }
                }
                None => self.wrong_type(ak, av, "a mapping of arguments"),
            }
        }
        for (k, problem) in op_schema.validate(&args) {
            // Parameters written at task level were reported already; do not
            // report them again as missing.
            if misplaced_params
                && matches!(
                    problem,
                    ArgProblem::MissingRequired { .. } | ArgProblem::MissingOneOf { .. }
                )
            {
                continue;
            }
            let loc = k
                .as_ref()
                .and_then(|k| arg_locs.get(k).cloned())
                .unwrap_or_else(|| op_key.loc.clone());
            let mut p = Problem::error(&loc, format!("{}: {problem}", op_schema.name));
            p = match &problem {
                ArgProblem::Unknown { suggestion, .. } => {
                    p.label("unsupported").hint(match suggestion {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!(
                            "`{}` takes: {}",
                            op_schema.name,
                            op_schema
                                .params
                                .iter()
                                .map(|p| p.name)
                                .filter(|n| *n != "_raw_params")
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    })
                }
                ArgProblem::MissingRequired { name } => {
                    p.label("in this op").hint(format!("add `{name}:`"))
                }
                ArgProblem::MissingOneOf { names } => p
                    .label("in this op")
                    .hint(format!("add one of: {}", names.join(", "))),
                ArgProblem::MutuallyExclusive { .. } => {
                    p.label("conflicts").hint("keep only one of them")
                }
                ArgProblem::WrongType { .. } => p.label("wrong type"),
                ArgProblem::BadChoice { .. } => p.label("not a valid choice"),
                ArgProblem::NoFreeForm => p.label("free-form string").hint(format!(
                    "write the arguments as `key: value` under `{}:`",
                    op_schema.name
                )),
            };
            self.problem(p);
        }
        task.args = op_schema.canonical_args(&args);
        // Template uses in the arguments.
        match &op_val.kind {
            NodeKind::Str(s) => self.string_uses(op_val, s, ctx),
            _ => self.template_uses(op_val, ctx),
        }
        if let Some(av) = node.get("args") {
            self.template_uses(av, ctx);
        }
        // set_fact/register/include_vars define names for later tasks.
        if task.op == "set_fact" {
            self.out
                .runtime_vars
                .extend(task.args.keys().filter(|k| *k != "cacheable").cloned());
        }
        if task.op == "include_vars" {
            match task.args.get("name").and_then(Value::as_str) {
                Some(n) => {
                    self.out.runtime_vars.insert(n.to_string());
                }
                None => match include_vars_keys(&task, ctx) {
                    Some(keys) => self.out.runtime_vars.extend(keys),
                    None => {
                        // Names unknown until run time, for this play and every later one.
                        self.vars_open = true;
                        let i = self.play_index;
                        if let Some(scope) = self.out.play_scopes.get_mut(i) {
                            scope.open = true;
                        }
                    }
                },
            }
        }
        if task.op == "add_host" {
            // The host and its groups exist from then on; its other keys are host vars.
            for (k, v) in &task.args {
                match k.as_str() {
                    "name" => self.out.runtime_hosts.extend(
                        v.as_str()
                            .map(|n| n.split(':').next().unwrap_or(n).to_string()),
                    ),
                    "groups" => match v {
                        Value::Array(a) => self
                            .out
                            .runtime_hosts
                            .extend(a.iter().filter_map(Value::as_str).map(str::to_string)),
                        Value::String(s) => self
                            .out
                            .runtime_hosts
                            .extend(s.split(',').map(|g| g.trim().to_string())),
                        _ => {}
                    },
                    "_raw_params" => {}
                    _ => {
                        self.out.runtime_vars.insert(k.clone());
                    }
                }
            }
        }
        if task.op == "group_by" {
            for k in ["key", "parents"] {
                match task.args.get(k) {
                    Some(Value::String(s)) => self.out.runtime_hosts.push(s.replace(' ', "-")),
                    Some(Value::Array(a)) => self.out.runtime_hosts.extend(
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(|s| s.replace(' ', "-")),
                    ),
                    _ => {}
                }
            }
        }
        for (k, v) in entries {
            let key = k.key_text();
            if std::ptr::eq(k, op_key) || key == "args" {
                continue;
            }
            if !TASK_KEYS.contains(&key.as_str()) {
                continue;
            }
            if self.keyword(k, v, &mut task.keywords, ctx) {
                continue;
            }
            match key.as_str() {
                "name" => {
                    task.name = self.scalar_string(k, v);
                    self.template_uses(v, ctx);
                }
                "loop" | "with_items" => {
                    if node.get("loop").is_some()
                        && node.get("with_items").is_some()
                        && key == "with_items"
                    {
                        self.problem(
                            Problem::error(&k.loc, "`loop` and `with_items` together")
                                .label("second loop")
                                .hint("keep one of them"),
                        );
                    }
                    match &v.kind {
                        NodeKind::Seq(_) | NodeKind::Str(_) => {
                            task.loop_ = Some(v.to_value());
                            if let NodeKind::Str(s) = &v.kind {
                                // Ansible takes a bare name in with_items as a variable.
                                let s2 = if template::is_template(s) {
                                    s.clone()
                                } else {
                                    format!("{{{{ {s} }}}}")
                                };
                                if key == "with_items" && !template::is_template(s) {
                                    task.loop_ = Some(Value::String(s2.clone()));
                                }
                                self.string_uses(
                                    v,
                                    &s2,
                                    &TaskCtx {
                                        local: Arc::new(
                                            ctx.local
                                                .iter()
                                                .filter(|n| *n != "item")
                                                .cloned()
                                                .collect(),
                                        ),
                                        ..ctx.clone()
                                    },
                                );
                            } else {
                                self.template_uses(v, ctx);
                            }
                        }
                        _ => self.wrong_type(k, v, "a list or a template that renders to one"),
                    }
                }
                "loop_control" => match v.as_map() {
                    Some(lc) => {
                        for (lk, lv) in lc {
                            match lk.key_text().as_str() {
                                "loop_var" => match lv.as_str() {
                                    Some(s) if is_identifier(s) => task.loop_var = s.to_string(),
                                    _ => self.wrong_type(lk, lv, "a variable name"),
                                },
                                "label" => {
                                    task.loop_label = self.scalar_string(lk, lv);
                                    self.template_uses(lv, ctx);
                                }
                                "index_var" => match lv.as_str() {
                                    Some(s) if is_identifier(s) => {
                                        task.loop_index_var = Some(s.to_string())
                                    }
                                    _ => self.wrong_type(lk, lv, "a variable name"),
                                },
                                "extended" => {
                                    task.loop_extended = self.boolean(lk, lv).unwrap_or(false)
                                }
                                "extended_allitems" => {
                                    task.loop_extended_allitems = self.boolean(lk, lv)
                                }
                                "pause" => match &lv.kind {
                                    NodeKind::Int(n) if *n >= 0 => {
                                        task.loop_pause = Some(lv.to_value())
                                    }
                                    NodeKind::Float(f) if *f >= 0.0 => {
                                        task.loop_pause = Some(lv.to_value())
                                    }
                                    NodeKind::Str(s) if template::is_template(s) => {
                                        self.template_uses(lv, ctx);
                                        task.loop_pause = Some(lv.to_value());
                                    }
                                    _ => self.wrong_type(
                                        lk,
                                        lv,
                                        "a number of seconds (or a template giving one)",
                                    ),
                                },
                                "break_when" => task.loop_break_when = self.conditions(lk, lv, ctx),
                                _ => self.unknown_key(lk, LOOP_CONTROL_KEYS, "loop_control"),
                            }
                        }
                    }
                    None => self.wrong_type(k, v, "a mapping"),
                },
                "register" => match v.as_str() {
                    Some(s) if is_identifier(s) => {
                        task.register = Some(s.to_string());
                        self.out.runtime_vars.insert(s.to_string());
                    }
                    _ => self.problem(
                        Problem::error(&v.loc, "`register` takes a variable name")
                            .label("not a variable name")
                            .hint("letters, digits and `_`, not starting with a digit"),
                    ),
                },
                "notify" => {
                    let names = self.string_list(k, v);
                    let locs: Vec<SourceLoc> = match &v.kind {
                        NodeKind::Seq(items) => items.iter().map(|i| i.loc.clone()).collect(),
                        _ => vec![v.loc.clone()],
                    };
                    if let Some(state) = self.play_state.as_mut() {
                        for (n, l) in names.iter().zip(locs) {
                            state.notifies.push((n.clone(), l));
                        }
                    }
                    task.notify = names;
                }
                "listen" => {
                    if !ctx.handler {
                        self.problem(
                            Problem::error(&k.loc, "`listen` is for handlers only")
                                .label("in a task")
                                .hint("move this task under `handlers:`"),
                        );
                    }
                    task.listen = self.string_list(k, v);
                }
                "changed_when" => task.changed_when = self.conditions(k, v, ctx),
                "failed_when" => task.failed_when = self.conditions(k, v, ctx),
                "until" => {
                    let c = self.conditions(k, v, ctx);
                    task.until = Some(c.join(" and "));
                    if c.len() > 1 {
                        task.until = Some(
                            c.iter()
                                .map(|c| format!("({c})"))
                                .collect::<Vec<_>>()
                                .join(" and "),
                        );
                    }
                }
                "retries" => match v.as_i64() {
                    Some(n) if n >= 0 => task.retries = Some(n as u32),
                    _ => self.wrong_type(k, v, "a non-negative integer"),
                },
                "delay" => match v.as_f64() {
                    Some(f) if f >= 0.0 => task.delay = Some(f),
                    _ => self.wrong_type(k, v, "a number of seconds"),
                },
                _ => {}
            }
        }
        if ctx.handler {
            if task.name.is_none() && task.listen.is_empty() {
                self.problem(
                    Problem::error(&node.loc, "handler without `name` or `listen`")
                        .label("this handler")
                        .hint("give it a `name:` that tasks can `notify:`"),
                );
            }
            if let Some(state) = self.play_state.as_mut() {
                for n in handler_names(&task) {
                    state.handler_names.insert(n);
                }
            }
        }
        // Files the op reads on the controller.
        self.check_src(&task, &arg_locs, op_key, ctx);
        Some(task)
    }

    /// The op's arguments from its value: a mapping, a free-form string or nothing.
    fn op_args(
        &mut self,
        op_key: &Node,
        v: &Node,
        s: &OpSchema,
        locs: &mut HashMap<String, SourceLoc>,
    ) -> Vars {
        let mut args = Vars::new();
        match &v.kind {
            NodeKind::Null => {}
            NodeKind::Map(entries) => {
                for (k, val) in entries {
                    let name = k.key_text();
                    locs.insert(name.clone(), k.loc.clone());
                    args.insert(name, val.to_value());
                }
            }
            NodeKind::Str(text) => {
                let tokens = split_free_form(text);
                let mut raw: Vec<&str> = Vec::new();
                for tok in &tokens {
                    let kv = tok
                        .trim_end_matches('\n')
                        .split_once('=')
                        .filter(|(k, _)| is_identifier(k));
                    match kv {
                        Some((k, val))
                            if !s.free_form || (s.param(k).is_some() && k != "_raw_params") =>
                        {
                            locs.insert(k.to_string(), v.loc.clone());
                            args.insert(k.to_string(), Value::String(unquote(val)));
                        }
                        _ if s.free_form => raw.push(tok),
                        _ => {
                            self.problem(
                                Problem::error(
                                    &v.loc,
                                    format!(
                                        "{}: free-form argument `{tok}` is not `key=value`",
                                        s.name
                                    ),
                                )
                                .label("not key=value")
                                .hint(format!(
                                    "write `key=value` pairs or a mapping under `{}:`",
                                    s.name
                                )),
                            );
                        }
                    }
                }
                if s.free_form && !raw.is_empty() {
                    locs.insert("_raw_params".into(), v.loc.clone());
                    args.insert("_raw_params".into(), Value::String(join_free_form(&raw)));
                }
            }
            NodeKind::Bool(_) | NodeKind::Int(_) | NodeKind::Float(_) if s.free_form => {
                args.insert(
                    "_raw_params".into(),
                    Value::String(v.scalar_text().unwrap_or_default()),
                );
            }
            _ => self.problem(
                Problem::error(
                    &v.loc,
                    format!(
                        "arguments of `{}` are a mapping or `key=value` text, found {}",
                        s.name,
                        v.type_name()
                    ),
                )
                .label("not arguments")
                .hint(format!(
                    "write the arguments as `key: value` lines under `{}:`",
                    op_key.key_text()
                )),
            ),
        }
        args
    }

    fn check_src(
        &mut self,
        task: &Task,
        locs: &HashMap<String, SourceLoc>,
        op_key: &Node,
        ctx: &TaskCtx,
    ) {
        let remote = task
            .args
            .get("remote_src")
            .map(|v| {
                matches!(v, Value::Bool(true))
                    || v.as_str().is_some_and(|s| {
                        matches!(s.to_ascii_lowercase().as_str(), "yes" | "true" | "on" | "1")
                    })
            })
            .unwrap_or(false);
        let (param, sub) = match task.op.as_str() {
            "template" => ("src", "templates"),
            "copy" | "unarchive" if !remote => ("src", "files"),
            "apt" => ("deb", "files"),
            "script" => ("_raw_params", "files"),
            "include_vars" => ("_raw_params", "vars"),
            _ => return,
        };
        let name = match task.args.get(param).and_then(Value::as_str) {
            Some(n) if param == "_raw_params" => {
                n.split_whitespace().next().unwrap_or("").to_string()
            }
            Some(n) => n.to_string(),
            None if task.op == "include_vars" => {
                match task.args.get("file").and_then(Value::as_str) {
                    Some(f) => f.to_string(),
                    None => return,
                }
            }
            None => return,
        };
        if name.is_empty() || template::is_template(&name) {
            return;
        }
        let loc = locs
            .get(param)
            .or_else(|| locs.get("file"))
            .cloned()
            .unwrap_or_else(|| op_key.loc.clone());
        let dirs = search_dirs(ctx.role.as_deref(), &ctx.dir, &ctx.play_dir, sub);
        let found = if Path::new(&name).is_absolute() {
            Some(PathBuf::from(&name)).filter(|p| p.exists())
        } else {
            dirs.iter().map(|d| d.join(&name)).find(|p| p.exists())
        };
        let Some(path) = found else {
            let what = if task.op == "template" {
                "template"
            } else {
                "file"
            };
            self.problem(
                Problem::error(&loc, format!("{}: {what} `{name}` not found", task.op))
                    .label("no such file")
                    .hint(format!(
                        "looked in: {}",
                        dirs.iter()
                            .map(|d| d.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
            );
            return;
        };
        if task.op == "template" && path.is_file() {
            self.template_file_uses(&path, &loc, ctx);
        }
    }

    fn template_file_uses(&mut self, path: &Path, from: &SourceLoc, ctx: &TaskCtx) {
        if !self.template_cache.contains_key(path) {
            let needs = self.template_file_needs(path, from);
            self.template_cache.insert(path.to_path_buf(), needs);
        }
        let Some(Some(needs)) = self.template_cache.get(path) else {
            return;
        };
        let mut local = ctx.local.as_ref().clone();
        local.push("template_path".into());
        local.push("ansible_managed".into());
        let local = Arc::new(local);
        let uses: Vec<VarUse> = needs
            .iter()
            .map(|(n, loc)| VarUse {
                name: n.clone(),
                loc: loc.clone(),
                play: self.play_index,
                local: local.clone(),
            })
            .collect();
        self.out.uses.extend(uses);
    }

    /// Parse a template file once: the names it needs with where, or None after reporting its syntax error.
    fn template_file_needs(
        &mut self,
        path: &Path,
        from: &SourceLoc,
    ) -> Option<Vec<(String, SourceLoc)>> {
        let src = match std::fs::read_to_string(path) {
            Ok(s) => s,
            Err(e) => {
                self.problem(
                    Problem::error(
                        from,
                        format!("cannot read template {}: {e}", path.display()),
                    )
                    .label("this template"),
                );
                return None;
            }
        };
        let file = Arc::new(path.to_path_buf());
        match template::check_file(path, &src) {
            Ok(names) => Some(
                names
                    .into_iter()
                    .map(|n| {
                        let (line, col) = find_name(&src, &n).unwrap_or((1, 1));
                        (
                            n,
                            SourceLoc {
                                file: file.clone(),
                                line,
                                col,
                            },
                        )
                    })
                    .collect(),
            ),
            Err(e) => {
                let (line, col) = match &e.range {
                    Some(r) => line_col(&src, r.start),
                    None => (e.line.unwrap_or(1) as u32, 1),
                };
                let message = e
                    .message
                    .split(" (in template")
                    .next()
                    .unwrap_or(&e.message)
                    .to_string();
                self.problem(
                    Problem::error(
                        &SourceLoc { file, line, col },
                        format!("template syntax: {message}"),
                    )
                    .label("here")
                    .hint("see the Jinja syntax near this point"),
                );
                None
            }
        }
    }

    /// Record the variables every string inside a node needs.
    fn template_uses(&mut self, node: &Node, ctx: &TaskCtx) {
        match &node.kind {
            NodeKind::Str(s) => self.string_uses(node, s, ctx),
            NodeKind::Seq(items) => {
                for i in items {
                    self.template_uses(i, ctx);
                }
            }
            NodeKind::Map(entries) => {
                for (_, v) in entries {
                    self.template_uses(v, ctx);
                }
            }
            _ => {}
        }
    }

    fn string_uses(&mut self, node: &Node, s: &str, ctx: &TaskCtx) {
        if !template::is_template(s) {
            return;
        }
        match template::check_str(s) {
            Ok(names) => {
                for n in names {
                    let loc = self.name_loc(node, s, &n);
                    self.out.uses.push(VarUse {
                        name: n,
                        loc,
                        play: self.play_index,
                        local: ctx.local.clone(),
                    });
                }
            }
            Err(e) => {
                let loc = match &e.range {
                    Some(r) => self.offset_loc(node, s, r.start),
                    None => node.loc.clone(),
                };
                self.problem(
                    Problem::error(&loc, format!("template syntax: {}", e.message))
                        .label("here")
                        .hint("check the `{{ }}` / `{% %}` pairs and the expression inside"),
                );
            }
        }
    }

    fn expression_uses(&mut self, node: &Node, expr: &str, ctx: &TaskCtx) {
        match template::check_expression(expr) {
            Ok(names) => {
                for n in names {
                    let loc = self.name_loc(node, expr, &n);
                    self.out.uses.push(VarUse {
                        name: n,
                        loc,
                        play: self.play_index,
                        local: ctx.local.clone(),
                    });
                }
            }
            Err(e) => {
                let loc = match &e.range {
                    Some(r) if !expr.trim_start().starts_with("{{") => {
                        self.offset_loc(node, expr, r.start)
                    }
                    _ => node.loc.clone(),
                };
                self.problem(
                    Problem::error(&loc, format!("condition syntax: {}", e.message))
                        .label("here")
                        .hint("a condition is a bare Jinja expression, e.g. `when: x == 1`"),
                );
            }
        }
    }

    /// Where `name` is written inside a string node (the node itself when that cannot be told).
    fn name_loc(&self, node: &Node, s: &str, name: &str) -> SourceLoc {
        match template::word_positions(s, name).next() {
            Some(off) => self.offset_loc(node, s, off),
            None => node.loc.clone(),
        }
    }

    /// The source position of byte `off` of a string node's value, when it is written on one line.
    fn offset_loc(&self, node: &Node, s: &str, off: usize) -> SourceLoc {
        let Some((src, index)) = self.sources.get(&*node.loc.file) else {
            return node.loc.clone();
        };
        if let Some(nl) = s[..off.min(s.len())].rfind('\n') {
            return Self::block_loc(node, src, s, off, nl);
        }
        let start = index.offset(src, node.loc.line, node.loc.col);
        let rest = &src[start.min(src.len())..];
        let line = rest.split('\n').next().unwrap_or("");
        let (skip, body) = match line.chars().next() {
            Some('"') | Some('\'') => (1, &line[1..]),
            _ => (0, line),
        };
        // Only when the text is written as is (no escapes before the offset).
        if body.get(..off).is_some_and(|b| b == &s[..off]) {
            let mut loc = node.loc.clone();
            loc.col += (skip + s[..off].chars().count()) as u32;
            return loc;
        }
        node.loc.clone()
    }

    /// Byte `off` (after a newline at `nl`) of a literal block scalar (`|`),
    /// whose lines are the source's lines less their indentation; the node's
    /// own position otherwise.
    fn block_loc(node: &Node, src: &str, s: &str, off: usize, nl: usize) -> SourceLoc {
        let lines_before = s[..off].matches('\n').count();
        let text_line = s[nl + 1..].split('\n').next().unwrap_or("");
        let indent = node.loc.col.saturating_sub(1) as usize;
        let src_line = src
            .lines()
            .nth(node.loc.line as usize - 1 + lines_before)
            .unwrap_or("");
        if src_line.get(indent..) == Some(text_line) && !text_line.is_empty() {
            let mut loc = node.loc.clone();
            loc.line += lines_before as u32;
            loc.col += s[nl + 1..off].chars().count() as u32;
            return loc;
        }
        node.loc.clone()
    }
}

fn handler_names(h: &Task) -> Vec<String> {
    let mut out = h.listen.clone();
    if let Some(n) = &h.name {
        out.push(n.clone());
        if let Some(r) = &h.role {
            out.push(format!("{} : {}", r.name, n));
        }
    }
    out
}

fn flatten_tasks(items: Vec<TaskItem>, out: &mut Vec<Task>) {
    for i in items {
        match i {
            TaskItem::Task(t) => out.push(t),
            TaskItem::Block(b) => {
                flatten_tasks(b.block, out);
                flatten_tasks(b.rescue, out);
                flatten_tasks(b.always, out);
            }
        }
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Where a controller-side file named by a task is looked up, as Ansible does:
/// the role's `sub/` and the role dir, the task file's dir, then the play's `sub/` and dir.
/// The names a static `include_vars` (a file or a dir, no template) defines,
/// read now; None when they cannot be known before the run.
fn include_vars_keys(task: &Task, ctx: &TaskCtx) -> Option<Vec<String>> {
    fn keys_of(path: &Path, out: &mut Vec<String>) -> Option<()> {
        let docs = yaml::parse_file(path).ok()?;
        match docs.first().map(|d| d.to_value()) {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => out.extend(m.keys().cloned()),
            Some(_) => return None,
        }
        Some(())
    }
    let text = |k: &str| task.args.get(k).and_then(Value::as_str).map(str::to_string);
    let mut keys = Vec::new();
    if let Some(dir) = text("dir") {
        if template::is_template(&dir) {
            return None;
        }
        let root = match &ctx.role {
            Some(r) if dir.split('/').next() == Some("vars") && r.dir.join(&dir).exists() => {
                r.dir.join(&dir)
            }
            Some(r) => r.dir.join("vars").join(&dir),
            None => ctx.play_dir.join(&dir),
        };
        let mut todo = vec![root];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).ok()?.flatten() {
                let p = e.path();
                if p.is_dir() {
                    todo.push(p);
                } else {
                    keys_of(&p, &mut keys)?;
                }
            }
        }
        return Some(keys);
    }
    let file = text("file").or_else(|| text("_raw_params"))?;
    let file = file.trim();
    if template::is_template(file) {
        return None;
    }
    let path = if Path::new(file).is_absolute() {
        PathBuf::from(file)
    } else {
        search_dirs(ctx.role.as_deref(), &ctx.dir, &ctx.play_dir, "vars")
            .iter()
            .map(|d| d.join(file))
            .find(|p| p.is_file())?
    };
    keys_of(&path, &mut keys)?;
    Some(keys)
}

pub fn search_dirs(
    role: Option<&RoleContext>,
    task_dir: &Path,
    play_dir: &Path,
    sub: &str,
) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(r) = role {
        out.push(r.dir.join(sub));
        out.push(r.dir.clone());
    }
    out.push(task_dir.join(sub));
    out.push(task_dir.to_path_buf());
    out.push(play_dir.join(sub));
    out.push(play_dir.to_path_buf());
    let mut seen = HashSet::new();
    out.retain(|d| seen.insert(d.clone()));
    out
}

/// Split free-form `k=v` text into tokens, keeping quotes and `{{ }}` together.
pub fn split_free_form(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut depth = 0usize;
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '{' if quote.is_none() && matches!(next, Some('{') | Some('%')) => {
                depth += 1;
                cur.push(c);
                cur.push(next.unwrap_or('{'));
                i += 2;
                continue;
            }
            '}' | '%' if quote.is_none() && depth > 0 && next == Some('}') => {
                depth -= 1;
                cur.push(c);
                cur.push('}');
                i += 2;
                continue;
            }
            '"' | '\'' if depth == 0 => {
                match quote {
                    Some(q) if q == c => quote = None,
                    None => quote = Some(c),
                    _ => {}
                }
                cur.push(c);
            }
            // A newline ends the line's last token and is kept on it (as
            // Ansible's split_args does), so a multi-line `shell: |` script
            // stays multi-line.
            '\n' if quote.is_none() && depth == 0 => {
                if !cur.is_empty() {
                    cur.push('\n');
                    out.push(std::mem::take(&mut cur));
                } else if let Some(last) = out.last_mut().filter(|t| !t.ends_with('\n')) {
                    last.push('\n');
                }
            }
            c if c.is_whitespace() && quote.is_none() && depth == 0 => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
        i += 1;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Free-form tokens joined back as Ansible's join_args does: a space between
/// tokens on one line, nothing after a token that ends its line.
fn join_free_form(tokens: &[&str]) -> String {
    let mut out = String::new();
    for t in tokens {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push(' ');
        }
        out.push_str(t);
    }
    out.trim_end_matches('\n').to_string()
}

fn unquote(v: &str) -> String {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_string();
        }
    }
    v.to_string()
}

fn line_col(src: &str, off: usize) -> (u32, u32) {
    let before = &src[..off.min(src.len())];
    let line = before.matches('\n').count() as u32 + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() as u32 + 1;
    (line, col)
}

/// Line and column of the first use of `name` inside `{{ }}`/`{% %}` in a template text.
fn find_name(src: &str, name: &str) -> Option<(u32, u32)> {
    let mut first = None;
    for i in template::word_positions(src, name) {
        first.get_or_insert(i);
        let before = &src[..i];
        let open = before.rfind("{{").max(before.rfind("{%"));
        let close = before.rfind("}}").max(before.rfind("%}"));
        if open.is_some() && (close.is_none() || open > close) {
            return Some(line_col(src, i));
        }
    }
    first.map(|i| line_col(src, i))
}

/// Every name a set of uses needs, for tests and tools.
pub fn needed_names(uses: &[VarUse]) -> BTreeSet<String> {
    uses.iter().map(|u| u.name.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A multi-line `shell: |` script keeps its lines (as in Ansible); known
    /// `key=value` options are still pulled out of it.
    #[test]
    fn multi_line_free_form_keeps_its_newlines() {
        let dir = tempfile::tempdir().unwrap();
        let pb = dir.path().join("p.yml");
        std::fs::write(
            &pb,
            "- hosts: all\n  tasks:\n    - shell: |\n        set -u\n        if true; then\n          echo \"a  b\"\n        fi\n\n        echo done chdir=/tmp\n",
        )
        .unwrap();
        let loaded = Loader::new().load(&[pb]);
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        let TaskItem::Task(t) = &loaded.playbooks[0].plays[0].tasks[0] else {
            panic!("a task")
        };
        assert_eq!(
            t.args["_raw_params"],
            Value::String("set -u\nif true; then\necho \"a  b\"\nfi\necho done".into())
        );
        assert_eq!(t.args["chdir"], Value::String("/tmp".into()));
    }

    #[test]
    fn one_line_free_form_is_unchanged() {
        assert_eq!(
            split_free_form("echo {{ a }} 'x y' creates=/f"),
            vec!["echo", "{{ a }}", "'x y'", "creates=/f"]
        );
        assert_eq!(join_free_form(&["a", "b\n", "c"]), "a b\nc");
    }
}
