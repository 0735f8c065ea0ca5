//! The file requests: stat, read, exists, create and put, each answered in
//! the same text the remote shell's scripts print (see
//! `src/transport/remote.rs`), so one parser reads both.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::Reply;
use crate::names::Names;
use crate::sha256::Sha256;
use crate::sys;

/// The parent directory of `path`, as the controller's `parent_dir` says it.
fn parent_dir(path: &str) -> String {
    match path.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) => "/".to_string(),
        Some((d, _)) => d.to_string(),
        None => ".".to_string(),
    }
}

fn checksum(path: &str) -> Option<String> {
    let mut f = File::open(path).ok()?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match f.read(&mut buf) {
            Ok(0) => return Some(h.hex()),
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// The stat line: raw mode in hex, uid, gid, size, mtime, user, group.
fn stat_line(m: &fs::Metadata, names: &mut Names) -> String {
    format!(
        "{:x} {} {} {} {} {} {}\n",
        m.mode(),
        m.uid(),
        m.gid(),
        m.size(),
        m.mtime(),
        names.user(m.uid()),
        names.group(m.gid())
    )
}

/// `stat`: links not followed; `S<sha256>` for a regular readable file,
/// `L<target>` for a link, `missing` when nothing is there.
pub fn stat(path: &str, names: &mut Names) -> Reply {
    let Ok(m) = fs::symlink_metadata(path) else {
        return Reply::ok(b"missing\n".to_vec());
    };
    let mut out = stat_line(&m, names).into_bytes();
    if m.file_type().is_symlink() {
        out.push(b'L');
        out.extend_from_slice(
            fs::read_link(path)
                .map(|t| t.into_os_string().into_encoded_bytes())
                .unwrap_or_default()
                .as_slice(),
        );
        out.push(b'\n');
    } else if m.file_type().is_file()
        && let Some(sum) = checksum(path)
    {
        out.extend_from_slice(format!("S{sum}\n").as_bytes());
    }
    Reply::ok(out)
}

/// `stat_read`: the stat line then `S\n` and the content of a regular
/// readable file, or `L<target>`; a missing path says `missing`, then `D`
/// when its parent is a directory (links followed).
pub fn stat_read(path: &str, names: &mut Names) -> Reply {
    let Ok(m) = fs::symlink_metadata(path) else {
        let mut out = b"missing\n".to_vec();
        if Path::new(&parent_dir(path)).is_dir() {
            out.extend_from_slice(b"D\n");
        }
        return Reply::ok(out);
    };
    let mut out = stat_line(&m, names).into_bytes();
    if m.file_type().is_symlink() {
        out.push(b'L');
        if let Ok(t) = fs::read_link(path) {
            out.extend_from_slice(t.as_os_str().as_encoded_bytes());
        }
        out.push(b'\n');
    } else if m.file_type().is_file()
        && let Ok(mut f) = File::open(path)
    {
        out.extend_from_slice(b"S\n");
        if let Err(e) = f.read_to_end(&mut out) {
            return Reply::failed(4, format!("cat: {path}: {e}\n"));
        }
    }
    Reply::ok(out)
}

/// `exists`: `y` when anything (a dangling link too) is at the path.
pub fn exists(path: &str) -> Reply {
    Reply::ok(if fs::symlink_metadata(path).is_ok() {
        b"y\n".to_vec()
    } else {
        b"n\n".to_vec()
    })
}

/// `get`: the whole content.
pub fn get(path: &str) -> Reply {
    match fs::read(path) {
        Ok(c) => Reply::ok(c),
        Err(e) => Reply::failed(1, format!("cat: {path}: {e}\n")),
    }
}

/// `mkdir`: the directory and its missing parents (0777 less the umask); an
/// existing directory is fine.
pub fn make_dirs(path: &str) -> Reply {
    match fs::create_dir_all(path) {
        Ok(()) => Reply::ok(Vec::new()),
        Err(e) => Reply::failed(1, format!("mkdir: cannot create directory '{path}': {e}\n")),
    }
}

/// What a written file gets besides its content.
pub struct Attrs {
    pub mode: Option<u32>,
    pub owner: Option<String>,
    pub group: Option<String>,
}

/// `create`: writes only when nothing is at the path and its parent is a
/// directory (`created`); otherwise the stat answer, checksum included.
pub fn create(path: &str, attrs: &Attrs, content: &mut dyn Read, names: &mut Names) -> Reply {
    let path = path.trim_end_matches('/');
    if fs::symlink_metadata(path).is_ok() || !Path::new(&parent_dir(path)).is_dir() {
        return stat(path, names);
    }
    match write_atomic(path, attrs, None, content, names) {
        Ok(()) => Reply::ok(b"created\n".to_vec()),
        Err(e) => Reply::failed(1, e),
    }
}

/// `put`: replaces the file atomically. Without a mode, an existing file
/// keeps its mode and owner; a new one gets 0666 less the umask.
pub fn put(path: &str, attrs: &Attrs, content: &mut dyn Read, names: &mut Names) -> Reply {
    let path = path.trim_end_matches('/');
    // As `chmod --reference`: links followed.
    let old = fs::metadata(path).ok();
    match write_atomic(path, attrs, old.as_ref(), content, names) {
        Ok(()) => Reply::ok(Vec::new()),
        Err(e) => Reply::failed(1, e),
    }
}

/// Temp file in the same directory (owner-only while written), content,
/// fsync, owner, mode, rename. Removes the temp file on any failure.
fn write_atomic(
    path: &str,
    attrs: &Attrs,
    old: Option<&fs::Metadata>,
    content: &mut dyn Read,
    names: &mut Names,
) -> Result<(), String> {
    let dir = parent_dir(path);
    let base = path.rsplit('/').next().unwrap_or(path);
    let tmp = format!(
        "{}/.{base}.ferry-{}",
        dir.trim_end_matches('/'),
        sys::random_hex(6)
    );
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|_| {
            format!("cannot write a file in {dir} (not writable, or the disk is full)\n")
        })?;
    let done = (|| -> Result<(), String> {
        io::copy(content, &mut f).map_err(|e| format!("writing {tmp}: {e}\n"))?;
        f.sync_all().map_err(|e| format!("sync {tmp}: {e}\n"))?;
        let uid = match &attrs.owner {
            Some(o) => Some(
                names
                    .uid(o)
                    .ok_or_else(|| format!("chown: invalid user: '{o}'\n"))?,
            ),
            None => old.map(|m| m.uid()),
        };
        let gid = match &attrs.group {
            Some(g) => Some(
                names
                    .gid(g)
                    .ok_or_else(|| format!("chgrp: invalid group: '{g}'\n"))?,
            ),
            None => old.map(|m| m.gid()),
        };
        if uid.is_some() || gid.is_some() {
            let r = std::os::unix::fs::fchown(&f, uid, gid);
            // Copying an old file's owner is best effort, as `chown --reference` was.
            if attrs.owner.is_some() || attrs.group.is_some() {
                r.map_err(|e| format!("chown {tmp}: {e}\n"))?;
            }
        }
        let mode = match (attrs.mode, old) {
            (Some(m), _) => m,
            (None, Some(m)) => m.mode() & 0o7777,
            (None, None) => 0o666 & !sys::current_umask(),
        };
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| format!("chmod {tmp}: {e}\n"))?;
        drop(f);
        fs::rename(&tmp, path).map_err(|e| format!("mv: cannot move {tmp} to {path}: {e}\n"))
    })();
    if done.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    done
}

/// Writes a command's stdin to `dest` (owner-only, truncated) as the shell's
/// `R ... DEST` did; on any failure `dest` is removed and the rest drained,
/// so the script sees no file.
pub fn write_dest(dest: &str, content: &mut dyn Read) {
    let written = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(dest)
        .and_then(|mut f| io::copy(content, &mut f).and_then(|_| f.flush()));
    if written.is_err() {
        let _ = fs::remove_file(dest);
        let _ = io::copy(content, &mut io::sink());
    }
}
