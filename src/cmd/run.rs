//! `ferry run`: load and check everything before any connection, then run the engine
//! with the reporters for stdout (and `--events`); Ctrl-C stops starting new tasks (exit 130).

use std::path::Path;
use std::sync::Arc;

use miette::miette;

use super::{become_password, color, connector, drive, extra_vars, load_inventory};
use crate::CmdResult;
use crate::cli::RunArgs;
use crate::engine::{Engine, EventSink, Fanout, HostSource, InventoryHosts, RunOptions};
use crate::exit;
use crate::inventory::Inventory;
use crate::playbook::diag::CheckReport;
use crate::playbook::{Playbook, Vars};
use crate::report::{JsonlReporter, PlainReporter, TerminalReporter};

pub fn run(args: RunArgs) -> CmdResult {
    let extra_vars = extra_vars(&args.inv)?;
    let inventory = load_inventory(&args.inv)?;
    // Everything is loaded and checked before any connection; a problem stops here.
    let color = color(&std::io::stderr());
    let playbooks = match crate::playbook::load_and_check(&args.playbooks, &inventory, &extra_vars)
    {
        Ok((playbooks, warnings)) => {
            if !warnings.is_empty() {
                eprint!("{}", CheckReport::new(warnings).render(color));
            }
            playbooks
        }
        Err(report) => {
            eprint!("{}", report.render(color));
            return Ok(exit::ERROR);
        }
    };
    if crate::experiment::source::has_experiments(&playbooks) {
        // Plays with `experiment:` run in the experiment stage, the others here, in order.
        let inv = inventory.clone();
        return super::experiment::run_with_experiments(
            playbooks,
            &inv,
            &args.inv,
            &extra_vars,
            &args.connect,
            &args.out,
            |group| run_engine(&args, inventory.clone(), extra_vars.clone(), group),
        );
    }
    run_engine(&args, inventory, extra_vars, playbooks)
}

/// The engine over `playbooks` with `ferry run`'s options and reporters.
fn run_engine(
    args: &RunArgs,
    inventory: Inventory,
    extra_vars: Vars,
    playbooks: Vec<Playbook>,
) -> CmdResult {
    let hosts: Arc<dyn HostSource> =
        Arc::new(InventoryHosts::new(inventory, args.inv.limit.clone()));
    let opts = RunOptions {
        forks: args.connect.forks,
        check: args.check,
        diff: args.diff,
        tags: args.tags.clone(),
        skip_tags: args.skip_tags.clone(),
        start_at_task: args.start_at_task.clone(),
        strategy: args.strategy,
        force_handlers: args.force_handlers,
        verbosity: args.verbose,
        show_secrets: args.show_secrets,
        extra_vars,
        become_password: become_password(args.connect.ask_become_pass)?,
        default_timeout: None,
        playbook_names: args
            .playbooks
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
    };
    let sink = reporters(args.verbose, args.events.as_deref())
        .map_err(|e| miette!("--events: cannot create the file: {e}"))?;
    let engine = Engine::new(opts, hosts, connector((&args.connect).into()), sink);
    drive(engine, playbooks)
}

/// The reporter for stdout (interactive when stdout is a terminal, plain lines otherwise),
/// plus the JSON lines log when `events` is given.
fn reporters(verbosity: u8, events: Option<&Path>) -> std::io::Result<Arc<dyn EventSink>> {
    use std::io::IsTerminal;
    let mut sinks: Vec<Arc<dyn EventSink>> = Vec::new();
    if std::io::stdout().is_terminal() {
        sinks.push(Arc::new(TerminalReporter::new(verbosity)));
    } else {
        sinks.push(Arc::new(PlainReporter::new(
            Box::new(std::io::stdout()),
            verbosity,
        )));
    }
    if let Some(p) = events {
        sinks.push(Arc::new(JsonlReporter::create(p)?));
    }
    Ok(Arc::new(Fanout(sinks)))
}
