//! `%pwd`: the kernel's working directory.

use super::{args, Magic, MagicCall, MagicContext, MagicError, MagicForms};
use crate::display::Bundle;

/// `%pwd`
pub struct Pwd;

/// Shows the kernel's current working directory.
#[derive(clap::Parser)]
struct Args {}

impl Magic for Pwd {
    fn name(&self) -> &'static str {
        "pwd"
    }
    fn summary(&self) -> &'static str {
        "show the current working directory"
    }
    fn forms(&self) -> MagicForms {
        MagicForms::LINE
    }
    fn run(
        &self,
        call: &MagicCall<'_>,
        _ctx: &mut MagicContext<'_>,
    ) -> Result<Option<Bundle>, MagicError> {
        args::parse::<Args>(call)?;
        let dir = std::env::current_dir()
            .map_err(|e| MagicError::Failed(format!("cannot read the working directory: {e}")))?;
        Ok(Some(Bundle::text(dir.display().to_string())))
    }
}
