//! The report's plots (plotters), each drawn once for any backend: SVG text for
//! report.html and the .svg files, PNG files through the bitmap backend.
//!
//! - per metric (total time, QEMU's downtime, the probe's downtime, data
//!   transferred): grouped bars over flavors, one series per algorithm, the bar the
//!   median, a whisker from min to max, a diamond for the model's prediction; one
//!   panel per link and load;
//! - per algorithm, one run's `query-migrate` samples over time: remaining RAM,
//!   transfer rate, dirty rate (drawn in `samples`).
//!
//! Text is drawn with the bundled DejaVu Sans (`assets/fonts/`, its license beside
//! it), so a PNG needs no system font.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::experiment::model::{ModelInputs, check_run};
use crate::experiment::result::{MigrationResult, Outcome};

use super::results_dir::ResultsDir;
use super::table;

mod samples;

use samples::{SamplesData, draw_samples};

/// Every plot is this wide (px); readable in a browser and as a PNG.
pub const WIDTH: u32 = 1200;
const PANEL_HEIGHT: u32 = 440;
const TITLE_HEIGHT: u32 = 70;

static FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
static REGISTER_FONT: Once = Once::new();

/// Okabe–Ito: colours that stay apart for colour-blind readers.
const COLOURS: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(120, 120, 120),
];

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ChartError {
    #[error("drawing the plot {name}: {message}")]
    Draw { name: String, message: String },
    #[error("the bundled font does not load")]
    Font,
}

fn register_font() -> Result<(), ChartError> {
    let mut ok = true;
    REGISTER_FONT.call_once(|| {
        ok = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok();
    });
    if ok { Ok(()) } else { Err(ChartError::Font) }
}

/// A metric the per-scenario plots show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    TotalTime,
    Downtime,
    ProbeDowntime,
    Transferred,
}

pub const METRICS: [Metric; 4] = [
    Metric::TotalTime,
    Metric::Downtime,
    Metric::ProbeDowntime,
    Metric::Transferred,
];

impl Metric {
    /// File stem of the plot.
    pub fn stem(self) -> &'static str {
        match self {
            Metric::TotalTime => "total-time",
            Metric::Downtime => "downtime",
            Metric::ProbeDowntime => "probe-downtime",
            Metric::Transferred => "transferred",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Metric::TotalTime => "total migration time",
            Metric::Downtime => "downtime (QEMU's)",
            Metric::ProbeDowntime => "downtime (the ping probe's longest gap)",
            Metric::Transferred => "data transferred (QEMU's count)",
        }
    }

    pub fn axis(self) -> &'static str {
        match self {
            Metric::TotalTime => "total time (s)",
            Metric::Downtime => "downtime (ms)",
            Metric::ProbeDowntime => "longest ping gap (ms)",
            Metric::Transferred => "transferred (MiB)",
        }
    }

    fn value(self, r: &MigrationResult) -> Option<f64> {
        match self {
            Metric::TotalTime => r.total_time_ms.map(|v| v / 1000.0),
            Metric::Downtime => r.downtime_ms,
            Metric::ProbeDowntime => r.probe_downtime_ms,
            Metric::Transferred => r.transferred_bytes.map(|b| b as f64 / 1048576.0),
        }
    }

    fn model(self, r: &MigrationResult) -> Option<f64> {
        let p = ModelInputs::of_run(r)
            .ok()
            .map(|i| check_run(r, &i).prediction)?;
        match self {
            Metric::TotalTime => p.total_time_ms.map(|v| v / 1000.0),
            Metric::Downtime => p.downtime_ms,
            Metric::ProbeDowntime => None,
            Metric::Transferred => p.transferred_bytes.map(|b| b / 1048576.0),
        }
    }
}

/// A drawn plot: its file stem, its title and its SVG text.
#[derive(Debug, Clone)]
pub struct Chart {
    pub stem: String,
    pub title: String,
    pub svg: String,
    /// Height in px (width is [`WIDTH`]).
    pub height: u32,
    kind: ChartKind,
}

#[derive(Debug, Clone)]
enum ChartKind {
    Metric(MetricData),
    Samples(SamplesData),
}

/// What names the experiment in every title: name, commit, date.
#[derive(Debug, Clone)]
pub struct ChartMeta {
    pub experiment: String,
    pub provenance: String,
}

impl ChartMeta {
    pub fn of(dir: &ResultsDir) -> ChartMeta {
        ChartMeta {
            experiment: dir.experiment(),
            provenance: provenance_line(dir),
        }
    }
}

