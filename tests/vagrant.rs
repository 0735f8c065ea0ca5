//! Vagrant: `vagrant validate` of ferry's Vagrantfile for each provider, and
//! `ferry inventory from-vagrant` end to end.
//!
//! No Vagrant machine can boot here (no box can be downloaded; no VirtualBox),
//! so `from-vagrant` runs against real Vagrant (Debian's `vagrant` package) on
//! `tests/fixtures/vagrant/stub`: ferry's own Vagrantfile behind a stub provider
//! whose machines report running (or not created) with made-up addresses. Vagrant
//! itself evaluates the Vagrantfile (so the FERRY_PLAN plan is real), renders
//! `vagrant ssh-config` and raises its real errors. Only `vagrant ssh NAME -c
//! 'ip -o -4 addr show'` cannot run without a machine: a wrapper named `vagrant`
//! first on PATH answers that one with addresses written by hand and hands every
//! other command to the real Vagrant. One test goes further: the stub's machines
//! are the hosts of a ferry lab (real sshd, a real migration NIC), so real
//! `vagrant ssh -c` reaches them, and `ferry exec`/`ferry run` use the inventory.
//!
//! Every test needs `vagrant` (and vagrant-libvirt): missing, they fail and say
//! so (`.ci/setup` installs both).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The real Vagrant, or a loud failure.
fn real_vagrant() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let p = dir.join("vagrant");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "vagrant is not installed (no `vagrant` on PATH): these tests run Debian's Vagrant; \
         run `bash .ci/setup` (apt-get install vagrant vagrant-libvirt)"
    );
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// `vagrant validate` in `dir` with `provider` as the default provider; Vagrant's
/// state goes to a temporary directory, not into the checkout.
fn vagrant_validate(dir: &Path, provider: &str, extra_path: Option<&Path>) -> Output {
    let vagrant = real_vagrant();
    let dot = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(&vagrant);
    cmd.arg("validate")
        .current_dir(dir)
        .env("VAGRANT_DEFAULT_PROVIDER", provider)
        .env("VAGRANT_DOTFILE_PATH", dot.path())
        .env("VAGRANT_NO_COLOR", "1");
    if let Some(p) = extra_path {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![p.to_path_buf()];
        dirs.extend(std::env::split_paths(&path));
        cmd.env("PATH", std::env::join_paths(dirs).unwrap());
    }
    cmd.output().expect("run vagrant validate")
}

/// ferry's Vagrantfile with one setting misspelt inside each provider block.
fn misspelt_vagrantfile() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::read_to_string(repo().join("vagrant/Vagrantfile")).unwrap();
    let broken = original
        .replace("lv.memory = MEMORY", "lv.memroy = MEMORY")
        .replace("vb.memory = MEMORY", "vb.memroy = MEMORY");
    assert_ne!(original, broken, "the provider blocks set memory");
    std::fs::write(dir.path().join("Vagrantfile"), broken).unwrap();
    dir
}

#[test]
fn vagrant_validate_libvirt() {
    // vagrant-libvirt is installed, so Vagrant validates the `:libvirt` block
    // with that plugin's own validator (a misspelt setting fails).
    let out = vagrant_validate(&repo().join("vagrant"), "libvirt", None);
    assert!(
        out.status.success(),
        "vagrant validate (libvirt): {}",
        show(&out)
    );
    assert!(
        text(&out.stdout).contains("Vagrantfile validated successfully"),
        "{}",
        show(&out)
    );
    let broken = misspelt_vagrantfile();
    let out = vagrant_validate(broken.path(), "libvirt", None);
    assert!(
        !out.status.success()
            && text(&out.stderr).contains("Libvirt Provider")
            && text(&out.stderr).contains("memroy"),
        "a misspelt libvirt setting must fail validation: {}",
        show(&out)
    );
}

