//! The experiment stage: a matrix of migration scenarios run across host pairs,
//! measured, and kept row by row (DESIGN.md "The experiment stage", issue 11).
//!
//! - [`spec`]: the experiment file (a play's `experiment:` or a file of its own).
//! - [`matrix`]: the spec expanded into the runs, in their (seeded, shuffled) order.
//! - [`scenario`]: one point of the matrix (flavor x algorithm x load x link) and its key.
//! - [`result`]: the result row ([`result::MigrationResult`]), the samples, and the
//!   results directory format (`docs/results.md`), which `ferry report` reads.
//! - [`store`]: the results directory written row by row, read back, resumed.
//! - [`pairs`]: the experiment's hosts resolved against the inventory.
//! - [`runner`]: connect, record provenance, run the matrix, append rows, stop on Ctrl-C.
//! - [`provenance`]: what a results directory records about ferry, the file and the hosts.
//! - [`driver`]: how a migration is started and watched (qmp, virsh, nova).
//! - [`model`]: what an analytic model of the algorithm predicts for a run.

pub mod check;
pub mod clock;
pub mod disk;
pub mod driver;
pub mod events;
pub mod flavor;
pub mod full_guest;
pub mod guest;
pub mod host_sample;
pub mod link;
pub mod load_process;
pub mod matrix;
pub mod model;
pub mod overhead;
pub mod pairs;
pub mod probe;
pub mod provenance;
pub mod quantity;
pub mod result;
pub mod run;
pub mod runner;
pub mod scenario;
pub mod source;
pub mod spec;
pub mod store;
