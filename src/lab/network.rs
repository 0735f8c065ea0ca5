//! Interface names, the three bridges in this machine's namespace, each host's
//! veths, and traffic shaping, all through `ip` and `tc`.
//!
//! Interface names are at most 15 characters, so they come from a short prefix
//! derived from the lab name (`fl` + 6 hex digits of its SHA-256): bridges are
//! `PREFIXm` (management), `PREFIXx` (migration), `PREFIXg` (guest); host `i`'s
//! veth ends on this machine are `PREFIXm<i>`, `PREFIXx<i>`, `PREFIXg<i>`.
//! Inside a host the ends are `mgmt0`, `mig0` and `guest0`, the last one
//! enslaved to the host's own bridge `brguest`.
//! IPv6 is disabled on every lab interface so no packet leaves the lab's range.

use std::process::Command;

use sha2::{Digest, Sha256};

use super::address::AddressPlan;
use super::rate::LinkRate;
use super::tools::{Tools, run, run_with_input};
use super::{LabError, Result};

pub const HOST_MGMT_IF: &str = "mgmt0";
pub const HOST_MIGRATION_IF: &str = "mig0";
pub const HOST_GUEST_IF: &str = "guest0";
pub const HOST_GUEST_BRIDGE: &str = "brguest";
pub const DEFAULT_MTU: u32 = 1500;

/// The names of one lab's interfaces on this machine.
#[derive(Debug, Clone)]
pub struct IfNames {
    pub prefix: String,
}

impl IfNames {
    pub fn for_lab(name: &str) -> IfNames {
        let digest = Sha256::digest(name.as_bytes());
        IfNames {
            prefix: format!("fl{}", &hex::encode(digest)[..6]),
        }
    }
    pub fn mgmt_bridge(&self) -> String {
        format!("{}m", self.prefix)
    }
    pub fn migration_bridge(&self) -> String {
        format!("{}x", self.prefix)
    }
    pub fn guest_bridge(&self) -> String {
        format!("{}g", self.prefix)
    }
    pub fn bridges(&self) -> [String; 3] {
        [
            self.mgmt_bridge(),
            self.migration_bridge(),
            self.guest_bridge(),
        ]
    }
    /// This machine's ends of host `index`'s veths: management, migration, guest.
    pub fn host_links(&self, index: u32) -> [String; 3] {
        [
            format!("{}m{index}", self.prefix),
            format!("{}x{index}", self.prefix),
            format!("{}g{index}", self.prefix),
        ]
    }
    /// A fixed, locally administered MAC: `02:PP:PP:NN:IH:IL` with PP the first
    /// prefix hash bytes, NN the network (1 management, 2 migration, 3 guest)
    /// and IH:IL the host index (0 for this machine's bridge). Fixed addresses keep
    /// every ARP cache right when a host is rebuilt or a port joins a bridge.
    pub fn mac(&self, network: u8, index: u32) -> String {
        let h = &self.prefix[2..8];
        let index = index.min(0xffff);
        format!(
            "02:{}:{}:{network:02x}:{:02x}:{:02x}",
            &h[0..2],
            &h[2..4],
            index >> 8,
            index & 0xff
        )
    }

    /// Whether `ifname` is one of this lab's interfaces.
    pub fn owns(&self, ifname: &str) -> bool {
        ifname
            .strip_prefix(&self.prefix)
            .and_then(|rest| rest.strip_prefix(['m', 'x', 'g']))
            .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
    }
}

/// Names of every link on this machine (its own namespace).
pub fn links(ip: &std::path::Path) -> Result<Vec<String>> {
    let out = run(Command::new(ip).args(["-j", "link", "show"]))?;
    let v: serde_json::Value = serde_json::from_str(&out).map_err(|e| LabError::Command {
        command: "ip -j link show".into(),
        detail: e.to_string(),
    })?;
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.get("ifname").and_then(|n| n.as_str()).map(String::from))
        .collect())
}

fn disable_ipv6(ifname: &str) {
    // Absent when IPv6 is off on this machine; nothing to do then.
    let _ = std::fs::write(
        format!("/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6"),
        "1",
    );
}

