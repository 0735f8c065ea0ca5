//! The tree `ferry bench provision`'s workload leaves on a host, and the check that a
//! host holds exactly that tree (or, before run 1, nothing at all).
//!
//! The workload (see [`workload`]) writes under [`ROOT`]; the
//! check lists that directory on every host in one command (type, mode, path, and the
//! content of every file whose content is known) and compares it with what the
//! workload's definition says, so a run that "succeeded" but wrote the wrong thing fails
//! the benchmark. The same check follows the peers' runs (`--vs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::playbook::{Play, Playbook, Task, TaskItem, Vars};
use crate::transport::{CommandSpec, ConnectDefaults, ConnectParams, Transport, TransportError};

/// Where the workload writes on every host.
pub const ROOT: &str = "/tmp/ferry-bench";

/// One entry of the tree: a directory, or a file with its content (`None`: its content
/// is not known in advance, e.g. a `date` stamp).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir { mode: u32 },
    File { mode: u32, content: Option<String> },
}

/// The tree `tasks` tasks of the workload leave on host `name` (`ansible_host` from its
/// variables, as the template renders it), by path relative to [`ROOT`].
pub fn expected(tasks: u32, host_vars: &Vars, name: &str) -> BTreeMap<String, Entry> {
    let ansible_host = host_vars
        .get("ansible_host")
        .and_then(|v| v.as_str())
        .unwrap_or("local")
        .to_string();
    let mut tree = BTreeMap::new();
    let mut lines: BTreeMap<String, String> = BTreeMap::new();
    for i in 0..tasks.saturating_sub(1) {
        let d = format!("d{}", i / 5);
        match i % 5 {
            0 => {
                tree.insert(d, Entry::Dir { mode: 0o755 });
            }
            1 => {
                tree.insert(
                    format!("{d}/copy{i}"),
                    Entry::File {
                        mode: 0o644,
                        content: Some(format!("small file {i}\n")),
                    },
                );
            }
            2 => {
                tree.insert(
                    format!("{d}/tmpl{i}"),
                    Entry::File {
                        mode: 0o644,
                        content: Some(format!("host {name} at {ansible_host}\n")),
                    },
                );
            }
            3 => {
                tree.insert(
                    format!("{d}/stamp{i}"),
                    Entry::File {
                        mode: 0o644,
                        content: None,
                    },
                );
            }
            _ => lines
                .entry(format!("{d}/lines"))
                .or_default()
                .push_str(&format!("line {i}\n")),
        }
    }
    for (path, text) in lines {
        tree.insert(
            path,
            Entry::File {
                mode: 0o644,
                content: Some(text),
            },
        );
    }
    tree
}

/// Lists [`ROOT`] on a host: per entry a header line `d MODE PATH` or `f MODE SIZE PATH`
/// (mode in octal, path relative to ROOT), followed for files by their content; `none`
/// when ROOT does not exist.
const LIST: &str = "cd /tmp/ferry-bench 2>/dev/null || { echo none; exit 0; }\n\
find . -mindepth 1 | LC_ALL=C sort | while IFS= read -r f; do\n\
  p=${f#./}\n\
  if [ -d \"$f\" ] && [ ! -L \"$f\" ]; then printf 'd %s %s\\n' \"$(stat -c %a \"$f\")\" \"$p\"\n\
  else printf 'f %s %s %s\\n' \"$(stat -c %a \"$f\")\" \"$(stat -c %s \"$f\")\" \"$p\"; cat \"$f\"; fi\n\
done";

/// Why a host gave no listing, or one that does not read.
#[derive(Debug, thiserror::Error)]
enum AnswerError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("rc {rc}: {stderr}")]
    Failed { rc: i32, stderr: String },
    #[error(transparent)]
    Join(#[from] tokio::task::JoinError),
    #[error("listing ends inside a header")]
    Truncated,
    #[error("bad {what} in {header:?}")]
    Header { what: &'static str, header: String },
    #[error("{0}: listing cut short")]
    CutShort(String),
    #[error("unexpected listing line {0:?}")]
    Unexpected(String),
}

/// Parses [`LIST`]'s output into a tree (stamp contents included; see [`differences`]).
fn parse_listing(out: &[u8]) -> Result<Option<BTreeMap<String, Entry>>, AnswerError> {
    if out == b"none\n" {
        return Ok(None);
    }
    let mut tree = BTreeMap::new();
    let mut rest = out;
    while !rest.is_empty() {
        let nl = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(AnswerError::Truncated)?;
        let header = String::from_utf8_lossy(&rest[..nl]).to_string();
        rest = &rest[nl + 1..];
        let mut f = header.splitn(4, ' ');
        let kind = f.next().unwrap_or("");
        let mode =
            u32::from_str_radix(f.next().unwrap_or(""), 8).map_err(|_| AnswerError::Header {
                what: "mode",
                header: header.clone(),
            })?;
        match kind {
            "d" => {
                let path = f.collect::<Vec<_>>().join(" ");
                tree.insert(path, Entry::Dir { mode });
            }
            "f" => {
                let size: usize =
                    f.next()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| AnswerError::Header {
                            what: "size",
                            header: header.clone(),
                        })?;
                let path = f.next().unwrap_or("").to_string();
                if rest.len() < size {
                    return Err(AnswerError::CutShort(path));
                }
                let content = String::from_utf8_lossy(&rest[..size]).to_string();
                rest = &rest[size..];
                tree.insert(
                    path,
                    Entry::File {
                        mode,
                        content: Some(content),
                    },
                );
            }
            _ => return Err(AnswerError::Unexpected(header)),
        }
    }
    Ok(Some(tree))
}

