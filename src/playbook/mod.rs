//! Playbook model and its loader/validator with file:line:col errors.
//!
//! - [`loader`] turns YAML files (through [`crate::yaml`]) into the model,
//!   collecting every problem it finds instead of stopping at the first.
//! - [`check`] validates what was loaded: op arguments against
//!   [`crate::ops::schema`], templates, files, handlers, host patterns and
//!   variables that no layer could define.
//! - [`load_and_check`] is what `ferry check` and `ferry run` call.

pub mod check;
pub mod diag;
pub mod loader;
pub mod model;

pub use check::load_and_check;
pub use diag::{CheckReport, Problem, Severity};
pub use model::*;

/// The closest candidate to a misspelt name, if one is close enough to be a likely typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(word, c);
        if score > best.map(|b| b.0).unwrap_or(0.0) {
            best = Some((score, c));
        }
    }
    best.filter(|(s, c)| *s >= 0.8 || strsim::levenshtein(word, c) <= 2 && word.len() > 2)
        .map(|(_, c)| c.to_string())
}
