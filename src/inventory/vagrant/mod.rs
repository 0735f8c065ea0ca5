//! A running Vagrant cluster as a ferry inventory (`ferry inventory from-vagrant`).
//!
//! Three questions, each asked of Vagrant, none answered by reading Ruby:
//! - how to reach each machine: `vagrant ssh-config` ([`parse_ssh_config`]);
//! - which addresses the Vagrantfile gave it: the Vagrantfile writes its plan as
//!   JSON to the path in `FERRY_PLAN` when Vagrant evaluates it ([`NetworkPlan`];
//!   ferry's `vagrant/Vagrantfile` does), during that same `vagrant ssh-config` run;
//! - which NIC holds the migration address inside the machine (the name depends on
//!   the box and provider): `vagrant ssh NAME -c 'ip -o -4 addr show'`
//!   ([`parse_ip_addr`]).
//!
//! When machines are not running, `vagrant status --machine-readable` says which
//! ([`parse_machine_states`]).
//!
//! [`read_cluster`] runs those, [`build_cluster`] joins the answers and
//! [`inventory_yaml`] writes the inventory. Nothing here prints; hints for the
//! user travel in [`VagrantError`]'s help and in [`VagrantCluster::warnings`].

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod parse;

pub use parse::{
    NetworkPlan, NicAddress, PlannedMachine, SshConfigHost, parse_ip_addr, parse_machine_states,
    parse_ssh_config,
};

/// What Vagrant prints when `vagrant ssh-config` meets a machine that is not
/// created or not running (Vagrant's `ssh_not_ready` message, first line).
const SSH_NOT_READY: &str = "is not yet ready for SSH";

/// The command run in each machine to find the NIC holding its migration address.
pub const IP_ADDR_COMMAND: &str = "ip -o -4 addr show";

/// Everything that can go wrong reading a Vagrant cluster. Each says what to do.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum VagrantError {
    #[error("vagrant is not installed (no `{program}` on PATH)")]
    #[diagnostic(help(
        "install Vagrant and a provider (Debian: `apt-get install vagrant vagrant-libvirt`; \
         VirtualBox users: Vagrant from vagrantup.com), then `vagrant up` in the Vagrantfile's directory"
    ))]
    NotInstalled { program: String },
    #[error("cannot run `{program}`: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no Vagrantfile in {}", dir.display())]
    #[diagnostic(help(
        "give the directory holding the Vagrantfile with --dir (ferry's is `vagrant/`: \
         `ferry inventory from-vagrant --dir vagrant`)"
    ))]
    NoVagrantfile { dir: PathBuf },
    #[error("Vagrant machines not running in {}: {}", dir.display(), missing.join(", "))]
    #[diagnostic(help(
        "run `vagrant up` in {} (`vagrant status` shows each machine's state), then run this again; Vagrant said: {vagrant_says}",
        dir.display()
    ))]
    NotRunning {
        dir: PathBuf,
        /// `NAME (state)` as `vagrant status` says, for every machine not running;
        /// without that answer, the machines `vagrant ssh-config` did not list.
        missing: Vec<String>,
        vagrant_says: String,
    },
    #[error("`vagrant {command}` failed in {} ({status})", dir.display())]
    #[diagnostic(help("Vagrant said: {stderr}"))]
    Failed {
        dir: PathBuf,
        command: String,
        status: String,
        stderr: String,
    },
    #[error("vagrant ssh-config output, line {line}: {reason}")]
    BadSshConfig { line: usize, reason: String },
    #[error("the Vagrantfile in {} wrote no network plan to FERRY_PLAN", dir.display())]
    #[diagnostic(help(
        "ferry takes each machine's addresses from the plan its Vagrantfile writes when FERRY_PLAN is set \
         (see vagrant/Vagrantfile: the `FERRY_PLAN` block); use that Vagrantfile or add the block to yours"
    ))]
    NoPlan { dir: PathBuf },
    #[error("the Vagrantfile's network plan is not what ferry reads: {reason}")]
    #[diagnostic(help(
        "the plan is JSON: {{\"ferry_vagrant_plan\": 1, \"mgmt_prefix\", \"migration_prefix\", \"migration_mtu\", \"machines\": [{{\"name\", \"mgmt_ip\", \"migration_ip\"}}]}}"
    ))]
    BadPlan { reason: String },
    #[error("machine {machine}: `vagrant ssh {machine} -c '{IP_ADDR_COMMAND}'` failed ({status})")]
    #[diagnostic(help("Vagrant said: {stderr}"))]
    ProbeFailed {
        machine: String,
        status: String,
        stderr: String,
    },
    #[error("machine {machine}: no NIC holds its migration address {ip} (it has: {seen})")]
    #[diagnostic(help(
        "Vagrant sets private_network addresses at `vagrant up`; `vagrant reload {machine}` sets them again"
    ))]
    NoMigrationNic {
        machine: String,
        ip: String,
        seen: String,
    },
    #[error(
        "machine {machine} is reached through a ProxyCommand ({command}), which ferry's SSH transport does not run"
    )]
    #[diagnostic(help(
        "use a provider that gives machines an address and port (libvirt, virtualbox)"
    ))]
    ProxyCommand { machine: String, command: String },
    #[error("machine {machine} is in the plan but `vagrant ssh-config` did not list it")]
    NotInSshConfig { machine: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// The inventory group a machine belongs to, by its name.
pub fn group_of(machine: &str) -> Option<&'static str> {
    if machine.starts_with("controller") {
        Some("controller")
    } else if machine.starts_with("compute") {
        Some("compute")
    } else {
        None
    }
}

