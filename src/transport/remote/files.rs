//! The file calls through a host's remote shell or agent: put, get, stat,
//! read, create and exists, one round trip each. The agent answers its own
//! requests in the text the shell's scripts print, so one parser reads both.

use super::{RemoteShell, random_hex, sh_quote};
use crate::transport::{
    CommandOutput, CommandSpec, FileRead, FileSpec, FileStat, TransportError, parent_dir,
};

fn failed(shell: &RemoteShell, what: &str, out: &CommandOutput) -> TransportError {
    TransportError::Other {
        host: shell.host().to_string(),
        reason: format!(
            "{what} failed (rc {}): {}",
            out.rc,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    }
}

/// Writes a file atomically: temp file in the same directory, fsync, mode,
/// owner, rename.
pub async fn put_file(shell: &mut RemoteShell, spec: &FileSpec) -> Result<(), TransportError> {
    let path = spec.path.trim_end_matches('/');
    if shell.agent && spec.become_.is_none() {
        let out = ask_write(shell, "put", path, spec).await?;
        if out.rc != 0 {
            return Err(failed(shell, &format!("writing {path}"), &out));
        }
        return Ok(());
    }
    let (dir, base) = match path.rsplit_once('/') {
        Some(("", b)) => ("/".to_string(), b),
        Some((d, b)) => (d.to_string(), b),
        None => (".".to_string(), path),
    };
    let tmp = format!(
        "{}/.{base}.ferry-{}",
        dir.trim_end_matches('/'),
        random_hex(6)
    );
    // Without become, the shell writes the content straight into the temp
    // file (no copy); with it, the script (run by sudo) writes it.
    let direct = spec.become_.is_none() && !tmp.contains(['\n', '\r']) && tmp.trim() == tmp;
    let p = sh_quote(path);
    let mut s = format!("t={}\ntrap 'rm -f \"$t\"' EXIT\n", sh_quote(&tmp));
    if direct {
        s.push_str(&format!(
            "[ -f \"$t\" ] || {{ echo {} >&2; exit 1; }}\nsync \"$t\" 2>/dev/null\n",
            sh_quote(&format!(
                "cannot write a file in {dir} (not writable, or the disk is full)"
            ))
        ));
    } else {
        s.push_str("dd of=\"$t\" bs=65536 conv=fsync status=none || exit 1\n");
    }
    match spec.mode {
        Some(m) => s.push_str(&format!("chmod {m:o} \"$t\" || exit 1\n")),
        // The temp file was made owner-only: give it the old file's mode, or
        // the mode a new file gets here (0666 less the umask).
        None => s.push_str(&format!(
            "if [ -e {p} ]; then chmod --reference={p} \"$t\" 2>/dev/null; chown --reference={p} \"$t\" 2>/dev/null; \
             else chmod \"$(printf %o $((0666 & ~0$(umask))))\" \"$t\"; fi\n"
        )),
    }
    if let Some(c) = owner_command(spec, "\"$t\"") {
        s.push_str(&format!("{c} || exit 1\n"));
    }
    s.push_str(&format!("mv -f \"$t\" {p} || exit 1\ntrap - EXIT\n"));
    let spec2 = CommandSpec {
        cmd: s,
        stdin: Some(spec.content.clone()),
        become_: spec.become_.clone(),
        ..Default::default()
    };
    let out = shell
        .run_to(&spec2, direct.then_some(tmp.as_str()), false)
        .await?;
    if out.rc != 0 {
        return Err(failed(shell, &format!("writing {path}"), &out));
    }
    Ok(())
}

/// `mkdir -p`: asked of the agent, else run as the command.
pub async fn make_dirs(
    shell: &mut RemoteShell,
    path: &str,
) -> Result<CommandOutput, TransportError> {
    if shell.agent {
        shell.ask(&[b"mkdir", path.as_bytes()], &[]).await
    } else {
        shell.run(&crate::transport::make_dirs_command(path)).await
    }
}

/// The `chown`/`chgrp` that gives `file` (a shell word) `spec`'s owner and group.
fn owner_command(spec: &FileSpec, file: &str) -> Option<String> {
    match (&spec.owner, &spec.group) {
        (Some(o), Some(g)) => Some(format!("chown {} {file}", sh_quote(&format!("{o}:{g}")))),
        (Some(o), None) => Some(format!("chown {} {file}", sh_quote(o))),
        (None, Some(g)) => Some(format!("chgrp {} {file}", sh_quote(g))),
        (None, None) => None,
    }
}

/// Reads a whole file.
pub async fn get_file(shell: &mut RemoteShell, path: &str) -> Result<Vec<u8>, TransportError> {
    let out = if shell.agent {
        shell.ask(&[b"get", path.as_bytes()], &[]).await?
    } else {
        shell.run_own(format!("cat -- {}", sh_quote(path))).await?
    };
    if out.rc != 0 {
        return Err(failed(shell, &format!("reading {path}"), &out));
    }
    Ok(out.stdout)
}

/// Stats a path (links not followed), with the sha256 of regular files.
pub async fn stat(shell: &mut RemoteShell, path: &str) -> Result<FileStat, TransportError> {
    let out = if shell.agent {
        shell.ask(&[b"stat", path.as_bytes()], &[]).await?
    } else {
        let script = format!(
            "_f_p={}\n{}",
            sh_quote(path),
            stat_script("sha256sum < \"$_f_p\"", shell.names_epoch)
        );
        shell.run_own(script).await?
    };
    if out.rc != 0 {
        return Err(failed(shell, &format!("stat {path}"), &out));
    }
    parse_stat(&String::from_utf8_lossy(&out.stdout)).ok_or_else(|| TransportError::Other {
        host: shell.host().to_string(),
        reason: format!(
            "stat {path}: unexpected answer {:?}",
            String::from_utf8_lossy(&out.stdout)
        ),
    })
}

/// The script that prints the stat answer for `$_f_p` (see [`parse_stat`]);
/// `file_cmd` prints what follows `S` for a regular readable file, with the
/// stat fields in `$1`.. (`$4` the size).
///
/// One `stat` process, without user/group name lookups: the shell keeps the
/// names of the uids and gids it has seen in variables of generation `epoch`
/// (see `RemoteShell::names_epoch`) and asks `stat` for them only on a miss.
fn stat_script(file_cmd: &str, epoch: u64) -> String {
    format!(
        "if [ -L \"$_f_p\" ] || [ -e \"$_f_p\" ]; then\n\
         _f_st=$(stat -c '%f %u %g %s %Y' -- \"$_f_p\") || return 3\n\
         set -- $_f_st\n\
         eval \"_f_un=\\${{_f_Nu{epoch}_$2-}} _f_gn=\\${{_f_Ng{epoch}_$3-}}\"\n\
         if [ -z \"$_f_un\" ] || [ -z \"$_f_gn\" ]; then\n\
         _f_nm=$(stat -c '%U %G' -- \"$_f_p\") || return 3\n\
         _f_un=${{_f_nm%% *}} _f_gn=${{_f_nm#* }}\n\
         eval \"_f_Nu{epoch}_$2=\\$_f_un _f_Ng{epoch}_$3=\\$_f_gn\"\n\
         fi\n\
         printf '%s %s %s\\n' \"$_f_st\" \"$_f_un\" \"$_f_gn\"\n\
         if [ -L \"$_f_p\" ]; then printf L; readlink -- \"$_f_p\"\n\
         elif [ -f \"$_f_p\" ] && [ -r \"$_f_p\" ]; then printf S; {file_cmd}; fi\n\
         else echo missing; fi"
    )
}

/// Files up to this size are read by the shell itself (`read`, a builtin)
/// rather than by `cat` or `sha256sum`: one process less per file op. The
/// builtin reads a byte per system call, so large files still go to `cat`.
const SHELL_READ_MAX: u64 = 8 * 1024;

/// Shell function `_f_rd`: reads `$_f_p` into `$_f_c` with builtins only.
/// Whether `$_f_c` holds the file exactly is for the caller to check against
/// its size (a shell drops NUL bytes).
const SHELL_READ_FN: &str = "_f_rd() { _f_c=; _f_l=; while IFS= read -r _f_l; do _f_c=\"$_f_c$_f_l\n\"; _f_l=; done < \"$_f_p\"; _f_c=\"$_f_c$_f_l\"; }";

fn bad_answer(shell: &RemoteShell, what: &str, out: &CommandOutput) -> TransportError {
    TransportError::Other {
        host: shell.host().to_string(),
        reason: format!(
            "{what}: unexpected answer {:?}",
            String::from_utf8_lossy(&out.stdout)
        ),
    }
}

/// Whether anything (a dangling link included) is at `path`: shell
/// builtins only.
pub async fn exists(shell: &mut RemoteShell, path: &str) -> Result<bool, TransportError> {
    let out = if shell.agent {
        shell.ask(&[b"exists", path.as_bytes()], &[]).await?
    } else {
        let script = format!(
            "_f_p={}\nif [ -L \"$_f_p\" ] || [ -e \"$_f_p\" ]; then echo y; else echo n; fi",
            sh_quote(path)
        );
        shell.run_own(script).await?
    };
    match (out.rc, out.stdout.as_slice()) {
        (0, b"y\n") => Ok(true),
        (0, b"n\n") => Ok(false),
        _ => Err(bad_answer(shell, &format!("checking {path}"), &out)),
    }
}

/// Stats `path` and reads it when it is a regular file, in one round trip
/// (the checksum is computed here, not by a `sha256sum` on the host). For a
/// missing path, says whether its parent is a directory.
pub async fn stat_read(shell: &mut RemoteShell, path: &str) -> Result<FileRead, TransportError> {
    if shell.agent {
        let out = shell.ask(&[b"stat_read", path.as_bytes()], &[]).await?;
        if out.rc != 0 {
            return Err(failed(shell, &format!("reading {path}"), &out));
        }
        return parse_stat_read(&out.stdout)
            .ok_or_else(|| bad_answer(shell, &format!("stat {path}"), &out));
    }
    let script = format!(
        "{SHELL_READ_FN}\n_f_p={}\nif [ -L \"$_f_p\" ] || [ -e \"$_f_p\" ]; then\n{}\nelif [ -d {} ]; then echo missing; echo D\nelse echo missing; fi",
        sh_quote(path),
        stat_script(
            &format!(
                "echo; if [ \"$4\" -le {SHELL_READ_MAX} ] && _f_rd && [ \"${{#_f_c}}\" = \"$4\" ]; then printf %s \"$_f_c\"; else cat -- \"$_f_p\" || return 4; fi"
            ),
            shell.names_epoch
        ),
        sh_quote(&parent_dir(path)),
    );
    let out = shell.run_own(script).await?;
    if out.rc != 0 {
        return Err(failed(shell, &format!("reading {path}"), &out));
    }
    parse_stat_read(&out.stdout).ok_or_else(|| bad_answer(shell, &format!("stat {path}"), &out))
}

/// Parses [`stat_read`]'s answer: the stat line, then `S\n` and the
/// content, `L` and the link target, or (missing) `D` for a parent directory.
pub fn parse_stat_read(out: &[u8]) -> Option<FileRead> {
    let nl = out.iter().position(|&b| b == b'\n')?;
    let first = std::str::from_utf8(&out[..nl]).ok()?;
    let rest = &out[nl + 1..];
    if first == "missing" {
        return Some(FileRead {
            stat: FileStat::default(),
            content: None,
            parent_is_dir: Some(rest == b"D\n"),
        });
    }
    if let Some(content) = rest.strip_prefix(b"S\n") {
        let mut stat = parse_stat(&format!("{first}\n"))?;
        stat.checksum = Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(content)));
        return Some(FileRead {
            stat,
            content: Some(content.to_vec()),
            parent_is_dir: None,
        });
    }
    let stat = parse_stat(&String::from_utf8_lossy(out))?;
    Some(FileRead {
        stat,
        content: None,
        parent_is_dir: None,
    })
}

