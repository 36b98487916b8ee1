//! `%cluster cancel`: graceful scheduler shutdown, then `scancel`; waits until the jobs are gone.

use clap::Args;
use dask_slurm::manager::CancelTarget;

use super::{failed, Cluster};
use crate::display::Bundle;
use crate::magics::{MagicContext, MagicError};

#[derive(Args)]
pub(super) struct CancelArgs {
    /// The cluster (default: the newest).
    #[arg(conflicts_with = "all")]
    name: Option<String>,
    /// Cancel every cluster.
    #[arg(long)]
    all: bool,
    /// Cancel only this job of the cluster.
    #[arg(long, conflicts_with = "all")]
    job: Option<String>,
}

/// Cancels the cluster(s) or the job and shows the card of each cluster touched.
pub(super) fn run(
    cluster: &Cluster,
    cancel: CancelArgs,
    ctx: &mut MagicContext<'_>,
) -> Result<Option<Bundle>, MagicError> {
    let target = match (cancel.all, cancel.job) {
        (true, _) => CancelTarget::All,
        (false, Some(job)) => CancelTarget::Job(cancel.name, job),
        (false, None) => CancelTarget::Cluster(cancel.name),
    };
    ctx.out.stdout("cancelling…\n");
    for view in cluster.clusters.cancel(target).map_err(failed)? {
        cluster.cards.show(ctx.out, &view);
    }
    Ok(None)
}
