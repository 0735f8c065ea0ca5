//! Operations: one file per op, each with its schema, check, apply and diff.

pub mod attrs;
pub mod content;
pub mod lineinfile;
pub mod outcome;
