//! The SSH transport (russh): one connection per host, and over it one
//! long-lived remote shell (`remote_shell.sh`) fed requests on stdin, so a
//! call is one round trip and no new channel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use russh::Disconnect;
use russh::client::{self, Handle};
use russh::keys::agent::client::AgentClient;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use tokio::sync::Mutex;

use super::known_hosts::KnownHosts;
use super::params::ConnectParams;
use super::remote::{self, RemoteShell};
use super::{CommandOutput, CommandSpec, FileRead, FileSpec, FileStat, Transport, TransportError};

/// Checks the server's key during the handshake.
struct Client {
    name: String,
    host: String,
    port: u16,
    known_hosts: KnownHosts,
    /// Why the key was refused, for a clear error after the handshake fails.
    refusal: Arc<StdMutex<Option<TransportError>>>,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(c) => c.public_key().clone().into(),
        };
        match self
            .known_hosts
            .verify(&self.name, &self.host, self.port, &key)
        {
            Ok(()) => Ok(true),
            Err(e) => {
                *self.refusal.lock().expect("refusal lock") = Some(e);
                Ok(false)
            }
        }
    }
}

/// One host reached over SSH.
pub struct SshTransport {
    name: String,
    /// See [`Transport::endpoint`]: `ssh://address:port`, after its jump hosts'.
    endpoint: String,
    handle: Handle<Client>,
    /// Jump connections this one runs through (kept open as long as it is).
    jumps: Vec<Handle<Client>>,
    shell: Mutex<Option<RemoteShell>>,
    /// Whether the host's agent answers (see `transport::agent`), and why
    /// not when it was wanted and could not be placed.
    agent: bool,
    agent_refused: Option<String>,
}

fn unreachable(name: &str, reason: impl std::fmt::Display) -> TransportError {
    TransportError::Unreachable {
        host: name.to_string(),
        reason: reason.to_string(),
    }
}

/// Opens the connection of `p` (through its jump hosts), authenticates and
/// starts the remote shell.
pub async fn connect(p: &ConnectParams) -> Result<SshTransport, TransportError> {
    Ok(connect_timed(p).await?.0)
}

/// How long each step of opening one connection took (`ferry bench connect`
/// prints them): TCP connect, SSH handshake (key exchange and host key
/// check), authentication, and the remote shell's start (session channel,
/// exec, its ready line). Through jump hosts, `tcp` and `handshake` cover the
/// whole way to the target.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectTimes {
    pub tcp: Duration,
    pub handshake: Duration,
    pub auth: Duration,
    pub shell: Duration,
}

/// Most connections of this process in their opening steps (TCP, key exchange,
/// authentication, remote shell start) at once; the others wait their turn before
/// their connect timeout starts. Opening is CPU on both ends (about 15 ms per
/// connection here): 1,000 hosts opened all at once on a 2-core machine spread that
/// CPU so thin that hundreds missed the 10 s timeout, where 64 at a time open them
/// all. Fewer hosts than this open all at once, as before.
pub const OPENING_AT_ONCE: usize = 64;

fn opening() -> &'static tokio::sync::Semaphore {
    static S: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    S.get_or_init(|| tokio::sync::Semaphore::new(OPENING_AT_ONCE))
}

/// As [`connect`], with the time each step took (from the turn to open, see
/// [`OPENING_AT_ONCE`]).
pub async fn connect_timed(
    p: &ConnectParams,
) -> Result<(SshTransport, ConnectTimes), TransportError> {
    let _turn = opening().acquire().await;
    let (handle, jumps, mut times) = open(p).await?;
    let t = Instant::now();
    let shell = RemoteShell::start(&p.name, &p.user, &handle, p.agent).await?;
    times.shell = t.elapsed();
    let transport = SshTransport {
        name: p.name.clone(),
        endpoint: endpoint(p),
        handle,
        jumps,
        agent: shell.has_agent(),
        agent_refused: shell.agent_refused().map(str::to_string),
        shell: Mutex::new(Some(shell)),
    };
    Ok((transport, times))
}

