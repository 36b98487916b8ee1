//! `shrink`: fewer workers, retired through the scheduler, or one grow job cancelled.

use std::time::Duration;

use super::requests::{CancelTarget, Shrink};
use super::{lock, ClusterError, Clusters};
use crate::dask;
use crate::model::{ClusterView, JobRole};
use crate::spec::PythonEnv;

impl Clusters {
    /// Makes a cluster smaller: retires workers through the scheduler, or cancels a grow job.
    pub fn shrink(&self, name: Option<&str>, how: Shrink) -> Result<ClusterView, ClusterError> {
        match how {
            Shrink::Job(id) => {
                let name = {
                    let table = lock(&self.table);
                    let t = table.get(name)?;
                    let name = t.record.name.clone();
                    match t.record.jobs.iter().find(|j| j.id == id) {
                        Some(j) if j.role == JobRole::Grow => name,
                        Some(_) => {
                            return Err(ClusterError::SchedulerJob {
                                cluster: name,
                                job: id,
                            })
                        }
                        None => {
                            return Err(ClusterError::Invalid(format!(
                                "job {id} is not a job of cluster {name}"
                            )))
                        }
                    }
                };
                self.cancel(CancelTarget::Job(Some(name.clone()), id))?;
                self.status(Some(&name))
            }
            Shrink::Workers(n) => {
                let (record, scheduler) = {
                    let table = lock(&self.table);
                    let t = table.get(name)?;
                    let scheduler = t.scheduler.clone().ok_or_else(|| {
                        ClusterError::Invalid(format!(
                            "cluster {} has no running scheduler yet",
                            t.record.name
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
                    .unwrap_or(PythonEnv::Inherit);
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
}
