//! `ferry report` on results directories this test writes itself.
//!
//! The rows are TEST DATA made up by [`Experiment`] below with the experiment
//! stage's real types (`MigrationResult`, `Sample`, `Provenance`): plausible numbers
//! for a scaled lab (100 Mbit/s and 1 Gbit/s links, 128/256 MiB guests), with a fixed
//! pseudo-random spread. They are not measurements.
//!
//! What a user checks is asserted: the summary's numbers (medians and quartiles
//! computed here again from the rows), the CSV and Markdown files, a self-contained
//! report.html, valid SVG and PNG files, a partly written last line, `--compare`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use ferry::experiment::result::{HostProvenance, MigrationResult, Outcome, Provenance, Sample};
use ferry::experiment::scenario::{
    Algorithm, AlgorithmKind, Flavor, HostPair, Link, Load, MemoryLoad, Scenario,
};

const MIB: f64 = 1048576.0;

/// A deterministic spread: the same numbers on every run of the test.
struct Spread(u64);

impl Spread {
    /// A factor in [1 - width, 1 + width].
    fn factor(&mut self, width: f64) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let u = (self.0 >> 11) as f64 / (1u64 << 53) as f64;
        1.0 + width * (2.0 * u - 1.0)
    }
}

fn flavor(name: &str, mib: u64, vcpus: u32) -> Flavor {
    Flavor {
        name: name.into(),
        vcpus,
        memory_mib: mib,
        disk_gib: 0.0,
    }
}

fn algorithm(name: &str, kind: AlgorithmKind, switch_after_rounds: Option<u32>) -> Algorithm {
    Algorithm {
        name: name.into(),
        kind,
        switch_after_rounds,
        downtime_limit_ms: Some(300),
        ..Algorithm::default()
    }
}

fn link(name: &str, rate: u64, stands_for: u64) -> Link {
    Link {
        name: name.into(),
        rate_bps: Some(rate),
        mtu: Some(1500),
        stands_for_bps: Some(stands_for),
    }
}

/// The made-up experiment: its options, then [`Experiment::write`].
struct Experiment {
    name: String,
    /// Multiplies every total time (to make a second directory for `--compare`).
    time_scale: f64,
    repetitions: u32,
    seed: u64,
}

impl Experiment {
    fn new(name: &str) -> Experiment {
        Experiment {
            name: name.into(),
            time_scale: 1.0,
            repetitions: 3,
            seed: 7,
        }
    }

    fn scenarios(&self) -> Vec<Scenario> {
        let flavors = [flavor("small", 128, 1), flavor("medium", 256, 2)];
        let algorithms = [
            algorithm("precopy", AlgorithmKind::Precopy, None),
            algorithm("postcopy", AlgorithmKind::Postcopy, None),
            algorithm("hybrid-1", AlgorithmKind::Hybrid, Some(1)),
        ];
        let loads = [
            Load {
                name: "idle".into(),
                ..Load::default()
            },
            Load {
                name: "mem-64".into(),
                memory: Some(MemoryLoad {
                    working_set_mib: 64,
                    rate_mib_s: Some(40.0),
                }),
                ..Load::default()
            },
        ];
        let links = [
            link("lab-100m", 100_000_000, 1_000_000_000),
            link("lab-1g", 1_000_000_000, 10_000_000_000),
        ];
        let mut out = Vec::new();
        // One warm-up run first, as the experiment stage records it.
        out.push(Scenario {
            flavor: flavors[0].clone(),
            algorithm: algorithms[0].clone(),
            load: loads[0].clone(),
            link: links[1].clone(),
            repetition: 0,
            warmup: true,
            pair: pair(),
        });
        for f in &flavors {
            for a in &algorithms {
                for l in &loads {
                    for k in &links {
                        for repetition in 0..self.repetitions {
                            out.push(Scenario {
                                flavor: f.clone(),
                                algorithm: a.clone(),
                                load: l.clone(),
                                link: k.clone(),
                                repetition,
                                warmup: false,
                                pair: pair(),
                            });
                        }
                    }
                }
            }
        }
        out
    }

