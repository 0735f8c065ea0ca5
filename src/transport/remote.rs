//! The client side of the remote shell (`remote_shell.sh`): one exec channel
//! per host, fed framed requests; and the scripts that put, get and stat
//! files through it.

use std::time::Duration;

use russh::ChannelMsg;
use russh::client::{Handle, Msg};

use std::sync::atomic::{AtomicU64, Ordering};

use super::{CommandOutput, CommandSpec, FileRead, FileSpec, FileStat, TransportError, parent_dir};

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
}

impl RemoteShell {
    /// Opens the exec channel and waits until the shell says it is ready.
    pub async fn start<H: russh::client::Handler>(
        name: &str,
        login_user: &str,
        handle: &Handle<H>,
    ) -> Result<Self, TransportError> {
        let lost = |reason: String| TransportError::Unreachable {
            host: name.to_string(),
            reason,
        };
        let channel = handle
            .channel_open_session()
            .await
            .map_err(|e| lost(format!("cannot open a session channel: {e}")))?;
        let marker = format!("\x1eFERRY{}:", random_hex(16));
        let cmd = format!(
            "exec /bin/sh -c {} ferry {}",
            sh_quote(SCRIPT),
            sh_quote(&marker)
        );
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
        };
        let ready = format!("{}ready\n", shell.marker);
        let mut out = Vec::new();
        let mut err = Vec::new();
        let started = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                match shell.channel.wait().await {
                    Some(ChannelMsg::Data { data }) => {
                        out.extend_from_slice(&data);
                        if find(&out, ready.as_bytes(), 0).is_some() {
                            return Ok(());
                        }
                    }
                    Some(ChannelMsg::ExtendedData { data, .. }) => err.extend_from_slice(&data),
                    Some(ChannelMsg::Failure) => {
                        return Err("the server refused to run a command".to_string());
                    }
                    Some(ChannelMsg::ExitStatus { exit_status }) => {
                        return Err(format!(
                            "the remote shell exited with {exit_status}: {}",
                            String::from_utf8_lossy(&err).trim()
                        ));
                    }
                    Some(ChannelMsg::Close) | None => {
                        return Err(format!(
                            "the channel closed: {}",
                            String::from_utf8_lossy(&err).trim()
                        ));
                    }
                    Some(_) => {}
                }
            }
        })
        .await;
        match started {
            Ok(Ok(())) => Ok(shell),
            Ok(Err(e)) => Err(lost(e)),
            Err(_) => Err(lost("the remote shell did not start within 30 s".into())),
        }
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
        if self.broken {
            return Err(self.lost("an earlier call was interrupted while sending"));
        }
        if let Some(prev) = self.pending {
            self.collect(prev, None).await?;
            self.pending = None;
        }
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
        self.broken = true;
        ROUND_TRIPS.fetch_add(1, Ordering::Relaxed);
        self.send(&req).await?;
        self.broken = false;
        self.pending = Some(id);
        // The shell kills the command at its timeout; this deadline only
        // guards against a dead connection.
        let out = self
            .collect(id, spec.timeout.map(|t| t + Duration::from_secs(30)))
            .await?;
        self.pending = None;
        Ok(out)
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

