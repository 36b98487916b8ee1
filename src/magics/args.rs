//! Argument parsing for magics: clap, with `--help` and errors turned into [`MagicError`]s.

use clap::error::ErrorKind;

use super::{MagicCall, MagicError};

/// Parses a magic's arguments into `T`. `--help` gives [`MagicError::Help`]; a wrong flag or
/// value gives [`MagicError::Usage`] with clap's message and usage line.
pub fn parse<T: clap::Parser>(call: &MagicCall<'_>) -> Result<T, MagicError> {
    let prefix = if call.body.is_some() { "%%" } else { "%" };
    let argv = std::iter::once(format!("{prefix}{}", call.name)).chain(call.args()?);
    T::try_parse_from(argv).map_err(|e| {
        let text = e.render().to_string();
        match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => MagicError::Help(text),
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => MagicError::Usage(text),
            _ => MagicError::Usage(text),
        }
    })
}

/// The code of a magic that takes code: the cell body for `%%name`, the line as written for
/// `%name CODE` (never split like a shell, so quotes in the code stay). The `%%name` line and a
/// line that is only `-h` or `--help` are parsed as `T`'s arguments.
pub fn code_of<'a, T: clap::Parser>(call: &MagicCall<'a>) -> Result<&'a str, MagicError> {
    match call.body {
        Some(body) => {
            parse::<T>(call)?;
            Ok(body)
        }
        None if matches!(call.line.trim(), "-h" | "--help") => {
            parse::<T>(call)?;
            Ok("")
        }
        None => Ok(call.line),
    }
}

/// Expands a path as a shell would, without running one: a leading `~/`, `$VAR`, `${VAR}` and
/// `${VAR:-default}` (an unset or empty variable gives the default, itself expanded).
///
/// ```
/// use rust_cluster_kernel::magics::args::expand_path;
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

    #[derive(clap::Parser, Debug)]
    struct Demo {
        #[arg(long)]
        nodes: u32,
    }

    fn call(line: &'static str) -> MagicCall<'static> {
        MagicCall {
            name: "demo",
            line,
            body: None,
        }
    }

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

    #[test]
    fn parses_help_and_errors() {
        assert_eq!(parse::<Demo>(&call("--nodes 3")).unwrap().nodes, 3);
        match parse::<Demo>(&call("--help")) {
            Err(MagicError::Help(text)) => assert!(text.contains("--nodes"), "{text}"),
            other => panic!("{other:?}"),
        }
        match parse::<Demo>(&call("--nodse 3")) {
            Err(MagicError::Usage(text)) => {
                assert!(text.contains("--nodse") && text.contains("Usage"), "{text}")
            }
            other => panic!("{other:?}"),
        }
    }
}
