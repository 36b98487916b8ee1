//! Clusters inside the SLURM job the kernel runs in (JupyterHub's batchspawner, Open OnDemand):
//! the scheduler and workers are job steps of that job, started by a launcher script that runs
//! on the kernel's node as a process group of the kernel ([`crate::script::render_in_allocation`]).
//!
//! - The launch's id, `alloc-JOB-TIME`, names the job on the card and every step it starts
//!   (`--job-name`); [`model::allocation_job_of`] reads the job back from it.
//! - A launch is running while its launcher runs. A restarted kernel did not start it and asks
//!   `squeue --steps` instead: a launch with steps of its name is running, and cancelling it
//!   cancels those steps (`scancel JOB.STEP`), never the notebook's job.
//! - Its times are the job's: the card shows the notebook job's elapsed time and limit, so the
//!   walltime warning is the notebook's.
//! - A grow job of such a cluster is a batch job (its own nodes, its own queue wait), submitted,
//!   followed and cancelled through the SLURM backend.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use rustix::process::Signal;

use super::{Backend, ProcessGroups, SlurmBackend};
use crate::manager::ClusterError;
use crate::model::{self, JobRole};
use crate::registry::JobRecord;
use crate::script::{self, JobContext, JobScript, LAUNCH_ID_VAR};
use crate::slurm::StartEstimate;
use crate::slurm::{Allocation, AllocationError, AllocationLayout, JobState, JobStatus, Slurm};
use crate::spec::{slurm_memory_bytes, ClusterSpec, Placement};

/// Job steps in the SLURM job the kernel runs in; grow jobs as batch jobs.
pub struct AllocationBackend {
    /// The grow jobs' backend, and the client for the job's own status.
    batch: SlurmBackend,
    /// The client with the poller's short timeout.
    quick: Slurm,
    /// The client for `scontrol show hostnames` and cancelling steps.
    slurm: Slurm,
    /// The kernel's job, read once when first needed.
    allocation: OnceLock<Result<Option<Allocation>, AllocationError>>,
    /// The launchers this kernel started.
    launchers: ProcessGroups,
}

impl AllocationBackend {
    /// A backend that runs SLURM's commands through `slurm`; the poller's calls time out after
    /// `poll_timeout`.
    pub fn new(slurm: Slurm, poll_timeout: Duration) -> AllocationBackend {
        AllocationBackend {
            batch: SlurmBackend::new(slurm.clone(), poll_timeout),
            quick: slurm.clone().with_timeout(poll_timeout),
            slurm,
            allocation: OnceLock::new(),
            // srun ends its step on SIGTERM (a single SIGINT only makes it report).
            launchers: ProcessGroups::new(&[Signal::TERM]),
        }
    }

    /// The kernel's job, or why a cluster cannot be placed in it.
    fn allocation(&self) -> Result<&Allocation, AllocationError> {
        match self
            .allocation
            .get_or_init(|| Allocation::from_env(&self.slurm))
        {
            Ok(Some(allocation)) => Ok(allocation),
            Ok(None) => Err(AllocationError::NotInJob),
            Err(e) => Err(e.clone()),
        }
    }

    /// How a (fitted) spec lies in the kernel's job.
    fn layout(&self, spec: &ClusterSpec) -> Result<AllocationLayout, ClusterError> {
        let notebook_mem_mib = slurm_memory_bytes(&spec.notebook_mem).unwrap_or(0) >> 20;
        self.allocation()
            .and_then(|a| {
                a.layout(
                    spec.threads_per_worker,
                    spec.notebook_cores,
                    notebook_mem_mib,
                )
            })
            .map_err(|e| ClusterError::Invalid(e.to_string()))
    }

    /// Splits job ids into this backend's launches and batch (grow) jobs.
    fn split(ids: &[String]) -> (Vec<String>, Vec<String>) {
        ids.iter()
            .cloned()
            .partition(|id| model::allocation_job_of(id).is_some())
    }

    /// The status of a launch: its launcher's state when this kernel started it, else whether
    /// steps of its name run; with the times and nodes of the job it runs in. A launcher that
    /// has ended while steps of its name are still listed is completing: its `srun`s are
    /// taking the steps down.
    fn launch_status(&self, id: &str, job: Option<&JobStatus>) -> Result<JobStatus, ClusterError> {
        let state = match self.launchers.state(id) {
            Some(JobState::Running) => JobState::Running,
            Some(ended) if self.has_steps(id)? => {
                tracing::debug!("launch {id} ended ({ended:?}); its steps are ending");
                JobState::Completing
            }
            Some(ended) => ended,
            None if self.has_steps(id)? => JobState::Running,
            None => JobState::Gone,
        };
        let mut status = JobStatus::gone(id);
        if let Some(job) = job {
            status.nodes = job.nodes.clone();
            status.node_count = job.node_count;
            status.elapsed = job.elapsed.clone();
            status.time_limit = job.time_limit.clone();
            status.partition = job.partition.clone();
        }
        status.state = state;
        Ok(status)
    }

