//! The connection file that Jupyter writes for each kernel it starts.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ProtocolError;

/// The contents of a connection file (`kernel-*.json`).
///
/// ```
/// use rust_cluster_kernel::protocol::ConnectionInfo;
/// let info: ConnectionInfo = serde_json::from_str(r#"{"ip": "127.0.0.1", "transport": "tcp",
///   "shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5,
///   "key": "k", "signature_scheme": "hmac-sha256"}"#).unwrap();
/// assert_eq!(info.endpoint(info.shell_port), "tcp://127.0.0.1:1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionInfo {
    /// The address to bind (`127.0.0.1`, `0.0.0.0`, or an ipc path prefix).
    pub ip: String,
    /// `tcp` or `ipc`.
    pub transport: String,
    /// Shell channel (ROUTER).
    pub shell_port: u16,
    /// IOPub channel (XPUB).
    pub iopub_port: u16,
    /// Stdin channel (ROUTER).
    pub stdin_port: u16,
    /// Control channel (ROUTER).
    pub control_port: u16,
    /// Heartbeat (REP).
    pub hb_port: u16,
    /// The HMAC key; empty disables signing.
    pub key: String,
    /// `hmac-sha256` (the only scheme this kernel accepts) or empty with an empty key.
    #[serde(default = "default_scheme")]
    pub signature_scheme: String,
    /// The kernel name Jupyter used (informational).
    #[serde(default)]
    pub kernel_name: Option<String>,
}

fn default_scheme() -> String {
    "hmac-sha256".to_owned()
}

impl ConnectionInfo {
    /// Reads and parses a connection file.
    pub fn read(path: &Path) -> Result<Self, ProtocolError> {
        let text = std::fs::read_to_string(path).map_err(|e| ProtocolError::ConnectionFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let info: ConnectionInfo =
            serde_json::from_str(&text).map_err(|e| ProtocolError::ConnectionFile {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        if !info.key.is_empty() && info.signature_scheme != "hmac-sha256" {
            return Err(ProtocolError::UnsupportedScheme(info.signature_scheme));
        }
        Ok(info)
    }

    /// The ZeroMQ endpoint of a port: `tcp://IP:PORT`, or `ipc://IP-PORT` for the ipc transport.
    pub fn endpoint(&self, port: u16) -> String {
        match self.transport.as_str() {
            "ipc" => format!("ipc://{}-{}", self.ip, port),
            _ => format!("{}://{}:{}", self.transport, self.ip, port),
        }
    }
}
