//! The summary as text: the terminal tables (aligned, within 100 columns), the
//! Markdown table and the CSV file. Strings only; the command prints them.

use std::fmt::Write as _;

use super::summary::{ScenarioSummary, Stats};

const MIB: f64 = 1048576.0;

/// Column alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A table of text cells, rendered aligned (terminal) or as Markdown.
#[derive(Debug, Clone, Default)]
pub struct TextTable {
    pub headers: Vec<String>,
    pub align: Vec<Align>,
    pub rows: Vec<Vec<String>>,
}

impl TextTable {
    pub fn new(columns: &[(&str, Align)]) -> TextTable {
        TextTable {
            headers: columns.iter().map(|c| c.0.to_string()).collect(),
            align: columns.iter().map(|c| c.1).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    fn widths(&self) -> Vec<usize> {
        let mut w: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                w[i] = w[i].max(c.chars().count());
            }
        }
        w
    }

    /// Aligned columns two spaces apart, each line indented by `indent`.
    pub fn aligned(&self, indent: &str) -> String {
        let w = self.widths();
        let mut out = String::new();
        let line = |cells: &[String], out: &mut String| {
            let mut l = String::from(indent);
            for (i, c) in cells.iter().enumerate() {
                if i > 0 {
                    l.push_str("  ");
                }
                let pad = w[i] - c.chars().count();
                match self.align[i] {
                    Align::Left => {
                        l.push_str(c);
                        l.push_str(&" ".repeat(pad));
                    }
                    Align::Right => {
                        l.push_str(&" ".repeat(pad));
                        l.push_str(c);
                    }
                }
            }
            out.push_str(l.trim_end());
            out.push('\n');
        };
        line(&self.headers, &mut out);
        for r in &self.rows {
            line(r, &mut out);
        }
        out
    }

    /// The table of just these columns (by index, in this order).
    pub fn columns(&self, idx: &[usize]) -> TextTable {
        TextTable {
            headers: idx.iter().map(|&i| self.headers[i].clone()).collect(),
            align: idx.iter().map(|&i| self.align[i]).collect(),
            rows: self
                .rows
                .iter()
                .map(|r| idx.iter().map(|&i| r[i].clone()).collect())
                .collect(),
        }
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let esc = |c: &str| c.replace('|', "\\|");
        let _ = writeln!(
            out,
            "| {} |",
            self.headers
                .iter()
                .map(|h| esc(h))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        let _ = writeln!(
            out,
            "|{}|",
            self.align
                .iter()
                .map(|a| match a {
                    Align::Left => " --- ",
                    Align::Right => " ---: ",
                })
                .collect::<Vec<_>>()
                .join("|")
        );
        for r in &self.rows {
            let _ = writeln!(
                out,
                "| {} |",
                r.iter().map(|c| esc(c)).collect::<Vec<_>>().join(" | ")
            );
        }
        out
    }
}

/// A number with `decimals` decimals; `—` for none.
pub fn num(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(v) => format!("{v:.decimals$}"),
        None => "—".into(),
    }
}

/// Decimals that keep about three significant digits for a figure of this size.
fn decimals_for(v: f64) -> usize {
    let a = v.abs();
    if a >= 100.0 {
        0
    } else if a >= 10.0 {
        1
    } else {
        2
    }
}

fn fig(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.*}", decimals_for(v)))
        .unwrap_or_else(|| "—".into())
}

fn range(s: Option<&Stats>, scale: f64) -> String {
    match s {
        Some(s) => {
            let d = decimals_for(s.max / scale);
            format!("{:.d$}–{:.d$}", s.min / scale, s.max / scale)
        }
        None => "—".into(),
    }
}

fn ratio(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "—".into())
}

