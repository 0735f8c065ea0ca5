//! What a simple analytic model of the migration algorithm predicts for a run,
//! from the run's own inputs: guest RAM, dirty rate (achieved, else set), working
//! set, link rate, downtime limit and switch point (`docs/model.md`).
//!
//! Pre-copy is the geometric series of rounds: round 0 sends all of RAM at the link
//! rate; each later round sends what the guest dirtied during the previous one
//! (dirty rate x previous round's time, at most the working set), until what is
//! left can be sent within the downtime limit (the stop-and-copy). Post-copy sends
//! each page once after the switch: the pre-copy prefix, then what the destination
//! still lacks at the switch, at the link rate. Hybrid is both.
//!
//! It lives beside the scenario and result types, not in `plot/`, because it is a
//! model of the experiment, not of its rendering: it reads only a [`Scenario`] and
//! a [`MigrationResult`], and the runner can use it too (e.g. to warn before a run
//! that cannot converge, or to size a timeout).

use super::result::MigrationResult;
use super::scenario::{AlgorithmKind, Scenario};

const MIB: f64 = 1024.0 * 1024.0;

/// QEMU's default `downtime-limit` (ms) when the scenario sets none.
pub const QEMU_DEFAULT_DOWNTIME_LIMIT_MS: f64 = 300.0;

/// Pre-copy rounds the model iterates before it calls a run "not converging"
/// (a series that has not reached the downtime limit by then never will in a run
/// of sensible length).
pub const MAX_ROUNDS: u32 = 1000;

/// The model's inputs, all in base units.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInputs {
    pub algorithm: AlgorithmKind,
    /// Guest RAM, bytes.
    pub ram_bytes: f64,
    /// Link rate used by the migration, bytes/s (already capped by `max_bandwidth`).
    pub link_bytes_s: f64,
    /// Dirty rate, bytes/s (0: idle).
    pub dirty_bytes_s: f64,
    /// Most bytes that can be dirty at once (the working set; RAM when unbounded).
    pub working_set_bytes: f64,
    /// Downtime limit, seconds.
    pub downtime_limit_s: f64,
    /// Hybrid: switch after this many pre-copy rounds (0: post-copy at once).
    pub switch_after_rounds: Option<u32>,
    /// Hybrid: switch after this many seconds of pre-copy.
    pub switch_after_s: Option<f64>,
}

/// What the model predicts for one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Whether the migration completes (post-copy always does).
    pub converges: bool,
    /// Pre-copy rounds (round 0 = the first pass over RAM); counted up to the
    /// stop-and-copy or the switch.
    pub rounds: u32,
    /// Total migration time, ms (`None` when it does not converge).
    pub total_time_ms: Option<f64>,
    /// Bytes sent over the link (`None` when it does not converge).
    pub transferred_bytes: Option<f64>,
    /// Pre-copy's stop-and-copy time, ms; `None` for post-copy and hybrid runs that
    /// switched (the model does not predict the switch's pause) and when it does not
    /// converge.
    pub downtime_ms: Option<f64>,
    /// Whether a hybrid run switched to post-copy (post-copy: always).
    pub switched: bool,
}

/// Why the model cannot predict a run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelGap {
    #[error("the run has no scenario")]
    NoScenario,
    #[error("the link rate is not known")]
    NoLinkRate,
    #[error("the dirty rate is not known (memory load as fast as possible, none reported)")]
    NoDirtyRate,
}

