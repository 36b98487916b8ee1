//! [`Clusters`]: the clusters of one kernel, kept up to date by one poller thread.
//!
//! Every operation is a method of [`Clusters`], one file each: [`up`](Clusters::up) (up.rs),
//! [`grow`](Clusters::grow) (grow.rs), [`shrink`](Clusters::shrink) (shrink.rs),
//! [`cancel`](Clusters::cancel) and [`shutdown`](Clusters::shutdown) (cancel.rs),
//! [`attach`](Clusters::attach) (attach.rs), [`submit_batch`](Clusters::submit_batch)
//! (batch.rs); the questions ([`status`](Clusters::status), [`list`](Clusters::list),
//! [`wait_workers`](Clusters::wait_workers), [`logs`](Clusters::logs),
//! [`dashboard`](Clusters::dashboard)) are in views.rs.
//!
//! Underneath: table.rs is the table of clusters behind one lock; tracked.rs one cluster's
//! state and the [`ClusterView`] made from it; poller.rs the poller and heartbeat threads; and
//! backend.rs the [`Backend`] trait through which jobs are started, followed and ended (SLURM
//! batch jobs or local process groups).
//!
//! The poller asks SLURM politely — ONE `squeue` for all tracked jobs, every
//! `poll_interval_secs` while something changes and every [`STEADY_POLL`] when nothing does —
//! and asks each running scheduler over HTTP for its workers (that does not touch slurmctld).
//! Whoever subscribed is told of every change with a fresh [`ClusterView`].
//!
//! Errors say what went wrong in the domain's words; they name no magic (the kernel's magics
//! add what to type next).
//!
//! Locks: a panic while a lock is held (in a subscriber, say) must not take the clusters down
//! with it, so every lock is taken through [`lock`], which recovers a poisoned lock. Each
//! critical section leaves the data consistent before it calls anything that may panic.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::dask::DaskError;
use crate::model::{self, ClusterView};
use crate::private;
use crate::profile::{Overrides, ProfileError, ProfileSet};
use crate::registry::{self, JobRecord, Registry};
use crate::script::{self, ScriptError};
use crate::slurm::{Slurm, SlurmError};
use crate::spec::{ClusterSpec, Placement, SpecError};

/// The directory (under the state directory) of the cluster registry's records.
const REGISTRY_DIR: &str = "clusters";

/// The directory (under the state directory) of `%%sbatch`'s scripts, named like a cluster's.
const BATCH_DIR: &str = "batch";

/// Names no cluster may take: each cluster's files are in a directory of its name, beside these.
const RESERVED_NAMES: [&str; 2] = [REGISTRY_DIR, BATCH_DIR];
use crate::tls::{ClusterTls, TlsError};

mod adapt;
mod attach;
mod backend;
mod batch;
mod cancel;
mod grow;
mod poller;
mod requests;
mod shrink;
mod table;
#[cfg(test)]
mod tests;
mod tracked;
mod up;
mod views;

pub use backend::{AllocationBackend, Backend, LocalBackend, SlurmBackend};
pub use poller::{SCHEDULER_START_LIMIT, STEADY_POLL};
pub use requests::{AttachSource, AttachTls, CancelTarget, GrowRequest, JobLog, Shrink, UpRequest};

use table::ClusterTable;

