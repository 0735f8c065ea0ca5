//! The controller side of `git` (`via: controller`): git2 fetches into a
//! cache on the controller, and the tree at the wanted commit travels to the
//! host as one tar stream, unpacked beside `dest` and swapped in.

use std::path::PathBuf;

use super::{Params, Work, is_sha};
use crate::ops::{OpError, OpOutcome, Plan, sh_quote};
use crate::transport::{CommandSpec, Transport};

fn failed(m: impl Into<String>) -> OpError {
    OpError::failed(m)
}

fn cache_dir(repo: &str) -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    let id = &crate::ops::sha256_hex(repo.as_bytes())[..16];
    base.join("ferry/git").join(format!("{id}.git"))
}

/// What went wrong on the controller (the task fails with `git (on the controller): `
/// and this).
#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error("{dir}: {source}")]
    Cache { dir: String, source: std::io::Error },
    #[error(transparent)]
    Git(#[from] git2::Error),
    #[error("connecting to {repo}: {source}")]
    Connect { repo: String, source: git2::Error },
    #[error("version `{version}` not found in {repo}")]
    Version { version: String, repo: String },
    #[error("fetching {repo}: {source}")]
    Fetch { repo: String, source: git2::Error },
    #[error("commit {commit} not found in {repo}")]
    Commit { commit: String, repo: String },
}

/// The controller's cache of `p.repo`, made on first use.
fn open_cache(p: &Params) -> Result<git2::Repository, SyncError> {
    let dir = cache_dir(&p.repo);
    match git2::Repository::open_bare(&dir) {
        Ok(r) => Ok(r),
        Err(_) => {
            std::fs::create_dir_all(&dir).map_err(|source| SyncError::Cache {
                dir: dir.display().to_string(),
                source,
            })?;
            Ok(git2::Repository::init_bare(&dir)?)
        }
    }
}

/// Resolve `version` on the controller to a commit (no objects move).
fn resolve_on_controller(p: &Params) -> Result<String, SyncError> {
    let repo = open_cache(p)?;
    let mut remote = repo.remote_anonymous(&p.repo)?;
    if is_sha(&p.version) {
        return Ok(p.version.to_lowercase());
    }
    // ls-remote: no objects move.
    remote
        .connect(git2::Direction::Fetch)
        .map_err(|source| SyncError::Connect {
            repo: p.repo.clone(),
            source,
        })?;
    let heads: Vec<(String, String)> = remote
        .list()?
        .iter()
        .map(|h| (h.oid().to_string(), h.name().to_string()))
        .collect();
    remote.disconnect().ok();
    let ls: String = heads.iter().map(|(o, n)| format!("{o}\t{n}\n")).collect();
    Ok(super::resolve(&p.version, &ls)
        .ok_or_else(|| SyncError::Version {
            version: p.version.clone(),
            repo: p.repo.clone(),
        })?
        .0)
}

/// The tar of the tree at commit `target`, fetching only when the cache lacks it.
fn pack(p: &Params, target: &str) -> Result<Vec<u8>, SyncError> {
    let repo = open_cache(p)?;
    let mut remote = repo.remote_anonymous(&p.repo)?;
    let oid = git2::Oid::from_str(target)?;
    if repo.find_commit(oid).is_err() {
        remote
            .fetch(
                &["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"],
                None,
                None,
            )
            .map_err(|source| SyncError::Fetch {
                repo: p.repo.clone(),
                source,
            })?;
    }
    let commit = repo.find_commit(oid).map_err(|_| SyncError::Commit {
        commit: target.to_string(),
        repo: p.repo.clone(),
    })?;
    let mtime = commit.time().seconds().max(0) as u64;
    let tree = commit.tree()?;
    let mut tar = Tar::default();
    let mut err = None;
    tree.walk(git2::TreeWalkMode::PreOrder, |root, entry| {
        let name = format!("{root}{}", entry.name().unwrap_or(""));
        let mode = entry.filemode();
        match entry.kind() {
            Some(git2::ObjectType::Tree) => {
                tar.entry(&format!("{name}/"), b'5', 0o755, b"", "", mtime)
            }
            Some(git2::ObjectType::Blob) => match repo.find_blob(entry.id()) {
                Ok(b) if mode == 0o120000 => tar.entry(
                    &name,
                    b'2',
                    0o777,
                    b"",
                    &String::from_utf8_lossy(b.content()),
                    mtime,
                ),
                Ok(b) => {
                    let m = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
                    tar.entry(&name, b'0', m, b.content(), "", mtime)
                }
                Err(e) => {
                    err = Some(e);
                    return git2::TreeWalkResult::Abort;
                }
            },
            _ => {} // submodules are not synced
        }
        git2::TreeWalkResult::Ok
    })?;
    if let Some(e) = err {
        return Err(e.into());
    }
    Ok(tar.finish())
}

