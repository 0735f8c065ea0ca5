//! `ferry experiment -i INV FILE` and the experiment plays of `ferry run`.
//!
//! Everything is read and checked before any connection (the file, its hosts
//! against the inventory, the driver); then the runner runs with the reporter on
//! stderr, Ctrl-C stops starting runs (the second exits at once; every row
//! recorded so far is on disk), and stdout's last line is the results directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use miette::{IntoDiagnostic, miette};

use crate::CmdResult;
use crate::cli::{ConnectOpts, ExperimentArgs, InventoryOpts};
use crate::exit;
use crate::experiment::driver::{Driver, DriverKind};
use crate::experiment::pairs;
use crate::experiment::runner::{self, DriverRuns, ExperimentPlan, RunnerOptions};
use crate::experiment::source::{self, ExperimentSource};
use crate::inventory::Inventory;
use crate::playbook::diag::{CheckReport, Problem};
use crate::playbook::{Playbook, Vars};
use crate::report::experiment::ExperimentReporter;

/// The driver an experiment names.
pub fn driver_for(
    kind: DriverKind,
    options: &serde_json::Value,
) -> Result<Arc<dyn Driver>, crate::experiment::driver::nova::NovaOptionsError> {
    match kind {
        DriverKind::Nova => Ok(Arc::new(crate::experiment::driver::nova::NovaDriver::new(
            options,
        )?)),
        DriverKind::Qmp => Ok(Arc::new(crate::experiment::driver::qmp::QmpDriver::new(
            options,
        ))),
        DriverKind::Virsh => Ok(Arc::new(crate::experiment::driver::virsh::VirshDriver)),
    }
}

/// Reads a source into a plan: the spec, its hosts resolved against the inventory.
pub fn plan_of(
    src: &ExperimentSource,
    inventory: &Inventory,
    limit: Option<&str>,
) -> Result<ExperimentPlan, Vec<Problem>> {
    let spec = src.parse()?;
    let play_hosts = src.play.hosts.as_ref().map(|(h, _)| h.as_str());
    let hosts = pairs::resolve(&spec, inventory, play_hosts, limit)?;
    // A driver that cannot be made is a problem now, before any host is touched.
    driver_for(spec.driver, &spec.driver_options)
        .map_err(|e| vec![Problem::error(&spec.loc, e.to_string()).label("this experiment")])?;
    let file_bytes = std::fs::read(&src.file).map_err(|e| {
        vec![Problem::error(
            &spec.loc,
            format!("cannot read {}: {e}", src.file.display()),
        )]
    })?;
    Ok(ExperimentPlan {
        spec,
        file: src.file.clone(),
        file_bytes,
        hosts,
    })
}

fn color() -> bool {
    super::color(&std::io::stderr())
}

/// Each host's variables as a run sees them: the inventory's view, then `-e`.
fn host_vars(inventory: &Inventory, extra: &Vars) -> impl Fn(&str) -> Vars + Sync {
    let hosts = crate::engine::InventoryHosts::new(inventory.clone(), None);
    let extra = extra.clone();
    move |name: &str| {
        use crate::engine::HostSource;
        let mut v = hosts.base_vars(name);
        v.extend(extra.clone());
        v
    }
}

/// Runs one plan to its end (or Ctrl-C). Ok: the results directory and whether it
/// was interrupted.
fn run_plan(
    plan: &ExperimentPlan,
    inventory: &Inventory,
    extra: &Vars,
    connect: &ConnectOpts,
    out: &Path,
    resume: Option<PathBuf>,
    events: Option<&Path>,
) -> miette::Result<(PathBuf, bool)> {
    let driver = driver_for(plan.spec.driver, &plan.spec.driver_options)
        .map_err(|e| miette!("{}: {e}", plan.file.display()))?;
    let reporter = ExperimentReporter::stderr(events)
        .map_err(|e| miette!("--events: cannot create the file: {e}"))?;
    let interrupted = Arc::new(AtomicBool::new(false));
    let opts = RunnerOptions {
        out: out.to_path_buf(),
        resume,
        interrupted: interrupted.clone(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .into_diagnostic()?;
    let vars = host_vars(inventory, extra);
    let connector = super::connector(connect.into());
    let outcome = rt.block_on(async {
        let flag = interrupted.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                flag.store(true, Ordering::SeqCst);
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(exit::INTERRUPTED.into());
                }
            }
        });
        runner::run_experiment(
            plan,
            &vars,
            connector,
            &DriverRuns(driver),
            &opts,
            &reporter,
        )
        .await
    });
    rt.shutdown_background();
    let outcome = outcome.map_err(|e| miette!("{e}"))?;
    Ok((outcome.dir, outcome.interrupted))
}

