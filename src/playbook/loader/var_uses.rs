//! Where templates and expressions use which variables (for `ferry check`'s undefined
//! variable check), and the file:line:col of each use.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use crate::playbook::diag::Problem;
use crate::playbook::model::*;
use crate::template;
use crate::yaml::{Node, NodeKind};

use super::{Loader, TaskCtx, VarUse};

impl Loader {
    pub(super) fn template_file_uses(&mut self, path: &Path, from: &SourceLoc, ctx: &TaskCtx) {
        if !self.template_cache.contains_key(path) {
            let needs = self.template_file_needs(path, from);
            self.template_cache.insert(path.to_path_buf(), needs);
        }
        let Some(Some(needs)) = self.template_cache.get(path) else {
            return;
        };
        let mut local = ctx.local.as_ref().clone();
        local.push("template_path".into());
        local.push("ansible_managed".into());
        let local = Arc::new(local);
        let uses: Vec<VarUse> = needs
            .iter()
            .map(|(n, loc)| VarUse {
                name: n.clone(),
                loc: loc.clone(),
                play: self.play_index,
                local: local.clone(),
            })
            .collect();
        self.out.uses.extend(uses);
    }

    /// Parse a template file once: the names it needs with where, or None after reporting its syntax error.
    pub(super) fn template_file_needs(
        &mut self,
        path: &Path,
        from: &SourceLoc,
    ) -> Option<Vec<(String, SourceLoc)>> {
        let src = match std::fs::read_to_string(path) {
            Ok(s) => s,
            Err(e) => {
                self.problem(
                    Problem::unreadable(from, "template ", path, &e).label("this template"),
                );
                return None;
            }
        };
        let file = Arc::new(path.to_path_buf());
        match template::check_file(path, &src) {
            Ok(names) => Some(
                names
                    .into_iter()
                    .map(|n| {
                        let (line, col) = find_name(&src, &n).unwrap_or((1, 1));
                        (
                            n,
                            SourceLoc {
                                file: file.clone(),
                                line,
                                col,
                            },
                        )
                    })
                    .collect(),
            ),
            Err(e) => {
                let (line, col) = match &e.range {
                    Some(r) => line_col(&src, r.start),
                    None => (e.line.unwrap_or(1) as u32, 1),
                };
                let message = e
                    .message
                    .split(" (in template")
                    .next()
                    .unwrap_or(&e.message)
                    .to_string();
                self.problem(
                    Problem::error(
                        &SourceLoc { file, line, col },
                        format!("template syntax: {message}"),
                    )
                    .label("here")
                    .hint("see the Jinja syntax near this point"),
                );
                None
            }
        }
    }

    /// Record the variables every string inside a node needs.
    pub(super) fn template_uses(&mut self, node: &Node, ctx: &TaskCtx) {
        match &node.kind {
            NodeKind::Str(s) => self.string_uses(node, s, ctx),
            NodeKind::Seq(items) => {
                for i in items {
                    self.template_uses(i, ctx);
                }
            }
            NodeKind::Map(entries) => {
                for (_, v) in entries {
                    self.template_uses(v, ctx);
                }
            }
            _ => {}
        }
    }

    pub(super) fn string_uses(&mut self, node: &Node, s: &str, ctx: &TaskCtx) {
        if !template::is_template(s) {
            return;
        }
        match template::check_str(s) {
            Ok(names) => {
                for n in names {
                    let loc = self.name_loc(node, s, &n);
                    self.out.uses.push(VarUse {
                        name: n,
                        loc,
                        play: self.play_index,
                        local: ctx.local.clone(),
                    });
                }
            }
            Err(e) => {
                let loc = match &e.range {
                    Some(r) => self.offset_loc(node, s, r.start),
                    None => node.loc.clone(),
                };
                self.problem(
                    Problem::error(&loc, format!("template syntax: {}", e.message))
                        .label("here")
                        .hint("check the `{{ }}` / `{% %}` pairs and the expression inside"),
                );
            }
        }
    }

