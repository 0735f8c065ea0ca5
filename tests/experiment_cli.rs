//! `ferry experiment` and the experiment plays of `ferry run`, as a user runs them,
//! before anything is migrated: everything is read and checked before any host is
//! touched. (Runs of real migrations are the lab tests of the drivers' work.)

use std::path::Path;
use std::process::Command;

fn ferry(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("run ferry");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const INVENTORY: &str = "all:\n  children:\n    compute:\n      vars: {ansible_connection: local}\n      hosts:\n        c1: {migration_ip: 127.0.0.1}\n        c2: {}\n";

#[test]
fn experiment_refuses_a_pair_host_without_migration_ip_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hosts.yml"), INVENTORY).unwrap();
    std::fs::write(
        dir.path().join("exp.yml"),
        "name: e\ndriver: nova\ndriver_options: {image: cirros}\npairs: compute\nmatrix: {flavor: [m1.tiny]}\n",
    )
    .unwrap();
    let (code, stdout, stderr) = ferry(dir.path(), &["experiment", "-i", "hosts.yml", "exp.yml"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.starts_with("exp.yml:4:8: error: pair host `c2` has no `migration_ip`"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("results").exists(),
        "no results directory for a run that never started"
    );
}

#[test]
fn run_checks_the_experiment_play_before_the_plays_before_it_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hosts.yml"),
        INVENTORY.replace("c2: {}", "c2: {migration_ip: 127.0.0.1}"),
    )
    .unwrap();
    let marker = dir.path().join("provisioned");
    std::fs::write(
        dir.path().join("site.yml"),
        format!(
            "- hosts: c1\n  gather_facts: false\n  tasks:\n    - file: {{path: {}, state: touch}}\n- name: quick\n  hosts: compute\n  experiment:\n    driver: nova\n    driver_options: {{image: cirros, flavour: x}}\n    matrix: {{flavor: [m1.tiny]}}\n",
            marker.display()
        ),
    )
    .unwrap();
    let (code, stdout, stderr) = ferry(dir.path(), &["run", "-i", "hosts.yml", "site.yml"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains("site.yml:8:5: error: nova: unknown driver option `flavour`"),
        "{stderr}"
    );
    assert!(
        !marker.exists(),
        "the provisioning play ran before the experiment was checked"
    );
}

#[test]
fn experiment_on_a_file_without_one_says_so() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hosts.yml"), INVENTORY).unwrap();
    std::fs::write(
        dir.path().join("site.yml"),
        "- hosts: all\n  tasks: [{ping: {}}]\n",
    )
    .unwrap();
    let (code, _, stderr) = ferry(dir.path(), &["experiment", "-i", "hosts.yml", "site.yml"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("no experiment here"), "{stderr}");
}

#[test]
fn check_refuses_block_migration_and_disk_loads_that_have_no_disk() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hosts.yml"),
        INVENTORY.replace("c2: {}", "c2: {migration_ip: 127.0.0.1}"),
    )
    .unwrap();
    let exp = "name: e\ndriver: qmp\npairs: compute\nmatrix:\n  flavor: [{name: nodisk, vcpus: 1, memory_mib: 128, disk_gib: 0}, {name: lab, vcpus: 1, memory_mib: 128, disk_gib: 0.0625}]\n  algorithm: [precopy, {name: blk, kind: precopy, block: true}]\n";
    std::fs::write(dir.path().join("exp.yml"), exp).unwrap();
    let (code, stdout, stderr) = ferry(dir.path(), &["check", "-i", "hosts.yml", "exp.yml"]);
    assert_ne!(code, 0, "{stdout}{stderr}");
    let all = format!("{stdout}{stderr}");
    assert!(
        all.contains("exp.yml:4:1: error: flavor `nodisk` has no disk (disk_gib: 0 after scaling), but the matrix crosses it with the block migration in algorithm `blk`"),
        "{all}"
    );
    assert!(!all.contains("flavor `lab`"), "{all}");

    // The virsh driver gives the lab guest no disk: a disk load is refused.
    let virsh = exp.replace("driver: qmp", "driver: virsh").replace(
        "  algorithm: [precopy, {name: blk, kind: precopy, block: true}]\n",
        "  flavor: [{name: lab, vcpus: 1, memory_mib: 128, disk_gib: 0.0625}]\n  load: [{name: w, disk: {write_mib: 8, when: during}}]\n",
    ).replace("  flavor: [{name: nodisk, vcpus: 1, memory_mib: 128, disk_gib: 0}, {name: lab, vcpus: 1, memory_mib: 128, disk_gib: 0.0625}]\n", "");
    std::fs::write(dir.path().join("exp.yml"), virsh).unwrap();
    let (code, stdout, stderr) = ferry(dir.path(), &["check", "-i", "hosts.yml", "exp.yml"]);
    assert_ne!(code, 0, "{stdout}{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains(
            "error: the virsh driver gives the lab guest no disk, so the disk load `w` cannot run"
        ),
        "{stdout}{stderr}"
    );

    // With a disk on every flavor and the qmp driver, it checks clean.
    let ok = exp.replace(
        "{name: nodisk, vcpus: 1, memory_mib: 128, disk_gib: 0}, ",
        "",
    );
    std::fs::write(dir.path().join("exp.yml"), ok).unwrap();
    let (code, stdout, stderr) = ferry(dir.path(), &["check", "-i", "hosts.yml", "exp.yml"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
}
