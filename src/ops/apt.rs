//! `apt`: Debian packages by name (present/absent/latest), from a `.deb`
//! file (copied from the controller, for hosts without a mirror), and the
//! package cache (`update_cache`, `cache_valid_time`). Idempotence comes
//! from one `dpkg-query` call for the whole list.

use std::path::PathBuf;

use super::{
    Args, Change, OpContext, OpError, OpOutcome, Plan, find_src, sh, sh_quote, sha256_hex,
};
use crate::transport::{CommandSpec, FileSpec, Transport};
use crate::vars::Vars;

use super::schema::Spec;

/// What `apt` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "apt",
    flags: "",
    params: "name:list/package,pkg; state:str=present,installed,absent,removed,latest; update_cache:bool/update-cache; cache_valid_time:int; deb:path; install_recommends:bool/install-recommends; purge:bool; autoremove:bool",
    rules: "name|deb one:name|deb|update_cache|autoremove",
};

crate::ops::planned_op!(AptOp, SPEC, steps);

/// What `package` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const PACKAGE_SPEC: Spec = Spec {
    name: "package",
    flags: "",
    params: "name:list/package,pkg; state:str=present,installed,absent,removed,latest; update_cache:bool/update-cache; cache_valid_time:int; deb:path; install_recommends:bool/install-recommends; purge:bool; autoremove:bool",
    rules: "name|deb one:name|deb|update_cache|autoremove",
};

crate::ops::planned_op!(PackageOp, PACKAGE_SPEC, steps);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Present,
    Absent,
    Latest,
}

#[derive(Debug, Clone)]
pub struct Params {
    /// Package names, each optionally `name=version`.
    pub names: Vec<String>,
    pub state: State,
    pub update_cache: bool,
    pub cache_valid_time: Option<u64>,
    pub deb: Option<String>,
    pub install_recommends: Option<bool>,
    pub purge: bool,
    pub autoremove: bool,
}

impl Params {
    pub fn parse(args: &Vars) -> Result<Params, OpError> {
        let a = Args::new("apt", args);
        let state = match a.str("state")?.as_deref() {
            None | Some("present") | Some("installed") => State::Present,
            Some("absent") | Some("removed") => State::Absent,
            Some("latest") => State::Latest,
            Some(o) => {
                return Err(a.err(format!(
                    "`state` must be one of present, installed, absent, removed, latest, got `{o}`"
                )));
            }
        };
        let p = Params {
            names: a.list("name")?.unwrap_or_default(),
            state,
            update_cache: a.bool_or("update_cache", false)?,
            cache_valid_time: a.u64("cache_valid_time")?,
            deb: a.str("deb")?,
            install_recommends: a.bool("install_recommends")?,
            purge: a.bool_or("purge", false)?,
            autoremove: a.bool_or("autoremove", false)?,
        };
        a.finish()?;
        if p.names.is_empty() && p.deb.is_none() && !p.update_cache && !p.autoremove {
            return Err(OpError::params(
                "apt",
                "give `name`, `deb`, `update_cache` or `autoremove`",
            ));
        }
        if p.deb.is_some() && p.state != State::Present {
            return Err(OpError::params(
                "apt",
                "`deb` works with state=present only",
            ));
        }
        for n in &p.names {
            if n.is_empty() || n.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
                return Err(OpError::params("apt", format!("bad package name `{n}`")));
            }
        }
        Ok(p)
    }

    /// The `.deb` on the controller (absolute, or under `files/`), if it is there.
    pub fn controller_deb(&self, ctx: &OpContext<'_>) -> Option<PathBuf> {
        self.deb
            .as_deref()
            .and_then(|d| find_src(d, "files", &ctx.base_dirs()))
    }
}

/// One package as dpkg knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub name: String,
    pub installed: bool,
    pub version: String,
}

