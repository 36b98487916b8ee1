//! The Dask side: the scheduler file, the scheduler's HTTP JSON, and the few scheduler
//! operations (retire workers, shut down) that go through the cluster's own Python.
//!
//! The scheduler file is written once when the scheduler starts and never updated, so it gives
//! only the address and the dashboard port; the live state (workers, threads, memory) comes from
//! `GET http://HOST:DASHBOARD/json/identity.json`, which needs no bokeh.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::model::{SchedulerView, WorkerView};
use crate::process::{self, RunError};
use crate::spec::{PythonEnv, ShellText};
use crate::tls::ClientTls;

/// What could not be learned from or done to a scheduler.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DaskError {
    /// The scheduler file does not exist (yet).
    #[error("no scheduler file at {0} yet")]
    NoSchedulerFile(String),
    /// The scheduler file is there but not (yet completely) valid JSON.
    #[error("scheduler file {path} is not readable yet: {reason}")]
    BadSchedulerFile {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The scheduler's HTTP server did not answer.
    #[error("the scheduler at {url} did not answer: {reason}")]
    Unreachable {
        /// The URL asked.
        url: String,
        /// The transport error.
        reason: String,
    },
    /// A scheduler operation through Python failed.
    #[error("{operation} failed: {stderr}")]
    Operation {
        /// What was attempted.
        operation: String,
        /// Python's error output.
        stderr: String,
    },
}

/// The two facts the scheduler file gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerFile {
    /// e.g. `tls://10.0.0.5:38211`.
    pub address: String,
    /// The host part of the address.
    pub host: String,
    /// `services.dashboard`: the HTTP port.
    pub dashboard_port: u16,
}

#[derive(Deserialize)]
struct RawSchedulerFile {
    address: String,
    #[serde(default)]
    services: std::collections::HashMap<String, Value>,
}

impl SchedulerFile {
    /// Reads a scheduler file.
    pub fn read(path: &Path) -> Result<SchedulerFile, DaskError> {
        let text = std::fs::read_to_string(path)
            .map_err(|_| DaskError::NoSchedulerFile(path.display().to_string()))?;
        SchedulerFile::parse(&text).map_err(|reason| DaskError::BadSchedulerFile {
            path: path.display().to_string(),
            reason,
        })
    }

    /// Parses the JSON of a scheduler file.
    pub fn parse(text: &str) -> Result<SchedulerFile, String> {
        let raw: RawSchedulerFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let host =
            host_of(&raw.address).ok_or_else(|| format!("no host in address {}", raw.address))?;
        let dashboard_port = raw
            .services
            .get("dashboard")
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
            .ok_or("no services.dashboard port")?;
        Ok(SchedulerFile {
            address: raw.address,
            host,
            dashboard_port,
        })
    }

    /// The base URL of the scheduler's HTTP server.
    pub fn http_base(&self) -> String {
        format!("http://{}:{}", url_host(&self.host), self.dashboard_port)
    }

