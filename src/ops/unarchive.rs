//! (Over 600 lines: one op whose two comparisons, on the host and, in a `--check` run,
//! on the controller through the simulated host, read together.)
//!
//! `unarchive`: unpack a tarball (.tar, .tar.gz/.tgz, .tar.xz/.txz,
//! .tar.bz2, compression detected by GNU tar) or a .zip (needs `unzip` on
//! the host) into an existing `dest` directory. The archive comes from the
//! controller (`files/` search path; copied to a temp file on the host and
//! removed afterwards) or, with `remote_src`, is already on the host.
//!
//! Whether anything would change is decided the way Ansible decides it:
//! tar's own `--diff` against `dest` (a missing file, other content, size,
//! mode, mtime, symlink target, and as root owner/group count as a
//! difference); for a zip, the archive is unpacked into a temp directory
//! and every file compared byte for byte (`cmp`) with its counterpart in
//! `dest` (modes and times of zip members are not compared). Only when
//! something differs is the archive unpacked; `creates` skips it all.

use super::attrs::stat_result;
use super::{
    Args, Change, OpContext, OpError, OpOutcome, Plan, find_src, sh, sh_quote, sha256_hex,
};
use crate::ops::check_state::{CheckOverlay, CheckTransport};
use crate::transport::{FileSpec, Transport};
use crate::vars::Vars;

use super::schema::Spec;

/// What `unarchive` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "unarchive",
    flags: "",
    params: "src:path!; dest:path!; remote_src:bool; creates:path; exclude:list; keep_newer:bool; list_files:bool",
    rules: "",
};

crate::ops::planned_op!(UnarchiveOp, SPEC);

#[derive(Debug, Clone)]
pub struct Params {
    pub src: String,
    pub dest: String,
    pub remote_src: bool,
    pub creates: Option<String>,
    pub exclude: Vec<String>,
    pub keep_newer: bool,
    pub list_files: bool,
}

impl Params {
    pub fn parse(args: &Vars) -> Result<Params, OpError> {
        let a = Args::new("unarchive", args);
        let p = Params {
            src: a.req_str("src")?,
            dest: a.req_str("dest")?,
            remote_src: a.bool_or("remote_src", false)?,
            creates: a.str("creates")?,
            exclude: a.list("exclude")?.unwrap_or_default(),
            keep_newer: a.bool_or("keep_newer", false)?,
            list_files: a.bool_or("list_files", false)?,
        };
        a.finish()?;
        if p.src.contains("://") {
            return Err(OpError::params(
                "unarchive",
                format!(
                    "src `{}` is a URL; fetch it with get_url first (lab hosts have no internet)",
                    p.src
                ),
            ));
        }
        Ok(p)
    }
}

/// Tar or zip, by the name (and for a zip the magic bytes when known).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Tar,
    Zip,
}

pub fn kind_of(name: &str, head: Option<&[u8]>) -> Kind {
    if head.is_some_and(|h| h.starts_with(b"PK\x03\x04"))
        || name.to_ascii_lowercase().ends_with(".zip")
    {
        Kind::Zip
    } else {
        Kind::Tar
    }
}

/// Lines of `tar --diff` output that mean dest differs from the archive
/// (Ansible's list; owner/group only count when running as root).
pub fn tar_differs(out: &str, root: bool) -> bool {
    out.lines().any(|l| {
        [
            "Mod time differs",
            "Mode differs",
            "Contents differ",
            "Size differs",
            "Symlink differs",
            "No such file or directory",
            "File type differs",
            "Not linked to",
            "does not exist",
            "Cannot stat",
        ]
        .iter()
        .any(|k| l.contains(k))
            || (root && (l.contains("Uid differs") || l.contains("Gid differs")))
    })
}

/// What an unarchive plan hands its apply.
pub enum Work {
    /// Unpack the archive on the host with `extract` (then remove the archive when it
    /// was `uploaded`); `base` is the result's start (handler, files).
    Extract {
        archive: String,
        uploaded: bool,
        extract: String,
        base: Box<OpOutcome>,
    },
    /// A plan from the simulated host (a `--check` run's): never applied.
    Simulated,
}

