//! Event consumers: the interactive terminal, plain lines, the JSON lines log, the recap.
//!
//! The engine emits [`Event`]s; everything a user sees is decided here.

pub mod experiment;
pub mod plain;
pub mod terminal;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;

use indexmap::IndexMap;

use crate::engine::{Event, EventSink, HostStats};

pub use plain::{AdhocReporter, PlainReporter};
pub use terminal::TerminalReporter;

/// `--events FILE`: every event as one JSON object per line, flushed as it goes.
pub struct JsonlReporter {
    out: Mutex<BufWriter<File>>,
}

impl JsonlReporter {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        Ok(Self {
            out: Mutex::new(BufWriter::new(File::create(path)?)),
        })
    }
}

impl EventSink for JsonlReporter {
    fn emit(&self, event: &Event) {
        let mut out = self.out.lock().unwrap();
        if let Ok(line) = serde_json::to_string(event) {
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
    fn finish(&self) {
        let _ = self.out.lock().unwrap().flush();
    }
}

/// The recap lines in Ansible's shape, host names padded to one width. In
/// check mode each line also says how many tasks check mode could not check
/// (`not_checked=N`, counted in `skipped` too), and a last line explains it.
pub fn recap_lines(hosts: &IndexMap<String, HostStats>, check: bool) -> Vec<String> {
    let width = hosts.keys().map(String::len).max().unwrap_or(0);
    let mut lines: Vec<String> = hosts
        .iter()
        .map(|(h, s)| {
            let mut l = format!(
                "{h:<width$} : ok={} changed={} unreachable={} failed={} skipped={} rescued={} ignored={}",
                s.ok, s.changed, s.unreachable, s.failed, s.skipped, s.rescued, s.ignored
            );
            if check {
                l.push_str(&format!(" not_checked={}", s.not_checked));
            }
            l
        })
        .collect();
    let not_checked: u32 = hosts.values().map(|s| s.not_checked).sum();
    if check && not_checked > 0 {
        lines.push(format!(
            "check mode: {not_checked} task result{} not checked (commands without creates/removes, \
             and tasks using what they register): they may change more than shown",
            if not_checked == 1 { " was" } else { "s were" }
        ));
    }
    lines
}