impl ModelInputs {
    /// The inputs of a recorded run: RAM as QEMU counted it (else the flavor's), the
    /// link rate the run had (else the scenario's) capped by `max_bandwidth`, the
    /// dirty rate the load achieved (else the one set, else QEMU's), the working set
    /// of the memory load.
    pub fn of_run(row: &MigrationResult) -> Result<ModelInputs, ModelGap> {
        let scenario: &Scenario = row.scenario.as_ref().ok_or(ModelGap::NoScenario)?;
        let ram_bytes = row
            .ram_total_bytes
            .map(|b| b as f64)
            .unwrap_or(scenario.flavor.memory_mib as f64 * MIB);
        let mut link_bytes_s = row
            .link_rate_bps
            .or(scenario.link.rate_bps)
            .ok_or(ModelGap::NoLinkRate)? as f64
            / 8.0;
        if let Some(cap) = scenario.algorithm.max_bandwidth_mib_s {
            link_bytes_s = link_bytes_s.min(cap as f64 * MIB);
        }
        let memory = scenario.load.memory.as_ref();
        let dirty_mib_s = match memory {
            None => row.dirty_rate_achieved_mib_s.unwrap_or(0.0),
            Some(m) => row
                .dirty_rate_achieved_mib_s
                .or(m.rate_mib_s)
                .or(row.dirty_rate_set_mib_s)
                .or(row.dirty_rate_qemu_mib_s)
                .ok_or(ModelGap::NoDirtyRate)?,
        };
        let working_set_bytes = memory
            .map(|m| (m.working_set_mib as f64 * MIB).min(ram_bytes))
            .unwrap_or(ram_bytes);
        Ok(ModelInputs {
            algorithm: scenario.algorithm.kind,
            ram_bytes,
            link_bytes_s,
            dirty_bytes_s: dirty_mib_s * MIB,
            working_set_bytes,
            downtime_limit_s: scenario
                .algorithm
                .downtime_limit_ms
                .map(|ms| ms as f64)
                .unwrap_or(QEMU_DEFAULT_DOWNTIME_LIMIT_MS)
                / 1000.0,
            switch_after_rounds: scenario.algorithm.switch_after_rounds,
            switch_after_s: scenario.algorithm.switch_after_s,
        })
    }

    /// The physical lower bound: every byte of RAM once at the link rate, seconds.
    pub fn lower_bound_s(&self) -> f64 {
        self.ram_bytes / self.link_bytes_s
    }

    pub fn predict(&self) -> Prediction {
        match self.algorithm {
            AlgorithmKind::Precopy => self.precopy(None, None),
            AlgorithmKind::Postcopy => self.precopy(Some(0), None),
            AlgorithmKind::Hybrid => {
                // A hybrid with no switch point given switches after the first pass.
                let rounds = match (self.switch_after_rounds, self.switch_after_s) {
                    (None, None) => Some(1),
                    (r, _) => r,
                };
                self.precopy(rounds, self.switch_after_s)
            }
        }
    }

    /// Pre-copy rounds until the stop-and-copy, or until the switch to post-copy
    /// (after `switch_rounds` rounds or `switch_s` seconds, whichever comes first).
    fn precopy(&self, switch_rounds: Option<u32>, switch_s: Option<f64>) -> Prediction {
        let b = self.link_bytes_s;
        let threshold = b * self.downtime_limit_s;
        let mut sent = 0.0; // bytes sent in finished rounds
        let mut elapsed = 0.0; // seconds
        let mut pending = self.ram_bytes; // what the next round must send
        let mut rounds = 0;
        loop {
            // QEMU stops the guest once what is left fits in the downtime limit
            // (after at least the first full pass).
            if rounds > 0 && pending <= threshold {
                let downtime = pending / b;
                return Prediction {
                    converges: true,
                    rounds,
                    total_time_ms: Some((elapsed + downtime) * 1000.0),
                    transferred_bytes: Some(sent + pending),
                    downtime_ms: Some(downtime * 1000.0),
                    switched: false,
                };
            }
            if switch_rounds == Some(rounds) {
                return self.postcopy_after(rounds, sent, elapsed, pending);
            }
            if rounds >= MAX_ROUNDS {
                return not_converged(rounds);
            }
            let round_s = pending / b;
            if let Some(t) = switch_s
                && elapsed + round_s >= t
            {
                // Switch mid-round: the destination lacks the rest of this round and
                // what was dirtied of the part already sent.
                let into = (t - elapsed).max(0.0);
                let rest = pending - into * b;
                let dirtied = (self.dirty_bytes_s * into).min(self.working_set_bytes);
                let lacking = (rest + dirtied).min(self.ram_bytes);
                return self.postcopy_after(rounds, sent + into * b, t.max(elapsed), lacking);
            }
            sent += pending;
            elapsed += round_s;
            let next = (self.dirty_bytes_s * round_s).min(self.working_set_bytes);
            rounds += 1;
            // Not shrinking and too big to stop: pre-copy never converges.
            if next >= pending && next > threshold {
                return not_converged(rounds);
            }
            pending = next;
        }
    }