fn failed(shell: &RemoteShell, what: &str, out: &CommandOutput) -> TransportError {
    TransportError::Other {
        host: shell.host().to_string(),
        reason: format!(
            "{what} failed (rc {}): {}",
            out.rc,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    }
}

/// Writes a file atomically: temp file in the same directory, fsync, mode,
/// owner, rename.
pub async fn put_file(shell: &mut RemoteShell, spec: &FileSpec) -> Result<(), TransportError> {
    let path = spec.path.trim_end_matches('/');
    let (dir, base) = match path.rsplit_once('/') {
        Some(("", b)) => ("/".to_string(), b),
        Some((d, b)) => (d.to_string(), b),
        None => (".".to_string(), path),
    };
    let tmp = format!(
        "{}/.{base}.ferry-{}",
        dir.trim_end_matches('/'),
        random_hex(6)
    );
    // Without become, the shell writes the content straight into the temp
    // file (no copy); with it, the script (run by sudo) writes it.
    let direct = spec.become_.is_none() && !tmp.contains(['\n', '\r']) && tmp.trim() == tmp;
    let p = sh_quote(path);
    let mut s = format!("t={}\ntrap 'rm -f \"$t\"' EXIT\n", sh_quote(&tmp));
    if direct {
        s.push_str(&format!(
            "[ -f \"$t\" ] || {{ echo {} >&2; exit 1; }}\nsync \"$t\" 2>/dev/null\n",
            sh_quote(&format!(
                "cannot write a file in {dir} (not writable, or the disk is full)"
            ))
        ));
    } else {
        s.push_str("dd of=\"$t\" bs=65536 conv=fsync status=none || exit 1\n");
    }
    match spec.mode {
        Some(m) => s.push_str(&format!("chmod {m:o} \"$t\" || exit 1\n")),
        // The temp file was made owner-only: give it the old file's mode, or
        // the mode a new file gets here (0666 less the umask).
        None => s.push_str(&format!(
            "if [ -e {p} ]; then chmod --reference={p} \"$t\" 2>/dev/null; chown --reference={p} \"$t\" 2>/dev/null; \
             else chmod \"$(printf %o $((0666 & ~0$(umask))))\" \"$t\"; fi\n"
        )),
    }
    match (&spec.owner, &spec.group) {
        (Some(o), Some(g)) => s.push_str(&format!(
            "chown {} \"$t\" || exit 1\n",
            sh_quote(&format!("{o}:{g}"))
        )),
        (Some(o), None) => s.push_str(&format!("chown {} \"$t\" || exit 1\n", sh_quote(o))),
        (None, Some(g)) => s.push_str(&format!("chgrp {} \"$t\" || exit 1\n", sh_quote(g))),
        (None, None) => {}
    }
    s.push_str(&format!("mv -f \"$t\" {p} || exit 1\ntrap - EXIT\n"));
    let spec2 = CommandSpec {
        cmd: s,
        stdin: Some(spec.content.clone()),
        become_: spec.become_.clone(),
        ..Default::default()
    };
    let out = shell
        .run_to(&spec2, direct.then_some(tmp.as_str()), false)
        .await?;
    if out.rc != 0 {
        return Err(failed(shell, &format!("writing {path}"), &out));
    }
    Ok(())
}

/// Reads a whole file.
pub async fn get_file(shell: &mut RemoteShell, path: &str) -> Result<Vec<u8>, TransportError> {
    let out = shell.run_own(format!("cat -- {}", sh_quote(path))).await?;
    if out.rc != 0 {
        return Err(failed(shell, &format!("reading {path}"), &out));
    }
    Ok(out.stdout)
}

/// Stats a path (links not followed), with the sha256 of regular files.
pub async fn stat(shell: &mut RemoteShell, path: &str) -> Result<FileStat, TransportError> {
    let script = format!(
        "_f_p={}\n{}",
        sh_quote(path),
        stat_script("sha256sum < \"$_f_p\"", shell.names_epoch)
    );
    let out = shell.run_own(script).await?;
    if out.rc != 0 {
        return Err(failed(shell, &format!("stat {path}"), &out));
    }
    parse_stat(&String::from_utf8_lossy(&out.stdout)).ok_or_else(|| TransportError::Other {
        host: shell.host().to_string(),
        reason: format!(
            "stat {path}: unexpected answer {:?}",
            String::from_utf8_lossy(&out.stdout)
        ),
    })
}

/// The script that prints the stat answer for `$_f_p` (see [`parse_stat`]);
/// `file_cmd` prints what follows `S` for a regular readable file, with the
/// stat fields in `$1`.. (`$4` the size).
///
/// One `stat` process, without user/group name lookups: the shell keeps the
/// names of the uids and gids it has seen in variables of generation `epoch`
/// (see `RemoteShell::names_epoch`) and asks `stat` for them only on a miss.
fn stat_script(file_cmd: &str, epoch: u64) -> String {
    format!(
        "if [ -L \"$_f_p\" ] || [ -e \"$_f_p\" ]; then\n\
         _f_st=$(stat -c '%f %u %g %s %Y' -- \"$_f_p\") || return 3\n\
         set -- $_f_st\n\
         eval \"_f_un=\\${{_f_Nu{epoch}_$2-}} _f_gn=\\${{_f_Ng{epoch}_$3-}}\"\n\
         if [ -z \"$_f_un\" ] || [ -z \"$_f_gn\" ]; then\n\
         _f_nm=$(stat -c '%U %G' -- \"$_f_p\") || return 3\n\
         _f_un=${{_f_nm%% *}} _f_gn=${{_f_nm#* }}\n\
         eval \"_f_Nu{epoch}_$2=\\$_f_un _f_Ng{epoch}_$3=\\$_f_gn\"\n\
         fi\n\
         printf '%s %s %s\\n' \"$_f_st\" \"$_f_un\" \"$_f_gn\"\n\
         if [ -L \"$_f_p\" ]; then printf L; readlink -- \"$_f_p\"\n\
         elif [ -f \"$_f_p\" ] && [ -r \"$_f_p\" ]; then printf S; {file_cmd}; fi\n\
         else echo missing; fi"
    )
}

/// Files up to this size are read by the shell itself (`read`, a builtin)
/// rather than by `cat` or `sha256sum`: one process less per file op. The
/// builtin reads a byte per system call, so large files still go to `cat`.
const SHELL_READ_MAX: u64 = 8 * 1024;

/// Shell function `_f_rd`: reads `$_f_p` into `$_f_c` with builtins only.
/// Whether `$_f_c` holds the file exactly is for the caller to check against
/// its size (a shell drops NUL bytes).
const SHELL_READ_FN: &str = "_f_rd() { _f_c=; _f_l=; while IFS= read -r _f_l; do _f_c=\"$_f_c$_f_l\n\"; _f_l=; done < \"$_f_p\"; _f_c=\"$_f_c$_f_l\"; }";

fn bad_answer(shell: &RemoteShell, what: &str, out: &CommandOutput) -> TransportError {
    TransportError::Other {
        host: shell.host().to_string(),
        reason: format!(
            "{what}: unexpected answer {:?}",
            String::from_utf8_lossy(&out.stdout)
        ),
    }
}

/// Whether anything (a dangling link included) is at `path`: shell
/// builtins only.
pub async fn exists(shell: &mut RemoteShell, path: &str) -> Result<bool, TransportError> {
    let script = format!(
        "_f_p={}\nif [ -L \"$_f_p\" ] || [ -e \"$_f_p\" ]; then echo y; else echo n; fi",
        sh_quote(path)
    );
    let out = shell.run_own(script).await?;
    match (out.rc, out.stdout.as_slice()) {
        (0, b"y\n") => Ok(true),
        (0, b"n\n") => Ok(false),
        _ => Err(bad_answer(shell, &format!("checking {path}"), &out)),
    }
}

/// Stats `path` and reads it when it is a regular file, in one round trip
/// (the checksum is computed here, not by a `sha256sum` on the host). For a
/// missing path, says whether its parent is a directory.
pub async fn stat_read(shell: &mut RemoteShell, path: &str) -> Result<FileRead, TransportError> {
    let script = format!(
        "{SHELL_READ_FN}\n_f_p={}\nif [ -L \"$_f_p\" ] || [ -e \"$_f_p\" ]; then\n{}\nelif [ -d {} ]; then echo missing; echo D\nelse echo missing; fi",
        sh_quote(path),
        stat_script(
            &format!(
                "echo; if [ \"$4\" -le {SHELL_READ_MAX} ] && _f_rd && [ \"${{#_f_c}}\" = \"$4\" ]; then printf %s \"$_f_c\"; else cat -- \"$_f_p\" || return 4; fi"
            ),
            shell.names_epoch
        ),
        sh_quote(&parent_dir(path)),
    );
    let out = shell.run_own(script).await?;
    if out.rc != 0 {
        return Err(failed(shell, &format!("reading {path}"), &out));
    }
    parse_stat_read(&out.stdout).ok_or_else(|| bad_answer(shell, &format!("stat {path}"), &out))
}

/// Parses [`stat_read`]'s answer: the stat line, then `S\n` and the
/// content, `L` and the link target, or (missing) `D` for a parent directory.
pub fn parse_stat_read(out: &[u8]) -> Option<FileRead> {
    let nl = out.iter().position(|&b| b == b'\n')?;
    let first = std::str::from_utf8(&out[..nl]).ok()?;
    let rest = &out[nl + 1..];
    if first == "missing" {
        return Some(FileRead {
            stat: FileStat::default(),
            content: None,
            parent_is_dir: Some(rest == b"D\n"),
        });
    }
    if let Some(content) = rest.strip_prefix(b"S\n") {
        let mut stat = parse_stat(&format!("{first}\n"))?;
        stat.checksum = Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(content)));
        return Some(FileRead {
            stat,
            content: Some(content.to_vec()),
            parent_is_dir: None,
        });
    }
    let stat = parse_stat(&String::from_utf8_lossy(out))?;
    Some(FileRead {
        stat,
        content: None,
        parent_is_dir: None,
    })
}

