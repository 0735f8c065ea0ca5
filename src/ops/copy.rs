//! `copy`: place a controller file, a controller directory tree, inline
//! `content`, or (with `remote_src`) a file already on the host at `dest`.

use std::path::{Path, PathBuf};

use super::attrs::{FileAttrs, ModeSpec};
use super::content::{WriteOpts, check_validate, plan_content};
use super::place::{Placing, Work, apply, plan_found, plan_place};
use super::{Args, Change, OpContext, OpError, OpOutcome, Plan, find_src, sh, sh_quote};
use crate::ops::check_state::{CheckOverlay, LocalRead};
use crate::transport::{FileStat, Transport};
use crate::vars::Vars;

use super::schema::Spec;

/// What `copy` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "copy",
    flags: "",
    params: "src:path; content:raw; dest:path!; mode:mode; owner:str; group:str; backup:bool; force:bool/thirsty; validate:str; remote_src:bool; directory_mode:mode",
    rules: "src|content one:src|content",
};

crate::ops::planned_op!(CopyOp, SPEC, place);

#[derive(Debug, Clone)]
pub struct Params {
    pub src: Option<String>,
    pub content: Option<String>,
    pub dest: String,
    pub remote_src: bool,
    pub backup: bool,
    pub force: bool,
    pub validate: Option<String>,
    pub directory_mode: Option<ModeSpec>,
    pub attrs: FileAttrs,
}

impl Params {
    pub fn parse(args: &Vars) -> Result<Params, OpError> {
        let a = Args::new("copy", args);
        let content = match a.value("content")? {
            None => None,
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            // Ansible writes non-string content as JSON.
            Some(v) => Some(serde_json::to_string(v).unwrap_or_default()),
        };
        let p = Params {
            src: a.str("src")?,
            content,
            dest: a.req_str("dest")?,
            remote_src: a.bool_or("remote_src", false)?,
            backup: a.bool_or("backup", false)?,
            force: a.bool_or("force", true)?,
            validate: a.str("validate")?,
            directory_mode: match a.value("directory_mode")? {
                None => None,
                Some(v) => Some(ModeSpec::parse(v).map_err(|e| a.err(e.to_string()))?),
            },
            attrs: FileAttrs::parse(&a)?,
        };
        a.finish()?;
        check_validate("copy", &p.validate)?;
        match (&p.src, &p.content) {
            (Some(_), Some(_)) => Err(OpError::params(
                "copy",
                "src and content are mutually exclusive",
            )),
            (None, None) => Err(OpError::params("copy", "one of src or content is required")),
            _ => Ok(p),
        }
    }

    /// Check on the controller, before any host is touched, that `src` exists.
    pub fn resolve_src(&self, dirs: &[PathBuf]) -> Result<Option<PathBuf>, OpError> {
        match (&self.src, self.remote_src) {
            (Some(s), false) => find_src(s, "files", dirs).map(Some).ok_or_else(|| {
                OpError::params(
                    "copy",
                    format!(
                        "Could not find `{s}` in {} (looked in files/ below each and in each)",
                        search_list(dirs)
                    ),
                )
            }),
            _ => Ok(None),
        }
    }
}

