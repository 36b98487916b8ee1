//! `execute_request`: runs a cell (magics and Rust through the router, `?path` in the pager),
//! counts it, records it in the history and publishes its result or error.

use std::sync::atomic::Ordering;
use std::time::Instant;

use serde_json::{json, Map, Value};

use super::history::History;
use super::router::Router;
use super::Kernel;
use crate::cell::{CellInput, ErrorReport};
use crate::magics::CellRunner;
use crate::protocol::content::{ExecuteReply, ExecuteRequest, ReplyStatus};
use crate::protocol::WireMessage;

impl Kernel {
    /// Runs one cell; `Some(when)` if it failed and asked for stop_on_error (`when`: just before
    /// its reply was sent).
    pub(super) fn on_execute(
        &self,
        request: &WireMessage,
        r: ExecuteRequest,
        history: &mut History,
    ) -> Option<Instant> {
        let count = if r.silent {
            self.execution_count.load(Ordering::SeqCst)
        } else {
            self.execution_count.fetch_add(1, Ordering::SeqCst) + 1
        };
        let out = self.output_for(request, r.silent);
        out.publish(
            "execute_input",
            json!({"code": r.code, "execution_count": count}),
        );
        {
            let _no_interrupt_in_progress = self.lock_interrupts();
            self.interrupt.reset();
            self.executing.store(true, Ordering::SeqCst);
        }
        // `?path` (IPython's help syntax) opens the documentation in the pager.
        let mut payload = Vec::new();
        let result = match help_target(&r.code) {
            Some(target) => self.page_documentation(target).map(|page| {
                payload.push(page);
                None
            }),
            None => {
                let input = CellInput::new(
                    request,
                    r.allow_stdin,
                    &self.session,
                    self.outbox.stdin.clone(),
                    self.stdin_inbox.1.clone(),
                    self.interrupt.clone(),
                );
                let mut router = Router {
                    engine: self.engine.as_ref(),
                    registry: &self.registry,
                    interrupt: &self.interrupt,
                    input: &input,
                };
                router.run_cell(&r.code, &out)
            }
        };
        self.executing.store(false, Ordering::SeqCst);
        if r.store_history && !r.silent {
            let output = result
                .as_ref()
                .ok()
                .and_then(|v| v.as_ref())
                .and_then(|b| b.data.get("text/plain"))
                .and_then(|v| v.as_str())
                .map(str::to_owned);
            history.record(count, &r.code, output);
        }
        match result {
            Ok(value) => {
                if let Some(bundle) = value {
                    out.publish("execute_result", json!({"execution_count": count, "data": bundle.data, "metadata": bundle.metadata}));
                }
                self.reply_shell(
                    request,
                    "execute_reply",
                    ExecuteReply {
                        status: ReplyStatus::Ok,
                        execution_count: count,
                        user_expressions: Some(Map::new()),
                        payload: Some(payload),
                        ename: None,
                        evalue: None,
                        traceback: None,
                    },
                );
                None
            }
            Err(report) => {
                out.publish("error", json!({"ename": report.ename, "evalue": report.evalue, "traceback": report.traceback}));
                let failed_at = Instant::now();
                self.reply_shell(
                    request,
                    "execute_reply",
                    ExecuteReply {
                        status: ReplyStatus::Error,
                        execution_count: count,
                        user_expressions: Some(Map::new()),
                        payload: Some(Vec::new()),
                        ename: Some(report.ename),
                        evalue: Some(report.evalue),
                        traceback: Some(report.traceback),
                    },
                );
                r.stop_on_error.then_some(failed_at)
            }
        }
    }

    /// Answers an execution that was queued behind one that failed with stop_on_error.
    pub(super) fn abort_execute(&self, request: &WireMessage) {
        self.reply_shell(
            request,
            "execute_reply",
            json!({"status": ReplyStatus::Aborted, "execution_count": self.execution_count.load(Ordering::SeqCst)}),
        );
    }

    /// The pager payload with the documentation of `target`.
    fn page_documentation(&self, target: &str) -> Result<Value, ErrorReport> {
        match self.engine.inspect(target, target.len())? {
            Some((plain, html)) => Ok(
                json!({"source": "page", "data": {"text/plain": plain, "text/html": html}, "start": 0}),
            ),
            None => Err(ErrorReport::new(
                "NotFound",
                format!("no documentation found for {target}"),
            )),
        }
    }
}

/// The path in a help request: `?std::vec::Vec` or `??Vec` on a line of its own.
fn help_target(code: &str) -> Option<&str> {
    let code = code.trim();
    let path = code
        .strip_prefix("??")
        .or_else(|| code.strip_prefix('?'))?
        .trim();
    let is_path = !path.is_empty()
        && path
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == ':');
    is_path.then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_targets() {
        assert_eq!(help_target("?std::vec::Vec"), Some("std::vec::Vec"));
        assert_eq!(help_target(" ??Vec \n"), Some("Vec"));
        assert_eq!(help_target("x?"), None);
        assert_eq!(help_target("?a + b"), None);
    }
}
