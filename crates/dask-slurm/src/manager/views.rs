//! The questions about clusters: their views now, waiting for workers, their logs, the
//! dashboard. Nothing here changes a cluster.

use std::time::{Duration, Instant};

use super::requests::JobLog;
use super::{lock, ClusterError, Clusters};
use crate::model::{ClusterState, ClusterView, DashboardView, JobState};
use crate::process::last_lines;
use crate::registry::JobRecord;

impl Clusters {
    /// The cluster's view now (asks nothing; the poller keeps it fresh).
    pub fn status(&self, name: Option<&str>) -> Result<ClusterView, ClusterError> {
        let table = lock(&self.table);
        Ok(table.view(table.get(name)?))
    }

    /// Every cluster, by name.
    pub fn list(&self) -> Vec<ClusterView> {
        let table = lock(&self.table);
        table.clusters.values().map(|t| table.view(t)).collect()
    }

    /// Blocks until `n` workers have joined, the time is up, or `should_stop` says so; calls
    /// `progress` on every change. Interrupting stops the wait, never the cluster.
    pub fn wait_workers(
        &self,
        name: Option<&str>,
        n: u32,
        timeout: Duration,
        should_stop: &dyn Fn() -> bool,
        progress: &mut dyn FnMut(&ClusterView),
    ) -> Result<ClusterView, ClusterError> {
        let start = Instant::now();
        let mut last: Option<(ClusterState, usize, Vec<JobState>)> = None;
        loop {
            let view = self.status(name)?;
            let joined = view.scheduler.as_ref().map_or(0, |s| s.workers.len());
            let key = (
                view.state,
                joined,
                view.jobs.iter().map(|j| j.state.clone()).collect(),
            );
            if last.as_ref() != Some(&key) {
                progress(&view);
                last = Some(key);
            }
            if joined >= n as usize {
                return Ok(view);
            }
            if matches!(view.state, ClusterState::Finished | ClusterState::Failed) {
                return Err(ClusterError::Invalid(format!(
                    "cluster {} has ended ({:?}) with {joined} of {n} workers{}",
                    view.name,
                    view.state,
                    view.last_error
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                )));
            }
            if view.workers_expected < n && joined < n as usize {
                return Err(ClusterError::Invalid(unreachable_workers(&view, joined, n)));
            }
            if should_stop() {
                return Err(ClusterError::Interrupted);
            }
            if start.elapsed() > timeout {
                return Err(ClusterError::Timeout(format!(
                    "{joined} of {n} workers after {} s; the cluster keeps starting",
                    timeout.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The last `tail` lines of each job's output file (or of one job's).
    pub fn logs(
        &self,
        name: Option<&str>,
        job: Option<&str>,
        tail: usize,
    ) -> Result<Vec<JobLog>, ClusterError> {
        let record = lock(&self.table).get(name)?.record.clone();
        let jobs: Vec<&JobRecord> = record
            .jobs
            .iter()
            .filter(|j| job.is_none_or(|id| id == j.id))
            .collect();
        if let (Some(id), true) = (job, jobs.is_empty()) {
            return Err(ClusterError::Invalid(format!(
                "job {id} is not a job of cluster {}",
                record.name
            )));
        }
        Ok(jobs
            .into_iter()
            .map(|j| {
                let path = j
                    .log_path
                    .clone()
                    .or_else(|| self.settings.slurm.job_log_path(&j.id).ok());
                let text = match &path {
                    Some(p) => match std::fs::read(p) {
                        Ok(bytes) => last_lines(&String::from_utf8_lossy(&bytes), tail),
                        Err(e) => format!("(no log yet at {}: {e})", p.display()),
                    },
                    None => "(SLURM no longer knows where this job's output went)".to_owned(),
                };
                JobLog {
                    job_id: j.id.clone(),
                    role: j.role,
                    path,
                    text,
                }
            })
            .collect())
    }

    /// The dashboard URL and the ssh tunnel line.
    pub fn dashboard(&self, name: Option<&str>) -> Result<DashboardView, ClusterError> {
        let view = self.status(name)?;
        view.dashboard.ok_or_else(|| {
            ClusterError::Invalid(format!(
                "cluster {} has no scheduler answering yet ({:?}); try again when it runs",
                view.name, view.state
            ))
        })
    }
}

/// Why `n` workers will not come: the live jobs bring only `view.workers_expected`, and the
/// jobs that ended (a grow job that SLURM failed takes its workers with it) say why.
fn unreachable_workers(view: &ClusterView, joined: usize, n: u32) -> String {
    let ended: Vec<String> = view
        .jobs
        .iter()
        .filter(|j| j.state.is_finished())
        .map(|j| {
            let reason = j
                .reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            format!("job {} ended {}{reason}", j.id, j.state.as_str())
        })
        .collect();
    let mut text = format!(
        "cluster {}: {joined} workers joined and its running and waiting jobs bring {} in all, \
         never {n}",
        view.name, view.workers_expected
    );
    if !ended.is_empty() {
        text.push_str(&format!("; {}", ended.join("; ")));
    }
    text
}
