//! `attach`: a cluster started elsewhere is followed like our own (its jobs stay someone
//! else's), with the TLS it needs or an explicit `--insecure`.

use super::requests::{AttachSource, AttachTls};
use super::tracked::Tracked;
use super::{io, lock, ClusterError, Clusters, HTTP_TIMEOUT};
use crate::dask::{self, SchedulerFile};
use crate::model::{self, ClusterView};
use crate::private;
use crate::registry::ClusterRecord;
use crate::tls::{ClientTls, ClusterTls};

impl Clusters {
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
        let name = lock(&self.table).free_name(name.as_deref())?;
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
        let mut tracked = Tracked::new(
            ClusterRecord {
                name: name.clone(),
                backend: model::Backend::Slurm,
                spec: None,
                jobs: Vec::new(),
                scheduler_file,
                created_at: chrono::Utc::now().to_rfc3339(),
                owner: self.settings.session.clone(),
                keep: true,
                tls: client_tls,
                adapt: None,
            },
            self.backend(model::Backend::Slurm),
        );
        tracked.scheduler = Some(scheduler);
        tracked.scheduler_answers = true;
        self.registry
            .save(&tracked.record)
            .map_err(io("saving the cluster registry"))?;
        let view = tracked.view(None);
        lock(&self.table).insert(tracked);
        Ok(view)
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
}
