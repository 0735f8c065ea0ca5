//! The experiment stage: a matrix of migration scenarios run across host pairs,
//! measured, and kept row by row (DESIGN.md "The experiment stage", issue 11).
//!
//! - [`scenario`]: one point of the matrix (flavor x algorithm x load x link) and its key.
//! - [`result`]: the result row ([`result::MigrationResult`]), the samples, and the
//!   results directory format (`docs/results.md`), which `ferry report` reads.
//! - [`driver`]: how a migration is started and watched (qmp, virsh, nova).
//! - [`model`]: what an analytic model of the algorithm predicts for a run.

pub mod driver;
pub mod model;
pub mod result;
pub mod run;
pub mod scenario;
