//! The matrix expanded into the runs of an experiment, in the order they run:
//! warm-up runs first (per pair), then every flavor x algorithm x load x link x
//! repetition, shuffled with a recorded seed so that drift over the hours of a
//! matrix (a warming machine, a neighbour's traffic) does not line up with one axis.
//!
//! The shuffle is deterministic given the seed ([`SplitMix64`] + Fisher-Yates), so
//! `--resume` regenerates exactly the same order and indexes from the seed in
//! `provenance.json`.

use serde_json::{Value, json};

use super::scenario::{HostPair, Scenario};
use super::spec::ExperimentSpec;

/// Sebastiano Vigna's SplitMix64 (public domain): a tiny, well-mixed 64-bit PRNG,
/// plenty for shuffling a run order (not for cryptography). Written out here so the
/// order of a recorded seed never changes with a crate's version.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), without modulo bias (Lemire's multiply-shift with rejection).
    pub fn below(&mut self, n: u64) -> u64 {
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = (self.next_u64() as u128) * (n as u128);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// Fisher-Yates.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// A seed when the file gives none: from the clock and the process id.
pub fn fresh_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    SplitMix64::new(nanos ^ ((std::process::id() as u64) << 32)).next_u64()
}

/// Every run of the experiment in run order (index = position).
///
/// Warm-ups: `spec.warmup` runs per pair, first, of the matrix's first point
/// (first flavor, algorithm, load and link), numbered on across pairs so their run
/// ids stay unique. Then the matrix, pairs given round-robin in expansion order
/// (repetitions innermost, so one scenario's repetitions spread over the pairs),
/// then shuffled.
pub fn expand(spec: &ExperimentSpec, pairs: &[HostPair], seed: u64) -> Vec<Scenario> {
    let mut out = Vec::new();
    if pairs.is_empty() {
        return out;
    }
    let first = (
        &spec.flavors[0],
        &spec.algorithms[0],
        &spec.loads[0],
        &spec.links[0],
    );
    let mut w = 0;
    for pair in pairs {
        for _ in 0..spec.warmup {
            out.push(Scenario {
                flavor: first.0.clone(),
                algorithm: first.1.clone(),
                load: first.2.clone(),
                link: first.3.clone(),
                repetition: w,
                warmup: true,
                pair: pair.clone(),
            });
            w += 1;
        }
    }
    let mut runs = Vec::new();
    for flavor in &spec.flavors {
        for algorithm in &spec.algorithms {
            for load in &spec.loads {
                for link in &spec.links {
                    for repetition in 0..spec.repetitions {
                        let pair = pairs[runs.len() % pairs.len()].clone();
                        runs.push(Scenario {
                            flavor: flavor.clone(),
                            algorithm: algorithm.clone(),
                            load: load.clone(),
                            link: link.clone(),
                            repetition,
                            warmup: false,
                            pair,
                        });
                    }
                }
            }
        }
    }
    SplitMix64::new(seed).shuffle(&mut runs);
    out.extend(runs);
    out
}

/// The matrix as provenance records it: the axes, counts, and the run order by id.
pub fn describe(spec: &ExperimentSpec, pairs: &[HostPair], runs: &[Scenario]) -> Value {
    json!({
        "flavor": spec.flavors,
        "algorithm": spec.algorithms,
        "load": spec.loads,
        "link": spec.links,
        "repetitions": spec.repetitions,
        "warmup_per_pair": spec.warmup,
        "pairs": pairs,
        "runs": runs.len(),
        "order": runs.iter().map(Scenario::run_id).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::path::Path;

    fn spec(src: &str) -> ExperimentSpec {
        let docs = crate::yaml::parse_str(src, Path::new("e.yml")).unwrap();
        super::super::spec::parse(&docs[0], &Default::default()).unwrap()
    }

    fn pair(a: &str, b: &str) -> HostPair {
        HostPair {
            source: a.into(),
            destination: b.into(),
        }
    }

    const SRC: &str = "name: t\ndriver: qmp\npairs: c\nwarmup: 2\nrepetitions: 3\nmatrix:\n  flavor: [m1.tiny, m1.small]\n  algorithm: [precopy, postcopy, hybrid]\n  load: [idle, {name: mem, memory: {working_set_mib: 32}}]\n  link: [100mbit, 1gbit]\n";

    #[test]
    fn every_point_times_repetitions_plus_warmups_per_pair() {
        let s = spec(SRC);
        let pairs = [pair("a", "b"), pair("c", "d")];
        let runs = expand(&s, &pairs, 7);
        assert_eq!(runs.len(), 2 * 2 + 2 * 3 * 2 * 2 * 3);
        assert!(runs[..4].iter().all(|r| r.warmup));
        assert_eq!(runs[..4].iter().filter(|r| r.pair == pairs[1]).count(), 2);
        assert!(runs[4..].iter().all(|r| !r.warmup));
        let ids: HashSet<String> = runs.iter().map(Scenario::run_id).collect();
        assert_eq!(ids.len(), runs.len(), "run ids are unique");
        let keys: HashSet<String> = runs[4..].iter().map(Scenario::key).collect();
        assert_eq!(keys.len(), 2 * 3 * 2 * 2);
        // Round-robin: the pairs share the matrix evenly.
        assert_eq!(runs[4..].iter().filter(|r| r.pair == pairs[0]).count(), 36);
    }

    #[test]
    fn the_order_is_a_function_of_the_seed() {
        let s = spec(SRC);
        let pairs = [pair("a", "b")];
        let ids = |seed| {
            expand(&s, &pairs, seed)
                .iter()
                .map(Scenario::run_id)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(42), ids(42));
        assert_ne!(ids(42), ids(43));
        let mut sorted_a = ids(42);
        let mut sorted_b = ids(43);
        sorted_a.sort();
        sorted_b.sort();
        assert_eq!(sorted_a, sorted_b, "a shuffle, not a different set");
        // Not left in expansion order.
        let unshuffled: Vec<String> = {
            let mut v = ids(42);
            v.sort_by_key(|id| id.clone());
            v
        };
        assert_ne!(ids(42), unshuffled);
    }

    #[test]
    fn splitmix_matches_the_reference_sequence() {
        // First outputs of the reference implementation for seed 1234567.
        let mut r = SplitMix64::new(1234567);
        assert_eq!(r.next_u64(), 6457827717110365317);
        assert_eq!(r.next_u64(), 3203168211198807973);
        assert_eq!(r.next_u64(), 9817491932198370423);
    }

    #[test]
    fn below_is_in_range_and_covers_it() {
        let mut r = SplitMix64::new(9);
        let mut seen = [0u32; 6];
        for _ in 0..6000 {
            seen[r.below(6) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
    }
}
