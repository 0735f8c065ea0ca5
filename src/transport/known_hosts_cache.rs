//! known_hosts files read once per process: each file is parsed into an index on first
//! use and again only when its size or modification time changes (ferry itself appends
//! to it under `--accept-new-host-keys`), so opening N connections reads it once, not
//! N times (a lab's known_hosts lists every host: re-reading it per connection made
//! connecting N hosts cost N^2 lines).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use russh::keys::PublicKey;
use sha1::{Digest, Sha1};

/// One file's entries: plain host names to their keys, and the hashed (`|1|salt|hash`)
/// names, which can only be tested one by one.
#[derive(Default)]
struct Index {
    plain: HashMap<String, Vec<PublicKey>>,
    hashed: Vec<(Vec<u8>, Vec<u8>, PublicKey)>,
}

/// What a file looked like when it was indexed.
type Stamp = (u64, Option<SystemTime>);

/// Every file read so far, with the stamp it had.
type Cache = Mutex<HashMap<PathBuf, (Stamp, Arc<Index>)>>;

fn cache() -> &'static Cache {
    static C: OnceLock<Cache> = OnceLock::new();
    C.get_or_init(Default::default)
}

/// The keys `file` records for `host_port` (`host`, or `[host]:port` off port 22), in
/// file order for each kind of entry; a missing or unreadable file records none.
pub fn keys_for(file: &Path, host_port: &str) -> Vec<PublicKey> {
    let Ok(meta) = std::fs::metadata(file) else {
        return Vec::new();
    };
    let stamp = (meta.len(), meta.modified().ok());
    let cached = cache()
        .lock()
        .expect("known_hosts cache")
        .get(file)
        .filter(|(s, _)| *s == stamp)
        .map(|(_, i)| i.clone());
    let index = match cached {
        Some(i) => i,
        None => {
            let Ok(text) = std::fs::read_to_string(file) else {
                return Vec::new();
            };
            let i = Arc::new(parse(&text));
            cache()
                .lock()
                .expect("known_hosts cache")
                .insert(file.to_path_buf(), (stamp, i.clone()));
            i
        }
    };
    let mut out = index.plain.get(host_port).cloned().unwrap_or_default();
    for (salt, hash, key) in &index.hashed {
        if hmac_sha1(salt, host_port.as_bytes()).as_slice() == hash.as_slice() {
            out.push(key.clone());
        }
    }
    out
}

/// HMAC-SHA1 (RFC 2104), what OpenSSH's hashed known_hosts names are.
fn hmac_sha1(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..20].copy_from_slice(&Sha1::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |x: u8| k.iter().map(|b| b ^ x).collect::<Vec<u8>>();
    let inner = Sha1::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    Sha1::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// Indexes a known_hosts file: `HOSTS KEYTYPE BASE64 [comment]` lines; comments, markers
/// (`@cert-authority`, `@revoked`) and lines whose key does not parse are left out.
fn parse(text: &str) -> Index {
    let mut index = Index::default();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let (Some(hosts), Some(_kind), Some(b64)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if hosts.starts_with('#') || hosts.starts_with('@') {
            continue;
        }
        let Ok(key) = russh::keys::parse_public_key_base64(b64) else {
            continue;
        };
        for entry in hosts.split(',') {
            if let Some(rest) = entry.strip_prefix("|1|") {
                let mut parts = rest.split('|');
                if let (Some(Ok(salt)), Some(Ok(hash))) = (
                    parts.next().map(|p| BASE64.decode(p.as_bytes())),
                    parts.next().map(|p| BASE64.decode(p.as_bytes())),
                ) {
                    index.hashed.push((salt, hash, key.clone()));
                }
            } else {
                index
                    .plain
                    .entry(entry.to_string())
                    .or_default()
                    .push(key.clone());
            }
        }
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIHDS9Mzl1s0B9o1vJ2P2RkVZ3JmwfDgqk6VzjEorSKbt";

    #[test]
    fn plain_and_port_entries_are_found_and_a_rewrite_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("known_hosts");
        std::fs::write(
            &f,
            format!("# c\nh1,10.0.0.1 ssh-ed25519 {KEY}\n[h2]:2222 ssh-ed25519 {KEY} x\n"),
        )
        .unwrap();
        assert_eq!(keys_for(&f, "10.0.0.1").len(), 1);
        assert_eq!(keys_for(&f, "[h2]:2222").len(), 1);
        assert!(keys_for(&f, "h2").is_empty());
        std::fs::write(
            &f,
            format!("h3 ssh-ed25519 {KEY}\n# longer than before, so the size differs\n"),
        )
        .unwrap();
        assert!(
            keys_for(&f, "h1").is_empty(),
            "the changed file is read again"
        );
        assert_eq!(keys_for(&f, "h3").len(), 1);
    }

    #[test]
    fn hashed_entries_match_as_openssh_writes_them() {
        // `ssh-keygen -H` of "h1": |1|base64(salt)|base64(hmac_sha1(salt, "h1")).
        let salt = [7u8; 20];
        let name = format!(
            "|1|{}|{}",
            BASE64.encode(salt),
            BASE64.encode(hmac_sha1(&salt, b"h1"))
        );
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("known_hosts");
        std::fs::write(&f, format!("{name} ssh-ed25519 {KEY}\n")).unwrap();
        assert_eq!(keys_for(&f, "h1").len(), 1);
        assert!(keys_for(&f, "h2").is_empty());
    }

    #[test]
    fn hmac_sha1_matches_rfc_2202() {
        assert_eq!(
            hex::encode(hmac_sha1(b"Jefe", b"what do ya want for nothing?")),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }
}