/// The machine `p` reaches: its address and port as seen from the last jump
/// host (the same address behind another jump host is another machine).
fn endpoint(p: &ConnectParams) -> String {
    let here = format!("ssh://{}:{}", p.host.to_ascii_lowercase(), p.port);
    match &p.jump {
        Some(j) => format!("{} -> {here}", endpoint(j)),
        None => here,
    }
}

/// Key exchanges, most preferred first: curve25519-sha256 before the post-quantum
/// hybrid (mlkem768x25519-sha256, russh's first choice), which costs about three times
/// the CPU per connection on both ends (see docs/bench.md); the rest as russh orders them.
const KEX_ORDER: &[russh::kex::Name] = &[
    russh::kex::CURVE25519,
    russh::kex::CURVE25519_PRE_RFC_8731,
    russh::kex::MLKEM768X25519_SHA256,
    russh::kex::DH_GEX_SHA256,
    russh::kex::DH_G18_SHA512,
    russh::kex::DH_G17_SHA512,
    russh::kex::DH_G16_SHA512,
    russh::kex::DH_G15_SHA512,
    russh::kex::DH_G14_SHA256,
    russh::kex::EXTENSION_SUPPORT_AS_CLIENT,
    russh::kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT,
];

fn config(p: &ConnectParams) -> Arc<client::Config> {
    let preferred = russh::Preferred {
        kex: std::borrow::Cow::Borrowed(KEX_ORDER),
        key: p.known_hosts.preferred_algorithms(&p.host, p.port).into(),
        ..russh::Preferred::DEFAULT
    };
    Arc::new(client::Config {
        nodelay: true,
        keepalive_interval: Some(p.keepalive),
        keepalive_max: 3,
        inactivity_timeout: None,
        preferred,
        ..Default::default()
    })
}

/// An authenticated connection, and the jump connections it runs through.
type Opened = (Handle<Client>, Vec<Handle<Client>>, ConnectTimes);
type OpenFuture<'a> =
    std::pin::Pin<Box<dyn Future<Output = Result<Opened, TransportError>> + Send + 'a>>;

/// An authenticated connection to `p`, and the jump connections under it.
fn open(p: &ConnectParams) -> OpenFuture<'_> {
    Box::pin(async move {
        let refusal = Arc::new(StdMutex::new(None));
        let client = Client {
            name: p.name.clone(),
            host: p.host.clone(),
            port: p.port,
            known_hosts: p.known_hosts.clone(),
            refusal: refusal.clone(),
        };
        let cfg = config(p);
        let target = format!("{}:{}", p.host, p.port);
        let mut times = ConnectTimes::default();
        let start = Instant::now();
        let (res, jumps) = match &p.jump {
            None => {
                let fut = async {
                    let sock = tokio::net::TcpStream::connect(&target).await.map_err(|e| {
                        unreachable(&p.name, format!("cannot connect to {target}: {e}"))
                    })?;
                    times.tcp = start.elapsed();
                    let _ = sock.set_nodelay(true);
                    Ok::<_, TransportError>(client::connect_stream(cfg, sock, client).await)
                };
                let res = tokio::time::timeout(p.connect_timeout, fut)
                    .await
                    .map_err(|_| {
                        unreachable(
                            &p.name,
                            format!(
                                "connect to {target} timed out after {:?}",
                                p.connect_timeout
                            ),
                        )
                    })??;
                (res, Vec::new())
            }
            Some(jump) => {
                let (jh, mut jumps, _) = open(jump).await?;
                let ch = tokio::time::timeout(
                    p.connect_timeout,
                    jh.channel_open_direct_tcpip(p.host.clone(), p.port as u32, "127.0.0.1", 0),
                )
                .await
                .map_err(|_| unreachable(&p.name, format!("jump to {target} timed out")))?
                .map_err(|e| {
                    unreachable(
                        &p.name,
                        format!("jump host {} cannot reach {target}: {e}", jump.name),
                    )
                })?;
                let res = tokio::time::timeout(
                    p.connect_timeout,
                    client::connect_stream(cfg, ch.into_stream(), client),
                )
                .await
                .map_err(|_| {
                    unreachable(&p.name, format!("SSH handshake with {target} timed out"))
                })?;
                jumps.push(jh);
                (res, jumps)
            }
        };
        let mut handle = match res {
            Ok(h) => h,
            Err(e) => {
                if let Some(refused) = refusal.lock().expect("refusal lock").take() {
                    return Err(refused);
                }
                return Err(unreachable(
                    &p.name,
                    format!("SSH handshake with {target} failed: {e}"),
                ));
            }
        };
        times.handshake = start.elapsed() - times.tcp;
        let t = Instant::now();
        authenticate(p, &mut handle).await?;
        times.auth = t.elapsed();
        Ok((handle, jumps, times))
    })
}

