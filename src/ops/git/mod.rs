//! `git`: a checkout of `repo` at `version` (branch, tag or full commit id)
//! in `dest`, idempotent: nothing is fetched when the checkout is already at
//! the commit `version` names.
//!
//! Two ways (ferry-specific `via:`):
//! - `host`: the host's own git clones/fetches (the repo must be reachable
//!   from the host, e.g. a `git daemon` in the lab or a `file://` path on it);
//! - `controller`: git2 fetches on the controller into a cache, and the tree
//!   at that commit is sent to the host as one tar stream (for hosts with no
//!   route to the repo or no git), with `DEST/.ferry-git` recording the commit.
//!
//! `auto` (default) uses the host's git when the host has one, since the
//! tree then never crosses the control connection; otherwise the controller.

mod sync;

use crate::ops::{Args, Change, OpContext, OpError, OpOutcome, Plan, sh, sh_quote};
use crate::transport::{CommandSpec, Transport};
use crate::vars::Vars;

use crate::ops::schema::Spec;

/// What `git` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "git",
    flags: "",
    params: "repo:str!/name; dest:path!; version:str; force:bool; depth:int; clone:bool; update:bool; via:str=auto,host,controller",
    rules: "",
};

crate::ops::planned_op!(GitOp, SPEC);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Auto,
    Host,
    Controller,
}

#[derive(Debug, Clone)]
pub struct Params {
    pub repo: String,
    pub dest: String,
    pub version: String,
    pub force: bool,
    pub update: bool,
    pub clone: bool,
    pub depth: Option<u64>,
    pub via: Via,
}

impl Params {
    pub fn parse(args: &Vars) -> Result<Params, OpError> {
        let a = Args::new("git", args);
        let via = match a.choice("via", "auto")?.as_str() {
            "host" => Via::Host,
            "controller" => Via::Controller,
            _ => Via::Auto,
        };
        let p = Params {
            repo: a.req_str("repo")?,
            dest: a.req_str("dest")?,
            version: a.str("version")?.unwrap_or_else(|| "HEAD".into()),
            force: a.bool_or("force", false)?,
            update: a.bool_or("update", true)?,
            clone: a.bool_or("clone", true)?,
            depth: a.u64("depth")?,
            via,
        };
        a.finish()?;
        if p.version.starts_with('-') || p.version.contains(char::is_whitespace) {
            return Err(OpError::params(
                "git",
                format!("bad version `{}`", p.version),
            ));
        }
        if p.depth.is_some() && is_sha(&p.version) {
            return Err(OpError::params(
                "git",
                "depth works with a branch or tag version, not a commit id",
            ));
        }
        Ok(p)
    }
}

pub fn is_sha(v: &str) -> bool {
    v.len() == 40 && v.chars().all(|c| c.is_ascii_hexdigit())
}

/// What `version` resolves to in `git ls-remote REPO V V^{}` output:
/// (commit, is a branch).
pub fn resolve(version: &str, ls_remote: &str) -> Option<(String, bool)> {
    if is_sha(version) {
        return Some((version.to_lowercase(), false));
    }
    let refs: Vec<(&str, &str)> = ls_remote
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .collect();
    let find = |name: &str| {
        refs.iter()
            .find(|(_, r)| *r == name)
            .map(|(s, _)| s.to_string())
    };
    if version == "HEAD" {
        return find("HEAD").map(|s| (s, false));
    }
    if let Some(s) = find(&format!("refs/heads/{version}")) {
        return Some((s, true));
    }
    find(&format!("refs/tags/{version}^{{}}"))
        .or_else(|| find(&format!("refs/tags/{version}")))
        .map(|s| (s, false))
}

fn failed(msg: impl Into<String>) -> OpError {
    OpError::failed(msg)
}

/// What a git plan's apply does.
pub enum Work {
    /// Run this clone or fetch and checkout on the host (`via: host`).
    Checkout(String),
    /// Send the tree at this commit from the controller (`via: controller`).
    Sync(String),
}

/// The change a checkout would make: what it would hold is not recorded, so later
/// tasks reading it are "not checked" rather than predicted from the old tree.
fn changed_checkout(mut r: OpOutcome, dest: &str, work: Work) -> Plan {
    r.changed = true;
    Plan::changes(r, vec![Change::Unknown(dest.to_string())], work)
}

