//! The experiment stage: a matrix of migration scenarios run across host pairs,
//! measured, and kept row by row (DESIGN.md "The experiment stage", issue 11).
//!
//! - [`scenario`]: one point of the matrix (flavor x algorithm x load x link) and its key.
//! - [`result`]: the result row ([`result::MigrationResult`]), the samples, and the
//!   results directory format (`docs/results.md`), which `ferry report` reads.
//! - [`driver`]: how a migration is started and watched (qmp, virsh, nova).

pub mod clock;
pub mod driver;
pub mod guest;
pub mod host_sample;
pub mod link;
pub mod probe;
pub mod result;
pub mod run;
pub mod scenario;
