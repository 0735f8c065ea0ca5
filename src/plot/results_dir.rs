//! Reading an experiment's results directory (the layout in
//! [`crate::experiment::result`]): the rows, the provenance, and each run's samples.
//! A partly written last line (a crash mid-write) is skipped and said so.

use std::fs;
use std::path::{Path, PathBuf};

use crate::experiment::result::{MigrationResult, Outcome, Provenance, Sample};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ResultsError {
    #[error("{}: not a results directory (no results.jsonl in it)", .0.display())]
    #[diagnostic(help(
        "give the directory `ferry experiment` wrote: <out>/<experiment>/<UTC timestamp>/"
    ))]
    NotResultsDir(PathBuf),
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: not a result row: {source}", path.display())]
    BadRow {
        path: PathBuf,
        line: usize,
        source: serde_json::Error,
    },
    #[error("{}: not a provenance record: {source}", path.display())]
    BadProvenance {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// Something the reader left out, and why (shown to the user as a warning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    /// 1-based line number.
    pub line: usize,
    pub reason: String,
}

/// One results directory, read.
#[derive(Debug, Clone)]
pub struct ResultsDir {
    pub path: PathBuf,
    /// `None` when provenance.json is missing (reported as a skip).
    pub provenance: Option<Provenance>,
    /// Every complete row, in file order (warm-ups included; see [`Self::measured`]).
    pub rows: Vec<MigrationResult>,
    /// What was left out.
    pub skipped: Vec<Skipped>,
}

impl ResultsDir {
    pub fn read(path: &Path) -> Result<ResultsDir, ResultsError> {
        let rows_path = path.join("results.jsonl");
        if !rows_path.is_file() {
            return Err(ResultsError::NotResultsDir(path.to_path_buf()));
        }
        let text = read(&rows_path)?;
        let mut skipped = Vec::new();
        let rows = parse_rows(&rows_path, &text, &mut skipped)?;
        let prov_path = path.join("provenance.json");
        let provenance = if prov_path.is_file() {
            let text = read(&prov_path)?;
            Some(
                serde_json::from_str(&text).map_err(|source| ResultsError::BadProvenance {
                    path: prov_path.clone(),
                    source,
                })?,
            )
        } else {
            skipped.push(Skipped {
                path: prov_path,
                line: 0,
                reason: "missing: the report has no provenance".into(),
            });
            None
        };
        Ok(ResultsDir {
            path: path.to_path_buf(),
            provenance,
            rows,
            skipped,
        })
    }

    /// Rows that count in statistics: every row that is not a warm-up.
    pub fn measured(&self) -> impl Iterator<Item = &MigrationResult> {
        self.rows.iter().filter(|r| !is_warmup(r))
    }

    /// Warm-up runs (listed, never counted).
    pub fn warmups(&self) -> impl Iterator<Item = &MigrationResult> {
        self.rows.iter().filter(|r| is_warmup(r))
    }

    /// Rows whose run did not complete (failed, not converged, timed out, interrupted).
    pub fn unfinished(&self) -> impl Iterator<Item = &MigrationResult> {
        self.rows
            .iter()
            .filter(|r| r.outcome != Some(Outcome::Completed))
    }

    /// A run's samples (`samples/<index>.jsonl`); a partial last line is skipped.
    pub fn samples(&self, index: u32) -> Result<(Vec<Sample>, Vec<Skipped>), ResultsError> {
        let path = self.path.join("samples").join(format!("{index}.jsonl"));
        if !path.is_file() {
            return Ok((Vec::new(), Vec::new()));
        }
        let text = read(&path)?;
        let mut skipped = Vec::new();
        let samples = parse_lines(&path, &text, &mut skipped)?;
        Ok((samples, skipped))
    }

    /// The experiment's name: provenance's, else the directory's parent's name.
    pub fn experiment(&self) -> String {
        if let Some(p) = &self.provenance
            && !p.experiment.is_empty()
        {
            return p.experiment.clone();
        }
        self.path
            .canonicalize()
            .ok()
            .and_then(|p| p.parent().and_then(|d| d.file_name()).map(|n| n.to_owned()))
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "experiment".into())
    }
}

pub fn is_warmup(r: &MigrationResult) -> bool {
    r.scenario.as_ref().is_some_and(|s| s.warmup)
}

fn read(path: &Path) -> Result<String, ResultsError> {
    fs::read_to_string(path).map_err(|source| ResultsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn parse_rows(
    path: &Path,
    text: &str,
    skipped: &mut Vec<Skipped>,
) -> Result<Vec<MigrationResult>, ResultsError> {
    parse_lines(path, text, skipped)
}

/// One JSON value per line. A line that does not parse is an error, except the last
/// one when the file does not end in a newline: that is a write cut short.
fn parse_lines<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
    skipped: &mut Vec<Skipped>,
) -> Result<Vec<T>, ResultsError> {
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<T>(line) {
            Ok(v) => out.push(v),
            Err(e) if i + 1 == lines.len() && (!complete || e.is_eof()) => {
                skipped.push(Skipped {
                    path: path.to_path_buf(),
                    line: i + 1,
                    reason: format!(
                        "partly written last line ({} bytes) skipped: {e}",
                        line.len()
                    ),
                });
            }
            Err(source) => {
                return Err(ResultsError::BadRow {
                    path: path.to_path_buf(),
                    line: i + 1,
                    source,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_last_line_is_skipped_a_bad_middle_line_is_an_error() {
        let p = Path::new("r.jsonl");
        let mut skipped = Vec::new();
        let v: Vec<serde_json::Value> =
            parse_lines(p, "{\"a\":1}\n{\"a\":2}\n{\"a\":", &mut skipped).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].line, 3);
        let err =
            parse_lines::<serde_json::Value>(p, "{\"a\":1}\n{oops}\n{\"a\":2}\n", &mut skipped)
                .unwrap_err();
        assert!(matches!(err, ResultsError::BadRow { line: 2, .. }));
    }
}
