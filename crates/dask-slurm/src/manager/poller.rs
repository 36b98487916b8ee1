//! The poller and heartbeat threads: one round of polling ([`Clusters::refresh`]) asks each
//! backend for its jobs' states and each running scheduler for its workers, checks for
//! failures, and tells subscribers what changed.

use std::collections::HashMap;
use std::os::unix::fs::OpenOptionsExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::tracked::Tracked;
use super::{lock, Clusters, HTTP_TIMEOUT};
use crate::dask::SchedulerFile;
use crate::model::{self, ClusterView, JobRole, SchedulerView};
use crate::private;
use crate::process::last_lines;
use crate::registry::{ClusterRecord, JobRecord};
use crate::slurm::{current_user, JobState};
use crate::tls::ClusterTls;

/// Time between `squeue` calls while nothing changes.
pub const STEADY_POLL: Duration = Duration::from_secs(30);
/// How long a scheduler job may run without a scheduler answering before the cluster is failed.
pub const SCHEDULER_START_LIMIT: Duration = Duration::from_secs(180);
/// How often the kernel touches each cluster's heartbeat file at most (the jobs' watchdog reads
/// it); a cluster with a short watchdog gets it touched at a third of its timeout.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(20);

/// Starts the poller thread and the heartbeat thread of `manager`. Both hold it weakly and end
/// when it is dropped or shut down.
pub(super) fn start_threads(manager: &Arc<Clusters>) {
    let poller = Arc::downgrade(manager);
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
                // A panic in one round (a subscriber's, say) must not end the polling for good.
                if catch_unwind(AssertUnwindSafe(|| m.refresh(false))).is_err() {
                    tracing::error!("a round of the cluster poller panicked; polling goes on");
                }
                // Adapting clusters decide on what this round learned (here, not in `refresh`,
                // which the operations that adapting calls call too).
                if catch_unwind(AssertUnwindSafe(|| m.adapt_round())).is_err() {
                    tracing::error!("a round of adapting panicked; polling goes on");
                }
                m.sleep_until_woken(Duration::from_secs(1));
            }
        })
        .expect("spawn the cluster poller");
    // Its own thread, so that a slow squeue never delays a heartbeat past a short watchdog.
    let heartbeat = Arc::downgrade(manager);
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
}

/// What one poller round asks, gathered under the lock and asked without it.
struct PollPlan {
    /// Per backend: the jobs to ask about, and the pending ones among them.
    jobs: HashMap<model::Backend, (Vec<String>, Vec<String>)>,
    /// The schedulers to ask for their workers (cluster name, scheduler file).
    schedulers: Vec<(String, PathBuf)>,
}