/// One machine, ready to be written as an inventory host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VagrantHost {
    pub name: String,
    pub group: Option<&'static str>,
    pub ssh: SshConfigHost,
    pub mgmt_ip: String,
    /// (address, NIC) on the migration network.
    pub migration: Option<(String, String)>,
}

/// The whole cluster as Vagrant describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VagrantCluster {
    /// The directory `vagrant` ran in.
    pub dir: PathBuf,
    pub hosts: Vec<VagrantHost>,
    pub migration_prefix: u8,
    pub migration_mtu: u32,
    /// Things the user should know that do not stop the inventory.
    pub warnings: Vec<String>,
}

/// Joins ssh-config, the plan and each migration machine's addresses
/// (`nics[machine]`, from [`parse_ip_addr`]).
pub fn build_cluster(
    dir: &Path,
    ssh: &[SshConfigHost],
    plan: &NetworkPlan,
    nics: &HashMap<String, Vec<NicAddress>>,
) -> Result<VagrantCluster, VagrantError> {
    let mut warnings = Vec::new();
    let mut hosts = Vec::new();
    for m in &plan.machines {
        let entry =
            ssh.iter()
                .find(|h| h.name == m.name)
                .ok_or_else(|| VagrantError::NotInSshConfig {
                    machine: m.name.clone(),
                })?;
        if let Some(cmd) = &entry.proxy_command {
            return Err(VagrantError::ProxyCommand {
                machine: m.name.clone(),
                command: cmd.clone(),
            });
        }
        let group = group_of(&m.name);
        if group.is_none() {
            warnings.push(format!(
                "machine {} is in neither group (names starting with `controller` or `compute` are)",
                m.name
            ));
        }
        let migration = match &m.migration_ip {
            None => None,
            Some(ip) => {
                let seen = nics.get(&m.name).map(Vec::as_slice).unwrap_or_default();
                let nic = seen.iter().find(|a| &a.ip == ip).ok_or_else(|| {
                    VagrantError::NoMigrationNic {
                        machine: m.name.clone(),
                        ip: ip.clone(),
                        seen: describe_nics(seen),
                    }
                })?;
                if nic.prefix != plan.migration_prefix {
                    let (name, iface) = (&m.name, &nic.iface);
                    let (have, planned) = (nic.prefix, plan.migration_prefix);
                    warnings.push(format!(
                        "machine {name}: {iface} has {ip}/{have}, the plan /{planned} (used)"
                    ));
                }
                if !seen.is_empty() && !seen.iter().any(|a| a.ip == m.mgmt_ip) {
                    warnings.push(format!(
                        "machine {}: no NIC holds its management address {} (it has: {})",
                        m.name,
                        m.mgmt_ip,
                        describe_nics(seen)
                    ));
                }
                Some((ip.clone(), nic.iface.clone()))
            }
        };
        hosts.push(VagrantHost {
            name: m.name.clone(),
            group,
            ssh: entry.clone(),
            mgmt_ip: m.mgmt_ip.clone(),
            migration,
        });
    }
    for h in ssh {
        if !plan.machines.iter().any(|m| m.name == h.name) {
            warnings.push(format!(
                "vagrant ssh-config lists {} but the Vagrantfile's plan does not; left out",
                h.name
            ));
        }
    }
    Ok(VagrantCluster {
        dir: dir.to_path_buf(),
        hosts,
        migration_prefix: plan.migration_prefix,
        migration_mtu: plan.migration_mtu,
        warnings,
    })
}

