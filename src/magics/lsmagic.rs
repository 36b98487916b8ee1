//! `%lsmagic`: lists every magic with its one-line summary.

use super::{args, Magic, MagicCall, MagicContext, MagicError, MagicForms};
use crate::display::Bundle;

/// `%lsmagic`
pub struct LsMagic;

/// Lists the available magics.
#[derive(clap::Parser)]
struct Args {}

impl Magic for LsMagic {
    fn name(&self) -> &'static str {
        "lsmagic"
    }
    fn summary(&self) -> &'static str {
        "list the available magics"
    }
    fn forms(&self) -> MagicForms {
        MagicForms::LINE
    }
    fn run(
        &self,
        call: &MagicCall<'_>,
        ctx: &mut MagicContext<'_>,
    ) -> Result<Option<Bundle>, MagicError> {
        args::parse::<Args>(call)?;
        let mut text = String::new();
        for magic in ctx.registry.iter() {
            let forms = magic.forms();
            let usage = match (forms.line, forms.cell) {
                (true, true) => format!("%{0}, %%{0}", magic.name()),
                (false, true) => format!("%%{}", magic.name()),
                _ => format!("%{}", magic.name()),
            };
            text.push_str(&format!("{usage:<22} {}\n", magic.summary()));
        }
        text.push_str(
            "\nEvery magic takes --help. evcxr's own commands (:dep, :vars, :help …) work too.\n",
        );
        Ok(Some(Bundle::text(text)))
    }
}
