//! The one list of ops: `ferry check` validates against their declarations and
//! `ferry run` runs them; nothing else names the ops.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::Op;
use super::schema::{OpSchema, canonical, parse_spec};
use super::*;

/// Every op ferry has.
pub static OPS: &[&(dyn Op + 'static)] = &[
    // commands
    &command::Command,
    &shell::Shell,
    &raw::Raw,
    &script::Script,
    // control and facts
    &ping::Ping,
    &setup::Setup,
    &debug::Debug,
    &set_fact::SetFact,
    &assert::Assert,
    &fail::Fail,
    &meta::Meta,
    &pause::Pause,
    &include_vars::IncludeVars,
    &add_host::AddHost,
    &group_by::GroupBy,
    // files
    &file::FileOp,
    &copy::CopyOp,
    &template::TemplateOp,
    &lineinfile::LineinfileOp,
    &blockinfile::BlockinfileOp,
    &replace::ReplaceOp,
    &ini_file::IniFileOp,
    &stat::StatOp,
    &slurp::SlurpOp,
    &fetch::FetchOp,
    &get_url::GetUrlOp,
    &unarchive::UnarchiveOp,
    // packages
    &apt::AptOp,
    &apt::PackageOp,
    &apt_key::AptKeyOp,
    &apt_repository::AptRepositoryOp,
    &pip::PipOp,
    // services and system
    &service::ServiceOp,
    &service::SystemdOp,
    &sysctl::SysctlOp,
    &modprobe::ModprobeOp,
    &user::UserOp,
    &group::GroupOp,
    &hostname::HostnameOp,
    &authorized_key::AuthorizedKeyOp,
    &wait_for::WaitForOp,
    // source
    &git::GitOp,
    &build::BuildOp,
];

/// The op registered under `name` (collection prefixes such as `ansible.builtin.`
/// accepted, see [`super::schema::PREFIXES`]).
pub fn lookup(name: &str) -> Option<&'static dyn Op> {
    let name = canonical(name);
    OPS.iter().copied().find(|op| op.name() == name)
}

/// Every registered op name, in registry order (for "did you mean" suggestions).
pub fn names() -> impl Iterator<Item = &'static str> {
    OPS.iter().map(|op| op.name())
}

/// Every registered op's declaration, parsed once.
fn table() -> &'static HashMap<&'static str, OpSchema> {
    static T: OnceLock<HashMap<&'static str, OpSchema>> = OnceLock::new();
    T.get_or_init(|| {
        OPS.iter()
            .map(|op| (op.name(), parse_spec(op.spec())))
            .collect()
    })
}

/// The declared parameters of an op, by name (collection prefixes accepted).
pub fn schema(op: &str) -> Option<&'static OpSchema> {
    table().get(canonical(op))
}

/// Every op name ferry knows, sorted.
pub fn op_names() -> Vec<&'static str> {
    let mut v: Vec<_> = table().keys().copied().collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_op_is_registered_once_and_found_by_its_name() {
        let mut seen = std::collections::BTreeSet::new();
        for op in super::OPS {
            assert!(seen.insert(op.name()), "{} registered twice", op.name());
            assert_eq!(super::lookup(op.name()).unwrap().name(), op.name());
            let prefixed = format!("ansible.builtin.{}", op.name());
            assert!(super::lookup(&prefixed).is_some(), "{prefixed}");
        }
    }
}

#[cfg(test)]
mod declaration_tests {
    use super::schema;
    use crate::ops::schema::*;
    use serde_json::{Value, json};

