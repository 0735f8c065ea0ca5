//! The built-in local lab: hosts as network namespaces with their own root and sshd.

pub mod command;
