//! Positions in a YAML text: line starts, and the span of the token at a
//! line:column (for the error reports that underline it).

use std::path::PathBuf;
use std::sync::Arc;

use miette::SourceSpan;
use serde::Serialize;

/// Where something was written: file, 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Default)]
pub struct SourceLoc {
    pub file: Arc<PathBuf>,
    pub line: u32,
    pub col: u32,
}

impl std::fmt::Display for SourceLoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
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