    fn vars(v: Value) -> crate::vars::Vars {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn every_op_of_the_ops_issue_is_declared() {
        for op in [
            "file",
            "copy",
            "template",
            "lineinfile",
            "blockinfile",
            "replace",
            "ini_file",
            "stat",
            "slurp",
            "fetch",
            "get_url",
            "unarchive",
            "command",
            "shell",
            "raw",
            "script",
            "apt",
            "package",
            "apt_key",
            "apt_repository",
            "pip",
            "service",
            "systemd",
            "sysctl",
            "modprobe",
            "user",
            "group",
            "hostname",
            "authorized_key",
            "wait_for",
            "git",
            "build",
            "debug",
            "set_fact",
            "assert",
            "fail",
            "pause",
            "meta",
            "include_vars",
            "add_host",
            "group_by",
            "ping",
            "setup",
        ] {
            assert!(schema(op).is_some(), "{op}");
        }
        assert!(schema("ansible.builtin.copy").is_some());
        assert!(schema("community.general.ini_file").is_some());
    }

    /// The parsers of the ops (`Params::parse` in `src/ops/<op>.rs`, reached through
    /// [`crate::ops::Op::check_args`]) read their arguments through the declaration;
    /// `ferry check` must accept what `ferry run` accepts and reject what it rejects.
    type Parse = Box<dyn Fn(&crate::vars::Vars) -> Result<(), crate::ops::OpError>>;

    /// Every registered op whose parser reads its arguments (the others read a few
    /// keys by name and leave the rest to the declaration's check).
    fn op_parsers() -> Vec<(&'static str, Parse)> {
        crate::ops::registry::OPS
            .iter()
            .map(|op| {
                let parse: Parse = Box::new(|a| op.check_args(a));
                (op.name(), parse)
            })
            .filter(|(name, parse)| {
                let mut probe = minimal(schema(name).unwrap());
                probe.insert("zz_probe".into(), json!("x"));
                parse(&probe).is_err()
            })
            .collect()
    }

    /// A value of the parameter's type the parsers take.
    fn sample(p: &Param) -> Value {
        if let Some(c) = p.choices.first() {
            return json!(c);
        }
        match p.ty {
            ParamType::Str | ParamType::Raw => json!("x"),
            ParamType::Path => json!("/tmp/x"),
            ParamType::Bool => json!(true),
            ParamType::Int | ParamType::Float => json!(1),
            ParamType::List => json!(["x"]),
            ParamType::Dict => json!({}),
            ParamType::Mode => json!("0644"),
        }
    }

    /// The smallest arguments the schema accepts: its required parameters and
    /// the first of each at-least-one-of group.
    fn minimal(s: &OpSchema) -> crate::vars::Vars {
        let mut args = crate::vars::Vars::new();
        for p in s.params.iter().filter(|p| p.required) {
            args.insert(p.name.to_string(), sample(p));
        }
        // Requirements the schema notation cannot say (they depend on a value):
        // the parsers check them when the task runs.
        let conditional = match s.name {
            "authorized_key" => json!({"key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA x@y"}),
            "lineinfile" | "sysctl" => json!({"line": "x", "value": "1"}),
            "get_url" => json!({"url": "file:///tmp/x"}),
            "apt_repository" => json!({"repo": "deb http://10.0.0.1/debian stable main"}),
            "apt_key" => json!({"data": "x"}),
            _ => json!({}),
        };
        for (k, v) in conditional.as_object().unwrap() {
            if s.params.iter().any(|p| p.name == k) {
                args.insert(k.clone(), v.clone());
            }
        }
        for g in &s.required_one_of {
            if !g.iter().any(|n| args.contains_key(*n)) {
                args.insert(g[0].to_string(), sample(s.param(g[0]).unwrap()));
            }
        }
        args
    }

    #[test]
    fn schemas_agree_with_the_op_parsers() {
        let mut wrong = Vec::new();
        let parsers = op_parsers();
        assert!(parsers.len() >= 28, "only {} parsing ops", parsers.len());
        for (op, parse) in parsers {
            let s = schema(op).unwrap_or_else(|| panic!("{op} has a parser but no schema"));
            let base = minimal(s);
            assert!(
                s.validate(&base).is_empty(),
                "{op}: {:?}",
                s.validate(&base)
            );
            if let Err(e) = parse(&base) {
                wrong.push(format!(
                    "{op}: the parser rejects {base:?}, which the schema accepts: {e}"
                ));
            }
            // Every name and alias the schema takes, the parser takes.
            for p in &s.params {
                for name in std::iter::once(p.name).chain(p.aliases.iter().copied()) {
                    let mut args = base.clone();
                    args.shift_remove(p.name);
                    args.insert(name.to_string(), sample(p));
                    if let Err(e) = parse(&args)
                        && e.to_string().contains("unsupported parameter")
                    {
                        wrong.push(format!("{op}: schema takes `{name}`, parser does not: {e}"));
                    }
                }
                for c in p.choices.iter().skip(1) {
                    let mut args = base.clone();
                    args.insert(p.name.to_string(), json!(c));
                    if let Err(e) = parse(&args)
                        && e.to_string().contains("must be one of")
                    {
                        wrong.push(format!(
                            "{op}: schema takes {}={c}, parser does not: {e}",
                            p.name
                        ));
                    }
                }
                if !p.choices.is_empty() {
                    let mut args = base.clone();
                    args.insert(p.name.to_string(), json!("zz_bogus"));
                    let e = parse(&args)
                        .expect_err("a value out of the choices is rejected")
                        .to_string();
                    let said = e
                        .split_once("must be one of ")
                        .and_then(|(_, r)| r.split_once(", got"))
                        .map(|(c, _)| c)
                        .unwrap_or_else(|| panic!("{op}: {e}"));
                    for c in said.split(", ") {
                        if !p.choices.contains(&c) {
                            wrong.push(format!(
                                "{op}: parser takes {}={c}, schema does not",
                                p.name
                            ));
                        }
                    }
                }
            }
            // Every name the parser asks for, the schema takes.
            let mut args = base.clone();
            args.insert("zz_probe".into(), json!("x"));
            let e = parse(&args)
                .expect_err("an unknown parameter is rejected")
                .to_string();
            let (_, known) = e
                .split_once("ferry supports: ")
                .unwrap_or_else(|| panic!("{op}: {e}"));
            for name in known.split(", ") {
                if s.param(name).is_none() {
                    wrong.push(format!("{op}: parser takes `{name}`, schema does not"));
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn validation() {
        let copy = schema("copy").unwrap();
        assert!(
            copy.validate(&vars(json!({"src": "a", "dest": "/b"})))
                .is_empty()
        );
        let p = copy.validate(&vars(
            json!({"src": "a", "content": "x", "dest": "/b", "bogus": 1}),
        ));
        assert!(
            p.iter()
                .any(|(_, e)| matches!(e, ArgProblem::MutuallyExclusive { .. }))
        );
        assert!(p.iter().any(|(k, _)| k.as_deref() == Some("bogus")));
        let p = copy.validate(&vars(json!({"src": "a"})));
        assert_eq!(
            p[0].1,
            ArgProblem::MissingRequired {
                name: "dest".into()
            }
        );
        let file = schema("file").unwrap();
        assert!(
            file.validate(&vars(
                json!({"dest": "/x", "state": "directory", "recurse": "yes"})
            ))
            .is_empty()
        );
        let p = file.validate(&vars(json!({"path": "/x", "state": "dir"})));
        assert!(matches!(p[0].1, ArgProblem::BadChoice { .. }));
        let p = file.validate(&vars(json!({"path": "/x", "recurse": [1]})));
        assert!(matches!(p[0].1, ArgProblem::WrongType { .. }));
        assert_eq!(
            file.canonical_args(&vars(json!({"dest": "/x"})))
                .keys()
                .collect::<Vec<_>>(),
            vec!["path"]
        );
    }
}
