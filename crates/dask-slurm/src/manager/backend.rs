//! Where a cluster's jobs run: the [`Backend`] trait and its two implementations, SLURM batch
//! jobs ([`SlurmBackend`]) and local process groups ([`LocalBackend`]).
//!
//! The manager never asks which backend a cluster has; it asks the cluster's backend to fit a
//! spec, start a job, report job states, and cancel jobs. A third backend (SLURM steps inside
//! the allocation the kernel holds) is one more implementation.

use std::collections::{HashMap, HashSet};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use super::{io, lock, ClusterError};
use crate::model::{self, JobRole};
use crate::private;
use crate::process::{self, kill_group};
use crate::registry::JobRecord;
use crate::script::JobScript;
use crate::slurm::{JobState, JobStatus, Slurm, StartEstimate};
use crate::spec::{ClusterSpec, MapBy};

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

    /// Adjusts a resolved spec to what this backend can run. `started_as` is the spec the
    /// cluster was started with, when `spec` is for a grow job.
    fn fit_spec(&self, spec: &mut ClusterSpec, started_as: Option<&ClusterSpec>);

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

    fn fit_spec(&self, _spec: &mut ClusterSpec, _started_as: Option<&ClusterSpec>) {}

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

/// Local process groups (`bash SCRIPT` running `mpirun`), for a machine without SLURM.
#[derive(Default)]
pub struct LocalBackend {
    /// The process groups this kernel started, by job id. A job started by an earlier kernel
    /// is not here: it cannot be waited for, so it is gone for us.
    children: Mutex<HashMap<String, Child>>,
    /// The jobs that were told to end: their exit is a completion, not a failure.
    cancelled: Mutex<HashSet<String>>,
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

    fn fit_spec(&self, spec: &mut ClusterSpec, started_as: Option<&ClusterSpec>) {
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
        // The kernel that started them watches local processes; no watchdog.
        spec.watchdog_minutes = 0.0;
    }

    fn start(
        &self,
        job: &JobScript,
        script_path: &Path,
        log_dir: &Path,
    ) -> Result<JobRecord, ClusterError> {
        let id = format!("local-{}", chrono::Utc::now().format("%H%M%S%3f"));
        let log_path = log_dir.join(format!("slurm-{id}.out"));
        let log = private::create_file(&log_path)
            .map_err(io(format!("creating {}", log_path.display())))?;
        let mut command = Command::new("bash");
        // A kernel inside a SLURM job: mpirun would take that job's allocation for its own.
        for name in crate::slurm::inherited_here() {
            command.env_remove(name);
        }
        command
            .arg(script_path)
            .env("SLURM_JOB_ID", &id)
            .env("SLURM_NTASKS", job.ntasks.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(io("log file"))?)
            .stderr(log)
            .process_group(0);
        if process::running_as_root() {
            command
                .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
                .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
        }
        let child = command.spawn().map_err(io("starting mpirun locally"))?;
        lock(&self.children).insert(id.clone(), child);
        Ok(JobRecord {
            id,
            role: job.role,
            workers_expected: job.workers_expected,
            log_path: Some(log_path),
            script_path: Some(script_path.to_path_buf()),
        })
    }

    /// A process group's exit is the job's end.
    fn statuses(&self, ids: &[String]) -> Result<Vec<JobStatus>, ClusterError> {
        let mut children = lock(&self.children);
        let cancelled = lock(&self.cancelled);
        Ok(ids
            .iter()
            .map(|id| {
                let state = match children.get_mut(id) {
                    Some(child) => match child.try_wait() {
                        Ok(None) => JobState::Running,
                        Ok(Some(status)) if status.success() || cancelled.contains(id) => {
                            JobState::Completed
                        }
                        Ok(Some(_)) => JobState::Failed,
                        Err(_) => JobState::Gone,
                    },
                    None => JobState::Gone,
                };
                let mut status = JobStatus::gone(id);
                status.state = state;
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
        lock(&self.cancelled).extend(ids.iter().cloned());
        let mut children = lock(&self.children);
        for id in ids {
            if let Some(child) = children.get_mut(id) {
                kill_group(child);
            }
        }
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