pub async fn plan(t: &dyn Transport, p: &Params, _: &OpContext<'_>) -> Result<Plan, OpError> {
    let d = sh_quote(&p.dest);
    let probe = format!(
        "command -v git >/dev/null 2>&1 && echo hasgit=1; \
         if [ -f {d}/.ferry-git ]; then echo synced=$(cat {d}/.ferry-git); fi; \
         if [ -d {d}/.git ] && command -v git >/dev/null 2>&1; then echo head=$(git -C {d} rev-parse HEAD 2>/dev/null); \
         echo dirty=$(git --no-optional-locks -C {d} status --porcelain --untracked-files=no | head -c1 | wc -c); fi; \
         [ -e {d} ] && echo exists=1; [ -n \"$(ls -A {d} 2>/dev/null | head -c1)\" ] && echo nonempty=1; true"
    );
    let out = sh(t, probe).await?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(|v| v.trim().to_string())
    };
    let via = match p.via {
        Via::Auto if get("hasgit").is_some() => Via::Host,
        Via::Auto => Via::Controller,
        v => v,
    };
    if via == Via::Controller {
        return sync::plan(p, get("synced"), get("nonempty").is_some()).await;
    }
    if get("hasgit").is_none() {
        return Err(failed("git: the host has no git; use via: controller"));
    }
    let head = get("head").filter(|h| !h.is_empty());
    let dirty = get("dirty").is_some_and(|v| v != "0");
    let mut r = OpOutcome::new(false);
    r.set(
        "before",
        head.clone()
            .map(serde_json::Value::from)
            .unwrap_or(serde_json::Value::Null),
    );
    if head.is_none() && !p.clone {
        return Ok(Plan::done(r.msg("not cloned (clone: false)")));
    }
    if head.is_some() && !p.update {
        r.set("after", head.clone().unwrap_or_default());
        return Ok(Plan::done(r));
    }
    let repo = sh_quote(&p.repo);
    let v = sh_quote(&p.version);
    let ls = if is_sha(&p.version) {
        String::new()
    } else {
        let out = t
            .run(&CommandSpec {
                timeout: Some(std::time::Duration::from_secs(120)),
                ..CommandSpec::new(format!(
                    "git ls-remote {repo} {v} {}",
                    sh_quote(&format!("{}^{{}}", p.version))
                ))
            })
            .await?;
        if out.rc != 0 {
            return Err(OpError::command(format!("git ls-remote {}", p.repo), &out));
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let (target, branch) = resolve(&p.version, &ls)
        .ok_or_else(|| failed(format!("version `{}` not found in {}", p.version, p.repo)))?;
    r.set("after", target.clone());
    if head.as_deref() == Some(target.as_str()) {
        return Ok(Plan::done(r));
    }
    if head.is_none() && get("nonempty").is_some() {
        return Err(failed(format!(
            "destination {} exists, is not empty and is not a git checkout",
            p.dest
        )));
    }
    if dirty && !p.force {
        return Err(failed(format!(
            "Local modifications exist in the destination: {} (force: true to discard them)",
            p.dest
        )));
    }
    let checkout = if branch {
        format!("git -C {d} checkout -q --force -B {v} {target}")
    } else {
        format!("git -C {d} checkout -q --force --detach {target}")
    };
    let cmd = if head.is_none() {
        let depth = match p.depth {
            Some(n) => format!(" --depth {n} --no-single-branch --branch {v}"),
            None => String::new(),
        };
        format!("git clone -q{depth} {repo} {d} && {checkout}")
    } else {
        format!(
            "git -C {d} remote set-url origin {repo} 2>/dev/null || git -C {d} remote add origin {repo}; \
             (git -C {d} cat-file -e {target}^{{commit}} 2>/dev/null || git -C {d} fetch -q --tags origin '+refs/heads/*:refs/remotes/origin/*') && {checkout}"
        )
    };
    Ok(changed_checkout(r, &p.dest, Work::Checkout(cmd)))
}

pub async fn apply(
    t: &dyn Transport,
    p: &Params,
    _: &OpContext<'_>,
    r: OpOutcome,
    work: Work,
) -> Result<OpOutcome, OpError> {
    let cmd = match work {
        Work::Checkout(cmd) => cmd,
        Work::Sync(target) => {
            sync::apply(t, p, target).await?;
            return Ok(r);
        }
    };
    let out = t
        .run(&CommandSpec {
            timeout: Some(std::time::Duration::from_secs(3600)),
            ..CommandSpec::new(cmd)
        })
        .await?;
    if out.rc != 0 {
        return Err(OpError::command(
            format!("git checkout of {} at {}", p.repo, p.version),
            &out,
        ));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resolves_versions() {
        let ls = "aaaa\tHEAD\nbbbb\trefs/heads/main\ncccc\trefs/tags/v1\ndddd\trefs/tags/v1^{}\n";
        assert_eq!(resolve("main", ls), Some(("bbbb".into(), true)));
        assert_eq!(resolve("v1", ls), Some(("dddd".into(), false)));
        assert_eq!(resolve("HEAD", ls), Some(("aaaa".into(), false)));
        assert_eq!(resolve("nope", ls), None);
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(resolve(sha, ""), Some((sha.into(), false)));
    }

    #[test]
    fn params() {
        let p = |v| Params::parse(&serde_json::from_value(v).unwrap());
        assert!(p(json!({"repo": "r", "dest": "/d", "version": "--upload-pack=x"})).is_err());
        assert!(p(json!({"repo": "r", "dest": "/d", "via": "ssh"})).is_err());
        assert_eq!(
            p(json!({"repo": "r", "dest": "/d"})).unwrap().version,
            "HEAD"
        );
    }
}