/// `commit 1a2b3c4 (dirty) · 2026-12-03` (what is known of it).
pub fn provenance_line(dir: &ResultsDir) -> String {
    let Some(p) = &dir.provenance else {
        return "no provenance recorded".into();
    };
    let commit = match (&p.repo_commit, p.repo_dirty) {
        (Some(c), Some(true)) => format!("commit {} (dirty)", short(c)),
        (Some(c), _) => format!("commit {}", short(c)),
        (None, _) => "not in git".into(),
    };
    let date = p.started_at.get(..10).unwrap_or(&p.started_at);
    format!("{commit} · {date} · ferry {}", p.ferry_version)
}

fn short(c: &str) -> &str {
    c.get(..10).unwrap_or(c)
}

#[derive(Debug, Clone)]
struct Panel {
    caption: String,
    /// [flavor][algorithm] -> (values, model predictions)
    cells: BTreeMap<(usize, usize), (Vec<f64>, Vec<f64>)>,
    /// [flavor][algorithm] -> runs that did not converge
    not_converged: BTreeMap<(usize, usize), usize>,
}

#[derive(Debug, Clone)]
struct MetricData {
    metric: Metric,
    flavors: Vec<String>,
    algorithms: Vec<String>,
    panels: Vec<Panel>,
}

fn metric_data(dir: &ResultsDir, metric: Metric) -> MetricData {
    let rows: Vec<&MigrationResult> = dir
        .measured()
        .filter(|r| {
            r.scenario.is_some()
                && matches!(r.outcome, Some(Outcome::Completed | Outcome::NotConverged))
        })
        .collect();
    // Axis values in the order of the summary: flavors by RAM, links by rate.
    let mut flavors: Vec<(u64, String)> = Vec::new();
    let mut algorithms: Vec<(u8, String)> = Vec::new();
    let mut panels: Vec<((u64, String, String), String)> = Vec::new();
    for r in &rows {
        let s = r.scenario.as_ref().expect("filtered");
        let f = (s.flavor.memory_mib, s.flavor.name.clone());
        if !flavors.contains(&f) {
            flavors.push(f);
        }
        let a = (s.algorithm.kind as u8, s.algorithm.name.clone());
        if !algorithms.contains(&a) {
            algorithms.push(a);
        }
        let rate = r.link_rate_bps.or(s.link.rate_bps).unwrap_or(0);
        let p = (rate, s.link.name.clone(), s.load.name.clone());
        if !panels.iter().any(|(k, _)| *k == p) {
            let caption = table::section_title(
                &s.link.name,
                r.link_rate_bps.or(s.link.rate_bps),
                s.link.stands_for_bps,
                &s.load.name,
            );
            panels.push((p, caption));
        }
    }
    flavors.sort();
    algorithms.sort();
    panels.sort();
    let mut out: Vec<Panel> = panels
        .iter()
        .map(|(_, caption)| Panel {
            caption: caption.clone(),
            cells: BTreeMap::new(),
            not_converged: BTreeMap::new(),
        })
        .collect();
    for r in &rows {
        let s = r.scenario.as_ref().expect("filtered");
        let rate = r.link_rate_bps.or(s.link.rate_bps).unwrap_or(0);
        let pi = panels
            .iter()
            .position(|(k, _)| *k == (rate, s.link.name.clone(), s.load.name.clone()))
            .expect("collected");
        let fi = flavors
            .iter()
            .position(|f| f.1 == s.flavor.name)
            .expect("collected");
        let ai = algorithms
            .iter()
            .position(|a| a.1 == s.algorithm.name)
            .expect("collected");
        if r.outcome == Some(Outcome::NotConverged) {
            *out[pi].not_converged.entry((fi, ai)).or_default() += 1;
            continue;
        }
        let cell = out[pi].cells.entry((fi, ai)).or_default();
        if let Some(v) = metric.value(r) {
            cell.0.push(v);
        }
        if let Some(m) = metric.model(r) {
            cell.1.push(m);
        }
    }
    MetricData {
        metric,
        flavors: flavors.into_iter().map(|f| f.1).collect(),
        algorithms: algorithms.into_iter().map(|a| a.1).collect(),
        panels: out,
    }
}

fn median(v: &[f64]) -> Option<f64> {
    super::summary::Stats::of(v.iter().copied()).map(|s| s.median)
}

/// Panels per row in a metric plot.
fn grid(panels: usize) -> (usize, usize) {
    let cols = panels.clamp(1, 2);
    (panels.div_ceil(cols).max(1), cols)
}

