//! `%cluster logs`: the end of each job's output file (`slurm-JOBID.out`).

use clap::Args;

use super::{failed, Cluster};
use crate::display::logs::{job_logs, LogTail};
use crate::display::Bundle;
use crate::magics::MagicError;

#[derive(Args)]
pub(super) struct LogsArgs {
    /// The cluster (default: the newest).
    name: Option<String>,
    /// Only this job.
    #[arg(long)]
    job: Option<String>,
    /// How many lines of each log.
    #[arg(long, default_value_t = 30)]
    tail: usize,
}

/// The tails of the cluster's logs.
pub(super) fn run(cluster: &Cluster, logs: LogsArgs) -> Result<Option<Bundle>, MagicError> {
    let c = &cluster.clusters;
    let name = c.status(logs.name.as_deref()).map_err(failed)?.name;
    let found = c
        .logs(Some(&name), logs.job.as_deref(), logs.tail)
        .map_err(failed)?;
    let paths: Vec<Option<String>> = found
        .iter()
        .map(|l| l.path.as_ref().map(|p| p.display().to_string()))
        .collect();
    let tails: Vec<LogTail<'_>> = found
        .iter()
        .zip(&paths)
        .map(|(l, path)| LogTail {
            job_id: &l.job_id,
            role: Some(l.role),
            path: path.as_deref(),
            text: &l.text,
        })
        .collect();
    Ok(Some(job_logs(&name, &tails)))
}
