//! Where a cluster's jobs run: the [`Backend`] trait and its three implementations, SLURM batch
//! jobs ([`SlurmBackend`]), local process groups ([`LocalBackend`]), and SLURM job steps inside
//! the allocation the kernel runs in ([`AllocationBackend`], allocation.rs).
//!
//! The manager never asks which backend a cluster has; it asks the cluster's backend to fit a
//! spec, render and start a job, report job states, and cancel jobs.

use std::path::Path;
use std::time::Duration;

use rustix::process::Signal;

use super::ClusterError;
use crate::model::{self, JobRole};
use crate::registry::JobRecord;
use crate::script::{self, JobContext, JobScript};
use crate::slurm::{JobState, JobStatus, Slurm, StartEstimate};
use crate::spec::{ClusterSpec, MapBy};

mod allocation;
mod process_groups;

pub use allocation::AllocationBackend;
use process_groups::ProcessGroups;

/// The variable that carries a local job's id (as a batch job's does), by which a restarted
/// kernel finds the job's process group.
const LOCAL_JOB_ID_VAR: &str = "SLURM_JOB_ID";

/// The umask of SLURM jobs: their output files are 0600.
const PRIVATE_UMASK: &str = "0077";

/// Where a cluster's jobs run, and how they are started, followed and ended.
pub trait Backend: Send + Sync {
    /// Which kind this is (kept in the cluster's record, shown on its card).
    fn kind(&self) -> model::Backend;

    /// Whether jobs wait in a queue before they run: then a scheduler file that appears is
    /// news worth asking the queue about, and a job not polled yet is not running.
    fn queues_jobs(&self) -> bool;

    /// Whether asking for job states costs a shared service something (a SLURM controller):
    /// then it is asked at the poll interval only, otherwise on every poller round.
    fn polling_is_costly(&self) -> bool;

    /// Adjusts a resolved spec to what this backend can run, or says why it cannot.
    /// `started_as` is the spec the cluster was started with, when `spec` is for a grow job.
    fn fit_spec(
        &self,
        spec: &mut ClusterSpec,
        started_as: Option<&ClusterSpec>,
    ) -> Result<(), ClusterError>;

    /// The `up` job of a fitted spec: the batch script of [`script::render_up`] unless the
    /// backend launches clusters otherwise.
    fn render_up(
        &self,
        spec: &ClusterSpec,
        ctx: &JobContext<'_>,
    ) -> Result<JobScript, ClusterError> {
        Ok(script::render_up(spec, ctx)?)
    }

    /// Starts the job whose script was written to `script_path`; its output goes to `log_dir`.
    fn start(
        &self,
        job: &JobScript,
        script_path: &Path,
        log_dir: &Path,
    ) -> Result<JobRecord, ClusterError>;

    /// The current states of these jobs (one call for all of them). An error means the
    /// backend could not be asked (the states the manager knows may be stale).
    fn statuses(&self, ids: &[String]) -> Result<Vec<JobStatus>, ClusterError>;

    /// When these pending jobs are expected to start (empty when unknown or none are given).
    fn start_estimates(&self, ids: &[String]) -> Vec<StartEstimate>;

    /// Ends these jobs; returns once they were told to end, not once they have.
    fn cancel(&self, ids: &[String]) -> Result<(), ClusterError>;

    /// Ends these jobs at kernel shutdown: quickly, and errors are only logged.
    fn cancel_at_shutdown(&self, ids: &[String]);
}

/// SLURM batch jobs, submitted with `sbatch` and followed with `squeue`.
pub struct SlurmBackend {
    /// The client for submitting and cancelling (its usual timeout).
    slurm: Slurm,
    /// The same client with the poller's short timeout: a dead controller must show quickly.
    quick: Slurm,
}

impl SlurmBackend {
    /// A backend that runs SLURM's commands through `slurm`; the poller's calls time out after
    /// `poll_timeout`.
    pub fn new(slurm: Slurm, poll_timeout: Duration) -> SlurmBackend {
        SlurmBackend {
            quick: slurm.clone().with_timeout(poll_timeout),
            slurm,
        }
    }
}

impl Backend for SlurmBackend {
    fn kind(&self) -> model::Backend {
        model::Backend::Slurm
    }

    fn queues_jobs(&self) -> bool {
        true
    }

    fn polling_is_costly(&self) -> bool {
        true
    }

    fn fit_spec(
        &self,
        _spec: &mut ClusterSpec,
        _started_as: Option<&ClusterSpec>,
    ) -> Result<(), ClusterError> {
        Ok(())
    }

    fn start(
        &self,
        job: &JobScript,
        script_path: &Path,
        log_dir: &Path,
    ) -> Result<JobRecord, ClusterError> {
        // SLURM creates slurm-JOBID.out with the umask sbatch passes on: 0600.
        let submitted = self
            .slurm
            .sbatch_with_umask(script_path, &[], Some(PRIVATE_UMASK))?;
        let log_path = log_dir.join(format!("slurm-{}.out", submitted.job_id));
        Ok(JobRecord {
            id: submitted.job_id,
            role: job.role,
            workers_expected: job.workers_expected,
            log_path: Some(log_path),
            script_path: Some(script_path.to_path_buf()),
        })
    }

