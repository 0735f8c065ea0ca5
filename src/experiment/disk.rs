//! The lab guest's ephemeral disk: when a run gets one (a disk load, or block
//! migration), its size (the flavor's `disk_gib`, scaled), how the qmp driver gives
//! it to QEMU (a sparse raw file in the run's directory on each host, a virtio
//! drive: `/dev/vda` in the guest), and which experiment files ask for a disk that
//! cannot be there (refused by `ferry check` and `ferry experiment`, never ignored).
//!
//! Without `block: true` the destination's disk is a new empty file of the same
//! size: the lab has no shared storage, so what the guest wrote before the
//! migration is not on the destination (the load still runs and is measured).

use super::driver::DriverKind;
use super::scenario::Scenario;
use super::spec::ExperimentSpec;
use crate::playbook::diag::Problem;
use crate::transport::remote::sh_quote;
use crate::yaml::SourceLoc;

/// The disk's device in the lab guest (the first virtio-blk drive).
pub const GUEST_DEVICE: &str = "/dev/vda";

/// The disk's size in MiB when `scenario` needs one (a disk load or block
/// migration, and a flavor with a disk); None: the guest gets no disk.
pub fn wanted_mib(scenario: &Scenario) -> Option<u64> {
    let needs = scenario.load.disk.is_some() || scenario.algorithm.block;
    let mib = (scenario.flavor.disk_gib * 1024.0).round() as u64;
    (needs && mib > 0).then_some(mib)
}

/// The shell line that makes the (sparse) disk file.
pub fn create_command(path: &str, mib: u64) -> String {
    format!("truncate -s {mib}M {}", sh_quote(path))
}

/// QEMU's arguments for the disk file (leading space included).
pub fn qemu_args(path: &str) -> String {
    format!(
        " -drive file={},format=raw,if=none,id=disk0 -device virtio-blk-pci,drive=disk0",
        sh_quote(path)
    )
}

/// What of `spec`'s matrix cannot run for want of a disk: a disk load or block
/// migration with a flavor that has none, or with a driver that attaches none.
/// `loc`: where the problems point (the experiment's `matrix`).
pub fn check(spec: &ExperimentSpec, loc: &SourceLoc) -> Vec<Problem> {
    let mut out = Vec::new();
    let disk_loads: Vec<&str> = spec
        .loads
        .iter()
        .filter(|l| l.disk.is_some())
        .map(|l| l.name.as_str())
        .collect();
    let blocks: Vec<&str> = spec
        .algorithms
        .iter()
        .filter(|a| a.block)
        .map(|a| a.name.as_str())
        .collect();
    if disk_loads.is_empty() && blocks.is_empty() {
        return out;
    }
    let what = || {
        let mut w = Vec::new();
        if !disk_loads.is_empty() {
            w.push(format!("disk load {}", list(&disk_loads)));
        }
        if !blocks.is_empty() {
            w.push(format!("block migration in algorithm {}", list(&blocks)));
        }
        w.join(" and ")
    };
    if spec.driver == DriverKind::Virsh {
        out.push(
            Problem::error(
                loc,
                format!(
                    "the virsh driver gives the lab guest no disk, so the {} cannot run",
                    what()
                ),
            )
            .hint("use `driver: qmp` (it attaches the flavor's disk as a virtio drive), or remove them from the matrix"),
        );
    }
    for f in spec.flavors.iter().filter(|f| f.disk_gib * 1024.0 < 0.5) {
        out.push(
            Problem::error(
                loc,
                format!(
                    "flavor `{}` has no disk (disk_gib: 0 after scaling), but the matrix crosses it with the {}",
                    f.name,
                    what()
                ),
            )
            .hint("give the flavor a disk (e.g. `{name: lab, vcpus: 1, memory_mib: 128, disk_gib: 0.0625}`), or move the disk load / block algorithm to an experiment of its own"),
        );
    }
    out
}

fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::scenario::*;

    fn scenario(disk_gib: f64, block: bool, disk_load: bool) -> Scenario {
        let algorithm = Algorithm {
            name: "a".into(),
            block,
            ..Algorithm::default()
        };
        let load = Load {
            disk: disk_load.then_some(DiskLoad {
                write_mib: 8,
                when: DiskWhen::During,
            }),
            ..Load::default()
        };
        Scenario::for_test(disk_gib, algorithm, load)
    }

    #[test]
    fn a_disk_only_when_the_run_uses_one() {
        assert_eq!(wanted_mib(&scenario(0.0625, false, true)), Some(64));
        assert_eq!(wanted_mib(&scenario(0.0625, true, false)), Some(64));
        assert_eq!(wanted_mib(&scenario(0.0625, false, false)), None);
        assert_eq!(wanted_mib(&scenario(0.0, true, true)), None);
        assert_eq!(
            create_command("/var/tmp/ferry-exp/run-1/disk.raw", 64),
            "truncate -s 64M '/var/tmp/ferry-exp/run-1/disk.raw'"
        );
        assert_eq!(
            qemu_args("/d/disk.raw"),
            " -drive file='/d/disk.raw',format=raw,if=none,id=disk0 -device virtio-blk-pci,drive=disk0"
        );
    }
}