    /// A plausible row for a scenario: about the model's figures for this lab's
    /// CPU-bound TCG migration (somewhat slower than the link, zero pages cheap).
    fn row(&self, index: u32, s: &Scenario, spread: &mut Spread) -> MigrationResult {
        let ram = s.flavor.memory_mib as f64 * MIB;
        let link = s.link.rate_bps.unwrap() as f64 / 8.0;
        let dirty = s
            .load
            .memory
            .as_ref()
            .and_then(|m| m.rate_mib_s)
            .unwrap_or(0.0);
        let pass = ram / link;
        let memory_load = s.load.memory.is_some();
        let mut row = MigrationResult {
            index,
            run_id: s.run_id(),
            scenario_key: s.key(),
            scenario: Some(s.clone()),
            driver: "qmp".into(),
            started_at: format!("2026-12-03T10:{:02}:{:02}Z", index / 60 % 60, index % 60),
            migration_started_at: Some(format!(
                "2026-12-03T10:{:02}:{:02}Z",
                index / 60 % 60,
                index % 60
            )),
            ram_total_bytes: Some(ram as u64),
            dirty_rate_set_mib_s: memory_load.then_some(dirty),
            dirty_rate_achieved_mib_s: memory_load.then(|| dirty * spread.factor(0.05)),
            link_rate_bps: s.link.rate_bps,
            link_mtu: Some(1500),
            setup_time_ms: Some(12.0 * spread.factor(0.2)),
            reannounced: false,
            ..MigrationResult::default()
        };
        // Pre-copy under a 40 MiB/s load on 100 Mbit/s (12.5 MB/s) cannot converge.
        let stuck = s.algorithm.kind == AlgorithmKind::Precopy
            && memory_load
            && s.link.rate_bps == Some(100_000_000);
        if stuck {
            row.outcome = Some(Outcome::NotConverged);
            row.error = Some("pre-copy still iterating after the 60 s timeout: cancelled".into());
            row.total_time_ms = Some(60_000.0);
            row.dirty_sync_rounds = Some(9);
            return row;
        }
        // One failed run, as QEMU says it.
        if s.key() == "medium/postcopy/mem-64/lab-1g" && s.repetition == 1 {
            row.outcome = Some(Outcome::Failed);
            row.error = Some("Unable to write to socket: Broken pipe".into());
            return row;
        }
        let extra = if memory_load {
            match s.algorithm.kind {
                AlgorithmKind::Precopy => 0.45,
                _ => 0.25,
            }
        } else {
            0.0
        };
        let total_s = pass * (1.0 + extra) * 1.15 * spread.factor(0.08) * self.time_scale;
        let bytes = ram * if memory_load { 1.25 } else { 0.62 } * spread.factor(0.03);
        row.outcome = Some(Outcome::Completed);
        row.total_time_ms = Some(total_s * 1000.0);
        row.transferred_bytes = Some(bytes as u64);
        row.downtime_ms = Some(match s.algorithm.kind {
            AlgorithmKind::Precopy => 40.0 * spread.factor(0.3),
            _ => 3.0 * spread.factor(0.3),
        });
        row.probe_downtime_ms = Some(match s.algorithm.kind {
            AlgorithmKind::Precopy => 60.0 * spread.factor(0.3),
            _ => 110.0 * spread.factor(0.3),
        });
        row.probe_sent = Some((total_s * 100.0) as u64 + 10);
        row.probe_answered = row.probe_sent.map(|n| n - 4);
        row.first_answer_after_ms = Some(18.0 * spread.factor(0.3));
        row.nic_source_tx_bytes = Some((bytes * 1.03) as u64);
        row.nic_destination_rx_bytes = Some((bytes * 1.03) as u64);
        row.precopy_bytes = Some(match s.algorithm.kind {
            AlgorithmKind::Postcopy => 0,
            AlgorithmKind::Precopy => bytes as u64,
            AlgorithmKind::Hybrid => (bytes * 0.5) as u64,
        });
        row.postcopy_bytes = Some(bytes as u64 - row.precopy_bytes.unwrap());
        row.dirty_sync_rounds = Some(if memory_load { 4 } else { 2 });
        row.postcopy_switch_ms = match s.algorithm.kind {
            AlgorithmKind::Postcopy => Some(30.0),
            AlgorithmKind::Hybrid => Some(pass * 1000.0 * 0.7),
            AlgorithmKind::Precopy => None,
        };
        row.source_cpu_busy = Some(0.55);
        row.destination_cpu_busy = Some(0.45);
        row
    }

