//! "Did you mean": the closest of the names a user could have meant, for error reports
//! (op names, parameters, keywords, variables).

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
