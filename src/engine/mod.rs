//! Runs plays: hosts in parallel, tasks in order, handlers, failures; emits events.

pub mod bench;
pub mod command;
