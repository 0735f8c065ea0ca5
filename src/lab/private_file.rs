//! Files the lab writes owner-only (keys, state, logs, sshd configs): created
//! with mode 0600 from the start, and replaced atomically (temp file + rename),
//! so no reader ever sees a wider mode or half a file.

use std::path::Path;

use super::{Result, io_err};

/// Write via a temporary file and rename, so readers never see half a file.
/// The file is the owner's alone (0600) from its creation on: lab state
/// holds keys' paths, addresses and sshd configs.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    // A temp file left by a crash may have another mode: start afresh.
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    f.write_all(bytes).map_err(io_err(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

/// Create (or truncate) a log file of the lab's, owner-only.
pub fn create_private(path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(io_err(path))?;
    Ok(f)
}
