//! The experiment file: its schema, read from a positioned YAML tree into an
//! [`ExperimentSpec`], every mistake a [`Problem`] at its `file:line:col`.
//!
//! Written either as the value of a play's `experiment:` key (the play's `name:`
//! and `hosts:` then give the defaults of `name` and `pairs`), or as a file of its
//! own whose top level is this mapping (`ferry experiment -i INV FILE`):
//!
//! ```yaml
//! name: icclab-10g               # names the results directory
//! driver: virsh                  # qmp | virsh | nova
//! driver_options: {}             # passed to the driver as written
//! pairs: [[compute1, compute2]]  # or a host pattern: consecutive hosts pair up
//! prober: controller1            # where the ping probe runs (default below)
//! repetitions: 5
//! warmup: 1                      # warm-up runs per pair, first, recorded as warmup
//! seed: 42                       # of the run order's shuffle (default: from the clock)
//! parallel_pairs: false          # disjoint pairs migrate at the same time
//! shape_link: false              # apply link rate/MTU with tc (default: on a ferry lab)
//! guest_dir: /var/lib/ferry/guest
//! sample_interval: 50ms          # bare numbers: ms
//! probe_interval: 10ms           # bare numbers: ms
//! timeouts: {migration: 300s, boot: 120s, answer: 10s}   # bare numbers: s
//! scale: {flavor: 0.0625, min_memory_mib: 96, note: "..."}   # recorded in provenance
//! matrix:
//!   flavor: [m1.tiny, m1.small, {name: lab, vcpus: 1, memory_mib: 160, disk_gib: 0}]
//!   algorithm: [precopy, postcopy, {name: hybrid-2, kind: hybrid, after_rounds: 2}]
//!   load: [idle, {name: mem-64, memory: {working_set_mib: 64, rate_mib_s: 32}}]
//!   link: [1gbit, {name: lab-1g, rate: 1gbit, mtu: 1500, stands_for: 10gbit}]
//! ```
//!
//! `docs/experiments.md` describes every key.

use std::time::Duration;

use serde_json::Value;

use super::driver::DriverKind;
use super::flavor::{self, FlavorScale};
use super::quantity::{format_rate, parse_duration, parse_rate};
use super::scenario::{
    Algorithm, AlgorithmKind, Direction, DiskLoad, DiskWhen, Flavor, Link, Load, MemoryLoad,
    NetworkLoad,
};
use crate::playbook::diag::Problem;
use crate::playbook::model::SourceLoc;
use crate::playbook::suggest;
use crate::yaml::{Node, NodeKind};

/// Keys of an experiment file's top level.
pub const TOP_KEYS: &[&str] = &[
    "name",
    "driver",
    "driver_options",
    "pairs",
    "prober",
    "matrix",
    "repetitions",
    "warmup",
    "timeouts",
    "sample_interval",
    "probe_interval",
    "seed",
    "parallel_pairs",
    "shape_link",
    "guest_dir",
    "scale",
];
const MATRIX_KEYS: &[&str] = &["flavor", "algorithm", "load", "link"];
const TIMEOUT_KEYS: &[&str] = &["migration", "boot", "answer"];
const SCALE_KEYS: &[&str] = &["flavor", "min_memory_mib", "note"];
const FLAVOR_KEYS: &[&str] = &["name", "vcpus", "memory_mib", "disk_gib"];
const ALGORITHM_KEYS: &[&str] = &[
    "name",
    "kind",
    "after_rounds",
    "after_seconds",
    "auto_converge",
    "xbzrle",
    "multifd",
    "compress",
    "max_bandwidth",
    "downtime_limit",
    "block",
    "incremental",
    "tunnelled",
];
const LOAD_KEYS: &[&str] = &["name", "memory", "cpu", "network", "disk"];
const MEMORY_KEYS: &[&str] = &["working_set_mib", "rate_mib_s"];
const CPU_KEYS: &[&str] = &["threads"];
const NETWORK_KEYS: &[&str] = &["rate", "direction"];
const DISK_KEYS: &[&str] = &["write_mib", "when"];
const LINK_KEYS: &[&str] = &["name", "rate", "mtu", "stands_for"];

/// The default guest directory of `playbooks/guest.yml`'s role.
pub const DEFAULT_GUEST_DIR: &str = "/var/lib/ferry/guest";

/// Which hosts migrate: explicit `[source, destination]` pairs, or a host pattern
/// whose hosts pair up in inventory order (1st->2nd, 3rd->4th, ...).
#[derive(Debug, Clone, PartialEq)]
pub enum PairsSpec {
    Explicit(Vec<[(String, SourceLoc); 2]>),
    Pattern(String, SourceLoc),
}

/// Per-run time limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeouts {
    pub migration: Duration,
    pub boot: Duration,
    pub answer: Duration,
}

