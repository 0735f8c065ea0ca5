//! `ferry bench provision --vs pyinfra|ansible`: the same workload run by another tool on
//! the same hosts, in the same run, so ratios compare like with like.
//!
//! The Ansible playbook is ferry's workload written out as JSON (a YAML subset Ansible
//! reads); the pyinfra deploy is the same tasks as pyinfra operations (`files.directory`,
//! `files.put`, `files.template`, a `server.shell` guarded by `test -e`, `files.line`, a
//! read-only `server.shell`). Each tool is looked up on PATH, then in
//! `/opt/ferry/<tool>-venv/bin` (`FERRY_ANSIBLE_VENV` / `FERRY_PYINFRA_VENV`); asked for and
//! missing is an error that says how to install it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use miette::{IntoDiagnostic, miette};
use serde_json::{Value, json};

use crate::cli::Peer;
use crate::playbook::{Playbook, TaskItem, Vars};

impl Peer {
    fn program(self) -> &'static str {
        match self {
            Peer::Pyinfra => "pyinfra",
            Peer::Ansible => "ansible-playbook",
        }
    }

    fn venv(self) -> PathBuf {
        let (var, dir) = match self {
            Peer::Pyinfra => ("FERRY_PYINFRA_VENV", "/opt/ferry/pyinfra-venv"),
            Peer::Ansible => ("FERRY_ANSIBLE_VENV", "/opt/ferry/ansible-venv"),
        };
        std::env::var_os(var)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(dir))
    }

    fn install_hint(self) -> String {
        let pkg = match self {
            Peer::Pyinfra => "pyinfra",
            Peer::Ansible => "ansible-core",
        };
        let v = self.venv();
        format!(
            "install it: `python3 -m venv {v} && {v}/bin/pip install {pkg}` (or put `{}` on PATH)",
            self.program(),
            v = v.display()
        )
    }

    /// The tool's program: on PATH, else in its venv; missing is an error naming the fix.
    pub fn find(self) -> miette::Result<PathBuf> {
        let name = self.program();
        let on_path = std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .find(|f| f.is_file())
        });
        let in_venv = Some(self.venv().join("bin").join(name)).filter(|f| f.is_file());
        on_path.or(in_venv).ok_or_else(|| {
            miette!(
                "--vs {}: `{name}` not found on PATH nor in {}/bin; {}",
                self.label(),
                self.venv().display(),
                self.install_hint()
            )
        })
    }

    pub fn label(self) -> &'static str {
        match self {
            Peer::Pyinfra => "pyinfra",
            Peer::Ansible => "ansible",
        }
    }
}

/// A peer's inputs, written once into `dir`.
pub struct PeerRun {
    peer: Peer,
    program: PathBuf,
    args: Vec<String>,
}

impl PeerRun {
    /// Writes the peer's version of `pb` for `hosts` (name, variables) into `dir`.
    pub fn prepare(
        peer: Peer,
        pb: &Playbook,
        hosts: &[(String, Vars)],
        inventory: &[PathBuf],
        dir: &Path,
    ) -> miette::Result<PeerRun> {
        let program = peer.find()?;
        let forks = hosts.len().max(1).to_string();
        let args = match peer {
            Peer::Ansible => {
                let file = dir.join("bench.json");
                std::fs::write(&file, ansible_playbook(pb).to_string()).into_diagnostic()?;
                let mut a = vec!["-f".to_string(), forks];
                for i in inventory {
                    a.push("-i".into());
                    a.push(i.display().to_string());
                }
                a.push(file.display().to_string());
                a
            }
            Peer::Pyinfra => {
                let inv = dir.join("inventory.py");
                std::fs::write(&inv, pyinfra_inventory(hosts)?).into_diagnostic()?;
                let deploy = dir.join("deploy.py");
                std::fs::write(&deploy, pyinfra_deploy(pb)?).into_diagnostic()?;
                vec![
                    "-y".into(),
                    "--parallel".into(),
                    forks,
                    inv.display().to_string(),
                    deploy.display().to_string(),
                ]
            }
        };
        Ok(PeerRun {
            peer,
            program,
            args,
        })
    }

    pub fn label(&self) -> &'static str {
        self.peer.label()
    }

    /// Runs the peer once; its wall time in seconds. A failed run is an error with the
    /// end of its output.
    pub fn run(&self) -> miette::Result<f64> {
        let start = Instant::now();
        let mut cmd = std::process::Command::new(&self.program);
        cmd.args(&self.args);
        if self.peer == Peer::Ansible {
            // As a user tuning Ansible for speed would: pipelining, no retry files.
            cmd.env("ANSIBLE_PIPELINING", "True")
                .env("ANSIBLE_RETRY_FILES_ENABLED", "False")
                .env("ANSIBLE_PYTHON_INTERPRETER", "auto_silent");
        }
        let out = cmd.output().into_diagnostic()?;
        let wall = start.elapsed().as_secs_f64();
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout);
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            return Err(miette!(
                "{} failed ({}):\n{}\n{}",
                self.program.display(),
                out.status,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(wall)
    }
}

