//! `ferry facts`: gather every selected host's facts in parallel and print them as JSON.

use serde_json::{Map, Value};

use crate::CmdResult;
use crate::cli::FactsArgs;
use crate::exit;
use crate::facts::{FactsError, gather};

/// `ferry facts -i INV [PATTERN]`: every selected host's facts, gathered in parallel
/// (at most `--forks` at once), printed as one JSON object host -> facts.
/// Hosts that cannot be reached (or whose facts cannot be gathered) are named on
/// stderr and left out of the object; then the exit code is 4.
pub fn facts(args: FactsArgs) -> CmdResult {
    use miette::IntoDiagnostic;
    let hosts = super::load_hosts(&args.inv)?;
    let extra = crate::vars::parse_extra_vars(&args.inv.extra_vars).map_err(miette::Report::new)?;
    let names = hosts
        .select(&args.pattern)
        .map_err(|e| miette::miette!("pattern {:?}: {e}", args.pattern))?;
    if names.is_empty() {
        eprintln!("ferry facts: no hosts match {:?}", args.pattern);
        return Ok(exit::ERROR);
    }
    let connector = super::connector((&args.connect).into());
    let forks = args.connect.forks.max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .into_diagnostic()?;
    let results = rt.block_on(async {
        let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(forks));
        let mut jobs = Vec::new();
        for name in &names {
            let mut vars = hosts.base_vars(name);
            vars.extend(extra.clone());
            let connect = connector.connect(name, &vars);
            let gate = gate.clone();
            jobs.push(tokio::spawn(async move {
                let _permit = gate.acquire_owned().await;
                let t = connect.await.map_err(FactsError::from)?;
                let facts = gather(t.as_ref()).await;
                t.close().await;
                facts
            }));
        }
        let mut out = Vec::new();
        for (name, job) in names.iter().zip(jobs) {
            let r = match job.await {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(e) => Err(format!("gathering stopped: {e}")),
            };
            out.push((name.clone(), r));
        }
        out
    });
    let mut all = Map::new();
    let mut unreachable = 0;
    for (name, r) in results {
        match r {
            Ok(f) => {
                all.insert(name, f);
            }
            Err(e) => {
                unreachable += 1;
                eprintln!("{name}: UNREACHABLE: {e}");
            }
        }
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&Value::Object(all)).into_diagnostic()?
    );
    Ok(if unreachable > 0 {
        exit::HOST_UNREACHABLE
    } else {
        exit::OK
    })
}
