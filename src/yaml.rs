//! A YAML tree that keeps source positions, for inventories and playbooks.
//!
//! Built on the event parser `granit-parser`, reached through serde-saphyr's
//! re-export (`serde_saphyr::granit_parser`), so ferry parses YAML with the same
//! maintained parser its serde layer uses and adds no second YAML crate.
//! serde-saphyr's `Spanned<T>` needs a serde type per shape; playbooks and
//! inventories are open-ended mappings whose every node needs a position, so a
//! small tree is built here from the parser's events instead.
//!
//! Scalars are resolved the way Ansible's loader (PyYAML, YAML 1.1) resolves
//! them where playbook authors rely on it: `yes`/`no`/`on`/`off`/`true`/`false`
//! in any case are booleans, `0755` is an octal integer (493), `~`/`null` and
//! empty values are null. Quoted scalars are always strings. Anchors, aliases
//! and `<<` merge keys are expanded. Duplicate keys and tab indentation are
//! errors with their positions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{NamedSource, SourceSpan};
use serde_json::{Map, Number, Value};
use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, Span, StructureStyle};

use crate::playbook::model::SourceLoc;

/// One YAML node with the position it was written at.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub loc: SourceLoc,
}

/// What a node holds.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// A YAML file that cannot be read or parsed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum YamlError {
    #[error("{}: cannot read: {source}", path.display())]
    #[diagnostic(code(ferry::yaml::read))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Syntax(Box<YamlSyntaxError>),
}

/// A parse error with its position and the source to show around it.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{loc}: {message}")]
#[diagnostic(code(ferry::yaml::syntax))]
pub struct YamlSyntaxError {
    pub loc: SourceLoc,
    pub message: String,
    #[help]
    pub help: Option<String>,
    #[source_code]
    pub src: NamedSource<String>,
    #[label("{label}")]
    pub span: SourceSpan,
    pub label: String,
}

impl YamlError {
    /// Where the error is (line 0 for a file that cannot be read).
    pub fn loc(&self) -> SourceLoc {
        match self {
            YamlError::Read { path, .. } => SourceLoc {
                file: Arc::new(path.clone()),
                line: 0,
                col: 0,
            },
            YamlError::Syntax(e) => e.loc.clone(),
        }
    }

    /// The message without the position.
    pub fn message(&self) -> String {
        match self {
            YamlError::Read { source, .. } => format!("cannot read: {source}"),
            YamlError::Syntax(e) => e.message.clone(),
        }
    }

    /// The hint, when there is one.
    pub fn hint(&self) -> Option<String> {
        match self {
            YamlError::Read { .. } => None,
            YamlError::Syntax(e) => e.help.clone(),
        }
    }

    /// The length in bytes of the marked span.
    pub fn span_len(&self) -> Option<usize> {
        match self {
            YamlError::Read { .. } => None,
            YamlError::Syntax(e) => Some(e.span.len()),
        }
    }

    /// The label under the marked span.
    pub fn label(&self) -> Option<String> {
        match self {
            YamlError::Read { .. } => None,
            YamlError::Syntax(e) => Some(e.label.clone()),
        }
    }
}

