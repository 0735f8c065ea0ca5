//! Ansible's free-form arguments (`command: echo hi creates=/f`): split into words,
//! `key=value` options pulled out.

/// Split free-form `k=v` text into tokens, keeping quotes and `{{ }}` together.
pub fn split_free_form(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut depth = 0usize;
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '{' if quote.is_none() && matches!(next, Some('{') | Some('%')) => {
                depth += 1;
                cur.push(c);
                cur.push(next.unwrap_or('{'));
                i += 2;
                continue;
            }
            '}' | '%' if quote.is_none() && depth > 0 && next == Some('}') => {
                depth -= 1;
                cur.push(c);
                cur.push('}');
                i += 2;
                continue;
            }
            '"' | '\'' if depth == 0 => {
                match quote {
                    Some(q) if q == c => quote = None,
                    None => quote = Some(c),
                    _ => {}
                }
                cur.push(c);
            }
            // A newline ends the line's last token and is kept on it (as
            // Ansible's split_args does), so a multi-line `shell: |` script
            // stays multi-line.
            '\n' if quote.is_none() && depth == 0 => {
                if !cur.is_empty() {
                    cur.push('\n');
                    out.push(std::mem::take(&mut cur));
                } else if let Some(last) = out.last_mut().filter(|t| !t.ends_with('\n')) {
                    last.push('\n');
                }
            }
            c if c.is_whitespace() && quote.is_none() && depth == 0 => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
        i += 1;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Free-form tokens joined back as Ansible's join_args does: a space between
/// tokens on one line, nothing after a token that ends its line.
pub(super) fn join_free_form(tokens: &[&str]) -> String {
    let mut out = String::new();
    for t in tokens {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push(' ');
        }
        out.push_str(t);
    }
    out.trim_end_matches('\n').to_string()
}

pub(super) fn unquote(v: &str) -> String {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_string();
        }
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_free_form_is_unchanged() {
        assert_eq!(
            split_free_form("echo {{ a }} 'x y' creates=/f"),
            vec!["echo", "{{ a }}", "'x y'", "creates=/f"]
        );
        assert_eq!(join_free_form(&["a", "b\n", "c"]), "a b\nc");
    }
}
