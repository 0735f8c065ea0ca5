//! The state of one `serial` batch of one play while it runs: its hosts, their base
//! variables and whether each is still running (failed, unreachable, ended).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::playbook::{Play, Vars};

#[derive(Debug, Default)]
pub(super) struct HostState {
    pub(super) failed: bool,
    pub(super) unreachable: bool,
    pub(super) ended: bool,
    pub(super) notified: Vec<String>,
}

/// One batch of one play.
pub(super) struct PlayRun<'p> {
    pub(super) play: &'p Play,
    pub(super) names: Vec<String>,
    /// Each host's inventory variables, with the inventory epoch they were read at
    /// (re-read after add_host/group_by changed the inventory).
    pub(super) base: Vec<Mutex<(u64, Vars)>>,
    pub(super) states: Vec<Mutex<HostState>>,
    pub(super) ended: AtomicBool,
}

impl PlayRun<'_> {
    pub(super) fn active(&self, h: usize) -> bool {
        if self.ended.load(Ordering::SeqCst) {
            return false;
        }
        let s = self.states[h].lock().unwrap();
        !(s.failed || s.unreachable || s.ended)
    }
}