/// Parse `dpkg-query -W -f='${Package}\t${db:Status-Abbrev}\t${Version}\n'`.
pub fn parse_query(out: &str) -> Vec<Known> {
    out.lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            let name = f.next()?.to_string();
            let st = f.next()?;
            let version = f.next().unwrap_or("").to_string();
            // Status-Abbrev: desired, current, error; current `i` = installed.
            let installed = st.as_bytes().get(1) == Some(&b'i');
            Some(Known {
                name,
                installed,
                version: if installed { version } else { String::new() },
            })
        })
        .collect()
}

/// Parse `apt-cache policy A B ...` into (package, installed, candidate).
pub fn parse_policy(out: &str) -> Vec<(String, String, String)> {
    let mut v = Vec::new();
    let mut cur: Option<(String, String, String)> = None;
    for l in out.lines() {
        if !l.starts_with(' ') && l.ends_with(':') {
            if let Some(c) = cur.take() {
                v.push(c);
            }
            cur = Some((
                l.trim_end_matches(':').to_string(),
                String::new(),
                String::new(),
            ));
        } else if let Some(c) = cur.as_mut() {
            let t = l.trim();
            if let Some(x) = t.strip_prefix("Installed:") {
                c.1 = x.trim().to_string();
            } else if let Some(x) = t.strip_prefix("Candidate:") {
                c.2 = x.trim().to_string();
            }
        }
    }
    v.extend(cur);
    v
}

/// Which of the requested packages need work for `state`.
pub fn needing_work(
    p: &Params,
    known: &[Known],
    policy: &[(String, String, String)],
) -> Vec<String> {
    let find = |n: &str| {
        known
            .iter()
            .find(|k| k.name == n || k.name.split(':').next() == Some(n))
    };
    p.names
        .iter()
        .filter(|spec| {
            let (n, ver) = match spec.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (spec.as_str(), None),
            };
            let k = find(n);
            let installed = k.is_some_and(|k| k.installed);
            match p.state {
                State::Absent => installed,
                State::Present => match ver {
                    None => !installed,
                    Some(v) => {
                        !installed || !k.unwrap().version.starts_with(v.trim_end_matches('*'))
                    }
                },
                State::Latest => {
                    !installed
                        || policy
                            .iter()
                            .find(|(pn, _, _)| pn == n)
                            .is_some_and(|(_, i, c)| c != "(none)" && !c.is_empty() && i != c)
                }
            }
        })
        .cloned()
        .collect()
}

const APT_ENV: &str = "DEBIAN_FRONTEND=noninteractive";
const DPKG_OPTS: &str = "-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold";

/// The steps of an apt task, in order: each is planned once the ones before it are
/// applied (in check mode: recorded), as the package query must see the updated
/// cache and an installed `.deb`, and the autoremove probe the install or removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    Update,
    Deb,
    Names,
    Autoremove,
}

/// What an apt step hands its apply.
pub enum Work {
    /// Update the cache when older than `cache_valid_time`, checked as it acts.
    Update,
    /// Install the `.deb` at `path` unless dpkg has it (`upload`: the controller's).
    Deb {
        path: String,
        upload: Option<Vec<u8>>,
    },
    /// Run this apt-get for these packages.
    Names { cmd: String, todo: Vec<String> },
    /// Remove the packages nothing needs any more.
    Autoremove,
}

pub async fn plan(t: &dyn Transport, p: &Params, ctx: &OpContext<'_>) -> Result<Plan, OpError> {
    plan_step(t, p, ctx, OpOutcome::new(false), Step::Update).await
}

