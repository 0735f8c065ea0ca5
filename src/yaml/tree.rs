//! The tree builder: the parser's events into [`Node`]s with positions,
//! anchors and aliases expanded, `<<` merge keys applied, duplicate keys refused.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde_saphyr::granit_parser::{Event, ScalarStyle, Span, StructureStyle};

use super::SourceLoc;
use super::scalar::{parse_bool, parse_float, parse_int, resolve_plain};
use super::{Node, NodeKind, YamlError, error, offset_of};

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

pub(super) struct TreeBuilder<'s> {
    src: &'s str,
    file: Arc<PathBuf>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    pub(super) docs: Vec<Node>,
}

impl<'s> TreeBuilder<'s> {
    pub(super) fn new(src: &'s str, file: Arc<PathBuf>) -> Self {
        TreeBuilder {
            src,
            file,
            stack: Vec::new(),
            anchors: HashMap::new(),
            docs: Vec::new(),
        }
    }

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

    pub(super) fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), YamlError> {
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