impl Clusters {
    /// How often to touch the heartbeat files, and those of the clusters that have live jobs.
    fn heartbeat_files(&self) -> (Duration, Vec<PathBuf>) {
        let table = lock(&self.table);
        let every = heartbeat_interval(table.clusters.values().map(|t| &t.record));
        let files = table
            .clusters
            .values()
            .filter(|t| !t.record.jobs.is_empty() && !t.has_ended())
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
            .with_timeout(super::POLL_COMMAND_TIMEOUT)
            .find_tagged_jobs(&user)
        {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!("could not look for lost clusters: {e}");
                return;
            }
        };
        let slurm = self.backend(model::Backend::Slurm);
        let mut table = lock(&self.table);
        for t in tagged {
            let Some(name) = t.tag.cluster.clone() else {
                continue;
            };
            if t.tag.role == JobRole::Batch || t.job.state.is_finished() {
                continue;
            }
            let tracked = table.clusters.entry(name.clone()).or_insert_with(|| {
                Tracked::new(
                    ClusterRecord {
                        name: name.clone(),
                        backend: model::Backend::Slurm,
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
                        adapt: None,
                    },
                    slurm.clone(),
                )
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
        let guard = lock(flag);
        let (mut guard, _) = condvar
            .wait_timeout_while(guard, at_most, |woken| !*woken)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *guard = false;
    }

    /// Makes the poller run a round now (after a submission or a cancel).
    pub(super) fn wake_poller(&self) {
        let (flag, condvar) = &self.wake;
        *lock(flag) = true;
        condvar.notify_all();
    }

    /// What this round asks: every job of a cheap backend, the live jobs of a costly one when
    /// `force`d or due, and the schedulers that may answer.
    fn plan_poll(&self, force: bool) -> PollPlan {
        let table = lock(&self.table);
        let changing = table.clusters.values().any(Tracked::is_changing);
        let interval = if changing {
            table
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
        let started = table.last_costly_poll.is_some_and(|t| {
            let since = SystemTime::now() - t.elapsed();
            table
                .clusters
                .values()
                .any(|c| c.scheduler_started_since(since))
        });
        let due = force
            || started
            || table
                .last_costly_poll
                .is_none_or(|t| t.elapsed() >= interval);
        let mut plan = PollPlan {
            jobs: HashMap::new(),
            schedulers: Vec::new(),
        };
        for t in table.clusters.values() {
            let (ids, pending) = plan.jobs.entry(t.record.backend).or_default();
            if !t.backend.polling_is_costly() {
                ids.extend(t.record.jobs.iter().map(|j| j.id.clone()));
            } else if due {
                for id in t.live_job_ids() {
                    if t.job_state(&id) == Some(&JobState::Pending) {
                        pending.push(id.clone());
                    }
                    ids.push(id);
                }
            }
            if t.scheduler_may_answer() && (changing || due) {
                plan.schedulers
                    .push((t.record.name.clone(), t.record.scheduler_file.clone()));
            }
        }
        plan.jobs.retain(|_, (ids, _)| !ids.is_empty());
        plan
    }

    /// One round of the poller: job states (from costly backends only if due, or `force`),
    /// schedulers, failure checks; then tells subscribers what changed.
    pub(super) fn refresh(&self, force: bool) {
        let plan = self.plan_poll(force);
        // Slow calls happen without the lock.
        let answers: Vec<_> = plan
            .jobs
            .into_iter()
            .map(|(kind, (ids, pending))| {
                let backend = self.backend(kind);
                let estimates = backend.start_estimates(&pending);
                let statuses = backend_statuses(&*backend, &ids);
                (backend, statuses, estimates)
            })
            .collect();
        let schedulers: Vec<(String, Option<SchedulerView>)> = plan
            .schedulers
            .into_iter()
            .map(|(name, path)| {
                let view = SchedulerFile::read(&path)
                    .ok()
                    .and_then(|f| f.status(HTTP_TIMEOUT).ok());
                (name, view)
            })
            .collect();

        let mut table = lock(&self.table);
        for (backend, statuses, estimates) in answers {
            if backend.polling_is_costly() {
                table.last_costly_poll = Some(Instant::now());
            }
            match statuses {
                Ok(statuses) => {
                    table.poll_errors.remove(&backend.kind());
                    for status in statuses {
                        for t in table.clusters.values_mut() {
                            if t.record.jobs.iter().any(|j| j.id == status.id) {
                                t.statuses.insert(status.id.clone(), status.clone());
                            }
                        }
                    }
                }
                Err(e) => {
                    table.poll_errors.insert(backend.kind(), e);
                }
            }
            for e in estimates {
                if let Some(start) = e.start {
                    for t in table.clusters.values_mut() {
                        if t.record.jobs.iter().any(|j| j.id == e.id) {
                            t.estimates.insert(e.id.clone(), start.clone());
                        }
                    }
                }
            }
        }
        for (name, view) in schedulers {
            if let Some(t) = table.clusters.get_mut(&name) {
                t.scheduler_answers = view.is_some();
                if view.is_some() {
                    t.scheduler = view;
                }
            }
        }
        let now = Instant::now();
        for t in table.clusters.values_mut() {
            check_failure(t);
            t.note_missing_workers(now);
            if t.has_ended() {
                // Its scheduler is gone with its jobs: show no stale workers.
                t.scheduler = None;
                t.scheduler_answers = false;
            }
        }
        let orphans: Vec<(String, Arc<dyn super::Backend>, Vec<String>)> = table
            .clusters
            .values()
            .filter_map(|t| {
                let ids = orphaned_grow_jobs(t)?;
                Some((t.record.name.clone(), t.backend.clone(), ids))
            })
            .collect();
        drop(table);
        for (name, backend, ids) in orphans {
            tracing::info!(
                "cluster {name}: its scheduler's job has ended; cancelling its grow jobs {ids:?}"
            );
            if let Err(e) = backend.cancel(&ids) {
                tracing::warn!("cluster {name}: cancelling grow jobs {ids:?}: {e}");
            }
        }
        self.notify_changes();
    }

    /// Tells every subscriber of every cluster whose view changed since they were last told.
    /// A subscriber that panics is logged; the others are still told.
    pub(super) fn notify_changes(&self) {
        let changed: Vec<ClusterView> = {
            let mut table = lock(&self.table);
            let names: Vec<String> = table.clusters.keys().cloned().collect();
            let mut changed = Vec::new();
            for name in names {
                let mut view = table.view(&table.clusters[&name]);
                let t = table.clusters.get_mut(&name).expect("a listed cluster");
                let same = t.last_view.as_ref().is_some_and(|old| {
                    view.updated_at = old.updated_at.clone();
                    old == &view
                });
                if same {
                    continue;
                }
                view.updated_at =
                    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                t.last_view = Some(view.clone());
                changed.push(view);
            }
            changed
        };
        if changed.is_empty() {
            return;
        }
        let subscribers = lock(&self.subscribers);
        for view in &changed {
            for s in subscribers.iter() {
                if catch_unwind(AssertUnwindSafe(|| s(view))).is_err() {
                    tracing::error!("a subscriber panicked on the view of {}", view.name);
                }
            }
        }
    }
}

/// The grow jobs of `t` that wait or run although its scheduler's job has ended (for any
/// reason): their workers would retry a dead scheduler until their own walltime, holding nodes.
fn orphaned_grow_jobs(t: &Tracked) -> Option<Vec<String>> {
    if t.cancelling {
        return None;
    }
    let scheduler = t
        .record
        .jobs
        .first()
        .filter(|j| j.role == JobRole::Scheduler)?;
    if t.is_live(&scheduler.id) {
        return None;
    }
    let ids: Vec<String> = t
        .record
        .jobs
        .iter()
        .filter(|j| j.role == JobRole::Grow && t.is_live(&j.id))
        .map(|j| j.id.clone())
        .collect();
    (!ids.is_empty()).then_some(ids)
}

/// The backend's answer for `ids`, with its error as text (kept to be shown on the cards).
fn backend_statuses(
    backend: &dyn super::Backend,
    ids: &[String],
) -> Result<Vec<crate::slurm::JobStatus>, String> {
    backend.statuses(ids).map_err(|e| e.to_string())
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
                t.last_error = Some(format!(
                    "job {} has run for {} s but no Dask scheduler answers at the address in {}\n{}",
                    job.id,
                    since.elapsed().as_secs(),
                    t.record.scheduler_file.display(),
                    tail()
                ));
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

/// How often the heartbeat files must be touched: [`HEARTBEAT_EVERY`], or a third of the
/// shortest watchdog timeout among the clusters when that is shorter.
fn heartbeat_interval<'a>(records: impl Iterator<Item = &'a ClusterRecord>) -> Duration {
    records
        .filter_map(|r| r.spec.as_ref()?.watchdog_secs())
        .map(|secs| Duration::from_secs(secs) / 3)
        .fold(HEARTBEAT_EVERY, Duration::min)
}

/// Sets the file's modification time to now (creating it 0600, and its directory 0700).
pub(super) fn touch(path: &Path) {
    if let Some(dir) = path.parent() {
        let _ = private::create_dir(dir);
    }
    let result = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(private::FILE_MODE)
        .open(path)
        .and_then(|f| f.set_modified(SystemTime::now()));
    if let Err(e) = result {
        tracing::warn!("could not touch the heartbeat file {}: {e}", path.display());
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
                backend: model::Backend::Slurm,
                spec,
                jobs: Vec::new(),
                scheduler_file: PathBuf::from("/s.json"),
                created_at: String::new(),
                owner: String::new(),
                keep: false,
                tls: None,
                adapt: None,
            }
        };
        assert_eq!(heartbeat_interval([].iter()), HEARTBEAT_EVERY);
        let slow = [record(Some(10.0)), record(None), record(Some(0.0))];
        assert_eq!(heartbeat_interval(slow.iter()), HEARTBEAT_EVERY);
        let quick = [record(Some(10.0)), record(Some(0.1))];
        assert_eq!(heartbeat_interval(quick.iter()), Duration::from_secs(2));
    }
}
