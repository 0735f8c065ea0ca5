//! (Over 600 lines: one simulated file system, its lookups and what ops record in it, read as one.)
//!
//! Check mode's simulated host: what earlier `--check` tasks would have done
//! to a host, consulted by later tasks of the same run on that host.
//!
//! Without it, `ferry run --check` on a fresh host fails at the first task
//! that writes into a directory an earlier task would have made, and a
//! `lineinfile` after a `copy` edits the host's old content instead of the
//! content the copy would have written. So in a `--check` run the engine
//! hands every check-mode op a [`CheckTransport`] in front of the host's
//! transport, sharing one [`CheckState`] per machine for the whole run.
//!
//! The state is keyed by the machine the connection reaches
//! ([`Transport::endpoint`]: address and port after any jump hosts, `local`
//! for the controller), not by inventory name: it simulates a file system,
//! and an `add_host` alias or a `delegate_to` target that reaches the same
//! machine sees what the host's own tasks would have made (a delegated task
//! works on the delegate's state, not the task host's). Only the owner of
//! what check mode creates is per inventory name (an alias may log in as
//! another user).
//!
//! - `stat` and `get_file` answer from the recorded state where it knows the
//!   path (a directory, file with its would-be content and mode, link,
//!   path removed), and from the host otherwise. A path below a directory
//!   check mode would have created, or below a removed path, does not exist;
//!   a path below a would-be symlink is looked up at the link's target.
//! - `put_file` records the file and never reaches the host.
//! - `run` goes to the host unchanged: in check mode ops only run probes.
//! - An op says nothing itself: [`super::plan::perform`] records its plan's
//!   changes here instead of applying them (with `would_put`, `would_mkdir`,
//!   `would_remove`, `would_link`, `would_hardlink`, `would_set_attrs`,
//!   `would_set_mtime` for unpacked archive members, `would_be_unknown`,
//!   `would_account`, `would_pip` for the package set of a Python environment,
//!   `would_write_local`). Ops read it ([`CheckOverlay::check_overlay`]:
//!   `None` outside a `--check` run) to plan from what earlier tasks would have
//!   made.
//! - A path a skipped command/script names in `creates:`/`removes:` is
//!   recorded unknown (`would_be_unknown`): a task that then reads it
//!   ([`CheckTransport::unknown_seen`]) is reported "not checked" by the
//!   engine instead of predicting from the host's stale answer.
//! - The controller has a state too (the `local` machine's): `fetch` records
//!   the copy it would write there (`would_write_local`, unknown content for
//!   an unknown source) and `copy` reads it back (`local_read`); nothing is
//!   written on the controller.
//!
//! Nothing here ever changes the host. Limits: shell probes that ops run
//! (`find`, `readlink -f`, a command's `chdir`) see the host, not this state;
//! what a skipped command would have done is unknown (the engine marks tasks
//! using its registered result "not checked"); what check mode creates is
//! owned by the connecting user as `id` reports it, except a file written
//! under `become`, which is the become user's (its group stays the
//! connecting user's).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::OnceCell;

use crate::transport::{CommandOutput, CommandSpec, FileSpec, FileStat, Transport, TransportError};

/// What a recorded path would be.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// Removed (or never there): nothing below it either.
    Absent,
    /// A directory check mode would create: empty but for what is recorded below it.
    Dir,
    /// A file with this content.
    File(Arc<Vec<u8>>),
    /// A symlink to this target.
    Link(String),
    /// The host's own object at this path (attributes changed) or, for a
    /// hard link, at another path.
    Host(String),
    /// Whatever a task check mode could not run (a command's `creates:`,
    /// a fetch of such a path) would leave: unknown.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    kind: Kind,
    /// Modification time (seconds) when check mode knows it (an unpacked archive member).
    mtime: Option<i64>,
    mode: Option<u32>,
    owner: Option<String>,
    group: Option<String>,
}

impl Node {
    fn new(kind: Kind) -> Self {
        Node {
            kind,
            mtime: None,
            mode: None,
            owner: None,
            group: None,
        }
    }
}

/// User name, group name, uid, gid.
type UserIds = (String, String, u32, u32);

