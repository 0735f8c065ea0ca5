//! `--compare`: the same scenarios of two results directories side by side, with
//! the change in medians. Scenarios match by their key over the `--group-by` axes
//! (to compare 1 with 10 Gbit/s links, group by flavor, algorithm and load).

use std::fmt::Write as _;

use super::summary::{ScenarioSummary, Stats};
use super::table::{Align, TextTable, csv_field, num};

/// One scenario in either directory.
#[derive(Debug, Clone)]
pub struct Compared<'a> {
    pub key: String,
    pub a: Option<&'a ScenarioSummary>,
    pub b: Option<&'a ScenarioSummary>,
}

/// The scenarios of `a` in their order, then those only in `b`.
pub fn compare<'a>(a: &'a [ScenarioSummary], b: &'a [ScenarioSummary]) -> Vec<Compared<'a>> {
    let mut out: Vec<Compared> = a
        .iter()
        .map(|s| Compared {
            key: s.key.clone(),
            a: Some(s),
            b: b.iter().find(|t| t.key == s.key),
        })
        .collect();
    for t in b {
        if !a.iter().any(|s| s.key == t.key) {
            out.push(Compared {
                key: t.key.clone(),
                a: None,
                b: Some(t),
            });
        }
    }
    out
}

type Pick = fn(&ScenarioSummary) -> Option<Stats>;

/// The compared metrics: name, unit scale, how to pick it.
const METRICS: [(&str, f64, Pick); 3] = [
    ("total s", 1000.0, |s| s.total_ms),
    ("downtime ms", 1.0, |s| s.downtime_ms),
    ("MiB", 1048576.0, |s| s.bytes_qemu),
];

fn median(s: Option<&ScenarioSummary>, pick: Pick, scale: f64) -> Option<f64> {
    s.and_then(pick).map(|st| st.median / scale)
}

/// Change from a to b in percent.
pub fn change(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if a != 0.0 => Some((b - a) / a * 100.0),
        _ => None,
    }
}

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{v:+.0}%")).unwrap_or_else(|| "—".into())
}

fn decimals(v: Option<f64>) -> usize {
    match v {
        Some(v) if v.abs() >= 100.0 => 0,
        Some(v) if v.abs() >= 10.0 => 1,
        _ => 2,
    }
}

/// The comparison as a table: per metric the median in A, in B, and the change.
pub fn table(rows: &[Compared]) -> TextTable {
    let mut cols: Vec<(String, Align)> = vec![("scenario".into(), Align::Left)];
    for (name, _, _) in METRICS {
        cols.push((format!("{name} A"), Align::Right));
        cols.push((format!("{name} B"), Align::Right));
        cols.push(("Δ".into(), Align::Right));
    }
    let cols_ref: Vec<(&str, Align)> = cols.iter().map(|(n, a)| (n.as_str(), *a)).collect();
    let mut t = TextTable::new(&cols_ref);
    for r in rows {
        let mut cells = vec![r.key.clone()];
        for (_, scale, pick) in METRICS {
            let a = median(r.a, pick, scale);
            let b = median(r.b, pick, scale);
            cells.push(num(a, decimals(a)));
            cells.push(num(b, decimals(b)));
            cells.push(pct(change(a, b)));
        }
        t.push(cells);
    }
    t
}

/// `compare.csv`: medians in base units and the change in percent.
pub fn csv(rows: &[Compared]) -> String {
    let mut out = String::from("scenario");
    for m in ["total_ms", "downtime_ms", "bytes_qemu"] {
        let _ = write!(out, ",{m}_median_a,{m}_median_b,{m}_change_pct");
    }
    out.push('\n');
    let o = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for r in rows {
        out.push_str(&csv_field(&r.key));
        for (_, _, pick) in METRICS {
            let a = median(r.a, pick, 1.0);
            let b = median(r.b, pick, 1.0);
            let _ = write!(out, ",{},{},{}", o(a), o(b), o(change(a, b)));
        }
        out.push('\n');
    }
    out
}
