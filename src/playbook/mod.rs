//! Playbook model and its loader/validator with file:line:col errors.
//!
//! - [`loader`] turns YAML files (through [`crate::yaml`]) into the model,
//!   collecting every problem it finds instead of stopping at the first.
//! - [`check`] validates what was loaded: op arguments against
//!   [`crate::ops::schema`], templates, files, handlers, host patterns and
//!   variables that no layer could define.
//! - [`load_and_check`] is what `ferry check` and `ferry run` call.

pub mod check;
pub mod diag;
pub mod loader;
pub mod model;

pub use check::load_and_check;
pub use diag::{CheckReport, Problem, Severity};
pub use model::*;