    /// Samples every 50 ms: remaining RAM falling, the rate near the link's.
    fn samples(row: &MigrationResult) -> Vec<Sample> {
        let total = row.total_time_ms.unwrap();
        let ram = row.ram_total_bytes.unwrap() as f64;
        let link_mbit = row.link_rate_bps.unwrap() as f64 / 1e6;
        let dirty = row.dirty_rate_achieved_mib_s.unwrap_or(0.0);
        let switch = row.postcopy_switch_ms;
        let n = (total / 50.0) as usize;
        (0..=n)
            .map(|i| {
                let t = i as f64 * 50.0;
                let done = (t / total).min(1.0);
                // Not converging: the first pass ends, then the working set stays dirty.
                let remaining = if row.outcome == Some(Outcome::NotConverged) {
                    (ram * (1.0 - t / 1000.0 / (ram / (link_mbit * 1e6 / 8.0)))).max(64.0 * MIB)
                } else {
                    ram * (1.0 - done)
                };
                let post = switch.is_some_and(|s| t >= s);
                Sample {
                    t_ms: t,
                    status: if i == n {
                        "completed".into()
                    } else if post {
                        "postcopy-active".into()
                    } else {
                        "active".into()
                    },
                    transferred_bytes: Some((ram * 1.1 * done) as u64),
                    remaining_bytes: Some(remaining as u64),
                    total_bytes: Some(ram as u64),
                    mbps: Some(link_mbit * (0.85 + 0.05 * (i as f64 / 7.0).sin())),
                    dirty_rate_mib_s: Some(if post { 0.0 } else { dirty }),
                    dirty_sync_rounds: Some(1 + (done * 3.0) as u64),
                    postcopy_requests: Some(if post { i as u64 } else { 0 }),
                    expected_downtime_ms: Some(300.0 * (1.0 - done)),
                }
            })
            .collect()
    }

    fn provenance(&self) -> Provenance {
        Provenance {
            experiment: self.name.clone(),
            ferry_version: "0.1.0 (commit 1234abc)".into(),
            experiment_file: "experiments/lab-quick.yml".into(),
            experiment_sha256: "0".repeat(64),
            repo_commit: Some("9f8e7d6c5b4a39281706f5e4d3c2b1a098765432".into()),
            repo_dirty: Some(false),
            started_at: "2026-12-03T10:00:00Z".into(),
            seed: self.seed,
            scale: Some(
                serde_json::json!({"links": "lab 100 Mbit/s and 1 Gbit/s stand for 1 and 10 Gbit/s"}),
            ),
            matrix: serde_json::json!({"flavors": ["small", "medium"], "algorithms": ["precopy", "postcopy", "hybrid-1"], "loads": ["idle", "mem-64"], "links": ["lab-100m", "lab-1g"], "repetitions": self.repetitions, "warmups": 1}),
            hosts: ["ferry-1", "ferry-2"]
                .iter()
                .enumerate()
                .map(|(i, h)| HostProvenance {
                    name: h.to_string(),
                    kernel: Some("6.1.0-28-amd64".into()),
                    qemu_version: Some("7.2.13".into()),
                    libvirt_version: Some("9.0.0".into()),
                    migration_ip: Some(format!("10.99.1.{}", i + 1)),
                    migration_iface: Some("mig0".into()),
                    migration_speed_mbit: Some(10000),
                    migration_mtu: Some(1500),
                })
                .collect(),
        }
    }

    /// Write the directory as the experiment stage lays it out.
    fn write(&self, dir: &Path) -> Vec<MigrationResult> {
        fs::create_dir_all(dir.join("samples")).unwrap();
        let mut spread = Spread(self.seed);
        let rows: Vec<MigrationResult> = self
            .scenarios()
            .iter()
            .enumerate()
            .map(|(i, s)| self.row(i as u32, s, &mut spread))
            .collect();
        let mut jsonl = String::new();
        let mut rows_out = Vec::new();
        for mut r in rows {
            // Samples for the first completed run of each algorithm on the slow link.
            let s = r.scenario.clone().unwrap();
            if matches!(r.outcome, Some(Outcome::Completed | Outcome::NotConverged))
                && s.repetition == 0
                && !s.warmup
                && s.flavor.name == "medium"
                && s.load.name == "mem-64"
                && s.link.name == "lab-100m"
            {
                let samples = Self::samples(&r);
                r.samples = samples.len() as u32;
                let text: String = samples
                    .iter()
                    .map(|s| serde_json::to_string(s).unwrap() + "\n")
                    .collect();
                fs::write(dir.join("samples").join(format!("{}.jsonl", r.index)), text).unwrap();
            }
            jsonl.push_str(&serde_json::to_string(&r).unwrap());
            jsonl.push('\n');
            rows_out.push(r);
        }
        fs::write(dir.join("results.jsonl"), jsonl).unwrap();
        fs::write(
            dir.join("results.csv"),
            "index,run_id\n(the CSV twin of results.jsonl; not read by the report)\n",
        )
        .unwrap();
        fs::write(
            dir.join("provenance.json"),
            serde_json::to_string_pretty(&self.provenance()).unwrap(),
        )
        .unwrap();
        rows_out
    }
}

