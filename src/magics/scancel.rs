//! `%scancel ID…`: cancels SLURM jobs by id.

use std::sync::Arc;

use dask_slurm::manager::Clusters;
use dask_slurm::slurm::check_job_id;

use super::{args, slurm_error, Magic, MagicCall, MagicContext, MagicError, MagicForms};
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
        // The one rule of the SLURM client, so that what passes here passes there.
        if let Some(e) = args.ids.iter().find_map(|id| check_job_id(id).err()) {
            return Err(MagicError::Usage(e.to_string()));
        }
        ctx.slurm(&self.clusters)
            .cancel(&args.ids)
            .map_err(slurm_error)?;
        ctx.out
            .stdout(&format!("cancelled {}\n", args.ids.join(", ")));
        Ok(None)
    }
}
