//! One cluster as the manager follows it ([`Tracked`]), the state derived from its jobs and
//! its scheduler ([`derive_state`]), and the [`ClusterView`] made from both.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::adapt::AdaptState;
use super::backend::Backend;
use crate::model::{
    AdaptView, ClusterState, ClusterView, DashboardView, JobRole, JobView, SchedulerView,
};
use crate::process::last_lines;
use crate::registry::ClusterRecord;
use crate::slurm::{current_user, JobState, JobStatus};
use crate::spec::{ClusterSpec, PythonEnv};

/// How long workers of running jobs may stay missing from a scheduler that answers before the
/// card says so.
pub const WORKERS_JOIN_LIMIT: Duration = Duration::from_secs(180);

/// One cluster as the manager follows it.
pub(super) struct Tracked {
    /// What is kept on disk (the registry) and survives a kernel restart.
    pub record: ClusterRecord,
    /// Where its jobs run (the backend its record names).
    pub backend: Arc<dyn Backend>,
    /// The latest state per job (absent until the first poll).
    pub statuses: HashMap<String, JobStatus>,
    /// Estimated starts of pending jobs.
    pub estimates: HashMap<String, String>,
    /// What the scheduler said last (kept while it does not answer, cleared when it ends).
    pub scheduler: Option<SchedulerView>,
    /// Whether the scheduler answered the last time it was asked.
    pub scheduler_answers: bool,
    /// Cancel was asked for.
    pub cancelling: bool,
    /// An error to show (submission, failed job, unreachable controller).
    pub last_error: Option<String>,
    /// When the scheduler job was first seen running (for the start limit).
    pub running_since: Option<Instant>,
    /// Since when workers of running jobs have been missing while the scheduler answers.
    pub workers_missing_since: Option<Instant>,
    /// A warning that does not end the cluster (workers that do not join).
    pub notice: Option<String>,
    /// The view subscribers saw last.
    pub last_view: Option<ClusterView>,
    /// Where adapting stands (when the record has a policy).
    pub adapt: AdaptState,
}

impl Tracked {
    /// A cluster just started, attached or re-loaded: nothing polled yet.
    pub fn new(record: ClusterRecord, backend: Arc<dyn Backend>) -> Tracked {
        Tracked {
            record,
            backend,
            statuses: HashMap::new(),
            estimates: HashMap::new(),
            scheduler: None,
            scheduler_answers: false,
            cancelling: false,
            last_error: None,
            running_since: None,
            workers_missing_since: None,
            notice: None,
            last_view: None,
            adapt: AdaptState::default(),
        }
    }

    /// The job's latest state (`None`: not polled yet).
    pub fn job_state(&self, id: &str) -> Option<&JobState> {
        self.statuses.get(id).map(|s| &s.state)
    }

    /// Whether the job has not ended (or is not known to have).
    pub(super) fn is_live(&self, id: &str) -> bool {
        !self.job_state(id).is_some_and(JobState::is_finished)
    }

    /// The jobs that have not ended.
    pub fn live_job_ids(&self) -> Vec<String> {
        self.record
            .jobs
            .iter()
            .filter(|j| self.is_live(&j.id))
            .map(|j| j.id.clone())
            .collect()
    }

    /// How long a running job has before its walltime (`None`: not running, or no limit).
    pub(super) fn time_left(&self, id: &str) -> Option<Duration> {
        let status = self
            .statuses
            .get(id)
            .filter(|s| s.state == JobState::Running)?;
        let limit = crate::slurm::parse_slurm_duration(&status.time_limit)?;
        let elapsed = crate::slurm::parse_slurm_duration(&status.elapsed)?;
        Some(limit.saturating_sub(elapsed))
    }

    /// The live grow jobs: the running ones and the others (queued, or not polled yet), each
    /// oldest first.
    pub(super) fn live_grow_jobs(&self) -> (Vec<String>, Vec<String>) {
        self.record
            .jobs
            .iter()
            .filter(|j| j.role == JobRole::Grow && self.is_live(&j.id))
            .map(|j| j.id.clone())
            .partition(|id| self.job_state(id) == Some(&JobState::Running))
    }