/// One machine's would-be changes during a `--check` run (shared by its tasks).
#[derive(Debug, Default)]
pub struct CheckState {
    nodes: Mutex<BTreeMap<String, Node>>,
    /// Per inventory name connecting to the machine: the connecting user
    /// and group (name, name, uid, gid), owner of what check mode creates.
    users: Mutex<HashMap<String, Arc<OnceCell<UserIds>>>>,
    /// Python environments `pip` would have changed, by environment (venv path or pip command).
    pips: Mutex<HashMap<String, PipEnv>>,
    /// Local accounts `user` would have added (`Some(home)`) or removed (`None`), by name.
    accounts: Mutex<HashMap<String, Option<String>>>,
}

/// What check-mode `pip` tasks would have done to one Python environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PipEnv {
    /// The virtualenv would have been created.
    pub created: bool,
    /// Normalised package name -> `Some(version)` installed (`None` inside:
    /// version not known), or `None`: uninstalled.
    pub packages: BTreeMap<String, Option<Option<String>>>,
}

impl CheckState {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// How many paths are recorded (tests, debugging).
    pub fn len(&self) -> usize {
        self.nodes.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `/a//b/./c/` -> `/a/b/c`; `..` pops. Relative paths only lose trailing slashes.
pub fn normalize(path: &str) -> String {
    if !path.starts_with('/') {
        let t = path.trim_end_matches('/');
        return if t.is_empty() { ".".into() } else { t.into() };
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

fn parent(path: &str) -> &str {
    match path.rsplit_once('/') {
        Some(("", _)) => "/",
        Some((d, _)) => d,
        None => ".",
    }
}

/// Where a lookup ends.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Found {
    /// Recorded here (normalized path, node).
    Node(String, Node),
    /// Known not to exist.
    Missing,
    /// Unknown here: ask the host at this path.
    Host(String),
}

/// What reading a path through the overlay gives, for transports that read
/// in their own way (`BecomeTransport` reads with `cat` as the become user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverlayRead {
    Content(Vec<u8>),
    NotFound,
    IsDir,
    /// Read this path on the host.
    Host(String),
}

fn lookup(nodes: &BTreeMap<String, Node>, path: &str, depth: u32) -> Found {
    let path = normalize(path);
    if depth > 16 || !path.starts_with('/') {
        return match nodes.get(&path) {
            Some(n) if n.kind == Kind::Absent => Found::Missing,
            Some(n) => Found::Node(path, n.clone()),
            None => Found::Host(path),
        };
    }
    let comps: Vec<&str> = path[1..].split('/').filter(|c| !c.is_empty()).collect();
    let mut fresh = false;
    let mut prefix = String::new();
    for (i, c) in comps.iter().enumerate() {
        if i + 1 == comps.len() {
            break;
        }
        prefix.push('/');
        prefix.push_str(c);
        match nodes.get(&prefix).map(|n| &n.kind) {
            Some(Kind::Absent) | Some(Kind::File(_)) => return Found::Missing,
            Some(Kind::Link(target)) => {
                let base = if target.starts_with('/') {
                    target.clone()
                } else {
                    format!("{}/{target}", parent(&prefix))
                };
                let rest = comps[i + 1..].join("/");
                return lookup(nodes, &format!("{base}/{rest}"), depth + 1);
            }
            Some(Kind::Dir) => fresh = true,
            Some(Kind::Unknown) => return Found::Node(prefix.clone(), Node::new(Kind::Unknown)),
            Some(Kind::Host(_)) | None => {}
        }
    }
    match nodes.get(&path) {
        Some(n) if n.kind == Kind::Absent => Found::Missing,
        Some(n) => Found::Node(path, n.clone()),
        None if fresh => Found::Missing,
        None => Found::Host(path),
    }
}

/// The transport a `--check` task runs on: the host's transport with the
/// host's [`CheckState`] in front of it (see the module doc).
pub struct CheckTransport {
    inner: Arc<dyn Transport>,
    state: Arc<CheckState>,
    /// The controller's simulated state (where `fetch` would write).
    controller: Option<Arc<CheckState>>,
    /// The first unknown path this task looked at (see [`Self::unknown_seen`]).
    unknown: Mutex<Option<String>>,
}

/// A controller file as check mode sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalRead {
    /// Not recorded: read the controller's file system.
    NotRecorded,
    /// An earlier check-mode task (fetch) would have written this.
    Content(Vec<u8>),
    /// A task check mode could not run would have written it.
    Unknown,
}

impl CheckTransport {
    pub fn new(inner: Arc<dyn Transport>, state: Arc<CheckState>) -> Self {
        Self {
            inner,
            state,
            controller: None,
            unknown: Mutex::new(None),
        }
    }

