//! The samples plot: one run's `query-migrate` samples over time (remaining RAM,
//! transfer rate, dirty rate), with the switch to post-copy marked.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::experiment::result::Sample;

use super::{COLOURS, ChartMeta, DrawResult, titled};

#[derive(Debug, Clone)]
pub(super) struct SamplesData {
    pub(super) title: String,
    pub(super) samples: Vec<Sample>,
    pub(super) switch_s: Option<f64>,
}

pub(super) fn draw_samples<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    d: &SamplesData,
    meta: &ChartMeta,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let title = format!("{} — {}", meta.experiment, d.title);
    let root = titled(root, &title, &meta.provenance)?;
    let areas = root.split_evenly((3, 1));
    let t_end = d
        .samples
        .iter()
        .map(|s| s.t_ms / 1000.0)
        .fold(0.0f64, f64::max)
        .max(0.001);
    type Pick = fn(&Sample) -> Option<f64>;
    let series: [(&str, &str, Pick); 3] = [
        ("remaining RAM", "remaining (MiB)", |s| {
            s.remaining_bytes.map(|b| b as f64 / 1048576.0)
        }),
        ("transfer rate", "rate (Mbit/s)", |s| s.mbps),
        ("dirty rate", "dirty rate (MiB/s)", |s| s.dirty_rate_mib_s),
    ];
    for (i, ((name, axis, pick), area)) in series.iter().zip(areas.iter()).enumerate() {
        let points: Vec<(f64, f64)> = d
            .samples
            .iter()
            .filter_map(|s| Some((s.t_ms / 1000.0, pick(s)?)))
            .collect();
        let top = points.iter().map(|p| p.1).fold(0.0f64, f64::max);
        let top = if top > 0.0 { top * 1.15 } else { 1.0 };
        let mut chart = ChartBuilder::on(area)
            .margin(12)
            .margin_right(34)
            .x_label_area_size(36)
            .y_label_area_size(80)
            .build_cartesian_2d(0f64..t_end, 0f64..top)?;
        chart
            .configure_mesh()
            .x_desc(if i == 2 {
                "time since the migration started (s)"
            } else {
                ""
            })
            .y_desc(*axis)
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 16))
            .draw()?;
        let colour = COLOURS[i];
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(3)))?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(3))
            });
        if let Some(sw) = d.switch_s {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(sw, 0.0), (sw, top)],
                    BLACK.stroke_width(2),
                )))?
                .label("switch to post-copy")
                .legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], BLACK.stroke_width(2))
                });
        }
        if points.is_empty() {
            chart.draw_series(std::iter::once(Text::new(
                "not sampled",
                (t_end * 0.4, top * 0.5),
                ("sans-serif", 18),
            )))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(("sans-serif", 16))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    Ok(())
}
