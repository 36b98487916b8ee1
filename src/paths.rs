//! Paths as the user writes them in magics and settings: `~/`, `$VAR`, `${VAR:-default}`.
//!
//! A leaf of the crate, shared by the magics and the Python bridge.

/// Expands a path as a shell would, without running one: a leading `~/`, `$VAR`, `${VAR}` and
/// `${VAR:-default}` (an unset or empty variable gives the default, itself expanded).
///
/// ```
/// use rust_cluster_kernel::paths::expand_path;
/// std::env::set_var("RCK_DOC_DIR", "/data");
/// assert_eq!(expand_path("${RCK_DOC_DIR}/x"), "/data/x");
/// assert_eq!(expand_path("${RCK_UNSET_VAR:-/tmp}/y"), "/tmp/y");
/// ```
pub fn expand_path(path: &str) -> String {
    let home = std::env::var("HOME").unwrap_or_default();
    let path = match path.strip_prefix("~/") {
        Some(rest) => format!("{home}/{rest}"),
        None if path == "~" => home,
        None => path.to_owned(),
    };
    let chars: Vec<char> = path.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '$' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        if chars.get(i + 1) == Some(&'{') {
            let Some(close) = chars[i..].iter().position(|&c| c == '}').map(|p| i + p) else {
                out.extend(&chars[i..]);
                break;
            };
            let inner: String = chars[i + 2..close].iter().collect();
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n.to_owned(), Some(d.to_owned())),
                None => (inner, None),
            };
            let value = std::env::var(&name).ok().filter(|v| !v.is_empty());
            out.push_str(
                &value.unwrap_or_else(|| default.map(|d| expand_path(&d)).unwrap_or_default()),
            );
            i = close + 1;
            continue;
        }
        let name: String = chars[i + 1..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
            .collect();
        if name.is_empty() {
            out.push('$');
        } else {
            out.push_str(&std::env::var(&name).unwrap_or_default());
        }
        i += 1 + name.len();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_like_a_shell() {
        std::env::set_var("RCK_ARGS_TEST", "abc");
        std::env::set_var(
            "HOME",
            std::env::var("HOME").unwrap_or_else(|_| "/root".into()),
        );
        let home = std::env::var("HOME").unwrap();
        assert_eq!(expand_path("~/x"), format!("{home}/x"));
        assert_eq!(
            expand_path("/tmp/$RCK_ARGS_TEST/${RCK_ARGS_TEST}d"),
            "/tmp/abc/abcd"
        );
        assert_eq!(
            expand_path("${RCK_ARGS_UNSET:-$HOME/s}/f"),
            format!("{home}/s/f")
        );
        assert_eq!(expand_path("/cost$"), "/cost$");
        assert_eq!(expand_path("${open"), "${open");
    }
}
