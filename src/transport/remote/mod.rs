//! The client side of the remote shell (`remote_shell.sh`) or of the host's
//! agent in its place (`super::agent`): one exec channel per host, fed framed
//! requests. `files` asks them to put, get and stat files.

use std::time::Duration;

use russh::ChannelMsg;
use russh::client::{Handle, Msg};

use std::sync::atomic::{AtomicU64, Ordering};

use super::{CommandOutput, CommandSpec, TransportError};

mod files;
pub use files::{
    Created, create_file, exists, get_file, make_dirs, parse_stat, parse_stat_read, put_file, stat,
    stat_read,
};

const SCRIPT: &str = include_str!("remote_shell.sh");

static ROUND_TRIPS: AtomicU64 = AtomicU64::new(0);

/// Requests sent to remote shells by this process so far (`ferry bench`
/// prints it per run).
pub fn round_trips() -> u64 {
    ROUND_TRIPS.load(Ordering::Relaxed)
}

/// `'s'`, safe for any POSIX shell.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf))
        .is_err()
    {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (t >> ((i % 16) * 8)) as u8 ^ (std::process::id() as u8).wrapping_add(i as u8);
        }
    }
    hex::encode(buf)
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if hay.len() < needle.len() {
        return None;
    }
    (from..=hay.len() - needle.len()).find(|&i| &hay[i..i + needle.len()] == needle)
}

/// One long-lived shell on a host.
pub struct RemoteShell {
    name: String,
    channel: russh::Channel<Msg>,
    marker: String,
    next_id: u64,
    /// The password the shell holds for sudo's askpass (sent once).
    password_sent: Option<String>,
    /// A request whose answer was not read (its caller was cancelled):
    /// read and dropped before the next one.
    pending: Option<u64>,
    /// A request was cut off while being sent: the shell cannot be trusted.
    broken: bool,
    /// The SSH user: become to this user needs no sudo.
    login_user: String,
    /// Generation of the user/group names the shell caches (see
    /// [`stat_script`]): bumped by every command not ferry's own, since any
    /// command may add, rename or remove users.
    names_epoch: u64,
    /// The agent answers (see [`super::agent`]), not the shell.
    agent: bool,
    agent_refused: Option<String>,
}

/// Why [`RemoteShell::open`] failed.
enum Opened {
    /// The login shell could not exec the agent's file (126, 127).
    NoExec,
    Failed(TransportError),
}

impl RemoteShell {
    /// Opens the exec channel and waits until the shell says it is ready.
    /// With `want_agent`, the host's agent answers instead when it has one,
    /// and is placed there first when it has not (see [`super::agent`]); a
    /// host where it cannot run keeps the shell.
    pub async fn start<H: russh::client::Handler>(
        name: &str,
        login_user: &str,
        handle: &Handle<H>,
        want_agent: bool,
    ) -> Result<Self, TransportError> {
        let opened = match Self::open(name, login_user, handle, want_agent).await {
            // The agent's file is there but could not be run (replaced while
            // starting, or damaged): the shell, which places it again.
            Err(Opened::NoExec) if want_agent => Self::open(name, login_user, handle, false).await,
            other => other,
        };
        let mut shell = opened.map_err(|e| match e {
            Opened::Failed(e) => e,
            Opened::NoExec => TransportError::Unreachable {
                host: name.to_string(),
                reason: "the login shell could not start /bin/sh".into(),
            },
        })?;
        if want_agent && !shell.agent && shell.agent_refused.is_none() {
            shell.install_agent().await?;
        }
        Ok(shell)
    }

    async fn open<H: russh::client::Handler>(
        name: &str,
        login_user: &str,
        handle: &Handle<H>,
        try_agent: bool,
    ) -> Result<Self, Opened> {
        let lost = |reason: String| {
            Opened::Failed(TransportError::Unreachable {
                host: name.to_string(),
                reason,
            })
        };
        let channel = handle
            .channel_open_session()
            .await
            .map_err(|e| lost(format!("cannot open a session channel: {e}")))?;
        let marker = format!("\x1eFERRY{}:", random_hex(16));
        let cmd = start_command(&marker, try_agent);
        channel
            .exec(true, cmd)
            .await
            .map_err(|e| lost(format!("cannot start the remote shell: {e}")))?;
        let mut shell = RemoteShell {
            name: name.to_string(),
            channel,
            marker,
            next_id: 1,
            password_sent: None,
            pending: None,
            broken: false,
            login_user: login_user.to_string(),
            names_epoch: 0,
            agent: false,
            agent_refused: None,
        };
        match shell.wait_ready().await {
            Ok(note) => {
                shell.agent = note == b" agent";
                if note == b" refused" {
                    shell.agent_refused =
                        Some("an earlier connection found it cannot run on this host".into());
                }
                Ok(shell)
            }
            Err((Some(126 | 127), _)) if try_agent => Err(Opened::NoExec),
            Err((_, e)) => Err(lost(e)),
        }
    }