/// An experiment file, read and validated (not yet resolved against an inventory).
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentSpec {
    pub name: String,
    pub driver: DriverKind,
    pub driver_options: Value,
    pub pairs: PairsSpec,
    /// Where `pairs` was written (or the play's `hosts:`).
    pub pairs_loc: SourceLoc,
    pub prober: Option<(String, SourceLoc)>,
    pub flavors: Vec<Flavor>,
    pub algorithms: Vec<Algorithm>,
    pub loads: Vec<Load>,
    pub links: Vec<Link>,
    pub repetitions: u32,
    pub warmup: u32,
    pub timeouts: Timeouts,
    pub sample_interval: Duration,
    pub probe_interval: Duration,
    pub seed: Option<u64>,
    pub parallel_pairs: bool,
    /// None: decide from the inventory (true on a ferry lab).
    pub shape_link: Option<bool>,
    pub guest_dir: String,
    /// `scale:` as written (recorded in provenance).
    pub scale: Option<Value>,
    pub flavor_scale: FlavorScale,
    /// Where the experiment mapping starts.
    pub loc: SourceLoc,
}

/// What a play around `experiment:` gives: defaults for `name` and `pairs`.
#[derive(Debug, Clone, Default)]
pub struct PlayDefaults {
    pub name: Option<String>,
    pub hosts: Option<(String, SourceLoc)>,
}

impl PlayDefaults {
    /// From a play's mapping node (the one holding `experiment:`).
    pub fn of_play(play: &Node) -> PlayDefaults {
        PlayDefaults {
            name: play.get("name").and_then(Node::scalar_text),
            hosts: play.get("hosts").and_then(|h| match &h.kind {
                NodeKind::Str(s) => Some((s.clone(), h.loc.clone())),
                NodeKind::Seq(items) => Some((
                    items
                        .iter()
                        .filter_map(Node::scalar_text)
                        .collect::<Vec<_>>()
                        .join(":"),
                    h.loc.clone(),
                )),
                _ => None,
            }),
        }
    }
}

/// Reads an experiment mapping. Err: every problem found (the spec is unusable).
pub fn parse(node: &Node, play: &PlayDefaults) -> Result<ExperimentSpec, Vec<Problem>> {
    let mut p = SpecReader {
        problems: Vec::new(),
    };
    let spec = p.spec(node, play);
    match spec {
        Some(s) if p.problems.is_empty() => Ok(s),
        _ => Err(p.problems),
    }
}

struct SpecReader {
    problems: Vec<Problem>,
}

impl SpecReader {
    fn error(&mut self, loc: &SourceLoc, msg: impl Into<String>, hint: impl Into<String>) {
        self.problems
            .push(Problem::error(loc, msg).hint(hint.into()));
    }

