//! What the cluster module tells the rest of the kernel: plain data about clusters, jobs,
//! schedulers and workers, ready to be rendered by `display`. Nothing here runs anything.

use serde::{Deserialize, Serialize};

use crate::tls::ClientTls;

/// Where a cluster's processes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Submitted to SLURM with `sbatch`.
    Slurm,
    /// `mpirun` started directly as child processes of the kernel (no SLURM on this machine).
    Local,
    /// Job steps of the SLURM job the kernel runs in (`alloc-JOB-TIME` launches).
    Allocation,
}

/// The SLURM job that an in-allocation launch (`alloc-1234-101500123`) runs in, or `None` for
/// any other job id.
///
/// ```
/// use dask_slurm::model::allocation_job_of;
///
/// assert_eq!(allocation_job_of("alloc-1234-101500123"), Some("1234"));
/// assert_eq!(allocation_job_of("1234"), None);
/// assert_eq!(allocation_job_of("alloc-x-1"), None);
/// ```
pub fn allocation_job_of(id: &str) -> Option<&str> {
    let (job, _) = id.strip_prefix("alloc-")?.split_once('-')?;
    (!job.is_empty() && job.bytes().all(|b| b.is_ascii_digit())).then_some(job)
}

/// What a job does for its cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobRole {
    /// Runs the scheduler (rank 0) and the first workers.
    Scheduler,
    /// Adds workers to an existing scheduler (`dask-mpi --no-scheduler`).
    Grow,
    /// A plain batch job submitted with `%%sbatch`, tracked for state and logs only.
    Batch,
}

/// The overall state of a cluster, derived from its jobs and its scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterState {
    /// Submitted; the scheduler job waits in the queue.
    Pending,
    /// The scheduler job runs, but the scheduler has not answered yet.
    Starting,
    /// The scheduler answers; workers may still be joining.
    Running,
    /// Cancel was asked for; jobs are ending.
    Cancelling,
    /// Every job has ended (cancelled, completed or timed out).
    Finished,
    /// Something went wrong (submission failed, the job failed); `last_error` says what.
    Failed,
}

/// A job's state as `squeue -o %T` prints it, plus [`JobState::Gone`] for a job that squeue no
/// longer lists.
///
/// It travels as the string SLURM prints (`"RUNNING"`), so views and records stay readable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
#[non_exhaustive]
pub enum JobState {
    /// Started or submitted, but not reported by its backend yet.
    Submitted,
    /// Waiting in the queue.
    Pending,
    /// Nodes are being set up (cloud/power saving); counts as starting.
    Configuring,
    /// Running.
    Running,
    /// Suspended by an administrator or the scheduler.
    Suspended,
    /// Ending: processes are being killed and cleaned up.
    Completing,
    /// Ended with exit code 0.
    Completed,
    /// Cancelled (`scancel`, or the watchdog).
    Cancelled,
    /// Ended with a non-zero exit code.
    Failed,
    /// Reached its time limit.
    Timeout,
    /// A node failed.
    NodeFail,
    /// Ran out of memory.
    OutOfMemory,
    /// Preempted by another job.
    Preempted,
    /// Could not boot its nodes.
    BootFail,
    /// Missed its deadline.
    Deadline,
    /// No longer listed by squeue: ended more than `MinJobAge` seconds ago. Its final state is
    /// not known any more (the lab, like many sites, has no accounting for `sacct`).
    Gone,
    /// Any other state SLURM may print (`REQUEUED`, `RESIZING`, …), verbatim.
    Other(String),
}

