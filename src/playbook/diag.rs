//! Problems found while loading and checking, and how they are shown:
//! `file:line:col: error: message`, then the source line with the span
//! marked and a hint (miette's graphical report, without colors unless asked).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use miette::{
    Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan,
};

use super::model::SourceLoc;

/// How bad a problem is: errors stop `ferry run`, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem at one place.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Problem {
    pub severity: Severity,
    pub loc: SourceLoc,
    pub message: String,
    /// Text under the marked span.
    pub label: Option<String>,
    /// What to do about it.
    pub hint: Option<String>,
    /// Length of the marked span in bytes (None: the token at `loc`).
    pub span_len: Option<usize>,
}

impl Problem {
    pub fn error(loc: &SourceLoc, message: impl Into<String>) -> Problem {
        Problem {
            severity: Severity::Error,
            loc: loc.clone(),
            message: message.into(),
            label: None,
            hint: None,
            span_len: None,
        }
    }

    /// A file the playbook names (an import, a vars file, a task file, an op's `src:`)
    /// that is not there: one shape for all of them, marked "no such file" where it was named.
    pub fn no_such_file(loc: &SourceLoc, message: impl Into<String>) -> Problem {
        Problem::error(loc, message).label("no such file")
    }

    /// A file that is there but cannot be read; `what` names it ("", "template ").
    pub fn unreadable(
        loc: &SourceLoc,
        what: &str,
        path: &std::path::Path,
        err: &std::io::Error,
    ) -> Problem {
        Problem::error(loc, format!("cannot read {what}{}: {err}", path.display()))
    }

    pub fn warning(loc: &SourceLoc, message: impl Into<String>) -> Problem {
        Problem {
            severity: Severity::Warning,
            ..Problem::error(loc, message)
        }
    }

    pub fn label(mut self, label: impl Into<String>) -> Problem {
        self.label = Some(label.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Problem {
        self.hint = Some(hint.into());
        self
    }

    pub fn hint_opt(mut self, hint: Option<String>) -> Problem {
        self.hint = hint;
        self
    }

    pub fn span_len(mut self, len: usize) -> Problem {
        self.span_len = Some(len);
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The one-line form: `file:line:col: error: message`.
    pub fn headline(&self) -> String {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if self.loc.line == 0 {
            format!("{}: {sev}: {}", self.loc.file.display(), self.message)
        } else {
            format!("{}: {sev}: {}", self.loc, self.message)
        }
    }
}

/// The snippet part of a problem, as miette renders it.
#[derive(Debug)]
struct Snippet {
    label: String,
    hint: Option<String>,
    src: NamedSource<String>,
    span: SourceSpan,
    severity: miette::Severity,
}

impl std::fmt::Display for Snippet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label)
    }
}

impl std::error::Error for Snippet {}

impl Diagnostic for Snippet {
    fn severity(&self) -> Option<miette::Severity> {
        Some(self.severity)
    }
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.hint
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.src)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            Some(self.label.clone()),
            self.span,
        ))))
    }
}

/// Every problem of a check, sorted by file, line and column.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    pub problems: Vec<Problem>,
}

impl CheckReport {
    pub fn new(mut problems: Vec<Problem>) -> CheckReport {
        problems.sort_by(|a, b| {
            (&*a.loc.file, a.loc.line, a.loc.col, a.severity, &a.message).cmp(&(
                &*b.loc.file,
                b.loc.line,
                b.loc.col,
                b.severity,
                &b.message,
            ))
        });
        problems.dedup_by(|a, b| a.loc == b.loc && a.message == b.message);
        CheckReport { problems }
    }

    pub fn errors(&self) -> usize {
        self.problems.iter().filter(|p| p.is_error()).count()
    }

    pub fn warnings(&self) -> usize {
        self.problems.len() - self.errors()
    }

    pub fn has_errors(&self) -> bool {
        self.errors() > 0
    }

    /// The report as text: each problem's headline and snippet, then a count.
    pub fn render(&self, color: bool) -> String {
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_width(100)
            .with_context_lines(1)
            .without_cause_chain();
        let mut sources: HashMap<PathBuf, Option<String>> = HashMap::new();
        let mut out = String::new();
        for p in &self.problems {
            out.push_str(&p.headline());
            out.push('\n');
            let src = sources
                .entry((*p.loc.file).clone())
                .or_insert_with(|| std::fs::read_to_string(&*p.loc.file).ok());
            match src {
                Some(src) if p.loc.line > 0 => {
                    let mut span = crate::yaml::token_span(src, &p.loc);
                    if let Some(len) = p.span_len {
                        let end = (span.offset() + len).min(src.len());
                        span = SourceSpan::new(span.offset().into(), end - span.offset());
                    }
                    let snippet = Snippet {
                        label: p.label.clone().unwrap_or_else(|| "here".into()),
                        hint: p.hint.clone(),
                        src: NamedSource::new(p.loc.file.display().to_string(), src.clone()),
                        span,
                        severity: match p.severity {
                            Severity::Error => miette::Severity::Error,
                            Severity::Warning => miette::Severity::Warning,
                        },
                    };
                    let mut s = String::new();
                    if handler.render_report(&mut s, &snippet).is_ok() {
                        // The first line repeats the label (miette's "× message"); the
                        // headline above already says what is wrong.
                        let body = s.split_once('\n').map(|(_, b)| b).unwrap_or(&s);
                        out.push_str(body);
                    }
                }
                _ => {
                    if let Some(h) = &p.hint {
                        let _ = writeln!(out, "  help: {h}");
                    }
                }
            }
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "{} error{}, {} warning{}",
            self.errors(),
            if self.errors() == 1 { "" } else { "s" },
            self.warnings(),
            if self.warnings() == 1 { "" } else { "s" },
        );
        out
    }
}

impl std::fmt::Display for CheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render(false))
    }
}

impl std::error::Error for CheckReport {}

impl Diagnostic for CheckReport {}
