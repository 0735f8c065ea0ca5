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

use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{NamedSource, SourceSpan};
use serde_json::{Map, Number, Value};
use serde_saphyr::granit_parser::Parser;

mod scalar;
mod span;
mod tree;

pub use scalar::resolve_plain;
pub use span::{LineIndex, SourceLoc, offset_of, token_span};
use tree::TreeBuilder;

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
    let mut builder = TreeBuilder::new(src, file.clone());
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
