//! `fetch`: copy a file from the host to the controller, as Ansible does:
//! under `dest/<inventory_hostname>/<src path>`, or (with `flat`) at `dest`
//! itself (a `dest` ending in `/` gets the source's base name). The host's
//! sha256 (from the transport's stat) is compared with the controller copy's
//! first: an equal file is neither transferred nor rewritten. The controller
//! copy is written atomically (temp file in the same directory, fsync, rename).
//! Planned: the plan reads the host file and compares, the apply writes the
//! controller copy (check mode records it in the controller's simulated state).

use crate::ops::check_state::CheckOverlay;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use super::{Args, Change, Diff, OpContext, OpError, OpOutcome, Plan, sh, sh_quote, sha256_hex};
use crate::ops::check_state::LocalRead;
use crate::transport::Transport;
use crate::vars::Vars;

use super::schema::Spec;

/// What `fetch` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "fetch",
    flags: "",
    params: "src:path!; dest:path!; flat:bool; fail_on_missing:bool; validate_checksum:bool",
    rules: "",
};

crate::ops::planned_op!(FetchOp, SPEC);

#[derive(Debug, Clone)]
pub struct Params {
    pub src: String,
    pub dest: String,
    pub flat: bool,
    pub fail_on_missing: bool,
    pub validate_checksum: bool,
}

impl Params {
    pub fn parse(args: &Vars) -> Result<Params, OpError> {
        let a = Args::new("fetch", args);
        let p = Params {
            src: a.req_str("src")?,
            dest: a.req_str("dest")?,
            flat: a.bool_or("flat", false)?,
            fail_on_missing: a.bool_or("fail_on_missing", true)?,
            validate_checksum: a.bool_or("validate_checksum", true)?,
        };
        a.finish()?;
        Ok(p)
    }
}

/// sha1 of bytes, lowercase hex (Ansible's `checksum`).
pub fn sha1_hex(data: &[u8]) -> String {
    use sha1::Digest;
    hex::encode(sha1::Sha1::digest(data))
}

/// md5 of bytes, lowercase hex (Ansible's `md5sum`).
pub fn md5_hex(data: &[u8]) -> String {
    format!("{:x}", md5::compute(data))
}

/// `a/./b/../c` -> `a/c`, without touching the filesystem (Python's normpath).
pub fn normpath(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Where the controller copy of `src` from `host` goes.
pub fn local_dest(p: &Params, host: &str, base: &Path) -> Result<PathBuf, OpError> {
    let dwim = |d: &str| {
        if Path::new(d).is_absolute() {
            PathBuf::from(d)
        } else {
            base.join(d)
        }
    };
    let path = if p.flat {
        let d = dwim(&p.dest);
        if p.dest.ends_with('/') {
            let name = p.src.trim_end_matches('/').rsplit('/').next().unwrap_or("");
            let full = d.join(name);
            if full.is_dir() {
                return Err(OpError::failed(format!(
                    "calculated dest '{}' is an existing directory, use another path that does not point to an existing directory",
                    full.display()
                )));
            }
            full
        } else {
            if d.is_dir() {
                return Err(OpError::failed(
                    "dest is an existing directory, use a trailing slash if you want to fetch src into that directory",
                ));
            }
            d
        }
    } else {
        let d = dwim(&p.dest);
        d.join(host).join(p.src.trim_start_matches('/'))
    };
    let path = normpath(&path);
    let root = normpath(&dwim(&p.dest));
    if !p.flat && !path.starts_with(&root) {
        return Err(OpError::failed(format!(
            "Detected directory traversal, expected to be contained in '{}' but got '{}'",
            root.display(),
            path.display()
        )));
    }
    Ok(path)
}

/// Write `data` to `path` on the controller: temp file beside it, fsync, rename.
/// An existing file keeps its mode; a new one gets 0644 (Ansible's umask default).
pub fn write_local_atomic(path: &Path, data: &[u8]) -> Result<(), OpError> {
    use std::os::unix::fs::PermissionsExt;
    let fail = |what: &str, e: std::io::Error| {
        OpError::failed(format!("fetch: {what} {}: {e}", path.display()))
    };
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(|e| fail("creating the directory of", e))?;
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    let mut tmp = tempfile::Builder::new()
        .prefix(".ferry-fetch.")
        .tempfile_in(dir)
        .map_err(|e| fail("creating a temp file for", e))?;
    tmp.write_all(data)
        .and_then(|_| tmp.as_file().sync_all())
        .and_then(|_| std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode)))
        .map_err(|e| fail("writing", e))?;
    tmp.persist(path)
        .map_err(|e| fail("renaming the temp file onto", e.error))?;
    Ok(())
}

/// What the apply does: write the controller copy.
pub struct Work {
    dest: PathBuf,
    data: Vec<u8>,
}

