//! `ferry bench experiment RESULTS_DIR`: ferry's orchestration overhead in a
//! results directory (see `experiment::overhead`), against the aim of under 2 % of
//! the matrix's wall time.

use std::io::Write as _;

use crate::CmdResult;
use crate::cli::BenchExperimentArgs;
use crate::experiment::overhead::summarize;
use crate::experiment::store::read_rows;

/// The share of the matrix's wall time ferry's overhead should stay under.
const AIM: f64 = 0.02;

pub fn experiment(args: BenchExperimentArgs) -> CmdResult {
    let read = read_rows(&args.results).map_err(|e| {
        miette::miette!(
            help = "give the directory `ferry experiment` printed (it holds results.jsonl)",
            "{}: {e}",
            args.results.display()
        )
    })?;
    let s = summarize(&read.rows);
    let mut out = std::io::stdout().lock();
    if s.runs == 0 {
        let _ = writeln!(
            out,
            "{}: no run with an overhead figure (overhead_ms)",
            args.results.display()
        );
        return Ok(crate::exit::ERROR);
    }
    let wall = s.matrix_wall_s.unwrap_or(s.run_wall_s);
    let _ = writeln!(
        out,
        "{}: {} runs, matrix wall {:.1} s; ferry's overhead {:.0} ms per run (max {:.0} ms), \
         {:.1} s in all with the time between runs: {:.1}% of the wall time ({} the aim of {:.0}%)",
        args.results.display(),
        s.runs,
        wall,
        s.mean_ms,
        s.max_ms,
        s.total_s,
        s.share * 100.0,
        if s.share <= AIM { "within" } else { "above" },
        AIM * 100.0
    );
    if !s.parts.is_empty() {
        let parts: Vec<String> = s
            .parts
            .iter()
            .map(|(k, v)| format!("{k} {v:.0} ms"))
            .collect();
        let _ = writeln!(out, "per run, by step: {}", parts.join(", "));
    }
    Ok(crate::exit::OK)
}