/// Plan the first step from `from` on the task asks for; `r`: the outcome so far.
pub async fn plan_step(
    t: &dyn Transport,
    p: &Params,
    ctx: &OpContext<'_>,
    mut r: OpOutcome,
    from: Step,
) -> Result<Plan, OpError> {
    let asked = |s: Step| match s {
        Step::Update => p.update_cache,
        Step::Deb => p.deb.is_some(),
        Step::Names => !p.names.is_empty(),
        Step::Autoremove => p.autoremove,
    };
    let steps = [Step::Update, Step::Deb, Step::Names, Step::Autoremove];
    let mut todo = steps.into_iter().filter(|s| *s >= from && asked(*s));
    let Some(step) = todo.next() else {
        return Ok(Plan::done(r));
    };
    let plan = match step {
        // Checked as the apply acts: one round trip (check mode checks only).
        Step::Update => {
            Plan::found_by_apply(r, vec![Change::Host("apt-get update".into())], Work::Update)
        }
        Step::Deb => {
            let deb = p.deb.clone().unwrap_or_default();
            let (path, upload) = match p.controller_deb(ctx) {
                Some(local) => {
                    let data = std::fs::read(&local).map_err(|e| {
                        OpError::failed(format!("reading {}: {e}", local.display()))
                    })?;
                    let remote = format!("/tmp/ferry-{}.deb", &sha256_hex(&data)[..16]);
                    (remote, Some(data))
                }
                None => {
                    let st = t.stat(&deb).await?;
                    if !st.is_file {
                        return Err(OpError::failed(format!(
                            "deb `{deb}` is neither on the controller (search path: {}) nor on the host",
                            super::copy::search_list(&ctx.base_dirs())
                        )));
                    }
                    (deb.clone(), None)
                }
            };
            Plan::found_by_apply(
                r,
                vec![Change::Host(format!("dpkg -i {deb}"))],
                Work::Deb { path, upload },
            )
        }
        Step::Names => {
            let names: Vec<&str> = p
                .names
                .iter()
                .map(|n| n.split('=').next().unwrap_or(n))
                .collect();
            let qn = names
                .iter()
                .map(|n| sh_quote(n))
                .collect::<Vec<_>>()
                .join(" ");
            let mut cmd = format!(
                "dpkg-query -W -f='${{Package}}\\t${{db:Status-Abbrev}}\\t${{Version}}\\n' {qn} 2>/dev/null; true"
            );
            if p.state == State::Latest {
                cmd.push_str(&format!(
                    "; echo '--policy--'; LANG=C apt-cache policy {qn} 2>/dev/null; true"
                ));
            }
            let out = sh(t, cmd).await?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let (q, pol) = text.split_once("--policy--\n").unwrap_or((&text, ""));
            let todo = needing_work(p, &parse_query(q), &parse_policy(pol));
            if todo.is_empty() {
                Plan::done(r)
            } else {
                r.changed = true;
                r.msg = Some(format!(
                    "{} {}",
                    if p.state == State::Absent {
                        "removed"
                    } else {
                        "installed"
                    },
                    todo.join(", ")
                ));
                let list = todo
                    .iter()
                    .map(|n| sh_quote(n))
                    .collect::<Vec<_>>()
                    .join(" ");
                let rec = match p.install_recommends {
                    Some(true) => " -o APT::Install-Recommends=yes",
                    Some(false) => " -o APT::Install-Recommends=no",
                    None => "",
                };
                let cmd = match p.state {
                    State::Absent => format!(
                        "{APT_ENV} apt-get remove -y -q{} {list}",
                        if p.purge { " --purge" } else { "" }
                    ),
                    State::Present => {
                        format!("{APT_ENV} apt-get install -y -q{rec} {DPKG_OPTS} {list}")
                    }
                    State::Latest => format!(
                        "{APT_ENV} apt-get install -y -q --only-upgrade{rec} {DPKG_OPTS} {list} && {APT_ENV} apt-get install -y -q{rec} {DPKG_OPTS} {list}"
                    ),
                };
                let change = Change::Host(format!("apt-get for {}", todo.join(", ")));
                Plan::changes(r, vec![change], Work::Names { cmd, todo })
            }
        }
        Step::Autoremove => {
            let probe = format!("{APT_ENV} apt-get -s autoremove | grep -q '^Remv '");
            let out = sh(t, probe).await?;
            if out.rc == 0 {
                r.changed = true;
                let change = Change::Host("apt-get autoremove".into());
                Plan::changes(r, vec![change], Work::Autoremove)
            } else {
                Plan::done(r)
            }
        }
    };
    Ok(match todo.next() {
        Some(next) => plan.then(next),
        None => plan,
    })
}