    /// The adapt policy and where it stands.
    pub(super) fn adapt_view(&self) -> AdaptView {
        let (running, queued) = self.live_grow_jobs();
        AdaptView {
            policy: self.record.adapt,
            target: self.adapt.target,
            running_jobs: u32::try_from(running.len()).unwrap_or(u32::MAX),
            queued_jobs: u32::try_from(queued.len()).unwrap_or(u32::MAX),
            last_decision: self.adapt.last_decision.clone(),
        }
    }

    /// The workers the live jobs are to start (joined or still to join).
    pub(super) fn workers_expected(&self) -> u32 {
        self.record
            .jobs
            .iter()
            .filter(|j| self.is_live(&j.id))
            .map(|j| j.workers_expected)
            .sum()
    }

    /// The cluster's state from its jobs and its scheduler.
    pub fn state(&self) -> ClusterState {
        let scheduler_job = self.record.jobs.iter().find(|j| j.role != JobRole::Grow);
        let all_jobs: Vec<Option<&JobState>> = self
            .record
            .jobs
            .iter()
            .map(|j| self.job_state(&j.id))
            .collect();
        derive_state(&StateInputs {
            scheduler_job: scheduler_job.map(|j| (j.role, self.job_state(&j.id))),
            all_jobs: &all_jobs,
            scheduler_answers: self.scheduler_answers,
            cancelling: self.cancelling,
            has_error: self.last_error.is_some(),
        })
    }

