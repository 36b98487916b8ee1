//! `%scancel ID…`: cancels SLURM jobs by id.

use std::sync::Arc;

use dask_slurm::manager::Clusters;

use super::{args, Magic, MagicCall, MagicContext, MagicError, MagicForms};
use crate::display::Bundle;

/// `%scancel`
pub struct Scancel {
    /// For its SLURM client.
    pub clusters: Arc<Clusters>,
}

/// Cancels jobs by id (to end a whole Dask cluster, prefer %cluster cancel).
#[derive(clap::Parser)]
#[command(name = "%scancel")]
struct Args {
    /// Job ids.
    #[arg(required = true)]
    ids: Vec<String>,
}

impl Magic for Scancel {
    fn name(&self) -> &'static str {
        "scancel"
    }
    fn summary(&self) -> &'static str {
        "cancel SLURM jobs by id"
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
        if let Some(bad) = args
            .ids
            .iter()
            .find(|id| id.is_empty() || !id.chars().all(|c| c.is_ascii_digit() || c == '_'))
        {
            return Err(MagicError::Usage(format!("not a job id: {bad:?}")));
        }
        self.clusters
            .slurm()
            .cancel(&args.ids)
            .map_err(|e| MagicError::Failed(e.to_string()))?;
        ctx.out
            .stdout(&format!("cancelled {}\n", args.ids.join(", ")));
        Ok(None)
    }
}
