//! A full guest: an existing VM that is a host of the inventory's `guests` group
//! (a real lab's cloud image, a Nova instance, or on the lab a guest booted by
//! `playbooks/guest.yml -e guest_start=true`), named by the experiment file's
//! `guest: {host: NAME}`. Every run migrates that guest (the driver finds it by
//! its host vars, never defines or boots it); the run starts the scenario's load
//! on it over SSH before the migration and stops it after (always), and the
//! probe pings its address.
//!
//! Host vars of the guest host:
//! - `libvirt_domain` (virsh driver): the domain's name on the compute nodes;
//! - `nova_instance` (nova driver): the instance's name or ID;
//! - `guest_address` (else `ansible_host`): the address the probe pings;
//! - `ferry_load` (default [`FULL_GUEST_LOAD`]): the load program's path there
//!   (`playbooks/guest_load.yml` installs it).

use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::driver::{DriverError, DriverKind, HostEnd};
use super::guest;
use super::load_process::{FULL_GUEST_LOAD, LoadProcess, args_of};
use super::scenario::Scenario;
use super::spec::ExperimentSpec;
use crate::inventory::Inventory;
use crate::playbook::diag::Problem;

/// The inventory group full guests belong to.
pub const GUESTS_GROUP: &str = "guests";

/// The host var naming the guest for `driver`; None: the driver cannot take one.
pub fn name_var(driver: DriverKind) -> Option<&'static str> {
    match driver {
        DriverKind::Virsh => Some("libvirt_domain"),
        DriverKind::Nova => Some("nova_instance"),
        DriverKind::Qmp => None,
    }
}

/// What `ferry check` says of an experiment's `guest:` against the inventory.
pub fn check(spec: &ExperimentSpec, inv: &Inventory) -> Vec<Problem> {
    let Some((name, loc)) = &spec.guest else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    let Some(host) = inv.hosts.get(name) else {
        let hint = format!(
            "add `{name}` to the inventory's `{GUESTS_GROUP}` group (with its address and the host var naming its VM), or name a host that is there"
        );
        problems.push(
            Problem::error(loc, format!("full guest `{name}` is not in the inventory"))
                .label("unknown host")
                .hint(hint)
                .span_len(name.len()),
        );
        return problems;
    };
    let in_group = inv
        .select(GUESTS_GROUP)
        .map(|hs| hs.iter().any(|h| h == name))
        .unwrap_or(false);
    if !in_group {
        problems.push(
            Problem::error(
                loc,
                format!("full guest `{name}` is not in the `{GUESTS_GROUP}` group"),
            )
            .hint(format!(
                "put {name} (declared at {}) under `{GUESTS_GROUP}:` in the inventory: playbooks/guest_load.yml installs the load program there",
                host.loc
            )),
        );
    }
    let vars = inv.host_vars(name);
    let has = |k: &str| match vars.get(k) {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(_) => true,
    };
    match name_var(spec.driver) {
        None => problems.push(
            Problem::error(loc, "the qmp driver cannot migrate a full guest")
                .hint("qmp starts a QEMU of its own per run; migrate an existing VM with `driver: virsh` (libvirt domain) or `driver: nova` (instance)"),
        ),
        Some(var) if !has(var) => problems.push(
            Problem::error(loc, format!("full guest `{name}` has no `{var}`"))
                .hint(format!(
                    "set `{var}:` for {name} (declared at {}): the {} the {:?} driver migrates",
                    host.loc,
                    if var == "libvirt_domain" { "libvirt domain" } else { "Nova instance" },
                    spec.driver
                )),
        ),
        Some(_) => {}
    }
    if !has("guest_address") && !has("ansible_host") {
        problems.push(
            Problem::error(loc, format!("full guest `{name}` has no address")).hint(format!(
                "set `guest_address:` (or `ansible_host:`) for {name}: the probe pings it"
            )),
        );
    }
    if spec.parallel_pairs {
        problems.push(
            Problem::error(loc, "one full guest cannot migrate in parallel pairs")
                .hint("leave `parallel_pairs` false: the guest is in one place at a time"),
        );
    }
    if spec.flavors.len() > 1 {
        problems.push(
            Problem::error(
                loc,
                format!(
                    "a full guest has one size, the matrix {} flavors",
                    spec.flavors.len()
                ),
            )
            .hint("give `matrix.flavor` one value that describes the guest (its rows record it)"),
        );
    }
    for l in &spec.loads {
        if l.disk.is_some() {
            problems.push(
                Problem::error(loc, format!("load `{}` writes to a disk; a full guest's load runs without one", l.name))
                    .hint("drop `disk:` from the load (the full guest's own disk is not ferry's to write)"),
            );
        }
    }
    problems
}

