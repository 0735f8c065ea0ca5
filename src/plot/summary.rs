//! Per-scenario statistics of a results directory: runs and their outcomes, median,
//! min–max and IQR of each metric, the physical lower bound and the model's
//! prediction beside the measurement.
//!
//! Statistics count completed runs that are not warm-ups; quartiles interpolate
//! linearly between the two nearest ranks (`h = (n-1)p`, numpy's default).

use std::collections::BTreeMap;

use crate::experiment::model::{ModelCheck, ModelGap, ModelInputs, check_run};
use crate::experiment::result::{MigrationResult, Outcome};

use super::results_dir::ResultsDir;

/// An axis of the matrix to group runs by (`--group-by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Axis {
    Flavor,
    Algorithm,
    Load,
    Link,
}

pub const ALL_AXES: [Axis; 4] = [Axis::Flavor, Axis::Algorithm, Axis::Load, Axis::Link];

/// Median, quartiles and range of a set of values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub n: usize,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub q1: f64,
    pub q3: f64,
}

impl Stats {
    /// `None` for no values.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Stats> {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(Stats {
            n: v.len(),
            median: quantile(&v, 0.5),
            min: v[0],
            max: v[v.len() - 1],
            q1: quantile(&v, 0.25),
            q3: quantile(&v, 0.75),
        })
    }

    pub fn iqr(&self) -> f64 {
        self.q3 - self.q1
    }
}

/// Quantile `p` of sorted values, linear between the nearest ranks.
pub fn quantile(sorted: &[f64], p: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (h - lo as f64)
}

/// One group of runs (a scenario, or several pooled by `--group-by`).
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioSummary {
    /// The axis labels joined with `/` (the scenario key when grouping by every axis).
    pub key: String,
    pub flavor: String,
    pub algorithm: String,
    pub load: String,
    pub link: String,
    /// Guest RAM (MiB) and link rate (bits/s) when every run of the group shares them.
    pub ram_mib: Option<u64>,
    pub link_rate_bps: Option<u64>,
    /// The rate the link stands for in a scaled experiment (a label only).
    pub stands_for_bps: Option<u64>,
    /// Runs that count (warm-ups excluded), and how they ended.
    pub runs: usize,
    pub completed: usize,
    pub failed: usize,
    pub not_converged: usize,
    pub warmups: usize,
    pub total_ms: Option<Stats>,
    pub downtime_ms: Option<Stats>,
    pub probe_downtime_ms: Option<Stats>,
    pub bytes_qemu: Option<Stats>,
    pub bytes_nic: Option<Stats>,
    /// RAM / link rate, ms (median over the group's runs).
    pub lower_bound_ms: Option<f64>,
    /// Median total time / lower bound.
    pub total_over_bound: Option<f64>,
    /// Median QEMU bytes / guest RAM (median over runs of each run's RAM).
    pub bytes_over_ram: Option<f64>,
    /// The model's total time (median over the group's runs it predicts), ms.
    pub model_total_ms: Option<f64>,
    /// Runs the model says do not converge.
    pub model_not_converging: usize,
    /// Median measured total / the model's.
    pub measured_over_model: Option<f64>,
    /// Runs whose measurement disagrees with the model beyond the factor.
    pub disagreeing: usize,
}

/// A run with what the model says about it.
#[derive(Debug, Clone)]
pub struct RunCheck<'a> {
    pub row: &'a MigrationResult,
    pub model: Result<ModelCheck, ModelGap>,
}

/// Every counted run's model check, in file order.
pub fn check_runs(dir: &ResultsDir) -> Vec<RunCheck<'_>> {
    dir.measured()
        .map(|row| RunCheck {
            row,
            model: ModelInputs::of_run(row).map(|i| check_run(row, &i)),
        })
        .collect()
}