/// Content this large or larger goes by [`put_file`], not inside the script.
const INLINE_MAX: usize = 32 * 1024;

/// What [`create_file`] did.
#[derive(Debug)]
pub enum Created {
    Written,
    /// Nothing written: the path's stat (`exists` false when the parent is
    /// not a directory).
    NotWritten(FileStat),
    /// The content cannot travel inside a script (binary, NUL, large, or
    /// written with become): nothing asked.
    CannotInline,
}

/// Writes `spec` only when nothing is at its path and its parent is a
/// directory, in one round trip (see [`super::Transport::create_file`]).
/// The content travels inside the script (`printf`, a builtin), so nothing
/// is written when the file exists; the write is atomic as `put_file`'s
/// (temp file in the same directory, fsync, rename), its mode set by the
/// umask when it can be (no `chmod`).
pub async fn create_file(
    shell: &mut RemoteShell,
    spec: &FileSpec,
) -> Result<Created, TransportError> {
    if shell.agent {
        let path = spec.path.trim_end_matches('/');
        if spec.content.len() >= INLINE_MAX || spec.become_.is_some() || path.is_empty() {
            return Ok(Created::CannotInline);
        }
        let out = ask_write(shell, "create", path, spec).await?;
        return created(shell, path, out);
    }
    let text = match std::str::from_utf8(&spec.content) {
        Ok(t) if t.len() < INLINE_MAX && !t.contains('\0') && spec.become_.is_none() => t,
        _ => return Ok(Created::CannotInline),
    };
    let path = spec.path.trim_end_matches('/');
    if path.is_empty() || path.contains('\0') {
        return Ok(Created::CannotInline);
    }
    let dir = parent_dir(path);
    let base = path.rsplit('/').next().unwrap_or(path);
    let tmp = format!(
        "{}/.{base}.ferry-{}",
        dir.trim_end_matches('/'),
        random_hex(6)
    );
    // Run in the remote shell itself: no trap, no exit, the umask restored.
    let mut w = format!("_f_tf={}\n", sh_quote(&tmp));
    let mut chmod = None;
    let umask = match spec.mode {
        Some(m) if m & !0o666 == 0 => Some(!m & 0o777),
        Some(m) => {
            chmod = Some(m);
            None
        }
        None => None,
    };
    if let Some(u) = umask {
        w.push_str(&format!("umask {u:o}\n"));
    }
    w.push_str("printf %s \"$_f_x\" > \"$_f_tf\"\n_f_wr=$?\n");
    if umask.is_some() {
        w.push_str("umask \"$_f_um\"\n");
    }
    w.push_str("if [ \"$_f_wr\" = 0 ] && { sync \"$_f_tf\" 2>/dev/null; true; }");
    if let Some(m) = chmod {
        w.push_str(&format!(" && chmod {m:o} \"$_f_tf\""));
    }
    if let Some(c) = owner_command(spec, "\"$_f_tf\"") {
        w.push_str(&format!(" && {c}"));
    }
    w.push_str(
        " && mv -f \"$_f_tf\" \"$_f_p\"; then echo created\nelse rm -f \"$_f_tf\"; return 1; fi",
    );
    // An existing file of the same size is compared with the content in the
    // shell: when equal, its checksum is the content's (no `sha256sum`).
    let sum = if text.len() as u64 <= SHELL_READ_MAX {
        format!(
            "if [ \"$4\" = {} ] && _f_rd && [ \"$_f_c\" = \"$_f_x\" ]; then echo {}; else sha256sum < \"$_f_p\"; fi",
            text.len(),
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes()))
        )
    } else {
        "sha256sum < \"$_f_p\"".to_string()
    };
    let script = format!(
        "{SHELL_READ_FN}\n_f_x={}\n_f_p={}\nif [ -L \"$_f_p\" ] || [ -e \"$_f_p\" ] || [ ! -d {} ]; then\n{}\nelse\n{w}\nfi",
        sh_quote(text),
        sh_quote(path),
        sh_quote(&dir),
        stat_script(&sum, shell.names_epoch),
    );
    let out = shell.run_own(script).await?;
    created(shell, path, out)
}

