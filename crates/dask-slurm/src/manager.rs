//! [`Clusters`]: the clusters of one kernel, kept up to date by one poller thread.
//!
//! Every operation the magics offer is a method here (`up`, `grow`, `shrink`, `cancel`,
//! `status`, `list`, `wait_workers`, `logs`, `dashboard`, `script`, `attach`, `submit_batch`,
//! `shutdown`). The poller asks SLURM politely — ONE `squeue` for all tracked jobs, every
//! `poll_interval_secs` while something changes and every [`STEADY_POLL`] when nothing does —
//! and asks each running scheduler over HTTP for its workers (that does not touch slurmctld).
//! Whoever subscribed is told of every change with a fresh [`ClusterView`].

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::dask::{self, DaskError, SchedulerFile};
use crate::model::{
    Backend, ClusterState, ClusterView, DashboardView, JobRole, JobView, SchedulerView,
};
use crate::private;
use crate::process::{self, kill_group, last_lines};
use crate::profile::{Overrides, ProfileError, ProfileSet};
use crate::registry::{self, ClusterRecord, JobRecord, Registry};
use crate::script::{self, CommentTag, JobContext, ScriptError};
use crate::slurm::{current_user, JobState, JobStatus, Slurm, SlurmError};
use crate::spec::{ClusterSpec, MapBy, Security, SpecError};
use crate::tls::{ClientTls, ClusterTls, TlsError};

/// The umask of cluster jobs: their output files are 0600.
const PRIVATE_UMASK: &str = "0077";
/// Time between `squeue` calls while nothing changes.
pub const STEADY_POLL: Duration = Duration::from_secs(30);
/// How long a scheduler job may run without a scheduler answering before the cluster is failed.
pub const SCHEDULER_START_LIMIT: Duration = Duration::from_secs(180);
/// How often the kernel touches each cluster's heartbeat file at most (the jobs' watchdog reads
/// it); a cluster with a short watchdog gets it touched at a third of its timeout.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(20);
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
    #[error("no cluster named {0}; %cluster list shows them")]
    NoCluster(String),
    /// No cluster at all, and none was named.
    #[error("no cluster yet: start one with %cluster up")]
    NoClusters,
    /// A live cluster of that name exists already.
    #[error("a cluster named {0} is already running; pick another name or %cluster cancel {0}")]
    Exists(String),
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

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClusterError {
    let what = what.into();
    move |source| ClusterError::Io { what, source }
}

/// What `%cluster up` asks for.
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

/// What `%cluster grow` asks for.
#[derive(Debug, Clone, Default)]
pub struct GrowRequest {
    /// The cluster (default: the only or the newest).
    pub name: Option<String>,
    /// Settings for the grow job that replace the cluster's (nodes, time, …).
    pub overrides: Overrides,
}

/// How `%cluster shrink` makes a cluster smaller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shrink {
    /// Retire this many workers gracefully through the scheduler (their data moves first).
    Workers(u32),
    /// Cancel one grow job.
    Job(String),
}

/// What `%cluster cancel` ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelTarget {
    /// One cluster (default: the only or the newest).
    Cluster(Option<String>),
    /// One job of a cluster.
    Job(Option<String>, String),
    /// Every cluster this kernel knows.
    All,
}

/// What `%cluster attach` presents to the scheduler it adopts.
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

/// Where `%cluster attach` finds a cluster started elsewhere.
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

type Subscriber = Box<dyn Fn(&ClusterView) + Send + Sync>;

/// One cluster as the manager follows it.
struct Tracked {
    record: ClusterRecord,
    /// The latest squeue answer per job (absent until the first poll).
    statuses: HashMap<String, JobStatus>,
    /// Estimated starts of pending jobs.
    estimates: HashMap<String, String>,
    scheduler: Option<SchedulerView>,
    /// Whether the scheduler answered the last time it was asked.
    scheduler_answers: bool,
    /// Cancel was asked for.
    cancelling: bool,
    /// An error to show (submission, failed job, unreachable controller).
    last_error: Option<String>,
    /// When the scheduler job was first seen running (for the start limit).
    running_since: Option<Instant>,
    /// Local backend: the process groups this kernel started.
    local: HashMap<String, Child>,
    /// The view subscribers saw last.
    last_view: Option<ClusterView>,
}

impl Tracked {
    fn new(record: ClusterRecord) -> Tracked {
        Tracked {
            record,
            statuses: HashMap::new(),
            estimates: HashMap::new(),
            scheduler: None,
            scheduler_answers: false,
            cancelling: false,
            last_error: None,
            running_since: None,
            local: HashMap::new(),
            last_view: None,
        }
    }

    fn job_state(&self, id: &str) -> Option<&JobState> {
        self.statuses.get(id).map(|s| &s.state)
    }

    fn live_job_ids(&self) -> Vec<String> {
        self.record
            .jobs
            .iter()
            .filter(|j| !self.job_state(&j.id).is_some_and(JobState::is_finished))
            .map(|j| j.id.clone())
            .collect()
    }

    fn state(&self) -> ClusterState {
        let scheduler_job = self.record.jobs.iter().find(|j| j.role != JobRole::Grow);
        let states: Vec<Option<&JobState>> = self
            .record
            .jobs
            .iter()
            .map(|j| self.job_state(&j.id))
            .collect();
        derive_state(
            scheduler_job.map(|j| (j.role, self.job_state(&j.id))),
            &states,
            self.scheduler_answers,
            self.cancelling,
            self.last_error.is_some(),
        )
    }