    /// With the controller's simulated state, for ops that write there (`fetch`).
    pub fn with_controller(mut self, controller: Arc<CheckState>) -> Self {
        self.controller = Some(controller);
        self
    }

    fn found(&self, path: &str) -> Found {
        let f = lookup(&self.state.nodes.lock().unwrap(), path, 0);
        if let Found::Node(p, n) = &f
            && n.kind == Kind::Unknown
        {
            self.unknown
                .lock()
                .unwrap()
                .get_or_insert_with(|| p.clone());
        }
        f
    }

    /// The first path this task read that a task check mode could not run
    /// would have made or changed: the task's result is not known either
    /// (the engine reports it "not checked").
    pub fn unknown_seen(&self) -> Option<String> {
        self.unknown.lock().unwrap().clone()
    }

    /// A path a task check mode could not run would make or change.
    pub fn would_be_unknown(&self, path: &str) {
        let path = normalize(path);
        let mut nodes = self.state.nodes.lock().unwrap();
        Self::clear_below(&mut nodes, &path);
        nodes.insert(path, Node::new(Kind::Unknown));
    }

    /// A controller file a check-mode task would write (`None`: unknown content).
    pub fn would_write_local(&self, path: &str, content: Option<Vec<u8>>) {
        let Some(c) = &self.controller else { return };
        let kind = match content {
            Some(c) => Kind::File(Arc::new(c)),
            None => Kind::Unknown,
        };
        c.nodes
            .lock()
            .unwrap()
            .insert(normalize(path), Node::new(kind));
    }

    /// A controller file as earlier check-mode tasks would have left it.
    pub fn local_read(&self, path: &str) -> LocalRead {
        let Some(c) = &self.controller else {
            return LocalRead::NotRecorded;
        };
        let path = normalize(path);
        match c.nodes.lock().unwrap().get(&path).map(|n| &n.kind) {
            Some(Kind::File(data)) => LocalRead::Content(data.as_ref().clone()),
            Some(Kind::Unknown) => {
                self.unknown
                    .lock()
                    .unwrap()
                    .get_or_insert_with(|| path.clone());
                LocalRead::Unknown
            }
            _ => LocalRead::NotRecorded,
        }
    }

    /// The connecting user of this task's connection (an alias may log in as another).
    async fn user(&self) -> UserIds {
        let cell = self
            .state
            .users
            .lock()
            .unwrap()
            .entry(self.inner.host().to_string())
            .or_default()
            .clone();
        cell.get_or_init(|| async {
            let out = self
                .inner
                .run(&CommandSpec::new("id -un; id -gn; id -u; id -g"))
                .await;
            let text = out
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            let l: Vec<&str> = text.lines().collect();
            match l.as_slice() {
                [u, g, uid, gid, ..] => (
                    u.to_string(),
                    g.to_string(),
                    uid.parse().unwrap_or(0),
                    gid.parse().unwrap_or(0),
                ),
                _ => ("root".into(), "root".into(), 0, 0),
            }
        })
        .await
        .clone()
    }

    /// A stat of a recorded node (`host` is the host's stat for `Kind::Host`).
    async fn synth(&self, n: &Node) -> Result<FileStat, TransportError> {
        let mut st = match &n.kind {
            Kind::Host(at) => {
                let st = self.inner.stat(at).await?;
                if !st.exists {
                    return Ok(st);
                }
                st
            }
            Kind::Absent => return Ok(FileStat::default()),
            other => {
                let (u, g, uid, gid) = self.user().await;
                let mut st = FileStat {
                    exists: true,
                    owner: u,
                    group: g,
                    uid,
                    gid,
                    mtime: std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs() as i64)
                        .unwrap_or(0),
                    ..FileStat::default()
                };
                match other {
                    Kind::Dir => {
                        st.is_dir = true;
                        st.mode = 0o755;
                        st.size = 4096;
                    }
                    Kind::File(c) => {
                        st.is_file = true;
                        st.mode = 0o644;
                        st.size = c.len() as u64;
                        st.checksum = Some(sha256_hex(c));
                    }
                    Kind::Link(t) => {
                        st.is_link = true;
                        st.mode = 0o777;
                        st.size = t.len() as u64;
                        st.link_target = Some(t.clone());
                    }
                    _ => {}
                }
                st
            }
        };
        if let Some(m) = n.mode {
            st.mode = m & 0o7777;
        }
        if let Some(t) = n.mtime {
            st.mtime = t;
        }
        if let Some(o) = &n.owner {
            st.owner = o.clone();
            if let Ok(id) = o.parse() {
                st.uid = id;
            }
        }
        if let Some(g) = &n.group {
            st.group = g.clone();
            if let Ok(id) = g.parse() {
                st.gid = id;
            }
        }
        Ok(st)
    }

