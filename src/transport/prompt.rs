//! Asking for a secret (key passphrase, become password) on the terminal,
//! without echo. The prompt goes to the terminal, never to stdout.

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};

/// Reads one line from `/dev/tty` with echo off.
pub fn read_secret(prompt: &str) -> std::io::Result<String> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    let stty = |arg: &str| {
        Command::new("stty")
            .arg(arg)
            .stdin(
                tty.try_clone()
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            )
            .status()
    };
    let mut out = tty.try_clone()?;
    out.write_all(prompt.as_bytes())?;
    out.flush()?;
    stty("-echo")?;
    let mut line = String::new();
    let res = std::io::BufReader::new(tty.try_clone()?).read_line(&mut line);
    let _ = stty("echo");
    let _ = out.write_all(b"\n");
    res?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
