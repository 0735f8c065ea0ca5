//! The matrix axes of an experiment file: flavor, algorithm, load and link, each
//! item read and checked, and the defaults of an axis left out.

use std::time::Duration;

use super::reader::{SpecReader, describe};
use crate::experiment::flavor::{self, FlavorScale};
use crate::experiment::quantity::format_rate;
use crate::experiment::scenario::{
    Algorithm, AlgorithmKind, Direction, DiskLoad, DiskWhen, Flavor, Link, Load, MemoryLoad,
    NetworkLoad,
};
use crate::suggest::suggest;
use crate::yaml::Node;

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

impl SpecReader {
    /// One axis: each item read by `item`; labels must be unique (they make the run ids).
    pub(super) fn axis<T>(
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

    pub(super) fn flavor(&mut self, n: &Node, scale: &FlavorScale) -> Option<Flavor> {
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

    pub(super) fn algorithm(&mut self, n: &Node) -> Option<Algorithm> {
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

    pub(super) fn load(&mut self, n: &Node) -> Option<Load> {
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

    pub(super) fn link(&mut self, n: &Node) -> Option<Link> {
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
}

fn kind_of(name: &str) -> Option<AlgorithmKind> {
    match name {
        "precopy" => Some(AlgorithmKind::Precopy),
        "postcopy" => Some(AlgorithmKind::Postcopy),
        "hybrid" => Some(AlgorithmKind::Hybrid),
        _ => None,
    }
}

pub(super) fn precopy() -> Algorithm {
    Algorithm {
        name: "precopy".into(),
        ..Algorithm::default()
    }
}

pub(super) fn idle() -> Load {
    Load {
        name: "idle".into(),
        ..Load::default()
    }
}

pub(super) fn as_found() -> Link {
    Link {
        name: "as-is".into(),
        rate_bps: None,
        mtu: None,
        stands_for_bps: None,
    }
}