fn label(row: &MigrationResult, axis: Axis) -> String {
    let Some(s) = &row.scenario else {
        // A row without its scenario still has its key.
        let parts: Vec<&str> = row.scenario_key.split('/').collect();
        let i = ALL_AXES.iter().position(|a| *a == axis).unwrap_or(0);
        return parts.get(i).unwrap_or(&"?").to_string();
    };
    match axis {
        Axis::Flavor => s.flavor.name.clone(),
        Axis::Algorithm => s.algorithm.name.clone(),
        Axis::Load => s.load.name.clone(),
        Axis::Link => s.link.name.clone(),
    }
}

/// The order groups are listed in: flavor by RAM, then the labels; link by rate.
type SortKey = (u64, String, String, String, u64, String);

fn sort_key(row: &MigrationResult, axes: &[Axis]) -> SortKey {
    let has = |a| axes.contains(&a);
    let s = row.scenario.as_ref();
    let pick = |a, v: String| if has(a) { v } else { String::new() };
    (
        if has(Axis::Flavor) {
            s.map(|s| s.flavor.memory_mib).unwrap_or(0)
        } else {
            0
        },
        pick(Axis::Flavor, label(row, Axis::Flavor)),
        // Pre-copy, post-copy, hybrid: the order the studies show them in.
        pick(
            Axis::Algorithm,
            format!(
                "{}{}",
                s.map(|s| s.algorithm.kind as u8).unwrap_or(9),
                label(row, Axis::Algorithm)
            ),
        ),
        pick(Axis::Load, label(row, Axis::Load)),
        if has(Axis::Link) {
            row.link_rate_bps
                .or(s.and_then(|s| s.link.rate_bps))
                .unwrap_or(0)
        } else {
            0
        },
        pick(Axis::Link, label(row, Axis::Link)),
    )
}

/// The summaries of a results directory, grouped by `axes` (every axis: one per scenario).
pub fn summarize(dir: &ResultsDir, axes: &[Axis]) -> Vec<ScenarioSummary> {
    let axes: Vec<Axis> = if axes.is_empty() {
        ALL_AXES.to_vec()
    } else {
        ALL_AXES
            .iter()
            .copied()
            .filter(|a| axes.contains(a))
            .collect()
    };
    let checks = check_runs(dir);
    let mut groups: BTreeMap<(SortKey, String), (Vec<&RunCheck>, usize)> = BTreeMap::new();
    let key_of = |row: &MigrationResult| {
        let key = axes
            .iter()
            .map(|a| label(row, *a))
            .collect::<Vec<_>>()
            .join("/");
        (sort_key(row, &axes), key)
    };
    for c in &checks {
        groups.entry(key_of(c.row)).or_default().0.push(c);
    }
    for w in dir.warmups() {
        groups.entry(key_of(w)).or_default().1 += 1;
    }
    groups
        .into_iter()
        .map(|((_, key), (runs, warmups))| summarize_group(key, &axes, &runs, warmups))
        .collect()
}

fn same<T: PartialEq + Copy>(values: impl IntoIterator<Item = Option<T>>) -> Option<T> {
    let mut it = values.into_iter();
    let first = it.next()??;
    it.all(|v| v == Some(first)).then_some(first)
}