/// What differs between the tree found and the one expected, one line each (a file
/// whose expected content is `None` only has to exist with its mode).
pub fn differences(found: &BTreeMap<String, Entry>, want: &BTreeMap<String, Entry>) -> Vec<String> {
    let mut out = Vec::new();
    for (path, w) in want {
        match (found.get(path), w) {
            (None, _) => out.push(format!("{path}: missing")),
            (
                Some(Entry::File { mode, content }),
                Entry::File {
                    mode: wm,
                    content: wc,
                },
            ) => {
                if mode != wm {
                    out.push(format!("{path}: mode {mode:o}, expected {wm:o}"));
                }
                if wc.is_some() && content != wc {
                    out.push(format!("{path}: content {content:?}, expected {wc:?}"));
                }
            }
            (Some(Entry::Dir { mode }), Entry::Dir { mode: wm }) => {
                if mode != wm {
                    out.push(format!("{path}: mode {mode:o}, expected {wm:o}"));
                }
            }
            (Some(f), _) => out.push(format!("{path}: {f:?}, expected {w:?}")),
        }
    }
    for path in found.keys() {
        if !want.contains_key(path) {
            out.push(format!("{path}: not expected"));
        }
    }
    out
}

/// Connects to every host at once and runs `script` on each; the answers by host name.
async fn on_every_host(
    hosts: &[(String, Vars)],
    script: &str,
) -> Vec<(String, Result<Vec<u8>, AnswerError>)> {
    let futs = hosts.iter().map(|(name, vars)| {
        let name = name.clone();
        let vars = vars.clone();
        let script = script.to_string();
        tokio::spawn(async move {
            let res = async {
                let p = ConnectParams::from_host_vars(&name, &vars, &ConnectDefaults::default())?;
                let t: Arc<dyn Transport> = crate::transport::connect(&p).await?;
                let out = t.run(&CommandSpec::new(script)).await;
                t.close().await;
                let out = out?;
                if out.rc != 0 {
                    return Err(AnswerError::Failed {
                        rc: out.rc,
                        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                    });
                }
                Ok(out.stdout)
            }
            .await;
            (name, res)
        })
    });
    let mut out = Vec::new();
    for h in futs.collect::<Vec<_>>() {
        match h.await {
            Ok(r) => out.push(r),
            Err(e) => out.push((String::new(), Err(e.into()))),
        }
    }
    out
}

/// Hosts that could not be cleared, or that do not hold the workload's tree.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("clearing {ROOT} failed on {} hosts: {}", failed.len(), failed.join("; "))]
    NotCleared {
        /// `host: why`, one per host.
        failed: Vec<String>,
    },
    #[error("{count} of {total} hosts do not hold the expected tree under {ROOT}: {}", described.join(" | "))]
    Differs {
        count: usize,
        total: usize,
        /// `host: first differences`, for the first hosts.
        described: Vec<String>,
    },
}

/// Removes [`ROOT`] on every host, so the next run starts from nothing.
pub async fn clear(hosts: &[(String, Vars)]) -> Result<(), TreeError> {
    let failed: Vec<String> = on_every_host(hosts, &format!("rm -rf {ROOT}"))
        .await
        .into_iter()
        .filter_map(|(n, r)| r.err().map(|e| format!("{n}: {e}")))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(TreeError::NotCleared { failed })
    }
}

