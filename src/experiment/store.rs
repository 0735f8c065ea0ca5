//! (Over 600 lines, a third of them its tests: writing, reading back and resuming one directory format belong together.)
//!
//! The results store: one directory per experiment start,
//! `<out>/<experiment>/<UTC timestamp>/` (layout in [`super::result`] and
//! `docs/results.md`), written so that a crash loses nothing recorded.
//!
//! Per run, in this order: `samples/<index>.jsonl` (written, fsync'd), then the row
//! appended to `results.jsonl` (one `write`, fsync'd), then to `results.csv`
//! (fsync'd). `results.jsonl` is the record; `results.csv` is derived from it and
//! rebuilt from it on `--resume`. A partial last line of `results.jsonl` (the
//! process died inside the write) is detected, reported, cut off on resume, and its
//! run is run again. A run recorded as `interrupted` is run again on resume too (its
//! row stays as history; `docs/results.md` says how to read that).

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{Map, Value, json};

use super::result::{MigrationResult, Outcome, Provenance, Sample};
use super::scenario::{
    Algorithm, AlgorithmKind, Direction, DiskLoad, DiskWhen, Flavor, HostPair, Link, Load,
    MemoryLoad, NetworkLoad, Scenario,
};

pub const RESULTS_JSONL: &str = "results.jsonl";
pub const RESULTS_CSV: &str = "results.csv";
pub const PROVENANCE: &str = "provenance.json";
pub const EXPERIMENT_COPY: &str = "experiment.yml";
pub const SAMPLES_DIR: &str = "samples";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: not a result row ({reason}); only a partial last line is repaired, this one is inside the file", path.display())]
    Corrupt {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{}: not a results directory ({reason})", path.display())]
    NotResults { path: PathBuf, reason: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A partial last line found in `results.jsonl`.
#[derive(Debug, Clone, PartialEq)]
pub struct PartialLine {
    /// 1-based line number.
    pub line: usize,
    /// Its length in bytes (cut off on resume).
    pub bytes: usize,
}

/// `results.jsonl` read back.
#[derive(Debug, Clone, Default)]
pub struct RowsRead {
    pub rows: Vec<MigrationResult>,
    /// Bytes of the file up to the end of the last complete row.
    pub good_len: u64,
    /// A last line that is not a complete row (ignored).
    pub partial: Option<PartialLine>,
    /// The last complete row has no newline after it (added on resume).
    pub missing_newline: bool,
}

/// Reads `dir/results.jsonl`, tolerating a partial last line (reported in the answer).
pub fn read_rows(dir: &Path) -> Result<RowsRead, StoreError> {
    let path = dir.join(RESULTS_JSONL);
    let mut bytes = Vec::new();
    File::open(&path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(io(&path))?;
    let mut out = RowsRead::default();
    let mut offset = 0usize;
    let mut line_no = 0usize;
    while offset < bytes.len() {
        line_no += 1;
        let end = bytes[offset..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|p| offset + p);
        let line = &bytes[offset..end.unwrap_or(bytes.len())];
        let next = end.map_or(bytes.len(), |e| e + 1);
        if line.iter().all(u8::is_ascii_whitespace) {
            offset = next;
            out.good_len = next as u64;
            continue;
        }
        match serde_json::from_slice::<MigrationResult>(line) {
            Ok(row) => {
                out.rows.push(row);
                out.good_len = next as u64;
                out.missing_newline = end.is_none();
            }
            Err(e) if end.is_none() => {
                let _ = e;
                out.partial = Some(PartialLine {
                    line: line_no,
                    bytes: line.len(),
                });
            }
            Err(e) => {
                return Err(StoreError::Corrupt {
                    path,
                    line: line_no,
                    reason: e.to_string(),
                });
            }
        }
        offset = next;
    }
    Ok(out)
}

/// Reads `dir/provenance.json`.
pub fn read_provenance(dir: &Path) -> Result<Provenance, StoreError> {
    let path = dir.join(PROVENANCE);
    let text = std::fs::read(&path).map_err(|e| StoreError::NotResults {
        path: dir.to_path_buf(),
        reason: format!("{PROVENANCE}: {e}"),
    })?;
    serde_json::from_slice(&text).map_err(|e| StoreError::NotResults {
        path: dir.to_path_buf(),
        reason: format!("{PROVENANCE}: {e}"),
    })
}

/// The CSV columns: a result row flattened (`scenario.flavor.memory_mib`, ...), in
/// the struct's field order, every optional field included.
pub fn csv_columns() -> Vec<String> {
    let mut cols = Vec::new();
    flatten(&row_with_every_field(), "", &mut |k, _| {
        cols.push(k.to_string())
    });
    cols
}

/// One row as CSV cells, in `columns` order (absent: empty cell).
pub fn csv_cells(row: &MigrationResult, columns: &[String]) -> Vec<String> {
    let mut cells: Map<String, Value> = Map::new();
    let value = serde_json::to_value(row).unwrap_or(Value::Null);
    flatten(&value, "", &mut |k, v| {
        cells.insert(k.to_string(), v.clone());
    });
    columns
        .iter()
        .map(|c| match cells.get(c) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
        })
        .collect()
}

/// A CSV line (RFC 4180 quoting), with its newline.
pub fn csv_line(cells: &[String]) -> String {
    let mut line = cells
        .iter()
        .map(|c| {
            if c.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", c.replace('"', "\"\""))
            } else {
                c.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

/// Objects under `scenario` become dotted columns; any other object or list (e.g.
/// `load_achieved`) is one column holding its JSON.
fn flatten(v: &Value, prefix: &str, out: &mut dyn FnMut(&str, &Value)) {
    match v {
        Value::Object(m)
            if prefix.is_empty() || prefix == "scenario" || prefix.starts_with("scenario.") =>
        {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(v, &key, out);
            }
        }
        Value::Object(_) | Value::Array(_) => out(prefix, &Value::String(v.to_string())),
        other => out(prefix, other),
    }
}

/// A row with every optional field present, to name every column.
fn row_with_every_field() -> Value {
    let scenario = Scenario {
        flavor: Flavor {
            name: String::new(),
            vcpus: 0,
            memory_mib: 0,
            disk_gib: 0.0,
        },
        algorithm: Algorithm {
            name: String::new(),
            kind: AlgorithmKind::Precopy,
            switch_after_rounds: Some(0),
            switch_after_s: Some(0.0),
            xbzrle_cache_mib: Some(0),
            multifd_channels: Some(0),
            max_bandwidth_mib_s: Some(0),
            downtime_limit_ms: Some(0),
            ..Algorithm::default()
        },
        load: Load {
            name: String::new(),
            memory: Some(MemoryLoad {
                working_set_mib: 0,
                rate_mib_s: Some(0.0),
            }),
            cpu_threads: Some(0),
            network: Some(NetworkLoad {
                rate_mbit: 0.0,
                direction: Direction::Out,
            }),
            disk: Some(DiskLoad {
                write_mib: 0,
                when: DiskWhen::During,
            }),
        },
        link: Link {
            name: String::new(),
            rate_bps: Some(0),
            mtu: Some(0),
            stands_for_bps: Some(0),
        },
        repetition: 0,
        warmup: false,
        pair: HostPair {
            source: String::new(),
            destination: String::new(),
        },
    };
    let row = MigrationResult {
        scenario: Some(scenario),
        error: Some(String::new()),
        migration_started_at: Some(String::new()),
        disk_transferred_bytes: Some(0),
        postcopy_switch_ms: Some(0.0),
        load_achieved: Some(json!({})),
        overhead_parts_ms: Some(json!({})),
        driver_figures: Some(json!({})),
        ..MigrationResult::default()
    };
    serde_json::to_value(row).unwrap_or(Value::Null)
}

/// Writes `bytes` to `path` through a temporary file, fsync'd, renamed into place.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

fn append_file(path: &Path) -> Result<File, StoreError> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(io(path))
}

/// What `--resume` found in a results directory.
#[derive(Debug, Clone, Default)]
pub struct ResumeState {
    pub rows: usize,
    /// Rows recorded as interrupted (their runs run again).
    pub interrupted: usize,
    pub partial: Option<PartialLine>,
}

/// An open results directory being appended to.
pub struct ResultsStore {
    dir: PathBuf,
    jsonl: File,
    csv: File,
    columns: Vec<String>,
    done: HashSet<String>,
    rows: usize,
}

impl ResultsStore {
    /// Makes `<out>/<experiment>/<stamp>/` (with `-2`, `-3`... when two starts share a
    /// second) with the copy of the experiment file, `provenance.json`, an empty
    /// `results.jsonl` and the CSV header.
    pub fn create(
        out: &Path,
        experiment: &str,
        started: SystemTime,
        experiment_file: &[u8],
        provenance: &Provenance,
    ) -> Result<ResultsStore, StoreError> {
        let parent = out.join(experiment);
        std::fs::create_dir_all(&parent).map_err(io(&parent))?;
        let stamp = super::clock::dir_stamp(started);
        let mut dir = parent.join(&stamp);
        let mut n = 1;
        loop {
            match std::fs::create_dir(&dir) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    n += 1;
                    dir = parent.join(format!("{stamp}-{n}"));
                }
                Err(e) => return Err(io(&dir)(e)),
            }
        }
        let samples = dir.join(SAMPLES_DIR);
        std::fs::create_dir(&samples).map_err(io(&samples))?;
        write_atomically(&dir.join(EXPERIMENT_COPY), experiment_file)?;
        let prov = serde_json::to_vec_pretty(provenance).unwrap_or_default();
        write_atomically(&dir.join(PROVENANCE), &prov)?;
        let columns = csv_columns();
        write_atomically(&dir.join(RESULTS_CSV), csv_line(&columns).as_bytes())?;
        write_atomically(&dir.join(RESULTS_JSONL), b"")?;
        sync_dir(&parent)?;
        Self::open(dir, columns, HashSet::new(), 0)
    }

    /// Opens a directory to continue it: reads its rows (a partial last line is cut
    /// off), rebuilds `results.csv` from `results.jsonl`, and knows which runs are done.
    pub fn resume(dir: &Path) -> Result<(ResultsStore, ResumeState), StoreError> {
        read_provenance(dir)?;
        let read = read_rows(dir)?;
        let jsonl = dir.join(RESULTS_JSONL);
        if read.partial.is_some() || read.missing_newline {
            let f = OpenOptions::new()
                .write(true)
                .open(&jsonl)
                .map_err(io(&jsonl))?;
            f.set_len(read.good_len).map_err(io(&jsonl))?;
            if read.missing_newline {
                let mut f = f;
                f.seek(SeekFrom::End(0)).map_err(io(&jsonl))?;
                f.write_all(b"\n").map_err(io(&jsonl))?;
                f.sync_all().map_err(io(&jsonl))?;
            } else {
                f.sync_all().map_err(io(&jsonl))?;
            }
        }
        let columns = csv_columns();
        let mut csv = csv_line(&columns);
        for row in &read.rows {
            csv.push_str(&csv_line(&csv_cells(row, &columns)));
        }
        write_atomically(&dir.join(RESULTS_CSV), csv.as_bytes())?;
        let done = read
            .rows
            .iter()
            .filter(|r| r.outcome != Some(Outcome::Interrupted))
            .map(|r| r.run_id.clone())
            .collect();
        let state = ResumeState {
            rows: read.rows.len(),
            interrupted: read
                .rows
                .iter()
                .filter(|r| r.outcome == Some(Outcome::Interrupted))
                .count(),
            partial: read.partial,
        };
        Ok((
            Self::open(dir.to_path_buf(), columns, done, state.rows)?,
            state,
        ))
    }

    fn open(
        dir: PathBuf,
        columns: Vec<String>,
        done: HashSet<String>,
        rows: usize,
    ) -> Result<ResultsStore, StoreError> {
        Ok(ResultsStore {
            jsonl: append_file(&dir.join(RESULTS_JSONL))?,
            csv: append_file(&dir.join(RESULTS_CSV))?,
            dir,
            columns,
            done,
            rows,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Rows in `results.jsonl`.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Whether a run is recorded with an outcome other than `interrupted`.
    pub fn is_done(&self, run_id: &str) -> bool {
        self.done.contains(run_id)
    }

    /// Records one run: its samples, then its row (JSONL, then CSV), each fsync'd.
    pub fn append(&mut self, row: &MigrationResult, samples: &[Sample]) -> Result<(), StoreError> {
        let spath = self
            .dir
            .join(SAMPLES_DIR)
            .join(format!("{}.jsonl", row.index));
        let mut text = String::new();
        for s in samples {
            text.push_str(&serde_json::to_string(s).unwrap_or_default());
            text.push('\n');
        }
        let mut f = File::create(&spath).map_err(io(&spath))?;
        f.write_all(text.as_bytes()).map_err(io(&spath))?;
        f.sync_data().map_err(io(&spath))?;

        let jpath = self.dir.join(RESULTS_JSONL);
        let mut line = serde_json::to_string(row).unwrap_or_default();
        line.push('\n');
        self.jsonl.write_all(line.as_bytes()).map_err(io(&jpath))?;
        self.jsonl.sync_data().map_err(io(&jpath))?;

        let cpath = self.dir.join(RESULTS_CSV);
        let cells = csv_cells(row, &self.columns);
        self.csv
            .write_all(csv_line(&cells).as_bytes())
            .map_err(io(&cpath))?;
        self.csv.sync_data().map_err(io(&cpath))?;

        if row.outcome != Some(Outcome::Interrupted) {
            self.done.insert(row.run_id.clone());
        }
        self.rows += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn scenario(rep: u32) -> Scenario {
        let v: Value =
            serde_json::from_str(&serde_json::to_string(&row_with_every_field()).unwrap()).unwrap();
        let mut s: Scenario = serde_json::from_value(v["scenario"].clone()).unwrap();
        s.flavor.name = "m1.small".into();
        s.algorithm.name = "precopy".into();
        s.load.name = "idle".into();
        s.link.name = "1gbit".into();
        s.repetition = rep;
        s
    }

    fn row(index: u32, outcome: Outcome) -> MigrationResult {
        let s = scenario(index);
        MigrationResult {
            index,
            run_id: s.run_id(),
            scenario_key: s.key(),
            scenario: Some(s),
            driver: "qmp".into(),
            outcome: Some(outcome),
            error: Some("QEMU said \"no\", twice\nreally".into()),
            total_time_ms: Some(1234.5),
            transferred_bytes: Some(81_000_000),
            load_achieved: Some(json!({"cpu_loops_s": 10})),
            ..MigrationResult::default()
        }
    }

    fn provenance() -> Provenance {
        Provenance {
            experiment: "t".into(),
            seed: 7,
            ..Provenance::default()
        }
    }

    fn new_store(out: &Path) -> ResultsStore {
        ResultsStore::create(
            out,
            "t",
            UNIX_EPOCH + Duration::from_secs(1_796_307_907),
            b"name: t\n",
            &provenance(),
        )
        .unwrap()
    }

    #[test]
    fn a_fresh_directory_has_its_files() {
        let tmp = tempfile::tempdir().unwrap();
        let s = new_store(tmp.path());
        assert_eq!(s.dir(), tmp.path().join("t/20261203T142507Z"));
        assert_eq!(
            std::fs::read_to_string(s.dir().join(EXPERIMENT_COPY)).unwrap(),
            "name: t\n"
        );
        assert_eq!(read_provenance(s.dir()).unwrap().seed, 7);
        assert!(s.dir().join(SAMPLES_DIR).is_dir());
        let csv = std::fs::read_to_string(s.dir().join(RESULTS_CSV)).unwrap();
        assert!(
            csv.starts_with("index,run_id,scenario_key,scenario.flavor.name,"),
            "{csv}"
        );
        assert_eq!(csv.lines().count(), 1);
        // A second start in the same second gets its own directory.
        let again = new_store(tmp.path());
        assert_eq!(again.dir(), tmp.path().join("t/20261203T142507Z-2"));
    }

    #[test]
    fn rows_and_samples_read_back_as_written() {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = new_store(tmp.path());
        let samples = vec![Sample {
            t_ms: 50.0,
            status: "active".into(),
            transferred_bytes: Some(10),
            ..Sample::default()
        }];
        s.append(&row(0, Outcome::Completed), &samples).unwrap();
        s.append(&row(1, Outcome::Failed), &[]).unwrap();
        let read = read_rows(s.dir()).unwrap();
        assert_eq!(
            read.rows,
            vec![row(0, Outcome::Completed), row(1, Outcome::Failed)]
        );
        assert!(read.partial.is_none());
        let sam = std::fs::read_to_string(s.dir().join("samples/0.jsonl")).unwrap();
        assert_eq!(
            serde_json::from_str::<Sample>(sam.trim()).unwrap(),
            samples[0]
        );
        assert!(
            s.is_done(&row(1, Outcome::Failed).run_id),
            "a failed run is recorded, never dropped"
        );
    }

    #[test]
    fn csv_is_flat_quoted_and_one_line_per_row() {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = new_store(tmp.path());
        s.append(&row(0, Outcome::Completed), &[]).unwrap();
        let csv = std::fs::read_to_string(s.dir().join(RESULTS_CSV)).unwrap();
        let cols = csv_columns();
        let cells = csv_cells(&row(0, Outcome::Completed), &cols);
        let at = |name: &str| {
            cells[cols
                .iter()
                .position(|c| c == name)
                .unwrap_or_else(|| panic!("no column {name}"))]
            .clone()
        };
        assert_eq!(at("scenario.flavor.name"), "m1.small");
        assert_eq!(at("scenario.load.memory.working_set_mib"), "0");
        assert_eq!(at("outcome"), "completed");
        assert_eq!(at("total_time_ms"), "1234.5");
        assert_eq!(at("downtime_ms"), "", "not measured: empty, never 0");
        assert_eq!(at("load_achieved"), "{\"cpu_loops_s\":10}");
        assert!(csv.contains("\"QEMU said \"\"no\"\", twice\nreally\""));
        // Every field of a row has a column.
        let mut keys = Vec::new();
        flatten(&row_with_every_field(), "", &mut |k, _| {
            keys.push(k.to_string())
        });
        assert_eq!(keys, cols);
        assert!(
            cols.contains(&"probe_downtime_ms".to_string())
                && cols.contains(&"scenario.pair.destination".to_string())
        );
    }

    #[test]
    fn a_partial_last_line_is_reported_ignored_and_cut_on_resume() {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = new_store(tmp.path());
        s.append(&row(0, Outcome::Completed), &[]).unwrap();
        s.append(&row(1, Outcome::Completed), &[]).unwrap();
        let dir = s.dir().to_path_buf();
        drop(s);
        // The process died inside the third row's write.
        let full = serde_json::to_string(&row(2, Outcome::Completed)).unwrap();
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.join(RESULTS_JSONL))
            .unwrap();
        f.write_all(&full.as_bytes()[..full.len() / 2]).unwrap();
        drop(f);
        let read = read_rows(&dir).unwrap();
        assert_eq!(read.rows.len(), 2);
        assert_eq!(
            read.partial,
            Some(PartialLine {
                line: 3,
                bytes: full.len() / 2
            })
        );

        let (mut s, state) = ResultsStore::resume(&dir).unwrap();
        assert_eq!(
            (state.rows, state.partial.as_ref().map(|p| p.line)),
            (2, Some(3))
        );
        assert!(s.is_done(&row(1, Outcome::Completed).run_id));
        assert!(!s.is_done(&row(2, Outcome::Completed).run_id));
        s.append(&row(2, Outcome::Completed), &[]).unwrap();
        let read = read_rows(&dir).unwrap();
        assert_eq!(
            read.rows.iter().map(|r| r.index).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        assert!(read.partial.is_none());
        let csv = std::fs::read_to_string(dir.join(RESULTS_CSV)).unwrap();
        let cols = csv_columns();
        let want: String = std::iter::once(csv_line(&cols))
            .chain((0..3).map(|i| csv_line(&csv_cells(&row(i, Outcome::Completed), &cols))))
            .collect();
        assert_eq!(csv, want);
    }

    #[test]
    fn resume_rebuilds_a_csv_that_missed_its_last_row_and_reruns_interrupted_runs() {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = new_store(tmp.path());
        s.append(&row(0, Outcome::Completed), &[]).unwrap();
        s.append(&row(1, Outcome::Interrupted), &[]).unwrap();
        let dir = s.dir().to_path_buf();
        drop(s);
        // Died between the JSONL and the CSV append: the CSV lacks row 1.
        let csv = std::fs::read_to_string(dir.join(RESULTS_CSV)).unwrap();
        let cut: Vec<&str> = csv.lines().take(2).collect();
        std::fs::write(dir.join(RESULTS_CSV), cut.join("\n") + "\n").unwrap();
        let (s, state) = ResultsStore::resume(&dir).unwrap();
        assert_eq!((state.rows, state.interrupted), (2, 1));
        assert!(s.is_done(&row(0, Outcome::Completed).run_id));
        assert!(!s.is_done(&row(1, Outcome::Interrupted).run_id));
        let cols = csv_columns();
        let want = csv_line(&cols)
            + &csv_line(&csv_cells(&row(0, Outcome::Completed), &cols))
            + &csv_line(&csv_cells(&row(1, Outcome::Interrupted), &cols));
        assert_eq!(
            std::fs::read_to_string(dir.join(RESULTS_CSV)).unwrap(),
            want
        );
    }

    #[test]
    fn a_bad_line_inside_the_file_is_an_error_not_a_repair() {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = new_store(tmp.path());
        s.append(&row(0, Outcome::Completed), &[]).unwrap();
        let dir = s.dir().to_path_buf();
        drop(s);
        let good = std::fs::read_to_string(dir.join(RESULTS_JSONL)).unwrap();
        std::fs::write(dir.join(RESULTS_JSONL), format!("{{oops\n{good}")).unwrap();
        assert!(matches!(
            read_rows(&dir),
            Err(StoreError::Corrupt { line: 1, .. })
        ));
        assert!(ResultsStore::resume(&dir).is_err());
        assert!(matches!(
            ResultsStore::resume(tmp.path()),
            Err(StoreError::NotResults { .. })
        ));
    }
}
