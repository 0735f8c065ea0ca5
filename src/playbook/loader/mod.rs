//! Loads playbooks, roles and task files into the model, keeping positions.
//!
//! The loader never stops at the first mistake: it records a [`Problem`] and
//! goes on with what it can, so `ferry check` reports everything in one run.
//! Besides the model it records what the later checks need and the model has
//! no room for: where each template/expression uses which variable and which
//! names are in scope there, where each `notify` and `src:` was written, and
//! where each `hosts:` pattern was written.
//!
//! The parts: `plays` (playbooks, imports, plays, vars_files), `tasks` (task lists, blocks,
//! one task and its op arguments), `keywords` (the key tables and keyword values), `roles`,
//! `includes` (task files, include/import, `src:` files), `var_uses` (the variables
//! templates use), `free_form` (`command: echo hi creates=/f`).

mod free_form;
mod includes;
mod keywords;
mod plays;
mod roles;
mod tasks;
mod var_uses;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::diag::Problem;
use super::model::*;
use crate::yaml::{self, Node, NodeKind};

pub use free_form::split_free_form;
pub use includes::search_dirs;
pub use keywords::{BLOCK_KEYS, PLAY_KEYS, TASK_KEYS};
pub use var_uses::needed_names;

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
                self.problem(Problem::unreadable(&loc, "", path, &e).label("this file"));
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
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

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
}
