//! `%cd DIR`: changes the working directory of the kernel, of its shell magics and of Rust cells.

use std::path::PathBuf;

use super::{args, Magic, MagicCall, MagicContext, MagicError, MagicForms};
use crate::display::Bundle;
use crate::paths::expand_path;

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
            Some(d) => PathBuf::from(expand_path(d)),
        };
        std::env::set_current_dir(&target).map_err(|e| {
            MagicError::Failed(format!("cannot change to {}: {e}", target.display()))
        })?;
        let now = std::env::current_dir().unwrap_or(target);
        Ok(Some(Bundle::text(now.display().to_string())))
    }
}