pub(crate) fn search_list(dirs: &[PathBuf]) -> String {
    if dirs.is_empty() {
        "no search path".into()
    } else {
        dirs.iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn basename(s: &str) -> &str {
    s.trim_end_matches('/').rsplit('/').next().unwrap_or(s)
}

fn walk(
    dir: &Path,
    rel: &Path,
    files: &mut Vec<(PathBuf, PathBuf)>,
    dirs: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let r = rel.join(e.file_name());
        if e.file_type()?.is_dir() {
            dirs.push(r.clone());
            walk(&e.path(), &r, files, dirs)?;
        } else {
            files.push((e.path(), r));
        }
    }
    Ok(())
}

pub async fn plan(t: &dyn Transport, p: &Params, ctx: &OpContext<'_>) -> Result<Plan, OpError> {
    let opts = WriteOpts {
        backup: p.backup,
        validate: p.validate.clone(),
        force: p.force,
    };
    let placing = |name: Option<&str>, content: Vec<u8>, src: Option<String>| Placing {
        op: "copy",
        dest: p.dest.clone(),
        name: name.map(str::to_string),
        content,
        attrs: p.attrs.clone(),
        opts: opts.clone(),
        src,
    };
    if let Some(c) = &p.content {
        return plan_place(t, placing(None, c.as_bytes().to_vec(), None), ctx).await;
    }
    let src = p.src.clone().unwrap_or_default();
    let mut dir_src = None;
    // One file: from the host (remote_src); in a --check run, what an earlier task
    // (fetch) would have written on the controller; else the controller's file.
    let single = if p.remote_src {
        let st = t.stat(&src).await?;
        if !st.is_file {
            return Err(OpError::failed(format!(
                "Source {src} not found on the host"
            )));
        }
        Some((t.get_file(&src).await?, src.clone()))
    } else {
        let recorded = match t.check_overlay() {
            Some(o) => match o.local_read(&src) {
                LocalRead::Content(data) => Some((data, src.clone())),
                LocalRead::Unknown => {
                    return Err(OpError::failed(format!(
                        "{src} would be written by a task check mode could not run"
                    )));
                }
                LocalRead::NotRecorded => None,
            },
            None => None,
        };
        match recorded {
            Some(r) => Some(r),
            None => {
                let path = p.resolve_src(&ctx.base_dirs())?.unwrap_or_default();
                if path.is_dir() {
                    dir_src = Some(path);
                    None
                } else {
                    let data = std::fs::read(&path)
                        .map_err(|e| OpError::failed(format!("reading {}: {e}", path.display())))?;
                    Some((data, path.display().to_string()))
                }
            }
        }
    };
    if let Some((data, shown)) = single {
        let name = Some(basename(&src));
        return plan_place(t, placing(name, data, Some(shown)), ctx).await;
    }
    plan_tree(t, p, &src, &dir_src.unwrap_or_default(), opts, ctx).await
}

/// Plan copying the controller directory `path` (named `src` in the task).
async fn plan_tree(
    t: &dyn Transport,
    p: &Params,
    src: &str,
    path: &Path,
    opts: WriteOpts,
    ctx: &OpContext<'_>,
) -> Result<Plan, OpError> {
    // A directory: `dir/` copies its contents into dest, `dir` copies dir itself.
    let root = if src.ends_with('/') {
        p.dest.trim_end_matches('/').to_string()
    } else {
        format!("{}/{}", p.dest.trim_end_matches('/'), basename(src))
    };
    let (mut files, mut dirs) = (Vec::new(), Vec::new());
    walk(path, Path::new(""), &mut files, &mut dirs)
        .map_err(|e| OpError::failed(format!("reading {}: {e}", path.display())))?;
    let mut all_dirs = vec![root.clone()];
    all_dirs.extend(dirs.iter().map(|d| format!("{root}/{}", d.display())));
    let qdirs: Vec<String> = all_dirs.iter().map(|d| sh_quote(d)).collect();
    let dmode = match &p.directory_mode {
        Some(m) => Some(
            m.resolve(0o755, true)
                .map_err(|e| OpError::params("copy", e.to_string()))?,
        ),
        None => None,
    };
    let each_dir = |action: &str| {
        format!(
            "for d in {}; do [ -d \"$d\" ] || {{ {action}echo \"$d\"; }} || exit 1; done",
            qdirs.join(" ")
        )
    };
    let missing: Vec<String> = match t.check_overlay() {
        // In a --check run the directories may be ones earlier tasks would make.
        Some(_) => {
            let mut missing = Vec::new();
            for d in &all_dirs {
                if !t.stat(d).await?.is_dir {
                    missing.push(d.clone());
                }
            }
            missing
        }
        None => {
            let out = sh(t, each_dir("")).await?;
            if out.rc != 0 {
                return Err(OpError::command(
                    format!("creating directories below {root}"),
                    &out,
                ));
            }
            let listed = String::from_utf8_lossy(&out.stdout).into_owned();
            all_dirs
                .iter()
                .filter(|d| listed.lines().any(|l| l == d.as_str()))
                .cloned()
                .collect()
        }
    };
    let mut changed = !missing.is_empty();
    let mut changes: Vec<Change> = missing.iter().map(|d| Change::dir(d, dmode)).collect();
    let mut writes = Vec::new();
    for (abs, rel) in &files {
        let data = std::fs::read(abs)
            .map_err(|e| OpError::failed(format!("reading {}: {e}", abs.display())))?;
        let d = format!("{root}/{}", rel.display());
        // Below a directory the apply makes, nothing is there yet.
        let below_missing = d
            .rsplit_once('/')
            .is_some_and(|(dir, _)| missing.iter().any(|m| m == dir));
        let st = if below_missing {
            FileStat::default()
        } else {
            t.stat(&d).await?
        };
        let w = plan_content(t, &d, &st, None, &data, &p.attrs, &opts, ctx).await?;
        if w.written.changed {
            changed = true;
            changes.extend(w.changes());
            writes.push(w);
        }
    }
    let r = OpOutcome::new(changed)
        .with("dest", p.dest.clone())
        .with("src", path.display().to_string());
    if !changed {
        return Ok(Plan::done(r));
    }
    let mkdir = (!missing.is_empty()).then(|| {
        let dmode = dmode.map_or(String::new(), |m| format!(" && chmod {m:o} \"$d\""));
        (
            each_dir(&format!("mkdir -p \"$d\"{dmode} && ")),
            root.clone(),
        )
    });
    let work = Work::Tree {
        mkdir,
        files: writes,
        opts,
    };
    Ok(Plan::changes(r, changes, work))
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
        assert!(
            parse(json!({"dest": "/x"}))
                .unwrap_err()
                .to_string()
                .contains("one of src or content")
        );
        assert!(parse(json!({"dest": "/x", "src": "a", "content": "b"})).is_err());
        assert!(
            parse(json!({"dest": "/x", "content": "b", "validate": "true"}))
                .unwrap_err()
                .to_string()
                .contains("%s")
        );
        assert!(
            parse(json!({"dest": "/x", "content": "b", "mode": "u=rw,go=r", "force": "no"}))
                .is_ok()
        );
        assert_eq!(
            parse(json!({"dest": "/x", "content": {"a": 1}}))
                .unwrap()
                .content
                .unwrap(),
            "{\"a\":1}"
        );
    }

    #[test]
    fn missing_src_fails_before_any_host() {
        let p = parse(json!({"dest": "/x", "src": "nope.conf"})).unwrap();
        let e = p
            .resolve_src(&[PathBuf::from("/nonexistent-ferry")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("nope.conf") && e.contains("/nonexistent-ferry"),
            "{e}"
        );
    }
}
