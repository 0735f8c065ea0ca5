//! The scheduler: a play's hosts in `serial` batches, each section walked under the
//! strategy (linear: a task on every host before the next; free: each host on its own),
//! handlers flushed between sections, failed hosts left out of later plays.

use std::sync::Mutex;
use std::sync::atomic::Ordering;

use futures::future::join_all;
use serde_json::Value;

use crate::playbook::{Play, Task, TaskKeywords};
use crate::yaml::SourceLoc;

use super::blocks::Inherit;
use super::hosts::HostsError;
use super::play_run::PlayRun;
use super::{Engine, EventKind, Strategy};

impl Engine {
    pub(super) async fn run_play(&self, play: &Play) -> Result<(), PlayError> {
        let dead = self.dead.lock().unwrap().clone();
        let selected: Vec<String> = self
            .hosts
            .select(&play.hosts)
            .map_err(|source| PlayError::Hosts {
                loc: play.loc.clone(),
                hosts: play.hosts.clone(),
                source,
            })?
            .into_iter()
            .filter(|h| !dead.contains(h))
            .collect();
        let name = play.name.clone().unwrap_or_else(|| play.hosts.clone());
        self.emit(EventKind::PlayStart {
            play: name,
            hosts: selected.clone(),
        });
        if selected.is_empty() {
            self.warn(None, format!("no hosts matched `{}`", play.hosts));
            return Ok(());
        }
        {
            let mut stats = self.stats.lock().unwrap();
            for h in &selected {
                stats.entry(h.clone()).or_default();
            }
        }
        for batch in serial_batches(&play.serial, &selected)? {
            if self.interrupted() {
                break;
            }
            let epoch = self.inv_epoch.load(Ordering::SeqCst);
            let base = batch
                .iter()
                .map(|h| Mutex::new((epoch, self.host_layers(h))))
                .collect();
            let pr = PlayRun::new(play, batch, base);
            let all: Vec<usize> = (0..pr.names.len()).collect();
            let root = Inherit::root(play);
            if play.gather_facts.unwrap_or(true) {
                let gather = Task {
                    name: Some("Gathering Facts".into()),
                    op: "setup".into(),
                    keywords: TaskKeywords {
                        tags: vec!["always".into()],
                        ..TaskKeywords::default()
                    },
                    loc: play.loc.clone(),
                    ..Task::default()
                };
                let kw = root.child(&gather.keywords);
                self.run_task(&pr, &gather, &kw, false, all.clone(), false)
                    .await;
            }
            for (i, section) in [
                &play.pre_tasks[..],
                &play.role_tasks[..],
                &play.tasks[..],
                &play.post_tasks[..],
            ]
            .into_iter()
            .enumerate()
            {
                match self.opts.strategy {
                    Strategy::Linear => self.walk(&pr, section, all.clone(), &root).await,
                    Strategy::Free => {
                        join_all(all.iter().map(|&h| self.walk(&pr, section, vec![h], &root)))
                            .await;
                    }
                }
                // Handlers run after pre_tasks, after roles+tasks, and after post_tasks.
                if i != 1 {
                    self.flush_handlers(&pr, &all).await;
                }
            }
            let mut all_failed = true;
            for (h, name) in pr.names.iter().enumerate() {
                let s = pr.state(h);
                if s.failed {
                    self.failed_hosts.lock().unwrap().insert(name.clone());
                }
                if s.failed || s.unreachable {
                    self.dead.lock().unwrap().insert(name.clone());
                } else {
                    all_failed = false;
                }
            }
            if all_failed {
                break;
            }
        }
        Ok(())
    }
}

/// A play that cannot start: its `hosts:` selects nothing it can, or its `serial:` does not read.
#[derive(Debug, thiserror::Error)]
pub enum PlayError {
    #[error("{loc}: hosts `{hosts}`: {source}")]
    Hosts {
        loc: SourceLoc,
        hosts: String,
        source: HostsError,
    },
    #[error(transparent)]
    Serial(#[from] SerialError),
}

/// A `serial:` entry that is no batch size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SerialError {
    #[error("serial: `{0}` is not a percentage")]
    NotAPercentage(String),
    #[error("serial: `{0}` is neither a number nor a percentage")]
    NotASize(String),
}

/// Split hosts into `serial` batches (numbers or percentages; the last size repeats).
pub fn serial_batches(serial: &[Value], hosts: &[String]) -> Result<Vec<Vec<String>>, SerialError> {
    if serial.is_empty() {
        return Ok(vec![hosts.to_vec()]);
    }
    let total = hosts.len();
    let size = |v: &Value| -> Result<usize, SerialError> {
        let n = match v {
            Value::Number(n) => n.as_f64().unwrap_or(0.0) as usize,
            Value::String(s) if s.trim().ends_with('%') => {
                let p: f64 = s
                    .trim()
                    .trim_end_matches('%')
                    .trim()
                    .parse()
                    .map_err(|_| SerialError::NotAPercentage(s.clone()))?;
                ((total as f64) * p / 100.0).floor() as usize
            }
            Value::String(s) => s
                .trim()
                .parse()
                .map_err(|_| SerialError::NotASize(s.clone()))?,
            other => {
                return Err(SerialError::NotASize(other.to_string()));
            }
        };
        Ok(n.max(1))
    };
    let mut batches = Vec::new();
    let mut rest = hosts;
    let mut i = 0;
    while !rest.is_empty() {
        let n = size(&serial[i.min(serial.len() - 1)])?.min(rest.len());
        batches.push(rest[..n].to_vec());
        rest = &rest[n..];
        i += 1;
    }
    Ok(batches)
}