/// Read and parse a file: one node per YAML document.
pub fn parse_file(path: &Path) -> Result<Vec<Node>, YamlError> {
    let src = std::fs::read_to_string(path).map_err(|source| YamlError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_str(&src, path)
}

/// Parse YAML text that came from `path`: one node per YAML document.
pub fn parse_str(src: &str, path: &Path) -> Result<Vec<Node>, YamlError> {
    let file = Arc::new(path.to_path_buf());
    let mut builder = TreeBuilder {
        src,
        file: file.clone(),
        stack: Vec::new(),
        anchors: HashMap::new(),
        docs: Vec::new(),
    };
    let options = serde_saphyr::granit_parser::options! { emit_comments: false };
    let parser = Parser::new_from_str_with_options(src, options);
    for item in parser {
        match item {
            Ok((event, span)) => builder.event(event, span)?,
            Err(e) => {
                let m = e.marker();
                let loc = SourceLoc {
                    file: file.clone(),
                    line: m.line().max(1) as u32,
                    col: m.col() as u32 + 1,
                };
                // The parser's message for tabs is technical; name the usual cause.
                if let Some((line, col)) = first_tab_indent(src, loc.line) {
                    return Err(error(
                        src,
                        SourceLoc {
                            file: file.clone(),
                            line,
                            col,
                        },
                        "tab character used for indentation".into(),
                        "tab",
                        Some("YAML indentation must be spaces; replace the tab with spaces".into()),
                    ));
                }
                let message = e.info();
                let message = if message.is_empty() {
                    "invalid YAML".to_string()
                } else {
                    format!("invalid YAML: {message}")
                };
                let hint = if message.contains("unknown anchor") {
                    "an alias `*name` needs an anchor `&name` earlier in the same file"
                } else if message.contains("unclosed") {
                    "close the bracket or quote opened here (or quote the whole value)"
                } else {
                    "check the indentation of this line and the lines above it"
                };
                return Err(error(src, loc, message, "here", Some(hint.into())));
            }
        }
    }
    Ok(builder.docs)
}

/// A line at or before `upto` (1-based) whose indentation holds a tab, with the tab's position.
fn first_tab_indent(src: &str, upto: u32) -> Option<(u32, u32)> {
    for (i, line) in src.lines().enumerate() {
        let lineno = i as u32 + 1;
        if lineno > upto.saturating_add(1) {
            break;
        }
        let indent: String = line
            .chars()
            .take_while(|c| *c == ' ' || *c == '\t')
            .collect();
        if indent.len() < line.len()
            && let Some(pos) = indent.find('\t')
        {
            return Some((lineno, pos as u32 + 1));
        }
    }
    None
}

fn error(
    src: &str,
    loc: SourceLoc,
    message: String,
    label: &str,
    help: Option<String>,
) -> YamlError {
    let span = token_span(src, &loc);
    YamlError::Syntax(Box::new(YamlSyntaxError {
        src: NamedSource::new(loc.file.display().to_string(), src.to_string()),
        loc,
        message,
        help,
        span,
        label: label.to_string(),
    }))
}

/// Byte offsets of line starts, for turning many positions of one text into offsets.
#[derive(Debug, Clone, Default)]
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(src: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    /// Byte offset of a 1-based line and column (columns count characters).
    pub fn offset(&self, src: &str, line: u32, col: u32) -> usize {
        let Some(&start) = self.starts.get(line.saturating_sub(1) as usize) else {
            return src.len();
        };
        let rest = &src[start..];
        let chars = col.saturating_sub(1) as usize;
        start + rest.chars().take(chars).map(char::len_utf8).sum::<usize>()
    }
}

/// Byte offset of a 1-based line and column (columns count characters).
pub fn offset_of(src: &str, line: u32, col: u32) -> usize {
    let mut offset = 0;
    for (i, l) in src.split_inclusive('\n').enumerate() {
        if i as u32 + 1 == line {
            let chars = col.saturating_sub(1) as usize;
            let within: usize = l.chars().take(chars).map(char::len_utf8).sum();
            return offset + within;
        }
        offset += l.len();
    }
    src.len()
}

/// The span of the token written at `loc`: a quoted string up to its closing
/// quote, otherwise up to `: `, `,`, `]`, `}`, ` #` or the end of the line.
/// Empty tokens get a one-character span so a label can point at them.
pub fn token_span(src: &str, loc: &SourceLoc) -> SourceSpan {
    let start = offset_of(src, loc.line, loc.col).min(src.len());
    let rest = &src[start..];
    let line = rest.split('\n').next().unwrap_or("");
    let len = match line.chars().next() {
        Some(q @ ('"' | '\'')) => line[1..].find(q).map(|i| i + 2).unwrap_or(line.len()),
        _ => {
            let mut end = line.len();
            for pat in [": ", ",", "]", "}", " #"] {
                if let Some(i) = line.find(pat) {
                    end = end.min(i);
                }
            }
            if line.ends_with(':') {
                end = end.min(line.len() - 1);
            }
            line[..end].trim_end().len()
        }
    };
    let len = if len == 0 {
        line.chars().next().map(char::len_utf8).unwrap_or(0)
    } else {
        len
    };
    SourceSpan::new(start.into(), len)
}

enum Frame {
    Seq {
        loc: SourceLoc,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        loc: SourceLoc,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
    },
}

struct TreeBuilder<'s> {
    src: &'s str,
    file: Arc<PathBuf>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    docs: Vec<Node>,
}