    /// The mapping's entries, with unknown keys reported (and a suggestion).
    fn entries<'n>(
        &mut self,
        node: &'n Node,
        known: &[&str],
        what: &str,
    ) -> Vec<(&'n str, &'n Node)> {
        let Some(map) = node.as_map() else {
            self.problems.push(
                Problem::error(
                    &node.loc,
                    format!("{what} must be a mapping, not {}", node.type_name()),
                )
                .label("here"),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in map {
            let key = match &k.kind {
                NodeKind::Str(s) => s.as_str(),
                _ => {
                    self.problems.push(Problem::error(
                        &k.loc,
                        format!("{what} keys are names, not {}", k.type_name()),
                    ));
                    continue;
                }
            };
            if known.contains(&key) {
                out.push((key, v));
            } else {
                let hint = match suggest(key, known.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("{what} keys: {}", known.join(", ")),
                };
                self.problems.push(
                    Problem::error(&k.loc, format!("unknown {what} key `{key}`"))
                        .label("unknown key")
                        .hint(hint)
                        .span_len(key.len()),
                );
            }
        }
        out
    }

    fn string(&mut self, key: &str, v: &Node) -> Option<String> {
        match &v.kind {
            NodeKind::Str(s) if !s.trim().is_empty() => Some(s.clone()),
            NodeKind::Int(_) | NodeKind::Float(_) => v.scalar_text(),
            _ => {
                self.error(
                    &v.loc,
                    format!("`{key}` must be a non-empty string, not {}", v.type_name()),
                    format!("write `{key}: some-text`"),
                );
                None
            }
        }
    }

    fn uint(&mut self, key: &str, v: &Node, min: u64) -> Option<u64> {
        match v.as_i64() {
            Some(i) if i >= min as i64 => Some(i as u64),
            _ => {
                self.error(
                    &v.loc,
                    format!(
                        "`{key}` must be a whole number >= {min}, not {}",
                        describe(v)
                    ),
                    format!("write e.g. `{key}: {}`", min.max(1)),
                );
                None
            }
        }
    }

    fn positive(&mut self, key: &str, v: &Node) -> Option<f64> {
        match v.as_f64() {
            Some(f) if f > 0.0 => Some(f),
            _ => {
                self.error(
                    &v.loc,
                    format!("`{key}` must be a number > 0, not {}", describe(v)),
                    format!("write e.g. `{key}: 1`"),
                );
                None
            }
        }
    }

    fn boolean(&mut self, key: &str, v: &Node) -> Option<bool> {
        match v.as_bool() {
            Some(b) => Some(b),
            None => {
                self.error(
                    &v.loc,
                    format!("`{key}` must be true or false, not {}", describe(v)),
                    format!("write `{key}: true` or `{key}: false`"),
                );
                None
            }
        }
    }

    fn duration(
        &mut self,
        key: &str,
        v: &Node,
        bare: Duration,
        bare_name: &str,
    ) -> Option<Duration> {
        let d = v.scalar_text().and_then(|t| parse_duration(&t, bare));
        if d.is_none() {
            self.error(
                &v.loc,
                format!("`{key}` must be a duration, not {}", describe(v)),
                format!(
                    "write e.g. `{key}: 250ms`, `2s` or `5m` (a bare number is in {bare_name})"
                ),
            );
        }
        d
    }

    fn rate(&mut self, key: &str, v: &Node) -> Option<u64> {
        let r = v.as_str().and_then(parse_rate);
        if r.is_none() {
            self.error(
                &v.loc,
                format!("`{key}` must be a rate like `1gbit` or `100mbit`, not {}", describe(v)),
                "rates are written as tc writes them: a number and kbit, mbit, gbit (decimal: 1gbit = 10^9 bits/s)",
            );
        }
        r
    }

    fn list<'n>(&mut self, key: &str, v: &'n Node) -> &'n [Node] {
        match &v.kind {
            NodeKind::Seq(items) if !items.is_empty() => items,
            NodeKind::Seq(_) => {
                self.error(
                    &v.loc,
                    format!("`{key}` is empty"),
                    format!(
                        "give `{key}` at least one value, or leave the key out for its default"
                    ),
                );
                &[]
            }
            _ => {
                self.error(
                    &v.loc,
                    format!("`{key}` must be a list, not {}", v.type_name()),
                    format!("write `{key}: [a, b]`"),
                );
                &[]
            }
        }
    }

    fn spec(&mut self, node: &Node, play: &PlayDefaults) -> Option<ExperimentSpec> {
        let entries = self.entries(node, TOP_KEYS, "experiment");
        node.as_map()?;
        let get = |k: &str| entries.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
        let name = match get("name") {
            Some(v) => self.string("name", v).map(|n| {
                if n.contains('/') || n.starts_with('.') {
                    self.error(
                        &v.loc,
                        format!("`name` names a directory; `{n}` cannot be one"),
                        "use letters, digits, `-`, `_` and `.`",
                    );
                }
                n
            }),
            None => match &play.name {
                Some(n) => Some(n.replace('/', "-")),
                None => {
                    self.error(
                        &node.loc,
                        "the experiment has no `name`",
                        "add `name: my-experiment`: it names the results directory",
                    );
                    None
                }
            },
        };
        let driver = match get("driver") {
            Some(v) => match v.as_str() {
                Some("qmp") => Some(DriverKind::Qmp),
                Some("virsh") => Some(DriverKind::Virsh),
                Some("nova") => Some(DriverKind::Nova),
                _ => {
                    let hint = match v.as_str().and_then(|s| suggest(s, ["qmp", "virsh", "nova"])) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => "drivers: qmp (ferry runs QEMU), virsh (libvirt), nova (nova live-migration)".into(),
                    };
                    self.error(&v.loc, format!("unknown driver {}", describe(v)), hint);
                    None
                }
            },
            None => {
                self.error(&node.loc, "the experiment has no `driver`", "add `driver: qmp` (ferry runs QEMU itself), `virsh` (guests under libvirt) or `nova`");
                None
            }
        };
        let driver_options = match get("driver_options") {
            Some(v) if v.as_map().is_some() || v.is_null() => v.to_value(),
            Some(v) => {
                self.error(
                    &v.loc,
                    "`driver_options` must be a mapping",
                    "write `driver_options: {key: value}`",
                );
                Value::Null
            }
            None => Value::Object(Default::default()),
        };
        let pairs = match get("pairs") {
            Some(v) => self.pairs(v).map(|p| (p, v.loc.clone())),
            None => match &play.hosts {
                Some((pattern, loc)) => Some((
                    PairsSpec::Pattern(pattern.clone(), loc.clone()),
                    loc.clone(),
                )),
                None => {
                    self.error(&node.loc, "the experiment has no `pairs`", "add `pairs: [[compute1, compute2]]` (source, destination) or a host pattern such as `pairs: compute`");
                    None
                }
            },
        };
        let prober =
            get("prober").and_then(|v| self.string("prober", v).map(|s| (s, v.loc.clone())));
        let repetitions = get("repetitions").map_or(Some(1), |v| self.uint("repetitions", v, 1));
        let warmup = get("warmup").map_or(Some(0), |v| self.uint("warmup", v, 0));
        let mut timeouts = Timeouts {
            migration: Duration::from_secs(300),
            boot: Duration::from_secs(120),
            answer: Duration::from_secs(10),
        };
        if let Some(t) = get("timeouts") {
            for (k, v) in self.entries(t, TIMEOUT_KEYS, "timeouts") {
                if let Some(d) = self.duration(k, v, Duration::from_secs(1), "seconds") {
                    match k {
                        "migration" => timeouts.migration = d,
                        "boot" => timeouts.boot = d,
                        _ => timeouts.answer = d,
                    }
                }
            }
        }
        let ms = Duration::from_millis(1);
        let sample_interval = get("sample_interval").map_or(Some(Duration::from_millis(50)), |v| {
            self.duration("sample_interval", v, ms, "milliseconds")
        });
        let probe_interval = get("probe_interval").map_or(Some(Duration::from_millis(10)), |v| {
            self.duration("probe_interval", v, ms, "milliseconds")
        });
        for (key, d) in [
            ("sample_interval", sample_interval),
            ("probe_interval", probe_interval),
        ] {
            if let (Some(d), Some(v)) = (d, get(key))
                && d < Duration::from_millis(1)
            {
                self.error(
                    &v.loc,
                    format!("`{key}` must be at least 1ms"),
                    "write e.g. `10ms`",
                );
            }
        }
        let seed = get("seed").and_then(|v| self.uint("seed", v, 0));
        let parallel_pairs =
            get("parallel_pairs").map_or(Some(false), |v| self.boolean("parallel_pairs", v));
        let shape_link = get("shape_link").and_then(|v| self.boolean("shape_link", v));
        let guest_dir = match get("guest_dir") {
            Some(v) => self.string("guest_dir", v).inspect(|d| {
                if !d.starts_with('/') {
                    self.error(
                        &v.loc,
                        "`guest_dir` must be an absolute path on the hosts",
                        format!("write e.g. `guest_dir: {DEFAULT_GUEST_DIR}`"),
                    );
                }
            }),
            None => Some(DEFAULT_GUEST_DIR.to_string()),
        };
        let mut flavor_scale = FlavorScale::default();
        let scale = get("scale").map(|v| {
            if v.as_map().is_some() {
                for (k, sv) in self.entries(v, SCALE_KEYS, "scale") {
                    match k {
                        "flavor" => {
                            if let Some(f) = self.positive("flavor", sv) {
                                flavor_scale.factor = f;
                            }
                        }
                        "min_memory_mib" => {
                            if let Some(m) = self.uint("min_memory_mib", sv, 1) {
                                flavor_scale.min_memory_mib = m;
                            }
                        }
                        _ => {}
                    }
                }
            } else if v.as_str().is_none() {
                self.error(&v.loc, "`scale` must be a mapping (flavor, min_memory_mib, note) or a note", "write `scale: {flavor: 0.0625, min_memory_mib: 96, note: \"lab: 1gbit stands for 10gbit\"}`");
            }
            v.to_value()
        });
        let (mut flavors, mut algorithms, mut loads, mut links) = (None, None, None, None);
        match get("matrix") {
            Some(m) => {
                for (k, v) in self.entries(m, MATRIX_KEYS, "matrix") {
                    let items = self.list(k, v);
                    match k {
                        "flavor" => {
                            flavors = Some(self.axis(
                                k,
                                items,
                                |r, n| r.flavor(n, &flavor_scale),
                                |f| f.name.clone(),
                            ))
                        }
                        "algorithm" => {
                            algorithms =
                                Some(self.axis(k, items, SpecReader::algorithm, |a| a.name.clone()))
                        }
                        "load" => {
                            loads = Some(self.axis(k, items, SpecReader::load, |l| l.name.clone()))
                        }
                        _ => {
                            links = Some(self.axis(k, items, SpecReader::link, |l| l.name.clone()))
                        }
                    }
                }
                if m.as_map().is_some() && flavors.is_none() {
                    self.error(
                        &m.loc,
                        "the matrix has no `flavor` axis",
                        format!(
                            "add `flavor: [m1.small]` (built in: {})",
                            flavor::built_in_names().collect::<Vec<_>>().join(", ")
                        ),
                    );
                }
            }
            None => self.error(
                &node.loc,
                "the experiment has no `matrix`",
                "add `matrix:` with at least `flavor: [m1.small]`",
            ),
        }
        let algorithms = algorithms.unwrap_or_else(|| vec![precopy()]);
        let loads = loads.unwrap_or_else(|| vec![idle()]);
        let links = links.unwrap_or_else(|| vec![as_found()]);
        let (pairs, pairs_loc) = pairs?;
        Some(ExperimentSpec {
            name: name?,
            driver: driver?,
            driver_options,
            pairs,
            pairs_loc,
            prober,
            flavors: flavors?,
            algorithms,
            loads,
            links,
            repetitions: repetitions? as u32,
            warmup: warmup? as u32,
            timeouts,
            sample_interval: sample_interval?,
            probe_interval: probe_interval?,
            seed,
            parallel_pairs: parallel_pairs?,
            shape_link,
            guest_dir: guest_dir?,
            scale,
            flavor_scale,
            loc: node.loc.clone(),
        })
    }

    /// One axis: each item read by `item`; labels must be unique (they make the run ids).
    fn axis<T>(
        &mut self,
        key: &str,
        items: &[Node],
        item: impl Fn(&mut SpecReader, &Node) -> Option<T>,
        label: impl Fn(&T) -> String,
    ) -> Vec<T> {
        let mut out: Vec<T> = Vec::new();
        for n in items {
            if let Some(v) = item(self, n) {
                let l = label(&v);
                if out.iter().any(|o| label(o) == l) {
                    self.error(&n.loc, format!("`{key}` has `{l}` twice"), "each value of an axis needs its own `name:` (the name is part of every run id)");
                } else if l.contains('/') || l.contains('#') {
                    self.error(&n.loc, format!("`{key}` name `{l}` contains `/` or `#`"), "run ids are `flavor/algorithm/load/link#repetition`: give it a name without them");
                } else {
                    out.push(v);
                }
            }
        }
        out
    }

    fn flavor(&mut self, n: &Node, scale: &FlavorScale) -> Option<Flavor> {
        if let Some(name) = n.as_str() {
            return match flavor::built_in(name) {
                Some(f) => Some(scale.apply(&f)),
                None => {
                    let hint = match suggest(name, flavor::built_in_names()) {
                        Some(s) => format!(
                            "did you mean `{s}`? (or define it: `{{name: {name}, vcpus: 1, memory_mib: 512, disk_gib: 1}}`)"
                        ),
                        None => format!(
                            "built in: {}; or define it: `{{name: {name}, vcpus: 1, memory_mib: 512, disk_gib: 1}}`",
                            flavor::built_in_names().collect::<Vec<_>>().join(", ")
                        ),
                    };
                    self.error(&n.loc, format!("unknown flavor `{name}`"), hint);
                    None
                }
            };
        }
        let entries = self.entries(n, FLAVOR_KEYS, "flavor");
        n.as_map()?;
        let get = |k: &str| entries.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
        let name = match get("name") {
            Some(v) => self.string("name", v)?,
            None => {
                self.error(
                    &n.loc,
                    "a flavor needs a `name`",
                    "write `{name: lab, vcpus: 1, memory_mib: 128, disk_gib: 0}`",
                );
                return None;
            }
        };
        // A built-in name with some values changed starts from the built-in values.
        let base = flavor::built_in(&name);
        let vcpus = match get("vcpus") {
            Some(v) => self.uint("vcpus", v, 1).map(|x| x as u32),
            None => base.as_ref().map(|b| b.vcpus).or(Some(1)),
        };
        let memory_mib = match get("memory_mib") {
            Some(v) => self.uint("memory_mib", v, 1),
            None => match &base {
                Some(b) => Some(b.memory_mib),
                None => {
                    self.error(
                        &n.loc,
                        format!("flavor `{name}` needs `memory_mib`"),
                        "write e.g. `memory_mib: 128`",
                    );
                    None
                }
            },
        };
        let disk_gib = match get("disk_gib") {
            Some(v) => match v.as_f64() {
                Some(d) if d >= 0.0 => Some(d),
                _ => {
                    self.error(
                        &v.loc,
                        format!("`disk_gib` must be a number >= 0, not {}", describe(v)),
                        "write e.g. `disk_gib: 1` (0: no ephemeral disk)",
                    );
                    None
                }
            },
            None => Some(base.as_ref().map_or(0.0, |b| b.disk_gib)),
        };
        Some(scale.apply(&Flavor {
            name,
            vcpus: vcpus?,
            memory_mib: memory_mib?,
            disk_gib: disk_gib?,
        }))
    }

    fn algorithm(&mut self, n: &Node) -> Option<Algorithm> {
        if let Some(name) = n.as_str() {
            return match kind_of(name) {
                Some(kind) => Some(Algorithm {
                    name: name.to_string(),
                    kind,
                    switch_after_rounds: (kind == AlgorithmKind::Hybrid).then_some(1),
                    ..Algorithm::default()
                }),
                None => {
                    let hint = match suggest(name, ["precopy", "postcopy", "hybrid"]) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => "algorithms: precopy, postcopy, hybrid, or a mapping `{name: my-algo, kind: precopy, auto_converge: true}`".into(),
                    };
                    self.error(&n.loc, format!("unknown algorithm `{name}`"), hint);
                    None
                }
            };
        }
        let entries = self.entries(n, ALGORITHM_KEYS, "algorithm");
        n.as_map()?;
        let get = |k: &str| entries.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
        let name = match get("name") {
            Some(v) => self.string("name", v)?,
            None => match get("kind").and_then(Node::as_str) {
                Some(k) => k.to_string(),
                None => {
                    self.error(
                        &n.loc,
                        "an algorithm needs a `name` (or at least a `kind`)",
                        "write `{name: precopy-ac, kind: precopy, auto_converge: true}`",
                    );
                    return None;
                }
            },
        };
        let kind = match get("kind") {
            Some(v) => match v.as_str().and_then(kind_of) {
                Some(k) => k,
                None => {
                    self.error(
                        &v.loc,
                        format!("unknown algorithm kind {}", describe(v)),
                        "kinds: precopy, postcopy, hybrid",
                    );
                    return None;
                }
            },
            None => match kind_of(&name) {
                Some(k) => k,
                None => {
                    self.error(
                        &n.loc,
                        format!("algorithm `{name}` needs a `kind`"),
                        "add `kind: precopy`, `postcopy` or `hybrid`",
                    );
                    return None;
                }
            },
        };
        let mut a = Algorithm {
            name,
            kind,
            ..Algorithm::default()
        };
        for (k, v) in &entries {
            match *k {
                "after_rounds" => a.switch_after_rounds = self.uint(k, v, 1).map(|x| x as u32),
                "after_seconds" => {
                    a.switch_after_s = self
                        .duration(k, v, Duration::from_secs(1), "seconds")
                        .map(|d| d.as_secs_f64())
                }
                "auto_converge" => a.auto_converge = self.boolean(k, v).unwrap_or(false),
                "xbzrle" => a.xbzrle_cache_mib = self.uint("xbzrle (cache MiB)", v, 1),
                "multifd" => {
                    a.multifd_channels = self.uint("multifd (channels)", v, 1).map(|x| x as u32)
                }
                "compress" => a.compress = self.boolean(k, v).unwrap_or(false),
                "max_bandwidth" => a.max_bandwidth_mib_s = self.uint("max_bandwidth (MiB/s)", v, 1),
                "downtime_limit" => {
                    a.downtime_limit_ms = self
                        .duration(k, v, Duration::from_millis(1), "milliseconds")
                        .map(|d| d.as_millis() as u64)
                }
                "block" => a.block = self.boolean(k, v).unwrap_or(false),
                "incremental" => a.incremental = self.boolean(k, v).unwrap_or(false),
                "tunnelled" => a.tunnelled = self.boolean(k, v).unwrap_or(false),
                _ => {}
            }
        }
        let switch_keys = get("after_rounds").or(get("after_seconds"));
        match (kind, switch_keys) {
            (AlgorithmKind::Hybrid, None) => a.switch_after_rounds = Some(1),
            (AlgorithmKind::Hybrid, Some(_)) => {}
            (_, Some(v)) => self.error(
                &v.loc,
                format!(
                    "`after_rounds`/`after_seconds` only apply to hybrid, and `{}` is {:?}",
                    a.name, kind
                )
                .to_lowercase(),
                "set `kind: hybrid`, or remove the key",
            ),
            _ => {}
        }
        if a.incremental
            && !a.block
            && let Some(v) = get("incremental")
        {
            self.error(&v.loc, "`incremental` needs `block: true`", "incremental block migration copies only what changed of a non-shared disk: add `block: true`");
        }
        Some(a)
    }

    fn load(&mut self, n: &Node) -> Option<Load> {
        if let Some(name) = n.as_str() {
            if name == "idle" {
                return Some(idle());
            }
            self.error(&n.loc, format!("unknown load `{name}`"), "`idle`, or a mapping such as `{name: mem-64, memory: {working_set_mib: 64, rate_mib_s: 32}}`");
            return None;
        }
        let entries = self.entries(n, LOAD_KEYS, "load");
        n.as_map()?;
        let mut load = Load::default();
        let mut ok = true;
        for (k, v) in &entries {
            match *k {
                "name" => load.name = self.string(k, v).unwrap_or_default(),
                "memory" => {
                    let e = self.entries(v, MEMORY_KEYS, "memory load");
                    let ws = e
                        .iter()
                        .find(|(x, _)| *x == "working_set_mib")
                        .map(|(_, v)| *v);
                    let working_set_mib = match ws {
                        Some(w) => self.uint("working_set_mib", w, 1),
                        None => {
                            self.error(&v.loc, "a memory load needs `working_set_mib`", "write `memory: {working_set_mib: 64, rate_mib_s: 32}` (rate_mib_s: max for as fast as the guest can)");
                            None
                        }
                    };
                    let rate = match e.iter().find(|(x, _)| *x == "rate_mib_s").map(|(_, v)| *v) {
                        None => Some(None),
                        Some(r) if r.as_str() == Some("max") => Some(None),
                        Some(r) => self.positive("rate_mib_s", r).map(Some),
                    };
                    match (working_set_mib, rate) {
                        (Some(working_set_mib), Some(rate_mib_s)) => {
                            load.memory = Some(MemoryLoad {
                                working_set_mib,
                                rate_mib_s,
                            })
                        }
                        _ => ok = false,
                    }
                }
                "cpu" => {
                    let threads = if v.as_map().is_some() {
                        let e = self.entries(v, CPU_KEYS, "cpu load");
                        match e.first() {
                            Some((_, t)) => self.uint("threads", t, 1),
                            None => {
                                self.error(
                                    &v.loc,
                                    "a cpu load needs `threads`",
                                    "write `cpu: {threads: 1}` or `cpu: 1`",
                                );
                                None
                            }
                        }
                    } else {
                        self.uint("cpu (threads)", v, 1)
                    };
                    match threads {
                        Some(t) => load.cpu_threads = Some(t as u32),
                        None => ok = false,
                    }
                }
                "network" => {
                    let e = self.entries(v, NETWORK_KEYS, "network load");
                    let rate = match e.iter().find(|(x, _)| *x == "rate") {
                        Some((_, r)) => self.rate("rate", r),
                        None => {
                            self.error(
                                &v.loc,
                                "a network load needs `rate`",
                                "write `network: {rate: 100mbit, direction: out}`",
                            );
                            None
                        }
                    };
                    let direction = match e.iter().find(|(x, _)| *x == "direction").map(|(_, d)| *d)
                    {
                        None => Some(Direction::Out),
                        Some(d) => {
                            match d.as_str() {
                                Some("in") => Some(Direction::In),
                                Some("out") => Some(Direction::Out),
                                _ => {
                                    self.error(&d.loc, format!("`direction` is `in` or `out`, not {}", describe(d)), "seen from the guest: `out` streams from the guest, `in` to it");
                                    None
                                }
                            }
                        }
                    };
                    match (rate, direction) {
                        (Some(r), Some(direction)) => {
                            load.network = Some(NetworkLoad {
                                rate_mbit: r as f64 / 1e6,
                                direction,
                            })
                        }
                        _ => ok = false,
                    }
                }
                "disk" => {
                    let e = self.entries(v, DISK_KEYS, "disk load");
                    let write = match e.iter().find(|(x, _)| *x == "write_mib") {
                        Some((_, w)) => self.uint("write_mib", w, 1),
                        None => {
                            self.error(
                                &v.loc,
                                "a disk load needs `write_mib`",
                                "write `disk: {write_mib: 64, when: during}`",
                            );
                            None
                        }
                    };
                    let when = match e.iter().find(|(x, _)| *x == "when").map(|(_, d)| *d) {
                        None => Some(DiskWhen::During),
                        Some(d) => match d.as_str() {
                            Some("before") => Some(DiskWhen::Before),
                            Some("during") => Some(DiskWhen::During),
                            Some("both") => Some(DiskWhen::Both),
                            _ => {
                                self.error(&d.loc, format!("`when` is `before`, `during` or `both`, not {}", describe(d)), "before: written to the ephemeral disk before the migration starts");
                                None
                            }
                        },
                    };
                    match (write, when) {
                        (Some(write_mib), Some(when)) => {
                            load.disk = Some(DiskLoad { write_mib, when })
                        }
                        _ => ok = false,
                    }
                }
                _ => {}
            }
        }
        if load.name.is_empty() {
            if ok {
                self.error(
                    &n.loc,
                    "a load needs a `name`",
                    "write e.g. `name: mem-64`: it labels the load in run ids and tables",
                );
            }
            return None;
        }
        ok.then_some(load)
    }

    fn link(&mut self, n: &Node) -> Option<Link> {
        if let Some(text) = n.as_str() {
            if matches!(text, "as-is" | "as_is" | "unshaped") {
                return Some(as_found());
            }
            let rate = self.rate("link", n)?;
            return Some(Link {
                name: format_rate(rate),
                rate_bps: Some(rate),
                mtu: None,
                stands_for_bps: None,
            });
        }
        let entries = self.entries(n, LINK_KEYS, "link");
        n.as_map()?;
        let get = |k: &str| entries.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
        let rate = match get("rate") {
            Some(v) => Some(self.rate("rate", v)?),
            None => None,
        };
        let mtu = match get("mtu") {
            Some(v) => match v.as_i64() {
                Some(m) if (576..=65535).contains(&m) => Some(m as u32),
                _ => {
                    self.error(
                        &v.loc,
                        format!("`mtu` must be between 576 and 65535, not {}", describe(v)),
                        "write e.g. `mtu: 1500` or `mtu: 9000` (jumbo frames)",
                    );
                    return None;
                }
            },
            None => None,
        };
        let stands_for = match get("stands_for") {
            Some(v) => Some(self.rate("stands_for", v)?),
            None => None,
        };
        let name = match get("name") {
            Some(v) => self.string("name", v)?,
            None => match rate {
                Some(r) => format_rate(r),
                None => "as-is".into(),
            },
        };
        Some(Link {
            name,
            rate_bps: rate,
            mtu,
            stands_for_bps: stands_for,
        })
    }

    fn pairs(&mut self, v: &Node) -> Option<PairsSpec> {
        if let Some(p) = v.as_str() {
            return Some(PairsSpec::Pattern(p.to_string(), v.loc.clone()));
        }
        let hint = "write `pairs: [[source, destination], ...]` with inventory host names, or a host pattern such as `pairs: compute`";
        let Some(items) = v.as_seq() else {
            self.error(
                &v.loc,
                format!(
                    "`pairs` must be a list of [source, destination] or a host pattern, not {}",
                    v.type_name()
                ),
                hint,
            );
            return None;
        };
        if items.is_empty() {
            self.error(&v.loc, "`pairs` is empty", hint);
            return None;
        }
        let mut out = Vec::new();
        for item in items {
            match item.as_seq() {
                Some([a, b]) if a.as_str().is_some() && b.as_str().is_some() => {
                    let (a_name, b_name) = (
                        a.as_str().unwrap_or_default(),
                        b.as_str().unwrap_or_default(),
                    );
                    if a_name == b_name {
                        self.error(
                            &item.loc,
                            format!("pair [{a_name}, {b_name}] migrates a host to itself"),
                            "a pair is [source, destination]: two different hosts",
                        );
                        continue;
                    }
                    out.push([
                        (a_name.to_string(), a.loc.clone()),
                        (b_name.to_string(), b.loc.clone()),
                    ]);
                }
                _ => self.error(
                    &item.loc,
                    "each pair is [source, destination]: two host names",
                    hint,
                ),
            }
        }
        (!out.is_empty() && out.len() == items.len()).then_some(PairsSpec::Explicit(out))
    }
}