/// A minimal tar writer (ustar, with GNU long names).
#[derive(Default)]
pub struct Tar {
    buf: Vec<u8>,
}

impl Tar {
    fn header(&mut self, name: &[u8], kind: u8, mode: u32, size: usize, link: &[u8], mtime: u64) {
        let mut h = [0u8; 512];
        h[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
        let oct = |h: &mut [u8; 512], at: usize, len: usize, v: u64| {
            let s = format!("{:0w$o}\0", v, w = len - 1);
            h[at..at + len].copy_from_slice(s.as_bytes());
        };
        oct(&mut h, 100, 8, mode as u64);
        oct(&mut h, 108, 8, 0);
        oct(&mut h, 116, 8, 0);
        oct(&mut h, 124, 12, size as u64);
        oct(&mut h, 136, 12, mtime);
        h[148..156].copy_from_slice(b"        ");
        h[156] = kind;
        h[157..157 + link.len().min(100)].copy_from_slice(&link[..link.len().min(100)]);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        let sum: u32 = h.iter().map(|b| *b as u32).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        self.buf.extend_from_slice(&h);
    }

    fn data(&mut self, d: &[u8]) {
        self.buf.extend_from_slice(d);
        let pad = (512 - d.len() % 512) % 512;
        self.buf.extend(std::iter::repeat_n(0u8, pad));
    }

    pub fn entry(
        &mut self,
        name: &str,
        kind: u8,
        mode: u32,
        content: &[u8],
        link: &str,
        mtime: u64,
    ) {
        for (long, k) in [(name, b'L'), (link, b'K')] {
            if long.len() >= 100 {
                let mut v = long.as_bytes().to_vec();
                v.push(0);
                self.header(b"././@LongLink", k, 0, v.len(), b"", 0);
                self.data(&v);
            }
        }
        self.header(
            name.as_bytes(),
            kind,
            mode,
            content.len(),
            link.as_bytes(),
            mtime,
        );
        self.data(content);
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.buf.extend(std::iter::repeat_n(0u8, 1024));
        self.buf
    }
}

/// Plan the sync: `synced` is the commit `DEST/.ferry-git` records, `nonempty`
/// whether dest holds anything.
pub async fn plan(p: &Params, synced: Option<String>, nonempty: bool) -> Result<Plan, OpError> {
    let mut r = OpOutcome::new(false);
    r.set(
        "before",
        synced
            .clone()
            .map(serde_json::Value::from)
            .unwrap_or(serde_json::Value::Null),
    );
    if synced.is_none() && !p.clone {
        return Ok(Plan::done(r.msg("not cloned (clone: false)")));
    }
    if synced.is_some() && !p.update {
        r.set("after", synced.unwrap_or_default());
        return Ok(Plan::done(r));
    }
    if synced.is_none() && nonempty && !p.force {
        return Err(failed(format!(
            "destination {} exists, is not empty and was not synced by ferry (force: true replaces it)",
            p.dest
        )));
    }
    let q = p.clone();
    let target = tokio::task::spawn_blocking(move || resolve_on_controller(&q))
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(|e| failed(format!("git (on the controller): {e}")))?;
    r.set("after", target.clone());
    if synced.as_deref() == Some(target.as_str()) {
        return Ok(Plan::done(r));
    }
    Ok(super::changed_checkout(r, &p.dest, Work::Sync(target)))
}

/// Send the tree at `target` to the host as one tar stream, unpacked beside dest and
/// swapped in.
pub async fn apply(t: &dyn Transport, p: &Params, target: String) -> Result<(), OpError> {
    let (q, commit) = (p.clone(), target.clone());
    let tar = tokio::task::spawn_blocking(move || pack(&q, &commit))
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(|e| failed(format!("git (on the controller): {e}")))?;
    let d = p.dest.trim_end_matches('/');
    let (new, old, dq) = (
        sh_quote(&format!("{d}.ferry-new")),
        sh_quote(&format!("{d}.ferry-old")),
        sh_quote(d),
    );
    let cmd = format!(
        "set -e; rm -rf {new} {old}; mkdir -p {new}; tar xf - -C {new}; printf %s {target} > {new}/.ferry-git; \
         if [ -e {dq} ]; then mv {dq} {old}; fi; mv {new} {dq}; rm -rf {old}"
    );
    let out = t
        .run(&CommandSpec {
            stdin: Some(tar),
            timeout: Some(std::time::Duration::from_secs(3600)),
            ..CommandSpec::new(cmd)
        })
        .await?;
    if out.rc != 0 {
        return Err(OpError::command(
            format!("unpacking {} into {}", p.repo, p.dest),
            &out,
        ));
    }
    Ok(())
}
