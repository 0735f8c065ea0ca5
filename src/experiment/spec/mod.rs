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
//! guest: {host: vm1}             # migrate this full guest (a host of `guests`) in every run
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
use super::scenario::{Algorithm, Flavor, Link, Load};
use crate::playbook::diag::Problem;
use crate::suggest::suggest;
use crate::yaml::SourceLoc;
use crate::yaml::{Node, NodeKind};

mod axes;
mod reader;

use axes::{as_found, idle, precopy};
use reader::{SpecReader, describe};

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
    "guest",
];
const GUEST_KEYS: &[&str] = &["host"];
const MATRIX_KEYS: &[&str] = &["flavor", "algorithm", "load", "link"];
const TIMEOUT_KEYS: &[&str] = &["migration", "boot", "answer"];
const SCALE_KEYS: &[&str] = &["flavor", "min_memory_mib", "note"];

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
    /// A full guest (a host of the inventory's `guests` group) migrated in every
    /// run instead of a guest the driver starts; None: the driver's lab guest.
    pub guest: Option<(String, SourceLoc)>,
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

impl SpecReader {
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
        let guest = get("guest").and_then(|v| self.full_guest(v));
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
            guest,
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

    /// `guest: {host: NAME}` (or `guest: NAME`): the inventory host that is the guest.
    fn full_guest(&mut self, v: &Node) -> Option<(String, SourceLoc)> {
        if v.as_str().is_some() {
            return self.string("guest", v).map(|h| (h, v.loc.clone()));
        }
        if v.as_map().is_none() {
            self.error(
                &v.loc,
                format!("`guest` must be a mapping, not {}", v.type_name()),
                "write `guest: {host: vm1}` with a host of the inventory's `guests` group",
            );
            return None;
        }
        let entries = self.entries(v, GUEST_KEYS, "guest");
        match entries.iter().find(|(k, _)| *k == "host") {
            Some((_, h)) => self.string("host", h).map(|name| (name, h.loc.clone())),
            None => {
                self.error(
                    &v.loc,
                    "`guest` names no `host`",
                    "write `guest: {host: vm1}` with a host of the inventory's `guests` group",
                );
                None
            }
        }
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