    /// Read `path` as far as the overlay knows it (links followed).
    pub fn overlay_read(&self, path: &str) -> OverlayRead {
        let mut path = path.to_string();
        for _ in 0..16 {
            match self.found(&path) {
                Found::Missing => return OverlayRead::NotFound,
                Found::Host(p) => return OverlayRead::Host(p),
                Found::Node(p, n) => match n.kind {
                    Kind::Absent => return OverlayRead::NotFound,
                    Kind::Dir => return OverlayRead::IsDir,
                    Kind::File(c) => return OverlayRead::Content(c.as_ref().clone()),
                    Kind::Host(at) => return OverlayRead::Host(at),
                    Kind::Unknown => return OverlayRead::Host(normalize(&path)),
                    Kind::Link(t) => {
                        path = if t.starts_with('/') {
                            t
                        } else {
                            format!("{}/{t}", parent(&p))
                        };
                    }
                },
            }
        }
        OverlayRead::NotFound
    }

    /// Where a write to `path` lands when a symlink check mode would make is
    /// on its way (the final path); None when no such link is involved.
    pub fn resolve_links(&self, path: &str) -> Option<String> {
        let mut path = normalize(path);
        let mut via_overlay = false;
        for _ in 0..16 {
            match self.found(&path) {
                Found::Node(
                    p,
                    Node {
                        kind: Kind::Link(t),
                        ..
                    },
                ) => {
                    via_overlay = true;
                    path = if t.starts_with('/') {
                        normalize(&t)
                    } else {
                        normalize(&format!("{}/{t}", parent(&p)))
                    };
                }
                Found::Node(p, _) | Found::Host(p) => {
                    return (via_overlay || p != path).then_some(p);
                }
                Found::Missing => return via_overlay.then_some(path),
            }
        }
        None
    }

    /// A file check mode would write (`spec.mode`/owner/group: None keeps
    /// what the path has, or the defaults of a new file).
    pub fn would_put(&self, spec: &FileSpec) {
        let path = normalize(&spec.path);
        let mut nodes = self.state.nodes.lock().unwrap();
        let old = nodes.get(&path).cloned();
        let mut n = Node::new(Kind::File(Arc::new(spec.content.clone())));
        if let Some(o) = old.filter(|o| o.kind != Kind::Absent) {
            n.mode = o.mode;
            n.owner = o.owner;
            n.group = o.group;
        }
        n.mode = spec.mode.or(n.mode);
        n.owner = spec.owner.clone().or(n.owner);
        n.group = spec.group.clone().or(n.group);
        nodes.insert(path, n);
    }

    /// A directory check mode would create with its missing parents (`mkdir
    /// -p`), each created one given `mode`/`owner`/`group`.
    pub async fn would_mkdir(
        &self,
        path: &str,
        mode: Option<u32>,
        owner: Option<&str>,
        group: Option<&str>,
    ) -> Result<(), TransportError> {
        let path = normalize(path);
        let mut missing = Vec::new();
        let mut p = path.clone();
        loop {
            if self.stat(&p).await?.exists {
                break;
            }
            missing.push(p.clone());
            let up = parent(&p).to_string();
            if up == p || up == "." {
                break;
            }
            p = up;
        }
        let mut nodes = self.state.nodes.lock().unwrap();
        for d in missing.into_iter().rev() {
            nodes.insert(
                d,
                Node {
                    kind: Kind::Dir,
                    mtime: None,
                    mode,
                    owner: owner.map(str::to_string),
                    group: group.map(str::to_string),
                },
            );
        }
        Ok(())
    }

    /// Forget everything recorded below `path` (it is replaced or removed).
    fn clear_below(nodes: &mut BTreeMap<String, Node>, path: &str) {
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        let below: Vec<String> = nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in below {
            nodes.remove(&k);
        }
    }

