//! `%cluster adapt`: grow jobs between a minimum and a maximum as the scheduler wants workers;
//! `--off` stops it; with neither, the policy and its last decision.

use clap::Args;
use dask_slurm::model::AdaptPolicy;

use super::{failed, Cluster};
use crate::display::card::AdaptLine;
use crate::display::Bundle;
use crate::magics::MagicError;

#[derive(Args)]
pub(super) struct AdaptArgs {
    /// The cluster (default: the newest).
    name: Option<String>,
    /// Grow jobs kept at least (running or queued).
    #[arg(long, requires = "max_jobs")]
    min_jobs: Option<u32>,
    /// Grow jobs at most; turns adapting on.
    #[arg(long)]
    max_jobs: Option<u32>,
    /// Seconds between two looks at the scheduler's target (at least 5).
    #[arg(long, default_value_t = 10)]
    interval: u32,
    /// Seconds after a scale-up before a grow job may be retired.
    #[arg(long, default_value_t = 60)]
    cooldown: u32,
    /// Stop adapting; the grow jobs stay as they are.
    #[arg(long, conflicts_with_all = ["min_jobs", "max_jobs"])]
    off: bool,
}

/// Turns adapting on or off, or shows it.
pub(super) fn run(cluster: &Cluster, args: AdaptArgs) -> Result<Option<Bundle>, MagicError> {
    let c = &cluster.clusters;
    let name = args.name.as_deref();
    let view = if args.off {
        c.adapt(name, None)
    } else if let Some(max_jobs) = args.max_jobs {
        c.adapt(
            name,
            Some(AdaptPolicy {
                min_jobs: args.min_jobs.unwrap_or(0),
                max_jobs,
                interval_secs: args.interval,
                cooldown_secs: args.cooldown,
            }),
        )
    } else {
        c.adapt_view(name)
    }
    .map_err(failed)?;
    let text = match AdaptLine::new(&view) {
        Some(line) => line.text(),
        None => "not adapting (turn it on with --max-jobs N)".to_owned(),
    };
    Ok(Some(Bundle::text(text)))
}
