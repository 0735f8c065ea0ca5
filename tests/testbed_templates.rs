//! The testbed's configuration templates (nova.conf, libvirtd.conf, qemu.conf)
//! rendered for a compute host of the example 10 Gb/s inventory, with the
//! variables that host sees: the inventory (hosts.yml and group_vars/) through
//! ferry's inventory loader, the roles' defaults through ferry's playbook
//! loader, and the facts the roles' tasks set on a host with systemd and KVM.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ferry::inventory::Inventory;
use ferry::playbook::{TaskItem, Vars};
use serde_json::{Value, json};

const INVENTORY: &str = "inventories/example-10g";
const PLAYBOOK: &str = "playbooks/testbed.yml";
const HOST: &str = "compute1";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every role's defaults, as the playbook loader read them (role name -> defaults).
fn role_defaults() -> BTreeMap<String, Vars> {
    let inv = Inventory::load(&[root().join(INVENTORY)]).expect("example inventory loads");
    let (playbooks, _) =
        ferry::playbook::load_and_check(&[root().join(PLAYBOOK)], &inv, &Vars::new())
            .unwrap_or_else(|r| panic!("{PLAYBOOK} does not check:\n{}", r.render(false)));
    let mut out = BTreeMap::new();
    fn walk(items: &[TaskItem], out: &mut BTreeMap<String, Vars>) {
        for i in items {
            match i {
                TaskItem::Task(t) => {
                    if let Some(r) = &t.role {
                        out.entry(r.name.clone())
                            .or_insert_with(|| r.defaults.clone());
                    }
                }
                TaskItem::Block(b) => {
                    walk(&b.block, out);
                    walk(&b.rescue, out);
                    walk(&b.always, out);
                }
            }
        }
    }
    for pb in &playbooks {
        for play in &pb.plays {
            walk(&play.role_tasks, &mut out);
        }
    }
    for role in ["migration_network", "qemu", "libvirt", "nova_compute"] {
        assert!(
            out.contains_key(role),
            "role {role} not loaded from {PLAYBOOK}"
        );
    }
    out
}

/// What `HOST` sees when the template tasks run: role defaults (lowest), the
/// inventory, then the facts the roles set before (a host with systemd and
/// KVM), then `extra` (as -e), with every templated value rendered against
/// the whole view, as Ansible resolves variables lazily.
fn host_vars(extra: Value) -> Vars {
    let inv = Inventory::load(&[root().join(INVENTORY)]).expect("example inventory loads");
    let mut v = Vars::new();
    for d in role_defaults().values() {
        v.extend(d.clone());
    }
    v.extend(inv.host_vars(HOST));
    // set_fact results of the libvirt and nova_compute tasks on such a host.
    let virt = v["nova_virt_type"].clone();
    v.insert("libvirt_manager".into(), json!("systemd"));
    v.insert("libvirt_container".into(), json!(false));
    v.insert("nova_virt_type_effective".into(), virt);
    v.insert("inventory_hostname".into(), json!(HOST));
    for (k, val) in extra.as_object().unwrap() {
        v.insert(k.clone(), val.clone());
    }
    v
}

fn render(template: &str, vars: &Vars) -> String {
    let path = root().join(template);
    ferry::template::render_file(&path, &ferry::template::context(vars))
        .unwrap_or_else(|e| panic!("{template}: {e}"))
}

/// A small INI reader: section -> key -> value (quotes kept off, comments skipped).
fn ini(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut section = String::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.to_string();
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("line {}: not `key = value`: {line}", n + 1));
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|x| x.strip_suffix('"'))
            .unwrap_or(v);
        let old = out
            .entry(section.clone())
            .or_default()
            .insert(k.trim().to_string(), v.to_string());
        assert!(
            old.is_none(),
            "line {}: `{}` set twice in [{section}]",
            n + 1,
            k.trim()
        );
    }
    out
}

fn flags(s: &str) -> Vec<&str> {
    s.split(',').map(str::trim).collect()
}

fn inventory_var(vars: &Vars, name: &str) -> String {
    vars[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} is not a string"))
        .to_string()
}

const NOVA: &str = "roles/nova_compute/templates/nova.conf.j2";
const LIBVIRTD: &str = "roles/libvirt/templates/libvirtd.conf.j2";
const QEMU: &str = "roles/libvirt/templates/qemu.conf.j2";

#[test]
fn nova_conf_has_the_migration_options() {
    for postcopy in [true, false] {
        let vars = host_vars(json!({"migration_postcopy": postcopy}));
        let text = render(NOVA, &vars);
        insta::assert_snapshot!(format!("nova_conf_postcopy_{postcopy}"), text);
        let conf = ini(&text);
        let libvirt = &conf["libvirt"];
        assert_eq!(libvirt["live_migration_uri"], "qemu+tcp://%s/system");
        assert_eq!(libvirt["virt_type"], "kvm");
        let live = flags(&libvirt["live_migration_flag"]);
        assert!(live.contains(&"VIR_MIGRATE_LIVE"), "{live:?}");
        assert!(live.contains(&"VIR_MIGRATE_PEER2PEER"), "{live:?}");
        let block = flags(&libvirt["block_migration_flag"]);
        assert!(block.contains(&"VIR_MIGRATE_NON_SHARED_INC"), "{block:?}");
        assert!(block.contains(&"VIR_MIGRATE_LIVE"), "{block:?}");
        for f in [
            "VIR_MIGRATE_ENABLE_POSTCOPY",
            "VIR_MIGRATE_POSTCOPY_AFTER_PRECOPY",
        ] {
            assert_eq!(
                live.contains(&f),
                postcopy,
                "{f} in {live:?} with postcopy={postcopy}"
            );
        }
        assert_eq!(
            libvirt["live_migration_bandwidth"],
            vars["nova_live_migration_bandwidth"].to_string()
        );
        let default = &conf["DEFAULT"];
        assert_eq!(
            default["my_ip"], "10.10.0.11",
            "the migration NIC's address of {HOST}"
        );
        assert_eq!(default["my_ip"], inventory_var(&vars, "migration_ip"));
        assert_eq!(default["compute_driver"], "libvirt.LibvirtDriver");
    }
}

