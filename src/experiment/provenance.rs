//! Provenance of a results directory: which ferry, which experiment file (its
//! SHA-256, and the commit and dirty state of the git repository holding it), which
//! hosts (kernel, QEMU, libvirt, migration NIC speed and MTU, from
//! [`crate::facts::gather`] over each host's transport), the expanded matrix and the
//! seed. Written once, as `provenance.json`.

use std::path::Path;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::driver::HostEnd;
use super::result::HostProvenance;

/// SHA-256 of the experiment file's bytes, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The git repository holding `file`: HEAD's commit, and whether the work tree
/// differs from it (untracked files count, ignored ones do not). None: not in a
/// repository (or it has no commit yet).
pub fn repo_state(file: &Path) -> Option<(String, bool)> {
    let dir = file.canonicalize().ok()?.parent().map(Path::to_path_buf)?;
    let repo = git2::Repository::discover(dir).ok()?;
    let commit = repo.head().ok()?.peel_to_commit().ok()?.id().to_string();
    let mut opts = git2::StatusOptions::new();
    opts.include_untracked(true).include_ignored(false);
    let dirty = repo
        .statuses(Some(&mut opts))
        .map(|s| !s.is_empty())
        .unwrap_or(true);
    Some((commit, dirty))
}

/// One host's provenance from its facts (`ferry facts`' shape) and inventory vars.
pub fn host_from_facts(host: &HostEnd, facts: Option<&Value>) -> HostProvenance {
    let str_of = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let migration_ip = host.var("migration_ip");
    let mut out = HostProvenance {
        name: host.name.clone(),
        migration_ip: migration_ip.clone(),
        migration_iface: host.var("migration_iface").filter(|s| !s.is_empty()),
        ..HostProvenance::default()
    };
    let Some(f) = facts else {
        return out;
    };
    out.kernel = str_of(f.get("ansible_kernel"));
    out.qemu_version = str_of(f.get("ferry_qemu_version"));
    out.libvirt_version =
        str_of(f.get("ferry_libvirtd_version")).or_else(|| str_of(f.get("ferry_virsh_version")));
    // The migration NIC: the one holding migration_ip, else the one named migration_iface.
    let nics = f
        .get("ferry_nics")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let nic = nics
        .iter()
        .find(|n| migration_ip.is_some() && str_of(n.get("ipv4")) == migration_ip)
        .or_else(|| {
            nics.iter().find(|n| {
                out.migration_iface.is_some() && str_of(n.get("name")) == out.migration_iface
            })
        });
    if let Some(n) = nic {
        out.migration_iface = str_of(n.get("name"));
        out.migration_speed_mbit = n.get("speed_mbps").and_then(Value::as_u64);
        out.migration_mtu = n.get("mtu").and_then(Value::as_u64).map(|m| m as u32);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn sha256_of_known_bytes() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_real_repository_commit_and_dirty_state() {
        let dir = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| {
            let ok = std::process::Command::new("git")
                .args(args)
                .current_dir(dir.path())
                .env("GIT_AUTHOR_NAME", "t")
                .env("GIT_AUTHOR_EMAIL", "t@t")
                .env("GIT_COMMITTER_NAME", "t")
                .env("GIT_COMMITTER_EMAIL", "t@t")
                .output()
                .expect("git is installed");
            assert!(
                ok.status.success(),
                "git {args:?}: {}",
                String::from_utf8_lossy(&ok.stderr)
            );
            String::from_utf8_lossy(&ok.stdout).trim().to_string()
        };
        let file = dir.path().join("exp.yml");
        std::fs::write(&file, "name: e\n").unwrap();
        assert_eq!(repo_state(&file), None, "not a repository yet");
        git(&["init", "-q"]);
        git(&["add", "exp.yml"]);
        git(&["commit", "-qm", "e"]);
        let head = git(&["rev-parse", "HEAD"]);
        assert_eq!(repo_state(&file), Some((head.clone(), false)));
        std::fs::write(&file, "name: changed\n").unwrap();
        assert_eq!(repo_state(&file), Some((head, true)));
    }

    #[test]
    fn the_migration_nic_is_the_one_holding_migration_ip() {
        let facts = crate::facts::from_output(
            "\n@@kernel@@\n6.1.0-28-amd64\n@@nic eth0@@\nmtu=1500\nspeed=1000\n@@nic mig0@@\nmtu=9000\nspeed=10000\n\
             @@ipaddr@@\n[{\"ifname\":\"eth0\",\"addr_info\":[{\"family\":\"inet\",\"local\":\"10.0.0.11\",\"prefixlen\":24}]},\
             {\"ifname\":\"mig0\",\"addr_info\":[{\"family\":\"inet\",\"local\":\"10.10.0.11\",\"prefixlen\":24}]}]\n\
             @@qemu@@\nQEMU emulator version 7.2.15 (Debian 1:7.2+dfsg-7+deb12u12)\n@@libvirtd@@\nlibvirtd (libvirt) 9.0.0\n@@end@@\n",
        );
        let mut vars = crate::vars::Vars::new();
        vars.insert("migration_ip".into(), Value::String("10.10.0.11".into()));
        let host = HostEnd {
            name: "compute1".into(),
            transport: Arc::new(crate::transport::local::LocalTransport::new("compute1")),
            vars,
        };
        let p = host_from_facts(&host, Some(&facts));
        assert_eq!(p.kernel.as_deref(), Some("6.1.0-28-amd64"));
        assert_eq!(p.qemu_version.as_deref(), Some("7.2.15"));
        assert_eq!(p.libvirt_version.as_deref(), Some("9.0.0"));
        assert_eq!(p.migration_iface.as_deref(), Some("mig0"));
        assert_eq!(
            (p.migration_speed_mbit, p.migration_mtu),
            (Some(10000), Some(9000))
        );
    }
}
