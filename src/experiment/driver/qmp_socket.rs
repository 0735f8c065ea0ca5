//! QMP over a host-local Unix socket, reached through the host's transport: each
//! call is one `socat - UNIX-CONNECT:SOCKET` run with the commands on its stdin
//! (after `qmp_capabilities`). QEMU answers every command it read, in order,
//! then closes when socat half-closes; socat then exits. One round trip per
//! batch, no process left behind.

use serde_json::{Value, json};

use super::{DriverError, HostEnd};

/// How long one batch may take on the host (QEMU answers in milliseconds; a stuck
/// QEMU must not hang the run): coreutils `timeout`, seconds.
const BATCH_TIMEOUT_S: u32 = 30;

/// QEMU's answer to one command: its `return`, or its `error` (class and desc).
pub type QmpAnswer = Result<Value, QmpError>;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{class}: {desc}")]
pub struct QmpError {
    pub class: String,
    pub desc: String,
}

/// A QMP socket on a host.
#[derive(Debug, Clone)]
pub struct QmpSocket {
    pub path: String,
}

impl QmpSocket {
    pub fn new(path: impl Into<String>) -> Self {
        QmpSocket { path: path.into() }
    }

    /// Run `commands` (each `{"execute": ..., "arguments": ...}`) in one batch;
    /// one answer per command, in order.
    pub async fn execute(
        &self,
        host: &HostEnd,
        commands: &[Value],
    ) -> Result<Vec<QmpAnswer>, DriverError> {
        let mut input = String::from("{\"execute\":\"qmp_capabilities\",\"id\":0}\n");
        for (i, c) in commands.iter().enumerate() {
            let mut c = c.clone();
            c["id"] = json!(i + 1);
            input.push_str(&c.to_string());
            input.push('\n');
        }
        let cmd = format!(
            "timeout {BATCH_TIMEOUT_S} socat -t {BATCH_TIMEOUT_S} - UNIX-CONNECT:{}",
            crate::transport::remote::sh_quote(&self.path)
        );
        let out = host.sh_with(&cmd, Some(input.into_bytes()), None).await?;
        if out.rc != 0 {
            return Err(DriverError::Host {
                host: host.name.clone(),
                message: format!(
                    "QMP socket {}: socat exited {}: {}",
                    self.path,
                    out.rc,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        parse_answers(&String::from_utf8_lossy(&out.stdout), commands.len()).map_err(|m| {
            DriverError::Host {
                host: host.name.clone(),
                message: format!("QMP socket {}: {m}", self.path),
            }
        })
    }

    /// Run one command; its answer.
    pub async fn call(&self, host: &HostEnd, command: Value) -> Result<QmpAnswer, DriverError> {
        let mut a = self.execute(host, &[command]).await?;
        Ok(a.remove(0))
    }

    /// Run one command; its `return`, or an error naming the command.
    pub async fn call_ok(&self, host: &HostEnd, command: Value) -> Result<Value, DriverError> {
        let name = command["execute"].as_str().unwrap_or("?").to_string();
        self.call(host, command)
            .await?
            .map_err(|e| DriverError::Host {
                host: host.name.clone(),
                message: format!("QMP {name}: {e}"),
            })
    }
}

/// QMP output that does not answer the commands sent.
#[derive(Debug, thiserror::Error)]
enum AnswersError {
    #[error("not JSON ({source}): {line}")]
    NotJson {
        line: String,
        source: serde_json::Error,
    },
    #[error("no answer to command {index} of {n}: {out}")]
    Missing { index: usize, n: usize, out: String },
}

/// The answers to commands 1..=n in QMP output (greeting, events and the
/// capabilities answer skipped).
fn parse_answers(out: &str, n: usize) -> Result<Vec<QmpAnswer>, AnswersError> {
    let mut answers: Vec<Option<QmpAnswer>> = vec![None; n];
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).map_err(|source| AnswersError::NotJson {
            line: line.to_string(),
            source,
        })?;
        let Some(id) = v["id"].as_u64() else {
            continue; // the greeting or an event
        };
        if id == 0 || id as usize > n {
            continue;
        }
        let answer = match v.get("error") {
            Some(e) => Err(QmpError {
                class: e["class"].as_str().unwrap_or("").to_string(),
                desc: e["desc"].as_str().unwrap_or("").to_string(),
            }),
            None => Ok(v.get("return").cloned().unwrap_or(Value::Null)),
        };
        answers[id as usize - 1] = Some(answer);
    }
    answers
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            a.ok_or_else(|| AnswersError::Missing {
                index: i + 1,
                n,
                out: out.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_matched_by_id_and_events_skipped() {
        let out = r#"{"QMP": {"version": {}, "capabilities": ["oob"]}}
{"return": {}, "id": 0}
{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "MIGRATION", "data": {"status": "setup"}}
{"return": {"status": "active"}, "id": 1}
{"error": {"class": "GenericError", "desc": "nope"}, "id": 2}
"#;
        let a = parse_answers(out, 2).unwrap();
        assert_eq!(a[0].as_ref().unwrap()["status"], "active");
        assert_eq!(a[1].as_ref().unwrap_err().desc, "nope");
        assert!(
            parse_answers(out, 3)
                .unwrap_err()
                .to_string()
                .contains("no answer to command 3")
        );
    }
}