    pub(super) fn expression_uses(&mut self, node: &Node, expr: &str, ctx: &TaskCtx) {
        match template::check_expression(expr) {
            Ok(names) => {
                for n in names {
                    let loc = self.name_loc(node, expr, &n);
                    self.out.uses.push(VarUse {
                        name: n,
                        loc,
                        play: self.play_index,
                        local: ctx.local.clone(),
                    });
                }
            }
            Err(e) => {
                let loc = match &e.range {
                    Some(r) if !expr.trim_start().starts_with("{{") => {
                        self.offset_loc(node, expr, r.start)
                    }
                    _ => node.loc.clone(),
                };
                self.problem(
                    Problem::error(&loc, format!("condition syntax: {}", e.message))
                        .label("here")
                        .hint("a condition is a bare Jinja expression, e.g. `when: x == 1`"),
                );
            }
        }
    }

    /// Where `name` is written inside a string node (the node itself when that cannot be told).
    pub(super) fn name_loc(&self, node: &Node, s: &str, name: &str) -> SourceLoc {
        match template::word_positions(s, name).next() {
            Some(off) => self.offset_loc(node, s, off),
            None => node.loc.clone(),
        }
    }

    /// The source position of byte `off` of a string node's value, when it is written on one line.
    pub(super) fn offset_loc(&self, node: &Node, s: &str, off: usize) -> SourceLoc {
        let Some((src, index)) = self.sources.get(&*node.loc.file) else {
            return node.loc.clone();
        };
        if let Some(nl) = s[..off.min(s.len())].rfind('\n') {
            return Self::block_loc(node, src, s, off, nl);
        }
        let start = index.offset(src, node.loc.line, node.loc.col);
        let rest = &src[start.min(src.len())..];
        let line = rest.split('\n').next().unwrap_or("");
        let (skip, body) = match line.chars().next() {
            Some('"') | Some('\'') => (1, &line[1..]),
            _ => (0, line),
        };
        // Only when the text is written as is (no escapes before the offset).
        if body.get(..off).is_some_and(|b| b == &s[..off]) {
            let mut loc = node.loc.clone();
            loc.col += (skip + s[..off].chars().count()) as u32;
            return loc;
        }
        node.loc.clone()
    }

    /// Byte `off` (after a newline at `nl`) of a literal block scalar (`|`),
    /// whose lines are the source's lines less their indentation; the node's
    /// own position otherwise.
    pub(super) fn block_loc(node: &Node, src: &str, s: &str, off: usize, nl: usize) -> SourceLoc {
        let lines_before = s[..off].matches('\n').count();
        let text_line = s[nl + 1..].split('\n').next().unwrap_or("");
        let indent = node.loc.col.saturating_sub(1) as usize;
        let src_line = src
            .lines()
            .nth(node.loc.line as usize - 1 + lines_before)
            .unwrap_or("");
        if src_line.get(indent..) == Some(text_line) && !text_line.is_empty() {
            let mut loc = node.loc.clone();
            loc.line += lines_before as u32;
            loc.col += s[nl + 1..off].chars().count() as u32;
            return loc;
        }
        node.loc.clone()
    }
}

pub(super) fn line_col(src: &str, off: usize) -> (u32, u32) {
    let before = &src[..off.min(src.len())];
    let line = before.matches('\n').count() as u32 + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() as u32 + 1;
    (line, col)
}

/// Line and column of the first use of `name` inside `{{ }}`/`{% %}` in a template text.
pub(super) fn find_name(src: &str, name: &str) -> Option<(u32, u32)> {
    let mut first = None;
    for i in template::word_positions(src, name) {
        first.get_or_insert(i);
        let before = &src[..i];
        let open = before.rfind("{{").max(before.rfind("{%"));
        let close = before.rfind("}}").max(before.rfind("%}"));
        if open.is_some() && (close.is_none() || open > close) {
            return Some(line_col(src, i));
        }
    }
    first.map(|i| line_col(src, i))
}

/// Every name a set of uses needs, for tests and tools.
pub fn needed_names(uses: &[VarUse]) -> BTreeSet<String> {
    uses.iter().map(|u| u.name.clone()).collect()
}
