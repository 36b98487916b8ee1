//! `grow`: more workers for a running cluster, from a second job on the same scheduler file.

use super::requests::GrowRequest;
use super::tracked::Tracked;
use super::{io, lock, ClusterError, Clusters};
use crate::model::{ClusterState, ClusterView};
use crate::registry::ClusterRecord;
use crate::script::{self, JobContext};
use crate::slurm::current_user;
use crate::spec::{ClusterSpec, Security};

impl Clusters {
    /// The cluster to grow and the validated spec of its grow job.
    pub(super) fn grow_spec(
        &self,
        req: &GrowRequest,
    ) -> Result<(ClusterRecord, ClusterSpec), ClusterError> {
        let (record, backend) = {
            let table = lock(&self.table);
            let t: &Tracked = table.get(req.name.as_deref())?;
            if matches!(
                t.state(),
                ClusterState::Finished | ClusterState::Failed | ClusterState::Cancelling
            ) {
                return Err(ClusterError::Ended(t.record.name.clone()));
            }
            (t.record.clone(), t.backend.clone())
        };
        let base = record.spec.clone().ok_or_else(|| {
            ClusterError::Invalid(format!(
                "cluster {} was attached, not started here: it cannot grow",
                record.name
            ))
        })?;
        // Every setting as the cluster was started; the grow request's flags change some.
        let mut spec =
            base.as_profile()
                .resolve(&record.name, &req.overrides, &self.settings.work_dir)?;
        // The grow job speaks what the running scheduler speaks.
        spec.security = base.security;
        backend.fit_spec(&mut spec, Some(&base))?;
        spec.validate()?;
        Ok((record, spec))
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
        let backend = self.backend(record.backend);
        let job_record = self.submit(&spec, &job, &*backend, &self.cluster_dir(&record.name))?;
        let mut table = lock(&self.table);
        let t = table
            .clusters
            .get_mut(&record.name)
            .ok_or_else(|| ClusterError::NoCluster(record.name.clone()))?;
        t.record.jobs.push(job_record);
        self.registry
            .save(&t.record)
            .map_err(io("saving the cluster registry"))?;
        let view = table.view(&table.clusters[&record.name]);
        drop(table);
        self.wake_poller();
        Ok(view)
    }
}