/// Make the three bridges exist, up, with the machine's management address.
pub fn ensure_bridges(
    tools: &Tools,
    names: &IfNames,
    plan: &AddressPlan,
    mtu: u32,
    journal: &mut dyn FnMut(&str) -> Result<()>,
) -> Result<()> {
    let existing = links(&tools.ip)?;
    for br in names.bridges() {
        if !existing.contains(&br) {
            journal(&format!("link {br}"))?;
            let net = match br.chars().last() {
                Some('m') => 1,
                Some('x') => 2,
                _ => 3,
            };
            run(Command::new(&tools.ip).args([
                "link",
                "add",
                &br,
                "address",
                &names.mac(net, 0),
                "type",
                "bridge",
            ]))?;
        }
        disable_ipv6(&br);
    }
    let mgmt = names.mgmt_bridge();
    let addr = format!("{}/{}", plan.machine_mgmt_ip(), plan.net_prefix);
    let batch = format!(
        "addr replace {addr} dev {mgmt}\nlink set {mgmt} up\nlink set {mig} mtu {mtu} up\nlink set {g} up\n",
        mig = names.migration_bridge(),
        g = names.guest_bridge(),
    );
    run_with_input(Command::new(&tools.ip).args(["-batch", "-"]), Some(&batch))?;
    Ok(())
}

/// Everything a host's links need to know.
pub struct HostNet<'a> {
    pub index: u32,
    pub anchor_pid: u32,
    pub plan: &'a AddressPlan,
    pub names: &'a IfNames,
    pub mtu: u32,
    pub rate: Option<&'a LinkRate>,
}

/// Create host `index`'s veths into its namespace, enslave this machine's ends
/// to the bridges, and configure the host's ends (addresses, guest bridge).
pub fn create_host_links(
    tools: &Tools,
    h: &HostNet<'_>,
    journal: &mut dyn FnMut(&str) -> Result<()>,
) -> Result<()> {
    let [m, x, g] = h.names.host_links(h.index);
    let pid = h.anchor_pid;
    for l in [&m, &x, &g] {
        journal(&format!("link {l}"))?;
    }
    let mtu = h.mtu;
    let add = format!(
        "link add {m} type veth peer name {HOST_MGMT_IF} address {mm} netns {pid}\n\
         link add {x} mtu {mtu} type veth peer name {HOST_MIGRATION_IF} mtu {mtu} address {xm} netns {pid}\n\
         link add {g} type veth peer name {HOST_GUEST_IF} address {gm} netns {pid}\n",
        mm = h.names.mac(1, h.index),
        xm = h.names.mac(2, h.index),
        gm = h.names.mac(3, h.index),
    );
    run_with_input(Command::new(&tools.ip).args(["-batch", "-"]), Some(&add))?;
    for l in [&m, &x, &g] {
        disable_ipv6(l);
    }
    // The machine's neighbour entry for the host is fixed (its MAC is): a permanent
    // entry is never looked up by ARP and does not count against the neighbour table's
    // garbage-collection limits (gc_thresh2 = 512 by default: a lab of more hosts lost
    // every one above 512 to "neighbor table overflow").
    let attach = format!(
        "link set {m} master {mb} up\nlink set {x} master {xb} up\nlink set {g} master {gb} up\n\
         neigh replace {ip} lladdr {mm} dev {mb} nud permanent\n",
        ip = h.plan.mgmt_ip(h.index),
        mm = h.names.mac(1, h.index),
        mb = h.names.mgmt_bridge(),
        xb = h.names.migration_bridge(),
        gb = h.names.guest_bridge(),
    );
    run_with_input(Command::new(&tools.ip).args(["-batch", "-"]), Some(&attach))?;
    let inside = format!(
        "addr replace {mgmt}/{p} dev {HOST_MGMT_IF}\nlink set {HOST_MGMT_IF} up\n\
         addr replace {mig}/{p} dev {HOST_MIGRATION_IF}\nlink set {HOST_MIGRATION_IF} up\n\
         link add {HOST_GUEST_BRIDGE} address {gm} type bridge\nlink set {HOST_GUEST_IF} master {HOST_GUEST_BRIDGE} up\n\
         addr replace {guest}/{p} dev {HOST_GUEST_BRIDGE}\nlink set {HOST_GUEST_BRIDGE} up\n",
        p = h.plan.net_prefix,
        mgmt = h.plan.mgmt_ip(h.index),
        mig = h.plan.migration_ip(h.index),
        guest = h.plan.guest_ip(h.index),
        gm = h.names.mac(3, h.index),
    );
    run_with_input(
        Command::new(&tools.nsenter)
            .args(["-t", &pid.to_string(), "-n", "--"])
            .arg(&tools.ip)
            .args(["-batch", "-"]),
        Some(&inside),
    )?;
    // New links already have the MTU; unshaped ones need no qdisc change.
    match h.rate {
        Some(rate) => shape_migration_link(tools, h, Some(rate)),
        None => Ok(()),
    }
}

