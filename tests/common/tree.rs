//! `snapshot`: everything a user could check about a file tree, to compare
//! before and after a run (an op that changes nothing leaves it equal).
//!
//! Use it with `#[path = "common/tree.rs"] mod tree;`.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::Digest;

/// Per path below `root`: inode, mtime (ns), mode, owner, content hash or link
/// target. A missing `root` gives an empty map.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    fn walk(p: &Path, root: &Path, out: &mut BTreeMap<PathBuf, String>) {
        let m = std::fs::symlink_metadata(p).unwrap();
        let what = if m.file_type().is_symlink() {
            format!("link->{}", std::fs::read_link(p).unwrap().display())
        } else if m.is_file() {
            hex::encode(sha2::Sha256::digest(std::fs::read(p).unwrap()))
        } else {
            "dir".into()
        };
        out.insert(
            p.strip_prefix(root).unwrap().to_path_buf(),
            format!(
                "ino={} mtime={}.{} mode={:o} uid={} {what}",
                m.ino(),
                m.mtime(),
                m.mtime_nsec(),
                m.mode(),
                m.uid()
            ),
        );
        if m.is_dir() {
            for e in std::fs::read_dir(p).unwrap() {
                walk(&e.unwrap().path(), root, out);
            }
        }
    }
    if root.symlink_metadata().is_ok() {
        walk(root, root, &mut out);
    }
    out
}
