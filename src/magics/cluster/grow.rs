//! `%cluster grow`: a second job running `dask-mpi --no-scheduler` on the same scheduler.

use std::time::Duration;

use clap::Args;
use dask_slurm::manager::GrowRequest;

use super::spec_args::SpecArgs;
use super::{failed, Cluster};
use crate::display::Bundle;
use crate::magics::{MagicContext, MagicError};

#[derive(Args)]
pub(super) struct GrowArgs {
    /// The cluster (default: the newest).
    name: Option<String>,
    #[command(flatten)]
    spec: SpecArgs,
    /// Wait until the new workers have joined.
    #[arg(long)]
    wait: bool,
    /// With --wait: give up waiting after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Print the job script instead of submitting it.
    #[arg(long)]
    dry_run: bool,
}

/// Submits the grow job (or, with `--dry-run`, prints its script); with `--wait`, waits for it.
pub(super) fn run(
    cluster: &Cluster,
    grow: GrowArgs,
    ctx: &mut MagicContext<'_>,
) -> Result<Option<Bundle>, MagicError> {
    let c = &cluster.clusters;
    let req = GrowRequest {
        name: grow.name,
        overrides: grow.spec.overrides(),
    };
    if grow.dry_run {
        return Ok(Some(Bundle::text(c.script_for_grow(&req).map_err(failed)?)));
    }
    let view = c.grow(req).map_err(failed)?;
    let wait_for = grow.wait.then(|| Duration::from_secs(grow.timeout));
    super::wait::show_then_wait(cluster, ctx, &view, wait_for)
}