/// Each task of the (one-play) workload: name, op, arguments with the free-form command
/// as `cmd`, and whether its `changed_when` is false.
fn tasks(pb: &Playbook) -> Vec<(String, String, serde_json::Map<String, Value>, bool)> {
    let mut out = Vec::new();
    for play in &pb.plays {
        for item in &play.tasks {
            if let TaskItem::Task(t) = item {
                let mut args = serde_json::Map::new();
                for (k, v) in &t.args {
                    let k = if k == "_raw_params" {
                        "cmd"
                    } else {
                        k.as_str()
                    };
                    args.insert(k.to_string(), v.clone());
                }
                out.push((
                    t.name.clone().unwrap_or_default(),
                    t.op.clone(),
                    args,
                    t.changed_when.iter().any(|c| c == "false"),
                ));
            }
        }
    }
    out
}

/// The workload as an Ansible playbook (JSON).
fn ansible_playbook(pb: &Playbook) -> Value {
    let tasks: Vec<Value> = tasks(pb)
        .into_iter()
        .map(|(name, op, args, unchanged)| {
            let mut t = serde_json::Map::new();
            t.insert("name".into(), Value::String(name));
            t.insert(op, Value::Object(args));
            if unchanged {
                t.insert("changed_when".into(), Value::Bool(false));
            }
            Value::Object(t)
        })
        .collect();
    json!([{ "name": "bench provision", "hosts": "all", "gather_facts": false, "tasks": tasks }])
}

fn py(v: &Value) -> String {
    // A JSON string is a valid Python string literal.
    match v {
        Value::String(s) => serde_json::to_string(s).expect("string"),
        other => serde_json::to_string(&other.to_string()).expect("string"),
    }
}

/// The workload as a pyinfra deploy.
fn pyinfra_deploy(pb: &Playbook) -> miette::Result<String> {
    let mut s = String::from(
        "from io import StringIO\nfrom pyinfra import host\nfrom pyinfra.operations import files, server\n\n",
    );
    for (name, op, a, _) in tasks(pb) {
        let get = |k: &str| a.get(k).map(py).unwrap_or_else(|| "None".into());
        let n = py(&Value::String(name));
        let line = match op.as_str() {
            "file" => format!(
                "files.directory(name={n}, path={}, mode={})",
                get("path"),
                get("mode")
            ),
            "copy" => format!(
                "files.put(name={n}, src=StringIO({}), dest={}, mode={})",
                get("content"),
                get("dest"),
                get("mode")
            ),
            "template" => format!(
                "files.template(name={n}, src={}, dest={}, mode={}, inventory_hostname=host.name, ansible_host=host.data.get(\"ansible_host\", \"local\"))",
                get("src"),
                get("dest"),
                get("mode")
            ),
            "shell" => format!(
                "server.shell(name={n}, commands=[\"test -e \" + {c} + \" || {{ \" + {cmd} + \"; }}\"])",
                c = get("creates"),
                cmd = get("cmd")
            ),
            "lineinfile" => format!(
                "files.line(name={n}, path={}, line={})",
                get("path"),
                get("line")
            ),
            "command" => format!("server.shell(name={n}, commands=[{}])", get("cmd")),
            other => return Err(miette!("no pyinfra version of the `{other}` task")),
        };
        s.push_str(&line);
        s.push('\n');
    }
    Ok(s)
}

/// The hosts as a pyinfra inventory: inventory names, reached as the inventory says.
fn pyinfra_inventory(hosts: &[(String, Vars)]) -> miette::Result<String> {
    let mut s = String::from("hosts = [\n");
    for (name, vars) in hosts {
        let p = crate::transport::ConnectParams::from_host_vars(
            name,
            vars,
            &crate::transport::ConnectDefaults::default(),
        )
        .map_err(|e| miette!("{e}"))?;
        let key = p
            .identity_files
            .first()
            .ok_or_else(|| miette!("{name}: no private key file"))?;
        let known = p
            .known_hosts
            .files
            .first()
            .ok_or_else(|| miette!("{name}: no known_hosts file"))?;
        let data = json!({
            "ssh_hostname": p.host,
            "ssh_port": p.port,
            "ssh_user": p.user,
            "ssh_key": key.display().to_string(),
            "ssh_known_hosts_file": known.display().to_string(),
            "ssh_strict_host_key_checking": "yes",
            "ansible_host": p.host,
        });
        s.push_str(&format!(
            "    ({}, {data}),\n",
            py(&Value::String(name.clone()))
        ));
    }
    s.push_str("]\n");
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ansible_playbook_has_every_task_with_free_form_as_cmd() {
        let pb = crate::cmd::bench_tree::workload(6, Path::new("/t.j2"));
        let v = ansible_playbook(&pb);
        let tasks = v[0]["tasks"].as_array().unwrap();
        assert_eq!(tasks.len(), 6);
        assert_eq!(tasks[3]["shell"]["creates"], "/tmp/ferry-bench/d0/stamp3");
        assert!(
            tasks[3]["shell"]["cmd"]
                .as_str()
                .unwrap()
                .starts_with("date > ")
        );
        assert_eq!(tasks[5]["changed_when"], false);
    }

    #[test]
    fn the_pyinfra_deploy_has_every_task() {
        let pb = crate::cmd::bench_tree::workload(6, Path::new("/t.j2"));
        let d = pyinfra_deploy(&pb).unwrap();
        assert_eq!(d.lines().filter(|l| l.contains("(name=")).count(), 6, "{d}");
        assert!(d.contains("files.line(name=\"lineinfile 4\""), "{d}");
    }
}
