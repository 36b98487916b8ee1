//! `adapt`: a cluster that grows by whole grow jobs while its scheduler wants more workers, and
//! gives them back when it wants fewer.
//!
//! The policy ([`AdaptPolicy`]) is part of the cluster's record, so a restarted kernel resumes
//! it. The poller calls [`Clusters::adapt_round`] after each round; a cluster is looked at once
//! per `interval_secs`, and [`decide`] (a pure function) chooses from what the scheduler wants
//! (`desired_workers` of `/json/counts.json`, which is `Scheduler.adaptive_target()`) and the
//! cluster's grow jobs:
//!
//! - fewer grow jobs than `min_jobs` (running or queued): submit up to it;
//! - the target is above the workers of all live jobs: submit grow jobs for the difference, up
//!   to `max_jobs`, but only while none is queued (a job in the queue counts as planned, so a
//!   slow queue never causes more submissions);
//! - the target is a whole grow job below the workers of the live jobs: a queued grow job that
//!   is no longer needed is cancelled first; a running one only after the target stayed low for
//!   [`LOW_ROUNDS`] looks in a row and `cooldown_secs` since the last scale-up, and only one
//!   whose workers the scheduler itself proposes to close (`workers_to_close`, grouped by the
//!   job's worker-name prefix). Its workers are retired through the scheduler (their results
//!   move to others), then the job is cancelled. Never the scheduler's job, never below
//!   `min_jobs`;
//! - a running grow job with less than [`REPLACE_AHEAD`] left before its walltime counts as
//!   gone already: while its workers are still wanted, a replacement is submitted ahead of time
//!   (the workers' `lifetime` or the grow job's drain signal, where set, move their work).

use std::time::{Duration, Instant};

use super::requests::{CancelTarget, GrowRequest};
use super::{lock, ClusterError, Clusters};
use crate::dask::{self, SchedulerFile};
use crate::model::{AdaptPolicy, AdaptView, ClusterState};
use crate::profile::Overrides;
use crate::spec::PythonEnv;

/// Looks in a row with a low target before a running grow job is retired.
pub const LOW_ROUNDS: u32 = 3;

/// A running grow job with less than this left before its walltime is replaced, if its workers
/// are still wanted (time for the replacement to get through the queue).
pub const REPLACE_AHEAD: Duration = Duration::from_secs(300);

/// Checks a policy's bounds: `min_jobs ≤ max_jobs`, an interval of at least 5 s.
fn validate(policy: &AdaptPolicy) -> Result<(), ClusterError> {
    if policy.min_jobs > policy.max_jobs {
        return Err(ClusterError::Invalid(format!(
            "--min-jobs {} is above --max-jobs {}",
            policy.min_jobs, policy.max_jobs
        )));
    }
    if policy.interval_secs < crate::spec::MIN_POLL_INTERVAL_SECS {
        return Err(ClusterError::Invalid(format!(
            "an interval of {} s is too short: at least {} s (the controller is shared)",
            policy.interval_secs,
            crate::spec::MIN_POLL_INTERVAL_SECS
        )));
    }
    Ok(())
}

/// What the kernel remembers between looks (not persisted: a restart starts counting again).
#[derive(Debug, Clone, Default)]
pub struct AdaptState {
    /// When the cluster was last looked at.
    pub last_look: Option<Instant>,
    /// When grow jobs were last submitted.
    pub last_scale_up: Option<Instant>,
    /// Looks in a row whose target was a whole grow job below the live jobs' workers.
    pub low_rounds: u32,
    /// The scheduler's last target.
    pub target: Option<u32>,
    /// The last decision, in words.
    pub last_decision: Option<String>,
}

/// What [`decide`] looks at.
#[derive(Debug, Clone)]
pub struct AdaptInputs {
    /// The scheduler's `desired_workers`.
    pub target: u32,
    /// Workers that all live jobs bring (joined or still to join).
    pub planned: u32,
    /// Workers one grow job brings.
    pub per_job: u32,
    /// Queued grow jobs, oldest first.
    pub queued: Vec<String>,
    /// Running grow jobs, oldest first.
    pub running: Vec<String>,
    /// Those of `running` with less than [`REPLACE_AHEAD`] before their walltime.
    pub ending: Vec<String>,
    /// Looks in a row with a low target, this one included.
    pub low_rounds: u32,
    /// Time since the last scale-up.
    pub since_scale_up: Option<Duration>,
}

/// What to do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing (and why).
    Hold(String),
    /// Submit this many grow jobs.
    Submit(u32, String),
    /// Cancel this queued grow job.
    CancelQueued(String, String),
    /// Retire the workers of one of these running grow jobs (the one the scheduler proposes),
    /// then cancel it.
    Retire(Vec<String>, String),
}

