//! Declared parameter schemas of every op, checked by the loader and `ferry check`.
//!
//! Names, aliases and choices follow Ansible's builtin modules (and the
//! ansible.posix / community.general ones the testbed uses: `ini_file`,
//! `sysctl`, `modprobe`, `mount`, `authorized_key`). ferry rejects a parameter
//! it does not support instead of ignoring it, so each op lists only what it
//! implements. Each op declares its parameters once, in its own file (`SPEC`, a
//! [`Spec`]); the ops are listed once, in [`super::registry`].
//!
//! A declaration is written in a small notation:
//! `name:type` then `!` (required), `/alias,alias`, `=choice,choice`;
//! entries separated by `;`. Types: str path bool int float list dict mode raw.

use serde_json::Value;

/// The type a parameter takes (after Ansible's usual conversions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    Str,
    Path,
    Bool,
    Int,
    Float,
    /// A list; a comma-separated string or a single scalar is accepted too, as Ansible does.
    List,
    Dict,
    /// A file mode: an octal string ("0644"), a symbolic one ("u+rwx"), or an integer.
    Mode,
    /// Anything.
    Raw,
}

impl ParamType {
    pub fn name(self) -> &'static str {
        match self {
            ParamType::Str => "a string",
            ParamType::Path => "a path",
            ParamType::Bool => "a boolean",
            ParamType::Int => "an integer",
            ParamType::Float => "a number",
            ParamType::List => "a list",
            ParamType::Dict => "a mapping",
            ParamType::Mode => "a file mode",
            ParamType::Raw => "a value",
        }
    }
}

/// One parameter of an op.
#[derive(Debug, Clone)]
pub struct Param {
    pub name: &'static str,
    pub ty: ParamType,
    pub required: bool,
    pub aliases: Vec<&'static str>,
    pub choices: Vec<&'static str>,
}

/// What an op accepts.
#[derive(Debug, Clone)]
pub struct OpSchema {
    pub name: &'static str,
    pub params: Vec<Param>,
    /// Groups of parameters of which at most one may be given.
    pub mutually_exclusive: Vec<Vec<&'static str>>,
    /// Groups of parameters of which at least one must be given.
    pub required_one_of: Vec<Vec<&'static str>>,
    /// The op takes a free-form string (`command: ls -l`), kept under `_raw_params`.
    pub free_form: bool,
    /// Any other key is accepted too (set_fact's facts, add_host's host vars).
    pub open: bool,
}

/// What is wrong with an op's arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum ArgProblem {
    /// A parameter the op does not have (with the closest one it has).
    Unknown {
        name: String,
        suggestion: Option<String>,
    },
    MissingRequired {
        name: String,
    },
    MissingOneOf {
        names: Vec<String>,
    },
    MutuallyExclusive {
        names: Vec<String>,
    },
    WrongType {
        name: String,
        expected: &'static str,
        found: &'static str,
    },
    BadChoice {
        name: String,
        value: String,
        choices: Vec<&'static str>,
    },
    /// The op takes no free-form string.
    NoFreeForm,
}

impl std::fmt::Display for ArgProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArgProblem::Unknown { name, .. } => write!(f, "unsupported parameter `{name}`"),
            ArgProblem::MissingRequired { name } => {
                write!(f, "missing required parameter `{name}`")
            }
            ArgProblem::MissingOneOf { names } => {
                write!(
                    f,
                    "one of these parameters is required: {}",
                    names.join(", ")
                )
            }
            ArgProblem::MutuallyExclusive { names } => {
                write!(f, "parameters are mutually exclusive: {}", names.join(", "))
            }
            ArgProblem::WrongType {
                name,
                expected,
                found,
            } => write!(f, "parameter `{name}` must be {expected}, found {found}"),
            ArgProblem::BadChoice {
                name,
                value,
                choices,
            } => write!(
                f,
                "parameter `{name}` is `{value}`, must be one of: {}",
                choices.join(", ")
            ),
            ArgProblem::NoFreeForm => write!(f, "this op takes no free-form string"),
        }
    }
}

/// An op's declaration, written in the notation above (each op file has its `SPEC`).
/// flags: `free` (free-form string allowed), `open` (extra keys allowed).
/// rules: `x|y` mutually exclusive, `one:x|y` at least one of.
#[derive(Debug)]
pub struct Spec {
    pub name: &'static str,
    pub flags: &'static str,
    pub params: &'static str,
    pub rules: &'static str,
}

/// Collection prefixes under which an op may be named (stripped when loading).
pub const PREFIXES: &[&str] = &[
    "ansible.builtin.",
    "ansible.legacy.",
    "ansible.posix.",
    "community.general.",
];

/// The canonical op name for a task key (`ansible.builtin.copy` -> `copy`).
pub fn canonical(name: &str) -> &str {
    for p in PREFIXES {
        if let Some(rest) = name.strip_prefix(p) {
            return rest;
        }
    }
    name
}

fn parse_type(t: &str) -> ParamType {
    match t {
        "str" => ParamType::Str,
        "path" => ParamType::Path,
        "bool" => ParamType::Bool,
        "int" => ParamType::Int,
        "float" => ParamType::Float,
        "list" => ParamType::List,
        "dict" => ParamType::Dict,
        "mode" => ParamType::Mode,
        "raw" => ParamType::Raw,
        other => panic!("schema table: unknown type {other}"),
    }
}

fn parse_param(spec: &'static str) -> Param {
    let (name, rest) = spec.split_once(':').expect("schema table: name:type");
    let (rest, choices) = match rest.split_once('=') {
        Some((r, c)) => (r, c.split(',').collect()),
        None => (rest, Vec::new()),
    };
    let (rest, aliases) = match rest.split_once('/') {
        Some((r, a)) => (r, a.split(',').collect()),
        None => (rest, Vec::new()),
    };
    let (ty, required) = match rest.strip_suffix('!') {
        Some(t) => (t, true),
        None => (rest, false),
    };
    Param {
        name: name.trim(),
        ty: parse_type(ty),
        required,
        aliases,
        choices,
    }
}