fn summarize_group(
    key: String,
    axes: &[Axis],
    runs: &[&RunCheck],
    warmups: usize,
) -> ScenarioSummary {
    let first = runs.first().map(|c| c.row);
    let axis_label = |a: Axis| match (axes.contains(&a), first) {
        (true, Some(r)) => label(r, a),
        _ => "*".to_string(),
    };
    let done: Vec<&MigrationResult> = runs
        .iter()
        .map(|c| c.row)
        .filter(|r| r.outcome == Some(Outcome::Completed))
        .collect();
    let count = |o: &[Outcome]| {
        runs.iter()
            .filter(|c| c.row.outcome.is_some_and(|x| o.contains(&x)))
            .count()
    };
    let stats =
        |f: &dyn Fn(&MigrationResult) -> Option<f64>| Stats::of(done.iter().filter_map(|r| f(r)));
    let ram_bytes = |r: &MigrationResult| {
        r.ram_total_bytes.map(|b| b as f64).or(r
            .scenario
            .as_ref()
            .map(|s| s.flavor.memory_mib as f64 * 1048576.0))
    };
    let total_ms = stats(&|r| r.total_time_ms);
    let bytes_qemu = stats(&|r| r.transferred_bytes.map(|b| b as f64));
    let lower_bound_ms = Stats::of(
        runs.iter()
            .filter_map(|c| ModelInputs::of_run(c.row).ok())
            .map(|i| i.lower_bound_s() * 1000.0),
    )
    .map(|s| s.median);
    let predictions: Vec<&ModelCheck> = runs.iter().filter_map(|c| c.model.as_ref().ok()).collect();
    let model_total_ms = Stats::of(
        predictions
            .iter()
            .filter_map(|m| m.prediction.total_time_ms),
    )
    .map(|s| s.median);
    ScenarioSummary {
        key,
        flavor: axis_label(Axis::Flavor),
        algorithm: axis_label(Axis::Algorithm),
        load: axis_label(Axis::Load),
        link: axis_label(Axis::Link),
        ram_mib: same(
            runs.iter()
                .map(|c| c.row.scenario.as_ref().map(|s| s.flavor.memory_mib)),
        ),
        link_rate_bps: same(runs.iter().map(|c| {
            c.row
                .link_rate_bps
                .or(c.row.scenario.as_ref().and_then(|s| s.link.rate_bps))
        })),
        stands_for_bps: same(
            runs.iter()
                .map(|c| c.row.scenario.as_ref().and_then(|s| s.link.stands_for_bps)),
        ),
        runs: runs.len(),
        completed: done.len(),
        failed: count(&[Outcome::Failed, Outcome::Timeout, Outcome::Interrupted])
            + runs.iter().filter(|c| c.row.outcome.is_none()).count(),
        not_converged: count(&[Outcome::NotConverged]),
        warmups,
        downtime_ms: stats(&|r| r.downtime_ms),
        probe_downtime_ms: stats(&|r| r.probe_downtime_ms),
        bytes_nic: stats(&|r| {
            r.nic_source_tx_bytes
                .or(r.nic_destination_rx_bytes)
                .map(|b| b as f64)
        }),
        // Ratios are medians of each completed run's own ratio, so a group pooling
        // several flavors or links (`--group-by`) still compares like with like; for
        // one scenario (one RAM size, one link) they are the median over the bound.
        total_over_bound: Stats::of(done.iter().filter_map(|r| {
            let bound = ModelInputs::of_run(r).ok()?.lower_bound_s() * 1000.0;
            Some(r.total_time_ms? / bound)
        }))
        .map(|s| s.median),
        bytes_over_ram: Stats::of(
            done.iter()
                .filter_map(|r| Some(r.transferred_bytes? as f64 / ram_bytes(r)?)),
        )
        .map(|s| s.median),
        lower_bound_ms,
        measured_over_model: Stats::of(
            runs.iter()
                .filter_map(|c| c.model.as_ref().ok().and_then(|m| m.time_ratio)),
        )
        .map(|s| s.median),
        model_total_ms,
        model_not_converging: predictions
            .iter()
            .filter(|m| !m.prediction.converges)
            .count(),
        disagreeing: predictions
            .iter()
            .filter(|m| m.disagreement.is_some())
            .count(),
        total_ms,
        bytes_qemu,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quartiles_interpolate_between_ranks() {
        let s = Stats::of([4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!((s.min, s.max, s.median), (1.0, 4.0, 2.5));
        assert_eq!((s.q1, s.q3), (1.75, 3.25));
        assert_eq!(Stats::of([7.0]).unwrap().iqr(), 0.0);
        assert!(Stats::of([]).is_none());
    }
}