/// The result's end: the task's `src`, dest's stat (`st`) and `dest`.
fn finish(mut r: OpOutcome, p: &Params, st: &crate::transport::FileStat) -> OpOutcome {
    r.set("src", p.src.clone());
    stat_result(&mut r, &p.dest, st);
    r.set("dest", p.dest.clone());
    r
}

pub async fn plan(t: &dyn Transport, p: &Params, ctx: &OpContext<'_>) -> Result<Plan, OpError> {
    if let Some(c) = &p.creates
        && t.stat(c).await?.exists
    {
        return Ok(Plan::done(
            OpOutcome::new(false)
                .msg(format!("skipped, since {c} exists"))
                .with("dest", p.dest.clone())
                .with("src", p.src.clone()),
        ));
    }
    let dst = t.stat(&p.dest).await?;
    if !dst.is_dir {
        return Err(OpError::failed(format!(
            "dest '{}' must be an existing dir",
            p.dest
        )));
    }
    // A --check run with a controller-side archive: compare through the simulated
    // state, without sending the archive. (Nothing planned changes dest itself: its
    // stat now is its stat after.)
    if !p.remote_src
        && let Some(o) = t.check_overlay()
    {
        let (r, changes) = check_on_controller(o, p, ctx).await?;
        let r = finish(r, p, &dst);
        if !r.changed {
            return Ok(Plan::done(r));
        }
        return Ok(Plan::changes(r, changes, Work::Simulated));
    }
    // The archive on the host.
    let (archive, kind, uploaded) = if p.remote_src {
        let st = t.stat(&p.src).await?;
        if !st.is_file {
            return Err(OpError::failed(format!(
                "Source '{}' does not exist on the host",
                p.src
            )));
        }
        (p.src.clone(), kind_of(&p.src, None), false)
    } else {
        let local = find_archive(p, ctx)?;
        let data = std::fs::read(&local)
            .map_err(|e| OpError::failed(format!("reading {}: {e}", local.display())))?;
        let kind = kind_of(&p.src, Some(&data));
        let ext = if kind == Kind::Zip { "zip" } else { "tar" };
        // Unique per task run: two tasks unpacking the same archive do not share it.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let remote = format!(
            "/tmp/.ferry-unarchive-{}-{nanos}.{ext}",
            &sha256_hex(&data)[..16]
        );
        t.put_file(&FileSpec {
            path: remote.clone(),
            content: data,
            mode: Some(0o600),
            ..FileSpec::default()
        })
        .await?;
        (remote, kind, true)
    };
    let remove = format!("rm -f {}", sh_quote(&archive));
    let compared = compare(t, p, &archive, kind).await;
    let (base, extract) = match compared {
        Ok((base, Some(extract))) => (base, extract),
        res => {
            if uploaded {
                let _ = sh(t, remove).await;
            }
            let (r, _) = res?;
            let st = t.stat(&p.dest).await?;
            return Ok(Plan::done(finish(r, p, &st)));
        }
    };
    let r = finish(base.clone(), p, &dst);
    let work = Work::Extract {
        archive,
        uploaded,
        extract,
        base: Box::new(base),
    };
    let plan = Plan::changes(r, Vec::new(), work);
    // Check mode never applies: it removes the uploaded archive instead.
    Ok(if uploaded {
        plan.with_cleanup(remove)
    } else {
        plan
    })
}

pub async fn apply(
    t: &dyn Transport,
    p: &Params,
    _: &OpContext<'_>,
    _: OpOutcome,
    work: Work,
) -> Result<OpOutcome, OpError> {
    let Work::Extract {
        archive,
        uploaded,
        extract,
        base,
    } = work
    else {
        return Err(OpError::failed(
            "unarchive: planned from the simulated host, which a real run has not",
        ));
    };
    let res = unpack(t, p, &archive, extract, *base).await;
    if uploaded {
        let _ = sh(t, format!("rm -f {}", sh_quote(&archive))).await;
    }
    let r = res?;
    let st = t.stat(&p.dest).await?;
    Ok(finish(r, p, &st))
}

