//! Unit tests of the Vagrant inventory: parsing, joining and writing.

use super::*;

// Captured from Debian 12's Vagrant 2.3.4 running `vagrant ssh-config` on
// tests/fixtures/vagrant/stub (ferry's Vagrantfile behind a stub provider:
// Vagrant's own command and template, the provider's answers made up; see
// tests/fixtures/vagrant/README.md).
const LIBVIRT_SHAPE: &str =
    include_str!("../../../tests/fixtures/vagrant/ssh-config.libvirt-shape.txt");
const VIRTUALBOX_SHAPE: &str =
    include_str!("../../../tests/fixtures/vagrant/ssh-config.virtualbox-shape.txt");
const NOT_CREATED_STDERR: &str =
    include_str!("../../../tests/fixtures/vagrant/ssh-config.compute2-not-created.stderr");

fn plan() -> NetworkPlan {
    NetworkPlan::parse(
        r#"{"ferry_vagrant_plan": 1, "mgmt_prefix": 24, "migration_prefix": 24, "migration_mtu": 9000,
            "machines": [
              {"name": "controller", "mgmt_ip": "192.168.56.10", "migration_ip": null},
              {"name": "compute1", "mgmt_ip": "192.168.56.11", "migration_ip": "10.10.0.11"},
              {"name": "compute2", "mgmt_ip": "192.168.56.12", "migration_ip": "10.10.0.12"}]}"#,
    )
    .unwrap()
}

// Written to match `ip -o -4 addr show` as iproute2 prints it (the layout
// of this machine's own output), not captured inside a Vagrant machine.
fn nics_of(n: u8) -> Vec<NicAddress> {
    parse_ip_addr(&format!(
        "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\r\n\
         2: ens5    inet 192.168.121.10{n}/24 brd 192.168.121.255 scope global dynamic ens5\\       valid_lft 3399sec preferred_lft 3399sec\r\n\
         3: ens6    inet 192.168.56.1{n}/24 brd 192.168.56.255 scope global ens6\\       valid_lft forever preferred_lft forever\r\n\
         4: ens7    inet 10.10.0.1{n}/24 brd 10.10.0.255 scope global ens7\\       valid_lft forever preferred_lft forever\r\n"
    ))
}

#[test]
fn vagrant_ssh_config_libvirt_shape() {
    let hosts = parse_ssh_config(LIBVIRT_SHAPE).unwrap();
    assert_eq!(
        hosts.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(),
        ["controller", "compute1", "compute2"]
    );
    assert_eq!(
        hosts[1],
        SshConfigHost {
            name: "compute1".into(),
            hostname: Some("192.168.121.101".into()),
            user: Some("vagrant".into()),
            port: Some(22),
            identity_files: vec!["/root/.vagrant.d/insecure_private_key".into()],
            strict_host_key_checking: Some("no".into()),
            user_known_hosts_file: Some("/dev/null".into()),
            proxy_command: None,
        }
    );
}

#[test]
fn vagrant_ssh_config_virtualbox_shape() {
    let hosts = parse_ssh_config(VIRTUALBOX_SHAPE).unwrap();
    let ports: Vec<_> = hosts.iter().map(|h| h.port.unwrap()).collect();
    assert_eq!(ports, [2222, 2200, 2201]);
    assert!(
        hosts
            .iter()
            .all(|h| h.hostname.as_deref() == Some("127.0.0.1"))
    );
    assert!(
        hosts[2].identity_files[0].ends_with("/.vagrant/machines/compute2/ferry_stub/private_key")
    );
}

#[test]
fn vagrant_ssh_config_quotes_and_equals() {
    // Written here, not captured: Vagrant quotes an IdentityFile with a space
    // (its template does), and OpenSSH's syntax allows `Keyword=value`.
    let hosts = parse_ssh_config(
        "Host compute1\n  HostName=10.0.0.5\n  port 2200\n  IdentityFile \"/home/me/my vms/key\"\n",
    )
    .unwrap();
    assert_eq!(hosts[0].hostname.as_deref(), Some("10.0.0.5"));
    assert_eq!(hosts[0].port, Some(2200));
    assert_eq!(hosts[0].identity_files, ["/home/me/my vms/key"]);
}

#[test]
fn vagrant_ssh_config_errors_name_the_line() {
    let e = parse_ssh_config("  HostName 10.0.0.1\n").unwrap_err();
    assert!(e.to_string().contains("line 1"), "{e}");
    let e = parse_ssh_config("Host a\n  Port twenty\n").unwrap_err();
    assert!(
        e.to_string().contains("line 2") && e.to_string().contains("twenty"),
        "{e}"
    );
}

#[test]
fn vagrant_status_machine_readable() {
    // Captured like the ssh-config fixtures (see tests/fixtures/vagrant/README.md).
    let text = include_str!(
        "../../../tests/fixtures/vagrant/status-machine-readable.compute1-running.txt"
    );
    assert_eq!(
        parse_machine_states(text),
        [
            ("controller".to_string(), "not_created".to_string()),
            ("compute1".to_string(), "running".to_string()),
            ("compute2".to_string(), "not_created".to_string()),
        ]
    );
}

#[test]
fn vagrant_not_ready_message_is_recognised() {
    assert!(one_line(NOT_CREATED_STDERR.as_bytes()).contains(SSH_NOT_READY));
}

#[test]
fn vagrant_ip_addr_parsing() {
    let a = nics_of(1);
    assert_eq!(a.len(), 4);
    assert_eq!(
        a[3],
        NicAddress {
            iface: "ens7".into(),
            ip: "10.10.0.11".into(),
            prefix: 24
        }
    );
    let veth = parse_ip_addr("5: eth1@if9    inet 10.10.0.11/24 scope global eth1\n");
    assert_eq!(veth[0].iface, "eth1");
}