impl JobState {
    /// Reads squeue's long state name (`%T`), or what [`JobState::as_str`] wrote.
    pub fn parse(s: &str) -> JobState {
        match s {
            "SUBMITTED" => JobState::Submitted,
            "GONE" => JobState::Gone,
            "PENDING" => JobState::Pending,
            "CONFIGURING" => JobState::Configuring,
            "RUNNING" => JobState::Running,
            "SUSPENDED" => JobState::Suspended,
            "COMPLETING" => JobState::Completing,
            "COMPLETED" => JobState::Completed,
            "CANCELLED" => JobState::Cancelled,
            "FAILED" => JobState::Failed,
            "TIMEOUT" => JobState::Timeout,
            "NODE_FAIL" => JobState::NodeFail,
            "OUT_OF_MEMORY" => JobState::OutOfMemory,
            "PREEMPTED" => JobState::Preempted,
            "BOOT_FAIL" => JobState::BootFail,
            "DEADLINE" => JobState::Deadline,
            other => JobState::Other(other.to_owned()),
        }
    }

    /// The state as SLURM prints it (`SUBMITTED` and `GONE` for the states SLURM has no name
    /// for).
    pub fn as_str(&self) -> &str {
        match self {
            JobState::Submitted => "SUBMITTED",
            JobState::Pending => "PENDING",
            JobState::Configuring => "CONFIGURING",
            JobState::Running => "RUNNING",
            JobState::Suspended => "SUSPENDED",
            JobState::Completing => "COMPLETING",
            JobState::Completed => "COMPLETED",
            JobState::Cancelled => "CANCELLED",
            JobState::Failed => "FAILED",
            JobState::Timeout => "TIMEOUT",
            JobState::NodeFail => "NODE_FAIL",
            JobState::OutOfMemory => "OUT_OF_MEMORY",
            JobState::Preempted => "PREEMPTED",
            JobState::BootFail => "BOOT_FAIL",
            JobState::Deadline => "DEADLINE",
            JobState::Gone => "GONE",
            JobState::Other(s) => s,
        }
    }

    /// True once the job has ended for good (it holds no nodes and will not run again).
    /// `COMPLETING` is not finished yet: its processes may still be alive.
    pub fn is_finished(&self) -> bool {
        matches!(
            self,
            JobState::Completed
                | JobState::Cancelled
                | JobState::Failed
                | JobState::Timeout
                | JobState::NodeFail
                | JobState::OutOfMemory
                | JobState::Preempted
                | JobState::BootFail
                | JobState::Deadline
                | JobState::Gone
        )
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<String> for JobState {
    fn from(s: String) -> JobState {
        JobState::parse(&s)
    }
}

impl From<JobState> for String {
    fn from(state: JobState) -> String {
        state.as_str().to_owned()
    }
}

/// One SLURM job (or local process group) of a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    /// The SLURM job id (`local-TIME` for the local backend, `alloc-JOB-TIME` for a launch in
    /// the kernel's allocation).
    pub id: String,
    /// What the job does for the cluster.
    pub role: JobRole,
    /// The job's state; [`JobState::Submitted`] until its backend first reports it.
    pub state: JobState,
    /// The node list, e.g. `n[1-2]`; empty while pending.
    pub nodes: String,
    /// How many nodes the job has or asked for.
    pub node_count: u32,
    /// Run time so far, as SLURM prints it (`1:23`).
    pub elapsed: String,
    /// The time limit, as SLURM prints it (`30:00`).
    pub time_limit: String,
    /// Why the job is pending (`Resources`, `Priority`, …), if it is.
    pub reason: Option<String>,
    /// SLURM's estimated start time for a pending job, if it has one.
    pub estimated_start: Option<String>,
    /// How many Dask workers this job brings.
    pub workers_expected: u32,
    /// The path of the job's output file (`slurm-JOBID.out` or as configured).
    pub log_path: Option<String>,
}

/// One Dask worker as the scheduler reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerView {
    /// The worker's name (dask-mpi: `PREFIX-RANK`).
    pub name: String,
    /// The worker's address, e.g. `tls://10.0.0.5:40331`.
    pub address: String,
    /// The host it runs on.
    pub host: String,
    /// Threads of this worker.
    pub nthreads: u32,
    /// Memory limit in bytes.
    pub memory_limit: u64,
    /// Memory in use in bytes, if reported.
    pub memory_used: Option<u64>,
}