    /// Asks the scheduler for its workers (`/json/identity.json`).
    pub fn status(&self, timeout: Duration) -> Result<SchedulerView, DaskError> {
        let url = format!("{}/json/identity.json", self.http_base());
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .build()
            .into();
        let body: Value = agent
            .get(&url)
            .call()
            .and_then(|mut r| r.body_mut().read_json())
            .map_err(|e| DaskError::Unreachable {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        Ok(self.view_from_identity(&body))
    }

    /// The workers the scheduler wants (`desired_workers` of `/json/counts.json`, which is
    /// `Scheduler.adaptive_target()`: enough for its queued work to end in a few seconds, and
    /// for the memory its results need).
    pub fn desired_workers(&self, timeout: Duration) -> Result<u32, DaskError> {
        let url = format!("{}/json/counts.json", self.http_base());
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .build()
            .into();
        let unreachable = |reason: String| DaskError::Unreachable {
            url: url.clone(),
            reason,
        };
        let body: Value = agent
            .get(&url)
            .call()
            .and_then(|mut r| r.body_mut().read_json())
            .map_err(|e| unreachable(e.to_string()))?;
        body.get("desired_workers")
            .and_then(Value::as_u64)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
            .ok_or_else(|| unreachable("no desired_workers in its counts".to_owned()))
    }

    /// A [`SchedulerView`] from the JSON of `/json/identity.json`.
    pub fn view_from_identity(&self, identity: &Value) -> SchedulerView {
        let mut workers: Vec<WorkerView> = identity
            .get("workers")
            .and_then(Value::as_object)
            .map(|workers| {
                workers
                    .iter()
                    .map(|(address, w)| WorkerView {
                        name: w.get("name").map(value_text).unwrap_or_default(),
                        address: address.clone(),
                        host: w
                            .get("host")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        nthreads: w.get("nthreads").and_then(Value::as_u64).unwrap_or(0) as u32,
                        memory_limit: w.get("memory_limit").and_then(Value::as_u64).unwrap_or(0),
                        memory_used: w.pointer("/metrics/memory").and_then(Value::as_u64),
                    })
                    .collect()
            })
            .unwrap_or_default();
        workers.sort_by(|a, b| a.name.cmp(&b.name));
        SchedulerView {
            address: self.address.clone(),
            host: self.host.clone(),
            dashboard_port: self.dashboard_port,
            workers,
        }
    }
}

/// Runs a few lines of Python with `distributed` from the cluster's environment, connected to
/// the scheduler: `client` is a `distributed.Client`, which presents `tls` (through Dask's
/// `DASK_DISTRIBUTED__COMM__TLS__…` settings) to a mutual-TLS scheduler. Used to retire workers
/// and to shut the scheduler down gracefully.
pub fn run_with_client(
    python_env: &PythonEnv,
    scheduler_file: &Path,
    tls: Option<&ClientTls>,
    operation: &str,
    body: &str,
    timeout: Duration,
) -> Result<String, DaskError> {
    let activate = match python_env {
        PythonEnv::Activate(dir) => match ShellText::parse("python_env", dir) {
            Ok(dir) => format!("export PATH={}/bin:\"$PATH\"\n", dir.to_shell()),
            Err(e) => {
                return Err(DaskError::Operation {
                    operation: operation.to_owned(),
                    stderr: e.to_string(),
                })
            }
        },
        _ => String::new(),
    };
    let program = format!(
        "import sys\nfrom distributed import Client\nclient = Client(scheduler_file=sys.argv[1], timeout={t})\n{body}\n",
        t = timeout.as_secs().max(1)
    );
    let script = format!("{activate}exec python3 -c \"$RCK_PY\" \"$1\"");
    let failed = |stderr: String| DaskError::Operation {
        operation: operation.to_owned(),
        stderr,
    };
    let output = process::run_with_timeout(
        Command::new("bash")
            .arg("-c")
            .arg(script)
            .arg("bash")
            .arg(scheduler_file)
            .env("RCK_PY", program)
            .envs(tls.map(ClientTls::env).unwrap_or_default()),
        // The client's own connect timeout, plus the time Python takes to start.
        timeout + Duration::from_secs(10),
    )
    .map_err(|e| match e {
        RunError::TimedOut { .. } => failed("timed out".to_owned()),
        other => failed(other.to_string()),
    })?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        let last = output
            .stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no error output");
        Err(failed(last.to_owned()))
    }
}

/// `tcp://10.0.0.5:38211` → `10.0.0.5`; `tcp://[::1]:8786` → `::1`.
pub fn host_of(address: &str) -> Option<String> {
    let rest = address.split_once("://").map_or(address, |(_, r)| r);
    if let Some(v6) = rest.strip_prefix('[') {
        return v6.split_once(']').map(|(h, _)| h.to_owned());
    }
    let host = rest.rsplit_once(':').map_or(rest, |(h, _)| h);
    (!host.is_empty()).then(|| host.to_owned())
}

fn url_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_file_and_identity() {
        let file = SchedulerFile::parse(
            r#"{"type": "Scheduler", "id": "Scheduler-1", "address": "tcp://127.0.0.1:41234",
                "services": {"dashboard": 8788}, "started": 1.0, "n_workers": 0, "workers": {}}"#,
        )
        .unwrap();
        assert_eq!(
            (file.host.as_str(), file.dashboard_port),
            ("127.0.0.1", 8788)
        );
        assert_eq!(file.http_base(), "http://127.0.0.1:8788");
        let identity: Value = serde_json::from_str(
            r#"{"workers": {"tcp://127.0.0.1:36305": {"name": "up-3-2", "host": "127.0.0.1", "nthreads": 2,
                 "memory_limit": 1073741824, "metrics": {"memory": 64028672}},
                "tcp://127.0.0.1:36306": {"name": 7, "host": "127.0.0.1", "nthreads": 1, "memory_limit": 5}}}"#,
        )
        .unwrap();
        let view = file.view_from_identity(&identity);
        assert_eq!(view.workers.len(), 2);
        assert_eq!(view.total_threads(), 3);
        assert_eq!(view.workers[1].name, "up-3-2");
        assert_eq!(view.workers[1].memory_used, Some(64028672));
        assert_eq!(view.workers[0].name, "7");
    }

    #[test]
    fn incomplete_file_is_an_error_not_a_panic() {
        assert!(SchedulerFile::parse(r#"{"address": "tcp://1.2.3.4:5", "serv"#).is_err());
        assert!(SchedulerFile::parse(r#"{"address": "tcp://1.2.3.4:5"}"#).is_err());
        assert!(matches!(
            SchedulerFile::read(Path::new("/nonexistent/s.json")),
            Err(DaskError::NoSchedulerFile(_))
        ));
    }

    #[test]
    fn hosts() {
        assert_eq!(host_of("tcp://10.0.0.5:38211").as_deref(), Some("10.0.0.5"));
        assert_eq!(host_of("tcp://[::1]:8786").as_deref(), Some("::1"));
        assert_eq!(host_of("tcp://uc2n001:1").as_deref(), Some("uc2n001"));
    }
}