fn pair() -> HostPair {
    HostPair {
        source: "ferry-1".into(),
        destination: "ferry-2".into(),
    }
}

struct Run {
    stdout: String,
    stderr: String,
}

fn ferry_report(args: &[&str]) -> Run {
    let out = Command::cargo_bin("ferry")
        .unwrap()
        .arg("report")
        .args(args)
        .output()
        .unwrap();
    let run = Run {
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    assert!(
        out.status.success(),
        "ferry report {args:?} failed\nstdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    run
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Median and quartiles as a user would compute them (numpy's default, linear).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (h - lo as f64)
}

fn completed_totals(rows: &[MigrationResult], key: &str) -> Vec<f64> {
    let mut v: Vec<f64> = rows
        .iter()
        .filter(|r| r.scenario_key == key && !r.scenario.as_ref().unwrap().warmup)
        .filter(|r| r.outcome == Some(Outcome::Completed))
        .map(|r| r.total_time_ms.unwrap())
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

fn csv_rows(text: &str) -> Vec<std::collections::HashMap<String, String>> {
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    lines
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split(',').map(String::from))
                .collect()
        })
        .collect()
}

/// A fresh directory for one test under the test binaries' own output directory
/// (`target/tmp/report/TEST`), kept after the test so its report can be looked at.
fn test_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("report")
        .join(test);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// The made-up experiment written to `TEST/results/...`, the report to go to `TEST/out`.
fn setup(test: &str) -> (PathBuf, PathBuf, PathBuf, Vec<MigrationResult>) {
    let tmp = test_dir(test);
    let results = tmp
        .join("results")
        .join("lab-quick")
        .join("20261203T100000Z");
    let rows = Experiment::new("lab-quick").write(&results);
    let out = tmp.join("out");
    (tmp, results, out, rows)
}

#[test]
fn summary_numbers_match_the_rows() {
    let (_tmp, results, out, rows) = setup("summary_numbers_match_the_rows");
    let run = ferry_report(&[p(&results), "--out", p(&out)]);

    // The last stdout line is report.html's path.
    let last = run.stdout.lines().last().unwrap();
    assert_eq!(Path::new(last), out.join("report.html"));
    assert!(out.join("report.html").is_file());

    let csv = fs::read_to_string(out.join("summary.csv")).unwrap();
    let table = csv_rows(&csv);
    // 2 flavors x 3 algorithms x 2 loads x 2 links.
    assert_eq!(table.len(), 24);
    for key in [
        "small/precopy/idle/lab-1g",
        "medium/hybrid-1/mem-64/lab-100m",
        "medium/postcopy/mem-64/lab-1g",
    ] {
        let row = table.iter().find(|r| r["scenario"] == key).unwrap();
        let v = completed_totals(&rows, key);
        let num = |c: &str| row[c].parse::<f64>().unwrap();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6 * b.abs().max(1.0);
        assert!(
            close(num("total_ms_median"), quantile(&v, 0.5)),
            "{key} median"
        );
        assert!(close(num("total_ms_q1"), quantile(&v, 0.25)), "{key} q1");
        assert!(close(num("total_ms_q3"), quantile(&v, 0.75)), "{key} q3");
        assert!(close(num("total_ms_min"), v[0]), "{key} min");
        assert!(close(num("total_ms_max"), *v.last().unwrap()), "{key} max");
        assert_eq!(row["completed"], v.len().to_string());
        // Lower bound: RAM / the run's real link rate (not what it stands for).
        let s = rows
            .iter()
            .find(|r| r.scenario_key == key)
            .unwrap()
            .scenario
            .clone()
            .unwrap();
        let bound_ms =
            s.flavor.memory_mib as f64 * MIB / (s.link.rate_bps.unwrap() as f64 / 8.0) * 1000.0;
        assert!(close(num("lower_bound_ms"), bound_ms), "{key} bound");
        assert!(close(num("total_over_bound"), quantile(&v, 0.5) / bound_ms));
        // The terminal shows the median in seconds on the scenario's line, in its section.
        let median_s = quantile(&v, 0.5) / 1000.0;
        let shown = if median_s >= 10.0 {
            format!("{median_s:.1}")
        } else {
            format!("{median_s:.2}")
        };
        let label = format!("  {}/{} ", s.flavor.name, s.algorithm.name);
        let section = format!("link {} (", s.link.name);
        let section_at = run
            .stdout
            .lines()
            .position(|l| l.starts_with(&section) && l.ends_with(&format!("load {}", s.load.name)))
            .unwrap();
        let line = run
            .stdout
            .lines()
            .skip(section_at)
            .find(|l| l.starts_with(&label))
            .unwrap();
        assert!(
            line.contains(&format!(" {shown} ")),
            "{key}: {line:?} lacks {shown}"
        );
    }
    // The failed run and the not-converged ones are counted, not in the medians.
    let failed = table
        .iter()
        .find(|r| r["scenario"] == "medium/postcopy/mem-64/lab-1g")
        .unwrap();
    assert_eq!(
        (failed["runs"].as_str(), failed["failed"].as_str()),
        ("3", "1")
    );
    let stuck = table
        .iter()
        .find(|r| r["scenario"] == "small/precopy/mem-64/lab-100m")
        .unwrap();
    assert_eq!(stuck["not_converged"], "3");
    assert_eq!(stuck["total_ms_median"], "");
    // The model agrees it never converges.
    assert_eq!(stuck["model_not_converging"], "3");
    assert_eq!(stuck["disagreeing"], "0");
    // The warm-up is listed apart.
    let warm = table
        .iter()
        .find(|r| r["scenario"] == "small/precopy/idle/lab-1g")
        .unwrap();
    assert_eq!(
        (warm["runs"].as_str(), warm["warmups"].as_str()),
        ("3", "1")
    );

    // Markdown: a header, the separator, one line per scenario.
    let md = fs::read_to_string(out.join("summary.md")).unwrap();
    let table_lines: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
    assert_eq!(table_lines.len(), 2 + 24);
    assert!(table_lines[0].contains("total s median"));

    // Every terminal line fits in 100 columns.
    for l in run.stdout.lines().filter(|l| !l.contains(p(&out))) {
        assert!(
            l.chars().count() <= 100,
            "{} columns: {l}",
            l.chars().count()
        );
    }
}

#[test]
fn terminal_table_snapshot() {
    let (tmp, results, out, _) = setup("terminal_table_snapshot");
    let run = ferry_report(&[p(&results), "--out", p(&out), "--format", "csv"]);
    let shown = run.stdout.replace(p(&tmp), "[TMP]");
    insta::assert_snapshot!(shown);
}

#[test]
fn html_is_self_contained_with_every_plot_and_error() {
    let (_tmp, results, out, _) = setup("html_is_self_contained_with_every_plot_and_error");
    ferry_report(&[p(&results), "--out", p(&out)]);
    let html = fs::read_to_string(out.join("report.html")).unwrap();
    for forbidden in ["http://", "https://", "src=", "@import", "url("] {
        assert!(
            !html.contains(forbidden),
            "report.html contains {forbidden:?}"
        );
    }
    let svgs: Vec<PathBuf> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .collect();
    // 4 metrics + one samples plot per algorithm.
    assert_eq!(svgs.len(), 7, "{svgs:?}");
    assert_eq!(html.matches("<svg").count(), svgs.len());
    for s in &svgs {
        let stem = s.file_stem().unwrap().to_str().unwrap();
        assert!(
            html.contains(&format!("<figure id=\"{stem}\">")),
            "{stem} not inlined"
        );
    }
    assert!(html.contains("Unable to write to socket: Broken pipe"));
    assert!(html.contains("pre-copy still iterating after the 60 s timeout"));
    assert!(html.contains("href=\"../results/lab-quick/20261203T100000Z/results.jsonl\""));
    assert!(html.contains("9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"));
    assert!(html.contains("Every run beside the model"));
}

#[test]
fn svg_and_png_files_are_valid() {
    let (_tmp, results, out, _) = setup("svg_and_png_files_are_valid");
    ferry_report(&[p(&results), "--out", p(&out), "--format", "svg,png"]);
    assert!(!out.join("report.html").exists(), "html not asked for");
    for stem in ["total-time", "downtime", "probe-downtime", "transferred"] {
        let svg = fs::read_to_string(out.join(format!("{stem}.svg"))).unwrap();
        let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{stem}.svg: {e}"));
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        let height: u32 = root.attribute("height").unwrap().parse().unwrap();
        assert_eq!(root.attribute("width"), Some("1200"));
        let text: String = doc
            .descendants()
            .filter(|n| n.is_text())
            .map(|n| n.text().unwrap().to_string() + "\n")
            .collect();
        let model = if stem == "probe-downtime" {
            None
        } else {
            Some("model")
        };
        for series in ["precopy", "postcopy", "hybrid-1", "small", "medium"]
            .into_iter()
            .chain(model)
        {
            assert!(
                text.lines().any(|l| l == series),
                "{stem}.svg lacks {series}"
            );
        }
        assert!(text.contains("lab-quick"), "title names the experiment");
        assert!(text.contains("commit 9f8e7d6c5b"), "title names the commit");
        let png = fs::File::open(out.join(format!("{stem}.png"))).unwrap();
        let mut reader = png::Decoder::new(png).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (1200, height), "{stem}.png size");
        // Not blank: text and bars are drawn in more than a few colours.
        let distinct: std::collections::HashSet<&[u8]> = buf.chunks(3).collect();
        assert!(distinct.len() > 20, "{stem}.png looks empty");
    }
    let samples: Vec<_> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("samples-") && n.ends_with(".png"))
        .collect();
    assert_eq!(
        samples.len(),
        3,
        "one samples plot per algorithm: {samples:?}"
    );
}

