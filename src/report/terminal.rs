//! The interactive terminal: one progress line per running host (a summary bar when
//! there are many), task names as they start, failures in full as they happen, the recap.

use std::sync::Mutex;
use std::time::Duration;

use indexmap::IndexMap;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::plain::{event_lines, result_lines};
use crate::engine::{Event, EventKind, EventSink, Outcome};

/// More hosts than this share one summary bar.
const MAX_HOST_LINES: usize = 12;

const RED: &str = "\x1b[31m";
const YELLOW: &str = "\x1b[33m";
const GREEN: &str = "\x1b[32m";
const CYAN: &str = "\x1b[36m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

struct State {
    bars: IndexMap<String, ProgressBar>,
    summary: Option<ProgressBar>,
}

pub struct TerminalReporter {
    mp: MultiProgress,
    verbosity: u8,
    state: Mutex<State>,
}

impl TerminalReporter {
    pub fn new(verbosity: u8) -> Self {
        Self {
            mp: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
            verbosity,
            state: Mutex::new(State {
                bars: IndexMap::new(),
                summary: None,
            }),
        }
    }

    fn println(&self, line: &str) {
        let _ = self.mp.println(line);
    }

    fn clear(&self, st: &mut State) {
        for (_, b) in st.bars.drain(..) {
            b.finish_and_clear();
        }
        if let Some(b) = st.summary.take() {
            b.finish_and_clear();
        }
    }
}

fn color_for(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => GREEN,
        Outcome::Changed => YELLOW,
        Outcome::Skipped => CYAN,
        Outcome::Failed | Outcome::Unreachable => RED,
    }
}

impl EventSink for TerminalReporter {
    fn emit(&self, ev: &Event) {
        let mut st = self.state.lock().unwrap();
        match &ev.kind {
            EventKind::PlayStart { .. } => {
                self.clear(&mut st);
                for l in event_lines(ev, self.verbosity) {
                    self.println(&format!("{BOLD}{l}{RESET}"));
                }
            }
            EventKind::TaskStart { task, hosts, .. } => {
                for l in event_lines(ev, self.verbosity) {
                    if !l.is_empty() {
                        self.println(&format!("{BOLD}{l}{RESET}"));
                    }
                }
                if hosts.len() > MAX_HOST_LINES {
                    for (_, b) in st.bars.drain(..) {
                        b.finish_and_clear();
                    }
                    let bar = st.summary.get_or_insert_with(|| {
                        let b = self.mp.add(ProgressBar::new(0));
                        b.set_style(
                            ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg}")
                                .unwrap(),
                        );
                        b.enable_steady_tick(Duration::from_millis(120));
                        b
                    });
                    bar.set_length(hosts.len() as u64);
                    bar.set_position(0);
                    bar.set_message(task.clone());
                } else {
                    for h in hosts {
                        if !st.bars.contains_key(h) {
                            let b = self.mp.add(ProgressBar::new_spinner());
                            b.set_style(
                                ProgressStyle::with_template("{spinner} {prefix}: {msg}").unwrap(),
                            );
                            b.set_prefix(h.clone());
                            b.enable_steady_tick(Duration::from_millis(120));
                            st.bars.insert(h.clone(), b);
                        }
                        st.bars[h].set_message(task.clone());
                    }
                }
            }
            EventKind::HostResult(r) | EventKind::ItemResult(r) => {
                let is_final = matches!(ev.kind, EventKind::HostResult(_));
                if is_final {
                    if let Some(b) = &st.summary {
                        b.inc(1);
                    }
                    if let Some(b) = st.bars.get(&r.host) {
                        b.set_message(format!("{} ({:?})", r.task, r.outcome).to_lowercase());
                    }
                }
                let show = matches!(r.outcome, Outcome::Failed | Outcome::Unreachable)
                    || self.verbosity >= 1
                    || r.op == "debug"
                    || (r.outcome == Outcome::Changed && st.summary.is_none());
                if show {
                    let c = color_for(r.outcome);
                    for l in result_lines(
                        r,
                        self.verbosity.max(u8::from(matches!(
                            r.outcome,
                            Outcome::Failed | Outcome::Unreachable
                        ))),
                    ) {
                        self.println(&format!("{c}{l}{RESET}"));
                    }
                }
            }
            EventKind::Recap { hosts, .. } => {
                self.clear(&mut st);
                for l in event_lines(ev, self.verbosity) {
                    let bad = hosts.iter().any(|(h, s)| {
                        l.starts_with(h.as_str()) && (s.failed > 0 || s.unreachable > 0)
                    });
                    let c = if bad { RED } else { "" };
                    self.println(&format!("{c}{l}{RESET}"));
                }
            }
            _ => {
                for l in event_lines(ev, self.verbosity) {
                    self.println(&l);
                }
            }
        }
    }

    fn finish(&self) {
        let mut st = self.state.lock().unwrap();
        self.clear(&mut st);
    }
}
