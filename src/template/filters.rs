//! The filters and tests written here (Ansible's, where minijinja's builtins and
//! minijinja-contrib's do not have them or mean something else).

use std::path::Path;

use base64::Engine as _;
use minijinja::value::{Kwargs, Rest, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Value};
use regex::Regex;

use super::{to_json_value, truthy};

/// Add the filters and tests of this file to `env`.
pub(super) fn register(env: &mut Environment<'static>) {
    env.add_filter("bool", to_bool);
    env.add_filter("to_json", to_json);
    env.add_filter("to_nice_json", to_nice_json);
    env.add_filter("from_json", from_json);
    env.add_filter("to_yaml", to_yaml);
    env.add_filter("to_nice_yaml", to_yaml);
    env.add_filter("from_yaml", from_yaml);
    env.add_filter("regex_replace", regex_replace);
    env.add_filter("regex_search", regex_search);
    env.add_filter("b64encode", b64encode);
    env.add_filter("b64decode", b64decode);
    env.add_filter("basename", basename);
    env.add_filter("dirname", dirname);
    env.add_filter("quote", quote);
    env.add_filter("mandatory", mandatory);
    env.add_filter("combine", combine);
    env.add_filter("dict2items", dict2items);
    env.add_filter("items2dict", items2dict);
    env.add_filter("product", product);
    env.add_test("match", test_match);
    env.add_test("search", test_search);
    env.add_test("regex", test_search);
    env.add_test("succeeded", test_succeeded);
    env.add_test("success", test_succeeded);
    env.add_test("failed", test_failed);
    env.add_test("failure", test_failed);
    env.add_test("changed", test_changed);
    env.add_test("change", test_changed);
    env.add_test("skipped", test_skipped);
    env.add_test("skip", test_skipped);
}

pub(super) fn ansible_bool_str(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "yes" | "on" | "true" | "1" | "y" | "t" => Some(true),
        "no" | "off" | "false" | "0" | "n" | "f" | "" => Some(false),
        _ => None,
    }
}

pub(super) fn to_bool(v: Value) -> bool {
    match v.kind() {
        ValueKind::String => ansible_bool_str(v.as_str().unwrap_or("")).unwrap_or(false),
        ValueKind::Number => v.as_i64().map(|i| i == 1).unwrap_or(v.is_true()),
        _ => v.is_true(),
    }
}

pub(super) fn json_err(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::new(ErrorKind::InvalidOperation, e.to_string())
}

pub(super) fn to_json(v: Value) -> Result<String, Error> {
    serde_json::to_string(&v).map_err(json_err)
}

pub(super) fn to_nice_json(v: Value) -> Result<String, Error> {
    serde_json::to_string_pretty(&v).map_err(json_err)
}

pub(super) fn from_json(s: &str) -> Result<Value, Error> {
    let v: serde_json::Value = serde_json::from_str(s).map_err(json_err)?;
    Ok(Value::from(minijinja::value::Serde(&v)))
}

pub(super) fn to_yaml(v: Value) -> Result<String, Error> {
    let j = to_json_value(&v)?;
    serde_saphyr::to_string(&j).map_err(json_err)
}

pub(super) fn from_yaml(s: &str) -> Result<Value, Error> {
    let nodes = crate::yaml::parse_str(s, Path::new("<from_yaml>")).map_err(json_err)?;
    let v = nodes
        .first()
        .map(|n| n.to_value())
        .unwrap_or(serde_json::Value::Null);
    Ok(Value::from(minijinja::value::Serde(&v)))
}

pub(super) fn regex(p: &str) -> Result<Regex, Error> {
    Regex::new(p).map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("bad regex: {e}")))
}

/// Python `re.sub` replacement syntax (`\1`, `\g<name>`) to the regex crate's (`${1}`).
pub(super) fn python_replacement(r: &str) -> String {
    let re = Regex::new(r"\\(\d+)|\\g<(\w+)>|\$").expect("static regex");
    re.replace_all(r, |c: &regex::Captures| {
        if let Some(n) = c.get(1).or_else(|| c.get(2)) {
            format!("${{{}}}", n.as_str())
        } else {
            "$$".to_string()
        }
    })
    .into_owned()
}

pub(super) fn regex_replace(
    s: &str,
    pattern: &str,
    replacement: Option<&str>,
) -> Result<String, Error> {
    let r = regex(pattern)?;
    Ok(
        r.replace_all(s, python_replacement(replacement.unwrap_or("")).as_str())
            .into_owned(),
    )
}

pub(super) fn regex_search(s: &str, pattern: &str, groups: Rest<String>) -> Result<Value, Error> {
    let r = regex(pattern)?;
    let Some(c) = r.captures(s) else {
        return Ok(Value::from(()));
    };
    if groups.is_empty() {
        return Ok(Value::from(c.get(0).map(|m| m.as_str()).unwrap_or("")));
    }
    let mut out = Vec::new();
    for g in groups.iter() {
        let g = g.trim_start_matches('\\');
        let m = match g.parse::<usize>() {
            Ok(i) => c.get(i),
            Err(_) => c.name(g.trim_start_matches("g<").trim_end_matches('>')),
        };
        out.push(Value::from(m.map(|m| m.as_str()).unwrap_or("")));
    }
    Ok(Value::from(out))
}

pub(super) fn b64encode(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

pub(super) fn b64decode(s: &str) -> Result<String, Error> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(json_err)?;
    String::from_utf8(bytes).map_err(json_err)
}

