//! What ferry says to virsh and reads back from it, as pure functions: the
//! post-copy dialect (from `virsh help migrate`), the `virsh migrate` arguments of
//! a scenario, and libvirt's completed-job statistics into a row.

use std::collections::BTreeMap;

use crate::experiment::result::MigrationResult;
use crate::experiment::scenario::{AlgorithmKind, Scenario};

/// How a virsh spells post-copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VirshPostcopy {
    /// Upstream libvirt (1.3.3+): `migrate --postcopy`, `migrate-postcopy`.
    Upstream,
    /// orbitfp7/libvirt wp3-postcopy (1.2.13): `migrate --enable-postcopy`,
    /// `migrate-start-postcopy`.
    Orbit,
}

impl VirshPostcopy {
    /// From `virsh help migrate`'s text; None: this virsh has no post-copy.
    pub fn detect(help: &str) -> Option<VirshPostcopy> {
        let has = |flag: &str| {
            help.split(|c: char| c.is_whitespace() || c == '[' || c == ']')
                .any(|w| w == flag)
        };
        if has("--enable-postcopy") {
            Some(VirshPostcopy::Orbit)
        } else if has("--postcopy") {
            Some(VirshPostcopy::Upstream)
        } else {
            None
        }
    }
    pub fn migrate_flag(self) -> &'static str {
        match self {
            VirshPostcopy::Upstream => "--postcopy",
            VirshPostcopy::Orbit => "--enable-postcopy",
        }
    }
    pub fn switch_command(self) -> &'static str {
        match self {
            VirshPostcopy::Upstream => "migrate-postcopy",
            VirshPostcopy::Orbit => "migrate-start-postcopy",
        }
    }
}

/// Whether libvirt itself switches to post-copy (`--postcopy-after-precopy`:
/// after the first pre-copy pass), for a hybrid after one pass (or with no rule
/// given); polling through virsh is too slow to catch the end of a pass.
pub fn libvirt_switches(scenario: &Scenario) -> bool {
    let a = &scenario.algorithm;
    a.kind == AlgorithmKind::Hybrid
        && a.switch_after_s.is_none()
        && a.switch_after_rounds.is_none_or(|n| n == 1)
}

/// The `virsh migrate` arguments for `scenario` (after `migrate`).
pub fn migrate_args(
    scenario: &Scenario,
    domain: &str,
    dest_mgmt: &str,
    dest_migration_ip: &str,
    postcopy: Option<VirshPostcopy>,
) -> Vec<String> {
    let a = &scenario.algorithm;
    let mut v: Vec<String> = vec!["--live".into()];
    if a.kind != AlgorithmKind::Precopy
        && let Some(p) = postcopy
    {
        v.push(p.migrate_flag().into());
        if libvirt_switches(scenario) {
            v.push("--postcopy-after-precopy".into());
        }
    }
    if a.auto_converge {
        v.push("--auto-converge".into());
    }
    if let Some(mib) = a.xbzrle_cache_mib {
        v.extend([
            "--compressed".into(),
            "--comp-methods".into(),
            if a.compress { "xbzrle,mt" } else { "xbzrle" }.into(),
            "--comp-xbzrle-cache".into(),
            (mib * 1024 * 1024).to_string(),
        ]);
    } else if a.compress {
        v.extend(["--compressed".into(), "--comp-methods".into(), "mt".into()]);
    }
    if let Some(n) = a.multifd_channels {
        v.extend([
            "--parallel".into(),
            "--parallel-connections".into(),
            n.to_string(),
        ]);
    }
    if let Some(bw) = a.max_bandwidth_mib_s {
        v.extend(["--bandwidth".into(), bw.to_string()]);
    }
    if a.block {
        v.push(
            if a.incremental {
                "--copy-storage-inc"
            } else {
                "--copy-storage-all"
            }
            .into(),
        );
    }
    if a.tunnelled {
        // Tunnelled: the data goes through libvirtd's connection (no migrateuri).
        v.extend(["--p2p".into(), "--tunnelled".into()]);
    } else {
        v.extend(["--migrateuri".into(), format!("tcp://{dest_migration_ip}")]);
    }
    v.extend([
        "--domain".into(),
        domain.into(),
        "--desturi".into(),
        format!("qemu+tcp://{dest_mgmt}/system"),
    ]);
    v
}

/// libvirt's completed-job statistics (`domjobinfo --completed --rawstats`):
/// `name: value` lines.
pub fn parse_rawstats(out: &str) -> BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, _)| !k.is_empty() && !k.contains(' '))
        .collect()
}