fn find_archive(p: &Params, ctx: &OpContext<'_>) -> Result<std::path::PathBuf, OpError> {
    find_src(&p.src, "files", &ctx.base_dirs()).ok_or_else(|| {
        OpError::params(
            "unarchive",
            format!(
                "Could not find `{}` in {} (looked in files/ below each and in each)",
                p.src,
                super::copy::search_list(&ctx.base_dirs())
            ),
        )
    })
}

/// One member of an archive, unpacked on the controller.
enum Member {
    Dir,
    File(Vec<u8>),
    Link(String),
}

/// Check mode: unpack the archive into a controller temp directory, compare
/// each member with what the (simulated) host has at its place as the real
/// run's check does (tar: type, content, size, mode, mtime, link target;
/// zip: content, missing directories), and plan what unpacking would make.
async fn check_on_controller(
    o: &CheckTransport,
    p: &Params,
    ctx: &OpContext<'_>,
) -> Result<(OpOutcome, Vec<Change>), OpError> {
    let local = find_archive(p, ctx)?;
    let head = std::fs::read(&local)
        .map(|d| d.into_iter().take(4).collect::<Vec<u8>>())
        .map_err(|e| OpError::failed(format!("reading {}: {e}", local.display())))?;
    let kind = kind_of(&p.src, Some(&head));
    let tmp = tempfile::tempdir().map_err(|e| OpError::failed(format!("temp dir: {e}")))?;
    let mut cmd = match kind {
        Kind::Tar => {
            let mut c = tokio::process::Command::new("tar");
            c.arg("--extract")
                .arg("--no-same-owner")
                .arg("-C")
                .arg(tmp.path());
            for e in &p.exclude {
                c.arg(format!("--exclude={}", e.trim_end_matches('/')));
            }
            c.arg("-f").arg(&local);
            c
        }
        Kind::Zip => {
            let mut c = tokio::process::Command::new("unzip");
            c.arg("-q").arg("-o").arg(&local).arg("-d").arg(tmp.path());
            if !p.exclude.is_empty() {
                c.arg("-x").args(&p.exclude);
            }
            c
        }
    };
    let out = cmd
        .env("LC_ALL", "C")
        .output()
        .await
        .map_err(|e| OpError::failed(format!("running {cmd:?} on the controller: {e}")))?;
    if !out.status.success() {
        return Err(OpError::failed(format!(
            "Failed to find handler for \"{}\": {}",
            local.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    // Members, parents first.
    let mut members: Vec<(String, Member, u32, i64)> = Vec::new();
    let mut stack = vec![tmp.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&d)
            .map_err(|e| OpError::failed(format!("reading {}: {e}", d.display())))?
            .flatten()
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            use std::os::unix::fs::MetadataExt;
            let path = e.path();
            let meta = std::fs::symlink_metadata(&path)
                .map_err(|e| OpError::failed(format!("{}: {e}", path.display())))?;
            let rel = path
                .strip_prefix(tmp.path())
                .unwrap_or(&path)
                .display()
                .to_string();
            let member = if meta.file_type().is_symlink() {
                Member::Link(
                    std::fs::read_link(&path)
                        .map(|l| l.display().to_string())
                        .unwrap_or_default(),
                )
            } else if meta.is_dir() {
                stack.push(path.clone());
                Member::Dir
            } else {
                Member::File(
                    std::fs::read(&path)
                        .map_err(|e| OpError::failed(format!("{}: {e}", path.display())))?,
                )
            };
            members.push((rel, member, meta.mode() & 0o7777, meta.mtime()));
        }
    }
    members.sort_by(|a, b| a.0.cmp(&b.0));
    let dest = p.dest.trim_end_matches('/');
    let mut differs = false;
    let mut stats = Vec::with_capacity(members.len());
    for (rel, m, mode, mtime) in &members {
        let st = o.stat(&format!("{dest}/{rel}")).await?;
        let tar = kind == Kind::Tar;
        let this = match m {
            Member::Dir => !st.is_dir || (tar && st.mode & 0o7777 != *mode),
            Member::Link(target) => !st.is_link || st.link_target.as_deref() != Some(target),
            Member::File(data) => {
                let newer = p.keep_newer && st.exists && st.mtime > *mtime;
                !newer
                    && (!st.is_file
                        || st.is_link
                        || st.checksum.as_deref() != Some(sha256_hex(data).as_str())
                        || (tar && (st.mode & 0o7777 != *mode || st.mtime != *mtime)))
            }
        };
        differs |= this;
        stats.push(st);
    }
    // What unpacking makes, parents first: what a member's path is does not depend
    // on the members before it (a path below a directory about to be made is missing
    // as it is now), so the stats above say it.
    let mut changes = Vec::new();
    for ((rel, m, mode, mtime), st) in members.iter().zip(&stats).filter(|_| differs) {
        let path = format!("{dest}/{rel}");
        match m {
            Member::Dir if st.is_dir => changes.push(Change::Attrs {
                path,
                mode: Some(*mode),
                owner: None,
                group: None,
            }),
            Member::Dir => changes.push(Change::Dir {
                path,
                mode: Some(*mode),
                owner: None,
                group: None,
            }),
            Member::Link(target) => changes.push(Change::Link {
                path,
                target: target.clone(),
                owner: None,
                group: None,
            }),
            Member::File(_) if p.keep_newer && st.exists && st.mtime > *mtime => {}
            Member::File(data) => {
                changes.push(Change::AsGiven(FileSpec {
                    path: path.clone(),
                    content: data.clone(),
                    mode: Some(*mode),
                    ..FileSpec::default()
                }));
                changes.push(Change::Mtime {
                    path,
                    mtime: *mtime,
                });
            }
        }
    }
    let handler = match kind {
        Kind::Tar => "TgzArchive",
        Kind::Zip => "ZipArchive",
    };
    let mut r = OpOutcome::new(differs).with("handler", handler);
    if p.list_files {
        let files: Vec<serde_json::Value> = members
            .iter()
            .map(|(rel, m, _, _)| match m {
                Member::Dir => format!("{rel}/").into(),
                _ => rel.clone().into(),
            })
            .collect();
        r.set("files", files);
    }
    Ok((r, changes))
}

/// Compare the archive on the host with dest: the result's start (handler, files),
/// and the command unpacking it when something differs.
async fn compare(
    t: &dyn Transport,
    p: &Params,
    archive: &str,
    kind: Kind,
) -> Result<(OpOutcome, Option<String>), OpError> {
    let qa = sh_quote(archive);
    let qd = sh_quote(&p.dest);
    let excludes: String = p
        .exclude
        .iter()
        .map(|e| format!(" --exclude={}", sh_quote(e.trim_end_matches('/'))))
        .collect();
    let keep = if p.keep_newer {
        " --keep-newer-files"
    } else {
        ""
    };
    let (handler, list_cmd, differs, extract) = match kind {
        Kind::Tar => {
            let out = sh(
                t,
                format!("LC_ALL=C tar --diff -C {qd}{excludes}{keep} -f {qa} 2>&1; echo \"RC=$? UID=$(id -u)\""),
            )
            .await?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let rc = text
                .lines()
                .last()
                .and_then(|l| l.strip_prefix("RC="))
                .and_then(|l| l.split_whitespace().next())
                .unwrap_or("2")
                .to_string();
            let root = text.lines().last().is_some_and(|l| l.ends_with("UID=0"));
            if rc == "2" && !tar_differs(&text, root) {
                return Err(OpError::failed(format!(
                    "Failed to find handler for \"{archive}\": tar could not read it: {}",
                    text.trim()
                )));
            }
            (
                "TgzArchive",
                format!("tar -t{excludes} -f {qa}"),
                rc != "0" && tar_differs(&text, root),
                format!("LC_ALL=C tar --extract -C {qd}{excludes}{keep} -f {qa}"),
            )
        }
        Kind::Zip => {
            let xs: String = p
                .exclude
                .iter()
                .map(|e| format!(" {}", sh_quote(e)))
                .collect();
            let xflag = if p.exclude.is_empty() {
                String::new()
            } else {
                format!(" -x{xs}")
            };
            let cmd = format!(
                "command -v unzip >/dev/null || {{ echo 'unzip is not installed on the host' >&2; exit 5; }}; \
                 tmp=$(mktemp -d) || exit 1; unzip -q -o {qa} -d \"$tmp\"{xflag} >&2 || {{ rc=$?; rm -rf \"$tmp\"; exit $rc; }}; \
                 cd \"$tmp\" && find . ! -name . | while IFS= read -r f; do \
                   if [ -d \"$f\" ]; then [ -d {qd}/\"$f\" ] || echo \"$f\"; \
                   else cmp -s \"$f\" {qd}/\"$f\" || echo \"$f\"; fi; done; cd /; rm -rf \"$tmp\""
            );
            let out = sh(t, cmd).await?;
            if out.rc != 0 {
                return Err(OpError::command(
                    format!("Failed to find handler for \"{archive}\""),
                    &out,
                ));
            }
            (
                "ZipArchive",
                format!("unzip -Z1 {qa}"),
                !out.stdout.is_empty(),
                format!("unzip -q -o {qa} -d {qd}{xflag}"),
            )
        }
    };
    let mut r = OpOutcome::new(differs).with("handler", handler);
    if p.list_files {
        let out = sh(t, list_cmd).await?;
        let files: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim_start_matches("./").to_string())
            .filter(|l| !l.is_empty())
            .map(Into::into)
            .collect();
        r.set("files", files);
    }
    Ok((r, differs.then_some(extract)))
}

/// Unpack the archive on the host with `extract`; `r` (the result's start) gains
/// what the command did.
async fn unpack(
    t: &dyn Transport,
    p: &Params,
    archive: &str,
    extract: String,
    mut r: OpOutcome,
) -> Result<OpOutcome, OpError> {
    let out = sh(t, extract.clone()).await?;
    if out.rc != 0 {
        return Err(OpError::command(
            format!("failed to unpack {archive} into {}", p.dest),
            &out,
        ));
    }
    let mut er = serde_json::Map::new();
    er.insert("cmd".into(), extract.into());
    er.insert("rc".into(), out.rc.into());
    er.insert(
        "out".into(),
        String::from_utf8_lossy(&out.stdout).into_owned().into(),
    );
    er.insert(
        "err".into(),
        String::from_utf8_lossy(&out.stderr).into_owned().into(),
    );
    r.set("extract_results", serde_json::Value::Object(er));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn params_and_kinds() {
        let p = |v| Params::parse(&serde_json::from_value(v).unwrap());
        assert!(p(json!({"src": "a.tgz", "dest": "/x", "exclude": "a,b"})).is_ok());
        assert!(
            p(json!({"src": "a.tgz", "dest": "/x", "owner": "root"}))
                .unwrap_err()
                .to_string()
                .contains("`owner`")
        );
        assert!(
            p(json!({"src": "https://x/a.tgz", "dest": "/x"}))
                .unwrap_err()
                .to_string()
                .contains("get_url")
        );
        assert_eq!(kind_of("a.ZIP", None), Kind::Zip);
        assert_eq!(kind_of("a.bin", Some(b"PK\x03\x04...")), Kind::Zip);
        assert_eq!(kind_of("a.tar.xz", None), Kind::Tar);
    }

    #[test]
    fn tar_diff_lines() {
        assert!(!tar_differs("", true));
        assert!(tar_differs("a/b: Mod time differs\n", false));
        assert!(tar_differs(
            "tar: a/c: Warning: Cannot stat: No such file or directory\n",
            false
        ));
        assert!(!tar_differs("a/b: Uid differs\n", false));
        assert!(tar_differs("a/b: Uid differs\n", true));
    }
}
