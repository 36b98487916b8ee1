//! `up`: a new cluster from a profile and overrides (and the script it would submit).

use super::poller::touch;
use super::requests::UpRequest;
use super::tracked::Tracked;
use super::{io, lock, ClusterError, Clusters};
use crate::model::ClusterView;
use crate::private;
use crate::registry::ClusterRecord;
use crate::script::JobContext;
use crate::slurm::current_user;
use crate::spec::Security;
use crate::tls::TlsError;

impl Clusters {
    /// The job script that `up` would submit (nothing is submitted).
    pub fn script_for_up(&self, req: &UpRequest) -> Result<String, ClusterError> {
        let name = req.name.clone().unwrap_or_else(|| "dask".to_owned());
        let (spec, backend) =
            self.resolve(&name, req.profile.as_deref(), &req.overrides, req.backend)?;
        let user = current_user()?;
        let scheduler_file = self.cluster_dir(&name).join("scheduler.json");
        let heartbeat = self.heartbeat_file(&name);
        let tls = self.cluster_tls(&name);
        Ok(backend
            .render_up(
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

    /// Starts a cluster: renders the `up` job, submits it (or starts it locally), registers it.
    /// Returns at once; the poller follows it.
    pub fn up(&self, req: UpRequest) -> Result<ClusterView, ClusterError> {
        let name = lock(&self.table).free_name(req.name.as_deref())?;
        let (spec, backend) =
            self.resolve(&name, req.profile.as_deref(), &req.overrides, req.backend)?;
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
        let job = backend.render_up(
            &spec,
            &JobContext {
                user: &user,
                scheduler_file: &scheduler_file,
                heartbeat_file: Some(&heartbeat),
                tls: Some(&tls),
            },
        )?;
        let mut tracked = Tracked::new(
            ClusterRecord {
                name: name.clone(),
                backend: backend.kind(),
                spec: Some(spec.clone()),
                jobs: Vec::new(),
                scheduler_file,
                created_at: chrono::Utc::now().to_rfc3339(),
                owner: self.settings.session.clone(),
                keep: req.keep,
                tls: client_tls,
                adapt: None,
            },
            backend.clone(),
        );
        let job_record = self.submit(&spec, &job, &*backend, &dir)?;
        tracked.record.jobs.push(job_record);
        // Tracked before it is persisted: a submitted job must be on the card and cancelled at
        // shutdown even when the registry cannot be written.
        let view = tracked.view(None);
        let record = tracked.record.clone();
        lock(&self.table).insert(tracked);
        self.wake_poller();
        self.registry.save(&record).map_err(io(format!(
            "saving the cluster registry (cluster {name} was submitted and is tracked here, \
             and a shutdown cancels it, but a restarted kernel will not find it)"
        )))?;
        Ok(view)
    }
}