/// A declaration, parsed (panics on a malformed one: the registry's tests parse them all).
pub fn parse_spec(spec: &'static Spec) -> OpSchema {
    let params = spec
        .params
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse_param)
        .collect();
    let mut mutually_exclusive = Vec::new();
    let mut required_one_of = Vec::new();
    for rule in spec.rules.split_whitespace() {
        match rule.strip_prefix("one:") {
            Some(r) => required_one_of.push(r.split('|').collect()),
            None => mutually_exclusive.push(rule.split('|').collect()),
        }
    }
    OpSchema {
        name: spec.name,
        params,
        mutually_exclusive,
        required_one_of,
        free_form: spec.flags.contains("free"),
        open: spec.flags.contains("open"),
    }
}

fn is_templated(v: &Value) -> bool {
    v.as_str().is_some_and(crate::template::is_template)
}

fn found(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn type_ok(ty: ParamType, v: &Value) -> bool {
    if v.is_null() || is_templated(v) {
        return true;
    }
    match ty {
        ParamType::Raw => true,
        ParamType::Str | ParamType::Path => !matches!(v, Value::Array(_) | Value::Object(_)),
        ParamType::Bool => match v {
            Value::Bool(_) => true,
            Value::Number(n) => matches!(n.as_i64(), Some(0 | 1)),
            Value::String(s) => matches!(
                s.to_ascii_lowercase().as_str(),
                "yes" | "no" | "true" | "false" | "on" | "off" | "1" | "0" | "y" | "n" | "t" | "f"
            ),
            _ => false,
        },
        ParamType::Int => match v {
            Value::Number(n) => n.is_i64() || n.is_u64(),
            Value::String(s) => s.trim().parse::<i64>().is_ok(),
            _ => false,
        },
        ParamType::Float => match v {
            Value::Number(_) => true,
            Value::String(s) => s.trim().parse::<f64>().is_ok(),
            _ => false,
        },
        ParamType::List => !matches!(v, Value::Object(_)),
        ParamType::Dict => matches!(v, Value::Object(_)),
        ParamType::Mode => matches!(v, Value::String(_) | Value::Number(_)),
    }
}

impl OpSchema {
    /// The parameter a key names (its own name or an alias).
    pub fn param(&self, key: &str) -> Option<&Param> {
        self.params
            .iter()
            .find(|p| p.name == key || p.aliases.contains(&key))
    }

    /// Check arguments; returns each problem with the argument key it concerns
    /// (None when it concerns the whole task). Aliases are not rewritten here:
    /// see [`OpSchema::canonical_args`].
    pub fn validate(&self, args: &crate::vars::Vars) -> Vec<(Option<String>, ArgProblem)> {
        let mut out = Vec::new();
        let mut given: Vec<&'static str> = Vec::new();
        for (k, v) in args {
            if k == "_raw_params" && !self.free_form {
                out.push((Some(k.clone()), ArgProblem::NoFreeForm));
                continue;
            }
            let Some(p) = self.param(k) else {
                if self.open {
                    continue;
                }
                let suggestion = crate::suggest::suggest(
                    k,
                    self.params
                        .iter()
                        .flat_map(|p| std::iter::once(p.name).chain(p.aliases.iter().copied()))
                        .filter(|n| *n != "_raw_params"),
                );
                out.push((
                    Some(k.clone()),
                    ArgProblem::Unknown {
                        name: k.clone(),
                        suggestion,
                    },
                ));
                continue;
            };
            given.push(p.name);
            if !type_ok(p.ty, v) {
                out.push((
                    Some(k.clone()),
                    ArgProblem::WrongType {
                        name: k.clone(),
                        expected: p.ty.name(),
                        found: found(v),
                    },
                ));
                continue;
            }
            if !p.choices.is_empty()
                && !is_templated(v)
                && let Some(text) = scalar_text(v)
                && !p.choices.contains(&text.as_str())
            {
                out.push((
                    Some(k.clone()),
                    ArgProblem::BadChoice {
                        name: k.clone(),
                        value: text,
                        choices: p.choices.clone(),
                    },
                ));
            }
        }
        for p in &self.params {
            if p.required && !given.contains(&p.name) {
                out.push((
                    None,
                    ArgProblem::MissingRequired {
                        name: p.name.to_string(),
                    },
                ));
            }
        }
        for group in &self.required_one_of {
            if !group.iter().any(|g| given.contains(g)) {
                out.push((
                    None,
                    ArgProblem::MissingOneOf {
                        names: group.iter().map(|s| s.to_string()).collect(),
                    },
                ));
            }
        }
        for group in &self.mutually_exclusive {
            let present: Vec<String> = group
                .iter()
                .filter(|g| given.contains(g))
                .map(|s| s.to_string())
                .collect();
            if present.len() > 1 {
                // Point at the second one given.
                let key = args
                    .keys()
                    .filter(|k| self.param(k).is_some_and(|p| group.contains(&p.name)))
                    .nth(1)
                    .cloned();
                out.push((key, ArgProblem::MutuallyExclusive { names: present }));
            }
        }
        out
    }

    /// Arguments with aliases renamed to their parameter's name (order kept).
    pub fn canonical_args(&self, args: &crate::vars::Vars) -> crate::vars::Vars {
        args.iter()
            .map(|(k, v)| {
                let name = self
                    .param(k)
                    .map(|p| p.name.to_string())
                    .unwrap_or_else(|| k.clone());
                (name, v.clone())
            })
            .collect()
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
