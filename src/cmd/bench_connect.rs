//! `ferry bench connect`: ferry's connect path against a bare russh client, in one run.
//!
//! On the same hosts (a lab it brings up, or `-i INV`), each round opens every host's
//! connection at once twice: once as a bare russh client does it (one key decoded up
//! front, curve25519-sha256, no host key check, one exec channel running `true`), once
//! through ferry's own path (host variables -> `ConnectParams`, known_hosts check,
//! authentication, the remote shell, `true` run through it). It prints each side's wall
//! time and the median and slowest time of every step, so the difference between the two
//! is ferry's own cost.

use std::sync::Arc;
use std::time::{Duration, Instant};

use miette::{IntoDiagnostic, miette};
use russh::ChannelMsg;
use russh::client;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};

use crate::CmdResult;
use crate::cli::{BenchConnectArgs, InventoryOpts};
use crate::transport::ssh::{self, ConnectTimes};
use crate::transport::{CommandSpec, ConnectDefaults, ConnectParams, Transport, TransportError};
use crate::vars::Vars;

use super::bench_provision::{on_inventory_or_lab, usage};

/// Accepts any host key: the bare client's reference point does no check at all.
struct AnyKey;

impl client::Handler for AnyKey {
    type Error = russh::Error;
    async fn check_server_key(
        &mut self,
        _key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// Why one benchmark connection failed (a round stops at the first).
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    #[error("{target}: {source}")]
    Tcp {
        target: String,
        source: std::io::Error,
    },
    #[error("{target}: {step}: {source}")]
    Ssh {
        target: String,
        step: &'static str,
        source: russh::Error,
    },
    #[error("{target}: key refused")]
    KeyRefused { target: String },
    #[error("{target}: `true` exited with {status}")]
    Exit { target: String, status: String },
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Join(#[from] tokio::task::JoinError),
}

/// One connection's steps; `command` is `true` run on the host.
#[derive(Debug, Clone, Copy, Default)]
struct Steps {
    connect: ConnectTimes,
    command: Duration,
}

/// One connection of the bare client: TCP, handshake, auth, exec `true` on a session channel.
async fn bare_one(
    target: String,
    user: String,
    key: Arc<PrivateKey>,
) -> Result<Steps, ConnectError> {
    let start = Instant::now();
    let mut steps = Steps::default();
    let tcp = |source| ConnectError::Tcp {
        target: target.clone(),
        source,
    };
    let ssh = |step| {
        let target = target.clone();
        move |source| ConnectError::Ssh {
            target,
            step,
            source,
        }
    };
    let sock = tokio::net::TcpStream::connect(&target).await.map_err(tcp)?;
    sock.set_nodelay(true).map_err(tcp)?;
    steps.connect.tcp = start.elapsed();
    let cfg = Arc::new(client::Config {
        nodelay: true,
        preferred: russh::Preferred {
            kex: std::borrow::Cow::Borrowed(&[russh::kex::CURVE25519]),
            ..russh::Preferred::DEFAULT
        },
        ..Default::default()
    });
    let mut h = client::connect_stream(cfg, sock, AnyKey)
        .await
        .map_err(ssh("handshake"))?;
    steps.connect.handshake = start.elapsed() - steps.connect.tcp;
    let t = Instant::now();
    let auth = h
        .authenticate_publickey(user, PrivateKeyWithHashAlg::new(key, None))
        .await
        .map_err(ssh("auth"))?;
    if !auth.success() {
        return Err(ConnectError::KeyRefused { target });
    }
    steps.connect.auth = t.elapsed();
    let t = Instant::now();
    let mut ch = h.channel_open_session().await.map_err(ssh("channel"))?;
    ch.exec(true, "true").await.map_err(ssh("exec"))?;
    let mut rc = None;
    while let Some(msg) = ch.wait().await {
        if let ChannelMsg::ExitStatus { exit_status } = msg {
            rc = Some(exit_status);
        }
    }
    steps.command = t.elapsed();
    let _ = h
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await;
    match rc {
        Some(0) => Ok(steps),
        other => Err(ConnectError::Exit {
            target,
            status: format!("{other:?}"),
        }),
    }
}

/// One connection through ferry's path: the connector's parameters, connect (with the
/// remote shell), `true` through the shell.
async fn ferry_one(name: String, vars: Vars) -> Result<Steps, ConnectError> {
    let p = ConnectParams::from_host_vars(&name, &vars, &ConnectDefaults::default())?;
    let (t, connect) = ssh::connect_timed(&p).await?;
    let start = Instant::now();
    let out = t.run(&CommandSpec::new("true")).await?;
    let command = start.elapsed();
    t.close().await;
    if out.rc != 0 {
        return Err(ConnectError::Exit {
            target: name,
            status: out.rc.to_string(),
        });
    }
    Ok(Steps { connect, command })
}

/// Wall time and CPU time of running every future at once, and each one's steps.
async fn all_at_once<F>(futs: Vec<F>) -> Result<(f64, f64, Vec<Steps>), ConnectError>
where
    F: Future<Output = Result<Steps, ConnectError>> + Send + 'static,
{
    let cpu0 = usage().1;
    let start = Instant::now();
    let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
    let mut steps = Vec::with_capacity(handles.len());
    for h in handles {
        steps.push(h.await??);
    }
    Ok((start.elapsed().as_secs_f64(), usage().1 - cpu0, steps))
}

/// `median / max` of one step, in ms.
fn spread(steps: &[Steps], f: impl Fn(&Steps) -> Duration) -> String {
    let mut v: Vec<f64> = steps.iter().map(|s| f(s).as_secs_f64() * 1e3).collect();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return "-".into();
    }
    format!("{:.1}/{:.1}", v[v.len() / 2], v[v.len() - 1])
}

fn print_row(side: &str, round: u32, wall: f64, cpu: f64, steps: &[Steps]) {
    println!(
        "{side:<6} round {round}: wall {wall:.3} s, controller CPU {cpu:.2} s; ms median/max: tcp {}, handshake {}, auth {}, shell start {}, `true` {}",
        spread(steps, |s| s.connect.tcp),
        spread(steps, |s| s.connect.handshake),
        spread(steps, |s| s.connect.auth),
        spread(steps, |s| s.connect.shell),
        spread(steps, |s| s.command),
    );
}

pub fn connect(args: BenchConnectArgs) -> CmdResult {
    on_inventory_or_lab(&args.inventory, args.hosts, |inv| connect_on(&args, inv))
}

fn connect_on(args: &BenchConnectArgs, inventory: &[std::path::PathBuf]) -> CmdResult {
    let inv = InventoryOpts {
        inventory: inventory.to_vec(),
        ..InventoryOpts::default()
    };
    let hosts = super::load_hosts(&inv)?;
    let names = hosts
        .select("all")
        .map_err(|e| miette!("{}: {e}", inventory[0].display()))?;
    // The bare client's inputs, made before the clock starts: address, user, one key.
    let mut bare = Vec::new();
    let mut key: Option<Arc<PrivateKey>> = None;
    for n in &names {
        let p = ConnectParams::from_host_vars(n, &hosts.host_vars(n), &ConnectDefaults::default())
            .map_err(|e| miette!("{e}"))?;
        if key.is_none() {
            let f = p
                .identity_files
                .first()
                .ok_or_else(|| miette!("{n}: no private key file to connect with"))?;
            let text = std::fs::read_to_string(f).into_diagnostic()?;
            let k = russh::keys::decode_secret_key(&text, None)
                .map_err(|e| miette!("{}: {e}", f.display()))?;
            key = Some(Arc::new(k));
        }
        bare.push((format!("{}:{}", p.host, p.port), p.user.clone()));
    }
    let key = key.ok_or_else(|| miette!("no hosts in the inventory"))?;
    let rt = super::runtime()?;
    println!(
        "bench connect: {} hosts, all at once; bare russh client vs ferry's connect path, {} rounds",
        names.len(),
        args.rounds
    );
    for round in 1..=args.rounds {
        let futs: Vec<_> = bare
            .iter()
            .map(|(t, u)| bare_one(t.clone(), u.clone(), key.clone()))
            .collect();
        let (wall, cpu, steps) = rt.block_on(all_at_once(futs)).map_err(|e| miette!("{e}"))?;
        print_row("bare", round, wall, cpu, &steps);
        let futs: Vec<_> = names
            .iter()
            .map(|n| ferry_one(n.clone(), hosts.host_vars(n)))
            .collect();
        let (wall, cpu, steps) = rt.block_on(all_at_once(futs)).map_err(|e| miette!("{e}"))?;
        print_row("ferry", round, wall, cpu, &steps);
    }
    Ok(crate::exit::OK)
}
