//! Temporary spanned YAML reader for the inventory loader, with the same shape as the
//! shared `crate::yaml` module (Node/NodeKind/parse_file) so it can be swapped for it.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use crate::playbook::model::SourceLoc;

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub loc: SourceLoc,
}

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

#[derive(Debug, Clone)]
pub struct YamlError {
    pub loc: SourceLoc,
    pub message: String,
}

impl Node {
    pub fn to_value(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            NodeKind::Null => Value::Null,
            NodeKind::Bool(b) => Value::Bool(*b),
            NodeKind::Int(i) => Value::from(*i),
            NodeKind::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            NodeKind::Str(s) => Value::String(s.clone()),
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            NodeKind::Map(pairs) => Value::Object(
                pairs
                    .iter()
                    .map(|(k, v)| (k.key_string(), v.to_value()))
                    .collect(),
            ),
        }
    }

    /// A mapping key as a string (Ansible turns scalar keys into strings).
    pub fn key_string(&self) -> String {
        match &self.kind {
            NodeKind::Str(s) => s.clone(),
            NodeKind::Null => String::new(),
            NodeKind::Bool(b) => if *b { "True" } else { "False" }.to_string(),
            NodeKind::Int(i) => i.to_string(),
            NodeKind::Float(f) => f.to_string(),
            _ => self.to_value().to_string(),
        }
    }
}

struct Raw(Spanned<RawKind>);
enum RawKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Raw>),
    Map(Vec<(Raw, Raw)>),
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Spanned::<RawKind>::deserialize(d).map(Raw)
    }
}

impl<'de> Deserialize<'de> for RawKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KindVisitor)
    }
}

struct KindVisitor;
impl<'de> Visitor<'de> for KindVisitor {
    type Value = RawKind;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<RawKind, E> {
        Ok(RawKind::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<RawKind, E> {
        Ok(RawKind::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawKind, E> {
        i64::try_from(v)
            .map(RawKind::Int)
            .or(Ok(RawKind::Float(v as f64)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<RawKind, E> {
        Ok(RawKind::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<RawKind, E> {
        Ok(RawKind::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<RawKind, E> {
        Ok(RawKind::Str(v))
    }
    fn visit_unit<E>(self) -> Result<RawKind, E> {
        Ok(RawKind::Null)
    }
    fn visit_none<E>(self) -> Result<RawKind, E> {
        Ok(RawKind::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RawKind, D::Error> {
        RawKind::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawKind, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Raw>()? {
            items.push(item);
        }
        Ok(RawKind::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawKind, A::Error> {
        let mut pairs = Vec::new();
        while let Some(k) = map.next_key::<Raw>()? {
            let v = map.next_value::<Raw>()?;
            pairs.push((k, v));
        }
        Ok(RawKind::Map(pairs))
    }
}

fn convert(raw: Raw, file: &Arc<std::path::PathBuf>) -> Node {
    let loc = SourceLoc {
        file: file.clone(),
        line: raw.0.referenced.line() as u32,
        col: raw.0.referenced.column() as u32,
    };
    let kind = match raw.0.value {
        RawKind::Null => NodeKind::Null,
        RawKind::Bool(b) => NodeKind::Bool(b),
        RawKind::Int(i) => NodeKind::Int(i),
        RawKind::Float(f) => NodeKind::Float(f),
        RawKind::Str(s) => NodeKind::Str(s),
        RawKind::Seq(items) => NodeKind::Seq(items.into_iter().map(|i| convert(i, file)).collect()),
        RawKind::Map(pairs) => NodeKind::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (convert(k, file), convert(v, file)))
                .collect(),
        ),
    };
    Node { kind, loc }
}

pub fn parse_str(src: &str, path: &Path) -> Result<Vec<Node>, YamlError> {
    let file = Arc::new(path.to_path_buf());
    if let Some(pos) = src.lines().position(|l| {
        let t = l.trim_start_matches(' ');
        t.starts_with('\t')
    }) {
        let line = src.lines().nth(pos).unwrap_or("");
        let col = line.find('\t').unwrap_or(0) + 1;
        return Err(YamlError {
            loc: SourceLoc {
                file,
                line: pos as u32 + 1,
                col: col as u32,
            },
            message: "tab character in indentation; YAML indents with spaces only".into(),
        });
    }
    if src.trim().is_empty() {
        return Ok(Vec::new());
    }
    let docs: Vec<Raw> =
        serde_saphyr::from_multiple_with_options(src, serde_saphyr::options::Options::default())
            .map_err(|e| {
                let (line, col) = e
                    .location()
                    .map(|l| (l.line() as u32, l.column() as u32))
                    .unwrap_or((0, 0));
                let message = e.to_string();
                let message = message.lines().next().unwrap_or("").to_string();
                YamlError {
                    loc: SourceLoc {
                        file: file.clone(),
                        line,
                        col,
                    },
                    message,
                }
            })?;
    Ok(docs.into_iter().map(|d| convert(d, &file)).collect())
}

pub fn parse_file(path: &Path) -> Result<Vec<Node>, YamlError> {
    let src = std::fs::read_to_string(path).map_err(|e| YamlError {
        loc: SourceLoc {
            file: Arc::new(path.to_path_buf()),
            line: 0,
            col: 0,
        },
        message: format!("cannot read: {e}"),
    })?;
    parse_str(&src, path)
}
