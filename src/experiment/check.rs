//! `ferry check` for experiments: every experiment file and experiment play named on
//! the command line is read and resolved against the inventory (pair hosts exist and
//! have `migration_ip`, the prober exists), without connecting anywhere.

use std::path::PathBuf;

use super::source::{self, ExperimentSource};
use crate::inventory::Inventory;
use crate::playbook::diag::Problem;

/// What checking the experiments among some files found.
#[derive(Debug, Default)]
pub struct ExperimentCheck {
    /// Experiments found (files of their own and experiment plays).
    pub experiments: usize,
    pub problems: Vec<Problem>,
    /// The files that are playbooks (for the playbook loader).
    pub playbooks: Vec<PathBuf>,
}

/// Sorts `paths` into experiment files and playbooks, and checks every experiment.
pub fn check_files(
    paths: &[PathBuf],
    inventory: &Inventory,
    limit: Option<&str>,
) -> ExperimentCheck {
    let mut out = ExperimentCheck::default();
    for path in paths {
        let sources = match source::standalone(path) {
            Some(s) => vec![s],
            None => {
                out.playbooks.push(path.clone());
                source::in_playbook(path)
            }
        };
        for s in sources {
            out.experiments += 1;
            out.problems.extend(check_source(&s, inventory, limit));
        }
    }
    out
}

/// The problems of one experiment: its schema, then its hosts against the inventory.
pub fn check_source(
    src: &ExperimentSource,
    inventory: &Inventory,
    limit: Option<&str>,
) -> Vec<Problem> {
    match src.parse() {
        Err(problems) => problems,
        Ok(spec) => {
            let play_hosts = src.play.hosts.as_ref().map(|(h, _)| h.as_str());
            match super::pairs::resolve(&spec, inventory, play_hosts, limit) {
                Ok(_) => Vec::new(),
                Err(problems) => problems,
            }
        }
    }
}