    fn view(&self, controller_error: Option<&str>) -> ClusterView {
        let jobs = self
            .record
            .jobs
            .iter()
            .map(|j| {
                let status = self.statuses.get(&j.id);
                JobView {
                    id: j.id.clone(),
                    role: j.role,
                    state: status.map_or("SUBMITTED".to_owned(), |s| s.state.as_str().to_owned()),
                    nodes: status.map(|s| s.nodes.clone()).unwrap_or_default(),
                    node_count: status.map_or(0, |s| s.node_count),
                    elapsed: status.map(|s| s.elapsed.clone()).unwrap_or_default(),
                    time_limit: status.map(|s| s.time_limit.clone()).unwrap_or_default(),
                    reason: status
                        .and_then(|s| s.reason.clone())
                        .filter(|r| r != "None"),
                    estimated_start: self.estimates.get(&j.id).cloned(),
                    workers_expected: j.workers_expected,
                    log_path: j.log_path.as_ref().map(|p| p.display().to_string()),
                }
            })
            .collect::<Vec<_>>();
        let workers_expected = self
            .record
            .jobs
            .iter()
            .filter(|j| !self.job_state(&j.id).is_some_and(JobState::is_finished))
            .map(|j| j.workers_expected)
            .sum();
        let last_error = match (controller_error, self.record.backend) {
            (Some(e), Backend::Slurm) if !self.record.jobs.is_empty() => Some(format!(
                "SLURM controller not reachable; job states may be stale: {e}"
            )),
            _ => self.last_error.clone(),
        };
        ClusterView {
            name: self.record.name.clone(),
            backend: self.record.backend,
            state: self.state(),
            jobs,
            dashboard: self
                .scheduler
                .as_ref()
                .map(|s| dashboard_view(s, self.record.spec.as_ref())),
            scheduler: self.scheduler.clone(),
            scheduler_file: self.record.scheduler_file.display().to_string(),
            workers_expected,
            last_error,
            tls: self.record.tls.clone(),
            updated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }

    /// Whether asking the scheduler makes sense: its job runs (or it was attached).
    fn scheduler_may_answer(&self) -> bool {
        if self.cancelling || self.record.scheduler_file.as_os_str().is_empty() {
            return false;
        }
        match self.record.jobs.first() {
            None => true,
            Some(j) if j.role == JobRole::Batch => false,
            Some(j) => match (self.record.backend, self.job_state(&j.id)) {
                (Backend::Local, None) => true,
                (_, Some(state)) => *state == JobState::Running,
                _ => false,
            },
        }
    }

    /// Whether the scheduler file was written after `since` while SLURM last said the scheduler
    /// job was waiting: the job runs now, and one squeue is worth asking at once.
    fn scheduler_started_since(&self, since: std::time::SystemTime) -> bool {
        let Some(job) = self.record.jobs.first() else {
            return false;
        };
        let waiting = matches!(
            self.job_state(&job.id),
            None | Some(JobState::Pending | JobState::Configuring)
        );
        self.record.backend == Backend::Slurm
            && job.role == JobRole::Scheduler
            && waiting
            && std::fs::metadata(&self.record.scheduler_file)
                .and_then(|m| m.modified())
                .is_ok_and(|written| written > since)
    }

    /// Whether something is still moving (pending, starting, joining, cancelling).
    fn is_changing(&self) -> bool {
        match self.state() {
            ClusterState::Pending | ClusterState::Starting | ClusterState::Cancelling => true,
            ClusterState::Running => {
                let joined = self
                    .scheduler
                    .as_ref()
                    .map_or(0, |s| s.workers.len() as u32);
                let expected: u32 = self
                    .record
                    .jobs
                    .iter()
                    .filter(|j| !self.job_state(&j.id).is_some_and(JobState::is_finished))
                    .map(|j| j.workers_expected)
                    .sum();
                joined != expected
            }
            ClusterState::Finished | ClusterState::Failed => false,
        }
    }
}

/// The cluster state from the scheduler job's state, all jobs' states, and the scheduler.
/// `None` as a job state means "not polled yet" (just submitted).
pub fn derive_state(
    scheduler_job: Option<(JobRole, Option<&JobState>)>,
    all_jobs: &[Option<&JobState>],
    scheduler_answers: bool,
    cancelling: bool,
    has_error: bool,
) -> ClusterState {
    let all_finished = !all_jobs.is_empty()
        && all_jobs
            .iter()
            .all(|s| s.is_some_and(JobState::is_finished));
    if cancelling {
        return if all_finished || all_jobs.is_empty() {
            ClusterState::Finished
        } else {
            ClusterState::Cancelling
        };
    }
    let Some((role, state)) = scheduler_job else {
        // An attached cluster: no jobs of ours, only a scheduler.
        return if scheduler_answers {
            ClusterState::Running
        } else if has_error {
            ClusterState::Failed
        } else {
            ClusterState::Starting
        };
    };
    match state {
        None => ClusterState::Pending,
        Some(JobState::Pending | JobState::Configuring) => ClusterState::Pending,
        Some(s) if s.is_finished() => match s {
            JobState::Completed | JobState::Cancelled | JobState::Gone if !has_error => {
                ClusterState::Finished
            }
            _ => ClusterState::Failed,
        },
        Some(_) if has_error => ClusterState::Failed,
        Some(_) if role == JobRole::Batch => ClusterState::Running,
        Some(_) if scheduler_answers => ClusterState::Running,
        Some(_) => ClusterState::Starting,
    }
}

fn dashboard_view(scheduler: &SchedulerView, spec: Option<&ClusterSpec>) -> DashboardView {
    let port = scheduler.dashboard_port;
    let host = &scheduler.host;
    let user = current_user().unwrap_or_else(|_| "USER".to_owned());
    let login = spec
        .and_then(|s| s.login_host.clone())
        .unwrap_or_else(this_host);
    DashboardView {
        url: format!("http://{host}:{port}/status"),
        local_url: format!("http://localhost:{port}/status"),
        ssh_command: format!("ssh -N -L {port}:{host}:{port} {user}@{login}"),
    }
}

fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "LOGIN-NODE".to_owned())
}

struct Inner {
    clusters: BTreeMap<String, Tracked>,
    /// When squeue was last asked.
    last_squeue: Option<Instant>,
    /// The error of the last squeue, if it failed (the controller may be down).
    controller_error: Option<String>,
}

/// The clusters of one kernel. Create it with [`Clusters::open`]; it lives in an `Arc`.
pub struct Clusters {
    inner: Mutex<Inner>,
    settings: ManagerSettings,
    registry: Registry,
    subscribers: Mutex<Vec<Subscriber>>,
    /// Wakes the poller early (after a submission or a cancel).
    wake: (Mutex<bool>, Condvar),
    stopped: AtomicBool,
}

