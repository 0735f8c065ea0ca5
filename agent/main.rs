//! ferry-agent: the remote shell's requests (`src/transport/remote_shell.sh`)
//! answered by one small process per host instead of a shell that forks a
//! `stat`, `cat`, `sha256sum`, `mv` or `sync` for each. ferry builds it with
//! `rustc` alone (`build.rs`; std, no crates), carries it inside its own
//! binary, and places it on a host at first contact
//! (`~/.cache/ferry/agent-<sha256>`); a host where it cannot run keeps the
//! shell.
//!
//! Started as `agent MARKER`; `agent --check` prints `ferry-agent ok`.
//! Requests on stdin, as the shell's:
//!   R ID NLINES STDINLEN TIMEOUT BECOME [DEST]  a command (see run.rs)
//!   K  then one line: the become password (kept in memory only)
//!   Q  quit
//! and one of its own:
//!   A ID FIELDSLEN DATALEN  then FIELDSLEN bytes of fields (each `LEN:BYTES`:
//!   the request's name, then its arguments), then DATALEN bytes of data:
//!   stat PATH | stat_read PATH | exists PATH | get PATH | mkdir PATH |
//!   create PATH MODE OWNER GROUP + content | put PATH MODE OWNER GROUP + content
//!   (MODE octal, or empty as OWNER and GROUP when not given).
//! Replies as the shell's: the answer then `MARKER<ID> RC TIMEDOUT\n` on
//! stdout, errors then `MARKER<ID>\n` on stderr.

mod files;
mod names;
mod run;
mod sha256;
mod sys;

use std::io::{self, BufRead, BufReader, Read, Write};

/// One request's answer.
pub struct Reply {
    pub out: Vec<u8>,
    pub err: Vec<u8>,
    pub rc: i32,
    pub timed_out: bool,
}

impl Reply {
    pub fn ok(out: Vec<u8>) -> Self {
        Reply {
            out,
            err: Vec::new(),
            rc: 0,
            timed_out: false,
        }
    }

    pub fn failed(rc: i32, err: impl Into<String>) -> Self {
        Reply {
            out: Vec::new(),
            err: err.into().into_bytes(),
            rc,
            timed_out: false,
        }
    }
}

struct Agent {
    marker: String,
    names: names::Names,
    tmp: run::TempDir,
    password: Option<String>,
}

impl Agent {
    fn send(&self, id: &str, reply: &Reply) -> io::Result<()> {
        let mut err = io::stderr().lock();
        err.write_all(&reply.err)?;
        err.write_all(format!("{}{id}\n", self.marker).as_bytes())?;
        err.flush()?;
        let mut out = io::stdout().lock();
        out.write_all(&reply.out)?;
        out.write_all(
            format!(
                "{}{id} {} {}\n",
                self.marker,
                reply.rc,
                u8::from(reply.timed_out)
            )
            .as_bytes(),
        )?;
        out.flush()
    }

    /// `R`: a command; its output goes to the channel as it comes.
    fn command(
        &mut self,
        script: &str,
        input: &mut dyn Read,
        stdin_len: u64,
        timeout: u64,
        become_: bool,
        dest: Option<&str>,
    ) -> Reply {
        let mut stdin_file = None;
        let mut setup_error = None;
        if let Some(d) = dest {
            files::write_dest(d, input);
        } else if stdin_len > 0 {
            match self.tmp.get() {
                Ok(t) => {
                    let p = format!("{t}/in");
                    match std::fs::File::create(&p).and_then(|mut f| io::copy(input, &mut f)) {
                        Ok(_) => stdin_file = Some(p),
                        Err(e) => setup_error = Some(format!("{p}: {e}\n")),
                    }
                }
                Err(e) => setup_error = Some(format!("{e}\n")),
            }
        }
        let _ = io::copy(input, &mut io::sink());
        let askpass = if become_ {
            match self.tmp.get() {
                Ok(t) => Some(format!("{t}/askpass")),
                Err(e) => {
                    setup_error.get_or_insert(format!("{e}\n"));
                    None
                }
            }
        } else {
            None
        };
        if let Some(e) = setup_error {
            return Reply::failed(97, e);
        }
        let pw = self.password.clone().unwrap_or_default();
        let result = run::run(
            script,
            stdin_file.as_deref(),
            timeout,
            askpass.as_deref().map(|a| (pw.as_str(), a)),
        );
        if let Some(p) = &stdin_file {
            let _ = std::fs::remove_file(p);
        }
        match result {
            Ok(r) => Reply {
                out: Vec::new(),
                err: Vec::new(),
                rc: r.rc,
                timed_out: r.timed_out,
            },
            Err(e) => Reply::failed(127, format!("{e}\n")),
        }
    }

