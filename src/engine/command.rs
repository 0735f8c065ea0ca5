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

use super::{ConnectFuture, Connector, Engine, HostSource, RunOptions, Strategy};
use crate::CmdResult;
use crate::cli::{ConnectOpts, ExecArgs, InventoryOpts, RunArgs};
use crate::playbook::{Play, Playbook, Task, TaskItem, Vars};
use crate::report;
use crate::transport::{self, ConnectParams};

/// The inventories given with `-i` (merged), with `--limit` applied to every play.
/// With no `-i`, an empty inventory: only `localhost` (implicit, local) can be targeted.
pub(crate) fn load_hosts(opts: &InventoryOpts) -> miette::Result<Arc<dyn HostSource>> {
    let inv = crate::inventory::Inventory::load(&opts.inventory).map_err(miette::Report::new)?;
    Ok(Arc::new(super::InventoryHosts::new(
        inv,
        opts.limit.clone(),
    )))
}

/// SEAM(integration): `playbook::load_and_check(paths, &inventory, &extra_vars)`.
fn load_playbooks(paths: &[PathBuf]) -> miette::Result<Vec<Playbook>> {
    Err(miette!(
        "playbook loading is wired at integration (playbooks {paths:?})"
    ))
}

/// SEAM(integration): `-e` parsing belongs with `crate::vars`; this reads `k=v` words,
/// inline YAML/JSON mappings and `@file.yml`.
pub fn parse_extra_vars(items: &[String]) -> miette::Result<Vars> {
    let mut vars = Vars::new();
    for item in items {
        let text = if let Some(path) = item.strip_prefix('@') {
            std::fs::read_to_string(path)
                .map_err(|e| miette!("-e @{path}: cannot read the file: {e}"))?
        } else {
            item.clone()
        };
        let t = text.trim_start();
        if item.starts_with('@') || t.starts_with('{') || t.starts_with("---") {
            let v: Value = serde_saphyr::from_str(&text)
                .map_err(|e| miette!("-e {item}: not a YAML/JSON mapping: {e}"))?;
            match v {
                Value::Object(m) => vars.extend(m),
                _ => return Err(miette!("-e {item}: must be a mapping of variables")),
            }
        } else {
            for word in text.split_whitespace() {
                let (k, v) = word.split_once('=').ok_or_else(|| {
                    miette!("-e `{word}`: expected key=value, a YAML mapping, or @file.yml")
                })?;
                vars.insert(k.to_string(), Value::String(v.to_string()));
            }
        }
    }
    Ok(vars)
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
    let strategy: Strategy = args.strategy.parse().map_err(|e: String| miette!("{e}"))?;
    let extra_vars = parse_extra_vars(&args.inv.extra_vars)?;
    let hosts = load_hosts(&args.inv)?;
    let playbooks = load_playbooks(&args.playbooks)?;
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
    let extra_vars = parse_extra_vars(&args.inv.extra_vars)?;
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