/// The decision of one look (see the module's documentation).
pub fn decide(policy: &AdaptPolicy, i: &AdaptInputs) -> Decision {
    let per_job = i.per_job.max(1);
    // A job about to reach its walltime counts as gone: its replacement is planned now.
    let ending = u32::try_from(i.ending.len()).unwrap_or(u32::MAX);
    let staying: Vec<&String> = i.running.iter().filter(|j| !i.ending.contains(j)).collect();
    let live = u32::try_from(i.queued.len() + staying.len()).unwrap_or(u32::MAX);
    let planned = i.planned.saturating_sub(ending.saturating_mul(per_job));
    let replacing = if ending > 0 {
        format!(" ({ending} grow job(s) near their walltime)")
    } else {
        String::new()
    };
    if live < policy.min_jobs {
        return Decision::Submit(
            policy.min_jobs - live,
            format!(
                "{live} grow job(s), fewer than the minimum {}{replacing}",
                policy.min_jobs
            ),
        );
    }
    let words = format!("target {} workers, {planned} planned{replacing}", i.target);
    if i.target > planned {
        if !i.queued.is_empty() {
            return Decision::Hold(format!(
                "{words}; {} grow job(s) still queued",
                i.queued.len()
            ));
        }
        if live >= policy.max_jobs {
            return Decision::Hold(format!(
                "{words}; at the maximum of {} grow job(s)",
                policy.max_jobs
            ));
        }
        let wanted = (i.target - planned).div_ceil(per_job);
        return Decision::Submit(wanted.min(policy.max_jobs - live), words);
    }
    let low = i.target + per_job <= planned;
    if !low || live <= policy.min_jobs {
        return Decision::Hold(words);
    }
    if let Some(job) = i.queued.last() {
        return Decision::CancelQueued(
            job.clone(),
            format!("{words}: queued grow job {job} is not needed"),
        );
    }
    if i.low_rounds < LOW_ROUNDS {
        return Decision::Hold(format!(
            "{words}: low for {} of {LOW_ROUNDS} looks",
            i.low_rounds
        ));
    }
    let cooldown = Duration::from_secs(policy.cooldown_secs.into());
    if i.since_scale_up.is_some_and(|since| since < cooldown) {
        return Decision::Hold(format!(
            "{words}: cooling down ({} s after the last scale-up)",
            policy.cooldown_secs
        ));
    }
    if staying.is_empty() {
        return Decision::Hold(words);
    }
    Decision::Retire(
        staying.into_iter().cloned().collect(),
        format!("{words}: a grow job is not needed"),
    )
}

impl Clusters {
    /// Turns adapting on (`Some`) or off (`None`) for a cluster; returns its adapt view.
    pub fn adapt(
        &self,
        name: Option<&str>,
        policy: Option<AdaptPolicy>,
    ) -> Result<AdaptView, ClusterError> {
        if let Some(p) = &policy {
            validate(p)?;
        }
        let record = {
            let mut table = lock(&self.table);
            let name = table.get(name)?.record.name.clone();
            let t = table
                .clusters
                .get_mut(&name)
                .expect("the cluster just found");
            if t.record.spec.is_none() {
                return Err(ClusterError::Invalid(format!(
                    "cluster {} was attached, not started here: it cannot grow, so it cannot adapt",
                    t.record.name
                )));
            }
            t.record.adapt = policy;
            t.adapt = AdaptState::default();
            t.record.clone()
        };
        self.registry.save(&record).map_err(super::io(format!(
            "saving the adapt policy of cluster {}",
            record.name
        )))?;
        self.wake_poller();
        self.adapt_view(Some(&record.name))
    }

    /// The adapt policy of a cluster and why its last decision was taken.
    pub fn adapt_view(&self, name: Option<&str>) -> Result<AdaptView, ClusterError> {
        let table = lock(&self.table);
        let t = table.get(name)?;
        Ok(t.adapt_view())
    }

    /// One look at every adapting cluster whose interval has passed (from the poller thread).
    pub(super) fn adapt_round(&self) {
        let now = Instant::now();
        let due: Vec<(String, AdaptPolicy, std::path::PathBuf)> = {
            let table = lock(&self.table);
            table
                .clusters
                .values()
                .filter(|t| t.state() == ClusterState::Running)
                .filter_map(|t| {
                    let policy = t.record.adapt?;
                    let interval = Duration::from_secs(policy.interval_secs.into());
                    t.adapt
                        .last_look
                        .is_none_or(|l| now.duration_since(l) >= interval)
                        .then(|| {
                            (
                                t.record.name.clone(),
                                policy,
                                t.record.scheduler_file.clone(),
                            )
                        })
                })
                .collect()
        };
        for (name, policy, scheduler_file) in due {
            if let Err(e) = self.adapt_cluster(&name, &policy, &scheduler_file) {
                tracing::warn!("cluster {name}: adapt: {e}");
                if let Some(t) = lock(&self.table).clusters.get_mut(&name) {
                    t.adapt.last_decision = Some(format!("failed: {e}"));
                }
            }
        }
    }