    /// A path check mode would remove (`rm -rf`).
    pub fn would_remove(&self, path: &str) {
        let path = normalize(path);
        let mut nodes = self.state.nodes.lock().unwrap();
        Self::clear_below(&mut nodes, &path);
        nodes.insert(path, Node::new(Kind::Absent));
    }

    /// A symlink check mode would make (replacing what is there).
    pub fn would_link(&self, path: &str, target: &str, owner: Option<&str>, group: Option<&str>) {
        let path = normalize(path);
        let mut nodes = self.state.nodes.lock().unwrap();
        Self::clear_below(&mut nodes, &path);
        let mut n = Node::new(Kind::Link(target.to_string()));
        n.owner = owner.map(str::to_string);
        n.group = group.map(str::to_string);
        nodes.insert(path, n);
    }

    /// A hard link check mode would make at `path` to `src`.
    pub fn would_hardlink(&self, path: &str, src: &str) {
        let kind = match self.found(src) {
            Found::Node(_, n) => match n.kind {
                Kind::Absent => return,
                k => k,
            },
            Found::Host(p) => Kind::Host(p),
            Found::Missing => return,
        };
        let mut nodes = self.state.nodes.lock().unwrap();
        let n = match nodes.get(&normalize(src)) {
            Some(s) => Node { kind, ..s.clone() },
            None => Node::new(kind),
        };
        nodes.insert(normalize(path), n);
    }

    /// Whether `a` and `b` would be the same file (a hard link check mode
    /// made); None when neither is recorded here (ask the host).
    pub fn same_file(&self, a: &str, b: &str) -> Option<bool> {
        match (self.found(a), self.found(b)) {
            (Found::Host(_), Found::Host(_)) => None,
            (Found::Node(_, x), Found::Node(_, y)) => Some(match (&x.kind, &y.kind) {
                (Kind::File(p), Kind::File(q)) => Arc::ptr_eq(p, q),
                (Kind::Host(p), Kind::Host(q)) => p == q,
                _ => false,
            }),
            (Found::Node(_, x), Found::Host(y)) | (Found::Host(y), Found::Node(_, x)) => {
                Some(x.kind == Kind::Host(y))
            }
            _ => Some(false),
        }
    }

    /// The modification time a recorded path would have (an archive member
    /// keeps its own); nothing when the path is not recorded.
    pub fn would_set_mtime(&self, path: &str, mtime: i64) {
        if let Some(n) = self.state.nodes.lock().unwrap().get_mut(&normalize(path)) {
            n.mtime = Some(mtime);
        }
    }

    /// Attributes check mode would set on an existing path.
    pub fn would_set_attrs(
        &self,
        path: &str,
        mode: Option<u32>,
        owner: Option<&str>,
        group: Option<&str>,
    ) {
        let path = normalize(path);
        let mut nodes = self.state.nodes.lock().unwrap();
        let n = nodes
            .entry(path.clone())
            .or_insert_with(|| Node::new(Kind::Host(path.clone())));
        if let Some(m) = mode {
            n.mode = Some(m);
        }
        if let Some(o) = owner {
            n.owner = Some(o.to_string());
        }
        if let Some(g) = group {
            n.group = Some(g.to_string());
        }
    }

    /// What earlier check-mode `pip` tasks would have done to environment `key`.
    pub fn pip_env(&self, key: &str) -> Option<PipEnv> {
        self.state.pips.lock().unwrap().get(key).cloned()
    }

    /// Record what a check-mode `pip` task would do to environment `key`.
    pub fn would_pip(&self, key: &str, change: impl FnOnce(&mut PipEnv)) {
        change(
            self.state
                .pips
                .lock()
                .unwrap()
                .entry(key.to_string())
                .or_default(),
        );
    }

    /// What earlier check-mode `user` tasks would have done to account `name`:
    /// `Some(Some(home))` added, `Some(None)` removed, `None` nothing.
    pub fn account(&self, name: &str) -> Option<Option<String>> {
        self.state.accounts.lock().unwrap().get(name).cloned()
    }

    /// Record that a check-mode `user` task would add (`Some(home)`) or remove account `name`.
    pub fn would_account(&self, name: &str, home: Option<String>) {
        self.state
            .accounts
            .lock()
            .unwrap()
            .insert(name.to_string(), home);
    }

