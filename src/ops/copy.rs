//! `copy`: place a controller file, a controller directory tree, inline
//! `content`, or (with `remote_src`) a file already on the host at `dest`.

use crate::ops::check_state::CheckOverlay;
use std::path::{Path, PathBuf};

use super::attrs::{FileAttrs, ModeSpec, stat_result};
use super::content::{WriteOpts, check_validate, write_content};
use super::{Args, OpContext, OpError, OpOutcome, find_src, sh, sh_quote};
use crate::ops::check_state::LocalRead;
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

crate::ops::host_op!(CopyOp, SPEC);

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

/// Place `content` at `dest` (a directory dest gets `name` below it).
#[allow(clippy::too_many_arguments)]
pub async fn place(
    t: &dyn Transport,
    op: &'static str,
    dest: &str,
    name: Option<&str>,
    content: &[u8],
    attrs: &FileAttrs,
    opts: &WriteOpts,
    ctx: &OpContext<'_>,
) -> Result<OpOutcome, OpError> {
    let mut dest = dest.to_string();
    let mut created_dir = false;
    let plain = !ctx.check && !ctx.diff && !opts.backup && opts.validate.is_none();
    let mut st = if plain && !dest.ends_with('/') {
        // The common case in one round trip: create the file when nothing
        // is there, else get the stat to compare with.
        let spec = super::content::new_file_spec(&dest, content, attrs)?;
        match t.create_file(&spec).await? {
            None => {
                let mut r = OpOutcome::new(true);
                r.set("dest", dest.clone());
                r.set("checksum", super::sha256_hex(content));
                r.set("size", content.len());
                r.set("state", "file");
                return Ok(r);
            }
            Some(st) => st,
        }
    } else {
        t.stat(dest.trim_end_matches('/')).await?
    };
    if dest.ends_with('/') && dest.len() > 1 && !st.exists {
        // As Ansible: a dest ending in `/` is a directory, created when missing.
        created_dir = true;
        if !ctx.check {
            let out = t.make_dirs(&dest).await?;
            if out.rc != 0 {
                return Err(OpError::command(format!("creating {dest}"), &out));
            }
        } else if let Some(o) = t.check_overlay() {
            o.would_mkdir(&dest, None, None, None).await?;
        }
        st = FileStat {
            exists: true,
            is_dir: true,
            ..FileStat::default()
        };
    }
    if st.is_dir {
        let Some(name) = name else {
            return Err(OpError::failed(format!(
                "{op}: dest {dest} is a directory; with content: the dest must be a file path"
            )));
        };
        dest = format!("{}/{}", dest.trim_end_matches('/'), name);
        st = if created_dir {
            FileStat::default()
        } else {
            t.stat(&dest).await?
        };
    }
    if !st.exists && !created_dir {
        let parent = match dest.rsplit_once('/') {
            Some(("", _)) => "/".to_string(),
            Some((d, _)) => d.to_string(),
            None => ".".to_string(),
        };
        let ps = t.stat(&parent).await?;
        if !ps.is_dir && !(ps.is_link) {
            return Err(OpError::failed(format!(
                "Destination directory {parent} does not exist"
            )));
        }
    }
    let w = write_content(t, &dest, &st, None, content, attrs, opts, ctx).await?;
    let mut r = OpOutcome::new(w.changed);
    r.diff = w.diff;
    r.set("dest", dest.clone());
    r.set("checksum", w.checksum.clone());
    r.set("size", content.len());
    if let Some(b) = &w.backup_file {
        r.set("backup_file", b.clone());
    }
    if !w.changed {
        stat_result(&mut r, &dest, &st);
        r.result.shift_remove("path");
    } else {
        r.set("state", "file");
    }
    Ok(r)
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

pub async fn run(t: &dyn Transport, p: &Params, ctx: &OpContext<'_>) -> Result<OpOutcome, OpError> {
    let opts = WriteOpts {
        backup: p.backup,
        validate: p.validate.clone(),
        force: p.force,
    };
    if let Some(c) = &p.content {
        return place(t, "copy", &p.dest, None, c.as_bytes(), &p.attrs, &opts, ctx).await;
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
        let recorded = match t.check_overlay().filter(|_| ctx.check) {
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
        let mut r = place(t, "copy", &p.dest, name, &data, &p.attrs, &opts, ctx).await?;
        r.set("src", shown);
        return Ok(r);
    }
    let path = dir_src.unwrap_or_default();
    // A directory: `dir/` copies its contents into dest, `dir` copies dir itself.
    let root = if src.ends_with('/') {
        p.dest.trim_end_matches('/').to_string()
    } else {
        format!("{}/{}", p.dest.trim_end_matches('/'), basename(&src))
    };
    let (mut files, mut dirs) = (Vec::new(), Vec::new());
    walk(&path, Path::new(""), &mut files, &mut dirs)
        .map_err(|e| OpError::failed(format!("reading {}: {e}", path.display())))?;
    let mut all_dirs = vec![root.clone()];
    all_dirs.extend(dirs.iter().map(|d| format!("{root}/{}", d.display())));
    let qdirs: Vec<String> = all_dirs.iter().map(|d| sh_quote(d)).collect();
    let dmode = match &p.directory_mode {
        Some(m) => format!(
            " && chmod {:o} \"$d\"",
            m.resolve(0o755, true)
                .map_err(|e| OpError::params("copy", e.to_string()))?
        ),
        None => String::new(),
    };
    let action = if ctx.check {
        String::new()
    } else {
        format!("mkdir -p \"$d\"{dmode} && ")
    };
    let cmd = format!(
        "for d in {}; do [ -d \"$d\" ] || {{ {action}echo \"$d\"; }} || exit 1; done",
        qdirs.join(" ")
    );
    let mut changed = false;
    match t.check_overlay().filter(|_| ctx.check) {
        // In a --check run the directories may be ones earlier tasks would make.
        Some(o) => {
            let dmode = match &p.directory_mode {
                Some(m) => Some(
                    m.resolve(0o755, true)
                        .map_err(|e| OpError::params("copy", e.to_string()))?,
                ),
                None => None,
            };
            for d in &all_dirs {
                if !t.stat(d).await?.is_dir {
                    changed = true;
                    o.would_mkdir(d, dmode, None, None).await?;
                }
            }
        }
        None => {
            let out = sh(t, cmd).await?;
            if out.rc != 0 {
                return Err(OpError::command(
                    format!("creating directories below {root}"),
                    &out,
                ));
            }
            changed = !out.stdout.is_empty();
        }
    }
    for (abs, rel) in &files {
        let data = std::fs::read(abs)
            .map_err(|e| OpError::failed(format!("reading {}: {e}", abs.display())))?;
        let d = format!("{root}/{}", rel.display());
        let st = t.stat(&d).await?;
        let w = write_content(t, &d, &st, None, &data, &p.attrs, &opts, ctx).await?;
        changed |= w.changed;
    }
    Ok(OpOutcome::new(changed)
        .with("dest", p.dest.clone())
        .with("src", path.display().to_string()))
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