    fn adapt_cluster(
        &self,
        name: &str,
        policy: &AdaptPolicy,
        scheduler_file: &std::path::Path,
    ) -> Result<(), ClusterError> {
        let target = SchedulerFile::read(scheduler_file)?.desired_workers(super::HTTP_TIMEOUT)?;
        let (_, grow_spec) = self.grow_spec(&GrowRequest {
            name: Some(name.to_owned()),
            overrides: Overrides::default(),
        })?;
        let per_job = grow_spec.workers_in_grow_job();
        let (inputs, python_env) = {
            let mut table = lock(&self.table);
            let t = table
                .clusters
                .get_mut(name)
                .ok_or_else(|| ClusterError::NoCluster(name.to_owned()))?;
            let now = Instant::now();
            t.adapt.last_look = Some(now);
            t.adapt.target = Some(target);
            let (running, queued) = t.live_grow_jobs();
            let ending = running
                .iter()
                .filter(|id| t.time_left(id).is_some_and(|left| left < REPLACE_AHEAD))
                .cloned()
                .collect();
            let planned = t.workers_expected();
            t.adapt.low_rounds = if target + per_job.max(1) <= planned {
                t.adapt.low_rounds + 1
            } else {
                0
            };
            let inputs = AdaptInputs {
                target,
                planned,
                per_job,
                queued,
                running,
                ending,
                low_rounds: t.adapt.low_rounds,
                since_scale_up: t.adapt.last_scale_up.map(|at| now.duration_since(at)),
            };
            let python_env = t
                .record
                .spec
                .as_ref()
                .map_or(PythonEnv::Inherit, |s| s.python_env.clone());
            (inputs, python_env)
        };
        let decision = decide(policy, &inputs);
        tracing::info!("cluster {name}: adapt: {decision:?}");
        let said = match &decision {
            Decision::Hold(why) => format!("hold: {why}"),
            Decision::Submit(n, why) => {
                for _ in 0..*n {
                    self.grow(GrowRequest {
                        name: Some(name.to_owned()),
                        overrides: Overrides::default(),
                    })?;
                }
                if let Some(t) = lock(&self.table).clusters.get_mut(name) {
                    t.adapt.last_scale_up = Some(Instant::now());
                    t.adapt.low_rounds = 0;
                }
                format!("submitted {n} grow job(s): {why}")
            }
            Decision::CancelQueued(job, why) => {
                self.cancel(CancelTarget::Job(Some(name.to_owned()), job.clone()))?;
                format!("cancelled queued grow job {job}: {why}")
            }
            Decision::Retire(candidates, why) => {
                match self.retire_proposed(name, candidates, &python_env)? {
                    Some(job) => {
                        self.cancel(CancelTarget::Job(Some(name.to_owned()), job.clone()))?;
                        if let Some(t) = lock(&self.table).clusters.get_mut(name) {
                            t.adapt.low_rounds = 0;
                        }
                        format!("retired the workers of grow job {job}, then cancelled it: {why}")
                    }
                    None => format!(
                        "hold: {why}, but the scheduler proposes none of its workers to close"
                    ),
                }
            }
        };
        if let Some(t) = lock(&self.table).clusters.get_mut(name) {
            t.adapt.last_decision = Some(said);
        }
        Ok(())
    }