impl Clusters {
    /// Loads the registry (re-attaching every cluster found there; lost records are rebuilt
    /// from `squeue` through the jobs' comment tags) and starts the poller thread.
    pub fn open(settings: ManagerSettings) -> Arc<Clusters> {
        let registry = Registry::new(settings.state_dir.join("clusters"));
        let (records, problems) = registry.load_all();
        for p in problems {
            tracing::warn!("unreadable cluster record {p}");
        }
        let mut clusters = BTreeMap::new();
        for record in records {
            clusters.insert(record.name.clone(), Tracked::new(record));
        }
        let manager = Arc::new(Clusters {
            inner: Mutex::new(Inner {
                clusters,
                last_squeue: None,
                controller_error: None,
            }),
            settings,
            registry,
            subscribers: Mutex::new(Vec::new()),
            wake: (Mutex::new(false), Condvar::new()),
            stopped: AtomicBool::new(false),
        });
        let poller = Arc::downgrade(&manager);
        std::thread::Builder::new()
            .name("cluster-poller".into())
            .spawn(move || {
                // squeue may be slow (a dead controller takes seconds): not on the kernel's start path.
                if let Some(m) = poller.upgrade() {
                    m.rebuild_lost_records();
                }
                while let Some(m) = poller.upgrade() {
                    if m.stopped.load(Ordering::SeqCst) {
                        break;
                    }
                    m.refresh(false);
                    m.sleep_until_woken(Duration::from_secs(1));
                }
            })
            .expect("spawn the cluster poller");
        // Its own thread, so that a slow squeue never delays a heartbeat past a short watchdog.
        let heartbeat = Arc::downgrade(&manager);
        std::thread::Builder::new()
            .name("cluster-heartbeat".into())
            .spawn(move || {
                let mut last_touch: Option<Instant> = None;
                while let Some(m) = heartbeat.upgrade() {
                    if m.stopped.load(Ordering::SeqCst) {
                        break;
                    }
                    let (every, files) = m.heartbeat_files();
                    drop(m);
                    if last_touch.is_none_or(|t| t.elapsed() >= every) {
                        last_touch = Some(Instant::now());
                        files.iter().for_each(|f| touch(f));
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            })
            .expect("spawn the cluster heartbeat");
        manager
    }

    /// How often to touch the heartbeat files, and those of the clusters that have live jobs.
    fn heartbeat_files(&self) -> (Duration, Vec<PathBuf>) {
        let inner = self.inner.lock().expect("cluster state");
        let every = heartbeat_interval(inner.clusters.values().map(|t| &t.record));
        let files = inner
            .clusters
            .values()
            .filter(|t| {
                !t.record.jobs.is_empty()
                    && !matches!(t.state(), ClusterState::Finished | ClusterState::Failed)
            })
            .map(|t| self.heartbeat_file(&t.record.name))
            .collect();
        (every, files)
    }

    /// Jobs tagged as ours in squeue whose cluster has no record: make records for them.
    fn rebuild_lost_records(&self) {
        if !self.settings.slurm.is_available() {
            return;
        }
        let Ok(user) = current_user() else { return };
        let tagged = match self
            .settings
            .slurm
            .clone()
            .with_timeout(POLL_COMMAND_TIMEOUT)
            .find_tagged_jobs(&user)
        {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!("could not look for lost clusters: {e}");
                return;
            }
        };
        let mut inner = self.inner.lock().expect("cluster state");
        for t in tagged {
            let Some(name) = t.tag.cluster.clone() else {
                continue;
            };
            if t.tag.role == JobRole::Batch || t.job.state.is_finished() {
                continue;
            }
            let tracked = inner.clusters.entry(name.clone()).or_insert_with(|| {
                Tracked::new(ClusterRecord {
                    name: name.clone(),
                    backend: Backend::Slurm,
                    spec: None,
                    jobs: Vec::new(),
                    scheduler_file: self.cluster_dir(&name).join("scheduler.json"),
                    created_at: chrono::Utc::now().to_rfc3339(),
                    owner: String::new(),
                    keep: true,
                    // The certificates that `up` left in its directory, if it made any.
                    tls: Some(self.cluster_tls(&name))
                        .filter(ClusterTls::exists)
                        .map(|t| t.client()),
                })
            });
            if !tracked.record.jobs.iter().any(|j| j.id == t.job.id) {
                tracked.record.jobs.push(JobRecord {
                    id: t.job.id.clone(),
                    role: t.tag.role,
                    workers_expected: 0,
                    log_path: None,
                    script_path: None,
                });
                tracked
                    .record
                    .jobs
                    .sort_by_key(|j| j.role != JobRole::Scheduler);
                if let Err(e) = self.registry.save(&tracked.record) {
                    tracing::warn!("could not save the rebuilt record of {name}: {e}");
                }
            }
        }
    }

    fn sleep_until_woken(&self, at_most: Duration) {
        let (flag, condvar) = &self.wake;
        let guard = flag.lock().expect("wake flag");
        let (mut guard, _) = condvar
            .wait_timeout_while(guard, at_most, |woken| !*woken)
            .expect("wake flag");
        *guard = false;
    }

    fn wake_poller(&self) {
        let (flag, condvar) = &self.wake;
        *flag.lock().expect("wake flag") = true;
        condvar.notify_all();
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

    /// The SLURM client the clusters use (for the thin SLURM magics).
    pub fn slurm(&self) -> &Slurm {
        &self.settings.slurm
    }

    /// Calls `on_change` with the new view whenever a cluster changes (from the poller thread).
    pub fn subscribe(&self, on_change: Box<dyn Fn(&ClusterView) + Send + Sync>) {
        self.subscribers
            .lock()
            .expect("subscribers")
            .push(on_change);
    }

    fn profiles(&self) -> Result<ProfileSet, ClusterError> {
        let env_profile = std::env::var("RUST_CLUSTER_KERNEL_PROFILE").ok();
        match &self.settings.config {
            Some(path) => Ok(ProfileSet::load_from(Some(path), env_profile.as_deref())?),
            None => Ok(ProfileSet::load()?),
        }
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

    fn resolve(
        &self,
        name: &str,
        profile: Option<&str>,
        overrides: &Overrides,
        backend: Backend,
    ) -> Result<ClusterSpec, ClusterError> {
        let profiles = self.profiles()?;
        let mut spec = profiles
            .get(profile)?
            .resolve(name, overrides, &self.settings.work_dir)?;
        if backend == Backend::Local {
            // One machine: no core binding, and more ranks than cores is fine.
            spec.map_by = MapBy(String::new());
            if !spec.mpirun_args.iter().any(|a| a == "--oversubscribe") {
                spec.mpirun_args.push("--oversubscribe".to_owned());
            }
            spec.watchdog_minutes = 0.0;
        }
        spec.validate()?;
        Ok(spec)
    }

    fn pick_name(&self, requested: Option<&str>) -> Result<String, ClusterError> {
        let inner = self.inner.lock().expect("cluster state");
        let live = |n: &str| {
            inner.clusters.get(n).is_some_and(|t| {
                !matches!(t.state(), ClusterState::Finished | ClusterState::Failed)
            })
        };
        match requested {
            Some(n) if live(n) => Err(ClusterError::Exists(n.to_owned())),
            Some(n) => Ok(n.to_owned()),
            None => Ok(std::iter::once("dask".to_owned())
                .chain((2..).map(|i| format!("dask-{i}")))
                .find(|n| !live(n))
                .expect("a free name")),
        }
    }

    fn backend_for(&self, requested: Option<Backend>) -> Backend {
        requested.unwrap_or(if self.settings.slurm.is_available() {
            Backend::Slurm
        } else {
            Backend::Local
        })
    }

    /// The job script that `up` would submit (nothing is submitted).
    pub fn script_for_up(&self, req: &UpRequest) -> Result<String, ClusterError> {
        let backend = self.backend_for(req.backend);
        let name = req.name.clone().unwrap_or_else(|| "dask".to_owned());
        let spec = self.resolve(&name, req.profile.as_deref(), &req.overrides, backend)?;
        let user = current_user()?;
        let scheduler_file = self.cluster_dir(&name).join("scheduler.json");
        let heartbeat = self.heartbeat_file(&name);
        let tls = self.cluster_tls(&name);
        Ok(script::render_up(
            &spec,
            &JobContext {
                user: &user,
                scheduler_file: &scheduler_file,
                heartbeat_file: Some(&heartbeat),
                tls: Some(&tls),
            },
        )?
        .text)
    }

    /// The job script that `grow` would submit (nothing is submitted).
    pub fn script_for_grow(&self, req: &GrowRequest) -> Result<String, ClusterError> {
        let (record, spec) = self.grow_spec(req)?;
        let user = current_user()?;
        let heartbeat = self.heartbeat_file(&record.name);
        let tls = self.cluster_tls(&record.name);
        Ok(script::render_grow(
            &spec,
            &JobContext {
                user: &user,
                scheduler_file: &record.scheduler_file,
                heartbeat_file: Some(&heartbeat),
                tls: Some(&tls),
            },
        )?
        .text)
    }

    /// Starts a cluster: renders the `up` job, submits it (or starts it locally), registers it.
    /// Returns at once; the poller follows it.
    pub fn up(&self, req: UpRequest) -> Result<ClusterView, ClusterError> {
        let name = self.pick_name(req.name.as_deref())?;
        let backend = self.backend_for(req.backend);
        let spec = self.resolve(&name, req.profile.as_deref(), &req.overrides, backend)?;
        let user = current_user()?;
        let tls = self.cluster_tls(&name);
        if spec.security == Security::Tls {
            // Refused (nothing made, nothing submitted) where others could swap the keys.
            private::check_location(tls.dir()).map_err(TlsError::from)?;
        }
        let dir = self.private_cluster_dir(&name)?;
        let scheduler_file = dir.join("scheduler.json");
        // A scheduler file from an earlier cluster of this name would point at a dead scheduler.
        let _ = std::fs::remove_file(&scheduler_file);
        let client_tls = match spec.security {
            Security::Tls => {
                tls.create(&name)?;
                Some(tls.client())
            }
            Security::None => {
                // Certificates of an earlier cluster of this name would make it look protected.
                match std::fs::remove_dir_all(tls.dir()) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(io(format!("removing {}", tls.dir().display()))(e))
                    }
                    _ => None,
                }
            }
        };
        let heartbeat = self.heartbeat_file(&name);
        touch(&heartbeat);
        let job = script::render_up(
            &spec,
            &JobContext {
                user: &user,
                scheduler_file: &scheduler_file,
                heartbeat_file: Some(&heartbeat),
                tls: Some(&tls),
            },
        )?;
        let mut tracked = Tracked::new(ClusterRecord {
            name: name.clone(),
            backend,
            spec: Some(spec.clone()),
            jobs: Vec::new(),
            scheduler_file,
            created_at: chrono::Utc::now().to_rfc3339(),
            owner: self.settings.session.clone(),
            keep: req.keep,
            tls: client_tls,
        });
        let (record, child) = self.submit(&spec, &job, backend, &dir)?;
        if let Some(child) = child {
            tracked.local.insert(record.id.clone(), child);
        }
        tracked.record.jobs.push(record);
        self.registry
            .save(&tracked.record)
            .map_err(io("saving the cluster registry"))?;
        let view = tracked.view(None);
        self.inner
            .lock()
            .expect("cluster state")
            .clusters
            .insert(name, tracked);
        self.wake_poller();
        Ok(view)
    }

    /// Writes the script and submits it; returns the job's record (and the local child).
    fn submit(
        &self,
        spec: &ClusterSpec,
        job: &script::JobScript,
        backend: Backend,
        dir: &Path,
    ) -> Result<(JobRecord, Option<Child>), ClusterError> {
        // A missing log directory is made 0700; an existing one (the notebook's) is left alone,
        // and the logs in it are 0600.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(private::DIR_MODE)
            .create(&spec.log_dir)
            .map_err(io(format!(
                "creating the log directory {}",
                spec.log_dir.display()
            )))?;
        let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S%.3f");
        let role = match job.role {
            JobRole::Scheduler => "up",
            JobRole::Grow => "grow",
            JobRole::Batch => "batch",
        };
        let script_path = dir.join(format!("{role}-{stamp}.sh"));
        private::write_file(&script_path, job.text.as_bytes())
            .map_err(io(format!("writing {}", script_path.display())))?;
        match backend {
            Backend::Slurm => {
                // SLURM creates slurm-JOBID.out with the umask sbatch passes on: 0600.
                let submitted = self.settings.slurm.sbatch_with_umask(
                    &script_path,
                    &[],
                    Some(PRIVATE_UMASK),
                )?;
                let log_path = spec.log_dir.join(format!("slurm-{}.out", submitted.job_id));
                Ok((
                    JobRecord {
                        id: submitted.job_id,
                        role: job.role,
                        workers_expected: job.workers_expected,
                        log_path: Some(log_path),
                        script_path: Some(script_path),
                    },
                    None,
                ))
            }
            Backend::Local => {
                let id = format!("local-{}", chrono::Utc::now().format("%H%M%S%3f"));
                let log_path = spec.log_dir.join(format!("slurm-{id}.out"));
                let log = private::create_file(&log_path)
                    .map_err(io(format!("creating {}", log_path.display())))?;
                let mut command = Command::new("bash");
                command
                    .arg(&script_path)
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
                Ok((
                    JobRecord {
                        id,
                        role: job.role,
                        workers_expected: job.workers_expected,
                        log_path: Some(log_path),
                        script_path: Some(script_path),
                    },
                    Some(child),
                ))
            }
        }
    }

    fn grow_spec(&self, req: &GrowRequest) -> Result<(ClusterRecord, ClusterSpec), ClusterError> {
        let record = {
            let inner = self.inner.lock().expect("cluster state");
            let name = pick(&inner, req.name.as_deref())?;
            let t = &inner.clusters[&name];
            if matches!(
                t.state(),
                ClusterState::Finished | ClusterState::Failed | ClusterState::Cancelling
            ) {
                return Err(ClusterError::Invalid(format!(
                    "cluster {name} has ended; start a new one with %cluster up"
                )));
            }
            t.record.clone()
        };
        let base = record.spec.clone().ok_or_else(|| {
            ClusterError::Invalid(format!(
                "cluster {} was attached, not started here: it cannot grow",
                record.name
            ))
        })?;
        let profiles = self.profiles()?;
        let profile = profiles
            .get(Some(&base.profile))
            .or_else(|_| profiles.get(None))?;
        let mut spec = profile.resolve(&record.name, &req.overrides, &self.settings.work_dir)?;
        // What the grow request does not change stays as the cluster was started.
        let o = &req.overrides;
        if o.python_env.is_none() && o.env_archive.is_none() {
            spec.python_env = base.python_env.clone();
        }
        if o.interface.is_none() {
            spec.interface = base.interface.clone();
        }
        if o.threads_per_worker.is_none() {
            spec.threads_per_worker = base.threads_per_worker;
        }
        if o.workers_per_node.is_none() {
            spec.workers_per_node = base.workers_per_node;
        }
        if o.partition.is_none() {
            spec.partition = base.partition.clone();
        }
        // The grow job speaks what the running scheduler speaks.
        spec.security = base.security;
        if record.backend == Backend::Local {
            spec.map_by = base.map_by.clone();
            spec.mpirun_args = base.mpirun_args.clone();
            spec.watchdog_minutes = 0.0;
        }
        spec.validate()?;
        Ok((record, spec))
    }

    /// Adds workers with a second job (`dask-mpi --no-scheduler`) on the same scheduler file.
    pub fn grow(&self, req: GrowRequest) -> Result<ClusterView, ClusterError> {
        let (record, spec) = self.grow_spec(&req)?;
        let user = current_user()?;
        let heartbeat = self.heartbeat_file(&record.name);
        let tls = self.cluster_tls(&record.name);
        if spec.security == Security::Tls && !tls.exists() {
            return Err(ClusterError::Invalid(format!(
                "the certificates of cluster {} are missing from {}; a grow job could not join \
                 its TLS scheduler",
                record.name,
                tls.dir().display()
            )));
        }
        let job = script::render_grow(
            &spec,
            &JobContext {
                user: &user,
                scheduler_file: &record.scheduler_file,
                heartbeat_file: Some(&heartbeat),
                tls: Some(&tls),
            },
        )?;
        let (job_record, child) =
            self.submit(&spec, &job, record.backend, &self.cluster_dir(&record.name))?;
        let mut inner = self.inner.lock().expect("cluster state");
        let controller_error = inner.controller_error.clone();
        let t = inner
            .clusters
            .get_mut(&record.name)
            .ok_or_else(|| ClusterError::NoCluster(record.name.clone()))?;
        if let Some(child) = child {
            t.local.insert(job_record.id.clone(), child);
        }
        t.record.jobs.push(job_record);
        self.registry
            .save(&t.record)
            .map_err(io("saving the cluster registry"))?;
        let view = t.view(controller_error.as_deref());
        drop(inner);
        self.wake_poller();
        Ok(view)
    }

    /// Makes a cluster smaller: retires workers through the scheduler, or cancels a grow job.
    pub fn shrink(&self, name: Option<&str>, how: Shrink) -> Result<ClusterView, ClusterError> {
        match how {
            Shrink::Job(id) => {
                let name = {
                    let inner = self.inner.lock().expect("cluster state");
                    let name = pick(&inner, name)?;
                    let job = inner.clusters[&name]
                        .record
                        .jobs
                        .iter()
                        .find(|j| j.id == id)
                        .cloned();
                    match job {
                        Some(j) if j.role == JobRole::Grow => name,
                        Some(_) => return Err(ClusterError::Invalid(format!("job {id} runs the scheduler; %cluster cancel {name} ends the whole cluster"))),
                        None => return Err(ClusterError::Invalid(format!("job {id} is not a job of cluster {name}"))),
                    }
                };
                self.cancel(CancelTarget::Job(Some(name.clone()), id))?;
                self.status(Some(&name))
            }
            Shrink::Workers(n) => {
                let (record, scheduler) = {
                    let inner = self.inner.lock().expect("cluster state");
                    let name = pick(&inner, name)?;
                    let t = &inner.clusters[&name];
                    let scheduler = t.scheduler.clone().ok_or_else(|| {
                        ClusterError::Invalid(format!(
                            "cluster {name} has no running scheduler yet"
                        ))
                    })?;
                    (t.record.clone(), scheduler)
                };
                if n as usize > scheduler.workers.len() {
                    return Err(ClusterError::Invalid(format!(
                        "cluster {} has {} workers; cannot retire {n}",
                        record.name,
                        scheduler.workers.len()
                    )));
                }
                // The newest workers go first: grow jobs' before the scheduler job's.
                let mut workers = scheduler.workers.clone();
                workers.sort_by(|a, b| b.name.cmp(&a.name));
                let addresses: Vec<String> = workers
                    .iter()
                    .take(n as usize)
                    .map(|w| w.address.clone())
                    .collect();
                let python_env = record
                    .spec
                    .as_ref()
                    .map(|s| s.python_env.clone())
                    .unwrap_or(crate::spec::PythonEnv::Inherit);
                let list = serde_json::to_string(&addresses).expect("addresses serialise");
                dask::run_with_client(
                    &python_env,
                    &record.scheduler_file,
                    record.tls.as_ref(),
                    "retiring workers",
                    &format!("client.retire_workers(workers={list}, close_workers=True)"),
                    Duration::from_secs(60),
                )?;
                self.refresh(false);
                self.status(Some(&record.name))
            }
        }
    }

    /// Ends clusters (or one job): graceful scheduler shutdown first, then `scancel` (or the
    /// local process group), then waits until the jobs have left the queue.
    pub fn cancel(&self, target: CancelTarget) -> Result<Vec<ClusterView>, ClusterError> {
        let (names, only_job) = {
            let inner = self.inner.lock().expect("cluster state");
            match &target {
                CancelTarget::All => (inner.clusters.keys().cloned().collect::<Vec<_>>(), None),
                CancelTarget::Cluster(name) => (vec![pick(&inner, name.as_deref())?], None),
                CancelTarget::Job(name, id) => {
                    let name = pick(&inner, name.as_deref())?;
                    if !inner.clusters[&name]
                        .record
                        .jobs
                        .iter()
                        .any(|j| &j.id == id)
                    {
                        return Err(ClusterError::Invalid(format!(
                            "job {id} is not a job of cluster {name}"
                        )));
                    }
                    (vec![name], Some(id.clone()))
                }
            }
        };
        let mut views = Vec::new();
        for name in names {
            self.cancel_one(&name, only_job.as_deref())?;
            views.push(self.status(Some(&name))?);
        }
        Ok(views)
    }

    fn cancel_one(&self, name: &str, only_job: Option<&str>) -> Result<(), ClusterError> {
        let (record, ids, scheduler_up) = {
            let mut inner = self.inner.lock().expect("cluster state");
            let t = inner
                .clusters
                .get_mut(name)
                .ok_or_else(|| ClusterError::NoCluster(name.to_owned()))?;
            if only_job.is_none() {
                t.cancelling = true;
            }
            let ids: Vec<String> = match only_job {
                Some(id) => vec![id.to_owned()],
                None => t.live_job_ids(),
            };
            (t.record.clone(), ids, t.scheduler_answers)
        };
        self.notify_changes();
        if only_job.is_none() && scheduler_up {
            let python_env = record
                .spec
                .as_ref()
                .map(|s| s.python_env.clone())
                .unwrap_or(crate::spec::PythonEnv::Inherit);
            if let Err(e) = dask::run_with_client(
                &python_env,
                &record.scheduler_file,
                record.tls.as_ref(),
                "shutting the scheduler down",
                "client.shutdown()",
                Duration::from_secs(10),
            ) {
                tracing::info!(
                    "graceful shutdown of {name} did not work ({e}); cancelling its jobs"
                );
            }
        }
        if record.jobs.is_empty() {
            // Attached: the jobs are someone else's.
            return Ok(());
        }
        match record.backend {
            Backend::Slurm => {
                if !ids.is_empty() {
                    self.settings.slurm.cancel(&ids)?;
                }
            }
            Backend::Local => {
                let mut inner = self.inner.lock().expect("cluster state");
                if let Some(t) = inner.clusters.get_mut(name) {
                    for id in &ids {
                        if let Some(child) = t.local.get_mut(id) {
                            kill_group(child);
                        }
                    }
                }
            }
        }
        // Wait until the jobs have left the queue (or the local processes have ended).
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            self.refresh(true);
            let done = {
                let inner = self.inner.lock().expect("cluster state");
                inner.clusters.get(name).is_none_or(|t| {
                    ids.iter()
                        .all(|id| t.job_state(id).is_some_and(JobState::is_finished))
                })
            };
            if done {
                break;
            }
            if Instant::now() > deadline {
                return Err(ClusterError::Timeout(format!(
                    "jobs {} of {name} have not ended after 90 s",
                    ids.join(", ")
                )));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        if only_job.is_none() {
            if let Err(e) = self.registry.remove(name) {
                tracing::warn!("could not remove the record of {name}: {e}");
            }
        } else {
            let inner = self.inner.lock().expect("cluster state");
            if let Some(t) = inner.clusters.get(name) {
                let _ = self.registry.save(&t.record);
            }
        }
        Ok(())
    }

    /// The cluster's view now (asks nothing; the poller keeps it fresh).
    pub fn status(&self, name: Option<&str>) -> Result<ClusterView, ClusterError> {
        let inner = self.inner.lock().expect("cluster state");
        let name = pick(&inner, name)?;
        Ok(inner.clusters[&name].view(inner.controller_error.as_deref()))
    }

    /// Every cluster, by name.
    pub fn list(&self) -> Vec<ClusterView> {
        let inner = self.inner.lock().expect("cluster state");
        let mut views: Vec<ClusterView> = inner
            .clusters
            .values()
            .map(|t| t.view(inner.controller_error.as_deref()))
            .collect();
        views.sort_by(|a, b| a.name.cmp(&b.name));
        views
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
        let mut last: Option<(ClusterState, usize, Vec<String>)> = None;
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
        let record = {
            let inner = self.inner.lock().expect("cluster state");
            let name = pick(&inner, name)?;
            inner.clusters[&name].record.clone()
        };
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

    /// Adopts a cluster started elsewhere (its jobs stay someone else's). A `tls://` scheduler
    /// needs a client certificate (see [`AttachTls`]), a `tcp://` one `--insecure`.
    pub fn attach(
        &self,
        name: Option<String>,
        from: AttachSource,
        tls: AttachTls,
    ) -> Result<ClusterView, ClusterError> {
        let file = match &from {
            AttachSource::SchedulerFile(path) => SchedulerFile::read(path)?,
            AttachSource::Address {
                address,
                dashboard_port,
            } => SchedulerFile {
                host: dask::host_of(address)
                    .ok_or_else(|| ClusterError::Invalid(format!("no host in {address}")))?,
                address: address.clone(),
                dashboard_port: *dashboard_port,
            },
        };
        let client_tls = attach_tls(&file.address, &from, tls)?;
        let scheduler = file.status(HTTP_TIMEOUT)?;
        let name = self.pick_name(name.as_deref())?;
        crate::spec::validate_cluster_name(&name)?;
        let scheduler_file = match from {
            AttachSource::SchedulerFile(path) => path,
            AttachSource::Address {
                address,
                dashboard_port,
            } => {
                let dir = self.private_cluster_dir(&name)?;
                let path = dir.join("scheduler.json");
                let json = serde_json::json!({"type": "Scheduler", "address": address, "services": {"dashboard": dashboard_port}});
                private::write_file(&path, json.to_string().as_bytes())
                    .map_err(io("writing the scheduler file"))?;
                path
            }
        };
        let mut tracked = Tracked::new(ClusterRecord {
            name: name.clone(),
            backend: Backend::Slurm,
            spec: None,
            jobs: Vec::new(),
            scheduler_file,
            created_at: chrono::Utc::now().to_rfc3339(),
            owner: self.settings.session.clone(),
            keep: true,
            tls: client_tls,
        });
        tracked.scheduler = Some(scheduler);
        tracked.scheduler_answers = true;
        self.registry
            .save(&tracked.record)
            .map_err(io("saving the cluster registry"))?;
        let view = tracked.view(None);
        self.inner
            .lock()
            .expect("cluster state")
            .clusters
            .insert(name, tracked);
        Ok(view)
    }

    /// Submits a plain batch job (`%%sbatch`) and follows it like a cluster of one job.
    pub fn submit_batch(
        &self,
        body: &str,
        sbatch_args: &[String],
    ) -> Result<ClusterView, ClusterError> {
        let user = current_user()?;
        let profiles = self.profiles()?;
        let log_dir = profiles
            .get(None)?
            .resolve("batch", &Overrides::default(), &self.settings.work_dir)?
            .log_dir;
        std::fs::create_dir_all(&log_dir).map_err(io(format!("creating {}", log_dir.display())))?;
        let tag = CommentTag {
            user,
            cluster: None,
            role: JobRole::Batch,
        };
        let text = script::wrap_batch(body, &tag, &log_dir, sbatch_args)?;
        let dir = self.private_cluster_dir("batch")?;
        let script_path = dir.join(format!(
            "sbatch-{}.sh",
            chrono::Utc::now().format("%Y%m%d-%H%M%S%.3f")
        ));
        private::write_file(&script_path, text.as_bytes())
            .map_err(io("writing the batch script"))?;
        let submitted = self.settings.slurm.sbatch(&script_path, sbatch_args)?;
        let log_path = self
            .settings
            .slurm
            .job_log_path(&submitted.job_id)
            .ok()
            .or_else(|| Some(log_dir.join(format!("slurm-{}.out", submitted.job_id))));
        let name = format!("job-{}", submitted.job_id);
        let tracked = Tracked::new(ClusterRecord {
            name: name.clone(),
            backend: Backend::Slurm,
            spec: None,
            jobs: vec![JobRecord {
                id: submitted.job_id,
                role: JobRole::Batch,
                workers_expected: 0,
                log_path,
                script_path: Some(script_path),
            }],
            scheduler_file: PathBuf::new(),
            created_at: chrono::Utc::now().to_rfc3339(),
            owner: self.settings.session.clone(),
            keep: true,
            tls: None,
        });
        self.registry
            .save(&tracked.record)
            .map_err(io("saving the cluster registry"))?;
        let view = tracked.view(None);
        self.inner
            .lock()
            .expect("cluster state")
            .clusters
            .insert(name, tracked);
        self.wake_poller();
        Ok(view)
    }

    /// Kernel shutdown: cancels the clusters this session started (unless `keep`), without
    /// waiting, and stops the poller. A restart should not call this: its clusters re-attach.
    pub fn shutdown(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.wake_poller();
        let mut inner = self.inner.lock().expect("cluster state");
        let mut slurm_ids = Vec::new();
        let mut finished = Vec::new();
        for (name, t) in inner.clusters.iter_mut() {
            if t.record.owner != self.settings.session || t.record.keep {
                continue;
            }
            match t.record.backend {
                Backend::Slurm => slurm_ids.extend(t.live_job_ids()),
                Backend::Local => t.local.values_mut().for_each(kill_group),
            }
            finished.push(name.clone());
        }
        drop(inner);
        if !slurm_ids.is_empty() {
            if let Err(e) = self
                .settings
                .slurm
                .clone()
                .with_timeout(POLL_COMMAND_TIMEOUT)
                .cancel(&slurm_ids)
            {
                tracing::warn!("could not cancel jobs {slurm_ids:?} at shutdown: {e}");
            }
        }
        for name in finished {
            let _ = self.registry.remove(&name);
        }
    }

    /// One round of the poller: squeue (if due, or `force`), local processes, schedulers,
    /// heartbeats; then tells subscribers what changed.
    fn refresh(&self, force: bool) {
        let (slurm_ids, pending_ids, due, http_targets) = {
            let inner = self.inner.lock().expect("cluster state");
            let changing = inner.clusters.values().any(Tracked::is_changing);
            let interval = if changing {
                inner
                    .clusters
                    .values()
                    .filter_map(|t| t.record.spec.as_ref())
                    .map(|s| {
                        s.poll_interval_secs
                            .max(crate::spec::MIN_POLL_INTERVAL_SECS)
                    })
                    .min()
                    .map_or(Duration::from_secs(5), |s| Duration::from_secs(s.into()))
            } else {
                STEADY_POLL
            };
            // A scheduler file that appeared since the last squeue is a change worth one call now
            // (the job started): the card need not wait a whole interval to say so.
            let started = inner.last_squeue.is_some_and(|t| {
                let since = std::time::SystemTime::now() - t.elapsed();
                inner
                    .clusters
                    .values()
                    .any(|c| c.scheduler_started_since(since))
            });
            let due = force || started || inner.last_squeue.is_none_or(|t| t.elapsed() >= interval);
            let mut slurm_ids = Vec::new();
            let mut pending_ids = Vec::new();
            let mut http_targets = Vec::new();
            for t in inner.clusters.values() {
                if t.record.backend == Backend::Slurm {
                    for id in t.live_job_ids() {
                        if t.job_state(&id) == Some(&JobState::Pending) {
                            pending_ids.push(id.clone());
                        }
                        slurm_ids.push(id);
                    }
                }
                if t.scheduler_may_answer() && (changing || due) {
                    http_targets.push((t.record.name.clone(), t.record.scheduler_file.clone()));
                }
            }
            let due = due && !slurm_ids.is_empty();
            (slurm_ids, pending_ids, due, http_targets)
        };
        // Slow calls happen without the lock.
        let slurm = self
            .settings
            .slurm
            .clone()
            .with_timeout(POLL_COMMAND_TIMEOUT);
        let squeue = due.then(|| slurm.jobs(&slurm_ids));
        let estimates = (due && !pending_ids.is_empty())
            .then(|| slurm.start_estimates(&pending_ids).unwrap_or_default());
        let schedulers: Vec<(String, Option<SchedulerView>)> = http_targets
            .into_iter()
            .map(|(name, path)| {
                (
                    name,
                    SchedulerFile::read(&path)
                        .ok()
                        .and_then(|f| f.status(HTTP_TIMEOUT).ok()),
                )
            })
            .collect();

        let mut inner = self.inner.lock().expect("cluster state");
        if let Some(result) = squeue {
            inner.last_squeue = Some(Instant::now());
            match result {
                Ok(statuses) => {
                    inner.controller_error = None;
                    for status in statuses {
                        for t in inner.clusters.values_mut() {
                            if t.record.jobs.iter().any(|j| j.id == status.id) {
                                t.statuses.insert(status.id.clone(), status.clone());
                            }
                        }
                    }
                }
                Err(e) => inner.controller_error = Some(e.to_string()),
            }
        }
        if let Some(estimates) = estimates {
            for e in estimates {
                if let Some(start) = e.start {
                    for t in inner.clusters.values_mut() {
                        if t.record.jobs.iter().any(|j| j.id == e.id) {
                            t.estimates.insert(e.id.clone(), start.clone());
                        }
                    }
                }
            }
        }
        for t in inner.clusters.values_mut() {
            poll_local(t);
        }
        for (name, view) in schedulers {
            if let Some(t) = inner.clusters.get_mut(&name) {
                t.scheduler_answers = view.is_some();
                if view.is_some() {
                    t.scheduler = view;
                }
            }
        }
        for t in inner.clusters.values_mut() {
            check_failure(t);
            if matches!(t.state(), ClusterState::Finished | ClusterState::Failed) {
                // Its scheduler is gone with its jobs: show no stale workers.
                t.scheduler = None;
                t.scheduler_answers = false;
            }
        }
        drop(inner);
        self.notify_changes();
    }

    fn notify_changes(&self) {
        let changed: Vec<ClusterView> = {
            let mut inner = self.inner.lock().expect("cluster state");
            let controller_error = inner.controller_error.clone();
            inner
                .clusters
                .values_mut()
                .filter_map(|t| {
                    let mut view = t.view(controller_error.as_deref());
                    let same = t.last_view.as_ref().is_some_and(|old| {
                        view.updated_at = old.updated_at.clone();
                        old == &view
                    });
                    if same {
                        return None;
                    }
                    view.updated_at =
                        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                    t.last_view = Some(view.clone());
                    Some(view)
                })
                .collect()
        };
        if changed.is_empty() {
            return;
        }
        let subscribers = self.subscribers.lock().expect("subscribers");
        for view in &changed {
            for s in subscribers.iter() {
                s(view);
            }
        }
    }
}

/// Local backend: a process group's exit is the job's end.
fn poll_local(t: &mut Tracked) {
    if t.record.backend != Backend::Local {
        return;
    }
    for job in &t.record.jobs {
        let state = match t.local.get_mut(&job.id) {
            Some(child) => match child.try_wait() {
                Ok(None) => JobState::Running,
                Ok(Some(status)) if status.success() || t.cancelling => JobState::Completed,
                Ok(Some(_)) => JobState::Failed,
                Err(_) => JobState::Gone,
            },
            // Started by an earlier kernel: we cannot wait for it; it is gone for us.
            None => JobState::Gone,
        };
        let mut status = JobStatus::gone(&job.id);
        status.state = state;
        status.nodes = "localhost".to_owned();
        status.node_count = 1;
        t.statuses.insert(job.id.clone(), status);
    }
}

/// A scheduler job that failed, or runs without a scheduler for too long: say why, with the
/// end of its log.
fn check_failure(t: &mut Tracked) {
    if t.cancelling || t.last_error.is_some() {
        return;
    }
    let Some(job) = t.record.jobs.first().cloned() else {
        return;
    };
    let state = t.job_state(&job.id).cloned();
    let tail = || {
        job.log_path
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|text| last_lines(&text, 15))
            .unwrap_or_default()
    };
    match state {
        Some(JobState::Running) if job.role == JobRole::Scheduler && !t.scheduler_answers => {
            let since = *t.running_since.get_or_insert_with(Instant::now);
            if since.elapsed() > SCHEDULER_START_LIMIT {
                t.last_error = Some(format!("job {} has run for {} s but no Dask scheduler answers at the address in {}\n{}", job.id, since.elapsed().as_secs(), t.record.scheduler_file.display(), tail()));
            }
        }
        Some(s)
            if s.is_finished()
                && !matches!(
                    s,
                    JobState::Completed | JobState::Cancelled | JobState::Gone
                ) =>
        {
            t.last_error = Some(format!("job {} ended {}\n{}", job.id, s.as_str(), tail()));
        }
        Some(JobState::Completed | JobState::Gone)
            if job.role == JobRole::Scheduler && t.scheduler.is_none() =>
        {
            t.last_error = Some(format!(
                "job {} ended before its scheduler ever answered\n{}",
                job.id,
                tail()
            ));
        }
        _ => {}
    }
}

fn pick(inner: &Inner, name: Option<&str>) -> Result<String, ClusterError> {
    match name {
        Some(n) if inner.clusters.contains_key(n) => Ok(n.to_owned()),
        Some(n) => Err(ClusterError::NoCluster(n.to_owned())),
        None => inner
            .clusters
            .values()
            .filter(|t| {
                t.record
                    .jobs
                    .first()
                    .is_none_or(|j| j.role != JobRole::Batch)
            })
            .max_by(|a, b| a.record.created_at.cmp(&b.record.created_at))
            .map(|t| t.record.name.clone())
            .ok_or(ClusterError::NoClusters),
    }
}

/// How often the heartbeat files must be touched: [`HEARTBEAT_EVERY`], or a third of the
/// shortest watchdog timeout among the clusters when that is shorter.
fn heartbeat_interval<'a>(records: impl Iterator<Item = &'a ClusterRecord>) -> Duration {
    records
        .filter_map(|r| r.spec.as_ref()?.watchdog_secs())
        .map(|secs| Duration::from_secs(secs) / 3)
        .fold(HEARTBEAT_EVERY, Duration::min)
}

fn touch(path: &Path) {
    if let Some(dir) = path.parent() {
        let _ = private::create_dir(dir);
    }
    let result = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(private::FILE_MODE)
        .open(path)
        .and_then(|f| f.set_modified(std::time::SystemTime::now()));
    if let Err(e) = result {
        tracing::warn!("could not touch the heartbeat file {}: {e}", path.display());
    }
}

/// What `%cluster attach` presents to the scheduler at `address`, or why it refuses.
fn attach_tls(
    address: &str,
    from: &AttachSource,
    given: AttachTls,
) -> Result<Option<ClientTls>, ClusterError> {
    let scheme = address.split_once("://").map_or("tcp", |(s, _)| s);
    let refuse = |why: String| Err(ClusterError::Invalid(why));
    match (scheme == "tls", given) {
        (true, AttachTls::Files(files)) => {
            files.check_files().map_err(ClusterError::Invalid)?;
            Ok(Some(files))
        }
        (true, AttachTls::Insecure) => refuse(format!(
            "the scheduler at {address} speaks TLS; --insecure is for plain tcp:// schedulers. \
             Give --tls-ca, --tls-cert and --tls-key"
        )),
        (true, AttachTls::Unspecified) => {
            let own = match from {
                AttachSource::SchedulerFile(path) => path
                    .parent()
                    .map(|dir| ClusterTls::in_dir(dir.join("tls")))
                    .filter(ClusterTls::exists),
                AttachSource::Address { .. } => None,
            };
            match own {
                Some(tls) => Ok(Some(tls.client())),
                None => refuse(format!(
                    "the scheduler at {address} uses TLS: give its CA and a client certificate \
                     and key with --tls-ca, --tls-cert and --tls-key"
                )),
            }
        }
        (false, AttachTls::Insecure) => Ok(None),
        (false, AttachTls::Files(_)) => refuse(format!(
            "the scheduler at {address} does not use TLS, so certificates cannot protect it; \
             attach it with --insecure if you accept that"
        )),
        (false, AttachTls::Unspecified) => refuse(format!(
            "the scheduler at {address} is not protected by TLS: anyone who can reach it can run \
             code as its owner. Attach it with --insecure if you accept that"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_is_touched_at_a_third_of_the_shortest_watchdog() {
        let record = |watchdog_minutes: Option<f64>| {
            let spec = watchdog_minutes.map(|m| {
                let mut spec = crate::profile::Profile::workshop()
                    .resolve("w", &crate::profile::Overrides::default(), Path::new("/"))
                    .unwrap();
                spec.watchdog_minutes = m;
                spec
            });
            ClusterRecord {
                name: "w".into(),
                backend: Backend::Slurm,
                spec,
                jobs: Vec::new(),
                scheduler_file: PathBuf::from("/s.json"),
                created_at: String::new(),
                owner: String::new(),
                keep: false,
                tls: None,
            }
        };
        assert_eq!(heartbeat_interval([].iter()), HEARTBEAT_EVERY);
        let slow = [record(Some(10.0)), record(None), record(Some(0.0))];
        assert_eq!(heartbeat_interval(slow.iter()), HEARTBEAT_EVERY);
        let quick = [record(Some(10.0)), record(Some(0.1))];
        assert_eq!(heartbeat_interval(quick.iter()), Duration::from_secs(2));
    }

    #[test]
    fn a_new_scheduler_file_means_the_waiting_job_started() {
        use std::time::SystemTime;
        let dir = std::env::temp_dir().join(format!("rck-started-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("scheduler.json");
        let tracked = |role| {
            Tracked::new(ClusterRecord {
                name: "w".into(),
                backend: Backend::Slurm,
                spec: None,
                jobs: vec![JobRecord {
                    id: "7".into(),
                    role,
                    workers_expected: 3,
                    log_path: None,
                    script_path: None,
                }],
                scheduler_file: file.clone(),
                created_at: String::new(),
                owner: String::new(),
                keep: false,
                tls: None,
            })
        };
        let before = SystemTime::now() - Duration::from_secs(60);
        assert!(!tracked(JobRole::Scheduler).scheduler_started_since(before)); // no file yet
        std::fs::write(&file, "{}").unwrap();
        assert!(tracked(JobRole::Scheduler).scheduler_started_since(before));
        // Written before the last squeue: that squeue already knew; a batch job has no scheduler.
        let after = SystemTime::now() + Duration::from_secs(60);
        assert!(!tracked(JobRole::Scheduler).scheduler_started_since(after));
        assert!(!tracked(JobRole::Batch).scheduler_started_since(before));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn states_follow_jobs_and_scheduler() {
        use ClusterState as C;
        use JobState as J;
        let sched = |s: Option<&'static JobState>| Some((JobRole::Scheduler, s));
        assert_eq!(
            derive_state(sched(None), &[None], false, false, false),
            C::Pending
        );
        assert_eq!(
            derive_state(
                sched(Some(&J::Pending)),
                &[Some(&J::Pending)],
                false,
                false,
                false
            ),
            C::Pending
        );
        assert_eq!(
            derive_state(
                sched(Some(&J::Running)),
                &[Some(&J::Running)],
                false,
                false,
                false
            ),
            C::Starting
        );
        assert_eq!(
            derive_state(
                sched(Some(&J::Running)),
                &[Some(&J::Running)],
                true,
                false,
                false
            ),
            C::Running
        );
        assert_eq!(
            derive_state(
                sched(Some(&J::Running)),
                &[Some(&J::Running)],
                true,
                true,
                false
            ),
            C::Cancelling
        );
        assert_eq!(
            derive_state(
                sched(Some(&J::Cancelled)),
                &[Some(&J::Cancelled)],
                false,
                true,
                false
            ),
            C::Finished
        );
        assert_eq!(
            derive_state(
                sched(Some(&J::Failed)),
                &[Some(&J::Failed)],
                false,
                false,
                true
            ),
            C::Failed
        );
        assert_eq!(
            derive_state(
                sched(Some(&J::Timeout)),
                &[Some(&J::Timeout)],
                false,
                false,
                false
            ),
            C::Failed
        );
        assert_eq!(
            derive_state(
                sched(Some(&J::Running)),
                &[Some(&J::Running)],
                false,
                false,
                true
            ),
            C::Failed
        );
        assert_eq!(derive_state(None, &[], true, false, false), C::Running);
        assert_eq!(
            derive_state(
                Some((JobRole::Batch, Some(&J::Running))),
                &[Some(&J::Running)],
                false,
                false,
                false
            ),
            C::Running
        );
        assert_eq!(
            derive_state(
                Some((JobRole::Batch, Some(&J::Completed))),
                &[Some(&J::Completed)],
                false,
                false,
                false
            ),
            C::Finished
        );
    }

    #[test]
    fn attach_needs_certificates_for_tls_and_consent_for_tcp() {
        let dir = crate::private::tests::scratch("attach-tls");
        let own = ClusterTls::in_dir(dir.join("c/tls"));
        own.create("c").unwrap();
        let file = AttachSource::SchedulerFile(dir.join("c/scheduler.json"));
        let elsewhere = AttachSource::SchedulerFile(dir.join("scheduler.json"));
        let by_address = AttachSource::Address {
            address: "tls://10.0.0.1:1".into(),
            dashboard_port: 2,
        };
        let tls = "tls://10.0.0.1:1";
        let tcp = "tcp://10.0.0.1:1";
        let msg = |r: Result<Option<ClientTls>, ClusterError>| r.unwrap_err().to_string();
        // A scheduler file of this kernel's kind of cluster brings its own client certificate.
        assert_eq!(
            attach_tls(tls, &file, AttachTls::Unspecified).unwrap(),
            Some(own.client())
        );
        assert!(msg(attach_tls(tls, &elsewhere, AttachTls::Unspecified)).contains("--tls-ca"));
        assert!(msg(attach_tls(tls, &by_address, AttachTls::Unspecified)).contains("--tls-ca"));
        assert!(msg(attach_tls(tls, &file, AttachTls::Insecure)).contains("speaks TLS"));
        assert_eq!(
            attach_tls(tls, &by_address, AttachTls::Files(own.client())).unwrap(),
            Some(own.client())
        );
        let missing = ClusterTls::in_dir(dir.join("none")).client();
        assert!(msg(attach_tls(tls, &by_address, AttachTls::Files(missing))).contains("not a file"));
        assert_eq!(attach_tls(tcp, &file, AttachTls::Insecure).unwrap(), None);
        assert!(msg(attach_tls(tcp, &file, AttachTls::Unspecified)).contains("--insecure"));
        assert!(msg(attach_tls(tcp, &file, AttachTls::Files(own.client()))).contains("--insecure"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dashboard_line() {
        let scheduler = SchedulerView {
            address: "tcp://uc2n001:40000".into(),
            host: "uc2n001".into(),
            dashboard_port: 8787,
            workers: vec![],
        };
        let mut spec_login = None;
        let view = dashboard_view(&scheduler, spec_login.take());
        assert_eq!(view.url, "http://uc2n001:8787/status");
        assert!(
            view.ssh_command.starts_with("ssh -N -L 8787:uc2n001:8787 "),
            "{}",
            view.ssh_command
        );
    }
}
