//! `file`: a path's state (file, directory, link, hard, touch, absent) and
//! its mode/owner/group, optionally recursively. Planned: the stat and probes are
//! the plan ([`Step`]s and the changes check mode records), the steps are the apply.

use super::attrs::{FileAttrs, ModeSpec, ensure_attrs, plan_attrs, stat_result};
use super::{Args, Change, OpContext, OpError, OpOutcome, Plan, sh, sh_ok, sh_quote};
use crate::ops::check_state::CheckOverlay;
use crate::transport::{FileSpec, FileStat, Transport};
use crate::vars::Vars;

use super::schema::Spec;

/// What `file` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "file",
    flags: "",
    params: "path:path!/dest,name; state:str=file,directory,link,hard,touch,absent; mode:mode; owner:str; group:str; recurse:bool; src:path; force:bool",
    rules: "",
};

crate::ops::planned_op!(FileOp, SPEC);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    File,
    Directory,
    Link,
    Hard,
    Touch,
    Absent,
}

#[derive(Debug, Clone)]
pub struct Params {
    pub path: String,
    /// None: keep whatever the path is (Ansible's default).
    pub state: Option<State>,
    pub src: Option<String>,
    pub recurse: bool,
    pub force: bool,
    pub attrs: FileAttrs,
}

impl Params {
    pub fn parse(args: &Vars) -> Result<Params, OpError> {
        let a = Args::new("file", args);
        let path = a.req_str("path")?;
        let state = match a.str("state")?.as_deref() {
            None => None,
            Some("file") => Some(State::File),
            Some("directory") => Some(State::Directory),
            Some("link") => Some(State::Link),
            Some("hard") => Some(State::Hard),
            Some("touch") => Some(State::Touch),
            Some("absent") => Some(State::Absent),
            Some(o) => {
                return Err(a.err(format!(
                    "`state` must be one of file, directory, link, hard, touch, absent, got `{o}`"
                )));
            }
        };
        let p = Params {
            path,
            state,
            src: a.str("src")?,
            recurse: a.bool_or("recurse", false)?,
            force: a.bool_or("force", false)?,
            attrs: FileAttrs::parse(&a)?,
        };
        a.finish()?;
        if matches!(p.state, Some(State::Link | State::Hard)) && p.src.is_none() {
            return Err(OpError::params(
                "file",
                "src is required for state=link and state=hard",
            ));
        }
        if p.recurse && p.state != Some(State::Directory) {
            return Err(OpError::params("file", "recurse requires state=directory"));
        }
        if p.recurse && matches!(p.attrs.mode, Some(ModeSpec::Symbolic(_))) {
            return Err(OpError::params(
                "file",
                "ferry supports recurse with an octal mode only (symbolic modes differ per file)",
            ));
        }
        Ok(p)
    }
}

fn report(changed: bool, path: &str, st: &FileStat) -> OpOutcome {
    let mut r = OpOutcome::new(changed);
    stat_result(&mut r, path, st);
    r
}

/// One step of the apply.
pub enum Step {
    /// A shell command, and what it does (for its error).
    Sh(String, String),
    /// A new (empty) file.
    Put(FileSpec),
    /// `mkdir -p`, and what it does.
    MakeDirs(String, String),
    /// The attributes of a path just hard-linked (stat again, then fix).
    LinkedAttrs(String),
}

/// What the apply does: its steps, in order.
pub struct Work(Vec<Step>);

/// The plan: `r`, with these changes made by these steps (none: nothing to apply).
fn planned(r: OpOutcome, changes: Vec<Change>, steps: Vec<Step>) -> Plan {
    if steps.is_empty() {
        return Plan::done(r);
    }
    Plan::changes(r, changes, Work(steps))
}

/// Fixing `path`'s attributes (when they differ): its change and step.
fn attrs_step(
    path: &str,
    st: &FileStat,
    attrs: &FileAttrs,
    changes: &mut Vec<Change>,
    steps: &mut Vec<Step>,
) -> Result<bool, OpError> {
    Ok(match plan_attrs(path, st, attrs)? {
        None => false,
        Some((cmd, change)) => {
            changes.push(change);
            steps.push(Step::Sh(cmd, format!("setting attributes of {path}")));
            true
        }
    })
}