/// The Dask scheduler of a cluster, as its HTTP server reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchedulerView {
    /// The scheduler's address, e.g. `tls://10.0.0.5:38211`.
    pub address: String,
    /// The scheduler's host (from the address).
    pub host: String,
    /// The dashboard (HTTP) port from the scheduler file's `services.dashboard`.
    pub dashboard_port: u16,
    /// The workers that have joined.
    pub workers: Vec<WorkerView>,
}

impl SchedulerView {
    /// Threads over all workers.
    pub fn total_threads(&self) -> u64 {
        self.workers.iter().map(|w| u64::from(w.nthreads)).sum()
    }

    /// Memory limit over all workers, in bytes.
    pub fn total_memory(&self) -> u64 {
        self.workers.iter().map(|w| w.memory_limit).sum()
    }
}

/// How to reach a cluster's dashboard from the user's own machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DashboardView {
    /// The URL on the cluster's network, e.g. `http://uc2n001:8787/status`.
    pub url: String,
    /// The URL after tunnelling, e.g. `http://localhost:8787/status`.
    pub local_url: String,
    /// The exact tunnel command, e.g. `ssh -N -L 8787:uc2n001:8787 alice@uc2.example.org`.
    pub ssh_command: String,
}

/// How a cluster adapts (`%cluster adapt`): grow jobs between a minimum and a maximum, as its
/// scheduler wants workers. Kept in the cluster's record, so a restarted kernel resumes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdaptPolicy {
    /// Grow jobs kept at least (running or queued).
    pub min_jobs: u32,
    /// Grow jobs at most.
    pub max_jobs: u32,
    /// Seconds between two looks at the scheduler's target.
    pub interval_secs: u32,
    /// Seconds after a scale-up before a grow job may be retired.
    pub cooldown_secs: u32,
}

/// An adapting cluster's policy and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdaptView {
    /// The policy; `None`: the cluster does not adapt.
    pub policy: Option<AdaptPolicy>,
    /// The workers the scheduler wants (its `adaptive_target`), once asked.
    pub target: Option<u32>,
    /// Grow jobs running.
    pub running_jobs: u32,
    /// Grow jobs waiting in the queue.
    pub queued_jobs: u32,
    /// The last decision and why it was taken.
    pub last_decision: Option<String>,
}

/// Everything the card shows about one cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterView {
    /// The cluster's name (unique per user).
    pub name: String,
    /// SLURM or local.
    pub backend: Backend,
    /// The overall state.
    pub state: ClusterState,
    /// The jobs, scheduler job first.
    pub jobs: Vec<JobView>,
    /// The scheduler, once its file exists.
    pub scheduler: Option<SchedulerView>,
    /// The scheduler file path.
    pub scheduler_file: String,
    /// Workers expected over all running and pending jobs.
    pub workers_expected: u32,
    /// Dashboard URL and ssh tunnel, once the scheduler runs.
    pub dashboard: Option<DashboardView>,
    /// The last error, in the user's terms (sbatch's stderr, a job's failure and its log tail).
    pub last_error: Option<String>,
    /// How clients authenticate: the CA, certificate and key presented to a mutual-TLS
    /// scheduler, or `None` for a plain `tcp://` one that anyone on the network can use.
    pub tls: Option<ClientTls>,
    /// A warning that does not end the cluster, e.g. workers that have not joined for minutes.
    pub notice: Option<String>,
    /// How the cluster adapts, when it does.
    pub adapt: Option<AdaptView>,
    /// The directory of the Python environment that the cluster activates (`python_env`, as
    /// written, `$VAR`s unexpanded), for clients on this side to use the same Python and Dask;
    /// `None` for a packed environment staged to the nodes or the inherited one.
    pub python_env: Option<String>,
    /// When this view was taken (RFC 3339), so that a card shows how fresh it is.
    pub updated_at: String,
}