/// Apply (or remove) the rate limit and MTU on both ends of host `index`'s migration link.
pub fn shape_host(tools: &Tools, h: &HostNet<'_>) -> Result<()> {
    let x = &h.names.host_links(h.index)[1];
    let pid = h.anchor_pid.to_string();
    run(Command::new(&tools.ip).args(["link", "set", x, "mtu", &h.mtu.to_string()]))?;
    run(Command::new(&tools.nsenter)
        .args(["-t", &pid, "-n", "--"])
        .arg(&tools.ip)
        .args(["link", "set", HOST_MIGRATION_IF, "mtu", &h.mtu.to_string()]))?;
    shape_migration_link(tools, h, h.rate)
}

/// Put a token bucket of `rate` on both ends of the migration link, or remove it.
fn shape_migration_link(tools: &Tools, h: &HostNet<'_>, rate: Option<&LinkRate>) -> Result<()> {
    let x = &h.names.host_links(h.index)[1];
    let pid = h.anchor_pid.to_string();
    let outside = |args: &[&str]| {
        let mut c = Command::new(&tools.tc);
        c.args(args);
        c
    };
    let inside = |args: &[&str]| {
        let mut c = Command::new(&tools.nsenter);
        c.args(["-t", &pid, "-n", "--"]).arg(&tools.tc).args(args);
        c
    };
    match rate {
        Some(rate) => {
            let tbf = rate.tbf_args();
            let tbf: Vec<&str> = tbf.iter().map(String::as_str).collect();
            let mut a = vec!["qdisc", "replace", "dev", x.as_str(), "root"];
            a.extend(&tbf);
            run(&mut outside(&a))?;
            let mut a = vec!["qdisc", "replace", "dev", HOST_MIGRATION_IF, "root"];
            a.extend(&tbf);
            run(&mut inside(&a))?;
        }
        None => {
            // No root qdisc yet is fine: deleting it then fails, which means "unshaped".
            let _ = run(&mut outside(&["qdisc", "del", "dev", x, "root"]));
            let _ = run(&mut inside(&[
                "qdisc",
                "del",
                "dev",
                HOST_MIGRATION_IF,
                "root",
            ]));
        }
    }
    Ok(())
}

/// Delete links by name (missing ones are fine).
pub fn delete_links(ip: &std::path::Path, names: &[String]) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let batch: String = names.iter().map(|n| format!("link del {n}\n")).collect();
    // -force: keep going past links that are already gone.
    let _ = run_with_input(
        Command::new(ip).args(["-force", "-batch", "-"]),
        Some(&batch),
    );
    let left: Vec<String> = links(ip)?
        .into_iter()
        .filter(|l| names.contains(l))
        .collect();
    if !left.is_empty() {
        return Err(LabError::State(format!(
            "could not delete links: {}",
            left.join(", ")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_in_fifteen_characters_and_are_recognised() {
        let n = IfNames::for_lab("a-rather-long-lab-name-for-tests");
        for l in n.host_links(250).iter().chain(n.bridges().iter()) {
            assert!(l.len() <= 15, "{l}");
        }
        assert!(n.owns(&n.host_links(17)[1]));
        assert!(n.owns(&n.mgmt_bridge()));
        assert!(!n.owns("eth0"));
        assert!(!IfNames::for_lab("other").owns(&n.mgmt_bridge()));
        let mac = n.mac(2, 17);
        assert!(
            mac.starts_with("02:") && mac.ends_with(":02:00:11"),
            "{mac}"
        );
        assert_eq!(mac.len(), 17);
        assert!(n.mac(2, 1000).ends_with(":02:03:e8"));
        assert!(n.host_links(1000).iter().all(|l| l.len() <= 15));
    }
}
