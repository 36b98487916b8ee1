//! `%%sbatch [ARGS]`: the cell is a batch script; it is submitted and followed like a cluster
//! (a live card with its state, and `%cluster logs job-ID` for its output).

use std::sync::Arc;

use super::cards::LiveCards;
use super::{args, Magic, MagicCall, MagicContext, MagicError, MagicForms};
use crate::display::Bundle;
use dask_slurm::manager::{ClusterError, Clusters};
use dask_slurm::script::ScriptError;

/// `%%sbatch`
pub struct Sbatch {
    /// Follows the job.
    pub clusters: Arc<Clusters>,
    /// Its live card.
    pub cards: Arc<LiveCards>,
}

/// Submits the cell as a batch script (sbatch options go on the first line, or as #SBATCH lines
/// in the cell). A --comment tag and an --output file are added unless you set them.
#[derive(clap::Parser)]
#[command(name = "%%sbatch")]
struct Args {
    /// sbatch options, e.g. -p single -t 5:00.
    #[arg(allow_hyphen_values = true, trailing_var_arg = true)]
    sbatch_args: Vec<String>,
}

impl Magic for Sbatch {
    fn name(&self) -> &'static str {
        "sbatch"
    }
    fn summary(&self) -> &'static str {
        "submit the cell as a SLURM batch job and follow it"
    }
    fn forms(&self) -> MagicForms {
        MagicForms::CELL
    }
    fn run(
        &self,
        call: &MagicCall<'_>,
        ctx: &mut MagicContext<'_>,
    ) -> Result<Option<Bundle>, MagicError> {
        let args = args::parse::<Args>(call)?;
        let view = self
            .clusters
            .submit_batch(call.body.unwrap_or_default(), &args.sbatch_args)
            .map_err(|e| match e {
                ClusterError::Script(ScriptError::EmptyBatchScript) => MagicError::Failed(
                    "the %%sbatch cell is empty: write the job script below the magic line".into(),
                ),
                other => MagicError::Failed(other.to_string()),
            })?;
        ctx.out.stdout(&format!(
            "Submitted batch job {}\n",
            view.jobs.first().map_or("?", |j| j.id.as_str())
        ));
        self.cards.show(ctx.out, &view);
        Ok(None)
    }
}