fn describe_nics(seen: &[NicAddress]) -> String {
    if seen.is_empty() {
        return "no IPv4 address".into();
    }
    seen.iter()
        .map(|a| format!("{} {}/{}", a.iface, a.ip, a.prefix))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A YAML double-quoted scalar (a JSON string is one).
fn q(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

/// A word for `ansible_ssh_common_args` (read with shell quoting rules).
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The inventory for `cluster`. Host keys are checked strictly against
/// `known_hosts` (Vagrant's own `StrictHostKeyChecking no` is not carried over):
/// the first `ferry run --accept-new-host-keys` records them there.
pub fn inventory_yaml(cluster: &VagrantCluster, known_hosts: &Path) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "# Written by `ferry inventory from-vagrant` from `vagrant ssh-config` in\n\
         #   {}\n\
         # and the network plan its Vagrantfile wrote; each compute node's migration NIC is\n\
         # the one holding its migration address (`vagrant ssh NAME -c '{IP_ADDR_COMMAND}'`).\n\
         # Run it again after `vagrant up`, `reload` or `destroy` (addresses and ports change).\n\
         #\n\
         # Host keys are checked against\n\
         #   {}\n\
         # (Vagrant's ssh-config turns checking off; ferry does not). The first run records them:\n\
         #   ferry run -i THIS_FILE --accept-new-host-keys playbooks/testbed.yml\n\
         # After `vagrant destroy`, the machines have new keys: delete that file.\n",
        cluster.dir.display(),
        known_hosts.display()
    ));
    out.push_str("all:\n  children:\n");
    for group in ["controller", "compute"] {
        let members: Vec<&VagrantHost> = cluster
            .hosts
            .iter()
            .filter(|h| h.group == Some(group))
            .collect();
        if members.is_empty() {
            continue;
        }
        out.push_str(&format!("    {group}:\n      hosts:\n"));
        for h in members {
            host_entry(&mut out, h, cluster, known_hosts, "        ");
        }
    }
    let ungrouped: Vec<&VagrantHost> = cluster.hosts.iter().filter(|h| h.group.is_none()).collect();
    if !ungrouped.is_empty() {
        out.push_str("  hosts:\n");
        for h in ungrouped {
            host_entry(&mut out, h, cluster, known_hosts, "    ");
        }
    }
    out
}

