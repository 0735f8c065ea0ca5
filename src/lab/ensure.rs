//! One lab host brought to what `ferry lab up` wants (its key, sshd_config, anchor,
//! links, shaping and sshd; what is already right is kept), removed, and every host's
//! /etc/hosts.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::host::{self, LabProcess};
use super::network::{self, HostNet};
use super::state::{self, HostRecord, LabState};
use super::tools::Tools;
use super::{LabError, Result, io_err};

/// Give every host an /etc/hosts naming all lab hosts by management address.
/// Written through `/proc/ANCHOR/root`, i.e. into the host's own root; left
/// alone when already right.
pub(super) fn write_etc_hosts(lab: &LabState) -> Result<()> {
    let plan = lab.plan();
    let mut text = String::from("# Written by `ferry lab up`.\n127.0.0.1\tlocalhost\n");
    for h in &lab.hosts {
        text.push_str(&format!("{}\t{}\n", plan.mgmt_ip(h.index), h.name));
    }
    for h in &lab.hosts {
        let Some(anchor) = h
            .anchor
            .as_ref()
            .filter(|a| host::is_anchor(a, &lab.host_paths(h.index)))
        else {
            continue;
        };
        let etc = PathBuf::from(format!("/proc/{}/root/etc", anchor.pid));
        if std::fs::read_to_string(etc.join("hosts")).ok().as_deref() == Some(text.as_str()) {
            continue;
        }
        // The host's own /etc/hosts: every user there reads it.
        let hosts = etc.join("hosts");
        state::write_atomic(&hosts, text.as_bytes())?;
        std::fs::set_permissions(&hosts, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .map_err(crate::lab::io_err(&hosts))?;
    }
    Ok(())
}

pub(super) type HostResult = std::result::Result<HostRecord, Box<(Option<HostRecord>, LabError)>>;

pub(super) fn ensure_host(
    lab: &LabState,
    tools: &Tools,
    index: u32,
    old: Option<HostRecord>,
    existing_links: &HashSet<String>,
) -> HostResult {
    let name = format!("{}-{index}", lab.name);
    let paths = lab.host_paths(index);
    let plan = lab.plan();
    let names = lab.names();
    let fail = |r: Option<HostRecord>| move |e: LabError| Box::new((r, e));
    std::fs::create_dir_all(&paths.dir)
        .map_err(|e| Box::new((old.clone(), io_err(&paths.dir)(e))))?;
    host::ensure_key(tools, &paths.host_key(), &name).map_err(fail(old.clone()))?;
    host::write_sshd_config(&paths, plan.mgmt_ip(index), &lab.authorized_keys())
        .map_err(fail(old.clone()))?;

    let links = names.host_links(index);
    let anchor = old
        .as_ref()
        .and_then(|o| o.anchor.clone())
        .filter(|a| host::is_anchor(a, &paths));
    let links_ok = links.iter().all(|l| existing_links.contains(l));
    let mut rec = HostRecord {
        index,
        name: name.clone(),
        anchor: None,
        sshd: old.as_ref().and_then(|o| o.sshd.clone()),
        shaped: old.as_ref().and_then(|o| o.shaped.clone()),
        mtu: old.as_ref().map(|o| o.mtu).unwrap_or(lab.mtu),
    };
    let anchor = match anchor {
        Some(a) if links_ok => a,
        _ => {
            // Missing or broken: clear what is left of it, then build it afresh.
            // Its upper dir stays, so files written on the host survive.
            let recorded: Vec<LabProcess> = old
                .iter()
                .flat_map(|o| o.anchor.iter().chain(o.sshd.iter()))
                .cloned()
                .collect();
            let procs = host::lab_processes(&recorded, &recorded, &paths.dir);
            host::terminate(&procs, Duration::from_secs(2));
            network::delete_links(&tools.ip, &links).map_err(fail(None))?;
            rec.sshd = None;
            let a = host::start_anchor(tools, &name, &paths, &lab.state_dir).map_err(fail(None))?;
            let _ = lab.record(&format!("process {} {} {}", a.pid, a.start_time, a.cmdline));
            rec.anchor = Some(a.clone());
            let net = HostNet {
                index,
                anchor_pid: a.pid,
                plan: &plan,
                names: &names,
                mtu: lab.mtu,
                rate: lab.link_rate.as_ref(),
            };
            network::create_host_links(tools, &net, &mut |e| lab.record(e))
                .map_err(fail(Some(rec.clone())))?;
            rec.shaped = lab.link_rate.clone();
            rec.mtu = lab.mtu;
            a
        }
    };
    rec.anchor = Some(anchor.clone());
    if rec.shaped != lab.link_rate || rec.mtu != lab.mtu {
        let net = HostNet {
            index,
            anchor_pid: anchor.pid,
            plan: &plan,
            names: &names,
            mtu: lab.mtu,
            rate: lab.link_rate.as_ref(),
        };
        network::shape_host(tools, &net).map_err(fail(Some(rec.clone())))?;
        rec.shaped = lab.link_rate.clone();
        rec.mtu = lab.mtu;
    }
    let sshd_ok = rec.sshd.as_ref().is_some_and(|p| host::is_sshd(p, &paths));
    if !sshd_ok {
        rec.sshd = None;
        let p = host::start_sshd(tools, &name, &anchor, &paths).map_err(fail(Some(rec.clone())))?;
        let _ = lab.record(&format!("process {} {} {}", p.pid, p.start_time, p.cmdline));
        rec.sshd = Some(p);
    }
    Ok(rec)
}

pub(super) fn remove_host(lab: &LabState, ip: &Path, h: &HostRecord) -> Result<()> {
    let paths = lab.host_paths(h.index);
    let recorded: Vec<LabProcess> = h.anchor.iter().chain(h.sshd.iter()).cloned().collect();
    let anchors: Vec<LabProcess> = h.anchor.iter().cloned().collect();
    let procs = host::lab_processes(&recorded, &anchors, &paths.dir);
    host::terminate(&procs, Duration::from_secs(2));
    network::delete_links(ip, &lab.names().host_links(h.index))?;
    if paths.dir.exists() {
        std::fs::remove_dir_all(&paths.dir).map_err(io_err(&paths.dir))?;
    }
    Ok(())
}