fn draw_err<E: std::fmt::Debug>(name: &str) -> impl Fn(E) -> ChartError + '_ {
    move |e| ChartError::Draw {
        name: name.to_string(),
        message: format!("{e:?}"),
    }
}

/// The title in two centred lines (what the plot shows; the provenance) above the
/// rest, which is returned.
fn titled<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    what: &str,
    provenance: &str,
) -> Result<DrawingArea<DB, Shift>, DrawingAreaErrorKind<DB::ErrorType>> {
    let (top, rest) = root.split_vertically(TITLE_HEIGHT);
    let centre = (WIDTH / 2) as i32;
    let style = |size: i32| {
        TextStyle::from(("sans-serif", size).into_font())
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Top))
    };
    top.draw_text(what, &style(24), (centre, 8))?;
    top.draw_text(
        provenance,
        &style(17).color(&RGBColor(80, 80, 80)),
        (centre, 42),
    )?;
    Ok(rest)
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn draw_metric<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    d: &MetricData,
    meta: &ChartMeta,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let title = format!("{} — {}", meta.experiment, d.metric.title());
    let root = titled(root, &title, &meta.provenance)?;
    let (rows, cols) = grid(d.panels.len());
    let areas = root.split_evenly((rows, cols));
    let nf = d.flavors.len().max(1);
    let na = d.algorithms.len().max(1);
    let slot = 0.8 / na as f64;
    for (pi, (panel, area)) in d.panels.iter().zip(areas.iter()).enumerate() {
        let top = panel
            .cells
            .values()
            .flat_map(|(v, m)| v.iter().chain(m.iter()))
            .fold(0.0f64, |a, b| a.max(*b));
        let top = if top > 0.0 { top * 1.18 } else { 1.0 };
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.caption, ("sans-serif", 19))
            .margin(14)
            .margin_right(24)
            .x_label_area_size(40)
            .y_label_area_size(78)
            .build_cartesian_2d(-0.5f64..(nf as f64 - 0.5), 0f64..top)?;
        let flavors = d.flavors.clone();
        let label_flavor = move |x: &f64| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                flavors.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(nf)
            .x_label_formatter(&label_flavor)
            .x_desc("flavor")
            .y_desc(d.metric.axis())
            .label_style(("sans-serif", 16))
            .axis_desc_style(("sans-serif", 17))
            .draw()?;
        for (ai, name) in d.algorithms.iter().enumerate() {
            let colour = COLOURS[ai % COLOURS.len()];
            let x_of = |fi: usize| fi as f64 - 0.4 + slot * (ai as f64 + 0.5);
            let bars: Vec<(f64, f64)> = (0..nf)
                .filter_map(|fi| {
                    let (v, _) = panel.cells.get(&(fi, ai))?;
                    Some((x_of(fi), median(v)?))
                })
                .collect();
            let half = slot * 0.42;
            let series = chart.draw_series(bars.iter().map(|&(x, y)| {
                Rectangle::new([(x - half, 0.0), (x + half, y)], colour.filled())
            }))?;
            if pi == 0 {
                series.label(name.as_str()).legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour.filled())
                });
            }
            // Whiskers: min to max of the runs.
            let whiskers: Vec<(f64, f64, f64)> = (0..nf)
                .filter_map(|fi| {
                    let (v, _) = panel.cells.get(&(fi, ai))?;
                    let s = super::summary::Stats::of(v.iter().copied())?;
                    Some((x_of(fi), s.min, s.max))
                })
                .collect();
            let cap = half * 0.5;
            chart.draw_series(whiskers.iter().flat_map(|&(x, lo, hi)| {
                [
                    PathElement::new(vec![(x, lo), (x, hi)], BLACK.stroke_width(2)),
                    PathElement::new(vec![(x - cap, lo), (x + cap, lo)], BLACK.stroke_width(2)),
                    PathElement::new(vec![(x - cap, hi), (x + cap, hi)], BLACK.stroke_width(2)),
                ]
            }))?;
        }
        // Where pre-copy did not converge there is no bar: say so in its place.
        let nc: Vec<f64> = panel
            .not_converged
            .keys()
            .map(|&(fi, ai)| fi as f64 - 0.4 + slot * (ai as f64 + 0.5))
            .collect();
        chart.draw_series(nc.iter().map(|&x| {
            Text::new(
                "did not converge",
                (x, top * 0.02),
                TextStyle::from(("sans-serif", 15).into_font())
                    .transform(FontTransform::Rotate270)
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            )
        }))?;
        // The model's prediction beside each bar.
        let models: Vec<(f64, f64)> = panel
            .cells
            .iter()
            .filter_map(|(&(fi, ai), (_, m))| {
                Some((fi as f64 - 0.4 + slot * (ai as f64 + 0.5), median(m)?))
            })
            .collect();
        if !models.is_empty() {
            let s = chart.draw_series(models.iter().map(|&(x, y)| {
                EmptyElement::at((x, y))
                    + Polygon::new(
                        vec![(0, -8), (8, 0), (0, 8), (-8, 0)],
                        ShapeStyle::from(&BLACK).filled(),
                    )
            }))?;
            if pi == 0 {
                s.label("model").legend(|(x, y)| {
                    Polygon::new(
                        vec![(x + 7, y - 7), (x + 14, y), (x + 7, y + 7), (x, y)],
                        ShapeStyle::from(&BLACK).filled(),
                    )
                });
            }
        }
        if pi == 0 {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .label_font(("sans-serif", 16))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()?;
        }
    }
    if d.panels.is_empty() {
        root.draw_text(
            "no completed runs to plot",
            &("sans-serif", 22).into_text_style(&root),
            (40, 40),
        )?;
    }
    Ok(())
}