fn host_entry(
    out: &mut String,
    h: &VagrantHost,
    cluster: &VagrantCluster,
    known_hosts: &Path,
    indent: &str,
) {
    let v = |out: &mut String, key: &str, value: String| {
        out.push_str(&format!("{indent}  {key}: {value}\n"));
    };
    out.push_str(&format!("{indent}{}:\n", q(&h.name)));
    v(
        out,
        "ansible_host",
        q(h.ssh.hostname.as_deref().unwrap_or(&h.name)),
    );
    v(out, "ansible_port", h.ssh.port.unwrap_or(22).to_string());
    if let Some(user) = &h.ssh.user {
        v(out, "ansible_user", q(user));
    }
    let mut keys = h.ssh.identity_files.iter();
    if let Some(first) = keys.next() {
        v(out, "ansible_ssh_private_key_file", q(first));
    }
    let mut args = format!(
        "-o UserKnownHostsFile={} -o StrictHostKeyChecking=yes",
        shell_word(&known_hosts.display().to_string())
    );
    for k in keys {
        args.push_str(&format!(" -i {}", shell_word(k)));
    }
    v(out, "ansible_ssh_common_args", q(&args));
    v(out, "mgmt_ip", q(&h.mgmt_ip));
    if let Some((ip, iface)) = &h.migration {
        v(out, "migration_ip", q(ip));
        v(out, "migration_iface", q(iface));
        v(
            out,
            "migration_prefix",
            cluster.migration_prefix.to_string(),
        );
        v(out, "migration_mtu", cluster.migration_mtu.to_string());
    }
}

/// Where host keys go: `known_hosts` beside the inventory file `out`, or beside
/// the Vagrantfile (in `dir`) when the inventory goes to stdout. Absolute, so the
/// inventory works from any directory.
pub fn known_hosts_path(out: Option<&Path>, dir: &Path) -> Result<PathBuf, VagrantError> {
    let beside = match out {
        Some(out) => out.parent().unwrap_or(Path::new("")),
        None => dir,
    };
    let beside = if beside.as_os_str().is_empty() {
        Path::new(".")
    } else {
        beside
    };
    let abs = std::fs::canonicalize(beside).map_err(|e| VagrantError::Io {
        what: format!("directory {} (for known_hosts)", beside.display()),
        source: e,
    })?;
    Ok(abs.join("known_hosts"))
}

/// How to run Vagrant: the program (normally `vagrant` from PATH) and the
/// directory holding the Vagrantfile.
#[derive(Debug, Clone)]
pub struct VagrantDir {
    pub program: OsString,
    pub dir: PathBuf,
}

impl VagrantDir {
    pub fn new(dir: &Path) -> VagrantDir {
        VagrantDir {
            program: "vagrant".into(),
            dir: dir.to_path_buf(),
        }
    }

    fn program_name(&self) -> String {
        self.program.to_string_lossy().into_owned()
    }

    /// Runs `vagrant ARGS` in the directory, output captured.
    fn run(&self, args: &[&str], env: &[(&str, &Path)]) -> Result<Output, VagrantError> {
        let mut cmd = Command::new(&self.program);
        cmd.args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            // --dir says where the Vagrantfile is; VAGRANT_CWD would point Vagrant elsewhere.
            .env_remove("VAGRANT_CWD")
            .env("VAGRANT_NO_COLOR", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                VagrantError::NotInstalled {
                    program: self.program_name(),
                }
            } else {
                VagrantError::Spawn {
                    program: self.program_name(),
                    source: e,
                }
            }
        })
    }

    fn vagrantfile_exists(&self) -> bool {
        // Vagrant reads VAGRANT_VAGRANTFILE, else `Vagrantfile` or `vagrantfile`.
        match std::env::var_os("VAGRANT_VAGRANTFILE") {
            Some(name) => self.dir.join(name).is_file(),
            None => ["Vagrantfile", "vagrantfile"]
                .iter()
                .any(|n| self.dir.join(n).is_file()),
        }
    }
}

fn status_text(out: &Output) -> String {
    match out.status.code() {
        Some(c) => format!("exit status {c}"),
        None => out.status.to_string(),
    }
}

