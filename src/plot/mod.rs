//! Results you can look at (`ferry report`, issue 12): an experiment's results
//! directory read back, summarized per scenario beside the physical lower bound
//! and the analytic model (`crate::experiment::model`), and written as tables,
//! plots and one self-contained HTML page.
//!
//! - [`results_dir`]: reading the rows, provenance and samples (partial last lines skipped);
//! - [`summary`]: per-scenario statistics;
//! - [`table`]: the summary as terminal text, Markdown and CSV;
//! - [`chart`]: the plots (plotters; SVG and PNG);
//! - [`compare`]: two directories side by side;
//! - [`html`]: the self-contained report.html;
//! - [`report`]: all of it written to an output directory;
//! - [`command`]: the `ferry report` handler (the CLI layer: it alone prints);
//! - [`bench`]: `ferry bench report`, the time of a 10,000-row report.

pub mod bench;
pub mod chart;
pub mod command;
pub mod compare;
pub mod html;
pub mod report;
pub mod results_dir;
pub mod summary;
pub mod table;