/// Fill the row's QEMU figures from libvirt's completed-job statistics.
pub fn fill_from_jobstats(row: &mut MigrationResult, s: &BTreeMap<String, String>) {
    let u = |k: &str| s.get(k).and_then(|v| v.parse::<u64>().ok());
    let f = |k: &str| u(k).map(|v| v as f64);
    row.total_time_ms = f("time_elapsed").or(row.total_time_ms);
    row.downtime_ms = f("downtime").or(row.downtime_ms);
    row.setup_time_ms = f("setup_time").or(row.setup_time_ms);
    row.ram_total_bytes = u("memory_total").or(row.ram_total_bytes);
    row.disk_transferred_bytes = u("disk_processed")
        .filter(|d| *d > 0)
        .or(row.disk_transferred_bytes);
    if let Some(m) = u("memory_processed") {
        row.transferred_bytes = Some(m + u("disk_processed").unwrap_or(0));
    }
    row.dirty_sync_rounds = u("memory_iteration").or(row.dirty_sync_rounds);
    row.postcopy_requests = u("memory_postcopy_requests").or(row.postcopy_requests);
    if let Some(rate) = u("memory_dirty_rate").filter(|r| *r > 0) {
        let page = u("memory_page_size").unwrap_or(4096);
        row.dirty_rate_qemu_mib_s = Some((rate * page) as f64 / (1024.0 * 1024.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::scenario::*;

    const UPSTREAM_HELP: &str = "  SYNOPSIS\n    migrate <domain> <desturi> [--live] [--offline] [--p2p] [--tunnelled] \
        [--postcopy] [--postcopy-after-precopy] [--postcopy-resume] [--bandwidth <number>]\n";
    const ORBIT_HELP: &str = "  SYNOPSIS\n    migrate <domain> <desturi> [--live] [--p2p] [--tunnelled] \
        [--enable-postcopy] [--postcopy-after <number>] [--postcopy-after-precopy]\n";

    #[test]
    fn the_postcopy_dialect_comes_from_virsh_help() {
        assert_eq!(
            VirshPostcopy::detect(UPSTREAM_HELP),
            Some(VirshPostcopy::Upstream)
        );
        assert_eq!(
            VirshPostcopy::detect(ORBIT_HELP),
            Some(VirshPostcopy::Orbit)
        );
        assert_eq!(VirshPostcopy::detect("[--live] [--postcopy-resume]"), None);
        assert_eq!(
            VirshPostcopy::Orbit.switch_command(),
            "migrate-start-postcopy"
        );
    }

    fn scenario(a: Algorithm) -> Scenario {
        Scenario::for_test(0.0, a, Load::default())
    }

    #[test]
    fn migrate_arguments_follow_the_algorithm() {
        let after_one = Algorithm {
            kind: AlgorithmKind::Hybrid,
            switch_after_rounds: Some(1),
            ..Algorithm::default()
        };
        let a = migrate_args(
            &scenario(after_one),
            "g",
            "m",
            "x",
            Some(VirshPostcopy::Upstream),
        );
        assert_eq!(
            &a[..3],
            ["--live", "--postcopy", "--postcopy-after-precopy"]
        );
        let hybrid = Algorithm {
            kind: AlgorithmKind::Hybrid,
            switch_after_rounds: Some(3),
            max_bandwidth_mib_s: Some(40),
            block: true,
            incremental: true,
            ..Algorithm::default()
        };
        let a = migrate_args(
            &scenario(hybrid),
            "g",
            "10.0.1.2",
            "10.0.2.2",
            Some(VirshPostcopy::Orbit),
        );
        assert_eq!(
            a.join(" "),
            "--live --enable-postcopy --bandwidth 40 --copy-storage-inc --migrateuri tcp://10.0.2.2 \
             --domain g --desturi qemu+tcp://10.0.1.2/system"
        );
        let tunnelled = Algorithm {
            tunnelled: true,
            xbzrle_cache_mib: Some(8),
            ..Algorithm::default()
        };
        let a = migrate_args(
            &scenario(tunnelled),
            "g",
            "m",
            "x",
            Some(VirshPostcopy::Upstream),
        );
        assert_eq!(
            a.join(" "),
            "--live --compressed --comp-methods xbzrle --comp-xbzrle-cache 8388608 --p2p --tunnelled \
             --domain g --desturi qemu+tcp://m/system"
        );
    }

    #[test]
    fn completed_job_statistics_fill_the_row() {
        let out = "operation: 5\ntime_elapsed: 5946\ndowntime: 159\nsetup_time: 3\nmemory_total: 201334784\n\
            memory_processed: 81000000\ndisk_processed: 0\nmemory_iteration: 4\nmemory_postcopy_requests: 12\n\
            memory_dirty_rate: 2560\nmemory_page_size: 4096\n";
        let s = parse_rawstats(out);
        let mut row = MigrationResult::default();
        fill_from_jobstats(&mut row, &s);
        assert_eq!(row.total_time_ms, Some(5946.0));
        assert_eq!(row.downtime_ms, Some(159.0));
        assert_eq!(row.setup_time_ms, Some(3.0));
        assert_eq!(row.transferred_bytes, Some(81_000_000));
        assert_eq!(row.ram_total_bytes, Some(201_334_784));
        assert_eq!(row.dirty_sync_rounds, Some(4));
        assert_eq!(row.postcopy_requests, Some(12));
        assert_eq!(row.dirty_rate_qemu_mib_s, Some(10.0));
        assert_eq!(row.disk_transferred_bytes, None);
    }
}