fn kind_of(name: &str) -> Option<AlgorithmKind> {
    match name {
        "precopy" => Some(AlgorithmKind::Precopy),
        "postcopy" => Some(AlgorithmKind::Postcopy),
        "hybrid" => Some(AlgorithmKind::Hybrid),
        _ => None,
    }
}

fn precopy() -> Algorithm {
    Algorithm {
        name: "precopy".into(),
        ..Algorithm::default()
    }
}

fn idle() -> Load {
    Load {
        name: "idle".into(),
        ..Load::default()
    }
}

fn as_found() -> Link {
    Link {
        name: "as-is".into(),
        rate_bps: None,
        mtu: None,
        stands_for_bps: None,
    }
}

/// A node as a message shows it: `` `text` `` for scalars, its type otherwise.
fn describe(v: &Node) -> String {
    match v.scalar_text() {
        Some(t) => format!("`{t}`"),
        None => v.type_name().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn read(src: &str) -> Result<ExperimentSpec, Vec<Problem>> {
        let docs = crate::yaml::parse_str(src, Path::new("exp.yml")).unwrap();
        parse(&docs[0], &PlayDefaults::default())
    }

    fn messages(src: &str) -> Vec<String> {
        read(src)
            .expect_err("problems")
            .iter()
            .map(|p| format!("{}:{} {}", p.loc.line, p.loc.col, p.message))
            .collect()
    }

    const GOOD: &str = "name: t\ndriver: qmp\npairs: [[a, b]]\nscale: {flavor: 0.0625, min_memory_mib: 96}\nmatrix:\n  flavor: [m1.tiny, m1.small, {name: big, vcpus: 2, memory_mib: 4096}]\n  algorithm: [precopy, postcopy, hybrid, {name: h2, kind: hybrid, after_rounds: 2, downtime_limit: 300ms, max_bandwidth: 100}]\n  load: [idle, {name: mem, memory: {working_set_mib: 64, rate_mib_s: max}, cpu: 1}]\n  link: [100mbit, {name: lab-1g, rate: 1gbit, mtu: 9000, stands_for: 10gbit}]\nrepetitions: 3\nwarmup: 1\ntimeouts: {migration: 2m, boot: 30}\nsample_interval: 20\n";

    #[test]
    fn a_full_file_reads_with_scaling_and_units() {
        let s = read(GOOD).unwrap();
        assert_eq!(s.driver, DriverKind::Qmp);
        let mem: Vec<u64> = s.flavors.iter().map(|f| f.memory_mib).collect();
        assert_eq!(mem, vec![96, 128, 256]);
        assert_eq!(s.algorithms[2].switch_after_rounds, Some(1));
        assert_eq!(s.algorithms[3].downtime_limit_ms, Some(300));
        assert_eq!(s.algorithms[3].max_bandwidth_mib_s, Some(100));
        assert_eq!(s.loads[1].memory.as_ref().unwrap().rate_mib_s, None);
        assert_eq!(s.loads[1].cpu_threads, Some(1));
        assert_eq!(s.links[0].name, "100mbit");
        assert_eq!(s.links[1].stands_for_bps, Some(10_000_000_000));
        assert_eq!(s.timeouts.migration, Duration::from_secs(120));
        assert_eq!(s.timeouts.boot, Duration::from_secs(30));
        assert_eq!(s.sample_interval, Duration::from_millis(20));
        assert_eq!(s.probe_interval, Duration::from_millis(10));
        assert_eq!((s.repetitions, s.warmup), (3, 1));
        assert_eq!(s.guest_dir, DEFAULT_GUEST_DIR);
    }

    #[test]
    fn unknown_keys_are_named_with_a_suggestion_at_their_place() {
        let err = read(
            "name: t\ndriver: qmp\npairs: compute\nrepetition: 2\nmatrix:\n  flavors: [m1.small]\n",
        )
        .unwrap_err();
        let got: Vec<(u32, u32, String, Option<String>)> = err
            .iter()
            .map(|p| (p.loc.line, p.loc.col, p.message.clone(), p.hint.clone()))
            .collect();
        assert_eq!(
            got[0],
            (
                4,
                1,
                "unknown experiment key `repetition`".into(),
                Some("did you mean `repetitions`?".into())
            )
        );
        assert_eq!(
            got[1],
            (
                6,
                3,
                "unknown matrix key `flavors`".into(),
                Some("did you mean `flavor`?".into())
            )
        );
        assert_eq!(got[2].2, "the matrix has no `flavor` axis");
    }

    #[test]
    fn wrong_values_are_errors_where_they_are() {
        let m = messages(
            "name: t\ndriver: qemu\npairs: [[a, a]]\nmatrix:\n  flavor: [m1.smal]\n  algorithm: [{name: p, kind: precopy, after_rounds: 2}]\n  load: [{memory: {rate_mib_s: 5}}]\n  link: [1gb]\n",
        );
        assert_eq!(
            m,
            vec![
                "2:9 unknown driver `qemu`",
                "3:8 pair [a, a] migrates a host to itself",
                "5:12 unknown flavor `m1.smal`",
                "6:54 `after_rounds`/`after_seconds` only apply to hybrid, and `p` is precopy",
                "7:19 a memory load needs `working_set_mib`",
                "8:10 `link` must be a rate like `1gbit` or `100mbit`, not `1gb`",
            ]
        );
    }

    #[test]
    fn duplicate_labels_would_make_duplicate_run_ids() {
        let m = messages(
            "name: t\ndriver: qmp\npairs: c\nmatrix:\n  flavor: [m1.small, {name: m1.small, memory_mib: 64}]\n",
        );
        assert_eq!(m, vec!["5:22 `flavor` has `m1.small` twice"]);
    }

    #[test]
    fn a_play_gives_name_and_pairs() {
        let docs = crate::yaml::parse_str("- name: quick\n  hosts: compute\n  experiment:\n    driver: virsh\n    matrix: {flavor: [m1.tiny]}\n", Path::new("p.yml")).unwrap();
        let play = &docs[0].as_seq().unwrap()[0];
        let s = parse(
            play.get("experiment").unwrap(),
            &PlayDefaults::of_play(play),
        )
        .unwrap();
        assert_eq!(s.name, "quick");
        assert!(matches!(&s.pairs, PairsSpec::Pattern(p, loc) if p == "compute" && loc.line == 2));
        assert_eq!(s.algorithms, vec![precopy()]);
        assert_eq!(s.loads, vec![idle()]);
        assert_eq!(s.links, vec![as_found()]);
    }
}