    /// `A`: one of the agent's own requests.
    fn own(&mut self, fields: &[Vec<u8>], data: &mut dyn Read) -> Reply {
        let text = |i: usize| -> Option<String> {
            fields
                .get(i)
                .map(|f| String::from_utf8_lossy(f).into_owned())
        };
        let (Some(name), Some(path)) = (text(0), text(1)) else {
            return Reply::failed(2, "ferry-agent: a request without a name or a path\n");
        };
        let attrs = || -> Result<files::Attrs, String> {
            let opt = |i: usize| text(i).filter(|s| !s.is_empty());
            let mode = match opt(2) {
                Some(m) => Some(
                    u32::from_str_radix(&m, 8)
                        .map_err(|_| format!("ferry-agent: bad mode {m}\n"))?,
                ),
                None => None,
            };
            Ok(files::Attrs {
                mode,
                owner: opt(3),
                group: opt(4),
            })
        };
        match name.as_str() {
            "stat" => files::stat(&path, &mut self.names),
            "stat_read" => files::stat_read(&path, &mut self.names),
            "exists" => files::exists(&path),
            "get" => files::get(&path),
            "mkdir" => files::make_dirs(&path),
            "create" => match attrs() {
                Ok(a) => files::create(&path, &a, data, &mut self.names),
                Err(e) => Reply::failed(2, e),
            },
            "put" => match attrs() {
                Ok(a) => files::put(&path, &a, data, &mut self.names),
                Err(e) => Reply::failed(2, e),
            },
            other => Reply::failed(2, format!("ferry-agent: unknown request {other}\n")),
        }
    }
}

/// Splits `LEN:BYTES` fields.
fn parse_fields(mut b: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut fields = Vec::new();
    while !b.is_empty() {
        let colon = b.iter().position(|&c| c == b':')?;
        let len: usize = std::str::from_utf8(&b[..colon]).ok()?.parse().ok()?;
        let rest = &b[colon + 1..];
        if rest.len() < len {
            return None;
        }
        fields.push(rest[..len].to_vec());
        b = &rest[len..];
    }
    Some(fields)
}

fn main() {
    let arg = std::env::args().nth(1).unwrap_or_default();
    if arg == "--check" {
        println!("ferry-agent ok");
        return;
    }
    let mut agent = Agent {
        marker: arg,
        names: names::Names::new(),
        tmp: run::TempDir::new(),
        password: None,
    };
    let code = serve(&mut agent);
    agent.tmp.remove();
    std::process::exit(code);
}

/// The request loop; the exit code when it ends.
fn serve(agent: &mut Agent) -> i32 {
    let mut input = BufReader::with_capacity(64 * 1024, io::stdin().lock());
    {
        let mut out = io::stdout().lock();
        if out
            .write_all(format!("{}ready agent\n", agent.marker).as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            return 1;
        }
    }
    let bad = |agent: &Agent, what: &str| {
        let _ = writeln!(io::stderr(), "{}bad request: {what}", agent.marker);
        98
    };
    loop {
        let mut line = String::new();
        match input.read_line(&mut line) {
            Ok(0) => return 0,
            Ok(_) => {}
            Err(_) => return 1,
        }
        let line = line.trim_end_matches('\n');
        let words: Vec<&str> = line.splitn(7, ' ').collect();
        let num = |i: usize| words.get(i).and_then(|w| w.parse::<u64>().ok());
        let reply_sent = match words[0] {
            "Q" => return 0,
            "K" => {
                let mut pw = String::new();
                if input.read_line(&mut pw).unwrap_or(0) == 0 {
                    return 0;
                }
                agent.password = Some(pw.trim_end_matches('\n').to_string());
                continue;
            }
            "R" | "I" => {
                let (Some(n), Some(len), Some(timeout), Some(become_)) =
                    (num(2), num(3), num(4), num(5))
                else {
                    return bad(agent, line);
                };
                let id = words[1].to_string();
                let mut script = String::new();
                for _ in 0..n {
                    if input.read_line(&mut script).unwrap_or(0) == 0 {
                        return 0;
                    }
                }
                let dest = words
                    .get(6)
                    .copied()
                    .filter(|d| !d.is_empty())
                    .map(str::to_string);
                let mut data = (&mut input).take(len);
                let reply = if words[0] == "I" {
                    let _ = io::copy(&mut data, &mut io::sink());
                    Reply::failed(
                        2,
                        "ferry-agent: `I` scripts are the shell's; ask with an `A` request\n",
                    )
                } else {
                    agent.command(
                        &script,
                        &mut data,
                        len,
                        timeout,
                        become_ == 1,
                        dest.as_deref(),
                    )
                };
                agent.send(&id, &reply)
            }
            "A" => {
                let (Some(flen), Some(dlen)) = (num(2), num(3)) else {
                    return bad(agent, line);
                };
                let id = words[1].to_string();
                let mut raw = vec![0u8; flen as usize];
                if input.read_exact(&mut raw).is_err() {
                    return 0;
                }
                let mut data = (&mut input).take(dlen);
                let reply = match parse_fields(&raw) {
                    Some(fields) => agent.own(&fields, &mut data),
                    None => Reply::failed(2, "ferry-agent: malformed fields\n"),
                };
                let _ = io::copy(&mut data, &mut io::sink());
                agent.send(&id, &reply)
            }
            other => return bad(agent, other),
        };
        if reply_sent.is_err() {
            return 1;
        }
    }
}