/// The guest's name for the driver (its `libvirt_domain` / `nova_instance`).
pub fn vm_name(guest: &HostEnd, driver: DriverKind) -> Result<String, DriverError> {
    match name_var(driver) {
        Some(var) => guest.require_var(var),
        None => Err(DriverError::Other(
            "the qmp driver cannot migrate a full guest".into(),
        )),
    }
}

/// The address the probe pings.
pub fn address(guest: &HostEnd) -> Result<String, DriverError> {
    guest
        .var("guest_address")
        .or_else(|| guest.var("ansible_host"))
        .filter(|a| !a.is_empty())
        .ok_or_else(|| DriverError::Host {
            host: guest.name.clone(),
            message: "no guest_address (or ansible_host)".into(),
        })
}

/// Start the scenario's load on the guest over SSH and wait for its first two
/// reports (as the lab guest's boot waits for them); None: an idle scenario.
pub async fn start_load<'a>(
    guest_host: &'a HostEnd,
    scenario: &Scenario,
    stream_to: Option<&str>,
    tag: &str,
    within: Duration,
) -> Result<Option<LoadProcess<'a>>, DriverError> {
    let parts = guest::load_parts(&scenario.load, stream_to, None)
        .map_err(|e| DriverError::Other(e.to_string()))?;
    if parts.is_empty() {
        return Ok(None);
    }
    let program = guest_host
        .var("ferry_load")
        .unwrap_or_else(|| FULL_GUEST_LOAD.to_string());
    let p = LoadProcess::start(guest_host, &program, &args_of(&parts), tag).await?;
    let deadline = Instant::now() + within;
    loop {
        if p.reports().await?.len() >= 2 {
            return Ok(Some(p));
        }
        if Instant::now() > deadline {
            let _ = p.stop().await;
            return Err(DriverError::Host {
                host: guest_host.name.clone(),
                message: format!("the load program reported nothing within {within:?}"),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The row's achieved load from the program's mean report: `load_achieved.guest`
/// (a full guest's load runs across the migration, one series) and the dirty
/// rate it achieved.
pub fn record_load(
    row: &mut super::result::MigrationResult,
    scenario: &Scenario,
    mean: Option<Map<String, Value>>,
) {
    row.dirty_rate_achieved_mib_s = mean
        .as_ref()
        .filter(|_| scenario.load.memory.is_some())
        .and_then(|m| m.get("dirty_mib_s"))
        .and_then(Value::as_f64);
    row.load_achieved = Some(serde_json::json!({ "guest": mean, "started_over": "ssh" }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn problems(inv_text: &str, exp: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hosts.yml");
        std::fs::write(&p, inv_text).unwrap();
        let inv = Inventory::load(&[p]).unwrap();
        let docs = crate::yaml::parse_str(exp, Path::new("exp.yml")).unwrap();
        let spec = super::super::spec::parse(&docs[0], &Default::default()).unwrap();
        check(&spec, &inv)
            .iter()
            .map(|p| format!("{}:{} {}", p.loc.line, p.loc.col, p.message))
            .collect()
    }

    const INV: &str = "all:\n  children:\n    compute:\n      hosts:\n        a: {migration_ip: 10.0.2.1}\n        b: {migration_ip: 10.0.2.2}\n    guests:\n      hosts:\n        vm1: {ansible_host: 10.0.3.200, libvirt_domain: ferry-guest}\n        vm2: {ansible_host: 10.0.3.201}\n";

    fn exp(driver: &str, guest: &str) -> String {
        format!(
            "name: t\ndriver: {driver}\npairs: [[a, b]]\nguest: {guest}\nmatrix:\n  flavor: [m1.tiny]\n"
        )
    }

    #[test]
    fn a_full_guest_needs_the_hosts_and_vars_its_driver_migrates_by() {
        assert_eq!(
            problems(INV, &exp("virsh", "{host: vm1}")),
            Vec::<String>::new()
        );
        assert_eq!(
            problems(INV, &exp("virsh", "{host: vm2}")),
            ["4:15 full guest `vm2` has no `libvirt_domain`"]
        );
        assert_eq!(
            problems(INV, &exp("nova", "vm1")),
            ["4:8 full guest `vm1` has no `nova_instance`"]
        );
        assert_eq!(
            problems(INV, &exp("qmp", "{host: vm1}")),
            ["4:15 the qmp driver cannot migrate a full guest"]
        );
        assert_eq!(
            problems(INV, &exp("virsh", "{host: vm9}")),
            ["4:15 full guest `vm9` is not in the inventory"]
        );
        assert_eq!(
            problems(INV, &exp("virsh", "{host: a}")),
            [
                "4:15 full guest `a` is not in the `guests` group",
                "4:15 full guest `a` has no `libvirt_domain`",
                "4:15 full guest `a` has no address"
            ]
        );
    }
}