/// A link rate for people: `1 Gbit/s`, `100 Mbit/s`.
pub fn rate(bps: u64) -> String {
    let b = bps as f64;
    if b >= 1e9 {
        format!("{} Gbit/s", trim(b / 1e9))
    } else if b >= 1e6 {
        format!("{} Mbit/s", trim(b / 1e6))
    } else {
        format!("{} kbit/s", trim(b / 1e3))
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The section a summary is listed under in the terminal: its link and load.
pub fn section(s: &ScenarioSummary) -> String {
    section_title(&s.link, s.link_rate_bps, s.stands_for_bps, &s.load)
}

/// `link lab-1g (1 Gbit/s, standing for 10 Gbit/s) · load idle`; an axis pooled by
/// `--group-by` (label `*`) is said so.
pub fn section_title(
    link: &str,
    rate_bps: Option<u64>,
    stands_for: Option<u64>,
    load: &str,
) -> String {
    let load_part = if load == "*" {
        "all loads".to_string()
    } else {
        format!("load {load}")
    };
    if link == "*" {
        return format!("all links · {load_part}");
    }
    let mut out = format!("link {link}");
    match (rate_bps, stands_for) {
        (Some(r), Some(f)) => {
            let _ = write!(out, " ({}, standing for {})", rate(r), rate(f));
        }
        (Some(r), None) => {
            let _ = write!(out, " ({})", rate(r));
        }
        _ => {}
    }
    let _ = write!(out, " · {load_part}");
    out
}

/// The row label inside a section: flavor/algorithm.
fn row_label(s: &ScenarioSummary) -> String {
    match (s.flavor.as_str(), s.algorithm.as_str()) {
        ("*", "*") => "all".into(),
        ("*", a) => a.into(),
        (f, "*") => f.into(),
        (f, a) => format!("{f}/{a}"),
    }
}

fn sections(summaries: &[ScenarioSummary]) -> Vec<(String, Vec<&ScenarioSummary>)> {
    let mut out: Vec<(String, Vec<&ScenarioSummary>)> = Vec::new();
    let mut order: Vec<&ScenarioSummary> = summaries.iter().collect();
    // Sections by link then load; inside, the summary order (flavor by RAM).
    order.sort_by_key(|s| (s.link_rate_bps.unwrap_or(0), s.link.clone(), s.load.clone()));
    for s in order {
        let name = section(s);
        match out.last_mut() {
            Some((n, v)) if *n == name => v.push(s),
            _ => out.push((name, vec![s])),
        }
    }
    out
}

fn time_row(s: &ScenarioSummary) -> Vec<String> {
    let flag = if s.disagreeing > 0 { " !" } else { "" };
    vec![
        row_label(s),
        s.runs.to_string(),
        s.failed.to_string(),
        s.not_converged.to_string(),
        fig(s.total_ms.map(|t| t.median / 1000.0)),
        range(s.total_ms.as_ref(), 1000.0),
        fig(s.total_ms.map(|t| t.iqr() / 1000.0)),
        ratio(s.total_over_bound),
        model_s(s),
        format!("{}{flag}", ratio(s.measured_over_model)),
    ]
}

/// The model's total time, or `n/c` when it says no run of the group converges.
fn model_s(s: &ScenarioSummary) -> String {
    if s.model_total_ms.is_none() && s.model_not_converging > 0 {
        "n/c".into()
    } else {
        fig(s.model_total_ms.map(|m| m / 1000.0))
    }
}

fn data_row(s: &ScenarioSummary) -> Vec<String> {
    vec![
        row_label(s),
        fig(s.downtime_ms.map(|t| t.median)),
        fig(s.downtime_ms.map(|t| t.iqr())),
        fig(s.probe_downtime_ms.map(|t| t.median)),
        fig(s.probe_downtime_ms.map(|t| t.iqr())),
        fig(s.bytes_qemu.map(|b| b.median / MIB)),
        fig(s.bytes_nic.map(|b| b.median / MIB)),
        ratio(s.bytes_over_ram),
    ]
}

const TIME_COLUMNS: [(&str, Align); 10] = [
    ("flavor/algorithm", Align::Left),
    ("n", Align::Right),
    ("fail", Align::Right),
    ("n/c", Align::Right),
    ("total s", Align::Right),
    ("min–max s", Align::Right),
    ("IQR s", Align::Right),
    ("×bound", Align::Right),
    ("model s", Align::Right),
    ("×model", Align::Right),
];

const DATA_COLUMNS: [(&str, Align); 8] = [
    ("flavor/algorithm", Align::Left),
    ("downtime ms", Align::Right),
    ("IQR", Align::Right),
    ("probe ms", Align::Right),
    ("IQR", Align::Right),
    ("MiB QEMU", Align::Right),
    ("MiB NIC", Align::Right),
    ("×RAM", Align::Right),
];

/// The terminal summary: per link and load, the time table and the downtime/data table.
pub fn terminal(summaries: &[ScenarioSummary]) -> String {
    let mut out = String::new();
    if summaries.is_empty() {
        out.push_str("no runs recorded\n");
        return out;
    }
    out.push_str(
        "Total migration time (medians of completed runs; fail/n/c: failed/not converged;\n\
         ×bound: median / (RAM / link rate); model: docs/model.md; ! disagrees with the model)\n",
    );
    for (name, group) in sections(summaries) {
        let mut t = TextTable::new(&TIME_COLUMNS);
        for s in &group {
            t.push(time_row(s));
        }
        let _ = write!(out, "\n{name}\n{}", t.aligned("  "));
    }
    out.push_str(
        "\nDowntime (QEMU's and the ping probe's) and data transferred (QEMU's and the NIC's)\n",
    );
    for (name, group) in sections(summaries) {
        let mut t = TextTable::new(&DATA_COLUMNS);
        for s in &group {
            t.push(data_row(s));
        }
        let _ = write!(out, "\n{name}\n{}", t.aligned("  "));
    }
    out
}

/// Every column of the summary, as one table (Markdown and HTML).
pub fn full_table(summaries: &[ScenarioSummary]) -> TextTable {
    let mut t = TextTable::new(&[
        ("scenario", Align::Left),
        ("runs", Align::Right),
        ("failed", Align::Right),
        ("not converged", Align::Right),
        ("warm-ups", Align::Right),
        ("total s median", Align::Right),
        ("total s min–max", Align::Right),
        ("total s IQR", Align::Right),
        ("lower bound s", Align::Right),
        ("×bound", Align::Right),
        ("model s", Align::Right),
        ("×model", Align::Right),
        ("disagree", Align::Right),
        ("downtime ms", Align::Right),
        ("downtime IQR", Align::Right),
        ("probe ms", Align::Right),
        ("probe IQR", Align::Right),
        ("MiB QEMU", Align::Right),
        ("MiB NIC", Align::Right),
        ("×RAM", Align::Right),
    ]);
    for s in summaries {
        t.push(vec![
            s.key.clone(),
            s.runs.to_string(),
            s.failed.to_string(),
            s.not_converged.to_string(),
            s.warmups.to_string(),
            fig(s.total_ms.map(|t| t.median / 1000.0)),
            range(s.total_ms.as_ref(), 1000.0),
            fig(s.total_ms.map(|t| t.iqr() / 1000.0)),
            fig(s.lower_bound_ms.map(|b| b / 1000.0)),
            ratio(s.total_over_bound),
            model_s(s),
            ratio(s.measured_over_model),
            s.disagreeing.to_string(),
            fig(s.downtime_ms.map(|t| t.median)),
            fig(s.downtime_ms.map(|t| t.iqr())),
            fig(s.probe_downtime_ms.map(|t| t.median)),
            fig(s.probe_downtime_ms.map(|t| t.iqr())),
            fig(s.bytes_qemu.map(|b| b.median / MIB)),
            fig(s.bytes_nic.map(|b| b.median / MIB)),
            ratio(s.bytes_over_ram),
        ]);
    }
    t
}

/// `summary.csv`: every figure in base units (ms, bytes), unrounded.
pub fn csv(summaries: &[ScenarioSummary]) -> String {
    let mut out = String::from(
        "scenario,flavor,algorithm,load,link,ram_mib,link_rate_bps,stands_for_bps,runs,completed,failed,not_converged,warmups",
    );
    for m in [
        "total_ms",
        "downtime_ms",
        "probe_downtime_ms",
        "bytes_qemu",
        "bytes_nic",
    ] {
        for s in ["median", "min", "max", "q1", "q3"] {
            let _ = write!(out, ",{m}_{s}");
        }
    }
    out.push_str(",lower_bound_ms,total_over_bound,bytes_over_ram,model_total_ms,measured_over_model,model_not_converging,disagreeing\n");
    let o = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    let u = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    for s in summaries {
        let mut line = [
            csv_field(&s.key),
            csv_field(&s.flavor),
            csv_field(&s.algorithm),
            csv_field(&s.load),
            csv_field(&s.link),
            u(s.ram_mib),
            u(s.link_rate_bps),
            u(s.stands_for_bps),
            s.runs.to_string(),
            s.completed.to_string(),
            s.failed.to_string(),
            s.not_converged.to_string(),
            s.warmups.to_string(),
        ]
        .join(",");
        for st in [
            s.total_ms,
            s.downtime_ms,
            s.probe_downtime_ms,
            s.bytes_qemu,
            s.bytes_nic,
        ] {
            for v in [
                st.map(|x| x.median),
                st.map(|x| x.min),
                st.map(|x| x.max),
                st.map(|x| x.q1),
                st.map(|x| x.q3),
            ] {
                let _ = write!(line, ",{}", o(v));
            }
        }
        let _ = writeln!(
            line,
            ",{},{},{},{},{},{},{}",
            o(s.lower_bound_ms),
            o(s.total_over_bound),
            o(s.bytes_over_ram),
            o(s.model_total_ms),
            o(s.measured_over_model),
            s.model_not_converging,
            s.disagreeing
        );
        out.push_str(&line);
    }
    out
}

pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_pads_left_and_right() {
        let mut t = TextTable::new(&[("a", Align::Left), ("bb", Align::Right)]);
        t.push(vec!["xyz".into(), "1".into()]);
        assert_eq!(t.aligned(""), "a    bb\nxyz   1\n");
    }

    #[test]
    fn rates_read_as_people_write_them() {
        assert_eq!(rate(1_000_000_000), "1 Gbit/s");
        assert_eq!(rate(100_000_000), "100 Mbit/s");
        assert_eq!(rate(2_500_000_000), "2.5 Gbit/s");
    }
}
