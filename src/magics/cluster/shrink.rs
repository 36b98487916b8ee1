//! `%cluster shrink`: retire workers gracefully through the scheduler, or cancel one grow job.

use clap::{ArgGroup, Args};
use dask_slurm::manager::Shrink;

use super::{failed, Cluster};
use crate::display::Bundle;
use crate::magics::{MagicContext, MagicError};

#[derive(Args)]
#[command(group(ArgGroup::new("how").required(true).args(["workers", "job"])))]
pub(super) struct ShrinkArgs {
    /// The cluster (default: the newest).
    name: Option<String>,
    /// Retire this many workers (newest first), gracefully through the scheduler.
    #[arg(long)]
    workers: Option<u32>,
    /// Cancel this grow job.
    #[arg(long)]
    job: Option<String>,
}

/// Shrinks the cluster and shows its card.
pub(super) fn run(
    cluster: &Cluster,
    shrink: ShrinkArgs,
    ctx: &mut MagicContext<'_>,
) -> Result<Option<Bundle>, MagicError> {
    let how = match (shrink.workers, shrink.job) {
        (Some(n), _) => Shrink::Workers(n),
        (None, Some(job)) => Shrink::Job(job),
        (None, None) => unreachable!("clap requires --workers or --job"),
    };
    let view = cluster
        .clusters
        .shrink(shrink.name.as_deref(), how)
        .map_err(failed)?;
    cluster.card(ctx.out, view)
}
