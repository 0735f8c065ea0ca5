//! QEMU's `query-migrate` answer (MigrationInfo), read the same way whether it came
//! over QMP (the qmp driver) or through `virsh qemu-monitor-command` (virsh):
//! into a [`Sample`] while the migration runs and into the row's QEMU figures
//! once it ended.

use serde_json::Value;

use crate::experiment::result::{MigrationResult, Sample};

const MIB: f64 = 1024.0 * 1024.0;

/// A `query-migrate` return value.
#[derive(Debug, Clone)]
pub struct MigrateInfo<'a>(pub &'a Value);

impl MigrateInfo<'_> {
    pub fn status(&self) -> &str {
        self.0["status"].as_str().unwrap_or("none")
    }
    fn ram_u64(&self, key: &str) -> Option<u64> {
        self.0["ram"][key].as_u64()
    }
    fn f64_at(&self, key: &str) -> Option<f64> {
        self.0[key].as_f64()
    }
    /// `ram.dirty-pages-rate` (pages/s) times `ram.page-size` (4 KiB if absent), MiB/s.
    pub fn dirty_rate_mib_s(&self) -> Option<f64> {
        let pages = self.ram_u64("dirty-pages-rate")? as f64;
        let page = self.ram_u64("page-size").unwrap_or(4096) as f64;
        Some(pages * page / MIB)
    }
    pub fn transferred(&self) -> Option<u64> {
        self.ram_u64("transferred")
    }
    pub fn error_desc(&self) -> Option<String> {
        self.0["error-desc"].as_str().map(str::to_string)
    }
    /// Whether the migration has ended (well or not).
    pub fn ended(&self) -> bool {
        matches!(self.status(), "completed" | "failed" | "cancelled")
    }

    /// This answer as a sample taken `t_ms` after the migration started.
    pub fn sample(&self, t_ms: f64) -> Sample {
        Sample {
            t_ms,
            status: self.status().to_string(),
            transferred_bytes: self.transferred(),
            remaining_bytes: self.ram_u64("remaining"),
            total_bytes: self.ram_u64("total"),
            mbps: self.0["ram"]["mbps"].as_f64(),
            dirty_rate_mib_s: self.dirty_rate_mib_s(),
            dirty_sync_rounds: self.ram_u64("dirty-sync-count"),
            postcopy_requests: self.ram_u64("postcopy-requests"),
            expected_downtime_ms: self.f64_at("expected-downtime"),
        }
    }

    /// Fill the row's QEMU figures from the last answer (the one with status
    /// `completed`, or whatever the migration ended with). `switch_transferred`:
    /// `ram.transferred` when ferry switched to post-copy (None: it did not);
    /// QEMU's own `precopy-bytes`/`postcopy-bytes` (7.2+) win where it has them.
    /// `last_dirty_rate`: the last non-zero dirty rate seen while it ran (QEMU
    /// reports 0 once completed).
    pub fn fill_row(
        &self,
        row: &mut MigrationResult,
        switch_transferred: Option<u64>,
        last_dirty_rate: Option<f64>,
    ) {
        row.total_time_ms = self.f64_at("total-time").or(row.total_time_ms);
        row.downtime_ms = self.f64_at("downtime").or(row.downtime_ms);
        row.setup_time_ms = self.f64_at("setup-time").or(row.setup_time_ms);
        let ram = self.transferred();
        let disk = self.0["disk"]["transferred"].as_u64();
        row.disk_transferred_bytes = disk.or(row.disk_transferred_bytes);
        row.transferred_bytes = match (ram, disk) {
            (Some(r), Some(d)) => Some(r + d),
            (Some(r), None) => Some(r),
            _ => row.transferred_bytes,
        };
        row.ram_total_bytes = self.ram_u64("total").or(row.ram_total_bytes);
        row.postcopy_requests = self.ram_u64("postcopy-requests").or(row.postcopy_requests);
        row.dirty_sync_rounds = self.ram_u64("dirty-sync-count").or(row.dirty_sync_rounds);
        row.dirty_rate_qemu_mib_s = self
            .dirty_rate_mib_s()
            .filter(|r| *r > 0.0)
            .or(last_dirty_rate)
            .or(row.dirty_rate_qemu_mib_s);
        let qemu_pre = self.ram_u64("precopy-bytes");
        let qemu_post = self.ram_u64("postcopy-bytes");
        match (qemu_pre, qemu_post, ram) {
            (Some(pre), Some(post), Some(all)) => {
                // downtime-bytes (sent while stopped) count as pre-copy unless
                // post-copy ran: then the stop was the switch.
                let stop = all.saturating_sub(pre + post);
                if switch_transferred.is_some() || post > 0 {
                    row.precopy_bytes = Some(pre);
                    row.postcopy_bytes = Some(post + stop);
                } else {
                    row.precopy_bytes = Some(pre + stop);
                    row.postcopy_bytes = Some(0);
                }
            }
            (_, _, Some(all)) => match switch_transferred {
                Some(at) => {
                    row.precopy_bytes = Some(at.min(all));
                    row.postcopy_bytes = Some(all.saturating_sub(at));
                }
                None => {
                    row.precopy_bytes = Some(all);
                    row.postcopy_bytes = Some(0);
                }
            },
            _ => {}
        }
        if let Some(e) = self.error_desc() {
            row.error.get_or_insert(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn completed() -> Value {
        json!({"status": "completed", "setup-time": 3, "downtime": 12, "total-time": 2100,
            "ram": {"transferred": 80_000_000u64, "remaining": 0, "total": 134_217_728u64,
                "mbps": 300.5, "dirty-sync-count": 4, "postcopy-requests": 0,
                "dirty-pages-rate": 0, "page-size": 4096,
                "precopy-bytes": 79_000_000u64, "downtime-bytes": 1_000_000u64, "postcopy-bytes": 0}})
    }

    #[test]
    fn a_completed_precopy_fills_the_row() {
        let v = completed();
        let mut row = MigrationResult::default();
        MigrateInfo(&v).fill_row(&mut row, None, Some(25.0));
        assert_eq!(row.total_time_ms, Some(2100.0));
        assert_eq!(row.downtime_ms, Some(12.0));
        assert_eq!(row.setup_time_ms, Some(3.0));
        assert_eq!(row.transferred_bytes, Some(80_000_000));
        assert_eq!(row.ram_total_bytes, Some(134_217_728));
        assert_eq!(row.precopy_bytes, Some(80_000_000));
        assert_eq!(row.postcopy_bytes, Some(0));
        assert_eq!(row.dirty_sync_rounds, Some(4));
        assert_eq!(row.dirty_rate_qemu_mib_s, Some(25.0));
        assert!(row.error.is_none());
    }

    #[test]
    fn postcopy_bytes_split_at_the_switch_without_qemus_split() {
        let v = json!({"status": "completed", "total-time": 900,
            "ram": {"transferred": 1000u64, "total": 4096u64, "postcopy-requests": 7}});
        let mut row = MigrationResult::default();
        MigrateInfo(&v).fill_row(&mut row, Some(300), None);
        assert_eq!(row.precopy_bytes, Some(300));
        assert_eq!(row.postcopy_bytes, Some(700));
        assert_eq!(row.postcopy_requests, Some(7));
    }

    #[test]
    fn samples_carry_the_running_figures_and_failures_their_error() {
        let v = json!({"status": "active", "expected-downtime": 40,
            "ram": {"transferred": 10u64, "remaining": 20u64, "total": 30u64, "mbps": 99.0,
                "dirty-pages-rate": 2560, "dirty-sync-count": 2}});
        let s = MigrateInfo(&v).sample(150.0);
        assert_eq!(s.status, "active");
        assert_eq!(s.dirty_rate_mib_s, Some(10.0));
        assert_eq!(s.expected_downtime_ms, Some(40.0));
        assert!(!MigrateInfo(&v).ended());
        let f = json!({"status": "failed", "error-desc": "Unable to write to socket"});
        let mut row = MigrationResult::default();
        MigrateInfo(&f).fill_row(&mut row, None, None);
        assert_eq!(row.error.as_deref(), Some("Unable to write to socket"));
        assert!(MigrateInfo(&f).ended());
    }
}
