//! `%cluster wait` (and `up --wait`, `grow --wait`): block until workers have joined, with a
//! progress line that updates in place; an interrupt stops the wait, never the cluster.

use std::time::{Duration, Instant};

use clap::Args;
use dask_slurm::manager::ClusterError;
use dask_slurm::model::ClusterView;

use super::{failed, Cluster};
use crate::cell::new_display_id;
use crate::display::progress::{wait_progress, WaitPhase, WaitProgress};
use crate::display::Bundle;
use crate::magics::{MagicContext, MagicError};

#[derive(Args)]
pub(super) struct WaitArgs {
    /// The cluster (default: the newest).
    name: Option<String>,
    /// How many workers (default: all the cluster's jobs bring).
    #[arg(long)]
    workers: Option<u32>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

/// Waits, then shows the cluster's card.
pub(super) fn run(
    cluster: &Cluster,
    args: WaitArgs,
    ctx: &mut MagicContext<'_>,
) -> Result<Option<Bundle>, MagicError> {
    let view = wait(
        cluster,
        ctx,
        args.name.as_deref(),
        args.workers,
        Duration::from_secs(args.timeout),
    )?;
    cluster.card(ctx.out, view)
}

/// Shows the live card of a cluster just started or grown and, when `wait` is given, waits that
/// long at most for all its workers (`up --wait`, `grow --wait`).
pub(super) fn show_then_wait(
    cluster: &Cluster,
    ctx: &mut MagicContext<'_>,
    view: &ClusterView,
    wait_for: Option<Duration>,
) -> Result<Option<Bundle>, MagicError> {
    cluster.cards.show(ctx.out, view);
    if let Some(timeout) = wait_for {
        wait(cluster, ctx, Some(&view.name), None, timeout)?;
    }
    Ok(None)
}

/// Waits for `workers` workers (default: all expected) with a progress line that updates in
/// place; returns the cluster as it was when the target was reached.
pub(super) fn wait(
    cluster: &Cluster,
    ctx: &mut MagicContext<'_>,
    name: Option<&str>,
    workers: Option<u32>,
    timeout: Duration,
) -> Result<ClusterView, MagicError> {
    let start = Instant::now();
    let first = cluster.clusters.status(name).map_err(failed)?;
    let target = workers.unwrap_or(first.workers_expected).max(1);
    let id = new_display_id();
    let out = ctx.out.clone();
    let show = |view: &ClusterView, phase: WaitPhase, first: bool| {
        let bundle = wait_progress(&WaitProgress::from_view(
            view,
            target,
            start.elapsed(),
            phase,
        ));
        if first {
            out.display_with_id(&bundle, &id);
        } else {
            out.update_display(&bundle, &id);
        }
    };
    show(&first, WaitPhase::Waiting, true);
    let interrupt = ctx.interrupt.clone();
    let result = cluster.clusters.wait_workers(
        Some(&first.name),
        target,
        timeout,
        &|| interrupt.is_raised(),
        &mut |view| show(view, WaitPhase::Waiting, false),
    );
    let last = cluster.clusters.status(Some(&first.name)).map_err(failed)?;
    let phase = match &result {
        Ok(_) => WaitPhase::Reached,
        Err(ClusterError::Interrupted) => WaitPhase::Interrupted,
        Err(ClusterError::Timeout(_)) => WaitPhase::TimedOut,
        Err(_) => WaitPhase::ClusterEnded,
    };
    show(&last, phase, false);
    result.map_err(failed)
}
