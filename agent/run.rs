//! Commands (`R` requests): `/bin/sh -c SCRIPT`, its stdout and stderr
//! straight into the agent's own (the channel), stdin from the request, as
//! become with sudo's askpass when a password is known, killed with its
//! process group at its timeout.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::sys;

/// The agent's temp directory (askpass, stdin of a command), made on first
/// need and removed when the agent ends.
pub struct TempDir {
    path: Option<String>,
}

impl TempDir {
    pub fn new() -> Self {
        TempDir { path: None }
    }

    pub fn get(&mut self) -> Result<&str, String> {
        if self.path.is_none() {
            let base = std::env::var("TMPDIR").unwrap_or_else(|_| "/tmp".to_string());
            let mut made = None;
            for _ in 0..8 {
                let p = format!(
                    "{}/ferry.{}",
                    base.trim_end_matches('/'),
                    sys::random_hex(6)
                );
                match fs::DirBuilder::new()
                    .mode(0o700)
                    .create(&p)
                    .and_then(|()| fs::set_permissions(&p, fs::Permissions::from_mode(0o700)))
                {
                    Ok(()) => {
                        made = Some(p);
                        break;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(format!("cannot make a temp directory in {base}: {e}")),
                }
            }
            let p = made.ok_or("cannot make a temp directory")?;
            let askpass = format!("{p}/askpass");
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o700)
                .open(&askpass)
                .and_then(|mut f| {
                    std::io::Write::write_all(
                        &mut f,
                        b"#!/bin/sh\nprintf '%s\\n' \"$FERRY_BECOME_PW\"\n",
                    )
                })
                .map_err(|e| format!("cannot write {askpass}: {e}"))?;
            self.path = Some(p);
        }
        Ok(self.path.as_deref().expect("made above"))
    }

    pub fn remove(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = fs::remove_dir_all(p);
        }
    }
}

/// What a command did: its exit status as a shell reports it (128 + signal
/// when killed) and whether its timeout killed it.
pub struct Ran {
    pub rc: i32,
    pub timed_out: bool,
}

fn shell_status(s: ExitStatus) -> i32 {
    s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
}

/// Runs `script`; `stdin` is a file to read it from (else /dev/null).
pub fn run(
    script: &str,
    stdin: Option<&str>,
    timeout_secs: u64,
    become_password: Option<(&str, &str)>,
) -> Result<Ran, String> {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(script);
    cmd.stdin(match stdin {
        Some(p) => Stdio::from(fs::File::open(p).map_err(|e| format!("{p}: {e}"))?),
        None => Stdio::null(),
    });
    if let Some((pw, askpass)) = become_password {
        cmd.env("FERRY_BECOME_PW", pw).env("SUDO_ASKPASS", askpass);
    }
    if timeout_secs > 0 {
        cmd.process_group(0);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start /bin/sh: {e}"))?;
    if timeout_secs == 0 {
        let status = child.wait().map_err(|e| format!("wait: {e}"))?;
        return Ok(Ran {
            rc: shell_status(status),
            timed_out: false,
        });
    }
    let pgid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let wait =
        |rx: &mpsc::Receiver<std::io::Result<ExitStatus>>, t: Duration| match rx.recv_timeout(t) {
            Ok(Ok(s)) => Some(Ok(s)),
            Ok(Err(e)) => Some(Err(format!("wait: {e}"))),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => Some(Err("wait: lost the child".into())),
        };
    if let Some(s) = wait(&rx, Duration::from_secs(timeout_secs)) {
        return Ok(Ran {
            rc: shell_status(s?),
            timed_out: false,
        });
    }
    sys::kill_group(pgid, sys::SIGTERM);
    let status = match wait(&rx, Duration::from_secs(2)) {
        Some(s) => s?,
        None => {
            sys::kill_group(pgid, sys::SIGKILL);
            rx.recv()
                .map_err(|_| "wait: lost the child".to_string())?
                .map_err(|e| format!("wait: {e}"))?
        }
    };
    // Whatever the group started and left behind goes too.
    sys::kill_group(pgid, sys::SIGKILL);
    Ok(Ran {
        rc: shell_status(status),
        timed_out: true,
    })
}
