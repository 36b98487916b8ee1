//! What the operations are asked for, and the logs they return: plain data, no behaviour.

use std::path::PathBuf;

use crate::model::{Backend, JobRole};
use crate::profile::Overrides;
use crate::tls::ClientTls;

/// What [`Clusters::up`](super::Clusters::up) asks for.
#[derive(Debug, Clone, Default)]
pub struct UpRequest {
    /// The cluster's name (default: `dask`, or `dask-2`, … if taken).
    pub name: Option<String>,
    /// The profile (default: the config's default or `$RUST_CLUSTER_KERNEL_PROFILE`).
    pub profile: Option<String>,
    /// Settings that replace the profile's.
    pub overrides: Overrides,
    /// SLURM or local (default: SLURM when `sbatch` is on PATH).
    pub backend: Option<Backend>,
    /// Keep the cluster when the kernel shuts down.
    pub keep: bool,
}

/// What [`Clusters::grow`](super::Clusters::grow) asks for.
#[derive(Debug, Clone, Default)]
pub struct GrowRequest {
    /// The cluster (default: the only or the newest).
    pub name: Option<String>,
    /// Settings for the grow job that replace the cluster's (nodes, time, …).
    pub overrides: Overrides,
}

/// How [`Clusters::shrink`](super::Clusters::shrink) makes a cluster smaller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shrink {
    /// Retire this many workers gracefully through the scheduler (their data moves first).
    Workers(u32),
    /// Cancel one grow job.
    Job(String),
}

/// What [`Clusters::cancel`](super::Clusters::cancel) ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelTarget {
    /// One cluster (default: the only or the newest).
    Cluster(Option<String>),
    /// One job of a cluster.
    Job(Option<String>, String),
    /// Every cluster this kernel knows.
    All,
}

/// What [`Clusters::attach`](super::Clusters::attach) presents to the scheduler it adopts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AttachTls {
    /// Nothing given: a `tls://` scheduler whose scheduler file lies in a cluster directory of
    /// this kernel (`STATE/NAME/scheduler.json`, another kernel's cluster) is attached with that
    /// cluster's own client certificate from `STATE/NAME/tls/`; any other scheduler is refused
    /// with the flags it needs.
    #[default]
    Unspecified,
    /// These files (`--tls-ca`, `--tls-cert`, `--tls-key`), for a `tls://` scheduler.
    Files(ClientTls),
    /// `--insecure`: a plain `tcp://` scheduler, accepted knowingly.
    Insecure,
}

/// Where [`Clusters::attach`](super::Clusters::attach) finds a cluster started elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachSource {
    /// A Dask scheduler file.
    SchedulerFile(PathBuf),
    /// A scheduler address and its dashboard (HTTP) port.
    Address {
        /// e.g. `tcp://10.0.0.5:8786`.
        address: String,
        /// The scheduler's HTTP port.
        dashboard_port: u16,
    },
}

/// The tail of one job's output file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobLog {
    /// The job.
    pub job_id: String,
    /// What it does for the cluster.
    pub role: JobRole,
    /// The output file.
    pub path: Option<PathBuf>,
    /// Its last lines (or why there are none).
    pub text: String,
}
