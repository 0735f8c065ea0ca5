//! `up`, `down`, `status` and `exec` of a lab, put together from the other modules.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};

use super::address::{self, AddressPlan, Cidr};
use super::ensure;
use super::host::{self, HostPaths, LabProcess};
use super::network::{self, DEFAULT_MTU, IfNames};
use super::rate::LinkRate;
use super::state::{self, HostRecord, LabState};
use super::tools::{self, Tools};
use super::{LabError, MAX_HOSTS, Result, io_err};

/// What `ferry lab up` is asked for.
#[derive(Debug, Clone)]
pub struct LabSpec {
    pub name: String,
    pub state_dir: Option<PathBuf>,
    pub hosts: u32,
    pub link_rate: Option<String>,
    pub mtu: Option<u32>,
    pub range: Option<String>,
}

pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(LabError::BadName(name.to_string()))
    }
}

fn require_root() -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(LabError::NotRoot)
    }
}

fn state_dir_of(name: &str, dir: Option<&Path>) -> PathBuf {
    match dir {
        Some(d) if d.is_absolute() => d.to_path_buf(),
        Some(d) => std::env::current_dir()
            .map(|c| c.join(d))
            .unwrap_or_else(|_| d.to_path_buf()),
        None => state::default_state_dir(name),
    }
}

/// An exclusive lock on a file under /run/ferry, held until dropped.
fn lock(name: &str) -> Result<Flock<std::fs::File>> {
    let dir = Path::new("/run/ferry");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err(dir))?;
    let p = dir.join(name);
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .map_err(io_err(&p))?;
    Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| LabError::Io {
        path: p,
        source: e.into(),
    })
}

fn machine_occupants(ip: &Path) -> Result<Vec<address::Occupant>> {
    let routes = tools::run(Command::new(ip).args(["-j", "-4", "route", "show", "table", "all"]))?;
    let addrs = tools::run(Command::new(ip).args(["-j", "-4", "addr", "show"]))?;
    Ok(address::occupants(&routes, &addrs))
}

/// Ranges recorded by other labs under the default state root.
fn ranges_of_other_labs(own: &Path) -> Vec<Cidr> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(super::STATE_ROOT)
        .into_iter()
        .flatten()
        .flatten()
    {
        if e.path() == own {
            continue;
        }
        if let Ok(Some(s)) = LabState::load(&e.path()) {
            out.push(s.range);
        }
    }
    out
}

