//! `wait_for`: wait, on the host, until a TCP port is open (or closed), a
//! path exists (optionally holding a regex) or is gone. The wait loop runs on
//! the host in one command, so it costs one round trip. Planned: the plan is the
//! wait (it changes nothing either way), the apply waits; check mode does not wait.

use super::{Args, Change, OpContext, OpError, OpOutcome, Plan, sh_quote};
use crate::transport::{CommandSpec, Transport};
use crate::vars::Vars;

use super::schema::Spec;

/// What `wait_for` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "wait_for",
    flags: "",
    params: "host:str; port:int; path:path; state:str=started,present,stopped,absent; search_regex:str; timeout:int; delay:int; sleep:int; connect_timeout:int; msg:str",
    rules: "port|path",
};

crate::ops::planned_op!(WaitForOp, SPEC);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Port open / path present.
    Started,
    /// Port closed / path absent.
    Stopped,
}

#[derive(Debug, Clone)]
pub struct Params {
    pub host: String,
    pub port: Option<u64>,
    pub path: Option<String>,
    pub search_regex: Option<String>,
    pub state: State,
    pub timeout: u64,
    pub delay: u64,
    pub sleep: u64,
    pub connect_timeout: u64,
    pub msg: Option<String>,
}

impl Params {
    pub fn parse(args: &Vars) -> Result<Params, OpError> {
        let a = Args::new("wait_for", args);
        let state = match a.str("state")?.as_deref() {
            None | Some("started") | Some("present") => State::Started,
            Some("stopped") | Some("absent") => State::Stopped,
            Some(o) => {
                return Err(a.err(format!(
                    "`state` must be one of started, present, stopped, absent, got `{o}`"
                )));
            }
        };
        let p = Params {
            host: a.str("host")?.unwrap_or_else(|| "127.0.0.1".into()),
            port: a.u64("port")?,
            path: a.str("path")?,
            search_regex: a.str("search_regex")?,
            state,
            timeout: a.u64("timeout")?.unwrap_or(300),
            delay: a.u64("delay")?.unwrap_or(0),
            sleep: a.u64("sleep")?.unwrap_or(1),
            connect_timeout: a.u64("connect_timeout")?.unwrap_or(5),
            msg: a.str("msg")?,
        };
        a.finish()?;
        let e = |m: &str| Err(OpError::params("wait_for", m));
        if p.port.is_some() && p.path.is_some() {
            return e("port and path are mutually exclusive");
        }
        if p.search_regex.is_some() && p.path.is_none() {
            return e("ferry supports search_regex with path only");
        }
        if let Some(r) = &p.search_regex {
            regex::Regex::new(r)
                .map_err(|x| OpError::params("wait_for", format!("bad search_regex: {x}")))?;
        }
        if !p
            .host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:_".contains(c))
        {
            return Err(OpError::params(
                "wait_for",
                format!("bad host {:?}: give a host name or an IP address", p.host),
            ));
        }
        Ok(p)
    }
}

/// The shell condition that holds when the wait is over.
pub fn condition(p: &Params) -> String {
    let ok = match (&p.port, &p.path) {
        (Some(port), _) => {
            let ct = p.connect_timeout.max(1);
            let h = &p.host;
            format!(
                "( if command -v bash >/dev/null 2>&1; then timeout {ct} bash -c 'exec 3<>/dev/tcp/{h}/{port}'; \
                 elif command -v nc >/dev/null 2>&1; then nc -z -w {ct} {h} {port}; \
                 else busybox nc -z -w {ct} {h} {port}; fi ) >/dev/null 2>&1"
            )
        }
        (None, Some(path)) => match &p.search_regex {
            Some(r) => format!("grep -Eq -- {} {} 2>/dev/null", sh_quote(r), sh_quote(path)),
            None => format!("[ -e {} ]", sh_quote(path)),
        },
        (None, None) => "true".into(),
    };
    match p.state {
        State::Started => ok,
        State::Stopped => format!("! {ok}"),
    }
}

/// What the apply does: the wait (its condition is the plan's).
pub struct Work(String);

pub async fn plan(_: &dyn Transport, p: &Params, _: &OpContext<'_>) -> Result<Plan, OpError> {
    let cond = condition(p);
    let outcome = OpOutcome::new(false).msg("not waited for in check mode");
    let changes = vec![Change::Host(format!("waits until {cond}"))];
    Ok(Plan::changes(outcome, changes, Work(cond)))
}

pub async fn apply(
    t: &dyn Transport,
    p: &Params,
    _: &OpContext<'_>,
    _: OpOutcome,
    Work(cond): Work,
) -> Result<OpOutcome, OpError> {
    let script = format!(
        "start=$(date +%s); sleep {d}; end=$((start + {d} + {to})); \
         while :; do if {cond}; then echo $(( $(date +%s) - start )); exit 0; fi; \
         [ $(date +%s) -ge $end ] && {{ echo $(( $(date +%s) - start )); exit 1; }}; sleep {s}; done",
        d = p.delay,
        to = p.timeout,
        s = p.sleep.max(1)
    );
    let out = t
        .run(&CommandSpec {
            timeout: Some(std::time::Duration::from_secs(
                p.delay + p.timeout + p.connect_timeout + 30,
            )),
            ..CommandSpec::new(script)
        })
        .await?;
    let elapsed: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    if out.rc != 0 {
        let what = match (&p.port, &p.path) {
            (Some(port), _) => format!("{}:{port}", p.host),
            (None, Some(path)) => path.clone(),
            _ => "condition".into(),
        };
        let mut result = serde_json::Map::new();
        result.insert("elapsed".into(), elapsed.into());
        return Err(OpError::Failed {
            msg: p.msg.clone().unwrap_or_else(|| {
                format!(
                    "Timeout when waiting for {what} ({} after {elapsed}s)",
                    if p.state == State::Started {
                        "not ready"
                    } else {
                        "still there"
                    }
                )
            }),
            result,
        });
    }
    let mut r = OpOutcome::new(false).with("elapsed", elapsed);
    if let Some(port) = p.port {
        r.set("port", port);
    }
    if let Some(path) = &p.path {
        r.set("path", path.clone());
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn params_and_conditions() {
        let p = |v| Params::parse(&serde_json::from_value(v).unwrap());
        assert!(p(json!({"port": 22, "path": "/x"})).is_err());
        assert!(p(json!({"port": 22, "search_regex": "x"})).is_err());
        assert!(p(json!({"port": 22, "state": "drained"})).is_err());
        let c = condition(&p(json!({"path": "/x", "state": "absent"})).unwrap());
        assert_eq!(c, "! [ -e /x ]");
        assert!(condition(&p(json!({"port": 22})).unwrap()).contains("/dev/tcp/127.0.0.1/22"));
    }
}
