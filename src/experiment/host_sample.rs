//! What run_one reads on a host around the migration, in one command: the
//! migration NIC's byte counters and the CPU counters of `/proc/stat`.

use crate::experiment::driver::{DriverError, HostEnd};
use crate::transport::remote::sh_quote;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HostSample {
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    /// `/proc/stat` "cpu" line: busy and total ticks.
    pub cpu_busy: u64,
    pub cpu_total: u64,
}

impl HostSample {
    /// Read `iface`'s counters and the CPU counters on `host`.
    pub async fn read(host: &HostEnd, iface: &str) -> Result<HostSample, DriverError> {
        let d = sh_quote(&format!("/sys/class/net/{iface}/statistics"));
        let out = host
            .sh_ok(
                &format!("read {iface}'s counters and /proc/stat"),
                &format!("cat {d}/tx_bytes {d}/rx_bytes && head -n1 /proc/stat"),
            )
            .await?;
        parse(&out).ok_or_else(|| DriverError::Host {
            host: host.name.clone(),
            message: format!("cannot read the counters of {iface}: {out}"),
        })
    }

    /// Busy share of all CPUs between `self` and a later sample.
    pub fn cpu_busy_until(&self, later: &HostSample) -> Option<f64> {
        let total = later.cpu_total.checked_sub(self.cpu_total)?;
        let busy = later.cpu_busy.checked_sub(self.cpu_busy)?;
        (total > 0).then(|| busy as f64 / total as f64)
    }
}

fn parse(out: &str) -> Option<HostSample> {
    let mut lines = out.lines();
    let tx = lines.next()?.trim().parse().ok()?;
    let rx = lines.next()?.trim().parse().ok()?;
    let cpu: Vec<u64> = lines
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|n| n.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest times are in user).
    let total: u64 = cpu.iter().take(8).sum();
    let idle = cpu.get(3).copied().unwrap_or(0) + cpu.get(4).copied().unwrap_or(0);
    Some(HostSample {
        tx_bytes: tx,
        rx_bytes: rx,
        cpu_busy: total.saturating_sub(idle),
        cpu_total: total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_cpu_share() {
        let a = parse("100\n200\ncpu  10 0 10 70 10 0 0 0 0 0\n").unwrap();
        let b = parse("900\n250\ncpu  40 0 20 120 20 0 0 0 0 0\n").unwrap();
        assert_eq!((a.tx_bytes, a.rx_bytes), (100, 200));
        assert_eq!(a.cpu_busy_until(&b), Some(40.0 / 100.0));
        assert!(parse("x\n").is_none());
    }
}
