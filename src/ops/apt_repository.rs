//! `apt_repository`: an APT source line in
//! `/etc/apt/sources.list.d/<filename>.list` (the file name derived from the
//! repo URL as Ansible derives it when `filename:` is not given). A line
//! already present in `sources.list` or any `sources.list.d/*.list` counts as
//! present (whitespace and `[options]` spacing normalised); `absent` removes
//! it from every file holding it and deletes a `.list` file left empty.
//! Files are written atomically through the shared content path.
//! `update_cache` (default yes, as in Ansible) runs `apt-get update` after a
//! change; lab hosts have no mirror, so lab playbooks say `update_cache: no`.

use super::attrs::{FileAttrs, ModeSpec};
use super::content::{FileWork, WriteOpts, plan_content};
use super::{Args, Change, OpContext, OpError, OpOutcome, Plan, sh};
use crate::ops::check_state::CheckOverlay;
use crate::transport::Transport;
use crate::vars::Vars;

use super::schema::Spec;

/// What `apt_repository` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "apt_repository",
    flags: "",
    params: "repo:str!; state:str=present,absent; filename:str; update_cache:bool/update-cache; mode:mode",
    rules: "",
};

crate::ops::planned_op!(AptRepositoryOp, SPEC);

pub const SOURCES: &str = "/etc/apt/sources.list";
pub const SOURCES_D: &str = "/etc/apt/sources.list.d";

#[derive(Debug, Clone)]
pub struct Params {
    pub repo: String,
    pub present: bool,
    pub filename: Option<String>,
    pub update_cache: bool,
    pub mode: Option<ModeSpec>,
}

impl Params {
    pub fn parse(args: &Vars) -> Result<Params, OpError> {
        let a = Args::new("apt_repository", args);
        let p = Params {
            repo: a.req_str("repo")?,
            present: a.choice("state", "present")? == "present",
            filename: a.str("filename")?,
            update_cache: a.bool_or("update_cache", true)?,
            mode: match a.value("mode")? {
                None => None,
                Some(v) => Some(ModeSpec::parse(v).map_err(|e| a.err(e.to_string()))?),
            },
        };
        a.finish()?;
        let line = normalize(&p.repo);
        let kind = line.split_whitespace().next().unwrap_or("");
        if kind != "deb" && kind != "deb-src" {
            return Err(OpError::params(
                "apt_repository",
                format!(
                    "repo `{}` must be a sources line starting with deb or deb-src (ppa: needs Launchpad, unreachable from the lab)",
                    p.repo
                ),
            ));
        }
        if line.split_whitespace().count() < 3 {
            return Err(OpError::params(
                "apt_repository",
                format!("repo `{}` needs at least: deb URI SUITE", p.repo),
            ));
        }
        if let Some(f) = &p.filename
            && (f.is_empty() || f.contains('/'))
        {
            return Err(OpError::params(
                "apt_repository",
                format!("filename `{f}` must be a plain name (no directory)"),
            ));
        }
        Ok(p)
    }

    /// `/etc/apt/sources.list.d/<name>.list`.
    pub fn path(&self) -> String {
        let name = match &self.filename {
            Some(f) => f.strip_suffix(".list").unwrap_or(f).to_string(),
            None => suggest_name(&self.repo),
        };
        format!("{SOURCES_D}/{name}.list")
    }
}