/// Content this large or larger goes by [`put_file`], not inside the script.
const INLINE_MAX: usize = 32 * 1024;

/// What [`create_file`] did.
#[derive(Debug)]
pub enum Created {
    Written,
    /// Nothing written: the path's stat (`exists` false when the parent is
    /// not a directory).
    NotWritten(FileStat),
    /// The content cannot travel inside a script (binary, NUL, large, or
    /// written with become): nothing asked.
    CannotInline,
}

/// Writes `spec` only when nothing is at its path and its parent is a
/// directory, in one round trip (see [`super::Transport::create_file`]).
/// The content travels inside the script (`printf`, a builtin), so nothing
/// is written when the file exists; the write is atomic as `put_file`'s
/// (temp file in the same directory, fsync, rename), its mode set by the
/// umask when it can be (no `chmod`).
pub async fn create_file(
    shell: &mut RemoteShell,
    spec: &FileSpec,
) -> Result<Created, TransportError> {
    let text = match std::str::from_utf8(&spec.content) {
        Ok(t) if t.len() < INLINE_MAX && !t.contains('\0') && spec.become_.is_none() => t,
        _ => return Ok(Created::CannotInline),
    };
    let path = spec.path.trim_end_matches('/');
    if path.is_empty() || path.contains('\0') {
        return Ok(Created::CannotInline);
    }
    let dir = parent_dir(path);
    let base = path.rsplit('/').next().unwrap_or(path);
    let tmp = format!(
        "{}/.{base}.ferry-{}",
        dir.trim_end_matches('/'),
        random_hex(6)
    );
    // Run in the remote shell itself: no trap, no exit, the umask restored.
    let mut w = format!("_f_tf={}\n", sh_quote(&tmp));
    let mut chmod = None;
    let umask = match spec.mode {
        Some(m) if m & !0o666 == 0 => Some(!m & 0o777),
        Some(m) => {
            chmod = Some(m);
            None
        }
        None => None,
    };
    if let Some(u) = umask {
        w.push_str(&format!("umask {u:o}\n"));
    }
    w.push_str("printf %s \"$_f_x\" > \"$_f_tf\"\n_f_wr=$?\n");
    if umask.is_some() {
        w.push_str("umask \"$_f_um\"\n");
    }
    w.push_str("if [ \"$_f_wr\" = 0 ] && { sync \"$_f_tf\" 2>/dev/null; true; }");
    if let Some(m) = chmod {
        w.push_str(&format!(" && chmod {m:o} \"$_f_tf\""));
    }
    match (&spec.owner, &spec.group) {
        (Some(o), Some(g)) => w.push_str(&format!(
            " && chown {} \"$_f_tf\"",
            sh_quote(&format!("{o}:{g}"))
        )),
        (Some(o), None) => w.push_str(&format!(" && chown {} \"$_f_tf\"", sh_quote(o))),
        (None, Some(g)) => w.push_str(&format!(" && chgrp {} \"$_f_tf\"", sh_quote(g))),
        (None, None) => {}
    }
    w.push_str(
        " && mv -f \"$_f_tf\" \"$_f_p\"; then echo created\nelse rm -f \"$_f_tf\"; return 1; fi",
    );
    // An existing file of the same size is compared with the content in the
    // shell: when equal, its checksum is the content's (no `sha256sum`).
    let sum = if text.len() as u64 <= SHELL_READ_MAX {
        format!(
            "if [ \"$4\" = {} ] && _f_rd && [ \"$_f_c\" = \"$_f_x\" ]; then echo {}; else sha256sum < \"$_f_p\"; fi",
            text.len(),
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes()))
        )
    } else {
        "sha256sum < \"$_f_p\"".to_string()
    };
    let script = format!(
        "{SHELL_READ_FN}\n_f_x={}\n_f_p={}\nif [ -L \"$_f_p\" ] || [ -e \"$_f_p\" ] || [ ! -d {} ]; then\n{}\nelse\n{w}\nfi",
        sh_quote(text),
        sh_quote(path),
        sh_quote(&dir),
        stat_script(&sum, shell.names_epoch),
    );
    let out = shell.run_own(script).await?;
    if out.rc != 0 {
        return Err(failed(shell, &format!("writing {path}"), &out));
    }
    if out.stdout == b"created\n" {
        return Ok(Created::Written);
    }
    match parse_stat(&String::from_utf8_lossy(&out.stdout)) {
        Some(st) => Ok(Created::NotWritten(st)),
        None => Err(bad_answer(shell, &format!("writing {path}"), &out)),
    }
}

