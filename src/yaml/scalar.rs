//! How plain scalars resolve, YAML 1.1 style as Ansible's loader reads them.

use super::NodeKind;

/// How a plain (unquoted) scalar resolves, YAML 1.1 style as Ansible reads it.
pub fn resolve_plain(text: &str) -> NodeKind {
    // Fast path: most plain scalars are words that cannot be anything but strings.
    match text.as_bytes().first() {
        Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'~') => {}
        Some(b'y' | b'Y' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'o' | b'O')
            if text.len() <= 5 => {}
        None => return NodeKind::Null,
        _ => return NodeKind::Str(text.to_string()),
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return NodeKind::Null,
        _ => {}
    }
    if let Some(b) = parse_bool(text) {
        return NodeKind::Bool(b);
    }
    if let Some(i) = parse_int(text) {
        return NodeKind::Int(i);
    }
    if let Some(f) = parse_float(text) {
        return NodeKind::Float(f);
    }
    NodeKind::Str(text.to_string())
}

pub(super) fn parse_bool(text: &str) -> Option<bool> {
    let is = |w: &str| text.eq_ignore_ascii_case(w);
    if is("yes") || is("on") || is("true") {
        Some(true)
    } else if is("no") || is("off") || is("false") {
        Some(false)
    } else {
        None
    }
}

pub(super) fn parse_int(text: &str) -> Option<i64> {
    let (neg, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if body.is_empty() || body.starts_with('_') {
        return None;
    }
    let owned;
    let clean: &str = if body.contains('_') {
        owned = body.replace('_', "");
        &owned
    } else {
        body
    };
    let value = if let Some(h) = clean.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(o) = clean.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()?
    } else if let Some(b) = clean.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()?
    } else if clean.len() > 1 && clean.starts_with('0') {
        // YAML 1.1 octal, as in `mode: 0755`.
        i64::from_str_radix(&clean[1..], 8).ok()?
    } else if clean.bytes().all(|b| b.is_ascii_digit()) {
        clean.parse().ok()?
    } else {
        return None;
    };
    Some(if neg { -value } else { value })
}

pub(super) fn parse_float(text: &str) -> Option<f64> {
    match text {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        _ => {}
    }
    let owned;
    let clean: &str = if text.contains('_') {
        owned = text.replace('_', "");
        &owned
    } else {
        text
    };
    let body = clean.trim_start_matches(['-', '+']);
    // A number with a dot or an exponent, digits only otherwise (no `1.2.3`, no `inf`).
    let first = body.chars().next()?;
    if !(first.is_ascii_digit() || first == '.') {
        return None;
    }
    if !body
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
    {
        return None;
    }
    if !body.contains(['.', 'e', 'E']) {
        return None;
    }
    clean.parse().ok()
}
