//! Declared parameter schemas of every op, checked by the loader and `ferry check`.
//!
//! Names, aliases and choices follow Ansible's builtin modules (and the
//! ansible.posix / community.general ones the testbed uses: `ini_file`,
//! `sysctl`, `modprobe`, `mount`, `authorized_key`). ferry rejects a parameter
//! it does not support instead of ignoring it, so each op lists only what it
//! implements. Ops add their parameters here as they grow.
//!
//! The table is written in a small notation, one op per entry:
//! `name:type` then `!` (required), `/alias,alias`, `=choice,choice`;
//! entries separated by `;`. Types: str path bool int float list dict mode raw.

use std::collections::HashMap;
use std::sync::OnceLock;

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

/// The op table: (name, flags, params, rules).
/// flags: `free` (free-form string allowed), `open` (extra keys allowed).
/// rules: `x|y` mutually exclusive, `one:x|y` at least one of.
const SPECS: &[(&str, &str, &str, &str)] = &[
    // --- files
    (
        "file",
        "",
        "path:path!/dest,name; state:str=file,directory,link,hard,touch,absent; mode:mode; owner:str; group:str; recurse:bool; src:path; force:bool",
        "",
    ),
    (
        "copy",
        "",
        "src:path; content:raw; dest:path!; mode:mode; owner:str; group:str; backup:bool; force:bool/thirsty; validate:str; remote_src:bool; directory_mode:mode",
        "src|content one:src|content",
    ),
    (
        "template",
        "",
        "src:path!; dest:path!; mode:mode; owner:str; group:str; backup:bool; force:bool; validate:str",
        "",
    ),
    (
        "lineinfile",
        "",
        "path:path!/dest,destfile,name; regexp:str/regex; search_string:str; state:str=present,absent; line:str/value; backrefs:bool; insertafter:str; insertbefore:str; create:bool; backup:bool; firstmatch:bool; mode:mode; owner:str; group:str; validate:str",
        "insertafter|insertbefore regexp|search_string",
    ),
    (
        "blockinfile",
        "",
        "path:path!/dest,destfile,name; block:str/content; marker:str; marker_begin:str; marker_end:str; state:str=present,absent; insertafter:str; insertbefore:str; create:bool; backup:bool; mode:mode; owner:str; group:str; validate:str",
        "insertafter|insertbefore",
    ),
    (
        "replace",
        "",
        "path:path!/dest,destfile,name; regexp:str!; replace:str; after:str; before:str; backup:bool; mode:mode; owner:str; group:str; validate:str",
        "",
    ),
    (
        "ini_file",
        "",
        "path:path!/dest; section:str; option:str/key; value:raw; state:str=present,absent; backup:bool; create:bool; no_extra_spaces:bool; allow_no_value:bool; modify_inactive_option:bool; mode:mode; owner:str; group:str",
        "one:section|option",
    ),
    (
        "stat",
        "",
        "path:path!/dest,name; follow:bool; get_checksum:bool; checksum_algorithm:str/checksum,checksum_algo=sha1,sha256,md5",
        "",
    ),
    ("slurp", "", "src:path!/path", ""),
    (
        "fetch",
        "",
        "src:path!; dest:path!; flat:bool; fail_on_missing:bool; validate_checksum:bool",
        "",
    ),
    (
        "get_url",
        "",
        "url:str!; dest:path!; mode:mode; owner:str; group:str; force:bool; checksum:str; timeout:int; backup:bool",
        "",
    ),
    (
        "unarchive",
        "",
        "src:path!; dest:path!; remote_src:bool; creates:path; exclude:list; keep_newer:bool; list_files:bool",
        "",
    ),
    // --- commands
    (
        "command",
        "free",
        "_raw_params:str; cmd:str; argv:list; creates:path; removes:path; chdir:path; stdin:str; stdin_add_newline:bool; strip_empty_ends:bool",
        "_raw_params|cmd|argv one:_raw_params|cmd|argv",
    ),
    (
        "shell",
        "free",
        "_raw_params:str; cmd:str; creates:path; removes:path; chdir:path; stdin:str; stdin_add_newline:bool; executable:path",
        "_raw_params|cmd one:_raw_params|cmd",
    ),
    ("raw", "free", "_raw_params:str!; executable:path", ""),
    (
        "script",
        "free",
        "_raw_params:str; cmd:str; creates:path; removes:path; chdir:path; executable:path",
        "_raw_params|cmd one:_raw_params|cmd",
    ),
    // --- packages
    (
        "apt",
        "",
        "name:list/package,pkg; state:str=present,installed,absent,removed,latest; update_cache:bool/update-cache; cache_valid_time:int; deb:path; install_recommends:bool/install-recommends; purge:bool; autoremove:bool",
        "name|deb one:name|deb|update_cache|autoremove",
    ),
    (
        "package",
        "",
        "name:list/package,pkg; state:str=present,installed,absent,removed,latest; update_cache:bool/update-cache; cache_valid_time:int; deb:path; install_recommends:bool/install-recommends; purge:bool; autoremove:bool",
        "name|deb one:name|deb|update_cache|autoremove",
    ),
    (
        "apt_key",
        "",
        "id:str; data:str; file:path; keyring:path; state:str=present,absent",
        "data|file",
    ),
    (
        "apt_repository",
        "",
        "repo:str!; state:str=present,absent; filename:str; update_cache:bool/update-cache; mode:mode",
        "",
    ),
    (
        "pip",
        "",
        "name:list; requirements:path; virtualenv:path; virtualenv_command:str; virtualenv_site_packages:bool; state:str=present,absent,latest,forcereinstall; version:str; extra_args:str; chdir:path; executable:path",
        "one:name|requirements virtualenv|executable",
    ),
    // --- services
    (
        "service",
        "",
        "name:str!/service,unit; state:str=started,stopped,restarted,reloaded; enabled:bool; daemon_reload:bool/daemon-reload; start_command:str; pidfile:path; stop_signal:str; reload_signal:str; log_file:path",
        "one:state|enabled|daemon_reload start_command|enabled",
    ),
    (
        "systemd",
        "",
        "name:str!/service,unit; state:str=started,stopped,restarted,reloaded; enabled:bool; daemon_reload:bool/daemon-reload; start_command:str; pidfile:path; stop_signal:str; reload_signal:str; log_file:path",
        "one:state|enabled|daemon_reload start_command|enabled",
    ),
    // --- system
    (
        "sysctl",
        "",
        "name:str!/key; value:str/val; state:str=present,absent; sysctl_file:path; reload:bool; sysctl_set:bool; ignoreerrors:bool",
        "",
    ),
    (
        "modprobe",
        "",
        "name:str!; state:str=present,absent; params:str",
        "",
    ),
    (
        "user",
        "",
        "name:str!/user; state:str=present,absent; uid:int; group:str; groups:list; append:bool; shell:path; home:path; create_home:bool/createhome; system:bool; password:str; comment:str; remove:bool",
        "",
    ),
    (
        "group",
        "",
        "name:str!; state:str=present,absent; gid:int; system:bool",
        "",
    ),
    ("hostname", "", "name:str!; use:str", ""),
    (
        "authorized_key",
        "",
        "user:str!; key:str!; state:str=present,absent; path:path; manage_dir:bool; exclusive:bool",
        "",
    ),
    (
        "wait_for",
        "",
        "host:str; port:int; path:path; state:str=started,present,stopped,absent; search_regex:str; timeout:int; delay:int; sleep:int; connect_timeout:int; msg:str",
        "port|path",
    ),
    // --- source
    (
        "git",
        "",
        "repo:str!/name; dest:path!; version:str; force:bool; depth:int; clone:bool; update:bool; via:str=auto,host,controller",
        "",
    ),
    (
        "build",
        "",
        "src:path!/chdir; configure_flags:list; make_target:str; prefix:path; jobs:int; marker:path",
        "",
    ),
    // --- control
    ("debug", "", "msg:raw; var:str; verbosity:int", "msg|var"),
    ("set_fact", "open", "cacheable:bool", ""),
    (
        "assert",
        "",
        "that:list!; fail_msg:raw/msg; success_msg:raw; quiet:bool",
        "",
    ),
    ("fail", "", "msg:raw", ""),
    (
        "pause",
        "",
        "seconds:int; minutes:int; prompt:str; echo:bool",
        "seconds|minutes",
    ),
    (
        "meta",
        "free",
        "_raw_params:str!=flush_handlers,end_play,end_host,end_batch,noop,refresh_inventory,clear_facts,clear_host_errors,reset_connection",
        "",
    ),
    (
        "include_vars",
        "free",
        "_raw_params:path; file:path; dir:path; name:str; files_matching:str; ignore_files:list; extensions:list; ignore_unknown_extensions:bool; depth:int; hash_behaviour:str=replace,merge",
        "_raw_params|file|dir one:_raw_params|file|dir",
    ),
    (
        "add_host",
        "open",
        "name:str!/host,hostname; groups:list/group,groupname",
        "",
    ),
    ("group_by", "", "key:str!; parents:list", ""),
    ("ping", "", "data:str", ""),
    (
        "setup",
        "",
        "gather_subset:list; filter:list; gather_timeout:int; fact_path:path",
        "",
    ),
];

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