/// The cache update, checked as it acts in one round trip (`act`: update a stale
/// cache; else only say it would): whether it was (would be) updated, in `r`.
async fn update(
    t: &dyn Transport,
    p: &Params,
    mut r: OpOutcome,
    act: bool,
) -> Result<(OpOutcome, bool), OpError> {
    let valid = p.cache_valid_time.unwrap_or(0);
    let action = if act {
        format!(
            "{APT_ENV} apt-get update -q >/dev/null && mkdir -p /var/lib/apt/periodic && touch /var/lib/apt/periodic/update-success-stamp && echo UPDATE"
        )
    } else {
        "echo UPDATE".to_string()
    };
    let cmd = format!(
        "now=$(date +%s); t=$(stat -c %Y /var/lib/apt/periodic/update-success-stamp 2>/dev/null || stat -c %Y /var/lib/apt/lists 2>/dev/null || echo 0); \
         if [ $((now - t)) -lt {valid} ]; then echo FRESH; else {action}; fi"
    );
    let out = sh(t, cmd).await?;
    if out.rc != 0 {
        return Err(OpError::command("apt-get update failed", &out));
    }
    let updated = String::from_utf8_lossy(&out.stdout).contains("UPDATE");
    r.set("cache_updated", updated);
    // As Ansible's apt: a cache update is a change only when nothing else is asked.
    r.changed |= updated && p.names.is_empty() && p.deb.is_none();
    Ok((r, updated))
}

