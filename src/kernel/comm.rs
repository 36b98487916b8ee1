//! `comm_info_request`, `comm_open`, `comm_msg`, `comm_close`: comms (widgets) live in the
//! `%%python` sub-kernel; the Rust side has none, so they are passed to it.

use serde_json::json;

use super::Kernel;
use crate::protocol::content::{CommInfoReply, ReplyStatus};
use crate::protocol::WireMessage;

impl Kernel {
    /// The open comms of the Python sub-kernel (of `target_name`, if the request names one).
    pub(super) fn on_comm_info(&self, request: &WireMessage) {
        let target = request.content.get("target_name").and_then(|t| t.as_str());
        let comms = self
            .registry
            .python()
            .map(|python| python.comm_info(target))
            .unwrap_or_default();
        self.reply_shell(
            request,
            "comm_info_reply",
            CommInfoReply {
                status: ReplyStatus::Ok,
                comms,
            },
        );
    }

    /// Forwards a comm message to the Python sub-kernel; a `comm_open` that no one takes is
    /// closed again (spec).
    pub(super) fn on_comm_message(&self, request: &WireMessage) {
        let out = self.output_for(request, false);
        let forwarded = self
            .registry
            .python()
            .is_some_and(|python| python.forward_comm(request, &out));
        if !forwarded && request.header.msg_type == "comm_open" {
            if let Some(id) = request.content.get("comm_id") {
                out.publish("comm_close", json!({"comm_id": id, "data": {}}));
            }
        }
    }
}
