//! `ferry run` and `ferry exec`.
//!
//! Everything is loaded and checked before any connection; then the engine runs with
//! the reporters for stdout (and `--events`), Ctrl-C stops starting new tasks (exit 130).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use miette::{IntoDiagnostic, miette};
use serde_json::Value;

use super::{ConnectFuture, Connector, Engine, HostSource, InventoryHosts, RunOptions, Strategy};
use crate::CmdResult;
use crate::cli::{ConnectOpts, ExecArgs, InventoryOpts, RunArgs};
use crate::inventory::Inventory;
use crate::playbook::diag::CheckReport;
use crate::playbook::{Play, Playbook, Task, TaskItem, Vars};
use crate::report;
use crate::transport::{self, ConnectParams};
use std::io::IsTerminal;

/// The inventories given with `-i` (merged).
fn load_inventory(opts: &InventoryOpts) -> miette::Result<Inventory> {
    Inventory::load(&opts.inventory).map_err(miette::Report::new)
}

/// The inventories given with `-i` (merged), with `--limit` applied to every play.
/// With no `-i`, an empty inventory: only `localhost` (implicit, local) can be targeted.
pub(crate) fn load_hosts(opts: &InventoryOpts) -> miette::Result<Arc<dyn HostSource>> {
    Ok(Arc::new(InventoryHosts::new(
        load_inventory(opts)?,
        opts.limit.clone(),
    )))
}

/// `-e`/`--extra-vars`, read by `crate::vars`.
fn extra_vars(opts: &InventoryOpts) -> miette::Result<Vars> {
    crate::vars::parse_extra_vars(&opts.extra_vars).map_err(miette::Report::new)
}

/// Opens each host's transport from its variables: SSH (russh, one connection and
/// one remote shell per host), or local for `ansible_connection: local` / `localhost`.
pub(crate) fn connector(opts: &ConnectOpts) -> Arc<dyn Connector> {
    let opts = opts.clone();
    Arc::new(move |host: &str, vars: &Vars| -> ConnectFuture {
        let mut vars = vars.clone();
        if host == "localhost" && !vars.contains_key("ansible_host") {
            vars.entry("ansible_connection".to_string())
                .or_insert_with(|| Value::String("local".into()));
        }
        let params = ConnectParams::from_host_vars(host, &vars, &opts);
        Box::pin(async move { transport::connect(&params?).await })
    })
}

fn runtime() -> miette::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .into_diagnostic()
}

fn become_password(ask: bool) -> miette::Result<Option<String>> {
    if !ask {
        return Ok(None);
    }
    crate::transport::prompt::read_secret("BECOME password: ")
        .map(Some)
        .map_err(|e| miette!("-K: cannot read the become password: {e}"))
}

/// Run the engine with Ctrl-C handling: the first stops new tasks, the second exits at once.
fn drive(engine: Engine, playbooks: Vec<Playbook>) -> CmdResult {
    let rt = runtime()?;
    rt.block_on(async move {
        let flag = engine.interrupt_flag();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                flag.store(true, Ordering::SeqCst);
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
        Ok(engine.run(&playbooks).await)
    })
}

pub fn run(args: RunArgs) -> CmdResult {
    // A bad --strategy is an error before anything is loaded.
    args.strategy
        .parse::<Strategy>()
        .map_err(|e: String| miette!("{e}"))?;
    let extra_vars = extra_vars(&args.inv)?;
    let inventory = load_inventory(&args.inv)?;
    // Everything is loaded and checked before any connection; a problem stops here.
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
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
            return Ok(1);
        }
    };
    if crate::experiment::command::has_experiments(&playbooks) {
        // Plays with `experiment:` run in the experiment stage, the others here, in order.
        let inv = inventory.clone();
        return crate::experiment::command::run_with_experiments(
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
    let strategy: Strategy = args.strategy.parse().map_err(|e: String| miette!("{e}"))?;
    let hosts: Arc<dyn HostSource> =
        Arc::new(InventoryHosts::new(inventory, args.inv.limit.clone()));
    let opts = RunOptions {
        forks: args.connect.forks.unwrap_or(50),
        check: args.check,
        diff: args.diff,
        tags: args.tags.clone(),
        skip_tags: args.skip_tags.clone(),
        start_at_task: args.start_at_task.clone(),
        strategy,
        force_handlers: args.force_handlers,
        verbosity: args.verbose,
        extra_vars,
        become_password: become_password(args.connect.ask_become_pass)?,
        default_timeout: None,
        playbook_names: args
            .playbooks
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
    };
    let sink = report::for_run(args.verbose, args.events.as_deref())
        .map_err(|e| miette!("--events: cannot create the file: {e}"))?;
    let engine = Engine::new(opts, hosts, connector(&args.connect), sink);
    drive(engine, playbooks)
}

/// The one-task playbook `ferry exec` runs: one word is a shell line, several are argv.
pub fn adhoc_playbook(
    pattern: &str,
    command: &[String],
    become_: bool,
    timeout: Option<u64>,
) -> Playbook {
    let mut task = Task {
        name: Some(command.join(" ")),
        ..Task::default()
    };
    if command.len() == 1 {
        task.op = "shell".into();
        task.args
            .insert("_raw_params".into(), Value::String(command[0].clone()));
    } else {
        task.op = "command".into();
        task.args.insert(
            "argv".into(),
            Value::Array(command.iter().cloned().map(Value::String).collect()),
        );
    }
    task.keywords.become_ = Some(become_);
    task.keywords.timeout = timeout.map(|t| t as f64);
    Playbook {
        path: PathBuf::from("<exec>"),
        plays: vec![Play {
            name: Some(format!("exec on {pattern}")),
            hosts: pattern.to_string(),
            gather_facts: Some(false),
            tasks: vec![TaskItem::Task(task)],
            ..Play::default()
        }],
    }
}

pub fn exec(args: ExecArgs) -> CmdResult {
    let extra_vars = extra_vars(&args.inv)?;
    let hosts = load_hosts(&args.inv)?;
    let playbook = adhoc_playbook(&args.pattern, &args.command, args.become_, args.timeout);
    let opts = RunOptions {
        forks: args.connect.forks.unwrap_or(50),
        extra_vars,
        become_password: become_password(args.connect.ask_become_pass)?,
        default_timeout: args.timeout.map(Duration::from_secs),
        ..RunOptions::default()
    };
    let sink: Arc<dyn crate::engine::EventSink> = Arc::new(report::AdhocReporter::stdout());
    let engine = Engine::new(opts, hosts, connector(&args.connect), sink);
    drive(engine, vec![playbook])
}