/// Vagrant's message, on one line (it wraps its messages at 72 columns).
fn one_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Asks Vagrant about the cluster in `vagrant.dir`: `vagrant ssh-config` (with
/// `FERRY_PLAN` set, so the Vagrantfile writes its plan), then one `vagrant ssh`
/// per machine on the migration network (in parallel) for its addresses.
pub fn read_cluster(vagrant: &VagrantDir) -> Result<VagrantCluster, VagrantError> {
    let dir = &vagrant.dir;
    if !vagrant.vagrantfile_exists() {
        return Err(VagrantError::NoVagrantfile { dir: dir.clone() });
    }
    let plan_file = tempfile::Builder::new()
        .prefix("ferry-vagrant-plan-")
        .suffix(".json")
        .tempfile()
        .map_err(|e| VagrantError::Io {
            what: "temporary file for the Vagrantfile's plan".into(),
            source: e,
        })?;
    let out = vagrant.run(&["ssh-config"], &[("FERRY_PLAN", plan_file.path())])?;
    let plan_text = std::fs::read_to_string(plan_file.path()).map_err(|e| VagrantError::Io {
        what: format!("read {}", plan_file.path().display()),
        source: e,
    })?;
    let plan = if plan_text.trim().is_empty() {
        None
    } else {
        Some(NetworkPlan::parse(&plan_text)?)
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let says = one_line(&out.stderr);
        if says.contains(SSH_NOT_READY) {
            let mut missing: Vec<String> = machine_states(vagrant)
                .into_iter()
                .filter(|(_, state)| state != "running")
                .map(|(name, state)| format!("{name} ({state})"))
                .collect();
            if missing.is_empty() {
                // `vagrant status` did not answer: Vagrant stops ssh-config at the
                // first machine not ready, so these are that one and the ones after it.
                let listed = parse_ssh_config(&stdout).unwrap_or_default();
                missing = match &plan {
                    Some(p) => p
                        .machines
                        .iter()
                        .filter(|m| !listed.iter().any(|h| h.name == m.name))
                        .map(|m| m.name.clone())
                        .collect(),
                    None => vec!["(vagrant status did not say which)".to_string()],
                };
            }
            return Err(VagrantError::NotRunning {
                dir: dir.clone(),
                missing,
                vagrant_says: says,
            });
        }
        return Err(VagrantError::Failed {
            dir: dir.clone(),
            command: "ssh-config".into(),
            status: status_text(&out),
            stderr: says,
        });
    }
    let ssh = parse_ssh_config(&stdout)?;
    let plan = plan.ok_or_else(|| VagrantError::NoPlan { dir: dir.clone() })?;
    let probed: Vec<&PlannedMachine> = plan
        .machines
        .iter()
        .filter(|m| m.migration_ip.is_some())
        .collect();
    let answers: Vec<Result<(String, Vec<NicAddress>), VagrantError>> = std::thread::scope(|s| {
        let handles: Vec<_> = probed
            .iter()
            .map(|m| s.spawn(move || probe_nics(vagrant, &m.name)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a probe thread does not panic"))
            .collect()
    });
    let mut nics = HashMap::new();
    for a in answers {
        let (name, addrs) = a?;
        nics.insert(name, addrs);
    }
    build_cluster(dir, &ssh, &plan, &nics)
}

/// Each machine's state, from `vagrant status --machine-readable`
/// (`TIMESTAMP,NAME,state,STATE` lines); empty when Vagrant does not answer.
fn machine_states(vagrant: &VagrantDir) -> Vec<(String, String)> {
    match vagrant.run(&["status", "--machine-readable"], &[]) {
        Ok(out) if out.status.success() => {
            parse_machine_states(&String::from_utf8_lossy(&out.stdout))
        }
        _ => Vec::new(),
    }
}

fn probe_nics(
    vagrant: &VagrantDir,
    machine: &str,
) -> Result<(String, Vec<NicAddress>), VagrantError> {
    let out = vagrant.run(&["ssh", machine, "--no-tty", "-c", IP_ADDR_COMMAND], &[])?;
    if !out.status.success() {
        return Err(VagrantError::ProbeFailed {
            machine: machine.to_string(),
            status: status_text(&out),
            stderr: one_line(&out.stderr),
        });
    }
    Ok((
        machine.to_string(),
        parse_ip_addr(&String::from_utf8_lossy(&out.stdout)),
    ))
}

#[cfg(test)]
mod tests;