/// Validate everything, then create or repair the lab. Returns its state.
pub fn up(spec: &LabSpec) -> Result<LabState> {
    validate_name(&spec.name)?;
    if spec.hosts == 0 || spec.hosts > MAX_HOSTS {
        return Err(LabError::BadHostCount(spec.hosts));
    }
    // None: keep what the lab has; Some(None): remove shaping ("none"/"unshaped").
    let rate: Option<Option<LinkRate>> = match spec.link_rate.as_deref() {
        None => None,
        Some("none") | Some("unshaped") => Some(None),
        Some(text) => Some(Some(LinkRate::parse(text)?)),
    };
    if let Some(m) = spec.mtu
        && !(576..=65535).contains(&m)
    {
        return Err(LabError::BadMtu(m));
    }
    let wanted_range = spec
        .range
        .as_deref()
        .map(address::parse_range)
        .transpose()?;
    require_root()?;
    let tools = Tools::find()?;
    let dir = state_dir_of(&spec.name, spec.state_dir.as_deref());
    let names = IfNames::for_lab(&spec.name);
    // Checked before taking any lock, so a bad range creates nothing at all.
    if let Some(r) = wanted_range
        && LabState::load(&dir)?.is_none()
        && let Some(o) =
            address::first_overlap(&r, &machine_occupants(&tools.ip)?, &|d| names.owns(d))
    {
        return Err(LabError::RangeInUse {
            range: r.to_string(),
            what: o.what.clone(),
        });
    }
    let _lab_lock = lock(&format!("lab-{}.lock", spec.name))?;
    let existing = LabState::load(&dir)?;
    if let Some(e) = &existing
        && e.name != spec.name
    {
        return Err(LabError::State(format!(
            "{} holds lab {}, not {}",
            dir.display(),
            e.name,
            spec.name
        )));
    }

    // Claim the range and make the bridges while no other lab is choosing one.
    let mut lab = {
        let _range_lock = lock("ranges.lock")?;
        let occupants = machine_occupants(&tools.ip)?;
        let own = |dev: &str| names.owns(dev);
        let range = match (&existing, wanted_range) {
            (Some(e), Some(r)) if e.range != r => {
                return Err(LabError::RangeChanged {
                    name: spec.name.clone(),
                    current: e.range.to_string(),
                });
            }
            (Some(e), _) => e.range,
            (None, Some(r)) => {
                if let Some(o) = address::first_overlap(&r, &occupants, &own) {
                    return Err(LabError::RangeInUse {
                        range: r.to_string(),
                        what: o.what.clone(),
                    });
                }
                if let Some(other) = ranges_of_other_labs(&dir)
                    .into_iter()
                    .find(|o| o.overlaps(&r))
                {
                    return Err(LabError::RangeInUse {
                        range: r.to_string(),
                        what: format!("another ferry lab's range {other}"),
                    });
                }
                r
            }
            (None, None) => {
                let others = ranges_of_other_labs(&dir);
                address::automatic_candidates()
                    .find(|c| {
                        address::first_overlap(c, &occupants, &own).is_none()
                            && !others.iter().any(|o| o.overlaps(c))
                    })
                    .ok_or(LabError::NoFreeRange)?
            }
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir.join("hosts"))
            .map_err(io_err(&dir))?;
        let net_prefix = match &existing {
            Some(e) if e.plan().capacity() < spec.hosts => {
                return Err(LabError::State(format!(
                    "lab {} has addresses for {} hosts; take it down to make it with {}",
                    spec.name,
                    e.plan().capacity(),
                    spec.hosts
                )));
            }
            Some(e) => e.net_prefix,
            None => AddressPlan::for_hosts(range, spec.hosts)?.net_prefix,
        };
        let lab = LabState {
            name: spec.name.clone(),
            state_dir: dir.clone(),
            range,
            net_prefix,
            prefix: names.prefix.clone(),
            link_rate: match rate {
                Some(r) => r,
                None => existing.as_ref().and_then(|e| e.link_rate.clone()),
            },
            mtu: spec
                .mtu
                .or(existing.as_ref().map(|e| e.mtu))
                .unwrap_or(DEFAULT_MTU),
            hosts: existing
                .as_ref()
                .map(|e| e.hosts.clone())
                .unwrap_or_default(),
        };
        lab.save()?;
        network::ensure_bridges(&tools, &names, &lab.plan(), lab.mtu, &mut |e| lab.record(e))?;
        lab
    };

    host::ensure_key(&tools, &lab.key_path(), &format!("ferry-lab-{}", lab.name))?;
    let pubkey = std::fs::read_to_string(lab.key_path().with_extension("pub"))
        .map_err(io_err(lab.key_path().with_extension("pub")))?;
    state::write_atomic(&lab.authorized_keys(), pubkey.as_bytes())?;

    // Shrink: hosts above the new count go first.
    let (keep, drop): (Vec<HostRecord>, Vec<HostRecord>) =
        lab.hosts.drain(..).partition(|h| h.index <= spec.hosts);
    for h in &drop {
        ensure::remove_host(&lab, &tools.ip, h)?;
    }
    lab.hosts = keep;
    lab.save()?;

    let existing_links: HashSet<String> = network::links(&tools.ip)?.into_iter().collect();
    let records = Mutex::new(Vec::new());
    let errors = Mutex::new(Vec::new());
    let next = AtomicU32::new(1);
    let workers = spec.hosts.min(16);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::SeqCst);
                    if index > spec.hosts {
                        break;
                    }
                    let old = lab.hosts.iter().find(|h| h.index == index).cloned();
                    match ensure::ensure_host(&lab, &tools, index, old, &existing_links) {
                        Ok(r) => records.lock().unwrap().push(r),
                        Err(b) => {
                            let (r, e) = *b;
                            if let Some(r) = r {
                                records.lock().unwrap().push(r);
                            }
                            errors.lock().unwrap().push(e);
                        }
                    }
                }
            });
        }
    });
    let mut records = records.into_inner().unwrap();
    records.sort_by_key(|r| r.index);
    lab.hosts = records;
    lab.save()?;
    if let Some(e) = errors.into_inner().unwrap().into_iter().next() {
        return Err(e);
    }
    ensure::write_etc_hosts(&lab)?;
    lab.write_client_files()?;
    Ok(lab)
}