    /// What subscribers and the magics see; `poll_error` is the error of the last poll of this
    /// cluster's backend, if it failed.
    pub fn view(&self, poll_error: Option<&str>) -> ClusterView {
        let jobs = self
            .record
            .jobs
            .iter()
            .map(|j| {
                let status = self.statuses.get(&j.id);
                JobView {
                    id: j.id.clone(),
                    role: j.role,
                    state: status.map_or(JobState::Submitted, |s| s.state.clone()),
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
        let last_error = match poll_error {
            Some(e) if !self.record.jobs.is_empty() => Some(format!(
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
            workers_expected: self.workers_expected(),
            last_error,
            tls: self.record.tls.clone(),
            notice: self.notice.clone(),
            adapt: self.record.adapt.map(|_| self.adapt_view()),
            python_env: self.record.spec.as_ref().and_then(|s| match &s.python_env {
                PythonEnv::Activate(dir) => Some(dir.clone()),
                PythonEnv::Inherit | PythonEnv::Staged(_) => None,
            }),
            updated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }

    /// Whether asking the scheduler makes sense: its job runs (or it was attached).
    pub fn scheduler_may_answer(&self) -> bool {
        if self.cancelling || self.record.scheduler_file.as_os_str().is_empty() {
            return false;
        }
        match self.record.jobs.first() {
            None => true,
            Some(j) if j.role == JobRole::Batch => false,
            Some(j) => match self.job_state(&j.id) {
                // Not polled yet: only a job that did not queue may run already.
                None => !self.backend.queues_jobs(),
                Some(state) => *state == JobState::Running,
            },
        }
    }

    /// Whether the scheduler file was written after `since` while the queue last said the
    /// scheduler job was waiting: the job runs now, and one poll is worth asking at once.
    pub fn scheduler_started_since(&self, since: SystemTime) -> bool {
        let Some(job) = self.record.jobs.first() else {
            return false;
        };
        let waiting = matches!(
            self.job_state(&job.id),
            None | Some(JobState::Pending | JobState::Configuring)
        );
        self.backend.queues_jobs()
            && job.role == JobRole::Scheduler
            && waiting
            && std::fs::metadata(&self.record.scheduler_file)
                .and_then(|m| m.modified())
                .is_ok_and(|written| written > since)
    }

    /// Whether something is still moving (pending, starting, joining, cancelling).
    pub fn is_changing(&self) -> bool {
        match self.state() {
            ClusterState::Pending | ClusterState::Starting | ClusterState::Cancelling => true,
            ClusterState::Running => {
                let joined = self
                    .scheduler
                    .as_ref()
                    .map_or(0, |s| s.workers.len() as u32);
                joined != self.workers_expected()
            }
            ClusterState::Finished | ClusterState::Failed => false,
        }
    }

    /// Notes (in [`Tracked::notice`]) when workers of running jobs have not joined a scheduler
    /// that answers for [`WORKERS_JOIN_LIMIT`]: MPI may be stuck at start-up, a node unable to
    /// reach the scheduler, or a worker crashing. Cleared when they have joined.
    pub fn note_missing_workers(&mut self, now: Instant) {
        let running: u32 = self
            .record
            .jobs
            .iter()
            .filter(|j| self.job_state(&j.id) == Some(&JobState::Running))
            .map(|j| j.workers_expected)
            .sum();
        let joined = self
            .scheduler
            .as_ref()
            .map_or(0, |s| s.workers.len() as u32);
        if self.cancelling || !self.scheduler_answers || joined >= running {
            self.workers_missing_since = None;
            self.notice = None;
            return;
        }
        let since = *self.workers_missing_since.get_or_insert(now);
        let waited = now.saturating_duration_since(since);
        if waited < WORKERS_JOIN_LIMIT {
            return;
        }
        let log = self
            .record
            .jobs
            .iter()
            .rev()
            .find(|j| self.job_state(&j.id) == Some(&JobState::Running))
            .and_then(|j| {
                Some((
                    j.id.clone(),
                    std::fs::read_to_string(j.log_path.as_ref()?).ok()?,
                ))
            })
            .map(|(id, text)| format!("\nthe end of job {id}'s log:\n{}", last_lines(&text, 10)))
            .unwrap_or_default();
        self.notice = Some(format!(
            "{joined} of the {running} workers of the running jobs have joined after {} min: \
             MPI may be stuck at start-up, or nodes cannot reach the scheduler{log}",
            waited.as_secs() / 60
        ));
    }

    /// Whether the cluster has ended, well or badly.
    pub fn has_ended(&self) -> bool {
        matches!(self.state(), ClusterState::Finished | ClusterState::Failed)
    }
}

/// What a cluster's state is derived from.
#[derive(Clone, Copy)]
pub(super) struct StateInputs<'a> {
    /// The job that runs the scheduler (or the batch job) with its role and state; `None` for
    /// an attached cluster (no jobs of ours).
    pub scheduler_job: Option<(JobRole, Option<&'a JobState>)>,
    /// Every job's state; `None` means "not polled yet" (just submitted).
    pub all_jobs: &'a [Option<&'a JobState>],
    /// Whether the scheduler answered the last time it was asked.
    pub scheduler_answers: bool,
    /// Whether cancel was asked for.
    pub cancelling: bool,
    /// Whether an error is to be shown (a failed job, a scheduler that never answered).
    pub has_error: bool,
}

/// The cluster state from the scheduler job's state, all jobs' states, and the scheduler.
pub(super) fn derive_state(inputs: &StateInputs<'_>) -> ClusterState {
    let all_jobs = inputs.all_jobs;
    let all_finished = !all_jobs.is_empty()
        && all_jobs
            .iter()
            .all(|s| s.is_some_and(JobState::is_finished));
    if inputs.cancelling {
        return if all_finished || all_jobs.is_empty() {
            ClusterState::Finished
        } else {
            ClusterState::Cancelling
        };
    }
    let Some((role, state)) = inputs.scheduler_job else {
        // An attached cluster: no jobs of ours, only a scheduler.
        return if inputs.scheduler_answers {
            ClusterState::Running
        } else if inputs.has_error {
            ClusterState::Failed
        } else {
            ClusterState::Starting
        };
    };
    match state {
        None => ClusterState::Pending,
        Some(JobState::Pending | JobState::Configuring) => ClusterState::Pending,
        Some(s) if s.is_finished() => match s {
            JobState::Completed | JobState::Cancelled | JobState::Gone if !inputs.has_error => {
                ClusterState::Finished
            }
            _ => ClusterState::Failed,
        },
        Some(_) if inputs.has_error => ClusterState::Failed,
        Some(_) if role == JobRole::Batch => ClusterState::Running,
        Some(_) if inputs.scheduler_answers => ClusterState::Running,
        Some(_) => ClusterState::Starting,
    }
}

/// The dashboard's URL and the ssh tunnel line to it from the login node.
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::manager::SlurmBackend;
    use crate::registry::JobRecord;
    use crate::slurm::Slurm;

    #[test]
    fn a_new_scheduler_file_means_the_waiting_job_started() {
        use std::time::SystemTime;
        let dir = std::env::temp_dir().join(format!("rck-started-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("scheduler.json");
        let tracked = |role| {
            Tracked::new(
                ClusterRecord {
                    name: "w".into(),
                    backend: crate::model::Backend::Slurm,
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
                    adapt: None,
                },
                Arc::new(SlurmBackend::new(
                    Slurm::new(None, None),
                    Duration::from_secs(1),
                )),
            )
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
        let running = [Some(&J::Running)];
        let base = StateInputs {
            scheduler_job: Some((JobRole::Scheduler, Some(&J::Running))),
            all_jobs: &running,
            scheduler_answers: false,
            cancelling: false,
            has_error: false,
        };
        let job = |state: &'static JobState| Some((JobRole::Scheduler, Some(state)));
        let cases: [(StateInputs, ClusterState); 12] = [
            (
                StateInputs {
                    scheduler_job: Some((JobRole::Scheduler, None)),
                    all_jobs: &[None],
                    ..base
                },
                C::Pending,
            ),
            (
                StateInputs {
                    scheduler_job: job(&J::Pending),
                    all_jobs: &[Some(&J::Pending)],
                    ..base
                },
                C::Pending,
            ),
            (StateInputs { ..base }, C::Starting),
            (
                StateInputs {
                    scheduler_answers: true,
                    ..base
                },
                C::Running,
            ),
            (
                StateInputs {
                    scheduler_answers: true,
                    cancelling: true,
                    ..base
                },
                C::Cancelling,
            ),
            (
                StateInputs {
                    scheduler_job: job(&J::Cancelled),
                    all_jobs: &[Some(&J::Cancelled)],
                    cancelling: true,
                    ..base
                },
                C::Finished,
            ),
            (
                StateInputs {
                    scheduler_job: job(&J::Failed),
                    all_jobs: &[Some(&J::Failed)],
                    has_error: true,
                    ..base
                },
                C::Failed,
            ),
            (
                StateInputs {
                    scheduler_job: job(&J::Timeout),
                    all_jobs: &[Some(&J::Timeout)],
                    ..base
                },
                C::Failed,
            ),
            (
                StateInputs {
                    has_error: true,
                    ..base
                },
                C::Failed,
            ),
            (
                StateInputs {
                    scheduler_job: None,
                    all_jobs: &[],
                    scheduler_answers: true,
                    ..base
                },
                C::Running,
            ),
            (
                StateInputs {
                    scheduler_job: Some((JobRole::Batch, Some(&J::Running))),
                    ..base
                },
                C::Running,
            ),
            (
                StateInputs {
                    scheduler_job: Some((JobRole::Batch, Some(&J::Completed))),
                    all_jobs: &[Some(&J::Completed)],
                    ..base
                },
                C::Finished,
            ),
        ];
        for (i, (inputs, expected)) in cases.iter().enumerate() {
            assert_eq!(derive_state(inputs), *expected, "case {i}");
        }
    }

    #[test]
    fn dashboard_line() {
        let scheduler = SchedulerView {
            address: "tcp://uc2n001:40000".into(),
            host: "uc2n001".into(),
            dashboard_port: 8787,
            workers: vec![],
        };
        let user = current_user().unwrap();
        let view = dashboard_view(&scheduler, None);
        assert_eq!(view.url, "http://uc2n001:8787/status");
        assert_eq!(view.local_url, "http://localhost:8787/status");
        assert_eq!(
            view.ssh_command,
            format!("ssh -N -L 8787:uc2n001:8787 {user}@{}", this_host()),
            "without a login_host, the tunnel goes through this machine"
        );
        let mut spec = crate::profile::Profile::workshop()
            .resolve(
                "demo",
                &crate::settings::Overrides::default(),
                std::path::Path::new("/home/alice/notebooks"),
            )
            .unwrap();
        spec.login_host = Some("uc2.scc.kit.edu".into());
        let view = dashboard_view(&scheduler, Some(&spec));
        assert_eq!(
            view.ssh_command,
            format!("ssh -N -L 8787:uc2n001:8787 {user}@uc2.scc.kit.edu"),
            "the profile's login_host is the tunnel's far end"
        );
    }
}
