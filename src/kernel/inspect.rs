//! `inspect_request` (Shift-Tab): the documentation of the identifier under the cursor.

use serde_json::Map;

use super::complete::byte_offset;
use super::Kernel;
use crate::protocol::content::{InspectReply, InspectRequest, ReplyStatus};
use crate::protocol::WireMessage;

impl Kernel {
    /// Asks the engine about the whole identifier under the cursor (not only the part before
    /// it); a failure is logged and answered as "not found".
    pub(super) fn on_inspect(&self, request: &WireMessage, r: InspectRequest) {
        let byte_pos = byte_offset(&r.code, r.cursor_pos);
        let end = r.code[byte_pos..]
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(r.code.len(), |i| byte_pos + i);
        let found = self.engine.inspect(&r.code, end).unwrap_or_else(|e| {
            tracing::warn!("inspection failed: {}", e.evalue);
            None
        });
        let mut data = Map::new();
        if let Some((plain, html)) = &found {
            data.insert("text/plain".into(), plain.clone().into());
            data.insert("text/html".into(), html.clone().into());
        }
        self.reply_shell(
            request,
            "inspect_reply",
            InspectReply {
                status: ReplyStatus::Ok,
                found: found.is_some(),
                data,
                metadata: Map::new(),
            },
        );
    }
}
