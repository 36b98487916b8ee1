//! `is_complete_request`: whether the console may run what was typed, or needs another line.

use super::Kernel;
use crate::engine::{is_complete, Completeness};
use crate::protocol::content::{IsCompleteReply, IsCompleteRequest, IsCompleteStatus};
use crate::protocol::WireMessage;

impl Kernel {
    /// Answers from the code's brackets, strings and comments (no compiler involved).
    pub(super) fn on_is_complete(&self, request: &WireMessage, r: IsCompleteRequest) {
        let reply = match is_complete(&r.code) {
            Completeness::Complete => IsCompleteReply {
                status: IsCompleteStatus::Complete,
                indent: None,
            },
            Completeness::Incomplete(indent) => IsCompleteReply {
                status: IsCompleteStatus::Incomplete,
                indent: Some(indent),
            },
            Completeness::Invalid => IsCompleteReply {
                status: IsCompleteStatus::Invalid,
                indent: None,
            },
        };
        self.reply_shell(request, "is_complete_reply", reply);
    }
}