pub async fn plan(t: &dyn Transport, p: &Params, _: &OpContext<'_>) -> Result<Plan, OpError> {
    let path = p.path.as_str();
    let q = sh_quote(path);
    let st = t.stat(path).await?;
    let state = p.state.unwrap_or(if st.is_dir {
        State::Directory
    } else if st.is_link {
        State::Link
    } else {
        State::File
    });
    let (mut changes, mut steps) = (Vec::new(), Vec::new());
    match state {
        State::Absent => {
            if !st.exists && !st.is_link {
                return Ok(Plan::done(
                    OpOutcome::new(false)
                        .with("path", path)
                        .with("state", "absent"),
                ));
            }
            changes.push(Change::Remove(path.to_string()));
            steps.push(Step::Sh(
                format!("rm -rf -- {q}"),
                format!("removing {path}"),
            ));
            let r = OpOutcome::new(true)
                .with("path", path)
                .with("state", "absent");
            Ok(planned(r, changes, steps))
        }
        State::File => {
            if !st.exists {
                return Err(OpError::failed(format!(
                    "file ({path}) is absent, cannot continue (use state=touch to create it)"
                )));
            }
            if st.is_dir {
                return Err(OpError::failed(format!(
                    "{path} is a directory, not a file"
                )));
            }
            let changed = attrs_step(path, &st, &p.attrs, &mut changes, &mut steps)?;
            Ok(planned(report(changed, path, &st), changes, steps))
        }
        State::Touch => {
            if st.exists {
                changes.push(Change::Host(format!("touch {path}")));
                steps.push(Step::Sh(
                    format!("touch -- {q}"),
                    format!("touching {path}"),
                ));
                attrs_step(path, &st, &p.attrs, &mut changes, &mut steps)?;
            } else {
                let mode = p.attrs.wanted_mode(&FileStat {
                    mode: 0o644,
                    ..FileStat::default()
                })?;
                let spec = FileSpec {
                    path: path.to_string(),
                    content: Vec::new(),
                    mode,
                    owner: p.attrs.owner.clone(),
                    group: p.attrs.group.clone(),
                    become_: None,
                };
                changes.push(Change::AsGiven(spec.clone()));
                steps.push(Step::Put(spec));
            }
            let r = report(true, path, &st).with("state", "file");
            Ok(planned(r, changes, steps))
        }
        State::Directory => {
            if st.exists && !st.is_dir {
                return Err(OpError::failed(format!(
                    "{path} already exists as a {}",
                    if st.is_link { "link" } else { "file" }
                )));
            }
            if !st.exists {
                let fresh = FileStat {
                    mode: 0o755,
                    is_dir: true,
                    ..FileStat::default()
                };
                let what = format!("creating directory {path}");
                // Create each missing component and give it the attributes, as Ansible does.
                match p.attrs.fix_command("$d", &fresh, false)? {
                    // Fresh directories already have the attributes: one mkdir.
                    None => steps.push(Step::MakeDirs(path.to_string(), what)),
                    Some(fix) => {
                        let fix = fix.replace("'$d'", "\"$d\"");
                        let cmd = format!(
                            "p={q}; m=; while [ ! -e \"$p\" ]; do m=\"$p\n$m\"; p=$(dirname \"$p\"); done; \
                             printf '%s' \"$m\" | while IFS= read -r d; do [ -n \"$d\" ] || continue; \
                             mkdir \"$d\" && {fix} || exit 1; done"
                        );
                        steps.push(Step::Sh(cmd, what));
                    }
                }
                let mode = p.attrs.wanted_mode(&fresh)?;
                changes.push(Change::Dir {
                    path: path.to_string(),
                    mode,
                    owner: p.attrs.owner.clone(),
                    group: p.attrs.group.clone(),
                });
                let mut r = OpOutcome::new(true)
                    .with("path", path)
                    .with("state", "directory");
                if let Some(m) = p.attrs.wanted_mode(&FileStat {
                    mode: 0o755,
                    is_dir: true,
                    ..FileStat::default()
                })? {
                    r.set("mode", format!("{m:04o}"));
                }
                return Ok(planned(r, changes, steps));
            }
            let mut changed = attrs_step(path, &st, &p.attrs, &mut changes, &mut steps)?;
            if p.recurse {
                let (below, more, fix) = plan_recurse(t, path, &p.attrs).await?;
                changed |= below;
                changes.extend(more);
                if let Some(fix) = fix {
                    changes.push(Change::Host(format!("attributes below {path}")));
                    steps.push(Step::Sh(fix, format!("setting attributes below {path}")));
                }
            }
            let r = report(changed, path, &st);
            if changed && steps.is_empty() {
                // Only what check mode would have made below `path` differs.
                return Ok(Plan::changes(r, changes, Work(steps)));
            }
            Ok(planned(r, changes, steps))
        }
        State::Link => {
            let src = p.src.clone().unwrap_or_default();
            if st.is_link && st.link_target.as_deref() == Some(src.as_str()) {
                let changed = attrs_step(path, &st, &p.attrs, &mut changes, &mut steps)?;
                let r = report(changed, path, &st).with("src", src);
                return Ok(planned(r, changes, steps));
            }
            if st.exists && !st.is_link {
                if st.is_dir {
                    let out = sh(t, format!("ls -A -- {q} | head -c1")).await?;
                    if !out.stdout.is_empty() {
                        return Err(OpError::failed(format!(
                            "refusing to replace non-empty directory {path} with a link"
                        )));
                    }
                }
                if !p.force {
                    return Err(OpError::failed(format!(
                        "refusing to convert from {} to symlink for {path} (use force: true)",
                        if st.is_dir { "directory" } else { "file" }
                    )));
                }
            }
            let tmp = sh_quote(&format!("{path}.ferry-link.tmp"));
            let rmdir = if st.is_dir {
                format!("rmdir -- {q} && ")
            } else {
                String::new()
            };
            let mut cmd = format!(
                "{rmdir}ln -sfn -- {} {tmp} && mv -Tf -- {tmp} {q}",
                sh_quote(&src)
            );
            if let Some(o) = &p.attrs.owner {
                cmd.push_str(&format!(" && chown -h {} {q}", sh_quote(o)));
            }
            if let Some(g) = &p.attrs.group {
                cmd.push_str(&format!(" && chgrp -h {} {q}", sh_quote(g)));
            }
            steps.push(Step::Sh(cmd, format!("linking {path} -> {src}")));
            changes.push(Change::Link {
                path: path.to_string(),
                target: src.clone(),
                owner: p.attrs.owner.clone(),
                group: p.attrs.group.clone(),
            });
            let r = OpOutcome::new(true)
                .with("path", path)
                .with("src", src)
                .with("state", "link");
            Ok(planned(r, changes, steps))
        }
        State::Hard => {
            let src = p.src.clone().unwrap_or_default();
            let qs = sh_quote(&src);
            // In a --check run, src or path may exist only as what earlier tasks would make.
            let overlay = t.check_overlay();
            let same = match overlay {
                Some(_) if !t.stat(&src).await?.exists => Some(3),
                Some(o) => o.same_file(path, &src).map(|same| if same { 0 } else { 1 }),
                None => None,
            };
            let rc = match same {
                Some(rc) => rc,
                None => {
                    sh(
                        t,
                        format!("[ -e {qs} ] || exit 3; [ {q} -ef {qs} ] && exit 0; exit 1"),
                    )
                    .await?
                    .rc
                }
            };
            match rc {
                3 => Err(OpError::failed(format!("src file {src} does not exist"))),
                0 => {
                    let changed = attrs_step(path, &st, &p.attrs, &mut changes, &mut steps)?;
                    let r = report(changed, path, &st).with("src", src);
                    Ok(planned(r, changes, steps))
                }
                _ => {
                    if st.exists && !p.force {
                        return Err(OpError::failed(format!(
                            "refusing to replace {path} with a hard link (use force: true)"
                        )));
                    }
                    changes.push(Change::HardLink {
                        path: path.to_string(),
                        src: src.clone(),
                    });
                    steps.push(Step::Sh(
                        format!("ln -f -- {qs} {q}"),
                        format!("hard-linking {path}"),
                    ));
                    steps.push(Step::LinkedAttrs(path.to_string()));
                    let r = OpOutcome::new(true)
                        .with("path", path)
                        .with("src", src)
                        .with("state", "hard");
                    Ok(planned(r, changes, steps))
                }
            }
        }
    }
}