impl Chart {
    fn render_svg(&mut self, meta: &ChartMeta) -> Result<(), ChartError> {
        register_font()?;
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (WIDTH, self.height)).into_drawing_area();
            match &self.kind {
                ChartKind::Metric(d) => draw_metric(&root, d, meta),
                ChartKind::Samples(d) => draw_samples(&root, d, meta),
            }
            .map_err(draw_err(&self.stem))?;
            root.present().map_err(draw_err(&self.stem))?;
        }
        self.svg = svg;
        Ok(())
    }

    /// Draw the plot again as a PNG file of `WIDTH` x `height` px.
    pub fn write_png(&self, path: &Path, meta: &ChartMeta) -> Result<(), ChartError> {
        register_font()?;
        let root = BitMapBackend::new(path, (WIDTH, self.height)).into_drawing_area();
        match &self.kind {
            ChartKind::Metric(d) => draw_metric(&root, d, meta),
            ChartKind::Samples(d) => draw_samples(&root, d, meta),
        }
        .map_err(draw_err(&self.stem))?;
        root.present().map_err(draw_err(&self.stem))?;
        Ok(())
    }

    /// Where the plot's file of this extension goes in `out`.
    pub fn path(&self, out: &Path, ext: &str) -> PathBuf {
        out.join(format!("{}.{ext}", self.stem))
    }
}

/// Every plot of a results directory, drawn as SVG: the metric plots, then one
/// samples plot per algorithm (its first completed run with samples).
pub fn charts(dir: &ResultsDir, meta: &ChartMeta) -> Result<Vec<Chart>, ChartError> {
    let mut out = Vec::new();
    for metric in METRICS {
        let d = metric_data(dir, metric);
        let (rows, _) = grid(d.panels.len());
        out.push(Chart {
            stem: metric.stem().to_string(),
            title: metric.title().to_string(),
            svg: String::new(),
            height: TITLE_HEIGHT + rows as u32 * PANEL_HEIGHT,
            kind: ChartKind::Metric(d),
        });
    }
    let mut seen: Vec<String> = Vec::new();
    for r in dir.measured() {
        let Some(s) = &r.scenario else { continue };
        if r.samples == 0 || seen.contains(&s.algorithm.name) {
            continue;
        }
        let Ok((samples, _)) = dir.samples(r.index) else {
            continue;
        };
        if samples.is_empty() {
            continue;
        }
        seen.push(s.algorithm.name.clone());
        let outcome = match r.outcome {
            Some(Outcome::Completed) => "completed",
            Some(Outcome::NotConverged) => "did not converge",
            Some(Outcome::Failed) => "failed",
            Some(Outcome::Timeout) => "timed out",
            Some(Outcome::Interrupted) => "interrupted",
            None => "outcome unknown",
        };
        let title = format!(
            "run {} {} ({outcome}): query-migrate samples",
            r.index, r.run_id
        );
        out.push(Chart {
            stem: format!("samples-{}", r.index),
            title: title.clone(),
            svg: String::new(),
            height: 900,
            kind: ChartKind::Samples(SamplesData {
                title,
                switch_s: r.postcopy_switch_ms.map(|ms| ms / 1000.0),
                samples,
            }),
        });
    }
    for c in &mut out {
        c.render_svg(meta)?;
    }
    Ok(out)
}