#[test]
fn partly_written_last_line_is_skipped_with_a_warning() {
    let (_tmp, results, out, rows) = setup("partly_written_last_line_is_skipped_with_a_warning");
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(results.join("results.jsonl"))
        .unwrap();
    f.write_all(br#"{"index":73,"run_id":"small/precopy/idle/lab-1g#3","scenario_key":"sma"#)
        .unwrap();
    drop(f);
    let run = ferry_report(&[p(&results), "--out", p(&out), "--format", "csv"]);
    assert!(
        run.stderr
            .contains("results.jsonl:74: partly written last line"),
        "{}",
        run.stderr
    );
    let counted = rows
        .iter()
        .filter(|r| !r.scenario.as_ref().unwrap().warmup)
        .count();
    assert!(
        run.stdout
            .starts_with(&format!("{counted} runs (warm-ups, not counted: 1)"))
    );
}

#[test]
fn compare_shows_both_medians_and_the_change() {
    let tmp = test_dir("compare_shows_both_medians_and_the_change");
    let a = tmp.join("a");
    let b = tmp.join("b");
    let rows_a = Experiment::new("lab-quick").write(&a);
    let mut exp_b = Experiment::new("lab-quick");
    exp_b.time_scale = 0.5;
    let rows_b = exp_b.write(&b);
    let out = tmp.join("out");
    let run = ferry_report(&[p(&a), "--out", p(&out), "--compare", p(&b)]);
    assert!(run.stdout.contains("Compared (A: "), "{}", run.stdout);
    let header = run
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("scenario") && l.contains("total s A"))
        .unwrap();
    for col in ["total s B", "downtime ms A", "MiB B", "Δ"] {
        assert!(header.contains(col), "{header}");
    }
    let key = "small/postcopy/idle/lab-1g";
    let ma = quantile(&completed_totals(&rows_a, key), 0.5);
    let mb = quantile(&completed_totals(&rows_b, key), 0.5);
    let change = (mb - ma) / ma * 100.0;
    let line = run
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with(key) && l.contains('%'))
        .unwrap();
    assert!(line.contains(&format!("{change:+.0}%")), "{line}");
    let csv = csv_rows(&fs::read_to_string(out.join("compare.csv")).unwrap());
    let row = csv.iter().find(|r| r["scenario"] == key).unwrap();
    assert!((row["total_ms_median_b"].parse::<f64>().unwrap() - mb).abs() < 1e-6);
    let html = fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<h2>Compared</h2>"));
}

