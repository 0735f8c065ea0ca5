//! The few C library calls std does not wrap: signals to a process group and
//! the umask. glibc is linked by std already.

use std::io::Read;

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
    fn umask(mask: u32) -> u32;
}

pub const SIGTERM: i32 = 15;
pub const SIGKILL: i32 = 9;

/// Sends `sig` to the process group `pgid`.
pub fn kill_group(pgid: u32, sig: i32) {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe {
        kill(-(pgid as i32), sig);
    }
}

/// The process's umask (read by setting and restoring it; the agent is
/// single-threaded while it does).
pub fn current_umask() -> u32 {
    // SAFETY: umask(2) takes and returns plain integers.
    unsafe {
        let old = umask(0o022);
        umask(old);
        old
    }
}

/// `n` random bytes as hex, for temp file names.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_err()
    {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (t >> ((i % 16) * 8)) as u8 ^ (std::process::id() as u8).wrapping_add(i as u8);
        }
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
