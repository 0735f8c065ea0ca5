//! How the experiment stage looks: on a terminal an indicatif bar over the matrix
//! (ETA, the current run, the last run's total time and downtimes); otherwise one
//! plain line per event. Both on stderr: stdout's last line is the results directory.
//! With `--events FILE`, every event also as one JSON line.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::experiment::events::{ExperimentEvent, ExperimentSink};

fn fmt_ms(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(ms) if ms >= 10_000.0 => format!("{:.1}s", ms / 1000.0),
        Some(ms) => format!("{ms:.0}ms"),
    }
}

/// One line for an event (the plain form; the bar shows the same words).
pub fn event_line(e: &ExperimentEvent) -> Option<String> {
    Some(match e {
        ExperimentEvent::Started {
            experiment,
            dir,
            total,
            to_run,
            seed,
            pairs,
            resumed,
        } => format!(
            "experiment {experiment}: {to_run} of {total} runs to go{} (seed {seed}; pairs {}) -> {}",
            if *resumed { ", resumed" } else { "" },
            pairs.join(", "),
            dir.display()
        ),
        ExperimentEvent::Resumed {
            rows,
            interrupted,
            partial_line,
        } => {
            let mut l = format!("resume: {rows} row(s) recorded");
            if *interrupted > 0 {
                l.push_str(&format!(", {interrupted} interrupted (run again)"));
            }
            if let Some(n) = partial_line {
                l.push_str(&format!(
                    "; results.jsonl line {n} was partial (the process died while writing it): cut off, its run runs again"
                ));
            }
            l
        }
        ExperimentEvent::Warning { message } => format!("warning: {message}"),
        ExperimentEvent::HostsReady { hosts, wall_ms } => {
            format!(
                "hosts ready: {} ({wall_ms:.0} ms to connect and gather facts)",
                hosts.join(", ")
            )
        }
        ExperimentEvent::RunStarted {
            index,
            run_id,
            source,
            destination,
        } => format!("run {index} {run_id}: {source} -> {destination}"),
        ExperimentEvent::RunFinished {
            index,
            run_id,
            outcome,
            error,
            total_time_ms,
            downtime_ms,
            probe_downtime_ms,
            run_wall_ms,
        } => {
            let outcome = outcome
                .and_then(|o| serde_json::to_value(o).ok())
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| "?".into());
            let mut l = format!(
                "run {index} {run_id}: {outcome}, total {}, downtime {} (probe {}), run {}",
                fmt_ms(*total_time_ms),
                fmt_ms(*downtime_ms),
                fmt_ms(*probe_downtime_ms),
                fmt_ms(Some(*run_wall_ms)),
            );
            if let Some(e) = error {
                l.push_str(&format!(": {e}"));
            }
            l
        }
        ExperimentEvent::Finished {
            ran,
            completed,
            failed,
            interrupted,
            wall_ms,
            orchestration_ms,
            orchestration_per_run_ms,
            in_run_overhead_ms,
            ..
        } => {
            let share = if *wall_ms > 0.0 {
                orchestration_ms / wall_ms * 100.0
            } else {
                0.0
            };
            let mut l = format!(
                "{}: {ran} run(s), {completed} completed, {failed} not; wall {}; ferry's orchestration outside the runs {} ({:.1}% of wall, {} per run)",
                if *interrupted { "interrupted" } else { "done" },
                fmt_ms(Some(*wall_ms)),
                fmt_ms(Some(*orchestration_ms)),
                share,
                fmt_ms(Some(*orchestration_per_run_ms)),
            );
            if let Some(o) = in_run_overhead_ms {
                l.push_str(&format!("; inside the runs {}", fmt_ms(Some(*o))));
            }
            l
        }
    })
}

/// The stage's reporter.
pub struct ExperimentReporter {
    bar: Option<ProgressBar>,
    plain: Mutex<Box<dyn Write + Send>>,
    events: Option<Mutex<BufWriter<File>>>,
}

impl ExperimentReporter {
    /// A bar when stderr is a terminal, plain lines otherwise; `events`: `--events FILE`.
    pub fn stderr(events: Option<&Path>) -> std::io::Result<ExperimentReporter> {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} ETA {eta}  {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let events = match events {
            Some(p) => Some(Mutex::new(BufWriter::new(File::create(p)?))),
            None => None,
        };
        Ok(ExperimentReporter {
            bar,
            plain: Mutex::new(Box::new(std::io::stderr())),
            events,
        })
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => {
                let mut out = self.plain.lock().unwrap();
                let _ = writeln!(out, "{text}");
            }
        }
    }
}

impl ExperimentSink for ExperimentReporter {
    fn emit(&self, e: &ExperimentEvent) {
        if let Some(ev) = &self.events {
            let mut out = ev.lock().unwrap();
            if let Ok(l) = serde_json::to_string(e) {
                let _ = writeln!(out, "{l}");
                let _ = out.flush();
            }
        }
        let text = event_line(e).unwrap_or_default();
        let Some(bar) = &self.bar else {
            self.line(&text);
            return;
        };
        match e {
            ExperimentEvent::Started { total, to_run, .. } => {
                bar.set_length(*to_run as u64);
                bar.set_position(0);
                let _ = total;
                bar.println(text);
            }
            ExperimentEvent::RunStarted {
                run_id,
                source,
                destination,
                ..
            } => {
                bar.set_message(format!("{run_id} {source}->{destination}"));
            }
            ExperimentEvent::RunFinished { .. } => {
                bar.inc(1);
                bar.println(text);
            }
            ExperimentEvent::Finished { .. } => {
                bar.finish_and_clear();
                eprintln!("{text}");
            }
            _ => bar.println(text),
        }
    }

    fn finish(&self) {
        if let Some(ev) = &self.events {
            let _ = ev.lock().unwrap().flush();
        }
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