/// Checks that every host holds exactly the tree of `tasks` tasks; the hosts that do
/// not, with the first differences of each (at most `limit` hosts described).
pub async fn check(hosts: &[(String, Vars)], tasks: u32, limit: usize) -> Result<(), TreeError> {
    let mut bad = Vec::new();
    let mut count = 0;
    for (name, res) in on_every_host(hosts, LIST).await {
        let vars = hosts
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let want = expected(tasks, &vars, &name);
        let diffs = match res.and_then(|out| parse_listing(&out)) {
            Ok(Some(found)) => differences(&found, &want),
            Ok(None) => vec![format!("{ROOT} does not exist")],
            Err(e) => vec![format!("cannot list {ROOT}: {e}")],
        };
        if !diffs.is_empty() {
            count += 1;
            if bad.len() < limit {
                let first: Vec<String> = diffs.into_iter().take(3).collect();
                bad.push(format!("{name}: {}", first.join("; ")));
            }
        }
    }
    if count == 0 {
        Ok(())
    } else {
        Err(TreeError::Differs {
            count,
            total: hosts.len(),
            described: bad,
        })
    }
}

/// The benchmark's tasks for one host, cycling through: ensure a directory (0755), copy a
/// small file (0644), template a small file with host vars (`template`, the controller file
/// given), a shell command guarded by `creates:`, a lineinfile with `create: true`; the last
/// task is a read-only `command: cat` with `changed_when: false`.
pub fn workload(tasks: u32, template: &std::path::Path) -> Playbook {
    let root = ROOT;
    let mut items = Vec::new();
    let mk = |name: String, op: &str, args: Value| {
        let mut t = Task {
            name: Some(name),
            op: op.into(),
            ..Task::default()
        };
        if let Value::Object(m) = args {
            t.args.extend(m);
        }
        t
    };
    for i in 0..tasks.saturating_sub(1) {
        let d = format!("{root}/d{}", i / 5);
        let t = match i % 5 {
            0 => mk(
                format!("directory {i}"),
                "file",
                json!({"path": d, "state": "directory", "mode": "0755"}),
            ),
            1 => mk(
                format!("copy {i}"),
                "copy",
                json!({"content": format!("small file {i}\n"), "dest": format!("{d}/copy{i}"), "mode": "0644"}),
            ),
            2 => mk(
                format!("template {i}"),
                "template",
                json!({"src": template.display().to_string(), "dest": format!("{d}/tmpl{i}"), "mode": "0644"}),
            ),
            3 => mk(
                format!("guarded shell {i}"),
                "shell",
                json!({"_raw_params": format!("date > {d}/stamp{i}"), "creates": format!("{d}/stamp{i}")}),
            ),
            _ => mk(
                format!("lineinfile {i}"),
                "lineinfile",
                json!({"path": format!("{d}/lines"), "line": format!("line {i}"), "create": true}),
            ),
        };
        items.push(TaskItem::Task(t));
    }
    let mut last = mk(
        "read back".into(),
        "command",
        json!({"_raw_params": format!("cat {root}/d0/copy1")}),
    );
    last.changed_when = vec!["false".into()];
    items.push(TaskItem::Task(last));
    Playbook {
        path: PathBuf::from("<bench>"),
        plays: vec![Play {
            name: Some("bench provision".into()),
            hosts: "all".into(),
            gather_facts: Some(false),
            tasks: items,
            ..Play::default()
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_tree_of_the_workload() {
        let mut vars = Vars::default();
        vars.insert("ansible_host".into(), "10.1.0.2".into());
        let t = expected(11, &vars, "h1");
        assert_eq!(t.get("d0"), Some(&Entry::Dir { mode: 0o755 }));
        assert_eq!(
            t.get("d1/tmpl7"),
            Some(&Entry::File {
                mode: 0o644,
                content: Some("host h1 at 10.1.0.2\n".into())
            })
        );
        assert_eq!(
            t.get("d0/lines"),
            Some(&Entry::File {
                mode: 0o644,
                content: Some("line 4\n".into())
            })
        );
        // 10 workload tasks: 2 dirs, 2 copies, 2 templates, 2 stamps, 1 lines file (d1's
        // lineinfile is task 9, which exists; task 10 is the read-back).
        assert_eq!(t.len(), 2 + 2 + 2 + 2 + 2);
    }

    #[test]
    fn a_listing_parses_and_a_wrong_file_is_named() {
        let out = b"d 755 d0\nf 644 11 d0/copy1\nsmall file\nf 600 3 d0/stamp3\nabc";
        let found = parse_listing(out).unwrap().unwrap();
        let mut want = BTreeMap::new();
        want.insert("d0".to_string(), Entry::Dir { mode: 0o755 });
        want.insert(
            "d0/copy1".to_string(),
            Entry::File {
                mode: 0o644,
                content: Some("small file 1\n".into()),
            },
        );
        want.insert(
            "d0/stamp3".to_string(),
            Entry::File {
                mode: 0o644,
                content: None,
            },
        );
        let d = differences(&found, &want);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].starts_with("d0/copy1: content"), "{d:?}");
        assert!(d[1].starts_with("d0/stamp3: mode 600"), "{d:?}");
        assert_eq!(parse_listing(b"none\n").unwrap(), None);
    }
}
