//! `%env`: shows or sets environment variables of the kernel, its magics and Rust cells.

use super::{args, Magic, MagicCall, MagicContext, MagicError, MagicForms};
use crate::display::Bundle;

/// `%env`
pub struct Env;

/// `%env` lists all variables, `%env NAME` shows one, `%env NAME=VALUE` (or `NAME VALUE`) sets one.
#[derive(clap::Parser)]
struct Args {
    /// `NAME`, `NAME=VALUE`, or `NAME VALUE` (the value may have spaces).
    #[arg(allow_hyphen_values = true)]
    words: Vec<String>,
}

impl Magic for Env {
    fn name(&self) -> &'static str {
        "env"
    }
    fn summary(&self) -> &'static str {
        "show or set environment variables"
    }
    fn forms(&self) -> MagicForms {
        MagicForms::LINE
    }
    fn run(
        &self,
        call: &MagicCall<'_>,
        ctx: &mut MagicContext<'_>,
    ) -> Result<Option<Bundle>, MagicError> {
        let args = args::parse::<Args>(call)?;
        let (name, value) = match args.words.as_slice() {
            [] => {
                let mut vars: Vec<_> = std::env::vars().collect();
                vars.sort();
                let text = vars
                    .iter()
                    .map(|(k, v)| format!("{k}={v}\n"))
                    .collect::<String>();
                return Ok(Some(Bundle::text(text)));
            }
            [one] if !one.contains('=') => {
                return std::env::var(one)
                    .map(|v| Some(Bundle::text(v)))
                    .map_err(|_| {
                        MagicError::Failed(format!("environment variable {one} is not set"))
                    });
            }
            [first, rest @ ..] => match first.split_once('=') {
                Some((n, v)) => (
                    n.to_owned(),
                    std::iter::once(v.to_owned())
                        .chain(rest.iter().cloned())
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
                None => (first.clone(), rest.join(" ")),
            },
        };
        if name.is_empty() || name.contains(['=', '\0']) || value.contains('\0') {
            return Err(MagicError::Usage(format!(
                "not a valid variable name: {name:?}"
            )));
        }
        std::env::set_var(&name, &value);
        ctx.out.stdout(&format!("env: {name}={value}\n"));
        Ok(None)
    }
}
