//! The table of one kernel's clusters, behind the manager's one lock, and what the poller
//! learned last from the backends.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use super::tracked::Tracked;
use super::{ClusterError, RESERVED_NAMES};
use crate::model::{self, ClusterState, ClusterView, JobRole};

/// The clusters by name, and the state of polling.
#[derive(Default)]
pub(super) struct ClusterTable {
    /// Every cluster this kernel follows (started, re-attached, attached, batch jobs).
    pub clusters: BTreeMap<String, Tracked>,
    /// When the costly backends (SLURM's controller) were last asked for job states.
    pub last_costly_poll: Option<Instant>,
    /// The error of the last poll of each backend that failed (its controller may be down).
    pub poll_errors: HashMap<model::Backend, String>,
}

impl ClusterTable {
    /// Adds (or replaces) a cluster under its name.
    pub fn insert(&mut self, tracked: Tracked) {
        self.clusters.insert(tracked.record.name.clone(), tracked);
    }

    /// The cluster's view, with the poll error of its backend.
    pub fn view(&self, tracked: &Tracked) -> ClusterView {
        tracked.view(
            self.poll_errors
                .get(&tracked.record.backend)
                .map(String::as_str),
        )
    }

    /// The cluster named `name`, or (for `None`) the newest that is not a batch job.
    pub fn pick(&self, name: Option<&str>) -> Result<String, ClusterError> {
        match name {
            Some(n) if self.clusters.contains_key(n) => Ok(n.to_owned()),
            Some(n) => Err(ClusterError::NoCluster(n.to_owned())),
            None => self
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

    /// The cluster named `name` (or the newest, see [`ClusterTable::pick`]).
    pub fn get(&self, name: Option<&str>) -> Result<&Tracked, ClusterError> {
        let name = self.pick(name)?;
        Ok(&self.clusters[&name])
    }

    /// A name for a new cluster: `requested` unless a live cluster has it, else `dask`,
    /// `dask-2`, … (the first free one).
    pub fn free_name(&self, requested: Option<&str>) -> Result<String, ClusterError> {
        let live = |n: &str| {
            self.clusters.get(n).is_some_and(|t| {
                !matches!(t.state(), ClusterState::Finished | ClusterState::Failed)
            })
        };
        match requested {
            Some(n) if RESERVED_NAMES.contains(&n) => Err(ClusterError::Reserved(n.to_owned())),
            Some(n) if live(n) => Err(ClusterError::Exists(n.to_owned())),
            Some(n) => Ok(n.to_owned()),
            None => Ok(std::iter::once("dask".to_owned())
                .chain((2..).map(|i| format!("dask-{i}")))
                .find(|n| !live(n))
                .expect("a free name")),
        }
    }
}