pub async fn apply(
    t: &dyn Transport,
    p: &Params,
    _: &OpContext<'_>,
    r: OpOutcome,
    Work(steps): Work,
) -> Result<OpOutcome, OpError> {
    for step in steps {
        match step {
            Step::Sh(cmd, what) => {
                sh_ok(t, cmd, &what).await?;
            }
            Step::Put(spec) => t.put_file(&spec).await?,
            Step::MakeDirs(path, what) => {
                let out = t.make_dirs(&path).await?;
                if out.rc != 0 {
                    return Err(OpError::command(what, &out));
                }
            }
            Step::LinkedAttrs(path) => {
                let nst = t.stat(&path).await?;
                ensure_attrs(t, &path, &nst, &p.attrs).await?;
            }
        }
    }
    Ok(r)
}

/// Owner/group/octal mode on everything below a directory: whether `find` sees any
/// entry that differs, what check mode would have made below it that differs (its
/// changes), and the command fixing the host's entries.
async fn plan_recurse(
    t: &dyn Transport,
    path: &str,
    attrs: &FileAttrs,
) -> Result<(bool, Vec<Change>, Option<String>), OpError> {
    let q = sh_quote(path);
    let mut tests = Vec::new();
    let mut fixes = Vec::new();
    if let Some(o) = &attrs.owner {
        tests.push(format!("! -user {}", sh_quote(o)));
        fixes.push(format!("chown -hR {} {q}", sh_quote(o)));
    }
    if let Some(g) = &attrs.group {
        tests.push(format!("! -group {}", sh_quote(g)));
        fixes.push(format!("chgrp -hR {} {q}", sh_quote(g)));
    }
    if let Some(ModeSpec::Octal(m)) = &attrs.mode {
        tests.push(format!("\\( ! -type l ! -perm {m:04o} \\)"));
        fixes.push(format!("find {q} ! -type l -exec chmod {m:o} {{}} +"));
    }
    if tests.is_empty() {
        return Ok((false, Vec::new(), None));
    }
    let mut changes = Vec::new();
    if let Some(o) = t.check_overlay() {
        // What check mode would have made below `path` is compared here; the
        // host's find sees the rest (nothing, below a directory it would create).
        for (p, st) in o.recorded_below(path).await? {
            if let Some((_, change)) = plan_attrs(&p, &st, attrs)? {
                changes.push(change);
            }
        }
        let changed = !changes.is_empty();
        if o.is_created_dir(path) || changed {
            return Ok((changed, changes, None));
        }
    }
    let probe = format!("find {q} \\( {} \\) -print | head -n1", tests.join(" -o "));
    let out = sh_ok(t, probe, &format!("inspecting {path}")).await?;
    if out.stdout.is_empty() {
        return Ok((false, changes, None));
    }
    Ok((true, changes, Some(fixes.join(" && "))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<Params, OpError> {
        Params::parse(&serde_json::from_value(v).unwrap())
    }

    #[test]
    fn params() {
        assert_eq!(
            parse(json!({"path": "/x", "state": "directory", "mode": "0755"}))
                .unwrap()
                .state,
            Some(State::Directory)
        );
        assert!(
            parse(json!({"path": "/x", "state": "link"}))
                .unwrap_err()
                .to_string()
                .contains("src is required")
        );
        assert!(parse(json!({"path": "/x", "state": "bogus"})).is_err());
        assert!(parse(json!({"path": "/x", "recurse": true})).is_err());
        assert!(
            parse(json!({"path": "/x", "state": "directory", "recurse": true, "mode": "u+x"}))
                .is_err()
        );
        assert!(
            parse(json!({"path": "/x", "modification_time": "now"}))
                .unwrap_err()
                .to_string()
                .contains("modification_time")
        );
    }
}
