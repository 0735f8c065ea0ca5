//! Plain lines (CI, pipes): Ansible's layout, no escape codes.

use std::collections::HashSet;
use std::io::Write;
use std::sync::Mutex;

use serde_json::Value;

use crate::engine::{Event, EventKind, EventSink, HostResult, Outcome};

/// Writes one line (or a few) per event to any writer.
pub struct PlainReporter {
    out: Mutex<Box<dyn Write + Send>>,
    verbosity: u8,
    /// Hosts that reported loop items for the current task.
    looped: Mutex<HashSet<String>>,
}

/// A header line, padded with stars to a fixed width.
pub fn header(title: &str) -> String {
    let stars = 72usize.saturating_sub(title.len() + 1).max(3);
    format!("{title} {}", "*".repeat(stars))
}

fn label(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The lines of one result (`ok: [host]`, `fatal: [host]: FAILED! ...`, ...).
pub fn result_lines(r: &HostResult, verbosity: u8) -> Vec<String> {
    let host = match &r.delegated_to {
        Some(d) if d != &r.host => format!("[{} -> {}]", r.host, d),
        _ => format!("[{}]", r.host),
    };
    let item = r
        .item
        .as_ref()
        .map(|i| format!(" => (item={})", label(i)))
        .unwrap_or_default();
    let dur = format!(" ({:.2}s)", r.duration_secs);
    let mut lines = Vec::new();
    let detail = |lines: &mut Vec<String>| {
        if let Some(rc) = r.rc {
            lines.push(format!("  rc: {rc}"));
        }
        for (k, v) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
            if let Some(t) = v.as_ref().filter(|t| !t.is_empty()) {
                lines.push(format!("  {k}:"));
                lines.extend(t.lines().map(|l| format!("    {l}")));
            }
        }
    };
    match r.outcome {
        Outcome::Failed => {
            let msg = r.msg.clone().unwrap_or_default();
            let word = if r.item.is_some() { "failed" } else { "fatal" };
            lines.push(format!("{word}: {host}{item}: FAILED! {msg}{dur}"));
            detail(&mut lines);
            if r.ignored {
                lines.push("...ignoring".into());
            }
        }
        Outcome::Unreachable => {
            let msg = r.msg.clone().unwrap_or_default();
            lines.push(format!("fatal: {host}: UNREACHABLE! {msg}{dur}"));
        }
        Outcome::Skipped if r.not_checked => {
            let msg = r.msg.clone().unwrap_or_default();
            lines.push(format!("skipping: {host}{item} => not checked: {msg}"));
        }
        Outcome::Skipped => lines.push(format!("skipping: {host}{item}")),
        Outcome::Ok | Outcome::Changed => {
            let word = if r.outcome == Outcome::Changed {
                "changed"
            } else {
                "ok"
            };
            let mut line = format!("{word}: {host}{item}{dur}");
            if let Some(m) = r.msg.as_ref().filter(|m| {
                !m.is_empty() && (r.op == "debug" || r.op == "assert" || verbosity >= 1)
            }) {
                line.push_str(&format!(" => {m}"));
            }
            if let Some(a) = r.attempts.filter(|a| *a > 1) {
                line.push_str(&format!(" (attempts: {a})"));
            }
            lines.push(line);
            if verbosity >= 1 {
                detail(&mut lines);
            }
        }
    }
    if let Some(d) = &r.diff {
        // A unified diff (changed lines with 3 lines of context), not the
        // whole file twice.
        let path = d.path.clone().unwrap_or_default();
        let u = similar::TextDiff::from_lines(&d.before, &d.after)
            .unified_diff()
            .context_radius(3)
            .header(&format!("before: {path}"), &format!("after: {path}"))
            .to_string();
        if u.is_empty() {
            lines.push(format!("--- before: {path}"));
            lines.push(format!("+++ after: {path}"));
        }
        lines.extend(u.lines().map(str::to_string));
    }
    lines
}

