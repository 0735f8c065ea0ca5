//! A report written to its output directory: read the results, summarize, draw,
//! and write the files the formats ask for. Returns what it wrote and skipped;
//! printing is the command's.

use std::fs;
use std::path::{Component, Path, PathBuf};

use super::chart::{self, ChartError, ChartMeta};
use super::compare;
use super::html::{self, HtmlReport};
use super::results_dir::{ResultsDir, ResultsError, Skipped};
use super::summary::{self, Axis, ScenarioSummary};
use super::table;

/// An output format (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Html,
    Svg,
    Png,
    Csv,
    Md,
}

pub const ALL_FORMATS: [Format; 5] = [
    Format::Html,
    Format::Svg,
    Format::Png,
    Format::Csv,
    Format::Md,
];

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ReportError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Results(#[from] ResultsError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Chart(#[from] ChartError),
    #[error("{}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, Clone)]
pub struct ReportOptions {
    pub results: PathBuf,
    /// Default: `<results>/report`.
    pub out: Option<PathBuf>,
    /// Empty: every format.
    pub formats: Vec<Format>,
    /// Empty: every axis (one group per scenario).
    pub group_by: Vec<Axis>,
    pub compare: Option<PathBuf>,
}

/// What a report run produced.
#[derive(Debug, Clone)]
pub struct WrittenReport {
    pub out: PathBuf,
    pub summaries: Vec<ScenarioSummary>,
    /// The terminal summary text.
    pub terminal: String,
    /// The comparison text, with `--compare`.
    pub comparison: Option<String>,
    pub skipped: Vec<Skipped>,
    pub files: Vec<PathBuf>,
    /// report.html, when written.
    pub html: Option<PathBuf>,
    pub rows: usize,
    pub warmups: usize,
    pub disagreeing: usize,
}

fn write(path: PathBuf, bytes: &[u8], files: &mut Vec<PathBuf>) -> Result<(), ReportError> {
    fs::write(&path, bytes).map_err(|source| ReportError::Write {
        path: path.clone(),
        source,
    })?;
    files.push(path);
    Ok(())
}

/// `to` as seen from the directory `from` (both made absolute first).
pub fn relative(from: &Path, to: &Path) -> PathBuf {
    let abs = |p: &Path| {
        p.canonicalize()
            .unwrap_or_else(|_| std::env::current_dir().unwrap_or_default().join(p))
    };
    let (from, to) = (abs(from), abs(to));
    let f: Vec<Component> = from.components().collect();
    let t: Vec<Component> = to.components().collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..f.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c);
    }
    out
}

pub fn write_report(opts: &ReportOptions) -> Result<WrittenReport, ReportError> {
    let dir = ResultsDir::read(&opts.results)?;
    let formats: Vec<Format> = if opts.formats.is_empty() {
        ALL_FORMATS.to_vec()
    } else {
        opts.formats.clone()
    };
    let wants = |f| formats.contains(&f);
    let out = opts
        .out
        .clone()
        .unwrap_or_else(|| opts.results.join("report"));
    fs::create_dir_all(&out).map_err(|source| ReportError::Write {
        path: out.clone(),
        source,
    })?;
    let summaries = summary::summarize(&dir, &opts.group_by);
    let checks = summary::check_runs(&dir);
    let mut files = Vec::new();
    let mut skipped = dir.skipped.clone();

    let full = table::full_table(&summaries);
    if wants(Format::Csv) {
        write(
            out.join("summary.csv"),
            table::csv(&summaries).as_bytes(),
            &mut files,
        )?;
    }
    if wants(Format::Md) {
        let md = format!(
            "# {} — summary\n\n{}\n\n{}",
            dir.experiment(),
            chart::provenance_line(&dir),
            full.markdown()
        );
        write(out.join("summary.md"), md.as_bytes(), &mut files)?;
    }

    let other = match &opts.compare {
        Some(p) => Some(ResultsDir::read(p)?),
        None => None,
    };
    let other_summaries = other
        .as_ref()
        .map(|o| summary::summarize(o, &opts.group_by));
    let compared = other_summaries
        .as_ref()
        .map(|b| compare::compare(&summaries, b));
    let compare_table = compared.as_ref().map(|c| compare::table(c));
    if let (Some(c), Some(o)) = (&compared, &other) {
        skipped.extend(o.skipped.iter().cloned());
        if wants(Format::Csv) {
            write(
                out.join("compare.csv"),
                compare::csv(c).as_bytes(),
                &mut files,
            )?;
        }
        if wants(Format::Md) {
            let md = format!(
                "# Compared\n\nA: {}\n\nB: {}\n\n{}",
                dir.path.display(),
                o.path.display(),
                compare_table.as_ref().expect("with compared").markdown()
            );
            write(out.join("compare.md"), md.as_bytes(), &mut files)?;
        }
    }

    let mut plot_files: Vec<(String, Vec<String>)> = Vec::new();
    let mut html_path = None;
    if wants(Format::Html) || wants(Format::Svg) || wants(Format::Png) {
        let meta = ChartMeta::of(&dir);
        let charts = chart::charts(&dir, &meta)?;
        for c in &charts {
            let mut names = Vec::new();
            if wants(Format::Svg) {
                let p = c.path(&out, "svg");
                write(p.clone(), c.svg.as_bytes(), &mut files)?;
                names.push(
                    p.file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
            if wants(Format::Png) {
                let p = c.path(&out, "png");
                c.write_png(&p, &meta)?;
                names.push(
                    p.file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned(),
                );
                files.push(p);
            }
            plot_files.push((c.stem.clone(), names));
        }
        if wants(Format::Html) {
            let page = html::render(&HtmlReport {
                dir: &dir,
                summary: &full,
                checks: &checks,
                charts: &charts,
                compare: other.as_ref().zip(compare_table.as_ref()),
                rows_jsonl: relative(&out, &dir.path.join("results.jsonl"))
                    .display()
                    .to_string(),
                rows_csv: relative(&out, &dir.path.join("results.csv"))
                    .display()
                    .to_string(),
                plot_files: &plot_files,
                provenance_line: chart::provenance_line(&dir),
            });
            let p = out.join("report.html");
            write(p.clone(), page.as_bytes(), &mut files)?;
            html_path = Some(p);
        }
    }

    let comparison = compare_table.as_ref().map(|t| {
        format!(
            "Compared (A: {}, B: {}; Δ: change of the median)\n{}",
            dir.path.display(),
            other.as_ref().expect("with table").path.display(),
            t.aligned("  ")
        )
    });
    Ok(WrittenReport {
        out,
        terminal: table::terminal(&summaries),
        comparison,
        skipped,
        files,
        html: html_path,
        rows: dir.measured().count(),
        warmups: dir.warmups().count(),
        disagreeing: checks
            .iter()
            .filter(|c| c.model.as_ref().is_ok_and(|m| m.disagreement.is_some()))
            .count(),
        summaries,
    })
}