/// Passphrases typed once per key file, for every host of the run.
fn passphrases() -> &'static StdMutex<HashMap<std::path::PathBuf, String>> {
    static P: OnceLock<StdMutex<HashMap<std::path::PathBuf, String>>> = OnceLock::new();
    P.get_or_init(Default::default)
}

async fn authenticate(
    p: &ConnectParams,
    handle: &mut Handle<Client>,
) -> Result<(), TransportError> {
    let mut tried = Vec::new();
    let rsa_hash = handle
        .best_supported_rsa_hash()
        .await
        .ok()
        .flatten()
        .flatten();
    // Unencrypted key files first (no prompt), then the agent, then encrypted keys.
    let mut encrypted = Vec::new();
    for f in &p.identity_files {
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                tried.push(format!("{}: {e}", f.display()));
                continue;
            }
        };
        match russh::keys::decode_secret_key(&text, None) {
            Ok(key) => {
                if try_key(p, handle, key, rsa_hash).await? {
                    return Ok(());
                }
                tried.push(format!("{} (refused)", f.display()));
            }
            Err(russh::keys::Error::KeyIsEncrypted) => encrypted.push((f.clone(), text)),
            Err(e) => tried.push(format!("{}: {e}", f.display())),
        }
    }
    if let Some(sock) = &p.agent_socket {
        match AgentClient::connect_uds(sock).await {
            Ok(mut agent) => {
                let ids = agent.request_identities().await.unwrap_or_default();
                for id in ids {
                    let key = match &id {
                        russh::keys::agent::AgentIdentity::PublicKey { key, .. } => key.clone(),
                        _ => continue,
                    };
                    let hash = if key.algorithm().is_rsa() {
                        rsa_hash
                    } else {
                        None
                    };
                    match handle
                        .authenticate_publickey_with(p.user.clone(), key, hash, &mut agent)
                        .await
                    {
                        Ok(r) if r.success() => return Ok(()),
                        _ => {}
                    }
                }
                tried.push("ssh-agent keys (refused)".into());
            }
            Err(e) => tried.push(format!("ssh-agent: {e}")),
        }
    }
    for (f, text) in encrypted {
        let known = passphrases()
            .lock()
            .expect("passphrase lock")
            .get(&f)
            .cloned();
        let pass = match known {
            Some(p) => p,
            None => {
                let f2 = f.clone();
                let asked = tokio::task::spawn_blocking(move || {
                    // One prompt at a time, and once per key for the whole run.
                    let mut map = passphrases().lock().expect("passphrase lock");
                    if let Some(p) = map.get(&f2) {
                        return Ok(p.clone());
                    }
                    let p = super::prompt::read_secret(&format!(
                        "Passphrase for key {}: ",
                        f2.display()
                    ))?;
                    map.insert(f2, p.clone());
                    Ok::<_, std::io::Error>(p)
                })
                .await
                .map_err(|e| unreachable(&p.name, e))?;
                match asked {
                    Ok(p) => p,
                    Err(e) => {
                        tried.push(format!("{} is encrypted and its passphrase could not be asked ({e}); add it to ssh-agent", f.display()));
                        continue;
                    }
                }
            }
        };
        match russh::keys::decode_secret_key(&text, Some(&pass)) {
            Ok(key) => {
                if try_key(p, handle, key, rsa_hash).await? {
                    return Ok(());
                }
                tried.push(format!("{} (refused)", f.display()));
            }
            Err(e) => {
                passphrases().lock().expect("passphrase lock").remove(&f);
                tried.push(format!("{}: wrong passphrase? ({e})", f.display()));
            }
        }
    }
    Err(unreachable(
        &p.name,
        format!(
            "authentication as {} failed; tried: {}",
            p.user,
            if tried.is_empty() {
                "no key (give ansible_ssh_private_key_file or --private-key, or start ssh-agent)"
                    .to_string()
            } else {
                tried.join(", ")
            }
        ),
    ))
}

