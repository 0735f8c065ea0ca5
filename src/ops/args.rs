//! The strict reader of an op's arguments, driven by the op's declaration
//! ([`super::schema::Spec`]): a getter names a parameter once, and its aliases and
//! choices come from the declaration; [`Args::finish`] rejects every argument no getter
//! read. What `ferry check` validates and what `ferry run` parses is one list.

use std::cell::RefCell;

use serde_json::Value;

use super::OpError;
use super::schema::{OpSchema, Param};
use crate::vars::Vars;

pub struct Args<'a> {
    op: &'static str,
    schema: &'static OpSchema,
    map: &'a Vars,
    used: RefCell<Vec<String>>,
}

impl<'a> Args<'a> {
    /// The reader for op `op`'s arguments. `op` is a registered op's name.
    pub fn new(op: &'static str, map: &'a Vars) -> Self {
        let schema =
            super::registry::schema(op).unwrap_or_else(|| panic!("op `{op}` is not registered"));
        Self {
            op,
            schema,
            map,
            used: RefCell::new(Vec::new()),
        }
    }

    pub fn err(&self, msg: impl Into<String>) -> OpError {
        OpError::params(self.op, msg)
    }

    fn param(&self, name: &str) -> Result<&'static Param, OpError> {
        self.schema
            .params
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                self.err(format!(
                    "reads parameter `{name}`, which its declaration does not list (a ferry bug)"
                ))
            })
    }

    /// The raw value of parameter `name` under its name or one of its aliases
    /// (null counts as absent).
    pub fn value(&self, name: &str) -> Result<Option<&'a Value>, OpError> {
        let p = self.param(name)?;
        let mut found: Option<(&str, &'a Value)> = None;
        for n in std::iter::once(p.name).chain(p.aliases.iter().copied()) {
            self.used.borrow_mut().push(n.to_string());
            if let Some(v) = self.map.get(n) {
                if v.is_null() {
                    continue;
                }
                if let Some((first, _)) = found {
                    return Err(self.err(format!(
                        "parameters `{first}` and `{n}` are aliases; give only one"
                    )));
                }
                found = Some((n, v));
            }
        }
        Ok(found.map(|(_, v)| v))
    }

    pub fn str(&self, name: &str) -> Result<Option<String>, OpError> {
        match self.value(name)? {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(v) => Err(self.err(format!("`{name}` must be a string, got {v}"))),
        }
    }

    pub fn req_str(&self, name: &str) -> Result<String, OpError> {
        self.str(name)?
            .ok_or_else(|| self.err(format!("missing required parameter `{name}`")))
    }

    /// Ansible booleans: true/false, yes/no, on/off, 1/0.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, OpError> {
        match self.value(name)? {
            None => Ok(None),
            Some(v) => parse_bool(v)
                .map(Some)
                .ok_or_else(|| self.err(format!("`{name}` must be a boolean, got {v}"))),
        }
    }

    pub fn bool_or(&self, name: &str, default: bool) -> Result<bool, OpError> {
        Ok(self.bool(name)?.unwrap_or(default))
    }

    pub fn u64(&self, name: &str) -> Result<Option<u64>, OpError> {
        match self.value(name)? {
            None => Ok(None),
            Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
            Some(Value::String(s)) if s.trim().parse::<u64>().is_ok() => {
                Ok(s.trim().parse::<u64>().ok())
            }
            Some(v) => Err(self.err(format!("`{name}` must be a non-negative integer, got {v}"))),
        }
    }

    /// A list of strings; a single string is split on commas (as Ansible does).
    pub fn list(&self, name: &str) -> Result<Option<Vec<String>>, OpError> {
        match self.value(name)? {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(
                s.split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect(),
            )),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    other => {
                        Err(self.err(format!("`{name}` must be a list of strings, got {other}")))
                    }
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(self.err(format!("`{name}` must be a list, got {v}"))),
        }
    }

    /// One of the parameter's declared choices, or `default`.
    pub fn choice(&self, name: &str, default: &str) -> Result<String, OpError> {
        let choices = &self.param(name)?.choices;
        let v = self.str(name)?.unwrap_or_else(|| default.to_string());
        if choices.contains(&v.as_str()) {
            Ok(v)
        } else {
            Err(self.err(format!(
                "`{name}` must be one of {}, got `{v}`",
                choices.join(", ")
            )))
        }
    }

    /// Reject every argument no getter asked for, naming them.
    pub fn finish(self) -> Result<(), OpError> {
        let used = self.used.borrow();
        let unknown: Vec<&str> = self
            .map
            .keys()
            .filter(|k| !used.iter().any(|u| u == *k))
            .map(|k| k.as_str())
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        let mut known: Vec<&str> = used.iter().map(|s| s.as_str()).collect();
        known.sort();
        known.dedup();
        Err(self.err(format!(
            "unsupported parameter{} {}; ferry supports: {}",
            if unknown.len() > 1 { "s" } else { "" },
            unknown
                .iter()
                .map(|u| format!("`{u}`"))
                .collect::<Vec<_>>()
                .join(", "),
            known.join(", ")
        )))
    }
}

pub fn parse_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "1" | "y" | "t" => Some(true),
            "no" | "false" | "off" | "0" | "n" | "f" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(v: Value) -> Vars {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn args_reject_unknown_and_read_aliases_from_the_declaration() {
        let m = vars(json!({"dest": "/x", "bogus": 1, "force": "yes"}));
        let a = Args::new("file", &m);
        assert_eq!(a.str("path").unwrap().as_deref(), Some("/x"));
        assert_eq!(a.bool("force").unwrap(), Some(true));
        let e = a.finish().unwrap_err().to_string();
        assert!(e.contains("`bogus`"), "{e}");
        assert!(e.starts_with("file: unsupported parameter"), "{e}");
    }

    #[test]
    fn args_alias_twice_is_an_error() {
        let m = vars(json!({"dest": "/x", "path": "/y"}));
        let a = Args::new("file", &m);
        assert!(a.str("path").is_err());
    }

    #[test]
    fn args_choice_and_bool_errors() {
        let m = vars(json!({"state": "bogus", "force": "maybe"}));
        let a = Args::new("file", &m);
        let e = a.choice("state", "file").unwrap_err().to_string();
        assert!(e.contains("one of file, directory"), "{e}");
        assert!(a.bool("force").is_err());
    }

    #[test]
    fn reading_an_undeclared_parameter_is_a_ferry_bug() {
        let m = Vars::new();
        let e = Args::new("file", &m).str("nope").unwrap_err().to_string();
        assert!(e.contains("does not list"), "{e}");
    }
}