#[test]
fn group_by_pools_the_other_axes() {
    let (_tmp, results, out, rows) = setup("group_by_pools_the_other_axes");
    let run = ferry_report(&[
        p(&results),
        "--out",
        p(&out),
        "--format",
        "csv",
        "--group-by",
        "algorithm",
    ]);
    assert!(
        run.stdout.contains("\nall links · all loads\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.lines().any(|l| l.starts_with("  precopy ")),
        "{}",
        run.stdout
    );
    let table = csv_rows(&fs::read_to_string(out.join("summary.csv")).unwrap());
    let names: Vec<&str> = table.iter().map(|r| r["scenario"].as_str()).collect();
    assert_eq!(names, ["precopy", "postcopy", "hybrid-1"]);
    let mut v: Vec<f64> = rows
        .iter()
        .filter(|r| {
            let s = r.scenario.as_ref().unwrap();
            s.algorithm.name == "postcopy" && !s.warmup && r.outcome == Some(Outcome::Completed)
        })
        .map(|r| r.total_time_ms.unwrap())
        .collect();
    v.sort_by(f64::total_cmp);
    let got: f64 = table[1]["total_ms_median"].parse().unwrap();
    assert_eq!(table[1]["runs"], "24");
    assert!((got - quantile(&v, 0.5)).abs() < 1e-6);
}

#[test]
fn empty_and_all_failed_directories_still_report() {
    let tmp = test_dir("empty_and_all_failed_directories_still_report");
    let empty = tmp.join("empty");
    fs::create_dir_all(&empty).unwrap();
    fs::write(empty.join("results.jsonl"), "").unwrap();
    let run = ferry_report(&[p(&empty), "--out", p(&tmp.join("o1"))]);
    assert!(run.stdout.contains("no runs recorded"));
    assert!(run.stderr.contains("provenance.json"), "{}", run.stderr);
    assert!(tmp.join("o1/report.html").is_file());

    let failed = tmp.join("failed");
    let rows = Experiment::new("broken").write(&failed);
    let text: String = rows
        .into_iter()
        .map(|mut r| {
            r.outcome = Some(Outcome::Failed);
            r.error = Some(format!("run {}: QEMU exited", r.index));
            serde_json::to_string(&r).unwrap() + "\n"
        })
        .collect();
    fs::write(failed.join("results.jsonl"), text).unwrap();
    let run = ferry_report(&[p(&failed), "--out", p(&tmp.join("o2"))]);
    assert!(run.stdout.contains("small/precopy"));
    let html = fs::read_to_string(tmp.join("o2/report.html")).unwrap();
    assert!(html.contains("run 5: QEMU exited"));
}

#[test]
fn not_a_results_directory_is_an_error_naming_it() {
    let tmp = test_dir("not_a_results_directory_is_an_error_naming_it");
    let out = Command::cargo_bin("ferry")
        .unwrap()
        .args(["report", p(&tmp)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("not a results directory (no results.jsonl in it)"),
        "{err}"
    );
}

/// The page as a browser shows it: headless Chromium (Debian's `chromium`, installed
/// by `.ci/setup`) saves a screenshot beside the report, to be looked at.
#[test]
fn html_renders_in_headless_chromium() {
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| {
            std::process::Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("chromium is missing: `bash .ci/setup` installs Debian's chromium package");
    let (tmp, results, out, _) = setup("html_renders_in_headless_chromium");
    ferry_report(&[p(&results), "--out", p(&out), "--format", "html"]);
    let shot = out.join("report-screenshot.png");
    let status = std::process::Command::new("timeout")
        .args([
            "120",
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
        ])
        .args([
            "--hide-scrollbars",
            "--window-size=1300,2400",
            "--no-first-run",
        ])
        .arg(format!(
            "--user-data-dir={}",
            tmp.join("chromium-profile").display()
        ))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", out.join("report.html").display()))
        .output()
        .unwrap();
    assert!(
        shot.is_file(),
        "no screenshot; chromium said: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let reader = png::Decoder::new(fs::File::open(&shot).unwrap());
    let info = reader.read_info().unwrap().info().clone();
    assert_eq!((info.width, info.height), (1300, 2400));
}
