//! The message header.

use serde::{Deserialize, Serialize};

use super::PROTOCOL_VERSION;

/// A message header (`header` and `parent_header` on the wire).
///
/// ```
/// use rust_cluster_kernel::protocol::Header;
/// let h = Header::new("status", "session-1");
/// assert_eq!(h.msg_type, "status");
/// assert_eq!(h.version, "5.5");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Unique per message.
    pub msg_id: String,
    /// Unique per client or kernel process.
    pub session: String,
    /// The user name the sender reports.
    // Lenient: some clients omit `username` (old jupyter-console); default to "".
    #[serde(default)]
    pub username: String,
    /// ISO 8601 timestamp.
    // Lenient: `date` is optional in practice (jupyter_client < 5 omitted it).
    #[serde(default)]
    pub date: String,
    /// e.g. `execute_request`.
    pub msg_type: String,
    /// Protocol version of the message.
    #[serde(default)]
    pub version: String,
}

impl Header {
    /// A new header for a message the kernel sends, stamped now.
    pub fn new(msg_type: &str, session: &str) -> Self {
        Header {
            msg_id: uuid::Uuid::new_v4().to_string(),
            session: session.to_owned(),
            username: "kernel".to_owned(),
            date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            msg_type: msg_type.to_owned(),
            version: PROTOCOL_VERSION.to_owned(),
        }
    }
}
