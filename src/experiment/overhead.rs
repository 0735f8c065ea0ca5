//! ferry's orchestration overhead in a results directory: per run (`overhead_ms`:
//! the run's wall time that was not the guest booting, the probe settling, the
//! migration or the wait for the guest's first answer), by step
//! (`overhead_parts_ms`), and as a share of the matrix's wall time (first run's
//! start to last run's end, so the time between runs counts too).
//! `ferry bench experiment` prints it.

use std::collections::BTreeMap;

use super::clock::parse_rfc3339;
use super::result::MigrationResult;

/// What the rows of one results directory say about ferry's overhead.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OverheadSummary {
    /// Rows with an `overhead_ms`.
    pub runs: usize,
    pub mean_ms: f64,
    pub max_ms: f64,
    /// Sum of the runs' wall times, s.
    pub run_wall_s: f64,
    /// First run's start to the last run's end, s (None: no start times).
    pub matrix_wall_s: Option<f64>,
    /// Overhead inside the runs plus the time between them, s.
    pub total_s: f64,
    /// `total_s` over the matrix's wall time (else over the runs' wall time).
    pub share: f64,
    /// Mean ms per run of each step, largest first.
    pub parts: Vec<(String, f64)>,
}

pub fn summarize(rows: &[MigrationResult]) -> OverheadSummary {
    let with: Vec<&MigrationResult> = rows.iter().filter(|r| r.overhead_ms.is_some()).collect();
    let mut s = OverheadSummary {
        runs: with.len(),
        ..OverheadSummary::default()
    };
    if with.is_empty() {
        return s;
    }
    let overheads: Vec<f64> = with.iter().filter_map(|r| r.overhead_ms).collect();
    let in_runs: f64 = overheads.iter().sum::<f64>() / 1000.0;
    s.mean_ms = in_runs * 1000.0 / with.len() as f64;
    s.max_ms = overheads.iter().copied().fold(0.0, f64::max);
    s.run_wall_s = with.iter().filter_map(|r| r.run_wall_ms).sum::<f64>() / 1000.0;
    let spans: Vec<(f64, f64)> = with
        .iter()
        .filter_map(|r| {
            let start = parse_rfc3339(&r.started_at)?;
            Some((start, start + r.run_wall_ms? / 1000.0))
        })
        .collect();
    s.matrix_wall_s = (spans.len() == with.len()).then(|| {
        let first = spans.iter().map(|x| x.0).fold(f64::INFINITY, f64::min);
        let last = spans.iter().map(|x| x.1).fold(f64::NEG_INFINITY, f64::max);
        last - first
    });
    let between = s.matrix_wall_s.map_or(0.0, |m| (m - s.run_wall_s).max(0.0));
    s.total_s = in_runs + between;
    let wall = s.matrix_wall_s.unwrap_or(s.run_wall_s);
    s.share = if wall > 0.0 { s.total_s / wall } else { 0.0 };
    let mut parts: BTreeMap<String, f64> = BTreeMap::new();
    for r in &with {
        if let Some(serde_json::Value::Object(m)) = &r.overhead_parts_ms {
            for (k, v) in m {
                *parts.entry(k.clone()).or_default() += v.as_f64().unwrap_or(0.0);
            }
        }
    }
    s.parts = parts
        .into_iter()
        .map(|(k, v)| (k, v / with.len() as f64))
        .collect();
    s.parts.sort_by(|a, b| b.1.total_cmp(&a.1));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(start: &str, wall: f64, overhead: f64, parts: serde_json::Value) -> MigrationResult {
        MigrationResult {
            started_at: start.into(),
            run_wall_ms: Some(wall),
            overhead_ms: Some(overhead),
            overhead_parts_ms: Some(parts),
            ..MigrationResult::default()
        }
    }

    #[test]
    fn overhead_per_run_by_step_and_as_share_of_the_matrix() {
        let rows = [
            row(
                "2026-12-03T10:00:00.000Z",
                40_000.0,
                3000.0,
                json!({"cleanup": 2000, "link": 500, "other": 500}),
            ),
            // 1 s between the runs (counted), then the second run.
            row(
                "2026-12-03T10:00:41.000Z",
                39_000.0,
                1000.0,
                json!({"cleanup": 600, "link": 400}),
            ),
            MigrationResult::default(), // no overhead figure: not counted
        ];
        let s = summarize(&rows);
        assert_eq!(s.runs, 2);
        assert_eq!((s.mean_ms, s.max_ms), (2000.0, 3000.0));
        assert_eq!(s.matrix_wall_s, Some(80.0));
        assert!((s.total_s - 5.0).abs() < 1e-9, "{}", s.total_s);
        assert!((s.share - 5.0 / 80.0).abs() < 1e-9);
        assert_eq!(
            s.parts,
            vec![
                ("cleanup".into(), 1300.0),
                ("link".into(), 450.0),
                ("other".into(), 250.0)
            ]
        );
        assert_eq!(summarize(&[]).runs, 0);
    }
}
