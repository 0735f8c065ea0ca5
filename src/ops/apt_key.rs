//! `apt_key`: an APT signing key as a file. Where Ansible runs `apt-key add`
//! (deprecated, and gone from recent Debian), ferry writes the key to
//! `keyring:` or to `/etc/apt/trusted.gpg.d/ferry-<id>.asc` (`.gpg` for a
//! binary key; `<id>` is `id:` or, without it, the key's sha256 prefix),
//! which APT reads the same way. The key comes from `data:` or from `file:`
//! (looked up on the controller first, `files/` search path, then on the
//! host, where Ansible looks). The write is the usual atomic, checksum-first
//! one: an unchanged key file is never rewritten. `state: absent` removes
//! the file named by `keyring:` or by `id:`.

use super::attrs::{FileAttrs, ModeSpec};
use super::content::{FileWork, WriteOpts, plan_content};
use super::{Args, OpContext, OpError, OpOutcome, Plan, find_src, sha256_hex};
use crate::transport::Transport;
use crate::vars::Vars;

use super::schema::Spec;

/// What `apt_key` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "apt_key",
    flags: "",
    params: "id:str; data:str; file:path; keyring:path; state:str=present,absent",
    rules: "data|file",
};

crate::ops::planned_op!(AptKeyOp, SPEC);

pub const TRUSTED_DIR: &str = "/etc/apt/trusted.gpg.d";

#[derive(Debug, Clone)]
pub struct Params {
    pub id: Option<String>,
    pub data: Option<String>,
    pub file: Option<String>,
    pub keyring: Option<String>,
    pub present: bool,
}

impl Params {
    pub fn parse(args: &Vars) -> Result<Params, OpError> {
        let a = Args::new("apt_key", args);
        let p = Params {
            id: a.str("id")?.map(|i| {
                let i = i.trim();
                i.strip_prefix("0x")
                    .or_else(|| i.strip_prefix("0X"))
                    .unwrap_or(i)
                    .to_string()
            }),
            data: a.str("data")?,
            file: a.str("file")?,
            keyring: a.str("keyring")?,
            present: a.choice("state", "present")? == "present",
        };
        a.finish()?;
        if let Some(id) = &p.id
            && (id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(OpError::params(
                "apt_key",
                format!("id `{id}` must be a hexadecimal key id or fingerprint"),
            ));
        }
        if p.data.is_some() && p.file.is_some() {
            return Err(OpError::params(
                "apt_key",
                "data and file are mutually exclusive",
            ));
        }
        if p.present && p.data.is_none() && p.file.is_none() {
            return Err(OpError::params(
                "apt_key",
                "state=present needs `data` or `file` (a `url` or keyserver is not reachable from the lab)",
            ));
        }
        if !p.present && p.id.is_none() && p.keyring.is_none() {
            return Err(OpError::params(
                "apt_key",
                "state=absent needs `id` or `keyring` to know which key file to remove",
            ));
        }
        Ok(p)
    }
}

/// Whether a key is ASCII-armored (APT wants `.asc` then, `.gpg` otherwise).
pub fn armored(key: &[u8]) -> bool {
    const BEGIN: &[u8] = b"-----BEGIN PGP PUBLIC KEY BLOCK-----";
    key.windows(BEGIN.len()).any(|w| w == BEGIN)
}

/// The key file for `id` / key bytes when no `keyring:` is given.
pub fn default_path(id: Option<&str>, key: &[u8]) -> String {
    let name = match id {
        Some(i) => i.to_ascii_uppercase(),
        None => sha256_hex(key)[..16].to_string(),
    };
    let ext = if armored(key) { "asc" } else { "gpg" };
    format!("{TRUSTED_DIR}/ferry-{name}.{ext}")
}

/// What the apply does: write the key file, or remove the key files, in order.
pub struct Work(Vec<FileWork>);

/// The plan of `r` making `work` (nothing to apply when it is empty).
fn planned(r: OpOutcome, work: Vec<FileWork>) -> Plan {
    if work.is_empty() {
        return Plan::done(r);
    }
    let changes = work.iter().flat_map(FileWork::changes).collect();
    Plan::changes(r, changes, Work(work))
}

