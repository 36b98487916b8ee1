//! [`Output`]: how anything that runs on behalf of a request (a Rust cell, a magic, a background
//! poller updating a card) publishes on iopub under that request's parent header.

use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;

use crate::display::Bundle;
use crate::protocol::{Header, WireMessage};

/// One iopub message before it is given its own header and signed by the server.
#[derive(Debug, Clone)]
pub struct IopubMessage {
    /// The message type, e.g. `stream` or `display_data`.
    pub msg_type: String,
    /// The request this message belongs to (None for kernel-wide messages such as `starting`).
    pub parent: Option<Arc<Header>>,
    /// The message content.
    pub content: Value,
    /// The message's metadata (`{}` for the kernel's own; a widget's protocol version).
    pub metadata: Value,
    /// Binary buffers after the content (a widget's arrays).
    pub buffers: Vec<Vec<u8>>,
}

impl IopubMessage {
    /// Appends `next` to this message when both write to the same stream of the same request,
    /// so that a burst of lines goes out as one message (iopub drops messages for a subscriber
    /// that is 1000 behind, as libzmq does, and a lost `status: idle` would hang its client);
    /// otherwise gives `next` back.
    pub fn absorb(&mut self, next: IopubMessage) -> Result<(), IopubMessage> {
        let same_stream = self.msg_type == "stream"
            && next.msg_type == "stream"
            && self.content["name"] == next.content["name"]
            && match (&self.parent, &next.parent) {
                (Some(a), Some(b)) => a.msg_id == b.msg_id,
                (None, None) => true,
                _ => false,
            };
        let (Some(text), Some(more), true) = (
            self.content["text"].as_str(),
            next.content["text"].as_str(),
            same_stream,
        ) else {
            return Err(next);
        };
        self.content["text"] = Value::String(format!("{text}{more}"));
        Ok(())
    }
}

/// Which stream a `stream` message writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamName {
    /// `stdout`
    Stdout,
    /// `stderr`
    Stderr,
}

/// A handle that publishes outputs on iopub under one parent header. Cheap to clone; a clone may
/// be moved to a background thread to update a display after the cell has finished.
#[derive(Clone)]
pub struct Output {
    tx: UnboundedSender<IopubMessage>,
    parent: Option<Arc<Header>>,
    /// `silent: true` executions publish nothing (spec: "no broadcast on iopub").
    silent: bool,
}

impl Output {
    /// An output that sends to `tx` on behalf of `parent`.
    pub fn new(
        tx: UnboundedSender<IopubMessage>,
        parent: Option<Arc<Header>>,
        silent: bool,
    ) -> Self {
        Output { tx, parent, silent }
    }

    /// The header of the request these outputs answer.
    pub fn parent(&self) -> Option<&Header> {
        self.parent.as_deref()
    }

    /// Publishes any message type with the given content. Sending never fails: if the server is
    /// gone the kernel is shutting down and the output has nowhere to go.
    pub fn publish(&self, msg_type: &str, content: Value) {
        if self.silent {
            return;
        }
        let _ = self.tx.send(IopubMessage {
            msg_type: msg_type.to_owned(),
            parent: self.parent.clone(),
            content,
            metadata: json!({}),
            buffers: Vec::new(),
        });
    }

    /// Publishes a message of another kernel (the `%%python` sub-kernel's widgets) as it is,
    /// metadata and buffers included, under this output's parent.
    pub fn forward(&self, message: &WireMessage) {
        if self.silent {
            return;
        }
        let _ = self.tx.send(IopubMessage {
            msg_type: message.header.msg_type.clone(),
            parent: self.parent.clone(),
            content: message.content.clone(),
            metadata: message.metadata.clone(),
            buffers: message.buffers.clone(),
        });
    }

    /// Writes text to the cell's stdout or stderr.
    pub fn stream(&self, name: StreamName, text: &str) {
        if text.is_empty() {
            return;
        }
        let name = match name {
            StreamName::Stdout => "stdout",
            StreamName::Stderr => "stderr",
        };
        self.publish("stream", json!({ "name": name, "text": text }));
    }

    /// Writes text to the cell's stdout.
    pub fn stdout(&self, text: &str) {
        self.stream(StreamName::Stdout, text);
    }

    /// Writes text to the cell's stderr.
    pub fn stderr(&self, text: &str) {
        self.stream(StreamName::Stderr, text);
    }

    /// Shows a bundle (`display_data`) with no display id.
    pub fn display(&self, bundle: &Bundle) {
        self.publish("display_data", bundle_content(bundle, None));
    }

    /// Shows a bundle that can later be replaced in place with [`Output::update_display`].
    pub fn display_with_id(&self, bundle: &Bundle, display_id: &str) {
        self.publish("display_data", bundle_content(bundle, Some(display_id)));
    }

    /// Replaces every output that was shown with `display_id`, wherever it is in the notebook.
    pub fn update_display(&self, bundle: &Bundle, display_id: &str) {
        self.publish(
            "update_display_data",
            bundle_content(bundle, Some(display_id)),
        );
    }

    /// Clears the cell's output (`wait`: only when the next output arrives, to avoid flicker).
    pub fn clear_output(&self, wait: bool) {
        self.publish("clear_output", json!({ "wait": wait }));
    }
}

/// A fresh display id, unique across kernels and sessions.
pub fn new_display_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn bundle_content(bundle: &Bundle, display_id: Option<&str>) -> Value {
    let mut transient = serde_json::Map::new();
    if let Some(id) = display_id {
        transient.insert("display_id".into(), Value::String(id.to_owned()));
    }
    json!({ "data": bundle.data, "metadata": bundle.metadata, "transient": transient })
}

#[cfg(test)]
mod absorb_tests {
    use super::*;

    fn stream(parent: &Arc<Header>, name: &str, text: &str) -> IopubMessage {
        IopubMessage {
            msg_type: "stream".into(),
            parent: Some(parent.clone()),
            content: json!({"name": name, "text": text}),
            metadata: json!({}),
            buffers: Vec::new(),
        }
    }

    #[test]
    fn a_burst_on_one_stream_of_one_request_becomes_one_message() {
        let cell = Arc::new(Header::new("execute_request", "s"));
        let other = Arc::new(Header::new("execute_request", "s"));
        let mut first = stream(&cell, "stderr", "line 0\n");
        assert!(first.absorb(stream(&cell, "stderr", "line 1\n")).is_ok());
        assert_eq!(first.content["text"], "line 0\nline 1\n");
        // Another stream, another request, or another kind of message stays apart.
        assert!(first.absorb(stream(&cell, "stdout", "x")).is_err());
        assert!(first.absorb(stream(&other, "stderr", "x")).is_err());
        let mut status = stream(&cell, "stderr", "x");
        status.msg_type = "status".into();
        assert!(first.absorb(status).is_err());
        assert_eq!(first.content["text"], "line 0\nline 1\n");
    }
}