    /// Whether check mode recorded `path` as made by an earlier task (a file,
    /// directory or link, or unknown content, which marks the asking task
    /// "not checked"); false for paths it knows nothing about.
    pub fn would_exist(&self, path: &str) -> bool {
        matches!(self.found(path), Found::Node(_, n) if n.kind != Kind::Absent)
    }

    /// Whether `path` is a directory check mode would create (nothing below
    /// it is on the host).
    pub fn is_created_dir(&self, path: &str) -> bool {
        matches!(self.found(path), Found::Node(_, n) if n.kind == Kind::Dir)
    }

    /// Stats of every path recorded below `path` that exists, by path.
    pub async fn recorded_below(
        &self,
        path: &str,
    ) -> Result<Vec<(String, FileStat)>, TransportError> {
        let path = normalize(path);
        let prefix = format!("{}/", path.trim_end_matches('/'));
        let below: Vec<(String, Node)> = {
            let nodes = self.state.nodes.lock().unwrap();
            nodes
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .filter(|(_, n)| n.kind != Kind::Absent && n.kind != Kind::Unknown)
                .map(|(k, n)| (k.clone(), n.clone()))
                .collect()
        };
        let mut out = Vec::new();
        for (p, n) in below {
            // Only what a lookup still reaches (not shadowed by a removed parent).
            if matches!(self.found(&p), Found::Node(..)) {
                let st = self.synth(&n).await?;
                if st.exists {
                    out.push((p, st));
                }
            }
        }
        Ok(out)
    }
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

#[async_trait]
impl Transport for CheckTransport {
    fn host(&self) -> &str {
        self.inner.host()
    }
    fn endpoint(&self) -> String {
        self.inner.endpoint()
    }
    async fn run(&self, spec: &CommandSpec) -> Result<CommandOutput, TransportError> {
        self.inner.run(spec).await
    }
    async fn put_file(&self, spec: &FileSpec) -> Result<(), TransportError> {
        let mut spec = spec.clone();
        // A new file written as the become user is that user's.
        if spec.owner.is_none()
            && let Some(b) = &spec.become_
        {
            spec.owner = Some(b.user.clone().unwrap_or_else(|| "root".into()));
        }
        self.would_put(&spec);
        Ok(())
    }
    async fn get_file(&self, path: &str) -> Result<Vec<u8>, TransportError> {
        let err = |what: &str| TransportError::Other {
            host: self.host().to_string(),
            reason: format!("reading {path}: {what}"),
        };
        match self.overlay_read(path) {
            OverlayRead::Content(c) => Ok(c),
            OverlayRead::NotFound => Err(err("No such file or directory (in check mode)")),
            OverlayRead::IsDir => Err(err("Is a directory (in check mode)")),
            OverlayRead::Host(p) => self.inner.get_file(&p).await,
        }
    }
    async fn stat(&self, path: &str) -> Result<FileStat, TransportError> {
        match self.found(path) {
            Found::Missing => Ok(FileStat::default()),
            Found::Host(p) => self.inner.stat(&p).await,
            Found::Node(_, n) if n.kind == Kind::Unknown => self.inner.stat(path).await,
            Found::Node(_, n) => self.synth(&n).await,
        }
    }
    /// The connection is the host's, shared with every other task: never closed here.
    async fn close(&self) {}
    fn simulation(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
        Some(self)
    }
}

/// The simulated host in front of a transport, if the engine put one there (a
/// `--check` run): `t.check_overlay()` on any transport or wrapper of one.
pub trait CheckOverlay {
    fn check_overlay(&self) -> Option<&CheckTransport>;
}

impl<T: Transport + ?Sized> CheckOverlay for T {
    fn check_overlay(&self) -> Option<&CheckTransport> {
        self.simulation()?.downcast_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::local::LocalTransport;

    fn tp() -> (tempfile::TempDir, CheckTransport) {
        let dir = tempfile::tempdir().unwrap();
        let t = CheckTransport::new(Arc::new(LocalTransport::new("h")), CheckState::new());
        (dir, t)
    }

    #[test]
    fn normalizes() {
        assert_eq!(normalize("/a//b/./c/"), "/a/b/c");
        assert_eq!(normalize("/a/b/../c"), "/a/c");
        assert_eq!(normalize("/"), "/");
        assert_eq!(normalize("rel/x/"), "rel/x");
    }

    #[tokio::test]
    async fn accounts_and_would_exist() {
        let (dir, t) = tp();
        assert_eq!(t.account("opslab"), None);
        t.would_account("opslab", Some("/home/opslab".into()));
        assert_eq!(t.account("opslab"), Some(Some("/home/opslab".into())));
        t.would_account("opslab", None);
        assert_eq!(t.account("opslab"), Some(None));

        let root = dir.path().display().to_string();
        let (made, unknown) = (format!("{root}/made"), format!("{root}/clone"));
        assert!(!t.would_exist(&made), "nothing recorded yet");
        t.would_mkdir(&made, None, None, None).await.unwrap();
        assert!(t.would_exist(&made));
        assert_eq!(t.unknown_seen(), None);
        t.would_be_unknown(&unknown);
        assert!(t.would_exist(&unknown));
        assert_eq!(
            t.unknown_seen(),
            Some(unknown.clone()),
            "asking marks the task not checked"
        );
        t.would_remove(&made);
        assert!(!t.would_exist(&made));
    }

    #[tokio::test]
    async fn later_ops_see_what_earlier_ones_would_have_made() {
        let (dir, t) = tp();
        let root = dir.path().display().to_string();
        let d = format!("{root}/new/sub");
        t.would_mkdir(&d, Some(0o750), None, None).await.unwrap();
        let st = t.stat(&d).await.unwrap();
        assert!(st.exists && st.is_dir && st.mode == 0o750, "{st:?}");
        assert!(t.stat(&format!("{root}/new")).await.unwrap().is_dir);
        assert!(!t.stat(&format!("{d}/f")).await.unwrap().exists);
        // The parent that exists on the host is not recorded with the mode.
        assert_eq!(t.stat(&root).await.unwrap().mode & 0o7777, {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o7777
        });
        t.put_file(&FileSpec {
            path: format!("{d}/f"),
            content: b"x\n".to_vec(),
            ..FileSpec::default()
        })
        .await
        .unwrap();
        let st = t.stat(&format!("{d}/f")).await.unwrap();
        assert!(st.is_file && st.size == 2 && st.mode == 0o644, "{st:?}");
        assert_eq!(t.get_file(&format!("{d}/f")).await.unwrap(), b"x\n");
        // Through a would-be link.
        t.would_link(&format!("{root}/l"), "new/sub", None, None);
        assert_eq!(t.get_file(&format!("{root}/l/f")).await.unwrap(), b"x\n");
        assert!(t.stat(&format!("{root}/l")).await.unwrap().is_link);
        assert_eq!(
            t.resolve_links(&format!("{root}/l/f")),
            Some(format!("{d}/f"))
        );
        assert_eq!(t.resolve_links(&format!("{root}/l")), Some(d.clone()));
        assert_eq!(t.resolve_links(&format!("{root}/other")), None);
        // Hard link shares the file; attrs; removal hides everything below.
        t.would_hardlink(&format!("{d}/h"), &format!("{d}/f"));
        assert_eq!(
            t.same_file(&format!("{d}/h"), &format!("{d}/f")),
            Some(true)
        );
        t.would_set_attrs(&format!("{d}/f"), Some(0o600), Some("nobody"), None);
        let st = t.stat(&format!("{d}/f")).await.unwrap();
        assert_eq!((st.mode, st.owner.as_str()), (0o600, "nobody"));
        assert_eq!(t.recorded_below(&d).await.unwrap().len(), 2);
        t.would_remove(&format!("{root}/new"));
        assert!(!t.stat(&d).await.unwrap().exists);
        assert!(t.get_file(&format!("{d}/f")).await.is_err());
        // The host was never touched.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn host_files_show_through_and_attrs_overlay_them() {
        let (dir, t) = tp();
        let f = dir.path().join("host.txt");
        std::fs::write(&f, "host\n").unwrap();
        let p = f.display().to_string();
        assert_eq!(t.get_file(&p).await.unwrap(), b"host\n");
        t.would_set_attrs(&p, Some(0o600), None, None);
        let st = t.stat(&p).await.unwrap();
        assert!(st.is_file && st.mode == 0o600 && st.size == 5, "{st:?}");
        assert_eq!(t.same_file(&p, &p), Some(true));
        t.would_hardlink(&format!("{}/hard", dir.path().display()), &p);
        assert_eq!(
            t.get_file(&format!("{}/hard", dir.path().display()))
                .await
                .unwrap(),
            b"host\n"
        );
        use std::os::unix::fs::PermissionsExt;
        assert_ne!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
