//! `%cluster up`: write the job script, submit it, record the cluster and show its live card.

use std::time::Duration;

use clap::Args;
use dask_slurm::manager::UpRequest;

use super::spec_args::{BackendArg, SpecArgs};
use super::{failed, Cluster};
use crate::display::Bundle;
use crate::magics::{MagicContext, MagicError};

#[derive(Args)]
pub(super) struct UpArgs {
    /// The cluster's name (default: dask).
    name: Option<String>,
    /// The profile from config.toml (default: its default_profile, or the workshop's).
    #[arg(long)]
    profile: Option<String>,
    #[command(flatten)]
    spec: SpecArgs,
    /// slurm (sbatch) or local (mpirun here); default: slurm when sbatch is on PATH.
    #[arg(long, value_enum)]
    backend: Option<BackendArg>,
    /// Run the workers as steps of the SLURM job this kernel runs in (JupyterHub, Open
    /// OnDemand): no queue wait; the same as --placement allocation.
    #[arg(long, conflicts_with_all = ["backend", "placement"])]
    in_allocation: bool,
    /// Wait until every worker has joined (the card updates either way).
    #[arg(long)]
    wait: bool,
    /// With --wait: give up waiting after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Print the job script instead of submitting it.
    #[arg(long)]
    dry_run: bool,
    /// Keep the cluster when the notebook's kernel shuts down.
    #[arg(long)]
    keep: bool,
    /// Plain TCP instead of mutual TLS: anyone who can reach the scheduler can run code as you.
    #[arg(long)]
    insecure: bool,
}

/// Starts the cluster (or, with `--dry-run`, prints its script); with `--wait`, waits for it.
pub(super) fn run(
    cluster: &Cluster,
    up: UpArgs,
    ctx: &mut MagicContext<'_>,
) -> Result<Option<Bundle>, MagicError> {
    let c = &cluster.clusters;
    let req = UpRequest {
        name: up.name,
        profile: up.profile,
        overrides: up.spec.overrides_with(up.insecure, up.in_allocation),
        backend: up.backend.map(BackendArg::backend),
        keep: up.keep,
    };
    if up.dry_run {
        return Ok(Some(Bundle::text(c.script_for_up(&req).map_err(failed)?)));
    }
    let view = c.up(req).map_err(failed)?;
    let wait_for = up.wait.then(|| Duration::from_secs(up.timeout));
    super::wait::show_then_wait(cluster, ctx, &view, wait_for)
}
