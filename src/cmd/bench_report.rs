//! `ferry bench report`: time `ferry report` on a generated results directory of
//! N rows (synthetic rows for timing only: plausible shapes, not measurements).

use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

use miette::IntoDiagnostic;

use crate::CmdResult;
use crate::cli::BenchReportArgs;
use crate::experiment::result::{MigrationResult, Outcome, Provenance, Sample};
use crate::experiment::scenario::{
    Algorithm, AlgorithmKind, Flavor, HostPair, Link, Load, MemoryLoad, Scenario,
};

use crate::plot::report::{ReportOptions, write_report};

/// Write `rows` synthetic rows (5 flavors x 3 algorithms x 2 loads x 2 links,
/// repeated) with samples for the first run of each algorithm.
pub fn generate(dir: &Path, rows: u32) -> std::io::Result<()> {
    fs::create_dir_all(dir.join("samples"))?;
    let flavors: Vec<Flavor> = [
        ("tiny", 64),
        ("small", 128),
        ("medium", 256),
        ("large", 512),
        ("xlarge", 1024),
    ]
    .iter()
    .map(|(n, m)| Flavor {
        name: n.to_string(),
        vcpus: 1,
        memory_mib: *m,
        disk_gib: 0.0,
    })
    .collect();
    let kinds = [
        ("precopy", AlgorithmKind::Precopy),
        ("postcopy", AlgorithmKind::Postcopy),
        ("hybrid-1", AlgorithmKind::Hybrid),
    ];
    let loads = [None, Some(32.0)];
    let links = [100_000_000u64, 1_000_000_000];
    let mut jsonl = fs::File::create(dir.join("results.jsonl"))?;
    let mut buf = String::new();
    for i in 0..rows {
        let f = &flavors[i as usize % 5];
        let (aname, kind) = kinds[i as usize / 5 % 3];
        let dirty = loads[i as usize / 15 % 2];
        let rate = links[i as usize / 30 % 2];
        let scenario = Scenario {
            flavor: f.clone(),
            algorithm: Algorithm {
                name: aname.into(),
                kind,
                switch_after_rounds: (kind == AlgorithmKind::Hybrid).then_some(1),
                ..Algorithm::default()
            },
            load: Load {
                name: if dirty.is_some() { "mem" } else { "idle" }.into(),
                memory: dirty.map(|r| MemoryLoad {
                    working_set_mib: 32,
                    rate_mib_s: Some(r),
                }),
                ..Load::default()
            },
            link: Link {
                name: format!("{}m", rate / 1_000_000),
                rate_bps: Some(rate),
                mtu: Some(1500),
                stands_for_bps: None,
            },
            repetition: i / 60,
            warmup: false,
            pair: HostPair {
                source: "a".into(),
                destination: "b".into(),
            },
        };
        let ram = f.memory_mib * 1048576;
        let jitter = 1.0 + (i % 7) as f64 * 0.01;
        let total_ms = ram as f64 / (rate as f64 / 8.0) * 1150.0 * jitter;
        let samples = i < 15 && i % 5 == 0;
        let row = MigrationResult {
            index: i,
            run_id: scenario.run_id(),
            scenario_key: scenario.key(),
            driver: "qmp".into(),
            outcome: Some(Outcome::Completed),
            started_at: "2026-01-01T00:00:00Z".into(),
            total_time_ms: Some(total_ms),
            downtime_ms: Some(20.0 * jitter),
            probe_downtime_ms: Some(40.0 * jitter),
            transferred_bytes: Some(ram),
            ram_total_bytes: Some(ram),
            nic_source_tx_bytes: Some(ram + ram / 30),
            link_rate_bps: Some(rate),
            dirty_rate_set_mib_s: dirty,
            dirty_rate_achieved_mib_s: dirty,
            samples: if samples { 100 } else { 0 },
            scenario: Some(scenario),
            ..MigrationResult::default()
        };
        buf.push_str(&serde_json::to_string(&row).map_err(std::io::Error::other)?);
        buf.push('\n');
        if samples {
            let mut s = String::new();
            for k in 0..100u64 {
                let sample = Sample {
                    t_ms: total_ms * k as f64 / 99.0,
                    status: "active".into(),
                    remaining_bytes: Some(ram - ram * k / 99),
                    mbps: Some(rate as f64 / 1e6 * 0.9),
                    dirty_rate_mib_s: dirty,
                    ..Sample::default()
                };
                s.push_str(&serde_json::to_string(&sample).map_err(std::io::Error::other)?);
                s.push('\n');
            }
            fs::write(dir.join("samples").join(format!("{i}.jsonl")), s)?;
        }
    }
    jsonl.write_all(buf.as_bytes())?;
    let prov = Provenance {
        experiment: "bench-report".into(),
        ferry_version: crate::VERSION_LONG.into(),
        started_at: "2026-01-01T00:00:00Z".into(),
        ..Provenance::default()
    };
    fs::write(
        dir.join("provenance.json"),
        serde_json::to_string(&prov).map_err(std::io::Error::other)?,
    )?;
    Ok(())
}

pub fn report(args: BenchReportArgs) -> CmdResult {
    let tmp = tempfile::tempdir().into_diagnostic()?;
    let dir = tmp.path().join("results");
    generate(&dir, args.rows).into_diagnostic()?;
    let started = Instant::now();
    let written = write_report(&ReportOptions {
        results: dir,
        out: Some(tmp.path().join("report")),
        formats: Vec::new(),
        group_by: Vec::new(),
        compare: None,
    })?;
    let took = started.elapsed();
    let _ = writeln!(
        std::io::stdout(),
        "ferry report of {} rows (synthetic), every format: {:.3} s ({} scenarios, {} files)",
        args.rows,
        took.as_secs_f64(),
        written.summaries.len(),
        written.files.len()
    );
    Ok(crate::exit::OK)
}
