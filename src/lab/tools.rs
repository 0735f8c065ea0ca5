//! The external tools the lab drives, found in `PATH` once and checked before
//! anything is created, and the one way they are run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{LabError, Result};

/// Absolute paths of every tool the lab runs.
#[derive(Debug, Clone)]
pub struct Tools {
    pub ip: PathBuf,
    pub tc: PathBuf,
    pub unshare: PathBuf,
    pub nsenter: PathBuf,
    pub ssh_keygen: PathBuf,
    pub sshd: PathBuf,
    /// Also needed inside the host setup script, found through PATH there.
    pub chroot: PathBuf,
    pub mount: PathBuf,
    pub sleep: PathBuf,
    pub hostname: PathBuf,
}

/// Find `name` in `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

impl Tools {
    /// Every tool needed by `ferry lab up`; the first missing one is an error naming its package.
    pub fn find() -> Result<Tools> {
        let get = |tool: &str, package: &str| {
            which(tool).ok_or_else(|| LabError::MissingTool {
                tool: tool.to_string(),
                package: package.to_string(),
            })
        };
        Ok(Tools {
            ip: get("ip", "iproute2")?,
            tc: get("tc", "iproute2")?,
            unshare: get("unshare", "util-linux")?,
            nsenter: get("nsenter", "util-linux")?,
            mount: get("mount", "mount")?,
            chroot: get("chroot", "coreutils")?,
            sleep: get("sleep", "coreutils")?,
            hostname: get("hostname", "hostname")?,
            ssh_keygen: get("ssh-keygen", "openssh-client")?,
            sshd: get("sshd", "openssh-server")?,
        })
    }

    /// Only what `ferry lab down` needs.
    pub fn find_for_down() -> Result<PathBuf> {
        which("ip").ok_or_else(|| LabError::MissingTool {
            tool: "ip".into(),
            package: "iproute2".into(),
        })
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Run to completion; non-zero exit is an error carrying the first line of stderr.
pub fn run(cmd: &mut Command) -> Result<String> {
    run_with_input(cmd, None)
}

/// As [`run`], feeding `input` on stdin (for `ip -batch -`).
pub fn run_with_input(cmd: &mut Command, input: Option<&str>) -> Result<String> {
    let command = describe(cmd);
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| LabError::Command {
        command: command.clone(),
        detail: e.to_string(),
    })?;
    if let Some(input) = input {
        let mut stdin = child.stdin.take().expect("piped stdin");
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| LabError::Command {
        command: command.clone(),
        detail: e.to_string(),
    })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let detail = err
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no error output")
            .trim()
            .to_string();
        let command = if let Some(input) = input {
            format!("{command} <<< {}", input.lines().next().unwrap_or(""))
        } else {
            command
        };
        return Err(LabError::Command {
            command,
            detail: format!("{} ({})", detail, out.status),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