/// Reads [`create_file`]'s answer: `created`, or the stat of what is there.
fn created(shell: &RemoteShell, path: &str, out: CommandOutput) -> Result<Created, TransportError> {
    if out.rc != 0 {
        return Err(failed(shell, &format!("writing {path}"), &out));
    }
    if out.stdout == b"created\n" {
        return Ok(Created::Written);
    }
    match parse_stat(&String::from_utf8_lossy(&out.stdout)) {
        Some(st) => Ok(Created::NotWritten(st)),
        None => Err(bad_answer(shell, &format!("writing {path}"), &out)),
    }
}

/// The agent's `create` or `put` of `spec` at `path`.
async fn ask_write(
    shell: &mut RemoteShell,
    what: &str,
    path: &str,
    spec: &FileSpec,
) -> Result<CommandOutput, TransportError> {
    let mode = spec.mode.map(|m| format!("{m:o}")).unwrap_or_default();
    let owner = spec.owner.as_deref().unwrap_or("");
    let group = spec.group.as_deref().unwrap_or("");
    shell
        .ask(
            &[
                what.as_bytes(),
                path.as_bytes(),
                mode.as_bytes(),
                owner.as_bytes(),
                group.as_bytes(),
            ],
            &spec.content,
        )
        .await
}

/// Parses the stat script's answer.
pub fn parse_stat(text: &str) -> Option<FileStat> {
    let mut lines = text.splitn(2, '\n');
    let first = lines.next()?.trim();
    if first == "missing" {
        return Some(FileStat::default());
    }
    let f: Vec<&str> = first.split(' ').collect();
    if f.len() < 7 {
        return None;
    }
    let raw = u32::from_str_radix(f[0], 16).ok()?;
    let kind = raw & 0o170000;
    let rest = lines.next().unwrap_or("");
    let (checksum, link_target) = if let Some(t) = rest.strip_prefix('L') {
        (None, Some(t.trim_end_matches('\n').to_string()))
    } else if let Some(s) = rest.strip_prefix('S') {
        (s.split_whitespace().next().map(str::to_string), None)
    } else {
        (None, None)
    };
    Some(FileStat {
        exists: true,
        is_dir: kind == 0o040000,
        is_file: kind == 0o100000,
        is_link: kind == 0o120000,
        mode: raw & 0o7777,
        uid: f[1].parse().ok()?,
        gid: f[2].parse().ok()?,
        size: f[3].parse().ok()?,
        mtime: f[4].parse().ok()?,
        owner: f[5].to_string(),
        group: f[6..].join(" "),
        checksum,
        link_target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_read_answers_parse() {
        let r = parse_stat_read(b"81a4 0 0 4 1700000000 root root\nS\nab\n\n").unwrap();
        assert!(r.stat.is_file);
        assert_eq!(r.content.as_deref(), Some(&b"ab\n\n"[..]));
        assert_eq!(
            r.stat.checksum.as_deref(),
            Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"ab\n\n")).as_str())
        );
        let m = parse_stat_read(b"missing\nD\n").unwrap();
        assert!(!m.stat.exists && m.parent_is_dir == Some(true));
        let m = parse_stat_read(b"missing\n").unwrap();
        assert_eq!(m.parent_is_dir, Some(false));
        let l = parse_stat_read(b"a1ff 0 0 4 1 root root\nL/etc\n").unwrap();
        assert!(l.stat.is_link && l.content.is_none());
        assert!(parse_stat_read(b"garbage").is_none());
    }

    #[test]
    fn stat_answers_parse() {
        let st = parse_stat("81a4 0 0 5 1700000000 root root\nSabc  -\n").unwrap();
        assert!(st.exists && st.is_file && !st.is_dir);
        assert_eq!(st.mode, 0o644);
        assert_eq!(st.checksum.as_deref(), Some("abc"));
        assert_eq!(parse_stat("missing\n").unwrap(), FileStat::default());
        let l = parse_stat("a1ff 0 0 4 1 root root\nL/etc\n").unwrap();
        assert!(l.is_link);
        assert_eq!(l.link_target.as_deref(), Some("/etc"));
    }
}
