//! The host agent (`agent/`, built by `build.rs` and carried inside this
//! binary): its bytes, its name on a host, how the remote shell is replaced
//! by it, and how its own requests are framed.
//!
//! A host runs the agent from `~/.cache/ferry/agent-<first 16 hex of its
//! sha256>`. The connection's start command runs it when it is there;
//! otherwise the remote shell starts, and [`install_script`] places it (one
//! round trip carrying the binary, which must pass `--check` on that host:
//! another architecture or an older C library keeps the shell), then the
//! shell `exec`s it in place (`X` request). The agent answers file requests
//! (stat, read, create, put) itself, so they start no process on the host;
//! commands still run under `/bin/sh`. Host var `ferry_agent: false` keeps
//! the shell.

use std::sync::LazyLock;

/// The agent for the target ferry was built for.
pub static BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ferry-agent"));

static FILE_NAME: LazyLock<String> = LazyLock::new(|| {
    let sum = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(BINARY));
    format!("agent-{}", &sum[..16])
});

/// The agent's file name on a host (its directory is `$HOME/.cache/ferry`).
pub fn file_name() -> &'static str {
    &FILE_NAME
}

/// The exec command of a connection: the agent when the host has it, else
/// `shell` (the remote shell's own start command), given the path of the
/// mark an earlier connection leaves when the agent cannot run there (the
/// shell then says so and the agent is not carried over again); `marker`
/// comes quoted. Written for any login shell that knows `&&` and `||`; the
/// shell's script appears once (dropbear refuses a command over 9,000 bytes).
pub fn start_command(shell: &str, marker: &str) -> String {
    let path = format!("\"$HOME\"/.cache/ferry/{}", file_name());
    format!("test -x {path} && exec {path} {marker} || {shell} {path}.refused")
}

/// The script (an `R` request whose stdin is [`BINARY`]) that places the
/// agent: a temp file beside its final name, `--check` run there, older
/// agents removed, then the rename; it prints the final path. Nothing is
/// left behind when any step fails, but a mark (`NAME.refused`) when the
/// agent does not run there (a `noexec` home, another architecture, an
/// older C library), so later connections do not carry it again.
pub fn install_script(suffix: &str) -> String {
    let name = file_name();
    format!(
        "d=\"$HOME/.cache/ferry\"\n\
         t=\"$d/.{name}.{suffix}\"\n\
         trap 'rm -f \"$t\"' EXIT\n\
         mkdir -p \"$d\" && chmod 700 \"$d\" && cat > \"$t\" && chmod 700 \"$t\" || exit 1\n\
         [ \"$(\"$t\" --check 2>&1)\" = 'ferry-agent ok' ] || {{ : > \"$d/{name}.refused\"; echo 'the agent does not run on this host' >&2; exit 2; }}\n\
         for o in \"$d\"/agent-*; do [ \"$o\" = \"$d/{name}\" ] || rm -f \"$o\"; done\n\
         mv -f \"$t\" \"$d/{name}\" || exit 1\n\
         printf '%s\\n' \"$d/{name}\""
    )
}

/// An `A` request: `A ID FIELDSLEN DATALEN`, the fields (each `LEN:BYTES`),
/// then `data`.
pub fn request(id: u64, fields: &[&[u8]], data: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for f in fields {
        body.extend_from_slice(f.len().to_string().as_bytes());
        body.push(b':');
        body.extend_from_slice(f);
    }
    let mut req = format!("A {id} {} {}\n", body.len(), data.len()).into_bytes();
    req.extend_from_slice(&body);
    req.extend_from_slice(data);
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The agent's own SHA-256 (its file has no inner attributes, so it can be included).
    mod agent_sha256 {
        include!(concat!(env!("CARGO_MANIFEST_DIR"), "/agent/sha256.rs"));
    }

    #[test]
    fn the_agents_sha256_is_sha256() {
        let mut data = Vec::new();
        for len in [0usize, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 70_001] {
            data.resize(len, 0);
            for (i, b) in data.iter_mut().enumerate() {
                *b = (i * 31 + len) as u8;
            }
            let mut h = agent_sha256::Sha256::new();
            // In uneven pieces, as a file is read.
            for piece in data.chunks(37) {
                h.update(piece);
            }
            assert_eq!(
                h.hex(),
                hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&data)),
                "length {len}"
            );
        }
    }

    #[test]
    fn the_embedded_agent_runs_here() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("agent");
        std::fs::write(&p, BINARY).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        // Another test thread's fork may hold the file open for a moment (ETXTBSY).
        let mut tries = 0;
        let out = loop {
            match std::process::Command::new(&p).arg("--check").output() {
                Err(e) if e.raw_os_error() == Some(26) && tries < 50 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                r => break r.unwrap(),
            }
        };
        assert_eq!(out.stdout, b"ferry-agent ok\n");
    }

    #[test]
    fn requests_frame_their_fields() {
        let r = request(7, &[b"put", b"/a b", b""], b"xy");
        assert_eq!(r, b"A 7 13 2\n3:put4:/a b0:xy");
    }
}
