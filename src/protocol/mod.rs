//! The Jupyter messaging protocol (5.5), as plain data: connection files, headers, typed
//! message contents, HMAC-SHA256 signing and the multipart wire format. No sockets here.
//!
//! Spec: <https://jupyter-client.readthedocs.io/en/stable/messaging.html>

mod header;

pub use header::Header;

/// The protocol version this kernel speaks.
pub const PROTOCOL_VERSION: &str = "5.5";
