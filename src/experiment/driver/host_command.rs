//! Shell command lines on a run's hosts, with failures as [`DriverError`]s that
//! name the host and say what was being done.

use std::time::Duration;

use super::{DriverError, HostEnd};
use crate::transport::{CommandOutput, CommandSpec, FileSpec};

/// A shell test that process `pid` still runs: it has a command line. A zombie
/// (exited, not yet reaped) has none and counts as gone — `kill -0` would say it
/// lives, and an orphan waits for init to reap it, which in a container (and on
/// the lab, whose PID 1 reaps late) takes a second or more: every "wait until it
/// exited" loop would run to its limit.
pub fn running_test(pid: u32) -> String {
    format!("grep -q . /proc/{pid}/cmdline 2>/dev/null")
}

impl HostEnd {
    fn error(&self, message: String) -> DriverError {
        DriverError::Host {
            host: self.name.clone(),
            message,
        }
    }

    /// Run `cmd` (a `/bin/sh -c` line), with `stdin` if given; any exit status.
    /// `timeout`: the transport's limit. The drivers poll every few tens of ms and
    /// pass None: their commands are quick or bounded on the host (`timeout N cmd`),
    /// and the remote shell's watchdog costs forks per call (and, for a command
    /// that ends at once, can outlive it and hold the shell until it expires).
    pub async fn sh_with(
        &self,
        cmd: &str,
        stdin: Option<Vec<u8>>,
        timeout: Option<Duration>,
    ) -> Result<CommandOutput, DriverError> {
        let mut spec = CommandSpec::new(cmd);
        spec.stdin = stdin;
        spec.timeout = timeout;
        self.transport
            .run(&spec)
            .await
            .map_err(|e| self.error(format!("{cmd}: {e}")))
    }

    /// Run `cmd`; any exit status.
    pub async fn sh(&self, cmd: &str) -> Result<CommandOutput, DriverError> {
        self.sh_with(cmd, None, None).await
    }

    /// Run `cmd` for `what`; an error (with its stderr) unless it exits 0. Returns stdout.
    pub async fn sh_ok(&self, what: &str, cmd: &str) -> Result<String, DriverError> {
        let out = self.sh(cmd).await?;
        if out.rc != 0 {
            return Err(self.error(format!(
                "{what} failed (exit {}{}): {}{}",
                out.rc,
                if out.timed_out { ", timed out" } else { "" },
                String::from_utf8_lossy(&out.stderr).trim(),
                if out.stderr.is_empty() {
                    String::from_utf8_lossy(&out.stdout).trim().to_string()
                } else {
                    String::new()
                }
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Write a whole file on the host.
    pub async fn write_file(&self, path: &str, content: Vec<u8>) -> Result<(), DriverError> {
        let spec = FileSpec {
            path: path.to_string(),
            content,
            mode: Some(0o644),
            ..FileSpec::default()
        };
        self.transport
            .put_file(&spec)
            .await
            .map_err(|e| self.error(format!("write {path}: {e}")))
    }

    /// Every tool in `tools` (name, Debian package) is on the host's PATH, or an
    /// error naming the ones missing.
    pub async fn require_tools(&self, tools: &[(&str, &str)]) -> Result<(), DriverError> {
        let script: String = tools
            .iter()
            .map(|(t, _)| format!("command -v {t} >/dev/null 2>&1 || echo {t}; "))
            .collect();
        let out = self.sh(&script).await?;
        let missing: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(|t| {
                let pkg = tools.iter().find(|(n, _)| *n == t).map_or("", |(_, p)| *p);
                format!("{t} (install {pkg})")
            })
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(self.error(format!("missing: {}", missing.join(", "))))
        }
    }

    /// A required inventory variable, or an error naming it.
    pub fn require_var(&self, key: &str) -> Result<String, DriverError> {
        self.var(key)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| self.error(format!("host variable `{key}` is not set")))
    }
}