async fn try_key(
    p: &ConnectParams,
    handle: &mut Handle<Client>,
    key: PrivateKey,
    rsa_hash: Option<russh::keys::HashAlg>,
) -> Result<bool, TransportError> {
    let key = PrivateKeyWithHashAlg::new(Arc::new(key), rsa_hash);
    match handle.authenticate_publickey(p.user.clone(), key).await {
        Ok(r) => Ok(r.success()),
        Err(e) => Err(unreachable(&p.name, format!("authentication failed: {e}"))),
    }
}

impl SshTransport {
    /// Whether the host's agent answers this connection's requests (else
    /// the remote shell does).
    pub fn has_agent(&self) -> bool {
        self.agent
    }

    /// Why the agent could not be placed on the host, when it was wanted.
    pub fn agent_refused(&self) -> Option<&str> {
        self.agent_refused.as_deref()
    }

    async fn with_shell<T>(
        &self,
        f: impl AsyncFnOnce(&mut RemoteShell) -> Result<T, TransportError>,
    ) -> Result<T, TransportError> {
        let mut guard = self.shell.lock().await;
        let shell = guard.as_mut().ok_or_else(|| TransportError::Lost {
            host: self.name.clone(),
            reason: "the connection was closed".into(),
        })?;
        let res = f(shell).await;
        if matches!(res, Err(TransportError::Lost { .. })) {
            // The shell is gone; later calls fail fast.
            if let Some(s) = guard.take() {
                s.close().await;
            }
        }
        res
    }
}

#[async_trait]
impl Transport for SshTransport {
    fn host(&self) -> &str {
        &self.name
    }
    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    async fn run(&self, spec: &CommandSpec) -> Result<CommandOutput, TransportError> {
        self.with_shell(async |s| s.run(spec).await).await
    }

    async fn put_file(&self, spec: &FileSpec) -> Result<(), TransportError> {
        self.with_shell(async |s| remote::put_file(s, spec).await)
            .await
    }

    async fn get_file(&self, path: &str) -> Result<Vec<u8>, TransportError> {
        self.with_shell(async |s| remote::get_file(s, path).await)
            .await
    }

    async fn stat(&self, path: &str) -> Result<FileStat, TransportError> {
        self.with_shell(async |s| remote::stat(s, path).await).await
    }

    async fn exists(&self, path: &str) -> Result<bool, TransportError> {
        self.with_shell(async |s| remote::exists(s, path).await)
            .await
    }

    async fn stat_read(&self, path: &str) -> Result<FileRead, TransportError> {
        self.with_shell(async |s| remote::stat_read(s, path).await)
            .await
    }

    async fn create_file(&self, spec: &FileSpec) -> Result<Option<FileStat>, TransportError> {
        let created = self
            .with_shell(async |s| remote::create_file(s, spec).await)
            .await?;
        match created {
            remote::Created::Written => Ok(None),
            remote::Created::NotWritten(st) => Ok(Some(st)),
            remote::Created::CannotInline => {
                let st = self.stat(&spec.path).await?;
                if st.exists {
                    return Ok(Some(st));
                }
                let ps = self.stat(&super::parent_dir(&spec.path)).await?;
                if !ps.is_dir && !ps.is_link {
                    return Ok(Some(st));
                }
                self.put_file(spec).await?;
                Ok(None)
            }
        }
    }

    async fn make_dirs(&self, path: &str) -> Result<CommandOutput, TransportError> {
        self.with_shell(async |s| remote::make_dirs(s, path).await)
            .await
    }

    async fn close(&self) {
        if let Some(s) = self.shell.lock().await.take() {
            s.close().await;
        }
        let _ = self
            .handle
            .disconnect(Disconnect::ByApplication, "", "en")
            .await;
        for j in self.jumps.iter().rev() {
            let _ = j.disconnect(Disconnect::ByApplication, "", "en").await;
        }
    }
}
