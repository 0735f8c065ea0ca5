//! `service` / `systemd`: a daemon started/stopped/restarted/reloaded and
//! enabled at boot. Three ways, chosen per host in one probe:
//!
//! 1. `start_command` given (ferry-specific): ferry runs that command line in
//!    the background (it must stay in the foreground, e.g. `sshd -D`), records
//!    its pid in `pidfile`, and stops it with `stop_signal` (TERM).
//! 2. systemd, when `/run/systemd/system` exists: `systemctl`.
//! 3. otherwise the init script `/etc/init.d/NAME` (enabled = `update-rc.d`).

use super::plan::Commands;
use super::{Args, Change, OpContext, OpError, OpOutcome, Plan, sh, sh_quote};
use crate::transport::Transport;
use crate::vars::Vars;

use super::schema::Spec;

/// What `service` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "service",
    flags: "",
    params: "name:str!/service,unit; state:str=started,stopped,restarted,reloaded; enabled:bool; daemon_reload:bool/daemon-reload; start_command:str; pidfile:path; stop_signal:str; reload_signal:str; log_file:path",
    rules: "one:state|enabled|daemon_reload start_command|enabled",
};

crate::ops::planned_op!(ServiceOp, SPEC, commands);

/// What `systemd` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SYSTEMD_SPEC: Spec = Spec {
    name: "systemd",
    flags: "",
    params: "name:str!/service,unit; state:str=started,stopped,restarted,reloaded; enabled:bool; daemon_reload:bool/daemon-reload; start_command:str; pidfile:path; stop_signal:str; reload_signal:str; log_file:path",
    rules: "one:state|enabled|daemon_reload start_command|enabled",
};

crate::ops::planned_op!(SystemdOp, SYSTEMD_SPEC, commands);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Started,
    Stopped,
    Restarted,
    Reloaded,
}

#[derive(Debug, Clone)]
pub struct Params {
    pub name: String,
    pub state: Option<State>,
    pub enabled: Option<bool>,
    pub daemon_reload: bool,
    pub start_command: Option<String>,
    pub pidfile: Option<String>,
    pub stop_signal: String,
    pub reload_signal: String,
    /// Where the started command's stdout/stderr go (default /dev/null).
    pub log_file: Option<String>,
}

impl Params {
    pub fn parse(args: &Vars) -> Result<Params, OpError> {
        let a = Args::new("service", args);
        let state = match a.str("state")?.as_deref() {
            None => None,
            Some("started") => Some(State::Started),
            Some("stopped") => Some(State::Stopped),
            Some("restarted") => Some(State::Restarted),
            Some("reloaded") => Some(State::Reloaded),
            Some(o) => {
                return Err(a.err(format!(
                    "`state` must be one of started, stopped, restarted, reloaded, got `{o}`"
                )));
            }
        };
        let p = Params {
            name: a.req_str("name")?,
            state,
            enabled: a.bool("enabled")?,
            daemon_reload: a.bool_or("daemon_reload", false)?,
            start_command: a.str("start_command")?,
            pidfile: a.str("pidfile")?,
            stop_signal: a.str("stop_signal")?.unwrap_or_else(|| "TERM".into()),
            reload_signal: a.str("reload_signal")?.unwrap_or_else(|| "HUP".into()),
            log_file: a.str("log_file")?,
        };
        a.finish()?;
        if p.state.is_none() && p.enabled.is_none() && !p.daemon_reload {
            return Err(OpError::params(
                "service",
                "give `state`, `enabled` or both",
            ));
        }
        if p.start_command.is_some() && p.pidfile.is_none() {
            return Err(OpError::params(
                "service",
                "`start_command` needs a `pidfile`",
            ));
        }
        if p.start_command.is_some() && p.enabled.is_some() {
            return Err(OpError::params(
                "service",
                "`enabled` needs systemd or an init script; a `start_command` service cannot be enabled at boot",
            ));
        }
        for s in [&p.stop_signal, &p.reload_signal] {
            if !s.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(OpError::params("service", format!("bad signal `{s}`")));
            }
        }
        if !p
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@._-:".contains(c))
        {
            return Err(OpError::params(
                "service",
                format!("bad service name `{}`", p.name),
            ));
        }
        Ok(p)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manager {
    Systemd,
    InitScript,
    Pidfile,
}

/// The shell that finds the manager, whether it runs and whether it is enabled:
/// prints `MANAGER RUNNING ENABLED` (0/1).
fn probe(p: &Params) -> String {
    let n = sh_quote(&p.name);
    if let Some(pf) = &p.pidfile
        && p.start_command.is_some()
    {
        let pf = sh_quote(pf);
        return format!(
            "if [ -f {pf} ] && kill -0 \"$(cat {pf})\" 2>/dev/null; then echo pidfile 1 0; else echo pidfile 0 0; fi"
        );
    }
    format!(
        "if [ -d /run/systemd/system ]; then m=systemd; systemctl is-active --quiet {n} && r=1 || r=0; \
         [ \"$(systemctl is-enabled {n} 2>/dev/null)\" = enabled ] && e=1 || e=0; \
         elif [ -x /etc/init.d/{n} ]; then m=sysv; /etc/init.d/{n} status >/dev/null 2>&1 && r=1 || r=0; \
         ls /etc/rc[2345].d/S*{n} >/dev/null 2>&1 && e=1 || e=0; \
         else m=none; r=0; e=0; fi; echo $m $r $e"
    )
}

/// What to run for `action` (start, stop, restart, reload, enable, disable).
fn command(m: Manager, p: &Params, action: &str) -> String {
    let n = sh_quote(&p.name);
    match m {
        Manager::Systemd => format!("systemctl {action} {n}"),
        Manager::InitScript => match action {
            "enable" => format!("update-rc.d {n} defaults >/dev/null && update-rc.d {n} enable"),
            "disable" => format!("update-rc.d {n} disable"),
            a => format!("/etc/init.d/{n} {a}"),
        },
        Manager::Pidfile => {
            let pf = sh_quote(p.pidfile.as_deref().unwrap_or(""));
            let log = sh_quote(p.log_file.as_deref().unwrap_or("/dev/null"));
            let cmd = sh_quote(p.start_command.as_deref().unwrap_or(""));
            let start = format!(
                "setsid sh -c {cmd} </dev/null >>{log} 2>&1 & echo $! > {pf}; sleep 0.2; kill -0 \"$(cat {pf})\" 2>/dev/null || {{ echo 'the command exited at once' >&2; exit 1; }}"
            );
            let stop = format!(
                "if [ -f {pf} ]; then p=$(cat {pf}); kill -{sig} \"$p\" 2>/dev/null; i=0; \
                 while kill -0 \"$p\" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; \
                 kill -0 \"$p\" 2>/dev/null && {{ echo \"pid $p did not stop\" >&2; exit 1; }}; rm -f {pf}; fi",
                sig = p.stop_signal
            );
            match action {
                "start" => start,
                "stop" => stop,
                "restart" => format!("{stop}; {start}"),
                "reload" => format!("kill -{} \"$(cat {pf})\"", p.reload_signal),
                _ => "true".into(),
            }
        }
    }
}

/// The actions needed, in order, given whether it runs and is enabled.
pub fn actions(p: &Params, running: bool, enabled: bool) -> Vec<&'static str> {
    let mut v = Vec::new();
    match p.enabled {
        Some(true) if !enabled => v.push("enable"),
        Some(false) if enabled => v.push("disable"),
        _ => {}
    }
    match p.state {
        Some(State::Started) if !running => v.push("start"),
        Some(State::Stopped) if running => v.push("stop"),
        Some(State::Restarted) => v.push(if running { "restart" } else { "start" }),
        Some(State::Reloaded) => v.push(if running { "reload" } else { "start" }),
        _ => {}
    }
    v
}

