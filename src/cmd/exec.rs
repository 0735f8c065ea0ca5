//! `ferry exec`: one ad-hoc command on the hosts matching a pattern, run as a one-task play.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::{become_password, connector, drive, extra_vars, load_hosts};
use crate::CmdResult;
use crate::cli::ExecArgs;
use crate::engine::{Engine, EventSink, RunOptions};
use crate::playbook::{Play, Playbook, Task, TaskItem};
use crate::report::AdhocReporter;

/// The one-task playbook `ferry exec` runs: one word is a shell line, several are argv.
pub fn adhoc_playbook(
    pattern: &str,
    command: &[String],
    become_: bool,
    timeout: Option<u64>,
) -> Playbook {
    let mut task = Task {
        name: Some(command.join(" ")),
        ..Task::default()
    };
    if command.len() == 1 {
        task.op = "shell".into();
        task.args
            .insert("_raw_params".into(), Value::String(command[0].clone()));
    } else {
        task.op = "command".into();
        task.args.insert(
            "argv".into(),
            Value::Array(command.iter().cloned().map(Value::String).collect()),
        );
    }
    task.keywords.become_ = Some(become_);
    task.keywords.timeout = timeout.map(|t| t as f64);
    Playbook {
        path: PathBuf::from("<exec>"),
        plays: vec![Play {
            name: Some(format!("exec on {pattern}")),
            hosts: pattern.to_string(),
            gather_facts: Some(false),
            tasks: vec![TaskItem::Task(task)],
            ..Play::default()
        }],
    }
}

pub fn exec(args: ExecArgs) -> CmdResult {
    let extra_vars = extra_vars(&args.inv)?;
    let hosts = load_hosts(&args.inv)?;
    let playbook = adhoc_playbook(&args.pattern, &args.command, args.become_, args.timeout);
    let opts = RunOptions {
        forks: args.connect.forks,
        extra_vars,
        become_password: become_password(args.connect.ask_become_pass)?,
        default_timeout: args.timeout.map(Duration::from_secs),
        ..RunOptions::default()
    };
    let sink: Arc<dyn EventSink> = Arc::new(AdhocReporter::stdout());
    let engine = Engine::new(opts, hosts, connector((&args.connect).into()), sink);
    drive(engine, vec![playbook])
}
