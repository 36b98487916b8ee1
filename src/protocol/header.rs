//! The message header.

use serde::{Deserialize, Serialize};

/// A message header (`header` and `parent_header` on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Unique per message.
    pub msg_id: String,
    /// Unique per client or kernel process.
    pub session: String,
    /// The user name the sender reports.
    pub username: String,
    /// ISO 8601 timestamp.
    pub date: String,
    /// e.g. `execute_request`.
    pub msg_type: String,
    /// Protocol version of the message.
    pub version: String,
}
