//! The Jupyter messaging protocol (5.5), as plain data: connection files, headers, typed
//! message contents, HMAC-SHA256 signing, the multipart wire format and the history of
//! signatures that recognises a replayed message, and the conversion of frames to the `zeromq`
//! crate's messages ([`zmq`]). No sockets here.
//!
//! Spec: <https://jupyter-client.readthedocs.io/en/stable/messaging.html>

mod connection;
pub mod content;
mod header;
mod replay;
mod wire;
pub mod zmq;

pub use connection::ConnectionInfo;
pub use header::Header;
pub use replay::ReplayGuard;
pub use wire::{Signer, WireMessage, DELIMITER};

/// The protocol version this kernel speaks.
pub const PROTOCOL_VERSION: &str = "5.5";

/// Why a message or connection file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The connection file could not be read or parsed.
    #[error("connection file {path}: {reason}")]
    ConnectionFile {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// A signature scheme other than hmac-sha256.
    #[error("unsupported signature scheme {0:?} (only hmac-sha256)")]
    UnsupportedScheme(String),
    /// No `<IDS|MSG>` frame.
    #[error("no <IDS|MSG> delimiter frame")]
    NoDelimiter,
    /// Fewer than the signature and four JSON frames after the delimiter.
    #[error("only {0} frames after the delimiter, 5 needed")]
    TooFewFrames(usize),
    /// The HMAC does not match.
    #[error("bad signature")]
    BadSignature,
    /// A frame is not the JSON it should be.
    #[error("{frame} is not valid JSON: {reason}")]
    BadJson {
        /// Which frame.
        frame: &'static str,
        /// serde's message.
        reason: String,
    },
    /// The content does not fit the message type.
    #[error("{msg_type} content: {reason}")]
    BadContent {
        /// The message type.
        msg_type: String,
        /// serde's message.
        reason: String,
    },
}
