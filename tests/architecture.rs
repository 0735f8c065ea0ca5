//! The layers of `docs/architecture.md`, checked: which top-level modules may import which,
//! no import loop among the files of `src/`, and no long file that does not say why.
//!
//! An import is a `crate::...` or `super::...` path anywhere in a file (`use` or inline,
//! one level of `{...}` groups expanded), resolved to the deepest file of `src/` it names
//! (`crate::engine::Strategy` is `src/engine/mod.rs`). Paths relative to the current
//! module (`mod x; use x::Y`, how a `mod.rs` re-exports its parts) are not imports: a
//! module and its own parts are one unit. Comments are skipped; test modules count.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use regex::Regex;

/// `(from, to)`: top-level module `from` must not import `to`. The reason is the layer
/// drawing: cli/cmd -> engine -> ops -> transport, and only the command layer chooses a
/// reporter or knows the command line.
const FORBIDDEN: &[(&str, &str, &str)] = &[
    ("ops", "engine", "an op never knows which engine runs it"),
    (
        "ops",
        "report",
        "ops return outcomes; the engine emits events",
    ),
    (
        "transport",
        "ops",
        "a transport never knows which op uses it",
    ),
    (
        "transport",
        "engine",
        "a transport never knows which engine uses it",
    ),
    (
        "transport",
        "report",
        "a transport reports errors as values",
    ),
    (
        "engine",
        "report",
        "the engine emits events and never chooses a reporter",
    ),
];

/// Modules that may import `cmd` and `cli`: the command layer itself (`cmd` reads `cli`'s
/// definitions). `main.rs` is outside the library and uses `ferry::` paths.
const COMMAND_LAYER: &[&str] = &["cmd", "cli"];

struct SourceTree {
    /// File (relative to `src/`) -> its source.
    files: BTreeMap<String, String>,
    /// Module path -> file.
    modules: BTreeMap<Vec<String>, String>,
}

fn module_path(rel: &str) -> Vec<String> {
    let mut p: Vec<String> = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_string)
        .collect();
    if p.last().map(String::as_str) == Some("mod") {
        p.pop();
    }
    if p == ["lib"] || p == ["main"] {
        p.clear();
    }
    p
}

fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            out.insert(rel, std::fs::read_to_string(&path).unwrap());
        }
    }
}

impl SourceTree {
    fn load() -> SourceTree {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = BTreeMap::new();
        walk(&root, &root, &mut files);
        files.remove("main.rs");
        let modules = files
            .keys()
            .map(|rel| (module_path(rel), rel.clone()))
            .collect();
        SourceTree { files, modules }
    }

    /// The deepest file a module path names, if any.
    fn resolve(&self, segs: &[String]) -> Option<&String> {
        (1..=segs.len())
            .rev()
            .find_map(|n| self.modules.get(&segs[..n]))
    }

    /// File -> the files it imports.
    fn imports(&self) -> BTreeMap<String, BTreeSet<String>> {
        let comment = Regex::new(r"//[^\n]*").unwrap();
        let group = Regex::new(r"\b(crate|super(?:::super)*)((?:::\w+)*)::\{([^{}]*)\}").unwrap();
        let path = Regex::new(r"\b(crate|super(?:::super)*)((?:::\w+)+)").unwrap();
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (rel, src) in &self.files {
            let me = module_path(rel);
            let src = comment.replace_all(src, "");
            let mut targets = Vec::new();
            let base_of = |base: &str| -> Option<Vec<String>> {
                if base == "crate" {
                    return Some(Vec::new());
                }
                let up = base.matches("super").count();
                (up <= me.len()).then(|| me[..me.len() - up].to_vec())
            };
            let segs = |s: &str| -> Vec<String> {
                s.split("::")
                    .filter(|x| !x.is_empty() && *x != "self")
                    .map(str::to_string)
                    .collect()
            };
            for c in group.captures_iter(&src) {
                let Some(base) = base_of(&c[1]) else { continue };
                for item in c[3].split(',') {
                    let item = item.split(" as ").next().unwrap().trim();
                    if item.is_empty() {
                        continue;
                    }
                    let mut p = base.clone();
                    p.extend(segs(&c[2]));
                    p.extend(segs(item));
                    targets.push(p);
                }
            }
            for c in path.captures_iter(&src) {
                let Some(mut p) = base_of(&c[1]) else {
                    continue;
                };
                p.extend(segs(&c[2]));
                targets.push(p);
            }
            let set = out.entry(rel.clone()).or_default();
            for t in targets {
                if let Some(f) = self.resolve(&t)
                    && f != rel
                {
                    set.insert(f.clone());
                }
            }
        }
        out
    }
}

