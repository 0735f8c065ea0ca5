//! `report.html`: one self-contained file (plots inlined as SVG, styles inline, no
//! scripts, nothing fetched) with the provenance, the matrix, the summary, the
//! model's check of every run, every plot, the runs that did not complete with
//! their errors, and links to the raw rows.

use std::fmt::Write as _;

use crate::experiment::result::{MigrationResult, Outcome};

use super::chart::Chart;
use super::results_dir::ResultsDir;
use super::summary::RunCheck;
use super::table::{Align, TextTable, num, rate};

/// What goes into the page.
pub struct HtmlReport<'a> {
    pub dir: &'a ResultsDir,
    pub summary: &'a TextTable,
    pub checks: &'a [RunCheck<'a>],
    pub charts: &'a [Chart],
    /// The other directory and the comparison table.
    pub compare: Option<(&'a ResultsDir, &'a TextTable)>,
    /// Links from the page to the raw rows (relative to the page).
    pub rows_jsonl: String,
    pub rows_csv: String,
    /// Each plot's files written beside the page (relative), by stem.
    pub plot_files: &'a [(String, Vec<String>)],
    pub provenance_line: String,
}

pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An SVG document as an inline element: without its XML namespace attribute (the
/// HTML parser puts `<svg>` in that namespace itself), so the page names no URL.
pub fn inline_svg(svg: &str) -> String {
    let start = svg.find("<svg").unwrap_or(0);
    svg[start..]
        .replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1)
        .replace(" xmlns:xlink=\"http://www.w3.org/1999/xlink\"", "")
}