fn cluster() -> VagrantCluster {
    let ssh = parse_ssh_config(LIBVIRT_SHAPE).unwrap();
    let nics = HashMap::from([
        ("compute1".to_string(), nics_of(1)),
        ("compute2".to_string(), nics_of(2)),
    ]);
    build_cluster(Path::new("/src/ferry/vagrant"), &ssh, &plan(), &nics).unwrap()
}

#[test]
fn vagrant_cluster_groups_and_migration_nics() {
    let c = cluster();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let groups: Vec<_> = c.hosts.iter().map(|h| (h.name.as_str(), h.group)).collect();
    assert_eq!(
        groups,
        [
            ("controller", Some("controller")),
            ("compute1", Some("compute")),
            ("compute2", Some("compute"))
        ]
    );
    assert_eq!(c.hosts[0].migration, None);
    assert_eq!(
        c.hosts[2].migration,
        Some(("10.10.0.12".to_string(), "ens7".to_string()))
    );
}

#[test]
fn vagrant_machine_of_neither_group_is_ungrouped_with_a_warning() {
    let mut ssh = parse_ssh_config(LIBVIRT_SHAPE).unwrap();
    ssh[0].name = "storage".into();
    let mut plan = plan();
    plan.machines[0].name = "storage".into();
    let nics = HashMap::from([
        ("compute1".to_string(), nics_of(1)),
        ("compute2".to_string(), nics_of(2)),
    ]);
    let c = build_cluster(Path::new("."), &ssh, &plan, &nics).unwrap();
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(
        c.warnings[0].contains("storage is in neither group"),
        "{:?}",
        c.warnings
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inventory.yml");
    std::fs::write(&path, inventory_yaml(&c, Path::new("/kh"))).unwrap();
    let inv = crate::inventory::Inventory::load(&[path]).unwrap();
    assert_eq!(inv.group_hosts("ungrouped"), ["storage"]);
    assert!(inv.group_hosts("controller").is_empty());
}

#[test]
fn vagrant_missing_migration_address_is_an_error() {
    let ssh = parse_ssh_config(LIBVIRT_SHAPE).unwrap();
    let mut nics = HashMap::from([
        ("compute1".to_string(), nics_of(1)),
        ("compute2".to_string(), nics_of(2)),
    ]);
    nics.get_mut("compute2").unwrap().pop();
    let e = build_cluster(Path::new("."), &ssh, &plan(), &nics).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("compute2")
            && msg.contains("10.10.0.12")
            && msg.contains("ens6 192.168.56.12/24"),
        "{msg}"
    );
}

/// The comment heading `inventories/vagrant.yml`; the rest of that file is
/// what `inventory_yaml` writes for [`cluster`].
const EXAMPLE_HEADER: &str = "\
# What `ferry inventory from-vagrant --dir vagrant --out vagrant/inventory.yml` writes
# for the default vagrant/Vagrantfile under vagrant-libvirt, kept here as a documented
# example (a unit test in src/inventory/vagrant.rs keeps it equal to what ferry
# writes). The ssh-config part is real Vagrant 2.3.4 output behind a stub provider
# (tests/fixtures/vagrant/); the 192.168.121.x SSH addresses and the NIC names
# (ens5..ens7) are examples: use the file from-vagrant writes for your machines.
#
";

#[test]
fn vagrant_example_inventory_is_what_ferry_writes() {
    let kh = Path::new("/home/you/ferry/vagrant/known_hosts");
    let mut c = cluster();
    c.dir = PathBuf::from("/home/you/ferry/vagrant");
    let expected = format!("{EXAMPLE_HEADER}{}", inventory_yaml(&c, kh));
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/inventories/vagrant.yml");
    if std::env::var_os("FERRY_WRITE_EXAMPLES").is_some() {
        std::fs::write(path, &expected).unwrap();
    }
    let actual = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        actual == expected,
        "inventories/vagrant.yml differs from what from-vagrant writes; \
         rewrite it with FERRY_WRITE_EXAMPLES=1 cargo test --lib vagrant_example"
    );
}

#[test]
fn vagrant_inventory_loads_with_the_vars_the_testbed_needs() {
    let yaml = inventory_yaml(&cluster(), Path::new("/src/ferry/vagrant/known hosts"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inventory.yml");
    std::fs::write(&path, &yaml).unwrap();
    let inv = crate::inventory::Inventory::load(&[path]).unwrap();
    assert_eq!(inv.group_hosts("controller"), ["controller"], "{yaml}");
    assert_eq!(
        inv.group_hosts("compute"),
        ["compute1", "compute2"],
        "{yaml}"
    );
    let vars = inv.host_vars("compute2");
    let s = |k: &str| vars.get(k).map(|v| v.to_string()).unwrap_or_default();
    assert_eq!(s("ansible_host"), "\"192.168.121.102\"");
    assert_eq!(s("ansible_port"), "22");
    assert_eq!(s("ansible_user"), "\"vagrant\"");
    assert_eq!(s("migration_iface"), "\"ens7\"");
    assert_eq!(s("migration_ip"), "\"10.10.0.12\"");
    assert_eq!(s("migration_mtu"), "9000");
    assert!(
        s("ansible_ssh_common_args").contains(
            "UserKnownHostsFile='/src/ferry/vagrant/known hosts' -o StrictHostKeyChecking=yes"
        ),
        "{yaml}"
    );
}