fn table() -> &'static HashMap<&'static str, OpSchema> {
    static T: OnceLock<HashMap<&'static str, OpSchema>> = OnceLock::new();
    T.get_or_init(|| {
        let mut m = HashMap::new();
        for (name, flags, params, rules) in SPECS {
            let params = params
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(parse_param)
                .collect();
            let mut mutually_exclusive = Vec::new();
            let mut required_one_of = Vec::new();
            for rule in rules.split_whitespace() {
                match rule.strip_prefix("one:") {
                    Some(r) => required_one_of.push(r.split('|').collect()),
                    None => mutually_exclusive.push(rule.split('|').collect()),
                }
            }
            m.insert(
                *name,
                OpSchema {
                    name,
                    params,
                    mutually_exclusive,
                    required_one_of,
                    free_form: flags.contains("free"),
                    open: flags.contains("open"),
                },
            );
        }
        m
    })
}

/// The schema of an op, by canonical name.
pub fn lookup(op: &str) -> Option<&'static OpSchema> {
    table().get(canonical(op))
}

/// Every op name ferry knows, sorted.
pub fn op_names() -> Vec<&'static str> {
    let mut v: Vec<_> = table().keys().copied().collect();
    v.sort();
    v
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
    pub fn validate(
        &self,
        args: &crate::playbook::model::Vars,
    ) -> Vec<(Option<String>, ArgProblem)> {
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
                let suggestion = crate::playbook::suggest(
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
    pub fn canonical_args(
        &self,
        args: &crate::playbook::model::Vars,
    ) -> crate::playbook::model::Vars {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(v: Value) -> crate::playbook::model::Vars {
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
            assert!(lookup(op).is_some(), "{op}");
        }
        assert!(lookup("ansible.builtin.copy").is_some());
        assert!(lookup("community.general.ini_file").is_some());
    }

    /// The parsers of the host ops (`Params::parse` in `src/ops/<op>.rs`) are
    /// the truth about what an op takes; `ferry check` must accept what
    /// `ferry run` accepts and reject what it rejects.
    type Parse = fn(&crate::playbook::model::Vars) -> Result<(), String>;

    fn host_op_parsers() -> Vec<(&'static str, Parse)> {
        macro_rules! p {
            ($($name:literal => $m:ident),* $(,)?) => {
                vec![$(($name, (|a| crate::ops::$m::Params::parse(a).map(|_| ()).map_err(|e| e.to_string())) as Parse)),*]
            };
        }
        p![
            "apt" => apt, "package" => apt, "authorized_key" => authorized_key,
            "apt_key" => apt_key, "apt_repository" => apt_repository, "fetch" => fetch,
            "get_url" => get_url, "pip" => pip, "unarchive" => unarchive,
            "blockinfile" => blockinfile, "build" => build, "copy" => copy, "file" => file,
            "git" => git, "group" => group, "hostname" => hostname, "ini_file" => ini_file,
            "lineinfile" => lineinfile, "modprobe" => modprobe, "replace" => replace,
            "service" => service, "systemd" => service, "slurp" => slurp, "stat" => stat,
            "sysctl" => sysctl, "template" => template, "user" => user, "wait_for" => wait_for,
        ]
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
    fn minimal(s: &OpSchema) -> crate::playbook::model::Vars {
        let mut args = crate::playbook::model::Vars::new();
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
        for (op, parse) in host_op_parsers() {
            let s = lookup(op).unwrap_or_else(|| panic!("{op} has a parser but no schema"));
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
                        && e.contains("unsupported parameter")
                    {
                        wrong.push(format!("{op}: schema takes `{name}`, parser does not: {e}"));
                    }
                }
                for c in p.choices.iter().skip(1) {
                    let mut args = base.clone();
                    args.insert(p.name.to_string(), json!(c));
                    if let Err(e) = parse(&args)
                        && e.contains("must be one of")
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
                    let e = parse(&args).expect_err("a value out of the choices is rejected");
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
            let e = parse(&args).expect_err("an unknown parameter is rejected");
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
        let copy = lookup("copy").unwrap();
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
        let file = lookup("file").unwrap();
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