impl TreeBuilder<'_> {
    fn loc(&self, span: &Span) -> SourceLoc {
        SourceLoc {
            file: self.file.clone(),
            line: span.start.line() as u32,
            col: span.start.col() as u32 + 1,
        }
    }

    /// A flow collection's position is its opening bracket (the parser marks what follows it).
    fn collection_loc(&self, span: &Span, style: StructureStyle, open: char) -> SourceLoc {
        let mut loc = self.loc(span);
        if style == StructureStyle::Flow && loc.col > 1 {
            let at = span
                .start
                .byte_offset()
                .unwrap_or_else(|| offset_of(self.src, loc.line, loc.col));
            if self.src.get(..at).is_some_and(|b| b.ends_with(open)) {
                loc.col -= 1;
            }
        }
        loc
    }

    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), YamlError> {
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let loc = self.loc(&span);
                let tag = tag.map(|t| (t.handle().to_string(), t.suffix().to_string()));
                let kind = self.resolve_scalar(&text, style, tag, &loc)?;
                let node = Node { kind, loc };
                if anchor != 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.push(node)
            }
            Event::SequenceStart(style, anchor, _) => {
                let loc = self.collection_loc(&span, style, '[');
                self.stack.push(Frame::Seq {
                    loc,
                    anchor,
                    items: Vec::new(),
                });
                Ok(())
            }
            Event::MappingStart(style, anchor, _) => {
                let loc = self.collection_loc(&span, style, '{');
                self.stack.push(Frame::Map {
                    loc,
                    anchor,
                    entries: Vec::new(),
                    key: None,
                });
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let node = match self.stack.pop() {
                    Some(Frame::Seq { loc, anchor, items }) => {
                        let node = Node {
                            kind: NodeKind::Seq(items),
                            loc,
                        };
                        if anchor != 0 {
                            self.anchors.insert(anchor, node.clone());
                        }
                        node
                    }
                    Some(Frame::Map {
                        loc,
                        anchor,
                        entries,
                        ..
                    }) => {
                        let entries = self.merge_and_check(entries)?;
                        let node = Node {
                            kind: NodeKind::Map(entries),
                            loc,
                        };
                        if anchor != 0 {
                            self.anchors.insert(anchor, node.clone());
                        }
                        node
                    }
                    None => return Ok(()),
                };
                self.push(node)
            }
            Event::Alias(id) => {
                let loc = self.loc(&span);
                match self.anchors.get(&id) {
                    Some(target) => {
                        let mut node = target.clone();
                        node.loc = loc;
                        self.push(node)
                    }
                    None => Err(error(
                        self.src,
                        loc,
                        "alias refers to an unknown anchor".into(),
                        "this alias",
                        Some("define the anchor (`&name`) before using it (`*name`)".into()),
                    )),
                }
            }
            Event::UnresolvedAlias(name) => {
                let loc = self.loc(&span);
                Err(error(
                    self.src,
                    loc,
                    format!("alias `*{name}` refers to an unknown anchor"),
                    "this alias",
                    Some("define the anchor (`&name`) before using it (`*name`)".into()),
                ))
            }
            Event::DocumentStart(..) => Ok(()),
            Event::DocumentEnd => Ok(()),
            _ => Ok(()),
        }
    }

    fn push(&mut self, node: Node) -> Result<(), YamlError> {
        match self.stack.last_mut() {
            None => {
                self.docs.push(node);
                Ok(())
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                Ok(())
            }
            Some(Frame::Map { entries, key, .. }) => {
                match key.take() {
                    None => *key = Some(node),
                    Some(k) => entries.push((k, node)),
                }
                Ok(())
            }
        }
    }

    /// Expand `<<` merge keys and reject duplicate keys.
    fn merge_and_check(&self, entries: Vec<(Node, Node)>) -> Result<Vec<(Node, Node)>, YamlError> {
        let mut out: Vec<(Node, Node)> = Vec::with_capacity(entries.len());
        let mut seen: HashMap<String, SourceLoc> = HashMap::new();
        let mut merged: Vec<(Node, Node)> = Vec::new();
        for (k, v) in entries {
            if k.as_str() == Some("<<") && matches!(k.kind, NodeKind::Str(_)) {
                let maps: Vec<&Node> = match &v.kind {
                    NodeKind::Seq(items) => items.iter().collect(),
                    _ => vec![&v],
                };
                for m in maps {
                    match &m.kind {
                        NodeKind::Map(es) => merged.extend(es.iter().cloned()),
                        _ => {
                            return Err(error(
                                self.src,
                                m.loc.clone(),
                                "`<<` merges a mapping or a list of mappings".into(),
                                "not a mapping",
                                Some("write `<<: *anchor` where `&anchor` names a mapping".into()),
                            ));
                        }
                    }
                }
                continue;
            }
            if matches!(k.kind, NodeKind::Map(_)) {
                return Err(error(
                    self.src,
                    k.loc.clone(),
                    "a mapping used as a key: an unquoted `{{ ... }}` template?".into(),
                    "quote this value",
                    Some("a value that starts with `{{` must be quoted: \"{{ var }}\"".into()),
                ));
            }
            let key = k.key_text();
            if let Some(first) = seen.get(&key) {
                return Err(error(
                    self.src,
                    k.loc.clone(),
                    format!("duplicate key `{key}` (first set at line {})", first.line),
                    "set again here",
                    Some("a key may appear once per mapping; remove one of them".into()),
                ));
            }
            seen.insert(key, k.loc.clone());
            out.push((k, v));
        }
        // Merged keys fill in what the mapping does not set itself (earlier merges win).
        for (k, v) in merged {
            let key = k.key_text();
            if let std::collections::hash_map::Entry::Vacant(e) = seen.entry(key) {
                e.insert(k.loc.clone());
                out.push((k, v));
            }
        }
        Ok(out)
    }

    fn resolve_scalar(
        &self,
        text: &str,
        style: ScalarStyle,
        tag: Option<(String, String)>,
        loc: &SourceLoc,
    ) -> Result<NodeKind, YamlError> {
        if let Some((handle, suffix)) = &tag {
            let core = handle == "tag:yaml.org,2002:";
            match (core, suffix.as_str()) {
                (true, "str") => return Ok(NodeKind::Str(text.to_string())),
                (true, "int") => {
                    if let Some(i) = parse_int(text) {
                        return Ok(NodeKind::Int(i));
                    }
                }
                (true, "float") => {
                    if let Some(f) = parse_float(text) {
                        return Ok(NodeKind::Float(f));
                    }
                }
                (true, "bool") => {
                    if let Some(b) = parse_bool(text) {
                        return Ok(NodeKind::Bool(b));
                    }
                }
                (true, "null") => return Ok(NodeKind::Null),
                (false, "vault") => {
                    return Err(error(
                        self.src,
                        loc.clone(),
                        "ansible-vault encrypted values are not supported".into(),
                        "vault value",
                        Some("decrypt the value, or pass it with --extra-vars @file.yml".into()),
                    ));
                }
                // `!unsafe` and other local tags: the text as written.
                _ => return Ok(NodeKind::Str(text.to_string())),
            }
        }
        if style != ScalarStyle::Plain {
            return Ok(NodeKind::Str(text.to_string()));
        }
        Ok(resolve_plain(text))
    }
}

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

