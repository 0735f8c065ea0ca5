//! The outside downtime probe (the studies' ping method): a `ping -D` from the
//! prober to the guest every probe interval, running in the background on the
//! prober, its output in a file there; read while the run waits for the guest on
//! the destination and once at the end. iputils' `ping -D` prints each answer's
//! arrival time (prober clock, Unix seconds); the longest gap between two
//! answers across the migration is the probe's downtime.

use std::time::{Duration, SystemTime};

use crate::experiment::driver::host_command::running_test;
use crate::experiment::driver::{DriverError, HostEnd};
use crate::transport::remote::sh_quote;

/// One answer: its arrival (prober's Unix time, s) and its `icmp_seq`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Answer {
    pub t: f64,
    pub seq: u64,
}

/// What the ping output says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PingLog {
    pub answers: Vec<Answer>,
    /// From ping's summary ("N packets transmitted"); None before it stopped.
    pub transmitted: Option<u64>,
}

/// Parse iputils `ping -D -n` output.
pub fn parse_ping(out: &str) -> PingLog {
    let mut log = PingLog::default();
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix('[') {
            let Some((t, rest)) = rest.split_once(']') else {
                continue;
            };
            if !rest.contains(" bytes from ") {
                continue;
            }
            let seq = rest
                .split_whitespace()
                .find_map(|w| w.strip_prefix("icmp_seq="))
                .and_then(|s| s.parse().ok());
            if let (Ok(t), Some(seq)) = (t.parse::<f64>(), seq) {
                log.answers.push(Answer { t, seq });
            }
        } else if let Some((n, _)) = line.split_once(" packets transmitted") {
            log.transmitted = n.trim().parse().ok();
        }
    }
    log
}

/// The longest gap (s) between consecutive answers where the later one is at or
/// after `from` and the earlier one at or before `to` (a gap spanning any part of
/// the window counts); None with fewer than two answers there.
pub fn longest_gap(answers: &[Answer], from: f64, to: f64) -> Option<f64> {
    answers
        .windows(2)
        .filter(|w| w[1].t >= from && w[0].t <= to)
        .map(|w| w[1].t - w[0].t)
        .fold(None, |m: Option<f64>, g| Some(m.map_or(g, |m| m.max(g))))
}

/// The first answer at or after `t`.
pub fn first_after(answers: &[Answer], t: f64) -> Option<Answer> {
    answers.iter().copied().find(|a| a.t >= t)
}

/// Unix time of `t` as seconds.
pub fn unix_s(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// A ping running on the prober.
pub struct PingProbe<'a> {
    pub host: &'a HostEnd,
    pub pid: u32,
    pub log_path: String,
    /// Prober clock minus this machine's clock, s (measured at start).
    pub clock_offset: f64,
}

impl<'a> PingProbe<'a> {
    /// Start `ping -D -n -i INTERVAL TARGET` in the background on `host`.
    pub async fn start(
        host: &'a HostEnd,
        target: &str,
        interval: Duration,
        tag: &str,
    ) -> Result<PingProbe<'a>, DriverError> {
        let v = host.sh("ping -V 2>&1").await?;
        let version = String::from_utf8_lossy(&v.stdout).into_owned();
        if !version.contains("iputils") {
            return Err(DriverError::Host {
                host: host.name.clone(),
                message: format!(
                    "the probe needs iputils ping (ping -D: timestamps; install iputils-ping), found: {}",
                    version.trim()
                ),
            });
        }
        let log_path = format!("/var/tmp/ferry-exp/probe-{tag}.log");
        let secs = interval.as_secs_f64().max(0.002);
        let before = SystemTime::now();
        let out = host
            .sh_ok(
                "start the ping probe",
                &format!(
                    "mkdir -p /var/tmp/ferry-exp; setsid ping -D -n -i {secs:.3} {t} >{log} 2>&1 </dev/null & \
                     echo $!; date +%s.%N",
                    t = sh_quote(target),
                    log = sh_quote(&log_path)
                ),
            )
            .await?;
        let after = SystemTime::now();
        let mut lines = out.lines();
        let pid = lines
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| DriverError::Host {
                host: host.name.clone(),
                message: format!("the ping probe did not start: {out}"),
            })?;
        let remote: f64 = lines
            .next()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0.0);
        let mid = (unix_s(before) + unix_s(after)) / 2.0;
        Ok(PingProbe {
            host,
            pid,
            log_path,
            clock_offset: if remote > 0.0 { remote - mid } else { 0.0 },
        })
    }

    /// This machine's time `t` on the prober's clock.
    pub fn prober_time(&self, t: SystemTime) -> f64 {
        unix_s(t) + self.clock_offset
    }

    /// What the probe has logged so far.
    pub async fn read(&self) -> Result<PingLog, DriverError> {
        let out = self
            .host
            .sh(&format!("cat {} 2>/dev/null", sh_quote(&self.log_path)))
            .await?;
        Ok(parse_ping(&String::from_utf8_lossy(&out.stdout)))
    }

    /// Stop the ping (SIGINT: it prints its summary), read its log and remove it.
    pub async fn stop(&self) -> Result<PingLog, DriverError> {
        let p = self.pid;
        let log = sh_quote(&self.log_path);
        let out = self
            .host
            .sh(&format!(
                "if grep -q ping /proc/{p}/cmdline 2>/dev/null; then kill -INT {p}; \
                 i=0; while {running} && [ $i -lt 20 ]; do sleep 0.05; i=$((i+1)); done; \
                 kill -9 {p} 2>/dev/null; fi; cat {log}; rm -f {log}",
                running = running_test(p)
            ))
            .await?;
        Ok(parse_ping(&String::from_utf8_lossy(&out.stdout)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "PING 10.0.3.200 (10.0.3.200) 56(84) bytes of data.\n\
[1700000000.000100] 64 bytes from 10.0.3.200: icmp_seq=1 ttl=64 time=0.4 ms\n\
[1700000000.010200] 64 bytes from 10.0.3.200: icmp_seq=2 ttl=64 time=0.4 ms\n\
[1700000000.120300] 64 bytes from 10.0.3.200: icmp_seq=12 ttl=64 time=0.5 ms\n\
[1700000000.130000] 64 bytes from 10.0.3.200: icmp_seq=13 ttl=64 time=0.5 ms\n\
[1700000000.140000] From 10.0.3.1 icmp_seq=14 Destination Host Unreachable\n\
\n--- 10.0.3.200 ping statistics ---\n\
15 packets transmitted, 4 received, 73% packet loss, time 140ms\n";

    #[test]
    fn ping_output_gives_answers_gaps_and_counts() {
        let log = parse_ping(OUT);
        assert_eq!(log.answers.len(), 4);
        assert_eq!(log.answers[2].seq, 12);
        assert_eq!(log.transmitted, Some(15));
        let gap = longest_gap(&log.answers, 1700000000.05, 1700000000.2).unwrap();
        assert!((gap - 0.1101).abs() < 1e-6, "{gap}");
        // A window after every gap: only the last spacing counts.
        let late = longest_gap(&log.answers, 1700000000.125, 1700000000.2).unwrap();
        assert!((late - 0.0097).abs() < 1e-6, "{late}");
        assert_eq!(longest_gap(&log.answers[..1], 0.0, 2e9), None);
        assert_eq!(first_after(&log.answers, 1700000000.1).unwrap().seq, 12);
    }
}
