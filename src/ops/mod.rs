//! Operations: one file per op, each with its schema, check, apply and diff.

pub mod schema;