/// What `down` removed.
#[derive(Debug, Default)]
pub struct DownReport {
    pub processes: usize,
    pub links: usize,
    pub state_removed: bool,
}

/// Remove every trace of a lab. Works from whatever is left after a crash.
pub fn down(name: &str, state_dir: Option<&Path>) -> Result<DownReport> {
    validate_name(name)?;
    require_root()?;
    let ip = tools::Tools::find_for_down()?;
    let dir = state_dir_of(name, state_dir);
    let _lab_lock = lock(&format!("lab-{name}.lock"))?;
    let state = LabState::load(&dir)?;
    let names = state
        .as_ref()
        .map(|s| s.names())
        .unwrap_or_else(|| IfNames::for_lab(name));
    let mut report = DownReport::default();

    let recorded: Vec<LabProcess> = state
        .iter()
        .flat_map(|s| s.hosts.iter())
        .flat_map(|h| h.anchor.iter().chain(h.sshd.iter()))
        .cloned()
        .collect();
    let anchors: Vec<LabProcess> = state
        .iter()
        .flat_map(|s| s.hosts.iter())
        .flat_map(|h| h.anchor.iter())
        .cloned()
        .collect();
    let mut recorded = recorded;
    recorded.extend(state.iter().flat_map(|s| s.journal_processes()));
    let procs = host::lab_processes(&recorded, &anchors, &dir.join("hosts"));
    report.processes = procs.len();
    host::terminate(&procs, Duration::from_secs(3));

    let mut doomed: Vec<String> = network::links(&ip)?
        .into_iter()
        .filter(|l| names.owns(l))
        .collect();
    if let Some(s) = &state {
        let present: HashSet<String> = network::links(&ip)?.into_iter().collect();
        for l in s.journal_links() {
            if present.contains(&l) && !doomed.contains(&l) && l.starts_with(&names.prefix) {
                doomed.push(l);
            }
        }
    }
    // Host ends before bridges.
    doomed.sort_by_key(|l| names.bridges().contains(l));
    report.links = doomed.len();
    network::delete_links(&ip, &doomed)?;

    let is_lab_dir = state.is_some() || dir.join("journal").exists() || dir.join("hosts").exists();
    if is_lab_dir && dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(io_err(&dir))?;
        report.state_removed = true;
    }
    let _ = std::fs::remove_file(format!("/run/ferry/lab-{name}.lock"));
    let left = host::lab_processes(&[], &[], &dir.join("hosts"));
    if !left.is_empty() {
        return Err(LabError::State(format!(
            "processes of lab {name} still running: {}",
            left.iter()
                .map(|p| p.pid.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        )));
    }
    Ok(report)
}

/// One host as `ferry lab status` shows it.
#[derive(Debug, Clone)]
pub struct HostStatus {
    pub index: u32,
    pub name: String,
    pub mgmt_ip: std::net::Ipv4Addr,
    pub migration_ip: std::net::Ipv4Addr,
    pub guest_ip: std::net::Ipv4Addr,
    pub link_rate: Option<String>,
    pub mtu: u32,
    pub anchor_pid: Option<u32>,
    pub sshd_pid: Option<u32>,
    /// sshd answered with an SSH banner on the management address.
    pub answers: bool,
}