/// Parses the stat script's answer.
pub fn parse_stat(text: &str) -> Option<FileStat> {
    let mut lines = text.splitn(2, '\n');
    let first = lines.next()?.trim();
    if first == "missing" {
        return Some(FileStat::default());
    }
    let f: Vec<&str> = first.split(' ').collect();
    if f.len() < 7 {
        return None;
    }
    let raw = u32::from_str_radix(f[0], 16).ok()?;
    let kind = raw & 0o170000;
    let rest = lines.next().unwrap_or("");
    let (checksum, link_target) = if let Some(t) = rest.strip_prefix('L') {
        (None, Some(t.trim_end_matches('\n').to_string()))
    } else if let Some(s) = rest.strip_prefix('S') {
        (s.split_whitespace().next().map(str::to_string), None)
    } else {
        (None, None)
    };
    Some(FileStat {
        exists: true,
        is_dir: kind == 0o040000,
        is_file: kind == 0o100000,
        is_link: kind == 0o120000,
        mode: raw & 0o7777,
        uid: f[1].parse().ok()?,
        gid: f[2].parse().ok()?,
        size: f[3].parse().ok()?,
        mtime: f[4].parse().ok()?,
        owner: f[5].to_string(),
        group: f[6..].join(" "),
        checksum,
        link_target,
    })
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

    #[test]
    fn stat_read_answers_parse() {
        let r = parse_stat_read(b"81a4 0 0 4 1700000000 root root\nS\nab\n\n").unwrap();
        assert!(r.stat.is_file);
        assert_eq!(r.content.as_deref(), Some(&b"ab\n\n"[..]));
        assert_eq!(
            r.stat.checksum.as_deref(),
            Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"ab\n\n")).as_str())
        );
        let m = parse_stat_read(b"missing\nD\n").unwrap();
        assert!(!m.stat.exists && m.parent_is_dir == Some(true));
        let m = parse_stat_read(b"missing\n").unwrap();
        assert_eq!(m.parent_is_dir, Some(false));
        let l = parse_stat_read(b"a1ff 0 0 4 1 root root\nL/etc\n").unwrap();
        assert!(l.stat.is_link && l.content.is_none());
        assert!(parse_stat_read(b"garbage").is_none());
    }

    #[test]
    fn stat_answers_parse() {
        let st = parse_stat("81a4 0 0 5 1700000000 root root\nSabc  -\n").unwrap();
        assert!(st.exists && st.is_file && !st.is_dir);
        assert_eq!(st.mode, 0o644);
        assert_eq!(st.checksum.as_deref(), Some("abc"));
        assert_eq!(parse_stat("missing\n").unwrap(), FileStat::default());
        let l = parse_stat("a1ff 0 0 4 1 root root\nL/etc\n").unwrap();
        assert!(l.is_link);
        assert_eq!(l.link_target.as_deref(), Some("/etc"));
    }
}
