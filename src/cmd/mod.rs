//! The command layer: one handler per `ferry` subcommand, between `cli` (what was typed)
//! and the library (what it means). Handlers load inputs, choose reporters, call the
//! library and print; everything below this layer returns values and emits events.
//!
//! Each handler returns a [`CmdResult`](crate::CmdResult): an exit code, or one error
//! report for `main` to print.

pub mod bench_check;
pub mod bench_connect;
pub mod bench_experiment;
pub mod bench_peers;
pub mod bench_provision;
pub mod bench_report;
pub mod bench_tree;
pub mod check;
pub mod exec;
pub mod experiment;
pub mod facts;
pub mod inventory;
pub mod lab;
pub mod report;
pub mod run;

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use miette::{IntoDiagnostic, miette};
use serde_json::Value;

use crate::CmdResult;
use crate::cli::{ConnectOpts, InventoryOpts};
use crate::engine::{ConnectFuture, Connector, Engine, HostSource, InventoryHosts};
use crate::inventory::Inventory;
use crate::playbook::{Playbook, Vars};
use crate::transport::{self, ConnectDefaults, ConnectParams};

/// The inventories given with `-i` (merged).
fn load_inventory(opts: &InventoryOpts) -> miette::Result<Inventory> {
    Inventory::load(&opts.inventory).map_err(miette::Report::new)
}

/// The inventories given with `-i` (merged), with `--limit` applied to every play.
/// With no `-i`, an empty inventory: only `localhost` (implicit, local) can be targeted.
fn load_hosts(opts: &InventoryOpts) -> miette::Result<Arc<dyn HostSource>> {
    Ok(Arc::new(InventoryHosts::new(
        load_inventory(opts)?,
        opts.limit.clone(),
    )))
}

/// `-e`/`--extra-vars`, read by `crate::vars`.
fn extra_vars(opts: &InventoryOpts) -> miette::Result<Vars> {
    crate::vars::parse_extra_vars(&opts.extra_vars).map_err(miette::Report::new)
}

impl From<&ConnectOpts> for ConnectDefaults {
    fn from(opts: &ConnectOpts) -> Self {
        ConnectDefaults {
            private_key: opts.private_key.clone(),
            known_hosts: opts.known_hosts.clone(),
            accept_new_host_keys: opts.accept_new_host_keys,
            connect_timeout: std::time::Duration::from_secs(opts.connect_timeout),
            user: opts.user.clone(),
        }
    }
}

/// Opens each host's transport from its variables: SSH (russh, one connection and
/// one remote shell per host), or local for `ansible_connection: local` / `localhost`.
fn connector(defaults: ConnectDefaults) -> Arc<dyn Connector> {
    Arc::new(move |host: &str, vars: &Vars| -> ConnectFuture {
        let mut vars = vars.clone();
        if host == "localhost" && !vars.contains_key("ansible_host") {
            vars.entry("ansible_connection".to_string())
                .or_insert_with(|| Value::String("local".into()));
        }
        let params = ConnectParams::from_host_vars(host, &vars, &defaults);
        Box::pin(async move { transport::connect(&params?).await })
    })
}

/// The one tokio runtime a command runs on.
fn runtime() -> miette::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .into_diagnostic()
}

/// `-K`: ask for the become password on the terminal.
fn become_password(ask: bool) -> miette::Result<Option<String>> {
    if !ask {
        return Ok(None);
    }
    crate::transport::prompt::read_secret("BECOME password: ")
        .map(Some)
        .map_err(|e| miette!("-K: cannot read the become password: {e}"))
}

/// Whether output written to `stream` may be coloured: a terminal, and `NO_COLOR` unset.
fn color(stream: &impl IsTerminal) -> bool {
    stream.is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Run the engine with Ctrl-C and SIGTERM handling: the first stops new tasks
/// (the running ones finish, the recap is printed; exit 130, or 143 for
/// SIGTERM), the second exits at once.
fn drive(engine: Engine, playbooks: Vec<Playbook>) -> CmdResult {
    let rt = runtime()?;
    rt.block_on(async move {
        let flag = engine.interrupt_flag();
        let interrupt = flag.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupt.store(true, Ordering::SeqCst);
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(crate::exit::INTERRUPTED.into());
                }
            }
        });
        let terminated = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let term = terminated.clone();
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                tokio::spawn(async move {
                    if sigterm.recv().await.is_some() {
                        term.store(true, Ordering::SeqCst);
                        flag.store(true, Ordering::SeqCst);
                        if sigterm.recv().await.is_some() {
                            std::process::exit(crate::exit::TERMINATED.into());
                        }
                    }
                });
            }
            Err(e) => return Err(miette!("cannot handle SIGTERM: {e}")),
        }
        let code = engine.run(&playbooks).await;
        Ok(
            if code == crate::exit::INTERRUPTED && terminated.load(Ordering::SeqCst) {
                crate::exit::TERMINATED
            } else {
                code
            },
        )
    })
}
