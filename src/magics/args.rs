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