/// Lines for one event, shared by the plain and the terminal reporters.
pub fn event_lines(ev: &Event, verbosity: u8) -> Vec<String> {
    match &ev.kind {
        EventKind::RunStart { .. } => Vec::new(),
        EventKind::PlayStart { play, .. } => vec![String::new(), header(&format!("PLAY [{play}]"))],
        EventKind::TaskStart {
            task, handler, loc, ..
        } => {
            let title = if *handler {
                format!("RUNNING HANDLER [{task}]")
            } else {
                format!("TASK [{task}]")
            };
            let mut v = vec![String::new(), header(&title)];
            if verbosity >= 2 && !loc.is_empty() {
                v.push(format!("task path: {loc}"));
            }
            v
        }
        EventKind::HostResult(r) | EventKind::ItemResult(r) => result_lines(r, verbosity),
        EventKind::Command { host, cmd } => {
            if verbosity >= 3 {
                vec![format!("<{host}> EXEC {cmd}")]
            } else {
                Vec::new()
            }
        }
        EventKind::Warning { host, msg } => vec![match host {
            Some(h) => format!("[WARNING]: [{h}]: {msg}"),
            None => format!("[WARNING]: {msg}"),
        }],
        EventKind::Recap {
            hosts,
            check,
            wall_secs,
            interrupted,
            ..
        } => {
            let mut v = vec![String::new(), header("PLAY RECAP")];
            v.extend(super::recap_lines(hosts, *check));
            if *interrupted {
                v.push("interrupted: no new task was started after Ctrl-C".into());
            }
            v.push(format!("ran in {wall_secs:.2}s"));
            v
        }
    }
}

impl PlainReporter {
    pub fn new(out: Box<dyn Write + Send>, verbosity: u8) -> Self {
        Self {
            out: Mutex::new(out),
            verbosity,
            looped: Mutex::new(HashSet::new()),
        }
    }

    /// Whether a line for this event is shown (a looped task's summary only when it failed).
    fn shown(&self, ev: &Event) -> bool {
        let mut looped = self.looped.lock().unwrap();
        match &ev.kind {
            EventKind::TaskStart { .. } => {
                looped.clear();
                true
            }
            EventKind::ItemResult(r) => {
                looped.insert(r.host.clone());
                true
            }
            EventKind::HostResult(r) => {
                !looped.contains(&r.host)
                    || matches!(r.outcome, Outcome::Failed | Outcome::Unreachable)
            }
            _ => true,
        }
    }
}

impl EventSink for PlainReporter {
    fn emit(&self, ev: &Event) {
        if !self.shown(ev) {
            return;
        }
        let lines = event_lines(ev, self.verbosity);
        let mut out = self.out.lock().unwrap();
        for l in lines {
            let _ = writeln!(out, "{l}");
        }
        let _ = out.flush();
    }
    fn finish(&self) {
        let _ = self.out.lock().unwrap().flush();
    }
}

/// `ferry exec`'s output, as `ansible PATTERN -a` prints it: `host | CHANGED | rc=0 >>` and the output.
pub struct AdhocReporter {
    out: Mutex<Box<dyn Write + Send>>,
}

impl AdhocReporter {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self {
            out: Mutex::new(out),
        }
    }
    pub fn stdout() -> Self {
        Self::new(Box::new(std::io::stdout()))
    }
}

impl EventSink for AdhocReporter {
    fn emit(&self, ev: &Event) {
        let mut out = self.out.lock().unwrap();
        match &ev.kind {
            EventKind::HostResult(r) => {
                let state = match r.outcome {
                    Outcome::Ok => "SUCCESS",
                    Outcome::Changed => "CHANGED",
                    Outcome::Skipped => "SKIPPED",
                    Outcome::Failed => "FAILED",
                    Outcome::Unreachable => "UNREACHABLE!",
                };
                let rc = r.rc.map(|rc| format!(" | rc={rc}")).unwrap_or_default();
                let _ = writeln!(out, "{} | {state}{rc} >>", r.host);
                for t in [&r.stdout, &r.stderr].into_iter().flatten() {
                    if !t.is_empty() {
                        let _ = writeln!(out, "{t}");
                    }
                }
                if matches!(r.outcome, Outcome::Failed | Outcome::Unreachable)
                    && let Some(m) = &r.msg
                {
                    let _ = writeln!(out, "{m}");
                }
            }
            EventKind::Warning { host, msg } => {
                let h = host
                    .as_deref()
                    .map(|h| format!("[{h}]: "))
                    .unwrap_or_default();
                let _ = writeln!(out, "[WARNING]: {h}{msg}");
            }
            _ => {}
        }
        let _ = out.flush();
    }
}