fn parse_bool(text: &str) -> Option<bool> {
    let is = |w: &str| text.eq_ignore_ascii_case(w);
    if is("yes") || is("on") || is("true") {
        Some(true)
    } else if is("no") || is("off") || is("false") {
        Some(false)
    } else {
        None
    }
}

fn parse_int(text: &str) -> Option<i64> {
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

fn parse_float(text: &str) -> Option<f64> {
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

impl Node {
    /// The value as JSON (ordered maps; non-string keys become their text).
    pub fn to_value(&self) -> Value {
        match &self.kind {
            NodeKind::Null => Value::Null,
            NodeKind::Bool(b) => Value::Bool(*b),
            NodeKind::Int(i) => Value::Number((*i).into()),
            NodeKind::Float(f) => Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or_else(|| Value::String(f.to_string())),
            NodeKind::Str(s) => Value::String(s.clone()),
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            NodeKind::Map(entries) => {
                let mut m = Map::new();
                for (k, v) in entries {
                    m.insert(k.key_text(), v.to_value());
                }
                Value::Object(m)
            }
        }
    }

    /// A key as text: strings as they are, other scalars as YAML would print them.
    pub fn key_text(&self) -> String {
        match &self.kind {
            NodeKind::Str(s) => s.clone(),
            NodeKind::Null => "null".into(),
            NodeKind::Bool(b) => b.to_string(),
            NodeKind::Int(i) => i.to_string(),
            NodeKind::Float(f) => f.to_string(),
            NodeKind::Seq(_) | NodeKind::Map(_) => self.to_value().to_string(),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match &self.kind {
            NodeKind::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match &self.kind {
            NodeKind::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match &self.kind {
            NodeKind::Int(i) => Some(*i as f64),
            NodeKind::Float(f) => Some(*f),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Seq(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            NodeKind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.kind, NodeKind::Null)
    }

    /// The value under a key of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.get_entry(key).map(|(_, v)| v)
    }

    /// The key node and value under a key of a mapping.
    pub fn get_entry(&self, key: &str) -> Option<(&Node, &Node)> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.key_text() == key)
            .map(|(k, v)| (k, v))
    }

    /// A scalar's text as a user wrote it (strings, numbers and booleans); None for collections/null.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.kind {
            NodeKind::Str(s) => Some(s.clone()),
            NodeKind::Bool(b) => Some(b.to_string()),
            NodeKind::Int(i) => Some(i.to_string()),
            NodeKind::Float(f) => Some(f.to_string()),
            _ => None,
        }
    }

    /// What kind of value this is, for error messages ("a string", "a mapping", ...).
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Null => "null",
            NodeKind::Bool(_) => "a boolean",
            NodeKind::Int(_) => "an integer",
            NodeKind::Float(_) => "a number",
            NodeKind::Str(_) => "a string",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<Vec<Node>, YamlError> {
        parse_str(src, Path::new("t.yml"))
    }

    #[test]
    fn positions_are_one_based() {
        let docs = parse("- hosts: all\n  tasks:\n    - debug: msg=hi\n").unwrap();
        let play = &docs[0].as_seq().unwrap()[0];
        let (k, v) = play.get_entry("tasks").unwrap();
        assert_eq!((k.loc.line, k.loc.col), (2, 3));
        let task = &v.as_seq().unwrap()[0];
        let (k, _) = task.get_entry("debug").unwrap();
        assert_eq!((k.loc.line, k.loc.col), (3, 7));
    }

    #[test]
    fn yaml11_scalars() {
        let docs =
            parse("a: yes\nb: Off\nc: 0755\nd: '0755'\ne: 1.5\nf: ~\ng: 12\nh: 1.2.3\ni: TRUE\n")
                .unwrap();
        let v = docs[0].to_value();
        assert_eq!(
            v,
            serde_json::json!({"a": true, "b": false, "c": 493, "d": "0755", "e": 1.5, "f": null, "g": 12, "h": "1.2.3", "i": true})
        );
    }

    #[test]
    fn duplicate_key_is_an_error_at_the_second() {
        let e = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!((e.loc().line, e.loc().col), (3, 1));
        assert!(e.message().contains("duplicate key `a`"), "{}", e.message());
    }

    #[test]
    fn tab_indentation_is_an_error() {
        let e = parse("a:\n\tb: 1\n").unwrap_err();
        assert_eq!((e.loc().line, e.loc().col), (2, 1));
        assert!(e.message().contains("tab"), "{}", e.message());
    }

    #[test]
    fn unquoted_template_is_named() {
        let e = parse("a: {{ x }}\n").unwrap_err();
        assert!(e.hint().unwrap().contains("quoted"));
        assert_eq!((e.loc().line, e.loc().col), (1, 4));
    }

    #[test]
    fn anchors_and_merge_keys() {
        let docs = parse("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n").unwrap();
        let v = docs[0].to_value();
        assert_eq!(v["other"], serde_json::json!({"y": 3, "x": 1}));
    }

    #[test]
    fn bad_indentation_reports_a_position() {
        let e = parse("- name: x\n  debug:\n    msg: a\n   bad: b\n").unwrap_err();
        assert!(e.loc().line >= 3, "{:?}", e.loc());
    }
}
