//! One point of an experiment's matrix: which guest, which algorithm, which load,
//! which link, which repetition, on which host pair. Everything a run needs to
//! know about *what* to do; nothing about how it went (that is [`super::result`]).

use serde::{Deserialize, Serialize};

/// A guest flavor: the studies' OpenStack flavors, possibly scaled for the lab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flavor {
    /// Name as written in the experiment file (e.g. `m1.small`, or `small`).
    pub name: String,
    pub vcpus: u32,
    /// Guest RAM in MiB after scaling (what QEMU gets with `-m`).
    pub memory_mib: u64,
    /// Ephemeral disk in GiB after scaling (0: none).
    pub disk_gib: f64,
}

/// Which migration algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlgorithmKind {
    /// Pre-copy only.
    #[default]
    Precopy,
    /// Post-copy at once (switch as soon as the migration is active).
    Postcopy,
    /// Pre-copy, then switch to post-copy after N rounds (dirty syncs) or T seconds.
    Hybrid,
}

/// The algorithm of a run and its QEMU/libvirt options.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Algorithm {
    /// Label as written in the file (e.g. `hybrid-2`), used in tables and plots.
    pub name: String,
    pub kind: AlgorithmKind,
    /// Hybrid: switch to post-copy after this many dirty-sync rounds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switch_after_rounds: Option<u32>,
    /// Hybrid: switch to post-copy after this many seconds of pre-copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switch_after_s: Option<f64>,
    #[serde(default)]
    pub auto_converge: bool,
    /// XBZRLE with this cache size in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xbzrle_cache_mib: Option<u64>,
    /// Multifd with this many channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multifd_channels: Option<u32>,
    #[serde(default)]
    pub compress: bool,
    /// QEMU's `max-bandwidth` in MiB/s (libvirt's `--bandwidth`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bandwidth_mib_s: Option<u64>,
    /// QEMU's `downtime-limit` in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downtime_limit_ms: Option<u64>,
    /// Block migration of a non-shared disk.
    #[serde(default)]
    pub block: bool,
    /// With `block`: incremental (`--copy-storage-inc`).
    #[serde(default)]
    pub incremental: bool,
    /// libvirt peer-to-peer tunnelled migration (`--p2p --tunnelled`).
    #[serde(default)]
    pub tunnelled: bool,
}

/// Memory load: dirty a working set at a rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryLoad {
    pub working_set_mib: u64,
    /// MiB/s; `None`: as fast as the guest can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_mib_s: Option<f64>,
}

/// Direction of a network load, seen from the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkLoad {
    pub rate_mbit: f64,
    pub direction: Direction,
}

/// When a disk load writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskWhen {
    Before,
    During,
    Both,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskLoad {
    pub write_mib: u64,
    pub when: DiskWhen,
}

/// The guest's load during a run; every part is optional and they combine.
/// All `None`: idle.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Load {
    /// Label as written in the file (e.g. `idle`, `mem-256`).
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryLoad>,
    /// Busy CPU threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_threads: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkLoad>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskLoad>,
}

/// The migration link of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    /// Label as written (e.g. `10g`, or `lab-1g`).
    pub name: String,
    /// Rate in bits per second (`None`: as the hosts have it, unshaped/unchecked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_bps: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// The rate this link stands for when the experiment is scaled (e.g. the lab's
    /// 1 Gbit/s standing for a real 10 Gbit/s); `None`: not scaled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stands_for_bps: Option<u64>,
}

/// Which hosts a run migrates between (inventory names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostPair {
    pub source: String,
    pub destination: String,
}

/// One run of the matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    pub flavor: Flavor,
    pub algorithm: Algorithm,
    pub load: Load,
    pub link: Link,
    /// 0-based repetition; warm-up runs are recorded with `warmup: true`.
    pub repetition: u32,
    #[serde(default)]
    pub warmup: bool,
    pub pair: HostPair,
}

impl Scenario {
    /// A scenario for unit tests: `algorithm` and `load` on a 1-vCPU 128 MiB flavor
    /// with `disk_gib`, an as-is link `l`, repetition 0, pair a -> b.
    #[cfg(test)]
    pub fn for_test(disk_gib: f64, algorithm: Algorithm, load: Load) -> Scenario {
        Scenario {
            flavor: Flavor {
                name: "f".into(),
                vcpus: 1,
                memory_mib: 128,
                disk_gib,
            },
            algorithm,
            load,
            link: Link {
                name: "l".into(),
                rate_bps: None,
                mtu: None,
                stands_for_bps: None,
            },
            repetition: 0,
            warmup: false,
            pair: HostPair {
                source: "a".into(),
                destination: "b".into(),
            },
        }
    }

    /// The scenario's identity without the repetition and pair: what `ferry report`
    /// groups by. `flavor/algorithm/load/link` with the labels as written.
    pub fn key(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.flavor.name, self.algorithm.name, self.load.name, self.link.name
        )
    }

    /// A stable id of this run within its experiment (`--resume` skips ids already
    /// recorded): the key, the repetition (and `w` for warm-ups).
    pub fn run_id(&self) -> String {
        let w = if self.warmup { "w" } else { "" };
        format!("{}#{w}{}", self.key(), self.repetition)
    }
}
