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
/// SIGTERM stopped the run (what a shell reports for a program SIGTERM ended).
pub const TERMINATED: u8 = 143;
/// stdout or stderr was closed under ferry (`ferry check ... | head -0`): what a shell
/// reports for a program that SIGPIPE ended.
pub const BROKEN_PIPE: u8 = 141;

/// From now on, a print that fails because its reader went away ends the process
/// quietly with [`BROKEN_PIPE`], from any thread. Rust ignores SIGPIPE, so
/// `println!` meets EPIPE and panics (exit 101, a message on a stderr that may be
/// gone too); SIGPIPE itself stays ignored, so a child process or socket closing
/// under ferry is still an error ferry reports, never a silent death.
pub fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to std") && message.contains("Broken pipe") {
            std::process::exit(i32::from(BROKEN_PIPE));
        }
        default(info)
    }));
}
