//! The registry of clusters on disk: one JSON file per cluster under
//! `$XDG_STATE_HOME/rust-cluster-kernel/clusters/`, written atomically (temporary file, fsync,
//! rename), so that a kernel restart finds its clusters again and a crash never leaves half a file.
//! The directory is 0700 and every record 0600, whatever the umask: a record names the
//! cluster's scheduler and certificate files.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::{AdaptPolicy, Backend, JobRole};
use crate::private;
use crate::spec::ClusterSpec;
use crate::tls::ClientTls;

/// One job of a cluster, as remembered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// SLURM job id, `local-TIME` for the local backend, `alloc-JOB-TIME` in the kernel's
    /// allocation.
    pub id: String,
    /// What the job does for the cluster.
    pub role: JobRole,
    /// Dask workers the job brings.
    pub workers_expected: u32,
    /// The job's output file.
    pub log_path: Option<PathBuf>,
    /// The job script that was submitted.
    pub script_path: Option<PathBuf>,
}

/// Everything needed to find a cluster again after a kernel restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterRecord {
    /// The cluster's name (also the file name).
    pub name: String,
    /// SLURM or local.
    pub backend: Backend,
    /// The resolved spec the jobs were rendered from (`None` for attached clusters).
    pub spec: Option<ClusterSpec>,
    /// The jobs, scheduler job first.
    pub jobs: Vec<JobRecord>,
    /// The Dask scheduler file.
    pub scheduler_file: PathBuf,
    /// When the cluster was started (RFC 3339).
    pub created_at: String,
    /// The kernel session that started it; a shutdown of that session cancels it.
    pub owner: String,
    /// Keep running when the owning kernel shuts down.
    pub keep: bool,
    /// What the kernel and `%%python` present to the scheduler: the cluster's own client
    /// certificate, or the files given to `%cluster attach`. `None`: a plain `tcp://` scheduler
    /// (`--insecure`, `security = "none"`, or a record written before TLS existed, whose
    /// cluster ran plain TCP).
    #[serde(default)]
    pub tls: Option<ClientTls>,
    /// How the cluster adapts (`None`: it does not).
    #[serde(default)]
    pub adapt: Option<AdaptPolicy>,
}

/// Where cluster records live.
#[derive(Debug, Clone)]
pub struct Registry {
    dir: PathBuf,
}

/// `$XDG_STATE_HOME/rust-cluster-kernel` (or `~/.local/state/rust-cluster-kernel`).
pub fn state_dir() -> PathBuf {
    std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir)
        .join("rust-cluster-kernel")
}

impl Registry {
    /// The registry in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Registry {
        Registry { dir: dir.into() }
    }

    /// The directory of the records.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// Writes (or replaces) a record atomically: a 0600 temporary file, renamed over the old.
    pub fn save(&self, record: &ClusterRecord) -> std::io::Result<()> {
        private::create_dir(&self.dir)?;
        let tmp = self
            .dir
            .join(format!(".{}.json.tmp-{}", record.name, std::process::id()));
        {
            let mut f = private::create_file(&tmp)?;
            f.write_all(
                serde_json::to_string_pretty(record)
                    .expect("records serialise")
                    .as_bytes(),
            )?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, self.path(&record.name))
    }

    /// Removes a record (a finished cluster).
    pub fn remove(&self, name: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.path(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every readable record; unreadable files are reported, not fatal.
    pub fn load_all(&self) -> (Vec<ClusterRecord>, Vec<String>) {
        let mut records = Vec::new();
        let mut problems = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return (records, problems);
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let is_record = path.extension().is_some_and(|e| e == "json")
                && !path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if !is_record {
                continue;
            }
            match std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
            {
                Ok(record) => records.push(record),
                Err(e) => problems.push(format!("{}: {e}", path.display())),
            }
        }
        records.sort_by(|a: &ClusterRecord, b| a.created_at.cmp(&b.created_at));
        (records, problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str) -> ClusterRecord {
        ClusterRecord {
            name: name.into(),
            backend: Backend::Slurm,
            spec: None,
            jobs: vec![JobRecord {
                id: "12".into(),
                role: JobRole::Scheduler,
                workers_expected: 3,
                log_path: Some("/tmp/slurm-12.out".into()),
                script_path: None,
            }],
            scheduler_file: "/tmp/s.json".into(),
            created_at: format!("2026-11-25T00:00:0{}Z", name.len()),
            owner: "session".into(),
            keep: false,
            tls: None,
            adapt: None,
        }
    }

    #[test]
    fn save_load_remove() {
        let dir = std::env::temp_dir().join(format!("rck-registry-{}", std::process::id()));
        let registry = Registry::new(&dir);
        assert!(registry.load_all().0.is_empty());
        registry.save(&record("a")).unwrap();
        registry.save(&record("bb")).unwrap();
        let mut changed = record("a");
        changed.keep = true;
        registry.save(&changed).unwrap();
        std::fs::write(dir.join("broken.json"), "{").unwrap();
        let (records, problems) = registry.load_all();
        assert_eq!(
            records.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["a", "bb"]
        );
        assert!(records[0].keep);
        assert_eq!(problems.len(), 1);
        registry.remove("a").unwrap();
        registry.remove("a").unwrap();
        assert_eq!(registry.load_all().0.len(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn records_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let base = crate::private::tests::scratch("registry-modes");
        let dir = base.join("clusters");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let registry = Registry::new(&dir);
        registry.save(&record("a")).unwrap();
        registry.save(&record("a")).unwrap();
        assert_eq!(crate::private::tests::mode(&dir), 0o700);
        assert_eq!(crate::private::tests::mode(&dir.join("a.json")), 0o600);
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn old_records_read_as_plain_tcp() {
        // A record and spec from before TLS: no `tls`, no `security`.
        let mut json: serde_json::Value = serde_json::to_value(record("old")).unwrap();
        json.as_object_mut().unwrap().remove("tls");
        let mut spec = serde_json::to_value(
            crate::profile::Profile::workshop()
                .resolve("old", &Default::default(), Path::new("/h"))
                .unwrap(),
        )
        .unwrap();
        spec.as_object_mut().unwrap().remove("security");
        json["spec"] = spec;
        let old: ClusterRecord = serde_json::from_value(json).unwrap();
        assert_eq!(old.tls, None);
        assert_eq!(
            old.spec.unwrap().security,
            crate::spec::Security::None,
            "it was started without TLS"
        );
    }
}