pub async fn plan(t: &dyn Transport, p: &Params, ctx: &OpContext<'_>) -> Result<Plan, OpError> {
    let base = ctx
        .base_dirs()
        .last()
        .cloned()
        .unwrap_or_else(|| std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")));
    let dest = local_dest(p, ctx.host, &base)?;
    // In a --check run the controller copy is recorded, not written: later
    // tasks (a copy of it back) read it from there. A source a task check
    // mode could not run would make leaves the copy unknown too, recorded as soon as
    // it is seen (the task may still fail below, and is reported not checked then).
    let overlay = t.check_overlay();
    if let Some(o) = overlay {
        let before = o.unknown_seen();
        let _ = t.stat(&p.src).await?;
        if o.unknown_seen() != before {
            o.would_write_local(&dest.display().to_string(), None);
        }
    }
    let mut src = p.src.clone();
    let mut st = t.stat(&src).await?;
    if st.is_link {
        let out = sh(t, format!("readlink -f -- {}", sh_quote(&src))).await?;
        let real = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.rc == 0 && !real.is_empty() {
            src = real;
            st = t.stat(&src).await?;
        }
    }
    if !st.exists {
        let msg = "the remote file does not exist, not transferring";
        if p.fail_on_missing {
            let mut result = serde_json::Map::new();
            result.insert("file".into(), p.src.clone().into());
            return Err(OpError::Failed {
                msg: format!("{msg}: {}", p.src),
                result,
            });
        }
        return Ok(Plan::done(
            OpOutcome::new(false)
                .msg(format!("{msg}, ignored"))
                .with("file", p.src.clone()),
        ));
    }
    if st.is_dir {
        let msg = "remote file is a directory, fetch cannot work on directories";
        if p.fail_on_missing {
            return Err(OpError::failed(msg));
        }
        return Ok(Plan::done(
            OpOutcome::new(false)
                .msg(format!("{msg}, not transferring, ignored"))
                .with("file", p.src.clone()),
        ));
    }
    let local = match overlay.map(|o| o.local_read(&dest.display().to_string())) {
        Some(LocalRead::Content(c)) => Some(c),
        _ => std::fs::read(&dest).ok(),
    };
    let local_sum = local.as_deref().map(sha256_hex);
    let dest_s = dest.display().to_string();
    if local_sum.is_some() && local_sum == st.checksum {
        let data = local.unwrap_or_default();
        return Ok(Plan::done(
            OpOutcome::new(false)
                .with("file", p.src.clone())
                .with("dest", dest_s)
                .with("checksum", sha1_hex(&data))
                .with("md5sum", md5_hex(&data)),
        ));
    }
    let data = t.get_file(&src).await?;
    let remote_sha1 = sha1_hex(&data);
    if p.validate_checksum
        && let Some(want) = &st.checksum
        && *want != sha256_hex(&data)
    {
        return Err(OpError::failed(format!(
            "checksum mismatch: {src} changed while it was fetched"
        )));
    }
    let mut r = OpOutcome::new(true)
        .with("dest", dest_s.clone())
        .with("checksum", remote_sha1.clone())
        .with("remote_checksum", remote_sha1)
        .with("md5sum", md5_hex(&data))
        .with("remote_md5sum", serde_json::Value::Null);
    if ctx.diff {
        let text = |b: &[u8]| {
            String::from_utf8(b.to_vec()).unwrap_or_else(|_| "(binary file, not shown)\n".into())
        };
        r.diff = Some(Diff {
            path: Some(dest_s.clone()),
            before: local.as_deref().map(text).unwrap_or_default(),
            after: text(&data),
        });
    }
    let change = Change::Local {
        path: dest_s,
        content: Some(data.clone()),
    };
    Ok(Plan::changes(r, vec![change], Work { dest, data }))
}

pub async fn apply(
    _: &dyn Transport,
    _: &Params,
    _: &OpContext<'_>,
    r: OpOutcome,
    Work { dest, data }: Work,
) -> Result<OpOutcome, OpError> {
    write_local_atomic(&dest, &data)?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(v: serde_json::Value) -> Params {
        Params::parse(&serde_json::from_value(v).unwrap()).unwrap()
    }

    #[test]
    fn dest_paths_like_ansible() {
        let base = Path::new("/pb");
        let d = |v| local_dest(&p(v), "web1", base).unwrap();
        assert_eq!(
            d(json!({"src": "/etc/hosts", "dest": "/backup"})),
            PathBuf::from("/backup/web1/etc/hosts")
        );
        assert_eq!(
            d(json!({"src": "/etc/hosts", "dest": "out/"})),
            PathBuf::from("/pb/out/web1/etc/hosts")
        );
        assert_eq!(
            d(json!({"src": "/etc/hosts", "dest": "/b/", "flat": true})),
            PathBuf::from("/b/hosts")
        );
        assert_eq!(
            d(json!({"src": "/etc/hosts", "dest": "/b/h.txt", "flat": "yes"})),
            PathBuf::from("/b/h.txt")
        );
        assert!(local_dest(&p(json!({"src": "../../../x", "dest": "/b"})), "web1", base).is_err());
        assert!(
            Params::parse(
                &serde_json::from_value(json!({"src": "/a", "dest": "/b", "mode": "0644"}))
                    .unwrap()
            )
            .unwrap_err()
            .to_string()
            .contains("`mode`")
        );
    }

    #[test]
    fn checksums() {
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
    }
}
