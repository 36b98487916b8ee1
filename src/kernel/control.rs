//! The control channel: `interrupt_request`, `shutdown_request` and `kernel_info_request`,
//! answered on the control thread while a cell runs.

use std::sync::atomic::Ordering;

use serde_json::json;

use super::Kernel;
use crate::engine::Stopped;
use crate::protocol::content::{ExecutionState, ReplyStatus, Shutdown};
use crate::protocol::WireMessage;

/// What the server should do after a control request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlOutcome {
    /// Keep serving.
    Continue,
    /// Stop the process (Jupyter starts a new one if `restart`).
    Shutdown {
        /// A restart follows: keep what should survive it (clusters re-attach).
        restart: bool,
    },
}

impl Kernel {
    /// Handles one control request (busy/idle around it).
    pub fn handle_control(&self, request: &WireMessage) -> ControlOutcome {
        self.status(Some(&request.header), ExecutionState::Busy);
        let outcome = match request.header.msg_type.as_str() {
            "kernel_info_request" => {
                self.on_kernel_info(request, &self.outbox.control);
                ControlOutcome::Continue
            }
            "interrupt_request" => self.on_interrupt(request),
            "shutdown_request" => self.on_shutdown(request),
            _ => {
                self.reply_unknown(request, &self.outbox.control);
                ControlOutcome::Continue
            }
        };
        self.status(Some(&request.header), ExecutionState::Idle);
        outcome
    }

    fn on_interrupt(&self, request: &WireMessage) -> ControlOutcome {
        self.interrupt();
        self.reply(
            &self.outbox.control,
            request,
            "interrupt_reply",
            json!({"status": ReplyStatus::Ok}),
        );
        ControlOutcome::Continue
    }

    /// The lock that keeps an interrupt within one cell (see `interrupt_lock`).
    pub(super) fn lock_interrupts(&self) -> std::sync::MutexGuard<'_, ()> {
        self.interrupt_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn on_shutdown(&self, request: &WireMessage) -> ControlOutcome {
        let r = request.content_as::<Shutdown>().unwrap_or(Shutdown {
            status: None,
            restart: false,
        });
        self.reply(
            &self.outbox.control,
            request,
            "shutdown_reply",
            Shutdown {
                status: Some(ReplyStatus::Ok),
                restart: r.restart,
            },
        );
        ControlOutcome::Shutdown { restart: r.restart }
    }

    /// The cleanup before the process ends (after the shutdown reply has left): the running
    /// cell is interrupted, and the `%%python` sub-kernel is dropped, which ends its process
    /// group and removes its private directory.
    pub fn shut_down(&self) {
        self.interrupt();
        if let Some(python) = self.registry.python() {
            python.restart();
        }
    }

    /// Interrupts the running cell (from interrupt_request or SIGINT).
    pub fn interrupt(&self) {
        let _one_cell = self.lock_interrupts();
        let running = self.executing.load(Ordering::SeqCst);
        if running {
            self.interrupt.raise();
        }
        match self.engine.interrupt(running) {
            Stopped::Compilation => tracing::info!("interrupt: compilation stopped"),
            Stopped::Execution => tracing::info!("interrupt: runtime process stopped"),
            Stopped::Nothing => tracing::info!("interrupt: nothing to stop"),
        }
    }
}
