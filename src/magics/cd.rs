//! `%cd DIR`: changes the working directory of the kernel, of its shell magics and of Rust cells.

use std::path::PathBuf;

use super::{args, Magic, MagicCall, MagicContext, MagicError, MagicForms};
use crate::display::Bundle;

/// `%cd`
pub struct Cd;

/// Changes the working directory (`~` and `$VAR` are expanded; no argument: the home directory).
#[derive(clap::Parser)]
struct Args {
    /// The new directory.
    dir: Option<String>,
}

impl Magic for Cd {
    fn name(&self) -> &'static str {
        "cd"
    }
    fn summary(&self) -> &'static str {
        "change the working directory"
    }
    fn forms(&self) -> MagicForms {
        MagicForms::LINE
    }
    fn run(
        &self,
        call: &MagicCall<'_>,
        _ctx: &mut MagicContext<'_>,
    ) -> Result<Option<Bundle>, MagicError> {
        let args = args::parse::<Args>(call)?;
        let home = std::env::var("HOME").unwrap_or_else(|_| "/".into());
        let target = match args.dir.as_deref() {
            None | Some("~") => PathBuf::from(&home),
            Some(d) => PathBuf::from(expand(d, &home)),
        };
        std::env::set_current_dir(&target).map_err(|e| {
            MagicError::Failed(format!("cannot change to {}: {e}", target.display()))
        })?;
        let now = std::env::current_dir().unwrap_or(target);
        Ok(Some(Bundle::text(now.display().to_string())))
    }
}

/// Expands a leading `~/` and `$VAR` / `${VAR}` references (unknown variables become empty).
fn expand(path: &str, home: &str) -> String {
    let path = match path.strip_prefix("~/") {
        Some(rest) => format!("{home}/{rest}"),
        None => path.to_owned(),
    };
    let mut out = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let braced = chars.peek() == Some(&'{');
        if braced {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphanumeric() || n == '_' {
                name.push(n);
                chars.next();
            } else {
                break;
            }
        }
        if braced && chars.peek() == Some(&'}') {
            chars.next();
        }
        if name.is_empty() {
            out.push('$');
        } else {
            out.push_str(&std::env::var(&name).unwrap_or_default());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn expands_home_and_variables() {
        std::env::set_var("RCK_CD_TEST", "abc");
        assert_eq!(expand("~/x", "/home/u"), "/home/u/x");
        assert_eq!(
            expand("/tmp/$RCK_CD_TEST/${RCK_CD_TEST}d", "/h"),
            "/tmp/abc/abcd"
        );
        assert_eq!(expand("/cost$", "/h"), "/cost$");
    }
}
