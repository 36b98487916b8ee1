//! `cancel`: clusters or single jobs end (graceful scheduler shutdown first), and `shutdown`,
//! the kernel's end, which cancels what this session started without waiting.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::requests::CancelTarget;
use super::{lock, ClusterError, Clusters};
use crate::dask;
use crate::model::{self, ClusterView};
use crate::slurm::JobState;
use crate::spec::PythonEnv;

/// How long `cancel` waits for the jobs to leave the queue.
const CANCEL_WAIT: Duration = Duration::from_secs(90);

/// How long after its cancel `cancel` first asks for the jobs' state: SLURM ends a job whose
/// scheduler shut down gracefully in about this time.
const FIRST_LOOK: Duration = Duration::from_secs(1);

/// After this many polls in a row that could not read the jobs' state (a controller that does
/// not answer, an squeue that prints nonsense), `cancel` stops waiting and says so.
const CANCEL_FAILED_POLLS: u32 = 3;

impl Clusters {
    /// Ends clusters (or one job): graceful scheduler shutdown first, then the backend cancels
    /// the jobs (`scancel`, or the local process groups), then waits until they have ended.
    pub fn cancel(&self, target: CancelTarget) -> Result<Vec<ClusterView>, ClusterError> {
        let (names, only_job) = {
            let table = lock(&self.table);
            match &target {
                CancelTarget::All => (table.clusters.keys().cloned().collect::<Vec<_>>(), None),
                CancelTarget::Cluster(name) => (vec![table.pick(name.as_deref())?], None),
                CancelTarget::Job(name, id) => {
                    let t = table.get(name.as_deref())?;
                    if !t.record.jobs.iter().any(|j| &j.id == id) {
                        return Err(ClusterError::Invalid(format!(
                            "job {id} is not a job of cluster {}",
                            t.record.name
                        )));
                    }
                    (vec![t.record.name.clone()], Some(id.clone()))
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
        let (record, backend, ids, scheduler_up) = {
            let mut table = lock(&self.table);
            let t = table
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
            (
                t.record.clone(),
                t.backend.clone(),
                ids,
                t.scheduler_answers,
            )
        };
        self.notify_changes();
        if only_job.is_none() && scheduler_up {
            let python_env = record
                .spec
                .as_ref()
                .map(|s| s.python_env.clone())
                .unwrap_or(PythonEnv::Inherit);
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
        backend.cancel(&ids)?;
        // Wait until the jobs have left the queue (or the local processes have ended): one look
        // a moment after the cancel, then no more often than the poller looks (the controller
        // is shared; bench/cluster_bench.py counts the calls).
        let deadline = Instant::now() + CANCEL_WAIT;
        // The poller's cadence while something changes, and never faster than the shortest
        // interval a profile may set.
        let cadence = Duration::from_secs(crate::spec::MIN_POLL_INTERVAL_SECS.into());
        let mut failed_polls = 0;
        let sent = Instant::now();
        std::thread::sleep(FIRST_LOOK);
        let mut first = true;
        loop {
            // The poller may have looked since the cancel (the cluster is changing now): then
            // the first look is its.
            let looked = lock(&self.table)
                .last_costly_poll
                .is_some_and(|t| t >= sent);
            self.refresh(!(first && looked));
            first = false;
            let (done, poll_error) = {
                let table = lock(&self.table);
                let done = table.clusters.get(name).is_none_or(|t| {
                    ids.iter()
                        .all(|id| t.job_state(id).is_some_and(JobState::is_finished))
                });
                (done, table.poll_errors.get(&backend.kind()).cloned())
            };
            if done {
                break;
            }
            failed_polls = if poll_error.is_some() {
                failed_polls + 1
            } else {
                0
            };
            if let (Some(e), true) = (poll_error, failed_polls >= CANCEL_FAILED_POLLS) {
                return Err(ClusterError::Timeout(format!(
                    "the cancel of jobs {} of {name} was sent, but their state cannot be read \
                     ({e}); they end when SLURM carries it out",
                    ids.join(", ")
                )));
            }
            if Instant::now() > deadline {
                return Err(ClusterError::Timeout(format!(
                    "jobs {} of {name} have not ended after {} s",
                    ids.join(", "),
                    CANCEL_WAIT.as_secs()
                )));
            }
            std::thread::sleep(cadence);
        }
        if only_job.is_none() {
            if let Err(e) = self.registry.remove(name) {
                tracing::warn!("could not remove the record of {name}: {e}");
            }
        } else if let Some(t) = lock(&self.table).clusters.get(name) {
            let _ = self.registry.save(&t.record);
        }
        Ok(())
    }

    /// Kernel shutdown: cancels the clusters this session started (unless `keep`), without
    /// waiting, and stops the poller. A restart should not call this: its clusters re-attach.
    pub fn shutdown(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.wake_poller();
        let mut ids: HashMap<model::Backend, Vec<String>> = HashMap::new();
        let mut finished = Vec::new();
        {
            let table = lock(&self.table);
            for (name, t) in &table.clusters {
                if t.record.owner != self.settings.session || t.record.keep {
                    continue;
                }
                ids.entry(t.record.backend)
                    .or_default()
                    .extend(t.live_job_ids());
                finished.push(name.clone());
            }
        }
        for (kind, ids) in ids {
            self.backend(kind).cancel_at_shutdown(&ids);
        }
        for name in finished {
            let _ = self.registry.remove(&name);
        }
    }
}