    /// Whether squeue lists steps named after launch `id`.
    fn has_steps(&self, id: &str) -> Result<bool, ClusterError> {
        let Some(job) = model::allocation_job_of(id) else {
            return Ok(false);
        };
        Ok(self.quick.steps(job)?.iter().any(|(_, name)| name == id))
    }

    /// Cancels the steps named after these launches that squeue still lists.
    fn cancel_steps(&self, slurm: &Slurm, ids: &[String]) -> Result<(), ClusterError> {
        for id in ids {
            let Some(job) = model::allocation_job_of(id) else {
                continue;
            };
            let steps: Vec<String> = slurm
                .steps(job)?
                .into_iter()
                .filter(|(_, name)| name == id)
                .map(|(step, _)| step)
                .collect();
            slurm.cancel(&steps)?;
        }
        Ok(())
    }
}

impl Backend for AllocationBackend {
    fn kind(&self) -> model::Backend {
        model::Backend::Allocation
    }

    fn queues_jobs(&self) -> bool {
        false
    }

    fn polling_is_costly(&self) -> bool {
        true
    }

    fn fit_spec(
        &self,
        spec: &mut ClusterSpec,
        started_as: Option<&ClusterSpec>,
    ) -> Result<(), ClusterError> {
        if started_as.is_some() {
            // A grow job is a batch job of its own.
            spec.placement = Placement::Batch;
            return Ok(());
        }
        let layout = self.layout(spec)?;
        spec.placement = Placement::Allocation;
        spec.threads_per_worker = layout.threads;
        spec.workers_per_node = layout.most_workers_per_node();
        spec.nodes = u32::try_from(layout.nodes.len()).unwrap_or(u32::MAX);
        Ok(())
    }

    fn render_up(
        &self,
        spec: &ClusterSpec,
        ctx: &JobContext<'_>,
    ) -> Result<JobScript, ClusterError> {
        Ok(script::render_in_allocation(
            spec,
            ctx,
            &self.layout(spec)?,
        )?)
    }

    fn start(
        &self,
        job: &JobScript,
        script_path: &Path,
        log_dir: &Path,
    ) -> Result<JobRecord, ClusterError> {
        if job.role != JobRole::Scheduler {
            return self.batch.start(job, script_path, log_dir);
        }
        let allocation = self
            .allocation()
            .map_err(|e| ClusterError::Invalid(e.to_string()))?;
        let id = format!(
            "alloc-{}-{}",
            allocation.job_id,
            chrono::Utc::now().format("%H%M%S%3f")
        );
        let log_path = log_dir.join(format!("slurm-{id}.out"));
        self.launchers.start(
            &id,
            script_path,
            &log_path,
            &[(LAUNCH_ID_VAR, id.as_str())],
            "starting the cluster's launcher",
        )?;
        Ok(JobRecord {
            id,
            role: job.role,
            workers_expected: job.workers_expected,
            log_path: Some(log_path),
            script_path: Some(script_path.to_path_buf()),
        })
    }

    /// The launches' states with their job's times (one `squeue` for the jobs and the grow
    /// jobs together).
    fn statuses(&self, ids: &[String]) -> Result<Vec<JobStatus>, ClusterError> {
        let (launches, batch) = AllocationBackend::split(ids);
        let mut asked: Vec<String> = batch.clone();
        for id in &launches {
            if let Some(job) = model::allocation_job_of(id) {
                if !asked.iter().any(|a| a == job) {
                    asked.push(job.to_owned());
                }
            }
        }
        let known = self.batch.statuses(&asked)?;
        let of = |id: &str| known.iter().find(|s| s.id == id);
        ids.iter()
            .map(|id| match model::allocation_job_of(id) {
                Some(job) => self.launch_status(id, of(job)),
                None => Ok(of(id).cloned().unwrap_or_else(|| JobStatus::gone(id))),
            })
            .collect()
    }

    fn start_estimates(&self, ids: &[String]) -> Vec<StartEstimate> {
        self.batch.start_estimates(&AllocationBackend::split(ids).1)
    }

    fn cancel(&self, ids: &[String]) -> Result<(), ClusterError> {
        let (launches, batch) = AllocationBackend::split(ids);
        // The launchers' srun end their steps; a restarted kernel's launches, and steps that
        // outlive their srun, are cancelled by name.
        self.launchers.end(&launches, LAUNCH_ID_VAR);
        self.cancel_steps(&self.slurm, &launches)?;
        self.batch.cancel(&batch)
    }

    fn cancel_at_shutdown(&self, ids: &[String]) {
        let (launches, batch) = AllocationBackend::split(ids);
        self.launchers.end(&launches, LAUNCH_ID_VAR);
        if let Err(e) = self.cancel_steps(&self.quick, &launches) {
            tracing::warn!("could not cancel the steps of {launches:?} at shutdown: {e}");
        }
        self.batch.cancel_at_shutdown(&batch);
    }
}