    /// Waits for the ready line: what follows `ready` on it (` agent` from
    /// the agent, ` refused` from a shell on a host that cannot run it).
    async fn wait_ready(&mut self) -> Result<Vec<u8>, (Option<u32>, String)> {
        let ready = format!("{}ready", self.marker);
        let mut out = Vec::new();
        let mut err = Vec::new();
        let started = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                match self.channel.wait().await {
                    Some(ChannelMsg::Data { data }) => {
                        out.extend_from_slice(&data);
                        if let Some(pos) = find(&out, ready.as_bytes(), 0)
                            && let Some(nl) = out[pos..].iter().position(|&b| b == b'\n')
                        {
                            return Ok(out[pos + ready.len()..pos + nl].to_vec());
                        }
                    }
                    Some(ChannelMsg::ExtendedData { data, .. }) => err.extend_from_slice(&data),
                    Some(ChannelMsg::Failure) => {
                        return Err((None, "the server refused to run a command".to_string()));
                    }
                    Some(ChannelMsg::ExitStatus { exit_status }) => {
                        return Err((
                            Some(exit_status),
                            format!(
                                "the remote shell exited with {exit_status}: {}",
                                String::from_utf8_lossy(&err).trim()
                            ),
                        ));
                    }
                    Some(ChannelMsg::Close) | None => {
                        return Err((
                            None,
                            format!(
                                "the channel closed: {}",
                                String::from_utf8_lossy(&err).trim()
                            ),
                        ));
                    }
                    Some(_) => {}
                }
            }
        })
        .await;
        started.unwrap_or_else(|_| Err((None, "the remote shell did not start within 30 s".into())))
    }

    /// Places the agent on the host and replaces this shell with it; a host
    /// that cannot run it keeps the shell (the reason kept in
    /// [`agent_refused`](Self::agent_refused)).
    async fn install_agent(&mut self) -> Result<(), TransportError> {
        let spec = CommandSpec {
            cmd: super::agent::install_script(&random_hex(4)),
            stdin: Some(super::agent::BINARY.to_vec()),
            ..CommandSpec::default()
        };
        let out = self.run(&spec).await?;
        let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.rc != 0 || path.is_empty() || path.contains(char::is_whitespace) {
            self.agent_refused = Some(format!(
                "rc {}: {}",
                out.rc,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            return Ok(());
        }
        self.send(format!("X {path}\n").as_bytes()).await?;
        match self.wait_ready().await {
            Ok(note) if note == b" agent" => {
                self.agent = true;
                Ok(())
            }
            Ok(_) => Err(self.lost("the remote shell did not start the agent")),
            Err((_, e)) => Err(self.lost(format!("starting the agent: {e}"))),
        }
    }

    /// Whether the agent answers on this connection (else the shell does).
    pub fn has_agent(&self) -> bool {
        self.agent
    }

    /// Why the agent was not placed on this host, when it was not.
    pub fn agent_refused(&self) -> Option<&str> {
        self.agent_refused.as_deref()
    }

    fn lost(&self, reason: impl Into<String>) -> TransportError {
        TransportError::Lost {
            host: self.name.clone(),
            reason: reason.into(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), TransportError> {
        self.channel
            .data(bytes)
            .await
            .map_err(|e| self.lost(format!("cannot send to the remote shell: {e}")))
    }

    /// Runs `spec` through the shell: one round trip.
    pub async fn run(&mut self, spec: &CommandSpec) -> Result<CommandOutput, TransportError> {
        self.run_to(spec, None, false).await
    }

    /// Runs one of ferry's own scripts in the shell itself (no fork; see
    /// remote_shell.sh's `I` request): it must end with `return`, never
    /// `exit`, read no stdin and restore the umask it changes.
    async fn run_own(&mut self, script: String) -> Result<CommandOutput, TransportError> {
        self.run_to(&CommandSpec::new(script), None, true).await
    }

    /// As [`run`](Self::run), the shell writing stdin to `dest` itself
    /// (when it can create it) instead of feeding it to the script.
    async fn run_to(
        &mut self,
        spec: &CommandSpec,
        dest: Option<&str>,
        own: bool,
    ) -> Result<CommandOutput, TransportError> {
        self.settle().await?;
        let script = if own {
            spec.cmd.clone()
        } else {
            self.names_epoch += 1;
            command_script(spec, &self.login_user)
        };
        if script.contains('\0') {
            return Err(TransportError::Other {
                host: self.name.clone(),
                reason: "the command contains a NUL byte".into(),
            });
        }
        let mut req =
            Vec::with_capacity(script.len() + 64 + spec.stdin.as_ref().map_or(0, |s| s.len()));
        let become_ = spec.become_.as_ref();
        let password = become_.and_then(|b| b.password.clone());
        if let Some(pw) = &password
            && self.password_sent.as_ref() != Some(pw)
        {
            if pw.contains('\n') {
                return Err(TransportError::Other {
                    host: self.name.clone(),
                    reason: "the become password contains a newline".into(),
                });
            }
            req.extend_from_slice(b"K\n");
            req.extend_from_slice(pw.as_bytes());
            req.push(b'\n');
            self.password_sent = Some(pw.clone());
        }
        let id = self.next_id;
        self.next_id += 1;
        let lines: Vec<&str> = script.split('\n').collect();
        let stdin = spec.stdin.as_deref().unwrap_or(&[]);
        let timeout = spec
            .timeout
            .map_or(0, |t| t.as_secs_f64().ceil().max(1.0) as u64);
        req.extend_from_slice(
            format!(
                "{} {id} {} {} {timeout} {}{}\n",
                if own { 'I' } else { 'R' },
                lines.len(),
                stdin.len(),
                u8::from(password.is_some()),
                dest.map(|d| format!(" {d}")).unwrap_or_default()
            )
            .as_bytes(),
        );
        for l in &lines {
            req.extend_from_slice(l.as_bytes());
            req.push(b'\n');
        }
        req.extend_from_slice(stdin);
        // The shell kills the command at its timeout; this deadline only
        // guards against a dead connection.
        self.exchange(id, &req, spec.timeout.map(|t| t + Duration::from_secs(30)))
            .await
    }

    /// Before a request: refuses when an earlier one was cut off while being
    /// sent, and reads and drops the answer a cancelled caller left.
    async fn settle(&mut self) -> Result<(), TransportError> {
        if self.broken {
            return Err(self.lost("an earlier call was interrupted while sending"));
        }
        if let Some(prev) = self.pending {
            self.collect(prev, None).await?;
            self.pending = None;
        }
        Ok(())
    }

    /// Sends request `id` and reads its answer: one round trip.
    async fn exchange(
        &mut self,
        id: u64,
        req: &[u8],
        deadline: Option<Duration>,
    ) -> Result<CommandOutput, TransportError> {
        self.broken = true;
        ROUND_TRIPS.fetch_add(1, Ordering::Relaxed);
        self.send(req).await?;
        self.broken = false;
        self.pending = Some(id);
        let out = self.collect(id, deadline).await?;
        self.pending = None;
        Ok(out)
    }

    /// One of the agent's own requests (see [`super::agent::request`]).
    async fn ask(
        &mut self,
        fields: &[&[u8]],
        data: &[u8],
    ) -> Result<CommandOutput, TransportError> {
        self.settle().await?;
        let id = self.next_id;
        self.next_id += 1;
        let req = super::agent::request(id, fields, data);
        self.exchange(id, &req, None).await
    }

    /// Reads the answer to request `id`.
    async fn collect(
        &mut self,
        id: u64,
        deadline: Option<Duration>,
    ) -> Result<CommandOutput, TransportError> {
        let out_marker = format!("{}{id} ", self.marker).into_bytes();
        let err_marker = format!("{}{id}\n", self.marker).into_bytes();
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut status: Option<(usize, i32, bool)> = None;
        let mut err_end: Option<usize> = None;
        let wait = async {
            while status.is_none() || err_end.is_none() {
                match self.channel.wait().await {
                    Some(ChannelMsg::Data { data }) => {
                        let from = out.len().saturating_sub(out_marker.len());
                        out.extend_from_slice(&data);
                        if status.is_none()
                            && let Some(pos) = find(&out, &out_marker, from)
                            && let Some(nl) = out[pos..].iter().position(|&b| b == b'\n')
                        {
                            let tail =
                                String::from_utf8_lossy(&out[pos + out_marker.len()..pos + nl])
                                    .to_string();
                            let mut it = tail.split_whitespace();
                            let rc = it.next().and_then(|r| r.parse().ok()).unwrap_or(-1);
                            let t = it.next() == Some("1");
                            status = Some((pos, rc, t));
                        }
                    }
                    Some(ChannelMsg::ExtendedData { data, .. }) => {
                        let from = err.len().saturating_sub(err_marker.len());
                        err.extend_from_slice(&data);
                        if err_end.is_none() {
                            err_end = find(&err, &err_marker, from);
                        }
                    }
                    Some(ChannelMsg::ExitStatus { exit_status }) => {
                        return Err(format!(
                            "the remote shell exited ({exit_status}): {}",
                            String::from_utf8_lossy(&err).trim()
                        ));
                    }
                    Some(ChannelMsg::Eof) | Some(ChannelMsg::Close) | None => {
                        return Err("the remote shell's channel closed".to_string());
                    }
                    Some(_) => {}
                }
            }
            Ok(())
        };
        let res = match deadline {
            Some(t) => tokio::time::timeout(t, wait)
                .await
                .unwrap_or_else(|_| Err("no answer from the remote shell".into())),
            None => wait.await,
        };
        res.map_err(|e| self.lost(e))?;
        let (pos, rc, timed_out) = status.expect("loop ends with a status");
        out.truncate(pos);
        err.truncate(err_end.expect("loop ends with the stderr marker"));
        Ok(CommandOutput {
            rc: if timed_out { -1 } else { rc },
            stdout: out,
            stderr: err,
            timed_out,
        })
    }

    /// Ends the shell and waits until its channel is closed.
    pub async fn close(mut self) {
        let _ = self.channel.data(&b"Q\n"[..]).await;
        let _ = self.channel.eof().await;
        drain(&mut self.channel, Duration::from_secs(5)).await;
        let _ = self.channel.close().await;
    }

    /// The inventory name of the host.
    pub fn host(&self) -> &str {
        &self.name
    }
}

/// The exec command that starts the remote shell, or the agent in its place
/// when `try_agent` (see [`super::agent::start_command`]).
fn start_command(marker: &str, try_agent: bool) -> String {
    let shell = format!(
        "exec /bin/sh -c {} ferry {}",
        sh_quote(SCRIPT),
        sh_quote(marker)
    );
    if try_agent {
        super::agent::start_command(&shell, &sh_quote(marker))
    } else {
        shell
    }
}

/// The shell script a [`CommandSpec`] becomes: chdir, environment, command,
/// wrapped in sudo when it runs as another user than `login_user`.
pub fn command_script(spec: &CommandSpec, login_user: &str) -> String {
    let mut inner = String::new();
    if let Some(cwd) = &spec.cwd {
        inner.push_str(&format!("cd {} || exit 1\n", sh_quote(cwd)));
    }
    for (k, v) in &spec.env {
        inner.push_str(&format!("export {k}={}\n", sh_quote(v)));
    }
    inner.push_str(&spec.cmd);
    match &spec.become_ {
        Some(b) if b.user.as_deref().unwrap_or("root") != login_user => {
            let user = b.user.as_deref().unwrap_or("root");
            let mode = if b.password.is_some() { "-A" } else { "-n" };
            format!(
                "exec sudo {mode} -H -u {} -- /bin/sh -c {}",
                sh_quote(user),
                sh_quote(&inner)
            )
        }
        _ => inner,
    }
}

/// Waits until a channel is fully closed (so it does not count against the
/// server's session limit).
pub(crate) async fn drain(ch: &mut russh::Channel<Msg>, limit: Duration) {
    let _ = tokio::time::timeout(limit, async {
        while let Some(msg) = ch.wait().await {
            if matches!(msg, ChannelMsg::Close) {
                break;
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_command_fits_dropbears_limit() {
        // dropbear ends a session whose command is over 9,000 bytes ("String
        // too long"): the lab's full guest runs dropbear.
        let marker = format!("\x1eFERRY{}:", random_hex(16));
        for try_agent in [false, true] {
            let len = start_command(&marker, try_agent).len();
            assert!(len < 9000, "{len} bytes (agent: {try_agent})");
        }
    }

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn become_wraps_in_sudo_with_askpass_only_when_a_password_is_known() {
        let mut spec = CommandSpec::new("id -un");
        spec.cwd = Some("/tmp".into());
        spec.become_ = Some(super::super::Become {
            user: Some("www".into()),
            password: None,
        });
        assert_eq!(
            command_script(&spec, "www"),
            "cd '/tmp' || exit 1\nid -un",
            "already that user"
        );
        let s = command_script(&spec, "root");
        assert!(
            s.starts_with(
                "exec sudo -n -H -u 'www' -- /bin/sh -c 'cd '\\''/tmp'\\'' || exit 1\nid -un'"
            ),
            "{s}"
        );
    }
}