pub async fn plan(t: &dyn Transport, p: &Params, ctx: &OpContext<'_>) -> Result<Plan, OpError> {
    if !p.present {
        let paths: Vec<String> = match (&p.keyring, &p.id) {
            (Some(k), _) => vec![k.clone()],
            (None, Some(id)) => ["asc", "gpg"]
                .iter()
                .map(|e| format!("{TRUSTED_DIR}/ferry-{}.{e}", id.to_ascii_uppercase()))
                .collect(),
            (None, None) => unreachable!("checked by parse"),
        };
        let mut r = OpOutcome::new(false);
        let mut work = Vec::new();
        for path in &paths {
            if t.stat(path).await?.exists {
                r.changed = true;
                r.set("keyring", path.clone());
                work.push(FileWork::Remove(path.clone()));
            }
        }
        r.set("id", p.id.clone());
        return Ok(planned(r, work));
    }
    let key: Vec<u8> = match (&p.data, &p.file) {
        (Some(d), _) => d.clone().into_bytes(),
        (None, Some(f)) => match find_src(f, "files", &ctx.base_dirs()) {
            Some(local) => std::fs::read(&local)
                .map_err(|e| OpError::failed(format!("reading {}: {e}", local.display())))?,
            None => {
                if !t.stat(f).await?.is_file {
                    return Err(OpError::failed(format!(
                        "key file `{f}` is neither on the controller (search path: {}) nor on the host",
                        super::copy::search_list(&ctx.base_dirs())
                    )));
                }
                t.get_file(f).await?
            }
        },
        (None, None) => unreachable!("checked by parse"),
    };
    if !armored(&key) && key.first().is_none_or(|b| b & 0x80 == 0) {
        return Err(OpError::failed(
            "the key is neither an ASCII-armored nor a binary OpenPGP public key",
        ));
    }
    let path = p
        .keyring
        .clone()
        .unwrap_or_else(|| default_path(p.id.as_deref(), &key));
    let st = t.stat(&path).await?;
    if !st.exists {
        let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("/");
        if !t.stat(if dir.is_empty() { "/" } else { dir }).await?.is_dir {
            return Err(OpError::failed(format!(
                "keyring directory {dir} does not exist"
            )));
        }
    }
    let attrs = FileAttrs {
        mode: Some(ModeSpec::Octal(0o644)),
        owner: None,
        group: None,
    };
    let opts = WriteOpts::new();
    let w = plan_content(t, &path, &st, None, &key, &attrs, &opts, ctx).await?;
    let mut r = OpOutcome::new(w.written.changed);
    r.diff = w.written.diff.clone();
    r.set("keyring", path);
    r.set("id", p.id.clone());
    r.set("key_id", p.id.clone());
    r.set("before", Vec::<String>::new());
    let work = if w.written.changed {
        vec![FileWork::Write(Box::new(w), opts)]
    } else {
        Vec::new()
    };
    Ok(planned(r, work))
}

pub async fn apply(
    t: &dyn Transport,
    _: &Params,
    _: &OpContext<'_>,
    outcome: OpOutcome,
    Work(work): Work,
) -> Result<OpOutcome, OpError> {
    for w in work {
        w.apply(t).await?;
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn params_and_paths() {
        let parse = |v| Params::parse(&serde_json::from_value(v).unwrap());
        assert!(parse(json!({"data": "x"})).is_ok());
        assert!(
            parse(json!({"url": "https://x/key"}))
                .unwrap_err()
                .to_string()
                .contains("`url`")
        );
        assert!(parse(json!({"state": "absent"})).is_err());
        assert!(parse(json!({"id": "0xZZ", "data": "x"})).is_err());
        assert_eq!(
            parse(json!({"id": "0xabcd", "state": "absent"}))
                .unwrap()
                .id
                .unwrap(),
            "abcd"
        );
        let arm = b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxx\n";
        assert_eq!(
            default_path(Some("abcd"), arm),
            "/etc/apt/trusted.gpg.d/ferry-ABCD.asc"
        );
        assert!(default_path(None, &[0x99, 1, 2]).ends_with(".gpg"));
    }
}
