//! `submit_batch`: a plain batch job, followed like a cluster of one job.

use std::path::PathBuf;

use super::tracked::Tracked;
use super::{io, lock, ClusterError, Clusters, BATCH_DIR};
use crate::model::{self, ClusterView, JobRole};
use crate::private;
use crate::profile::Overrides;
use crate::registry::{ClusterRecord, JobRecord};
use crate::script::{self, CommentTag};
use crate::slurm::current_user;

impl Clusters {
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
            .resolve(BATCH_DIR, &Overrides::default(), &self.settings.work_dir)?
            .log_dir;
        std::fs::create_dir_all(&log_dir).map_err(io(format!("creating {}", log_dir.display())))?;
        let tag = CommentTag {
            user,
            cluster: None,
            role: JobRole::Batch,
        };
        let text = script::wrap_batch(body, &tag, &log_dir, sbatch_args)?;
        let dir = self.private_cluster_dir(BATCH_DIR)?;
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
        let tracked = Tracked::new(
            ClusterRecord {
                name: name.clone(),
                backend: model::Backend::Slurm,
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
                adapt: None,
            },
            self.backend(model::Backend::Slurm),
        );
        self.registry
            .save(&tracked.record)
            .map_err(io("saving the cluster registry"))?;
        let view = tracked.view(None);
        lock(&self.table).insert(tracked);
        self.wake_poller();
        Ok(view)
    }
}