/// A stand-in `VBoxManage` that answers only `--version` (VirtualBox is not in
/// Debian): enough for Vagrant to load its VirtualBox provider and run that
/// provider's config validator on the `:virtualbox` block. Nothing checks the
/// `customize` arguments against a real VirtualBox.
fn vboxmanage_stand_in() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("VBoxManage");
    std::fs::write(
        &p,
        "#!/bin/sh\n[ \"$1\" = --version ] && { echo 7.0.10r158379; exit 0; }\n\
         echo \"stand-in VBoxManage (tests/vagrant.rs) cannot: $*\" >&2; exit 1\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[test]
fn vagrant_validate_virtualbox() {
    let vbox = vboxmanage_stand_in();
    let out = vagrant_validate(&repo().join("vagrant"), "virtualbox", Some(vbox.path()));
    assert!(
        out.status.success(),
        "vagrant validate (virtualbox): {}",
        show(&out)
    );
    assert!(
        !text(&out.stderr).contains("stand-in VBoxManage"),
        "validate asked VirtualBox more than its version: {}",
        show(&out)
    );
    let broken = misspelt_vagrantfile();
    let out = vagrant_validate(broken.path(), "virtualbox", Some(vbox.path()));
    assert!(
        !out.status.success()
            && text(&out.stderr).contains("VirtualBox Provider")
            && text(&out.stderr).contains("memroy"),
        "a misspelt virtualbox setting must fail validation: {}",
        show(&out)
    );
}

/// A temp dir holding the `vagrant` wrapper and Vagrant's state for one test.
struct VagrantWorld {
    tmp: tempfile::TempDir,
}

impl VagrantWorld {
    fn new() -> VagrantWorld {
        let real = real_vagrant();
        let tmp = tempfile::tempdir().unwrap();
        let bin = tmp.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        // `vagrant ssh compute<N> --no-tty -c 'ip -o -4 addr show'`: the addresses a
        // Debian box under vagrant-libvirt would show (NIC names ens5..7), written
        // by hand. Everything else: the real Vagrant. Each call is logged.
        let script = format!(
            r#"#!/bin/sh
echo "$*" >> "{log}"
if [ "$1" = ssh ]; then
  case "$2" in compute*) n=${{2#compute}} ;; *) echo "wrapper: no addresses for $2" >&2; exit 1 ;; esac
  [ "$3 $4 $5" = "--no-tty -c ip -o -4 addr show" ] || {{ echo "wrapper: unexpected: $*" >&2; exit 1; }}
  printf '1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\r\n'
  printf '2: ens5    inet 192.168.121.%d/24 brd 192.168.121.255 scope global dynamic ens5\\       valid_lft 3442sec preferred_lft 3442sec\r\n' $((100 + n))
  printf '3: ens6    inet 192.168.56.%d/24 brd 192.168.56.255 scope global ens6\\       valid_lft forever preferred_lft forever\r\n' $((10 + n))
  printf '4: ens7    inet 10.10.0.%d/24 brd 10.10.0.255 scope global ens7\\       valid_lft forever preferred_lft forever\r\n' $((10 + n))
  exit 0
fi
exec "{real}" "$@"
"#,
            log = tmp.path().join("calls.log").display(),
            real = real.display()
        );
        let wrapper = bin.join("vagrant");
        std::fs::write(&wrapper, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        VagrantWorld { tmp }
    }

    fn path(&self) -> PathBuf {
        self.tmp.path().to_path_buf()
    }

    /// `ferry ARGS` with the wrapper first on PATH and the stub provider as default.
    fn ferry(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![self.tmp.path().join("bin")];
        dirs.extend(std::env::split_paths(&path));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
        cmd.args(args)
            .current_dir(repo())
            .env("PATH", std::env::join_paths(dirs).unwrap())
            .env("VAGRANT_DEFAULT_PROVIDER", "ferry_stub")
            .env("VAGRANT_DOTFILE_PATH", self.tmp.path().join("dot"))
            .env_remove("FERRY_STUB_RUNNING")
            .env_remove("FERRY_STUB_SHAPE")
            .env_remove("FERRY_COMPUTE_NODES");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run ferry")
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(self.tmp.path().join("calls.log")).unwrap_or_default()
    }
}

fn stub_dir() -> String {
    repo()
        .join("tests/fixtures/vagrant/stub")
        .display()
        .to_string()
}

#[test]
fn from_vagrant_writes_an_inventory_the_testbed_checks_clean() {
    let w = VagrantWorld::new();
    let inv = w.path().join("out/inventory.yml");
    std::fs::create_dir_all(inv.parent().unwrap()).unwrap();
    let inv_s = inv.display().to_string();
    let out = w.ferry(
        &[
            "inventory",
            "from-vagrant",
            "--dir",
            &stub_dir(),
            "--out",
            &inv_s,
        ],
        &[],
    );
    assert!(out.status.success(), "from-vagrant: {}", show(&out));
    assert!(!text(&out.stderr).contains("warning"), "{}", show(&out));
    let calls = w.calls();
    assert!(calls.lines().any(|l| l == "ssh-config"), "{calls}");
    for m in ["compute1", "compute2"] {
        assert!(
            calls.contains(&format!("ssh {m} --no-tty -c ip -o -4 addr show")),
            "{calls}"
        );
    }
    assert!(
        !calls.contains("ssh controller"),
        "the controller has no migration NIC to find: {calls}"
    );

    let yaml = std::fs::read_to_string(&inv).unwrap();
    let known_hosts = std::fs::canonicalize(w.path().join("out"))
        .unwrap()
        .join("known_hosts");
    for needle in [
        "    controller:\n      hosts:\n        \"controller\":\n          ansible_host: \"192.168.121.100\"\n",
        "          migration_ip: \"10.10.0.12\"\n          migration_iface: \"ens7\"\n          migration_prefix: 24\n          migration_mtu: 9000\n",
        "ansible_ssh_private_key_file: \"",
        &format!(
            "-o UserKnownHostsFile={} -o StrictHostKeyChecking=yes",
            known_hosts.display()
        ),
    ] {
        assert!(yaml.contains(needle), "inventory lacks {needle:?}:\n{yaml}");
    }

    // The inventory as ferry reads it: groups and the vars the testbed needs.
    let out = w.ferry(&["inventory", "-i", &inv_s, "--list"], &[]);
    assert!(out.status.success(), "{}", show(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        list["controller"]["hosts"],
        serde_json::json!(["controller"]),
        "{list}"
    );
    assert_eq!(
        list["compute"]["hosts"],
        serde_json::json!(["compute1", "compute2"]),
        "{list}"
    );
    let c1 = &list["_meta"]["hostvars"]["compute1"];
    for (k, v) in [
        ("ansible_host", serde_json::json!("192.168.121.101")),
        ("ansible_port", serde_json::json!(22)),
        ("ansible_user", serde_json::json!("vagrant")),
        ("mgmt_ip", serde_json::json!("192.168.56.11")),
        ("migration_ip", serde_json::json!("10.10.0.11")),
        ("migration_iface", serde_json::json!("ens7")),
    ] {
        assert_eq!(c1[k], v, "compute1 {k}: {c1}");
    }

    let out = w.ferry(&["check", "-i", &inv_s, "playbooks/testbed.yml"], &[]);
    assert!(
        out.status.success(),
        "ferry check on the generated inventory: {}",
        show(&out)
    );
    assert!(
        text(&out.stderr).trim().is_empty() && text(&out.stdout).starts_with("ok: "),
        "ferry check must be clean (no warnings): {}",
        show(&out)
    );
}

#[test]
fn from_vagrant_follows_the_compute_node_count_and_virtualbox_ports() {
    let w = VagrantWorld::new();
    let out = w.ferry(
        &["inventory", "from-vagrant", "--dir", &stub_dir()],
        &[
            ("FERRY_COMPUTE_NODES", "3"),
            ("FERRY_STUB_SHAPE", "virtualbox"),
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    let yaml = text(&out.stdout);
    assert!(
        yaml.contains(
            "\"compute3\":\n          ansible_host: \"127.0.0.1\"\n          ansible_port: 2202\n"
        ),
        "{yaml}"
    );
    assert!(yaml.contains("migration_ip: \"10.10.0.13\""), "{yaml}");
    // Printed, not written: host keys go beside the Vagrantfile.
    let kh = std::fs::canonicalize(stub_dir())
        .unwrap()
        .join("known_hosts");
    assert!(
        yaml.contains(&format!("UserKnownHostsFile={}", kh.display())),
        "{yaml}"
    );
}

#[test]
fn from_vagrant_says_when_a_machine_is_not_running() {
    let w = VagrantWorld::new();
    let out = w.ferry(
        &["inventory", "from-vagrant", "--dir", &stub_dir()],
        &[("FERRY_STUB_RUNNING", "compute1")],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(out.stdout.is_empty(), "{}", show(&out));
    assert!(
        err.contains("Vagrant machines not running in")
            && err.contains(": controller (not_created), compute2 (not_created)"),
        "{err}"
    );
    assert!(
        err.contains("run `vagrant up` in") && err.contains("is not yet ready for SSH"),
        "{err}"
    );
}

#[test]
fn from_vagrant_says_when_there_is_no_vagrantfile() {
    let w = VagrantWorld::new();
    let empty = tempfile::tempdir().unwrap();
    let out = w.ferry(
        &[
            "inventory",
            "from-vagrant",
            "--dir",
            &empty.path().display().to_string(),
        ],
        &[],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        err.contains("no Vagrantfile in") && err.contains("--dir"),
        "{err}"
    );
    assert!(
        w.calls().is_empty(),
        "vagrant must not run without a Vagrantfile: {}",
        w.calls()
    );
}

#[test]
fn from_vagrant_says_when_vagrant_is_not_installed() {
    real_vagrant(); // the suite needs it; this test hides it
    let empty_path = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["inventory", "from-vagrant", "--dir", &stub_dir()])
        .env("PATH", empty_path.path())
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        err.contains("vagrant is not installed (no `vagrant` on PATH)")
            && err.contains("apt-get install vagrant"),
        "{err}"
    );
}

#[path = "common/lab.rs"]
mod lab_fixture;

/// The closest this machine comes to a booted Vagrant cluster: a 3-host ferry lab
/// (real sshd, a real migration NIC `mig0` per host) as the machines of the stub
/// provider (`FERRY_STUB_SHAPE=lab`). Real Vagrant evaluates ferry's Vagrantfile
/// with the lab's networks, renders ssh-config, and runs `vagrant ssh NAME -c`
/// through OpenSSH into each lab host, so every answer ferry reads is real; only
/// the machines are namespaces instead of VMs. Then host keys: unknown without
/// `--accept-new-host-keys`, recorded beside the inventory with it, known after.
#[test]
fn from_vagrant_on_lab_hosts_finds_the_migration_nic_and_records_host_keys() {
    real_vagrant();
    let lab = lab_fixture::LabGuard::up("vagrant", 3);
    let net = |ip: &str| ip.rsplit_once('.').unwrap().0.to_string();
    let hosts: Vec<String> = (1..=3)
        .map(|i| lab.host(&i.to_string()).mgmt_ip.clone())
        .collect();
    assert!(
        hosts
            .iter()
            .enumerate()
            .all(|(i, ip)| ip.ends_with(&format!(".{}", i + 1))),
        "{hosts:?}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let inv = tmp.path().join("inventory.yml");
    let inv_s = inv.display().to_string();
    let key = lab.private_key().display().to_string();
    let env: Vec<(&str, String)> = vec![
        ("VAGRANT_DEFAULT_PROVIDER", "ferry_stub".into()),
        (
            "VAGRANT_DOTFILE_PATH",
            tmp.path().join("dot").display().to_string(),
        ),
        ("FERRY_STUB_SHAPE", "lab".into()),
        ("FERRY_STUB_HOSTS", hosts.join(",")),
        ("FERRY_STUB_KEY", key),
        ("FERRY_MGMT_NET", net(&lab.host("1").mgmt_ip)),
        ("FERRY_MIGRATION_NET", net(&lab.host("1").migration_ip)),
        ("FERRY_FIRST_ADDRESS", "1".into()),
        ("FERRY_MIGRATION_MTU", "1500".into()),
    ];
    let ferry = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ferry"));
        c.args(args)
            .current_dir(repo())
            .env_remove("FERRY_STUB_RUNNING");
        for (k, v) in &env {
            c.env(k, v);
        }
        c.output().expect("run ferry")
    };
    let out = ferry(&[
        "inventory",
        "from-vagrant",
        "--dir",
        &stub_dir(),
        "--out",
        &inv_s,
    ]);
    assert!(
        out.status.success(),
        "from-vagrant on lab hosts: {}",
        show(&out)
    );
    assert!(!text(&out.stderr).contains("warning"), "{}", show(&out));
    let out = ferry(&["inventory", "-i", &inv_s, "--list"]);
    assert!(out.status.success(), "{}", show(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (i, m) in ["compute1", "compute2"].iter().enumerate() {
        let v = &list["_meta"]["hostvars"][m];
        let lab_host = lab.host(&(i + 2).to_string());
        assert_eq!(
            v["ansible_host"],
            serde_json::json!(lab_host.mgmt_ip),
            "{m}: {v}"
        );
        assert_eq!(
            v["migration_ip"],
            serde_json::json!(lab_host.migration_ip),
            "{m}: {v}"
        );
        assert_eq!(
            v["migration_iface"],
            serde_json::json!("mig0"),
            "{m}: the lab's migration NIC, found by asking the host: {v}"
        );
    }

    let known_hosts = tmp.path().join("known_hosts");
    let out = ferry(&["exec", "-i", &inv_s, "all", "--", "true"]);
    assert!(
        !out.status.success(),
        "unknown host keys must be refused: {}",
        show(&out)
    );
    assert!(
        text(&out.stdout).contains("--accept-new-host-keys")
            || text(&out.stderr).contains("--accept-new-host-keys"),
        "{}",
        show(&out)
    );
    let out = ferry(&[
        "exec",
        "-i",
        &inv_s,
        "--accept-new-host-keys",
        "all",
        "--",
        "true",
    ]);
    assert!(
        out.status.success(),
        "first run with --accept-new-host-keys: {}",
        show(&out)
    );
    let recorded = std::fs::read_to_string(&known_hosts).unwrap_or_default();
    assert_eq!(
        recorded.lines().count(),
        3,
        "one key per machine in {}:\n{recorded}",
        known_hosts.display()
    );
    let out = ferry(&["exec", "-i", &inv_s, "all", "--", "true"]);
    assert!(
        out.status.success(),
        "later runs know the keys: {}",
        show(&out)
    );
    let out = ferry(&["check", "-i", &inv_s, "playbooks/testbed.yml"]);
    assert!(
        out.status.success() && text(&out.stderr).trim().is_empty(),
        "{}",
        show(&out)
    );

    // The testbed playbook provisions the compute nodes through this inventory
    // (the lab hosts stand in for the machines; the inventory is only what
    // from-vagrant wrote), and a second run changes nothing.
    for (run, must_change) in [("first", true), ("second", false)] {
        let events = tmp.path().join(format!("{run}.jsonl"));
        let ev_s = events.display().to_string();
        let out = ferry(&[
            "run",
            "-i",
            &inv_s,
            "playbooks/testbed.yml",
            "--events",
            &ev_s,
        ]);
        assert!(
            out.status.success(),
            "ferry run ({run}) on the from-vagrant inventory: {}",
            show(&out)
        );
        let recap = lab_fixture::recap_hosts(&lab_fixture::read_events(&events));
        for m in ["compute1", "compute2"] {
            assert_eq!(recap[m]["failed"], 0, "{run} run, {m}: {recap:?}");
            let changed = recap[m]["changed"].as_u64().unwrap();
            assert_eq!(
                changed > 0,
                must_change,
                "{run} run, {m} changed {changed}: {recap:?}"
            );
        }
        assert!(
            !recap.contains_key("controller"),
            "the testbed play is for compute nodes: {recap:?}"
        );
    }
}