    /// Post-copy after a pre-copy prefix: each page the destination lacks, once.
    fn postcopy_after(&self, rounds: u32, sent: f64, elapsed: f64, lacking: f64) -> Prediction {
        let post_s = lacking / self.link_bytes_s;
        Prediction {
            converges: true,
            rounds,
            total_time_ms: Some((elapsed + post_s) * 1000.0),
            transferred_bytes: Some(sent + lacking),
            downtime_ms: None,
            switched: true,
        }
    }
}

fn not_converged(rounds: u32) -> Prediction {
    Prediction {
        converges: false,
        rounds,
        total_time_ms: None,
        transferred_bytes: None,
        downtime_ms: None,
        switched: false,
    }
}

/// Measured over predicted beyond this factor (either way) flags a run.
pub const DISAGREEMENT_FACTOR: f64 = 2.0;

/// How a run compares with its prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelCheck {
    pub prediction: Prediction,
    /// Measured total time / predicted total time.
    pub time_ratio: Option<f64>,
    /// Measured bytes (QEMU's) / predicted bytes.
    pub bytes_ratio: Option<f64>,
    /// Why the run disagrees with the model (`None`: it agrees within the factor).
    pub disagreement: Option<String>,
}

/// Compare a recorded run with the model's prediction for its inputs.
pub fn check_run(row: &MigrationResult, inputs: &ModelInputs) -> ModelCheck {
    use super::result::Outcome;
    let prediction = inputs.predict();
    let ratio = |measured: Option<f64>, predicted: Option<f64>| match (measured, predicted) {
        (Some(m), Some(p)) if p > 0.0 => Some(m / p),
        _ => None,
    };
    let completed = row.outcome == Some(Outcome::Completed);
    let time_ratio = if completed {
        ratio(row.total_time_ms, prediction.total_time_ms)
    } else {
        None
    };
    let bytes_ratio = if completed {
        ratio(
            row.transferred_bytes.map(|b| b as f64),
            prediction.transferred_bytes,
        )
    } else {
        None
    };
    let outside = |r: f64| !(1.0 / DISAGREEMENT_FACTOR..=DISAGREEMENT_FACTOR).contains(&r);
    let disagreement = match row.outcome {
        Some(Outcome::Completed) if !prediction.converges => {
            Some("completed; the model says pre-copy never converges".to_string())
        }
        Some(Outcome::NotConverged) if prediction.converges => {
            Some("did not converge; the model says it does".to_string())
        }
        _ => match time_ratio {
            Some(r) if outside(r) => Some(format!(
                "total time {r:.2}x the model's (outside {:.0}x either way)",
                DISAGREEMENT_FACTOR
            )),
            _ => None,
        },
    };
    ModelCheck {
        prediction,
        time_ratio,
        bytes_ratio,
        disagreement,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: f64 = 1024.0 * MIB;
    const GBIT_BYTES_S: f64 = 1e9 / 8.0;

    fn inputs(kind: AlgorithmKind, ram: f64, link: f64, dirty: f64, ws: f64) -> ModelInputs {
        ModelInputs {
            algorithm: kind,
            ram_bytes: ram,
            link_bytes_s: link,
            dirty_bytes_s: dirty,
            working_set_bytes: ws,
            downtime_limit_s: 0.3,
            switch_after_rounds: None,
            switch_after_s: None,
        }
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn idle_1gib_on_1gbit_is_one_pass_of_8_6_s() {
        // 2^30 B / 1.25e8 B/s = 8.589934592 s; idle: nothing left after the pass.
        let p = inputs(AlgorithmKind::Precopy, GIB, GBIT_BYTES_S, 0.0, GIB).predict();
        assert!(p.converges);
        assert_eq!(p.rounds, 1);
        assert!(close(p.total_time_ms.unwrap(), 8589.934592, 1e-6));
        assert_eq!(p.transferred_bytes.unwrap(), GIB);
        assert_eq!(p.downtime_ms.unwrap(), 0.0);
    }

    #[test]
    fn precopy_geometric_series_by_hand() {
        // 1 GiB at 1 Gbit/s, dirtying 25 MiB/s over a 1 GiB working set, limit 300 ms.
        // Round 0: 1024 MiB, t0 = 8.589934592 s; round 1: 25 x t0 = 214.748 MiB,
        // t1 = 1.801440 s; round 2: 45.036 MiB = 47.2237e6 B <= 0.3 x 1.25e8 = 37.5e6? No:
        // 45.036 MiB = 47.22e6 B > 37.5e6, so round 2 is sent (t2 = 0.377789 s);
        // round 3: 25 x t2 = 9.4447 MiB = 9.9036e6 B <= 37.5e6: stop-and-copy,
        // downtime 0.079229 s.
        let i = inputs(AlgorithmKind::Precopy, GIB, GBIT_BYTES_S, 25.0 * MIB, GIB);
        let p = i.predict();
        let t0 = GIB / GBIT_BYTES_S;
        let t1 = 25.0 * MIB * t0 / GBIT_BYTES_S;
        let t2 = 25.0 * MIB * t1 / GBIT_BYTES_S;
        let t3 = 25.0 * MIB * t2 / GBIT_BYTES_S;
        assert!(close(t1, 1.801439850, 1e-6));
        assert!(close(t2, 0.377789318, 1e-6));
        assert!(close(t3, 0.079228806, 1e-6));
        assert!(p.converges);
        assert_eq!(p.rounds, 3);
        assert!(close(
            p.total_time_ms.unwrap(),
            (t0 + t1 + t2 + t3) * 1000.0,
            1e-6
        ));
        assert!(close(p.downtime_ms.unwrap(), t3 * 1000.0, 1e-6));
        let bytes = (t0 + t1 + t2 + t3) * GBIT_BYTES_S;
        assert!(close(p.transferred_bytes.unwrap(), bytes, 1.0));
    }

    #[test]
    fn dirty_rate_above_link_rate_never_converges() {
        // 200 MiB/s dirtying against 125 MB/s over all of RAM: each round is longer.
        let p = inputs(AlgorithmKind::Precopy, GIB, GBIT_BYTES_S, 200.0 * MIB, GIB).predict();
        assert!(!p.converges);
        assert_eq!(p.total_time_ms, None);
    }

    #[test]
    fn dirty_rate_above_link_rate_converges_when_the_working_set_fits_the_limit() {
        // 200 MiB/s, but only 16 MiB can be dirty (16.8e6 B <= 37.5e6 B): round 1 is
        // the working set, sent in the downtime (0.134 s).
        let p = inputs(
            AlgorithmKind::Precopy,
            GIB,
            GBIT_BYTES_S,
            200.0 * MIB,
            16.0 * MIB,
        )
        .predict();
        assert!(p.converges);
        assert_eq!(p.rounds, 1);
        assert!(close(
            p.downtime_ms.unwrap(),
            16.0 * MIB / GBIT_BYTES_S * 1000.0,
            1e-6
        ));
    }

    #[test]
    fn postcopy_is_one_pass_whatever_the_dirty_rate() {
        let p = inputs(AlgorithmKind::Postcopy, GIB, GBIT_BYTES_S, 500.0 * MIB, GIB).predict();
        assert!(p.converges && p.switched);
        assert_eq!(p.rounds, 0);
        assert!(close(p.total_time_ms.unwrap(), 8589.934592, 1e-6));
        assert_eq!(p.transferred_bytes.unwrap(), GIB);
        assert_eq!(p.downtime_ms, None);
    }

    #[test]
    fn hybrid_after_one_round_adds_the_dirty_set_once() {
        // 512 MiB on 1 Gbit/s dirtying 100 MiB/s over a 64 MiB working set:
        // round 0 = 512 MiB in 4.294967 s, then post-copy sends the 64 MiB working
        // set (min(100 x 4.29, 64) MiB) once: 0.536871 s.
        let mut i = inputs(
            AlgorithmKind::Hybrid,
            512.0 * MIB,
            GBIT_BYTES_S,
            100.0 * MIB,
            64.0 * MIB,
        );
        i.switch_after_rounds = Some(1);
        let p = i.predict();
        assert!(p.switched);
        assert_eq!(p.rounds, 1);
        assert!(close(
            p.total_time_ms.unwrap(),
            4294.967296 + 536.870912,
            1e-6
        ));
        assert_eq!(p.transferred_bytes.unwrap(), 576.0 * MIB);
    }

    #[test]
    fn hybrid_after_seconds_switches_mid_round() {
        // 1 GiB on 1 Gbit/s, idle, switch after 2 s: 250e6 B sent, the rest once.
        let mut i = inputs(AlgorithmKind::Hybrid, GIB, GBIT_BYTES_S, 0.0, GIB);
        i.switch_after_s = Some(2.0);
        let p = i.predict();
        assert!(p.switched);
        assert!(close(p.total_time_ms.unwrap(), 8589.934592, 1e-6));
        assert!(close(p.transferred_bytes.unwrap(), GIB, 1e-3));
    }

    #[test]
    fn hybrid_that_converges_before_its_switch_is_precopy() {
        let mut i = inputs(AlgorithmKind::Hybrid, GIB, GBIT_BYTES_S, 0.0, GIB);
        i.switch_after_rounds = Some(5);
        let p = i.predict();
        assert!(!p.switched);
        assert_eq!(p.rounds, 1);
    }

    fn run(outcome: super::super::result::Outcome, total_ms: f64) -> MigrationResult {
        use super::super::scenario::{Algorithm, Flavor, HostPair, Link, Load};
        MigrationResult {
            outcome: Some(outcome),
            total_time_ms: Some(total_ms),
            link_rate_bps: Some(1_000_000_000),
            scenario: Some(Scenario {
                flavor: Flavor {
                    name: "f".into(),
                    vcpus: 1,
                    memory_mib: 1024,
                    disk_gib: 0.0,
                },
                algorithm: Algorithm::default(),
                load: Load::default(),
                link: Link {
                    name: "l".into(),
                    rate_bps: Some(100_000_000),
                    mtu: None,
                    stands_for_bps: Some(10_000_000_000),
                },
                repetition: 0,
                warmup: false,
                pair: HostPair {
                    source: "a".into(),
                    destination: "b".into(),
                },
            }),
            ..MigrationResult::default()
        }
    }

    #[test]
    fn inputs_use_the_rate_the_run_had_never_what_it_stands_for() {
        let i =
            ModelInputs::of_run(&run(super::super::result::Outcome::Completed, 9000.0)).unwrap();
        assert_eq!(i.link_bytes_s, GBIT_BYTES_S);
        assert_eq!(i.ram_bytes, GIB);
        assert_eq!(i.dirty_bytes_s, 0.0);
        assert_eq!(i.downtime_limit_s, 0.3);
    }

    #[test]
    fn runs_beyond_the_factor_or_against_convergence_are_flagged() {
        use super::super::result::Outcome;
        let check = |r: &MigrationResult| check_run(r, &ModelInputs::of_run(r).unwrap());
        // 8.59 s predicted: 12 s is within 2x, 20 s is not.
        let ok = check(&run(Outcome::Completed, 12_000.0));
        assert!(ok.disagreement.is_none());
        assert!(close(ok.time_ratio.unwrap(), 12.0 / 8.589934592, 1e-9));
        let slow = check(&run(Outcome::Completed, 20_000.0));
        assert!(slow.disagreement.unwrap().contains("2.33x"));
        // An idle guest that did not converge contradicts the model.
        let stuck = check(&run(Outcome::NotConverged, 60_000.0));
        assert!(
            stuck
                .disagreement
                .unwrap()
                .contains("the model says it does")
        );
        assert_eq!(stuck.time_ratio, None);
    }
}