pub(super) fn basename(s: &str) -> String {
    s.rsplit('/').next().unwrap_or("").to_string()
}

pub(super) fn dirname(s: &str) -> String {
    match s.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => s[..i].to_string(),
        None => String::new(),
    }
}

pub(super) fn quote(s: Value) -> String {
    let s = s.to_string();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c))
    {
        return s;
    }
    format!("'{}'", s.replace('\'', r#"'"'"'"#))
}

pub(super) fn mandatory(v: Value, msg: Option<String>) -> Result<Value, Error> {
    if v.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            msg.unwrap_or_else(|| "mandatory variable not defined".into()),
        ));
    }
    Ok(v)
}

pub(super) fn combine(base: Value, others: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let recursive: bool = kwargs.get::<Option<bool>>("recursive")?.unwrap_or(false);
    let list_merge: Option<String> = kwargs.get("list_merge")?;
    kwargs.assert_all_used()?;
    let mut acc = to_json_value(&base)?;
    for o in others.iter() {
        // `combine([a, b])` accepts a list of dicts too.
        let items: Vec<serde_json::Value> = match to_json_value(o)? {
            serde_json::Value::Array(a) => a,
            v => vec![v],
        };
        for item in items {
            merge_json(
                &mut acc,
                item,
                recursive,
                list_merge.as_deref().unwrap_or("replace"),
            )?;
        }
    }
    Ok(Value::from(minijinja::value::Serde(&acc)))
}

pub(super) fn merge_json(
    acc: &mut serde_json::Value,
    other: serde_json::Value,
    recursive: bool,
    list_merge: &str,
) -> Result<(), Error> {
    use serde_json::Value as J;
    match (acc, other) {
        (J::Object(a), J::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(existing) if recursive && existing.is_object() && v.is_object() => {
                        merge_json(existing, v, recursive, list_merge)?
                    }
                    Some(J::Array(existing)) if v.is_array() && list_merge != "replace" => {
                        let J::Array(new) = v else { unreachable!() };
                        match list_merge {
                            "append" => existing.extend(new),
                            "prepend" => {
                                let mut n = new;
                                n.append(existing);
                                *existing = n;
                            }
                            "keep" => {}
                            _ => *existing = new,
                        }
                    }
                    _ => {
                        a.insert(k, v);
                    }
                }
            }
            Ok(())
        }
        _ => Err(Error::new(
            ErrorKind::InvalidOperation,
            "combine expects dictionaries",
        )),
    }
}

/// Ansible's `product`: the cartesian product of the input and each argument
/// (itertools.product), as a list of lists.
pub(super) fn product(first: Value, rest: Rest<Value>) -> Result<Value, Error> {
    let mut acc: Vec<Vec<Value>> = vec![Vec::new()];
    for seq in std::iter::once(&first).chain(rest.iter()) {
        let items: Vec<Value> = seq.try_iter()?.collect();
        acc = acc
            .into_iter()
            .flat_map(|prefix| {
                items.iter().map(move |it| {
                    let mut p = prefix.clone();
                    p.push(it.clone());
                    p
                })
            })
            .collect();
    }
    Ok(Value::from(
        acc.into_iter().map(Value::from).collect::<Vec<Value>>(),
    ))
}

pub(super) fn dict2items(v: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let key_name: String = kwargs
        .get::<Option<String>>("key_name")?
        .unwrap_or("key".into());
    let value_name: String = kwargs
        .get::<Option<String>>("value_name")?
        .unwrap_or("value".into());
    kwargs.assert_all_used()?;
    if v.kind() != ValueKind::Map {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "dict2items expects a dictionary",
        ));
    }
    let mut out = Vec::new();
    for k in v.try_iter()? {
        let val = v.get_item(&k)?;
        out.push(Value::from_pairs([
            (key_name.clone(), k),
            (value_name.clone(), val),
        ]));
    }
    Ok(Value::from(out))
}

pub(super) fn items2dict(v: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let key_name: String = kwargs
        .get::<Option<String>>("key_name")?
        .unwrap_or("key".into());
    let value_name: String = kwargs
        .get::<Option<String>>("value_name")?
        .unwrap_or("value".into());
    kwargs.assert_all_used()?;
    let mut out = indexmap::IndexMap::new();
    for item in v.try_iter()? {
        let k = item.get_attr(&key_name)?;
        let val = item.get_attr(&value_name)?;
        out.insert(k.to_string(), val);
    }
    Ok(Value::from_pairs(out))
}

pub(super) fn test_match(s: &str, pattern: &str) -> Result<bool, Error> {
    Ok(regex(&format!("^(?:{pattern})"))?.is_match(s))
}

pub(super) fn test_search(s: &str, pattern: &str) -> Result<bool, Error> {
    Ok(regex(pattern)?.is_match(s))
}

pub(super) fn result_flag(v: &Value, key: &str) -> bool {
    v.get_attr(key).map(|x| truthy(&x)).unwrap_or(false)
}

pub(super) fn test_failed(v: Value) -> bool {
    result_flag(&v, "failed")
}

pub(super) fn test_succeeded(v: Value) -> bool {
    !result_flag(&v, "failed")
}

pub(super) fn test_changed(v: Value) -> bool {
    result_flag(&v, "changed")
}

pub(super) fn test_skipped(v: Value) -> bool {
    result_flag(&v, "skipped")
}