/// Timeout of the poller's SLURM calls: a dead controller must show within 10 s.
const POLL_COMMAND_TIMEOUT: Duration = Duration::from_secs(8);
/// Timeout of one scheduler HTTP request.
const HTTP_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a cluster operation did not happen. Nothing is submitted when one of these is returned
/// before submission, and other clusters are never affected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// A value is not acceptable (names the field).
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The profiles or the config file are wrong.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The job script could not be rendered.
    #[error(transparent)]
    Script(#[from] ScriptError),
    /// A SLURM command failed (its stderr is in the message).
    #[error(transparent)]
    Slurm(#[from] SlurmError),
    /// The Dask scheduler could not be asked or told.
    #[error(transparent)]
    Dask(#[from] DaskError),
    /// The cluster's certificates could not be made (or would not be private).
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// No cluster of that name.
    #[error("no cluster named {0}")]
    NoCluster(String),
    /// No cluster at all, and none was named.
    #[error("no cluster yet")]
    NoClusters,
    /// A live cluster of that name exists already.
    #[error("a cluster named {0} is already running")]
    Exists(String),
    /// The name is the kernel's own (a directory of its state); choose another.
    #[error("{0:?} is reserved for the kernel's own state; name the cluster otherwise")]
    Reserved(String),
    /// The cluster has ended (or is ending): it cannot grow.
    #[error("cluster {0} has ended")]
    Ended(String),
    /// The job named for removal runs the cluster's scheduler: only cancelling the cluster
    /// ends it.
    #[error("job {job} runs the scheduler of cluster {cluster}")]
    SchedulerJob {
        /// The cluster.
        cluster: String,
        /// The job.
        job: String,
    },
    /// The operation does not fit the cluster's state or backend.
    #[error("{0}")]
    Invalid(String),
    /// A file could not be written or read.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// A wait ran out of time.
    #[error("{0}")]
    Timeout(String),
    /// A wait was interrupted by the user (the cluster is untouched).
    #[error("interrupted; the cluster keeps running")]
    Interrupted,
}

/// Makes an I/O error into a [`ClusterError::Io`] that says what was being done.
fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClusterError {
    let what = what.into();
    move |source| ClusterError::Io { what, source }
}

/// Takes a lock of the manager. A lock poisoned by a panic elsewhere is taken anyway: every
/// critical section leaves its data consistent, and one panicking subscriber must not stop the
/// poller or every later operation.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where a manager keeps its files, and who it is.
#[derive(Debug, Clone)]
pub struct ManagerSettings {
    /// Scheduler files, scripts, heartbeat files, certificates (`STATE/NAME/tls/`): 0700
    /// directories of 0600 files.
    pub state_dir: PathBuf,
    /// The kernel session that owns what it starts.
    pub session: String,
    /// The SLURM client.
    pub slurm: Slurm,
    /// Where job logs go when the profile names no directory (the notebook's directory).
    pub work_dir: PathBuf,
    /// The config file to read profiles from (`None`: the default location).
    pub config: Option<PathBuf>,
}

impl ManagerSettings {
    /// The defaults: `$XDG_STATE_HOME/rust-cluster-kernel`, SLURM from PATH, the current directory.
    pub fn from_env(session: &str) -> ManagerSettings {
        ManagerSettings {
            state_dir: registry::state_dir(),
            session: session.to_owned(),
            slurm: Slurm::from_env(),
            work_dir: std::env::current_dir().unwrap_or_else(|_| std::env::temp_dir()),
            config: None,
        }
    }
}

/// A function told of every change of a cluster (called from the poller thread).
type Subscriber = Box<dyn Fn(&ClusterView) + Send + Sync>;

/// The clusters of one kernel. Create it with [`Clusters::open`]; it lives in an `Arc`.
pub struct Clusters {
    /// The clusters and what the poller learned last.
    table: Mutex<ClusterTable>,
    settings: ManagerSettings,
    /// The backends by kind; every cluster's record names one of them.
    backends: Vec<Arc<dyn Backend>>,
    registry: Registry,
    subscribers: Mutex<Vec<Subscriber>>,
    /// Wakes the poller early (after a submission or a cancel).
    wake: (Mutex<bool>, Condvar),
    /// Set by [`Clusters::shutdown`]: the threads end.
    stopped: AtomicBool,
}

impl Clusters {
    /// Loads the registry (re-attaching every cluster found there; lost records are rebuilt
    /// from `squeue` through the jobs' comment tags) and starts the poller thread.
    pub fn open(settings: ManagerSettings) -> Arc<Clusters> {
        let backends: Vec<Arc<dyn Backend>> = vec![
            Arc::new(SlurmBackend::new(
                settings.slurm.clone(),
                POLL_COMMAND_TIMEOUT,
            )),
            Arc::new(LocalBackend::default()),
            Arc::new(AllocationBackend::new(
                settings.slurm.clone(),
                POLL_COMMAND_TIMEOUT,
            )),
        ];
        Clusters::open_with(settings, backends)
    }

    /// [`Clusters::open`] with these backends (one per kind).
    fn open_with(settings: ManagerSettings, backends: Vec<Arc<dyn Backend>>) -> Arc<Clusters> {
        let registry = Registry::new(settings.state_dir.join(REGISTRY_DIR));
        let (records, problems) = registry.load_all();
        for p in problems {
            tracing::warn!("unreadable cluster record {p}");
        }
        let manager = Arc::new(Clusters {
            table: Mutex::new(ClusterTable::default()),
            settings,
            backends,
            registry,
            subscribers: Mutex::new(Vec::new()),
            wake: (Mutex::new(false), Condvar::new()),
            stopped: AtomicBool::new(false),
        });
        {
            let mut table = lock(&manager.table);
            for record in records {
                let backend = manager.backend(record.backend);
                table.insert(tracked::Tracked::new(record, backend));
            }
        }
        poller::start_threads(&manager);
        manager
    }

    /// The backend of this kind.
    fn backend(&self, kind: model::Backend) -> Arc<dyn Backend> {
        self.backends
            .iter()
            .find(|b| b.kind() == kind)
            .cloned()
            .expect("a manager has a backend of every kind its records name")
    }

    /// The backend of a new cluster: the one the request names; else the spec's placement
    /// (`auto`: the kernel's allocation when the spec fits in it); else SLURM when `sbatch` is
    /// on PATH, else local processes.
    fn backend_for(
        &self,
        requested: Option<model::Backend>,
        spec: &ClusterSpec,
    ) -> Result<Arc<dyn Backend>, ClusterError> {
        let batch = || {
            self.backend(if self.settings.slurm.is_available() {
                model::Backend::Slurm
            } else {
                model::Backend::Local
            })
        };
        Ok(match (requested, spec.placement) {
            (Some(model::Backend::Local), Placement::Allocation) => {
                return Err(ClusterError::Invalid(
                    "placement \"allocation\" runs the cluster as steps of the SLURM job the \
                     kernel runs in, not as local processes"
                        .to_owned(),
                ))
            }
            (Some(kind), _) => self.backend(kind),
            (None, Placement::Allocation) => self.backend(model::Backend::Allocation),
            (None, Placement::Auto) => {
                let allocation = self.backend(model::Backend::Allocation);
                match allocation.fit_spec(&mut spec.clone(), None) {
                    Ok(()) => allocation,
                    Err(e) => {
                        tracing::info!("placement auto: a batch job ({e})");
                        batch()
                    }
                }
            }
            (None, Placement::Batch) => batch(),
        })
    }

    /// The SLURM client the clusters use (for the thin SLURM magics).
    pub fn slurm(&self) -> &Slurm {
        &self.settings.slurm
    }

    /// Calls `on_change` with the new view whenever a cluster changes (from the poller thread).
    /// A subscriber that panics is logged and skipped; the others and the poller go on.
    pub fn subscribe(&self, on_change: Box<dyn Fn(&ClusterView) + Send + Sync>) {
        lock(&self.subscribers).push(on_change);
    }

    /// The profile names and which is the default.
    pub fn profile_names(&self) -> Result<(Vec<String>, String), ClusterError> {
        let profiles = self.profiles()?;
        Ok((
            profiles.names().map(str::to_owned).collect(),
            profiles.default_name().to_owned(),
        ))
    }

    /// The `python_env` of a profile (the default one for `None`), as the profile writes it.
    pub fn python_env(&self, profile: Option<&str>) -> Result<Option<String>, ClusterError> {
        Ok(self.profiles()?.get(profile)?.python_env.clone())
    }

    fn profiles(&self) -> Result<ProfileSet, ClusterError> {
        let env_profile = std::env::var("RUST_CLUSTER_KERNEL_PROFILE").ok();
        match &self.settings.config {
            Some(path) => Ok(ProfileSet::load_from(Some(path), env_profile.as_deref())?),
            None => Ok(ProfileSet::load()?),
        }
    }

    /// The validated spec of a new cluster `name` from a profile and overrides, and the backend
    /// it runs on ([`Clusters::backend_for`]), to which it is fitted.
    fn resolve(
        &self,
        name: &str,
        profile: Option<&str>,
        overrides: &Overrides,
        requested: Option<model::Backend>,
    ) -> Result<(ClusterSpec, Arc<dyn Backend>), ClusterError> {
        let profiles = self.profiles()?;
        let mut spec = profiles
            .get(profile)?
            .resolve(name, overrides, &self.settings.work_dir)?;
        let backend = self.backend_for(requested, &spec)?;
        backend.fit_spec(&mut spec, None)?;
        spec.validate()?;
        Ok((spec, backend))
    }

    fn cluster_dir(&self, name: &str) -> PathBuf {
        self.settings.state_dir.join(name)
    }

    fn heartbeat_file(&self, name: &str) -> PathBuf {
        self.cluster_dir(name).join("heartbeat")
    }

    /// The cluster's certificate directory, `STATE/NAME/tls`.
    fn cluster_tls(&self, name: &str) -> ClusterTls {
        ClusterTls::in_dir(self.cluster_dir(name).join("tls"))
    }

    /// Creates the state directory and the cluster's directory, both 0700.
    fn private_cluster_dir(&self, name: &str) -> Result<PathBuf, ClusterError> {
        let dir = self.cluster_dir(name);
        for d in [&self.settings.state_dir, &dir] {
            private::create_dir(d).map_err(io(format!("creating {}", d.display())))?;
        }
        Ok(dir)
    }

    /// Writes the job's script into the cluster's directory `dir` and starts it on `backend`;
    /// returns the job's record.
    fn submit(
        &self,
        spec: &ClusterSpec,
        job: &script::JobScript,
        backend: &dyn Backend,
        dir: &Path,
    ) -> Result<JobRecord, ClusterError> {
        // A missing log directory is made 0700; an existing one (the notebook's) is left alone,
        // and the logs in it are 0600.
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(private::DIR_MODE)
                .create(&spec.log_dir)
                .map_err(io(format!(
                    "creating the log directory {}",
                    spec.log_dir.display()
                )))?;
        }
        let script_path = dir.join(backend::script_file_name(job.role));
        private::write_file(&script_path, job.text.as_bytes())
            .map_err(io(format!("writing {}", script_path.display())))?;
        backend.start(job, &script_path, &spec.log_dir)
    }
}