    /// Asks the scheduler which workers it would close (`workers_to_close`, whole groups by
    /// worker-name prefix: a grow job's workers are `NAME-grow-JOB-RANK`) and retires those of
    /// the first of `candidates` (grow jobs) that it proposes, so that their results move to
    /// the other workers. Returns that job, or `None` when it proposes none of them.
    fn retire_proposed(
        &self,
        name: &str,
        candidates: &[String],
        python_env: &PythonEnv,
    ) -> Result<Option<String>, ClusterError> {
        let (scheduler_file, tls) = {
            let table = lock(&self.table);
            let t = table.get(Some(name))?;
            (t.record.scheduler_file.clone(), t.record.tls.clone())
        };
        let prefixes: Vec<String> = candidates
            .iter()
            .map(|job| format!("{name}-grow-{job}"))
            .collect();
        let list = serde_json::to_string(&prefixes).expect("prefixes serialise");
        let out = dask::run_with_client(
            python_env,
            &scheduler_file,
            tls.as_ref(),
            "retiring the workers of a grow job",
            &format!(
                r#"def group(ws):
    return str(ws.name).rsplit("-", 1)[0]
def proposed(dask_scheduler):
    return sorted({{group(dask_scheduler.workers[a]) for a in dask_scheduler.workers_to_close(key=group)}})
chosen = [p for p in {list} if p in client.run_on_scheduler(proposed)][:1]
if chosen:
    names = [w["name"] for w in client.scheduler_info()["workers"].values() if str(w["name"]).rsplit("-", 1)[0] == chosen[0]]
    client.retire_workers(names=names, close_workers=True)
print(chosen[0] if chosen else "")"#
            ),
            Duration::from_secs(60),
        )?;
        let chosen = out.trim();
        Ok(candidates
            .iter()
            .zip(&prefixes)
            .find(|(_, prefix)| prefix.as_str() == chosen)
            .map(|(job, _)| job.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: AdaptPolicy = AdaptPolicy {
        min_jobs: 0,
        max_jobs: 2,
        interval_secs: 5,
        cooldown_secs: 60,
    };

    fn inputs(target: u32, planned: u32, queued: &[&str], running: &[&str]) -> AdaptInputs {
        AdaptInputs {
            target,
            planned,
            per_job: 2,
            queued: queued.iter().map(|s| (*s).to_owned()).collect(),
            running: running.iter().map(|s| (*s).to_owned()).collect(),
            ending: Vec::new(),
            low_rounds: 0,
            since_scale_up: None,
        }
    }

    #[test]
    fn scales_up_to_the_maximum_and_never_while_a_job_is_queued() {
        assert!(matches!(
            decide(&POLICY, &inputs(7, 3, &[], &[])),
            Decision::Submit(2, _)
        ));
        assert!(matches!(
            decide(&POLICY, &inputs(4, 3, &[], &[])),
            Decision::Submit(1, _)
        ));
        assert!(matches!(
            decide(&POLICY, &inputs(20, 5, &["11"], &[])),
            Decision::Hold(_)
        ));
        assert!(matches!(
            decide(&POLICY, &inputs(20, 7, &[], &["11", "12"])),
            Decision::Hold(_)
        ));
        assert!(matches!(
            decide(&POLICY, &inputs(20, 5, &[], &["11"])),
            Decision::Submit(1, _)
        ));
    }

    #[test]
    fn the_minimum_is_kept() {
        let policy = AdaptPolicy {
            min_jobs: 1,
            ..POLICY
        };
        assert!(matches!(
            decide(&policy, &inputs(0, 3, &[], &[])),
            Decision::Submit(1, _)
        ));
        let mut i = inputs(0, 5, &[], &["11"]);
        i.low_rounds = 10;
        assert!(matches!(decide(&policy, &i), Decision::Hold(_)));
    }

    #[test]
    fn scales_down_a_queued_job_first_then_a_running_one_after_low_looks_and_cooldown() {
        assert_eq!(
            decide(&POLICY, &inputs(3, 7, &["12"], &["11"])),
            Decision::CancelQueued(
                "12".into(),
                "target 3 workers, 7 planned: queued grow job 12 is not needed".into()
            )
        );
        let mut i = inputs(3, 7, &[], &["11", "12"]);
        i.low_rounds = 2;
        assert!(matches!(decide(&POLICY, &i), Decision::Hold(_)));
        i.low_rounds = 3;
        i.since_scale_up = Some(Duration::from_secs(30));
        assert!(matches!(decide(&POLICY, &i), Decision::Hold(why) if why.contains("cooling down")));
        i.since_scale_up = Some(Duration::from_secs(61));
        assert!(matches!(decide(&POLICY, &i), Decision::Retire(jobs, _) if jobs == ["11", "12"]));
        // Less than a whole grow job too many: hold.
        let i = AdaptInputs {
            low_rounds: 5,
            ..inputs(4, 5, &[], &["11"])
        };
        assert!(matches!(decide(&POLICY, &i), Decision::Hold(_)));
    }

    #[test]
    fn a_job_near_its_walltime_is_replaced_while_its_workers_are_wanted() {
        let mut i = inputs(7, 7, &[], &["11", "12"]);
        i.ending = vec!["11".into()];
        assert!(
            matches!(decide(&POLICY, &i), Decision::Submit(1, why) if why.contains("near their walltime"))
        );
        // Not wanted any more: no replacement; the other job is retired, the ending one ends.
        let mut i = inputs(3, 7, &[], &["11", "12"]);
        i.ending = vec!["11".into()];
        i.low_rounds = 3;
        assert!(matches!(decide(&POLICY, &i), Decision::Retire(jobs, _) if jobs == ["12"]));
    }

    #[test]
    fn bounds_are_checked() {
        assert!(validate(&AdaptPolicy {
            min_jobs: 3,
            ..POLICY
        })
        .is_err());
        assert!(validate(&AdaptPolicy {
            interval_secs: 1,
            ..POLICY
        })
        .is_err());
        assert!(validate(&POLICY).is_ok());
    }
}