/// A sources line without its comment, words separated by single spaces.
pub fn normalize(line: &str) -> String {
    let line = line.split('#').next().unwrap_or("");
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Ansible's file name for a repo line: the URI without scheme, options and
/// credentials, non-alphanumerics turned into `_`.
pub fn suggest_name(repo: &str) -> String {
    let no_opts = regex::Regex::new(r"\[[^\]]+\]")
        .expect("static regex")
        .replace_all(repo, "");
    let no_scheme = regex::Regex::new(r"\w+://")
        .expect("static regex")
        .replace_all(&no_opts, "");
    let first = no_scheme
        .split_whitespace()
        .find(|p| *p != "deb" && *p != "deb-src")
        .unwrap_or("");
    let first = first.rsplit('@').next().unwrap_or(first);
    first
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

/// `==> PATH` separated contents of every sources file, as the host printed them.
pub fn split_files(out: &str) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = Vec::new();
    for l in out.split_inclusive('\n') {
        if let Some(p) = l.strip_prefix("==> ") {
            files.push((p.trim_end().to_string(), String::new()));
        } else if let Some(f) = files.last_mut() {
            f.1.push_str(l);
        }
    }
    files
}

/// What the apply does: write or remove the sources files, in order, then (when it
/// changed them and `update_cache` says so) `apt-get update`.
pub struct Work {
    files: Vec<FileWork>,
    update_cache: bool,
}

pub async fn plan(t: &dyn Transport, p: &Params, ctx: &OpContext<'_>) -> Result<Plan, OpError> {
    let want = normalize(&p.repo);
    let out = sh(
        t,
        format!("for f in {SOURCES} {SOURCES_D}/*.list; do [ -f \"$f\" ] && {{ echo \"==> $f\"; cat \"$f\"; echo; }}; done; true"),
    )
    .await?;
    let mut files = split_files(&String::from_utf8_lossy(&out.stdout));
    // In a --check run: the sources as earlier check-mode tasks would have left them.
    if let Some(o) = t.check_overlay() {
        let mut paths: Vec<String> = files.iter().map(|(p, _)| p.clone()).collect();
        for (p, st) in o.recorded_below(SOURCES_D).await? {
            if st.is_file && p.ends_with(".list") && !paths.contains(&p) {
                paths.push(p);
            }
        }
        if !paths.iter().any(|p| p == SOURCES) {
            paths.insert(0, SOURCES.to_string());
        }
        files.clear();
        for p in paths {
            if t.stat(&p).await?.is_file {
                let mut text = String::from_utf8_lossy(&t.get_file(&p).await?).into_owned();
                text.push('\n');
                files.push((p, text));
            }
        }
    }
    let holds = |text: &str| text.lines().any(|l| normalize(l) == want);
    let target = p.path();
    let attrs = FileAttrs {
        mode: Some(p.mode.clone().unwrap_or(ModeSpec::Octal(0o644))),
        owner: None,
        group: None,
    };
    let mut r = OpOutcome::new(false)
        .with("repo", p.repo.clone())
        .with("state", if p.present { "present" } else { "absent" });
    let mut diffs = Vec::new();
    let mut work = Vec::new();
    let opts = WriteOpts::new();
    if p.present {
        if files.iter().any(|(_, text)| holds(text)) {
            return Ok(Plan::done(r));
        }
        let st = t.stat(&target).await?;
        let mut content = if st.exists {
            t.get_file(&target).await?
        } else {
            Vec::new()
        };
        if !content.is_empty() && !content.ends_with(b"\n") {
            content.push(b'\n');
        }
        content.extend_from_slice(format!("{want}\n").as_bytes());
        let w = plan_content(t, &target, &st, None, &content, &attrs, &opts, ctx).await?;
        r.changed = w.written.changed;
        diffs.extend(w.written.diff.clone());
        if w.written.changed {
            work.push(FileWork::Write(Box::new(w), opts.clone()));
        }
        r.set("sources_added", vec![target.clone()]);
    } else {
        let mut removed = Vec::new();
        for (path, text) in files.iter().filter(|(_, text)| holds(text)) {
            // The host printed an extra blank line after each file.
            let text = text.strip_suffix('\n').unwrap_or(text);
            let kept: String = text
                .split_inclusive('\n')
                .filter(|l| normalize(l) != want)
                .collect();
            r.changed = true;
            removed.push(path.clone());
            let empty = kept.lines().all(|l| normalize(l).is_empty());
            if empty && path.as_str() != SOURCES {
                work.push(FileWork::Remove(path.clone()));
                if ctx.diff {
                    diffs.push(super::Diff {
                        path: Some(path.clone()),
                        before: text.to_string(),
                        after: String::new(),
                    });
                }
            } else {
                let st = t.stat(path).await?;
                let keep = FileAttrs {
                    mode: None,
                    ..attrs.clone()
                };
                let w = plan_content(
                    t,
                    path,
                    &st,
                    Some(text.as_bytes()),
                    kept.as_bytes(),
                    &keep,
                    &opts,
                    ctx,
                )
                .await?;
                diffs.extend(w.written.diff.clone());
                if w.written.changed {
                    work.push(FileWork::Write(Box::new(w), opts.clone()));
                }
            }
        }
        r.set("sources_removed", removed);
    }
    r.diff = diffs.into_iter().next();
    let update_cache = r.changed && p.update_cache;
    if work.is_empty() && !update_cache {
        return Ok(Plan::done(r));
    }
    let mut changes: Vec<Change> = work.iter().flat_map(FileWork::changes).collect();
    if update_cache {
        changes.push(Change::Host("apt-get update".into()));
    }
    let work = Work {
        files: work,
        update_cache,
    };
    Ok(Plan::changes(r, changes, work))
}

pub async fn apply(
    t: &dyn Transport,
    _: &Params,
    _: &OpContext<'_>,
    mut r: OpOutcome,
    work: Work,
) -> Result<OpOutcome, OpError> {
    for w in work.files {
        w.apply(t).await?;
    }
    if work.update_cache {
        let out = sh(t, "DEBIAN_FRONTEND=noninteractive apt-get update -q").await?;
        if out.rc != 0 {
            return Err(OpError::command(
                "apt-get update after changing the sources failed",
                &out,
            ));
        }
        r.set("cache_updated", true);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_and_lines() {
        assert_eq!(
            suggest_name("deb http://archive.canonical.com/ubuntu hardy partner"),
            "archive_canonical_com_ubuntu"
        );
        assert_eq!(
            suggest_name("deb [arch=amd64 trusted=yes] http://u:p@10.0.0.1:8080/debian ./"),
            "10_0_0_1_8080_debian"
        );
        assert_eq!(
            normalize("deb  [ arch=amd64 ]   http://x  stable main # c"),
            "deb [ arch=amd64 ] http://x stable main"
        );
        let p = |v| Params::parse(&serde_json::from_value(v).unwrap());
        assert_eq!(
            p(json!({"repo": "deb http://x/y s main", "filename": "mine"}))
                .unwrap()
                .path(),
            "/etc/apt/sources.list.d/mine.list"
        );
        assert!(p(json!({"repo": "ppa:foo/bar"})).is_err());
        assert!(p(json!({"repo": "deb http://x s", "codename": "x"})).is_err());
        assert!(p(json!({"repo": "deb http://x s"})).unwrap().update_cache);
        let f = split_files("==> /a\ndeb x y\n\n==> /b\n\n");
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].1, "deb x y\n\n");
    }
}