    fn statuses(&self, ids: &[String]) -> Result<Vec<JobStatus>, ClusterError> {
        Ok(self.quick.jobs(ids)?)
    }

    fn start_estimates(&self, ids: &[String]) -> Vec<StartEstimate> {
        if ids.is_empty() {
            return Vec::new();
        }
        self.quick.start_estimates(ids).unwrap_or_default()
    }

    fn cancel(&self, ids: &[String]) -> Result<(), ClusterError> {
        if !ids.is_empty() {
            self.slurm.cancel(ids)?;
        }
        Ok(())
    }

    fn cancel_at_shutdown(&self, ids: &[String]) {
        if ids.is_empty() {
            return;
        }
        if let Err(e) = self.quick.cancel(ids) {
            tracing::warn!("could not cancel jobs {ids:?} at shutdown: {e}");
        }
    }
}

/// Local process groups (`bash SCRIPT` running `mpirun`), for a machine without SLURM. Their
/// script's heartbeat watchdog ends the group when no kernel touches the heartbeat (the kernel
/// was killed), as a batch job's cancels the job.
pub struct LocalBackend {
    /// The process groups this kernel started; those of an earlier kernel are found again
    /// through the job id in their environment.
    groups: ProcessGroups,
}

impl Default for LocalBackend {
    /// `mpirun` forwards a first SIGINT (or SIGTERM) to its ranks, which Dask's outlive, and
    /// waits for them forever; a second SIGINT aborts the job and ends its ranks (each in a
    /// process group of its own, beyond a signal to ours).
    fn default() -> LocalBackend {
        LocalBackend {
            groups: ProcessGroups::new(&[Signal::INT, Signal::INT]),
        }
    }
}

impl Backend for LocalBackend {
    fn kind(&self) -> model::Backend {
        model::Backend::Local
    }

    fn queues_jobs(&self) -> bool {
        false
    }

    fn polling_is_costly(&self) -> bool {
        false
    }

    fn fit_spec(
        &self,
        spec: &mut ClusterSpec,
        started_as: Option<&ClusterSpec>,
    ) -> Result<(), ClusterError> {
        match started_as {
            // A grow job binds and passes what the cluster's first job did.
            Some(base) => {
                spec.map_by = base.map_by.clone();
                spec.mpirun_args = base.mpirun_args.clone();
            }
            // One machine: no core binding, and more ranks than cores is fine.
            None => {
                spec.map_by = MapBy(String::new());
                if !spec.mpirun_args.iter().any(|a| a == "--oversubscribe") {
                    spec.mpirun_args.push("--oversubscribe".to_owned());
                }
            }
        }
        Ok(())
    }

    fn start(
        &self,
        job: &JobScript,
        script_path: &Path,
        log_dir: &Path,
    ) -> Result<JobRecord, ClusterError> {
        let id = format!("local-{}", chrono::Utc::now().format("%H%M%S%3f"));
        let log_path = log_dir.join(format!("slurm-{id}.out"));
        let ntasks = job.ntasks.to_string();
        // mpirun reads the job id and task count that a batch job would have; the watchdog
        // ends the process group instead of cancelling a SLURM job.
        let env = [
            (LOCAL_JOB_ID_VAR, id.as_str()),
            ("SLURM_NTASKS", ntasks.as_str()),
            (script::PROCESS_GROUP_JOB_VAR, "1"),
        ];
        self.groups
            .start(&id, script_path, &log_path, &env, "starting mpirun locally")?;
        Ok(JobRecord {
            id,
            role: job.role,
            workers_expected: job.workers_expected,
            log_path: Some(log_path),
            script_path: Some(script_path.to_path_buf()),
        })
    }

    /// A process group's exit is the job's end. A job that an earlier kernel started (before a
    /// restart) runs while its process group does.
    fn statuses(&self, ids: &[String]) -> Result<Vec<JobStatus>, ClusterError> {
        Ok(ids
            .iter()
            .map(|id| {
                let mut status = JobStatus::gone(id);
                status.state = match self.groups.state(id) {
                    Some(state) => state,
                    None if ProcessGroups::orphan(id, LOCAL_JOB_ID_VAR).is_some() => {
                        JobState::Running
                    }
                    None => JobState::Gone,
                };
                status.nodes = "localhost".to_owned();
                status.node_count = 1;
                status
            })
            .collect())
    }

    fn start_estimates(&self, _ids: &[String]) -> Vec<StartEstimate> {
        Vec::new()
    }

    fn cancel(&self, ids: &[String]) -> Result<(), ClusterError> {
        self.groups.end(ids, LOCAL_JOB_ID_VAR);
        Ok(())
    }

    fn cancel_at_shutdown(&self, ids: &[String]) {
        let _ = self.cancel(ids);
    }
}

/// The name of a job script's file for `role` (`up-…`, `grow-…`, `batch-…`).
pub(super) fn script_file_name(role: JobRole) -> String {
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S%.3f");
    let role = match role {
        JobRole::Scheduler => "up",
        JobRole::Grow => "grow",
        JobRole::Batch => "batch",
    };
    format!("{role}-{stamp}.sh")
}