pub async fn plan(t: &dyn Transport, p: &Params, _: &OpContext<'_>) -> Result<Plan, OpError> {
    let out = sh(t, probe(p)).await?;
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<&str> = text.split_whitespace().collect();
    let m = match f.first().copied() {
        Some("systemd") => Manager::Systemd,
        Some("sysv") => Manager::InitScript,
        Some("pidfile") => Manager::Pidfile,
        _ => {
            return Err(OpError::failed(format!(
                "service {}: this host has no systemd and no /etc/init.d/{}; \
                 give `start_command` and `pidfile` to run it without either",
                p.name, p.name
            )));
        }
    };
    let running = f.get(1) == Some(&"1");
    let enabled = f.get(2) == Some(&"1");
    let todo = actions(p, running, enabled);
    let mut work = Commands::default();
    if p.daemon_reload && m == Manager::Systemd {
        let reload = "systemctl daemon-reload".to_string();
        work.0.push((reload.clone(), reload));
    }
    let mut r = OpOutcome::new(!todo.is_empty());
    r.set("name", p.name.clone());
    let now_running = match p.state {
        Some(State::Stopped) => false,
        Some(_) => true,
        None => running,
    };
    r.set("state", if now_running { "started" } else { "stopped" });
    if let Some(e) = p.enabled {
        r.set("enabled", e);
    }
    let changes: Vec<Change> = todo
        .iter()
        .map(|a| Change::Host(format!("service {}: {a}", p.name)))
        .collect();
    if !todo.is_empty() {
        let cmds: Vec<String> = todo.iter().map(|a| command(m, p, a)).collect();
        work.0
            .push((cmds.join(" && "), format!("service {}", p.name)));
    }
    Ok(if work.0.is_empty() {
        Plan::done(r)
    } else {
        Plan::changes(r, changes, work)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(v: serde_json::Value) -> Params {
        Params::parse(&serde_json::from_value(v).unwrap()).unwrap()
    }

    #[test]
    fn plans_actions() {
        let s = p(json!({"name": "x", "state": "started", "enabled": true}));
        assert_eq!(actions(&s, false, false), vec!["enable", "start"]);
        assert!(actions(&s, true, true).is_empty());
        let s = p(json!({"name": "x", "state": "stopped", "enabled": false}));
        assert_eq!(actions(&s, true, true), vec!["disable", "stop"]);
        let s = p(json!({"name": "x", "state": "restarted"}));
        assert_eq!(actions(&s, true, false), vec!["restart"]);
        let s = p(json!({"name": "x", "state": "reloaded"}));
        assert_eq!(actions(&s, false, false), vec!["start"]);
    }

    #[test]
    fn params() {
        let bad = |v| {
            Params::parse(&serde_json::from_value(v).unwrap())
                .unwrap_err()
                .to_string()
        };
        assert!(bad(json!({"name": "x"})).contains("state"));
        assert!(
            bad(json!({"name": "x", "state": "started", "start_command": "sleep 9"}))
                .contains("pidfile")
        );
        assert!(bad(json!({"name": "x; rm", "state": "started"})).contains("bad service name"));
        assert!(bad(json!({"name": "x", "state": "up"})).contains("started"));
    }
}