/// `ferry experiment -i INV FILE [--out DIR] [--resume DIR]`.
pub fn experiment(args: ExperimentArgs) -> CmdResult {
    let inventory = Inventory::load(&args.inv.inventory).map_err(miette::Report::new)?;
    let extra = crate::vars::parse_extra_vars(&args.inv.extra_vars).map_err(miette::Report::new)?;
    let sources = match source::standalone(&args.file) {
        Some(s) => vec![s],
        None => source::in_playbook(&args.file),
    };
    if sources.is_empty() {
        eprintln!(
            "{}: no experiment here (neither an experiment file nor a playbook with an `experiment:` play)",
            args.file.display()
        );
        return Ok(exit::ERROR);
    }
    if args.resume.is_some() && sources.len() > 1 {
        eprintln!(
            "--resume continues one experiment; {} holds {}",
            args.file.display(),
            sources.len()
        );
        return Ok(exit::ERROR);
    }
    let plans = match plans_of(&sources, &inventory, &args.inv) {
        Ok(p) => p,
        Err(report) => {
            eprint!("{}", report.render(color()));
            return Ok(exit::ERROR);
        }
    };
    let mut last = None;
    for plan in &plans {
        let (dir, interrupted) = run_plan(
            plan,
            &inventory,
            &extra,
            &args.connect,
            &args.out,
            args.resume.clone(),
            args.events.as_deref(),
        )?;
        println!("{}", dir.display());
        last = Some(dir);
        if interrupted {
            return Ok(exit::INTERRUPTED);
        }
    }
    let _ = last;
    Ok(exit::OK)
}

fn plans_of(
    sources: &[ExperimentSource],
    inventory: &Inventory,
    inv: &InventoryOpts,
) -> Result<Vec<ExperimentPlan>, CheckReport> {
    let mut plans = Vec::new();
    let mut problems = Vec::new();
    for s in sources {
        match plan_of(s, inventory, inv.limit.as_deref()) {
            Ok(p) => plans.push(p),
            Err(p) => problems.extend(p),
        }
    }
    if problems.is_empty() {
        Ok(plans)
    } else {
        Err(CheckReport::new(problems))
    }
}

/// Whether any play of these playbooks is an experiment.
pub fn has_experiments(playbooks: &[Playbook]) -> bool {
    playbooks
        .iter()
        .flat_map(|p| &p.plays)
        .any(|p| p.experiment.is_some())
}

/// `ferry run` with experiment plays: the plays run in order, the provisioning ones
/// through `provision` (the engine, a group of consecutive plays at a time), the
/// experiment ones in the experiment stage. Every experiment is read and checked
/// before anything runs. Stops at the first group or experiment that does not exit 0.
pub fn run_with_experiments(
    playbooks: Vec<Playbook>,
    inventory: &Inventory,
    inv: &InventoryOpts,
    extra: &Vars,
    connect: &ConnectOpts,
    out: &Path,
    mut provision: impl FnMut(Vec<Playbook>) -> CmdResult,
) -> CmdResult {
    // Plans first: a mistake in an experiment stops the run before any play.
    let mut steps: Vec<Step> = Vec::new();
    let mut problems = Vec::new();
    for pb in playbooks {
        for play in pb.plays {
            if play.experiment.is_some() {
                match source::of_play(&play) {
                    Some(src) => match plan_of(&src, inventory, inv.limit.as_deref()) {
                        Ok(plan) => steps.push(Step::Experiment(Box::new(plan))),
                        Err(p) => problems.extend(p),
                    },
                    None => problems.push(Problem::error(
                        &play.loc,
                        "cannot find this play's `experiment:` in its file again",
                    )),
                }
            } else {
                match steps.last_mut() {
                    Some(Step::Plays(group)) if group.path == pb.path => group.plays.push(play),
                    _ => steps.push(Step::Plays(Playbook {
                        path: pb.path.clone(),
                        plays: vec![play],
                    })),
                }
            }
        }
    }
    if !problems.is_empty() {
        eprint!("{}", CheckReport::new(problems).render(color()));
        return Ok(exit::ERROR);
    }
    let mut pending: Vec<Playbook> = Vec::new();
    for step in steps {
        match step {
            Step::Plays(pb) => pending.push(pb),
            Step::Experiment(plan) => {
                if !pending.is_empty() {
                    let code = provision(std::mem::take(&mut pending))?;
                    if code != exit::OK {
                        return Ok(code);
                    }
                }
                let (dir, interrupted) =
                    run_plan(&plan, inventory, extra, connect, out, None, None)?;
                println!("{}", dir.display());
                if interrupted {
                    return Ok(exit::INTERRUPTED);
                }
            }
        }
    }
    if pending.is_empty() {
        Ok(exit::OK)
    } else {
        provision(pending)
    }
}

enum Step {
    Plays(Playbook),
    Experiment(Box<ExperimentPlan>),
}
