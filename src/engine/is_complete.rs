//! `is_complete`: whether a console should run the code typed so far or wait for more lines.

/// The answer to an `is_complete_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completeness {
    /// Ready to run.
    Complete,
    /// Needs more lines; the indent to offer on the next one.
    Incomplete(String),
    /// Can never become valid by adding lines (a stray or mismatched closing bracket).
    Invalid,
}

/// Scans Rust source for unclosed brackets, strings (also raw and byte strings), char literals
/// and block comments (which nest in Rust). Lines that start with `%` (magics) or `:` (evcxr
/// commands) are complete on their own; a `%%` cell magic is always complete.
///
/// ```
/// use rust_cluster_kernel::engine::{is_complete, Completeness};
/// assert_eq!(is_complete("fn f() {"), Completeness::Incomplete("    ".into()));
/// assert_eq!(is_complete("let x = 1;"), Completeness::Complete);
/// assert_eq!(is_complete("let x = 1);"), Completeness::Invalid);
/// ```
pub fn is_complete(code: &str) -> Completeness {
    scan(code, &mut None)
}

/// Whether the Rust code ends with a `;` (comments and whitespace aside): then it has no final
/// expression, so whatever it printed is no value of the cell.
///
/// ```
/// use rust_cluster_kernel::engine::ends_with_semicolon;
/// assert!(ends_with_semicolon("println!(\"x\"); // done"));
/// assert!(!ends_with_semicolon("let x = 1; x"));
/// assert!(!ends_with_semicolon("\";\""));
/// ```
pub fn ends_with_semicolon(code: &str) -> bool {
    let mut last = None;
    scan(code, &mut last) == Completeness::Complete && last == Some(';')
}

/// [`is_complete`]'s scanner; `last` gets the last character of code (outside comments).
fn scan(code: &str, last: &mut Option<char>) -> Completeness {
    if code.trim_start().starts_with("%%") {
        return Completeness::Complete;
    }
    let rust: String = code
        .lines()
        .filter(|l| !(l.trim_start().starts_with('%') || l.trim_start().starts_with(':')))
        .collect::<Vec<_>>()
        .join("\n");
    let chars: Vec<char> = rust.chars().collect();
    let mut stack: Vec<char> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '/' if next == Some('/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if next == Some('*') => {
                let mut depth = 1;
                i += 2;
                while i < chars.len() && depth > 0 {
                    match (chars[i], chars.get(i + 1).copied()) {
                        ('/', Some('*')) => {
                            depth += 1;
                            i += 1;
                        }
                        ('*', Some('/')) => {
                            depth -= 1;
                            i += 1;
                        }
                        _ => {}
                    }
                    i += 1;
                }
                if depth > 0 {
                    return Completeness::Incomplete(String::new());
                }
                continue;
            }
            'r' | 'b' if is_raw_string_start(&chars, i) => {
                let mut j = i + 1;
                if chars[j] == 'r' {
                    j += 1;
                }
                let mut hashes = 0;
                while chars.get(j) == Some(&'#') {
                    hashes += 1;
                    j += 1;
                }
                j += 1; // opening quote
                let closed = loop {
                    match chars.get(j) {
                        None => break false,
                        Some('"') if (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) => {
                            j += hashes;
                            break true;
                        }
                        _ => j += 1,
                    }
                };
                if !closed {
                    return Completeness::Incomplete(String::new());
                }
                i = j;
            }
            '"' => {
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Completeness::Incomplete(String::new()),
                        Some('\\') => i += 2,
                        Some('"') => break,
                        _ => i += 1,
                    }
                }
            }
            '\'' => {
                // A char literal ('a', '\n', '\u{1F600}') or a lifetime ('a): skip only literals.
                if next == Some('\\') {
                    if let Some(end) = (i + 2..chars.len().min(i + 12)).find(|&k| chars[k] == '\'')
                    {
                        i = end;
                    }
                } else if chars.get(i + 2) == Some(&'\'') {
                    i += 2;
                }
            }
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => {
                let open = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if stack.pop() != Some(open) {
                    return Completeness::Invalid;
                }
            }
            _ => {}
        }
        if let Some(&c) = chars.get(i).filter(|c| !c.is_whitespace()) {
            *last = Some(c);
        }
        i += 1;
    }
    if stack.is_empty() {
        if rust.trim_end().ends_with('\\') {
            return Completeness::Incomplete(String::new());
        }
        Completeness::Complete
    } else {
        Completeness::Incomplete("    ".repeat(stack.len()))
    }
}

/// `r"`, `r#"`, `br"`, `br#"` at `i`, not inside an identifier such as `bar"`.
fn is_raw_string_start(chars: &[char], i: usize) -> bool {
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return false;
    }
    let mut j = i;
    if chars[j] == 'b' {
        j += 1;
        if chars.get(j) != Some(&'r') {
            return false;
        }
    }
    j += 1;
    while chars.get(j) == Some(&'#') {
        j += 1;
    }
    chars.get(j) == Some(&'"')
}

#[cfg(test)]
mod tests {
    use super::{is_complete, Completeness::*};

    #[test]
    fn complete_code() {
        for code in [
            "40 + 2",
            "let s = \"a { b\";",
            "fn f<'a>(x: &'a str) -> char { 'x' }",
            "let c = '{';",
            "// { unclosed in a comment",
            "let r = r#\"a \" { b\"#;",
            "/* a /* nested */ b */ 1",
            "%cluster up --nodes 2",
            ":dep serde",
            "%%bash\nif [ 1 ]; then",
        ] {
            assert_eq!(is_complete(code), Complete, "{code}");
        }
    }

    #[test]
    fn incomplete_code() {
        assert_eq!(is_complete("fn f() {"), Incomplete("    ".into()));
        assert_eq!(
            is_complete("fn f() {\n    let v = vec![1,"),
            Incomplete("        ".into())
        );
        assert_eq!(is_complete("let s = \"open"), Incomplete(String::new()));
        assert_eq!(
            is_complete("let s = r#\"open\" still"),
            Incomplete(String::new())
        );
        assert_eq!(
            is_complete("/* open /* nested */"),
            Incomplete(String::new())
        );
        assert_eq!(
            is_complete("let s = \"escaped \\\" quote"),
            Incomplete(String::new())
        );
    }

    #[test]
    fn invalid_code() {
        assert_eq!(is_complete("let x = 1);"), Invalid);
        assert_eq!(is_complete("fn f() { ]"), Invalid);
        assert_eq!(is_complete("}"), Invalid);
    }
}