fn table_html(t: &TextTable) -> String {
    let mut out = String::from("<table>\n");
    if t.headers.iter().any(|h| !h.is_empty()) {
        out.push_str("<thead><tr>");
        for (h, a) in t.headers.iter().zip(&t.align) {
            let _ = write!(out, "<th{}>{}</th>", class(*a), esc(h));
        }
        out.push_str("</tr></thead>\n");
    }
    out.push_str("<tbody>\n");
    for r in &t.rows {
        out.push_str("<tr>");
        for (c, a) in r.iter().zip(&t.align) {
            let _ = write!(out, "<td{}>{}</td>", class(*a), esc(c));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
    out
}

fn class(a: Align) -> &'static str {
    match a {
        Align::Left => "",
        Align::Right => " class=\"n\"",
    }
}

const STYLE: &str = "body{font-family:'DejaVu Sans',sans-serif;margin:2em;max-width:1300px;color:#222}\
table{border-collapse:collapse;margin:1em 0;font-size:13px}\
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left}\
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
th{background:#f0f0f0}tr:nth-child(even) td{background:#fafafa}\
figure{margin:1.5em 0}figure svg{max-width:100%;height:auto;border:1px solid #ddd}\
.warn{background:#fff4e0;border-left:4px solid #e69f00;padding:.5em 1em}\
td:first-child{white-space:nowrap}pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:12px}";

fn outcome(r: &MigrationResult) -> &'static str {
    match r.outcome {
        Some(Outcome::Completed) => "completed",
        Some(Outcome::Failed) => "failed",
        Some(Outcome::NotConverged) => "not converged",
        Some(Outcome::Timeout) => "timeout",
        Some(Outcome::Interrupted) => "interrupted",
        None => "unknown",
    }
}

fn provenance_html(dir: &ResultsDir) -> String {
    let Some(p) = &dir.provenance else {
        return "<p class=\"warn\">No provenance.json in this directory.</p>\n".into();
    };
    let mut t = TextTable::new(&[("", Align::Left), ("", Align::Left)]);
    let mut row = |k: &str, v: String| t.push(vec![k.into(), v]);
    row("experiment", p.experiment.clone());
    row("ferry", p.ferry_version.clone());
    row(
        "experiment file",
        format!("{} (sha256 {})", p.experiment_file, p.experiment_sha256),
    );
    row(
        "repository",
        match (&p.repo_commit, p.repo_dirty) {
            (Some(c), Some(true)) => format!("{c} (with uncommitted changes)"),
            (Some(c), _) => c.clone(),
            (None, _) => "not in a git repository".into(),
        },
    );
    row("started", p.started_at.clone());
    row("run order seed", p.seed.to_string());
    if let Some(s) = &p.scale {
        row("scale", s.to_string());
    }
    let mut out = table_html(&t);
    let mut hosts = TextTable::new(&[
        ("host", Align::Left),
        ("kernel", Align::Left),
        ("QEMU", Align::Left),
        ("libvirt", Align::Left),
        ("migration address", Align::Left),
        ("NIC", Align::Left),
        ("speed", Align::Right),
        ("MTU", Align::Right),
    ]);
    let o = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".into());
    for h in &p.hosts {
        hosts.push(vec![
            h.name.clone(),
            o(&h.kernel),
            o(&h.qemu_version),
            o(&h.libvirt_version),
            o(&h.migration_ip),
            o(&h.migration_iface),
            h.migration_speed_mbit
                .map(|m| rate(m * 1_000_000))
                .unwrap_or_else(|| "—".into()),
            h.migration_mtu
                .map(|m| m.to_string())
                .unwrap_or_else(|| "—".into()),
        ]);
    }
    if !p.hosts.is_empty() {
        out.push_str(&table_html(&hosts));
    }
    out
}

fn matrix_html(dir: &ResultsDir) -> String {
    let mut flavors: Vec<String> = Vec::new();
    let mut algorithms: Vec<String> = Vec::new();
    let mut loads: Vec<String> = Vec::new();
    let mut links: Vec<String> = Vec::new();
    let push = |v: &mut Vec<String>, s: String| {
        if !v.contains(&s) {
            v.push(s);
        }
    };
    for r in &dir.rows {
        let Some(s) = &r.scenario else { continue };
        push(
            &mut flavors,
            format!(
                "{} ({} vCPU, {} MiB)",
                s.flavor.name, s.flavor.vcpus, s.flavor.memory_mib
            ),
        );
        push(&mut algorithms, s.algorithm.name.clone());
        push(&mut loads, s.load.name.clone());
        let mut l = s.link.name.clone();
        if let Some(r) = s.link.rate_bps {
            let _ = write!(l, " ({}", rate(r));
            if let Some(f) = s.link.stands_for_bps {
                let _ = write!(l, ", standing for {}", rate(f));
            }
            l.push(')');
        }
        push(&mut links, l);
    }
    let mut out = String::from("<ul>\n");
    for (name, v) in [
        ("flavors", &flavors),
        ("algorithms", &algorithms),
        ("loads", &loads),
        ("links", &links),
    ] {
        let _ = writeln!(out, "<li>{name}: {}</li>", esc(&v.join(", ")));
    }
    out.push_str("</ul>\n");
    if let Some(p) = &dir.provenance
        && !p.matrix.is_null()
    {
        let pretty = serde_json::to_string_pretty(&p.matrix).unwrap_or_default();
        let _ = writeln!(
            out,
            "<details><summary>the matrix as recorded</summary><pre>{}</pre></details>",
            esc(&pretty)
        );
    }
    out
}

fn model_table(checks: &[RunCheck]) -> TextTable {
    let mut t = TextTable::new(&[
        ("run", Align::Right),
        ("scenario", Align::Left),
        ("outcome", Align::Left),
        ("total s", Align::Right),
        ("model s", Align::Right),
        ("×model", Align::Right),
        ("MiB", Align::Right),
        ("model MiB", Align::Right),
        ("downtime ms", Align::Right),
        ("model downtime ms", Align::Right),
        ("model rounds", Align::Right),
        ("model says", Align::Left),
    ]);
    for c in checks {
        let r = c.row;
        let (p, ratio, says) = match &c.model {
            Ok(m) => (
                Some(&m.prediction),
                m.time_ratio,
                m.disagreement.clone().unwrap_or_else(|| {
                    if m.prediction.converges {
                        "agrees".into()
                    } else {
                        "does not converge".into()
                    }
                }),
            ),
            Err(gap) => (None, None, format!("no prediction: {gap}")),
        };
        let flag = if c.model.as_ref().is_ok_and(|m| m.disagreement.is_some()) {
            "! "
        } else {
            ""
        };
        t.push(vec![
            r.index.to_string(),
            r.run_id.clone(),
            outcome(r).into(),
            num(r.total_time_ms.map(|v| v / 1000.0), 2),
            num(p.and_then(|p| p.total_time_ms).map(|v| v / 1000.0), 2),
            num(ratio, 2),
            num(r.transferred_bytes.map(|b| b as f64 / 1048576.0), 1),
            num(
                p.and_then(|p| p.transferred_bytes).map(|b| b / 1048576.0),
                1,
            ),
            num(r.downtime_ms, 1),
            num(p.and_then(|p| p.downtime_ms), 1),
            p.map(|p| p.rounds.to_string())
                .unwrap_or_else(|| "—".into()),
            format!("{flag}{says}"),
        ]);
    }
    t
}

pub fn render(r: &HtmlReport) -> String {
    let experiment = r.dir.experiment();
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{} — ferry report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(&experiment)
    );
    let _ = writeln!(
        h,
        "<h1>{}</h1>\n<p>{}</p>",
        esc(&experiment),
        esc(&r.provenance_line)
    );
    let _ = writeln!(
        h,
        "<p>Raw rows: <a href=\"{}\">results.jsonl</a> · <a href=\"{}\">results.csv</a> ({} rows read from {})</p>",
        esc(&r.rows_jsonl),
        esc(&r.rows_csv),
        r.dir.rows.len(),
        esc(&r.dir.path.display().to_string())
    );
    if !r.dir.skipped.is_empty() {
        h.push_str("<div class=\"warn\"><p>Left out while reading:</p><ul>\n");
        for s in &r.dir.skipped {
            let _ = writeln!(
                h,
                "<li>{}:{}: {}</li>",
                esc(&s.path.display().to_string()),
                s.line,
                esc(&s.reason)
            );
        }
        h.push_str("</ul></div>\n");
    }
    h.push_str("<h2>Provenance</h2>\n");
    h.push_str(&provenance_html(r.dir));
    h.push_str("<h2>The matrix</h2>\n");
    h.push_str(&matrix_html(r.dir));
    h.push_str(
        "<h2>Summary</h2>\n<p>Medians, ranges and IQRs over completed runs that are not warm-ups. \
         ×bound: the median total time over the physical lower bound (guest RAM at the run's real \
         link rate); ×RAM: QEMU's bytes over guest RAM; model: the analytic model of \
         docs/model.md, ×model the median measured over it (runs beyond 2× either way are \
         flagged).</p>\n",
    );
    // The full table split in two (time; downtime and data) to fit the page.
    let time: Vec<usize> = (0..13).collect();
    let data: Vec<usize> = std::iter::once(0)
        .chain(13..r.summary.headers.len())
        .collect();
    h.push_str(&table_html(&r.summary.columns(&time)));
    h.push_str(&table_html(&r.summary.columns(&data)));
    if let Some((other, table)) = r.compare {
        let _ = writeln!(
            h,
            "<h2>Compared</h2>\n<p>A: {} ({}) · B: {} ({}); Δ: change of the median from A to B.</p>",
            esc(&r.dir.path.display().to_string()),
            esc(&experiment),
            esc(&other.path.display().to_string()),
            esc(&other.experiment())
        );
        h.push_str(&table_html(table));
    }
    h.push_str("<h2>Plots</h2>\n");
    for c in r.charts {
        let files = r
            .plot_files
            .iter()
            .find(|(stem, _)| *stem == c.stem)
            .map(|(_, f)| {
                f.iter()
                    .map(|f| format!("<a href=\"{0}\">{0}</a>", esc(f)))
                    .collect::<Vec<_>>()
                    .join(" · ")
            })
            .unwrap_or_default();
        let _ = writeln!(
            h,
            "<figure id=\"{}\">\n{}\n<figcaption>{} {}</figcaption>\n</figure>",
            esc(&c.stem),
            inline_svg(&c.svg),
            esc(&c.title),
            files
        );
    }
    h.push_str("<h2>Runs that did not complete</h2>\n");
    let unfinished: Vec<&MigrationResult> = r.dir.unfinished().collect();
    if unfinished.is_empty() {
        h.push_str("<p>None.</p>\n");
    } else {
        let mut t = TextTable::new(&[
            ("run", Align::Right),
            ("scenario", Align::Left),
            ("outcome", Align::Left),
            ("error", Align::Left),
        ]);
        for u in unfinished {
            t.push(vec![
                u.index.to_string(),
                u.run_id.clone(),
                outcome(u).into(),
                u.error
                    .clone()
                    .unwrap_or_else(|| "(no error recorded)".into()),
            ]);
        }
        h.push_str(&table_html(&t));
    }
    let warmups: Vec<&MigrationResult> = r.dir.warmups().collect();
    if !warmups.is_empty() {
        let _ = writeln!(
            h,
            "<h2>Warm-up runs (not counted)</h2>\n<p>{}</p>",
            esc(&warmups
                .iter()
                .map(|w| format!("{} ({})", w.run_id, outcome(w)))
                .collect::<Vec<_>>()
                .join(", "))
        );
    }
    h.push_str("<h2>Every run beside the model</h2>\n");
    h.push_str(&table_html(&model_table(r.checks)));
    h.push_str("</body>\n</html>\n");
    h
}