#[test]
fn bandwidth_comes_from_the_inventory() {
    let vars = host_vars(json!({"nova_live_migration_bandwidth": 1200}));
    let conf = ini(&render(NOVA, &vars));
    assert_eq!(conf["libvirt"]["live_migration_bandwidth"], "1200");
}

#[test]
fn libvirtd_conf_listens_on_tcp() {
    let vars = host_vars(json!({}));
    let text = render(LIBVIRTD, &vars);
    insta::assert_snapshot!("libvirtd_conf", text);
    let conf = ini(&text);
    let top = &conf[""];
    assert_eq!(top["listen_tcp"], "1");
    assert_eq!(top["listen_tls"], "0");
    assert_eq!(
        top["listen_addr"], "10.0.0.11",
        "management address of {HOST}"
    );
    assert_eq!(top["listen_addr"], inventory_var(&vars, "mgmt_ip"));
    assert_eq!(top["auth_tcp"], "none");
    assert!(
        text.contains("WARNING: auth_tcp = \"none\""),
        "the template warns about auth_tcp none"
    );
    // With host names resolving to migration addresses, libvirtd listens there.
    let vars = host_vars(json!({"migration_via_hostnames": true}));
    let conf = ini(&render(LIBVIRTD, &vars));
    assert_eq!(conf[""]["listen_addr"], "10.10.0.11");
}

#[test]
fn qemu_conf_sends_migrations_over_the_migration_nic() {
    let vars = host_vars(json!({}));
    let text = render(QEMU, &vars);
    insta::assert_snapshot!("qemu_conf", text);
    let conf = ini(&text);
    let top = &conf[""];
    assert_eq!(top["migration_address"], "10.10.0.11");
    assert_eq!(top["migration_host"], "10.10.0.11");
    assert_eq!(
        top["migration_address"],
        inventory_var(&vars, "migration_ip")
    );
    assert_eq!(top["migration_port_min"], "49152");
    assert_eq!(top["migration_port_max"], "49215");
    assert!(
        !top.contains_key("security_driver"),
        "no container mode on a systemd host"
    );
    // A host without systemd (the lab) gets container mode.
    let vars = host_vars(json!({"libvirt_container": true}));
    let conf = ini(&render(QEMU, &vars));
    assert_eq!(conf[""]["security_driver"], "none");
    assert_eq!(conf[""]["user"], "root");
}

#[test]
fn every_template_header_names_its_variables() {
    for t in [NOVA, LIBVIRTD, QEMU] {
        let src = std::fs::read_to_string(root().join(t)).unwrap();
        let header: String = src
            .lines()
            .take_while(|l| l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        let names = ferry::template::check_file(Path::new(t), &src).unwrap();
        for n in names {
            assert!(header.contains(&n), "{t}: header does not name `{n}`");
        }
    }
}

/// A copy of the example inventory in a fresh directory, edited by `edit`.
fn edited_inventory(tag: &str, file: &str, edit: impl Fn(&str) -> String) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferry-inv-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("group_vars")).unwrap();
    for f in ["hosts.yml", "group_vars/all.yml", "group_vars/compute.yml"] {
        let text = std::fs::read_to_string(root().join(INVENTORY).join(f)).unwrap();
        let text = if f == file { edit(&text) } else { text };
        std::fs::write(dir.join(f), text).unwrap();
    }
    dir
}

fn check(inv: &Path) -> (i32, String) {
    let out = assert_cmd::Command::cargo_bin("ferry")
        .unwrap()
        .current_dir(root())
        .env("NO_COLOR", "1")
        .args(["check", "-i"])
        .arg(inv)
        .arg(PLAYBOOK)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn the_example_inventory_checks_clean() {
    let (code, text) = check(&root().join(INVENTORY));
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains("error"), "{text}");
}

#[test]
fn a_host_without_migration_ip_is_named_with_the_template_line() {
    let inv = edited_inventory("noip", "hosts.yml", |t| {
        let out = t.replace("          migration_ip: 10.10.0.12\n", "");
        assert_ne!(out, t, "hosts.yml sets migration_ip of compute2");
        out
    });
    let (code, text) = check(&inv);
    std::fs::remove_dir_all(&inv).unwrap();
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("undefined variable `migration_ip` for host compute2"),
        "{text}"
    );
    // The template line that needs it, as file:line:col.
    let ifupdown = "roles/migration_network/templates/ifupdown-migration.j2";
    let line = std::fs::read_to_string(root().join(ifupdown))
        .unwrap()
        .lines()
        .position(|l| l.contains("{{ migration_ip }}"))
        .unwrap()
        + 1;
    assert!(text.contains(&format!("{ifupdown}:{line}:")), "{text}");
}
