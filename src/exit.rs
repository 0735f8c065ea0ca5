//! ferry's exit codes, defined once. They follow `ansible-playbook`'s where the two overlap.

/// Everything went as asked.
pub const OK: u8 = 0;
/// Bad input (a playbook, inventory or flag that does not check) or another error; `main`
/// gives this code to every error report.
pub const ERROR: u8 = 1;
/// A host failed a task.
pub const HOST_FAILED: u8 = 2;
/// A host could not be reached (`ferry lab status`: a lab host does not answer).
pub const HOST_UNREACHABLE: u8 = 4;
/// Ctrl-C stopped the run.
pub const INTERRUPTED: u8 = 130;
