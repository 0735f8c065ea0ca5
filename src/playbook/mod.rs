//! Playbook model and its loader/validator with file:line:col errors.

pub mod bench;
pub mod command;
pub mod model;

pub use model::*;
