//! Operations: one file per op, each with its schema, check, apply and diff.

pub mod apt;
pub mod attrs;
pub mod authorized_key;
pub mod blockinfile;
pub mod build;
pub mod content;
pub mod copy;
pub mod file;
pub mod git;
pub mod git_sync;
pub mod group;
pub mod hostname;
pub mod ini_file;
pub mod lineinfile;
pub mod modprobe;
pub mod outcome;
pub mod replace;
pub mod service;
pub mod slurp;
pub mod stat;
pub mod sysctl;
pub mod template;
pub mod user;
pub mod wait_for;
