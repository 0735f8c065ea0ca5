//! `ferry report`: arguments in, the report written, the summary printed; the last
//! stdout line is the path of report.html.

use std::io::Write;

use crate::CmdResult;
use crate::cli::ReportArgs;

use crate::plot::report::{ReportOptions, write_report};

pub fn report(args: ReportArgs) -> CmdResult {
    let written = write_report(&ReportOptions {
        results: args.results,
        out: args.out,
        formats: args.format,
        group_by: args.group_by,
        compare: args.compare,
    })?;
    let mut err = std::io::stderr();
    for s in &written.skipped {
        let line = if s.line > 0 {
            format!(":{}", s.line)
        } else {
            String::new()
        };
        let _ = writeln!(err, "warning: {}{line}: {}", s.path.display(), s.reason);
    }
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "{} runs (warm-ups, not counted: {}){}\n",
        written.rows,
        written.warmups,
        if written.disagreeing > 0 {
            format!(
                "; {} disagree with the model (report.html lists them)",
                written.disagreeing
            )
        } else {
            String::new()
        }
    );
    let _ = write!(out, "{}", written.terminal);
    if let Some(c) = &written.comparison {
        let _ = write!(out, "\n{c}");
    }
    let n = written.files.len();
    let files = if n == 1 { "file" } else { "files" };
    let _ = writeln!(out, "\nwrote {n} {files} to {}", written.out.display());
    match &written.html {
        Some(p) => {
            let _ = writeln!(out, "{}", p.display());
        }
        None => {
            let _ = writeln!(out, "{}", written.out.display());
        }
    }
    Ok(crate::exit::OK)
}