/// The top-level module a file belongs to (`engine/task.rs` -> `engine`; `lib.rs` -> "").
fn top(rel: &str) -> String {
    module_path(rel).into_iter().next().unwrap_or_default()
}

#[test]
fn layers_import_only_downwards() {
    let tree = SourceTree::load();
    let mut wrong = Vec::new();
    for (from, tos) in tree.imports() {
        let f = top(&from);
        for to in tos {
            let t = top(&to);
            for (a, b, why) in FORBIDDEN {
                if f == *a && t == *b {
                    wrong.push(format!("src/{from} imports src/{to}: {why}"));
                }
            }
            if COMMAND_LAYER.contains(&t.as_str()) && !COMMAND_LAYER.contains(&f.as_str()) {
                wrong.push(format!(
                    "src/{from} imports src/{to}: only the command layer (cmd, cli) knows the command line"
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against docs/architecture.md:\n  {}",
        wrong.join("\n  ")
    );
}

/// The strongly connected components of `graph` with two or more nodes (Tarjan's):
/// each is a set of nodes that reach each other, a loop.
fn loops(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    struct Walk<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        loops: Vec<Vec<&'a str>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            let graph = self.graph;
            for w in graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut comp = Vec::new();
                loop {
                    let w = self.stack.pop().unwrap();
                    self.on_stack.remove(w);
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                if comp.len() > 1 {
                    comp.sort();
                    self.loops.push(comp);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        loops: Vec::new(),
    };
    for f in graph.keys() {
        if !walk.index.contains_key(f.as_str()) {
            walk.visit(f);
        }
    }
    walk.loops.iter().map(|c| c.join(", ")).collect()
}

#[test]
fn no_import_loop_among_files() {
    let loops = loops(&SourceTree::load().imports());
    assert!(
        loops.is_empty(),
        "files of src/ that import each other (directly or around a loop):\n  {}",
        loops.join("\n  ")
    );
}

/// The top-level modules of `src/` (`engine`, `ops`, ...) import one another in one
/// direction only: a module and its files are one unit, so a loop through any of its
/// files is a loop of modules.
#[test]
fn no_import_loop_among_modules() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, tos) in SourceTree::load().imports() {
        let f = top(&from);
        for to in tos {
            let t = top(&to);
            if f != t && !f.is_empty() && !t.is_empty() {
                graph.entry(f.clone()).or_default().insert(t);
            }
        }
    }
    let loops = loops(&graph);
    let edges = |m: &str| -> String {
        let members: Vec<&str> = m.split(", ").collect();
        let mut out = Vec::new();
        for f in &members {
            for t in graph.get(*f).into_iter().flatten() {
                if members.contains(&t.as_str()) {
                    out.push(format!("{f} -> {t}"));
                }
            }
        }
        out.join("; ")
    };
    let shown: Vec<String> = loops
        .iter()
        .map(|l| format!("{l} ({})", edges(l)))
        .collect();
    assert!(
        loops.is_empty(),
        "modules of src/ that import each other (directly or around a loop):\n  {}",
        shown.join("\n  ")
    );
}

/// Files of `src/` over [`LONG`] lines that neither say why at their top nor are split
/// yet; docs/architecture.md lists them under "Known and left as is". A file leaves this
/// list by being split (or by saying at its top why it holds together).
const LONG_AND_LEFT: &[&str] = &[];

/// A file longer than this says at its top why it holds together.
const LONG: usize = 600;

#[test]
fn a_long_file_says_why_at_its_top() {
    let tree = SourceTree::load();
    let mut unexplained = Vec::new();
    for rel in LONG_AND_LEFT {
        let lines = tree.files.get(*rel).map(|src| src.lines().count());
        if lines.is_none_or(|n| n <= LONG) {
            unexplained.push(format!(
                "src/{rel} is on LONG_AND_LEFT but is {} now: take it off the list",
                lines.map_or("gone".to_string(), |n| format!("{n} lines"))
            ));
        }
    }
    for (rel, src) in &tree.files {
        let lines = src.lines().count();
        if lines <= LONG || LONG_AND_LEFT.contains(&rel.as_str()) {
            continue;
        }
        // The reason is in the file's leading `//!` lines and names its length
        // ("Near 600 lines because ...").
        let says_why = src
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .any(|l| l.contains(" lines"));
        if !says_why {
            unexplained.push(format!("src/{rel}: {lines} lines"));
        }
    }
    assert!(
        unexplained.is_empty(),
        "files over {LONG} lines that do not say at their top why (split them along their seams, or add a `//!` line saying why they hold together):\n  {}",
        unexplained.join("\n  ")
    );
}

#[test]
fn the_check_sees_imports() {
    // The check is only worth something if it finds the imports that are there.
    let tree = SourceTree::load();
    let imports = tree.imports();
    let engine = &imports["engine/task.rs"];
    assert!(engine.contains("ops/mod.rs"), "{engine:?}");
    assert!(imports["cmd/run.rs"].contains("report/mod.rs"));
    assert!(imports["cmd/mod.rs"].contains("cli.rs"));
}

/// The error type of each `Result<T, E>` written in `text` (whitespace ignored): the
/// last argument at the top level of its angle brackets.
fn result_error_types(text: &str) -> Vec<String> {
    let flat: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    // An arrow's `>` closes nothing; a trailing comma ends no argument.
    let flat = flat.replace("->", "=").replace(",>", ">");
    let mut out = Vec::new();
    for (at, _) in flat.match_indices("Result<") {
        let rest = &flat[at + "Result<".len()..];
        let (mut depth, mut last_comma, mut end) = (0i32, None, None);
        for (i, c) in rest.char_indices() {
            match c {
                '<' | '(' | '[' => depth += 1,
                '>' if depth == 0 => {
                    end = Some(i);
                    break;
                }
                '>' | ')' | ']' => depth -= 1,
                ',' if depth == 0 => last_comma = Some(i),
                _ => {}
            }
        }
        if let (Some(c), Some(e)) = (last_comma, end) {
            out.push(rest[c + 1..e].to_string());
        }
    }
    out
}

/// Failures are typed (docs/architecture.md, "Errors"): no `Result<_, String>` in src/.
#[test]
fn no_error_is_a_bare_string() {
    let tree = SourceTree::load();
    let wrong: Vec<&String> = tree
        .files
        .iter()
        .filter(|(_, text)| result_error_types(text).iter().any(|e| e == "String"))
        .map(|(rel, _)| rel)
        .collect();
    assert!(
        wrong.is_empty(),
        "files of src/ with a `Result<_, String>` (give the error a type, thiserror):\n  {}",
        wrong
            .iter()
            .map(|r| format!("src/{r}"))
            .collect::<Vec<_>>()
            .join("\n  ")
    );
    // The check sees one when it is there, over lines and inside other generics.
    assert_eq!(
        result_error_types("fn f() -> Result<\n  Vec<(u8, String)>,\n  String,\n> {"),
        ["String"]
    );
    assert_eq!(
        result_error_types("Result<BTreeMap<String, String>, OpError>"),
        ["OpError"]
    );
    assert_eq!(
        result_error_types("Result<Box<dyn Fn(u8) -> u8>, String>"),
        ["String"]
    );
}