/// The `.deb` at `path` on the host (`cleanup`: a copy removed after; `stdin`: the
/// `.deb`, when it comes that way), checked as it acts in one round trip (`act`:
/// install it unless dpkg has its version; else only say it would): whether it was
/// (would be) installed, in `r`.
async fn deb(
    t: &dyn Transport,
    p: &Params,
    mut r: OpOutcome,
    (path, cleanup, stdin): (&str, bool, Option<Vec<u8>>),
    act: bool,
) -> Result<(OpOutcome, bool), OpError> {
    let deb = p.deb.clone().unwrap_or_default();
    let q = sh_quote(path);
    let install = if act {
        format!("{APT_ENV} dpkg {DPKG_OPTS_DPKG} -i {q} >&2 && echo INSTALL")
    } else {
        "echo INSTALL".to_string()
    };
    let rm = if cleanup {
        format!("rm -f {q}")
    } else {
        "true".into()
    };
    let receive = if stdin.is_some() {
        format!("(umask 077; cat > {q}) || exit $?; ")
    } else {
        String::new()
    };
    let cmd = format!(
        "{receive}n=$(dpkg-deb -f {q} Package) && v=$(dpkg-deb -f {q} Version) || {{ rc=$?; {rm}; exit $rc; }}; \
         cur=$(dpkg-query -W -f='${{db:Status-Abbrev}}|${{Version}}' \"$n\" 2>/dev/null); \
         if [ \"$cur\" = \"ii |$v\" ]; then echo OK; rc=0; else {install}; rc=$?; fi; {rm}; echo \"$n\"; exit $rc"
    );
    let out = t
        .run(&CommandSpec {
            stdin,
            ..CommandSpec::new(cmd)
        })
        .await?;
    if out.rc != 0 {
        return Err(OpError::command(format!("installing {deb}"), &out));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let installed = text.contains("INSTALL");
    if installed {
        r.changed = true;
        r.msg = Some(format!("installed {deb}"));
    }
    if let Some(n) = text.lines().last() {
        r.set("package", n.to_string());
    }
    Ok((r, installed))
}

/// A step whose apply checks as it acts, only checked (check mode's): the cache's
/// age, or whether dpkg has the `.deb`'s version (a controller `.deb` goes to the
/// host on the probe's stdin into a temp copy it removes: a real run's put would be
/// recorded, not made, in a `--check` run).
pub async fn plan_found(
    t: &dyn Transport,
    p: &Params,
    r: OpOutcome,
    work: Work,
) -> Result<Plan, OpError> {
    let (r, acts) = match &work {
        Work::Update => update(t, p, r, false).await?,
        Work::Deb { path, upload } => {
            let sent = (path.as_str(), upload.is_some(), upload.clone());
            deb(t, p, r, sent, false).await?
        }
        _ => return Ok(Plan::changes(r, Vec::new(), work)),
    };
    if !acts {
        return Ok(Plan::done(r));
    }
    let change = match &work {
        Work::Update => "apt-get update".into(),
        _ => format!("dpkg -i {}", p.deb.clone().unwrap_or_default()),
    };
    Ok(Plan::changes(r, vec![Change::Host(change)], work))
}

pub async fn apply(
    t: &dyn Transport,
    p: &Params,
    _: &OpContext<'_>,
    mut r: OpOutcome,
    work: Work,
) -> Result<OpOutcome, OpError> {
    match work {
        Work::Update => Ok(update(t, p, r, true).await?.0),
        Work::Deb { path, upload } => {
            let cleanup = upload.is_some();
            if let Some(data) = upload {
                t.put_file(&FileSpec {
                    path: path.clone(),
                    content: data,
                    mode: Some(0o600),
                    ..FileSpec::default()
                })
                .await?;
            }
            Ok(deb(t, p, r, (&path, cleanup, None), true).await?.0)
        }
        Work::Names { cmd, todo } => {
            let out = sh(t, cmd).await?;
            if out.rc != 0 {
                return Err(OpError::command(
                    format!("apt-get for {}", todo.join(", ")),
                    &out,
                ));
            }
            r.set("stdout", String::from_utf8_lossy(&out.stdout).into_owned());
            Ok(r)
        }
        Work::Autoremove => {
            let out = sh(t, format!("{APT_ENV} apt-get autoremove -y -q")).await?;
            if out.rc != 0 {
                return Err(OpError::command("apt-get autoremove", &out));
            }
            Ok(r)
        }
    }
}

const DPKG_OPTS_DPKG: &str = "--force-confdef --force-confold";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(v: serde_json::Value) -> Params {
        Params::parse(&serde_json::from_value(v).unwrap()).unwrap()
    }

    #[test]
    fn parses_lists_and_states() {
        assert_eq!(p(json!({"name": "a,b"})).names, vec!["a", "b"]);
        assert_eq!(
            p(json!({"pkg": ["a"], "state": "removed"})).state,
            State::Absent
        );
        assert!(
            Params::parse(&serde_json::from_value(json!({"name": "a", "state": "fixed"})).unwrap())
                .is_err()
        );
        assert!(
            Params::parse(&serde_json::from_value(json!({"state": "present"})).unwrap()).is_err()
        );
        assert!(
            Params::parse(
                &serde_json::from_value(json!({"name": "a", "allow_unauthenticated": true}))
                    .unwrap()
            )
            .unwrap_err()
            .to_string()
            .contains("allow_unauthenticated")
        );
    }

    #[test]
    fn plans_from_dpkg_query() {
        let q = parse_query("vim\tii \t2:9.0\nnano\trc \t7.2\nlibc6:amd64\tii \t2.36\n");
        assert_eq!(
            q[1],
            Known {
                name: "nano".into(),
                installed: false,
                version: String::new()
            }
        );
        assert_eq!(
            needing_work(&p(json!({"name": ["vim", "nano", "curl"]})), &q, &[]),
            vec!["nano", "curl"]
        );
        assert_eq!(
            needing_work(
                &p(json!({"name": ["vim", "nano"], "state": "absent"})),
                &q,
                &[]
            ),
            vec!["vim"]
        );
        assert_eq!(
            needing_work(&p(json!({"name": ["vim=2:9.0", "libc6=2.37"]})), &q, &[]),
            vec!["libc6=2.37"]
        );
        let pol = parse_policy(
            "vim:\n  Installed: 2:9.0\n  Candidate: 2:9.1\n  Version table:\nlibc6:\n  Installed: 2.36\n  Candidate: 2.36\n",
        );
        assert_eq!(
            needing_work(
                &p(json!({"name": ["vim", "libc6"], "state": "latest"})),
                &q,
                &pol
            ),
            vec!["vim"]
        );
    }
}
