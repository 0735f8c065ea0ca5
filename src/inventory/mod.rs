//! YAML inventory (Ansible's YAML inventory shape), groups, host/group vars, host patterns.

pub mod command;