/// Load a lab's state (no root needed).
pub fn load(name: &str, state_dir: Option<&Path>) -> Result<LabState> {
    validate_name(name)?;
    let dir = state_dir_of(name, state_dir);
    LabState::load(&dir)?.ok_or(LabError::NoSuchLab {
        name: name.to_string(),
        dir,
    })
}

fn answers(addr: std::net::Ipv4Addr) -> bool {
    let Ok(mut s) =
        TcpStream::connect_timeout(&SocketAddr::from((addr, 22)), Duration::from_secs(2))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 8];
    let ok = s.read_exact(&mut buf).is_ok() && buf.starts_with(b"SSH-");
    let _ = s.write_all(b"SSH-2.0-ferry-status\r\n");
    ok
}

pub fn status(name: &str, state_dir: Option<&Path>) -> Result<(LabState, Vec<HostStatus>)> {
    let lab = load(name, state_dir)?;
    let plan: AddressPlan = lab.plan();
    let out: Vec<HostStatus> = std::thread::scope(|s| {
        let handles: Vec<_> = lab
            .hosts
            .iter()
            .map(|h| {
                let lab = &lab;
                s.spawn(move || {
                    let paths: HostPaths = lab.host_paths(h.index);
                    let anchor = h
                        .anchor
                        .as_ref()
                        .filter(|a| host::is_anchor(a, &paths))
                        .map(|a| a.pid);
                    let sshd = h
                        .sshd
                        .as_ref()
                        .filter(|p| host::is_sshd(p, &paths))
                        .map(|p| p.pid);
                    HostStatus {
                        index: h.index,
                        name: h.name.clone(),
                        mgmt_ip: plan.mgmt_ip(h.index),
                        migration_ip: plan.migration_ip(h.index),
                        guest_ip: plan.guest_ip(h.index),
                        link_rate: h.shaped.as_ref().map(|r| r.text.clone()),
                        mtu: h.mtu,
                        anchor_pid: anchor,
                        sshd_pid: sshd,
                        answers: sshd.is_some() && answers(plan.mgmt_ip(h.index)),
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("status thread"))
            .collect()
    });
    Ok((lab, out))
}

/// Resolve `host` (a name or a 1-based index) to its record.
pub fn find_host<'a>(lab: &'a LabState, host: &str) -> Result<&'a HostRecord> {
    lab.hosts
        .iter()
        .find(|h| h.name == host || host.parse::<u32>().ok() == Some(h.index))
        .ok_or_else(|| LabError::NoSuchHost {
            lab: lab.name.clone(),
            host: host.to_string(),
            known: lab
                .hosts
                .iter()
                .map(|h| h.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Run `argv` inside a host (its namespaces and root entered with nsenter); returns the exit code.
pub fn exec(name: &str, state_dir: Option<&Path>, host: &str, argv: &[String]) -> Result<i32> {
    require_root()?;
    let lab = load(name, state_dir)?;
    let h = find_host(&lab, host)?;
    let anchor = h
        .anchor
        .as_ref()
        .filter(|a| host::is_anchor(a, &lab.host_paths(h.index)))
        .ok_or_else(|| LabError::HostDown(h.name.clone()))?;
    let nsenter = tools::which("nsenter").ok_or_else(|| LabError::MissingTool {
        tool: "nsenter".into(),
        package: "util-linux".into(),
    })?;
    let status = Command::new(nsenter)
        .args([
            "-t",
            &anchor.pid.to_string(),
            "-m",
            "-n",
            "-u",
            "-r",
            "-w",
            "--",
        ])
        .args(argv)
        .status()
        .map_err(|e| LabError::Host {
            host: h.name.clone(),
            detail: format!("cannot run nsenter: {e}"),
        })?;
    use std::os::unix::process::ExitStatusExt;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}
