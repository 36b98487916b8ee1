//! The kernel: one handler per request type, execution counting, busy/idle, and the cell router.
//!
//! The kernel is the only place that publishes `status` messages: `busy` before it looks at a
//! request, `idle` after the request's reply and every output it caused. Shell requests are
//! handled one at a time on the shell thread (they may compile and run Rust); control requests
//! on the control thread, so that interrupt, shutdown and kernel_info answer while a cell runs.
//!
//! A request is read into a [`ShellRequest`] (its typed content) and handed to its handler, one
//! file each: [`execute`], [`complete`], [`inspect`], [`is_complete`], [`history`], [`comm`],
//! [`kernel_info`], and [`control`] for the control channel. The [`router`] sends each cell to
//! the magics or to the engine.

mod comm;
mod complete;
mod control;
mod execute;
mod history;
mod inspect;
mod is_complete;
mod kernel_info;
mod router;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use serde_json::json;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

pub use control::ControlOutcome;

use crate::cell::{Interrupt, IopubMessage, Output};
use crate::engine::{Engine, RustEngine};
use crate::magics::Registry;
use crate::protocol::content::{
    CompleteRequest, ExecuteRequest, ExecutionState, HistoryRequest, InspectRequest,
    IsCompleteRequest, ReplyStatus,
};
use crate::protocol::{Header, ProtocolError, WireMessage};
use history::History;

/// Where the kernel sends what it has to say; the server owns the other ends.
#[derive(Clone)]
pub struct Outbox {
    /// Messages for iopub.
    pub iopub: UnboundedSender<IopubMessage>,
    /// Replies on the shell socket.
    pub shell: UnboundedSender<WireMessage>,
    /// Replies on the control socket.
    pub control: UnboundedSender<WireMessage>,
    /// Input requests on the stdin socket.
    pub stdin: UnboundedSender<WireMessage>,
}

impl Outbox {
    /// A new outbox and the server's ends of its four queues.
    pub fn channels() -> (Outbox, OutboxReceivers) {
        let (iopub, iopub_rx) = unbounded_channel();
        let (shell, shell_rx) = unbounded_channel();
        let (control, control_rx) = unbounded_channel();
        let (stdin, stdin_rx) = unbounded_channel();
        (
            Outbox {
                iopub,
                shell,
                control,
                stdin,
            },
            OutboxReceivers {
                iopub: iopub_rx,
                shell: shell_rx,
                control: control_rx,
                stdin: stdin_rx,
            },
        )
    }
}

/// The server's ends of an [`Outbox`]: what it publishes on iopub and writes to shell and control.
pub struct OutboxReceivers {
    /// Messages for iopub.
    pub iopub: UnboundedReceiver<IopubMessage>,
    /// Replies on the shell socket.
    pub shell: UnboundedReceiver<WireMessage>,
    /// Replies on the control socket.
    pub control: UnboundedReceiver<WireMessage>,
    /// Input requests on the stdin socket.
    pub stdin: UnboundedReceiver<WireMessage>,
}

/// How many messages from the stdin socket wait for a cell to read them; more are dropped. A
/// frontend sends one input_reply per input_request.
const STDIN_INBOX: usize = 64;

/// What shell and control share.
pub struct Kernel {
    /// This kernel process's session id (the `session` of every header it sends).
    session: String,
    outbox: Outbox,
    /// Runs the Rust cells: evcxr, or a scripted engine in the unit tests.
    engine: Box<dyn RustEngine>,
    interrupt: Interrupt,
    /// Whether an execute_request is being handled (an interrupt outside one does nothing).
    executing: AtomicBool,
    /// Held by an interrupt from start to end, and by an execution while it starts: an
    /// interrupt whose cell has ended (a cell that waited for input ends as soon as it sees
    /// the flag) cannot stop the next cell.
    interrupt_lock: Mutex<()>,
    /// The last execution count given out.
    execution_count: AtomicU32,
    registry: Registry,
    /// rustc's version, looked up once in the background at start.
    rustc_version: Arc<OnceLock<String>>,
    /// Verified messages from the stdin socket (input replies), for the cell that asked: the
    /// server's end, and the running cell's.
    stdin_inbox: (Sender<WireMessage>, Receiver<WireMessage>),
}

/// A shell request with its typed content: what [`Kernel::serve_shell`] dispatches on.
enum ShellRequest {
    KernelInfo,
    Execute(ExecuteRequest),
    Complete(CompleteRequest),
    Inspect(InspectRequest),
    IsComplete(IsCompleteRequest),
    History(HistoryRequest),
    CommInfo,
    /// `comm_open`, `comm_msg` or `comm_close`.
    Comm,
    /// A message type this kernel does not handle.
    Unknown,
}

impl ShellRequest {
    /// Reads the request's type and content; an error when the content does not fit the type.
    fn read(request: &WireMessage) -> Result<ShellRequest, ProtocolError> {
        Ok(match request.header.msg_type.as_str() {
            "kernel_info_request" => ShellRequest::KernelInfo,
            "execute_request" => ShellRequest::Execute(request.content_as()?),
            "complete_request" => ShellRequest::Complete(request.content_as()?),
            "inspect_request" => ShellRequest::Inspect(request.content_as()?),
            "is_complete_request" => ShellRequest::IsComplete(request.content_as()?),
            "history_request" => ShellRequest::History(request.content_as()?),
            "comm_info_request" => ShellRequest::CommInfo,
            "comm_open" | "comm_msg" | "comm_close" => ShellRequest::Comm,
            _ => ShellRequest::Unknown,
        })
    }
}

impl Kernel {
    /// A kernel that sends through `outbox` as `session`; evcxr starts warming up at once.
    pub fn new(outbox: Outbox, registry: Registry, session: String) -> Arc<Kernel> {
        Kernel::with_engine(outbox, registry, session, Box::new(Engine::start()))
    }

    /// A kernel that runs Rust cells with `engine`.
    pub fn with_engine(
        outbox: Outbox,
        registry: Registry,
        session: String,
        engine: Box<dyn RustEngine>,
    ) -> Arc<Kernel> {
        let rustc_version = Arc::new(OnceLock::new());
        let slot = rustc_version.clone();
        std::thread::spawn(move || {
            let _ = slot.set(kernel_info::rustc_version_now());
        });
        Arc::new(Kernel {
            session,
            engine,
            outbox,
            interrupt: Interrupt::default(),
            executing: AtomicBool::new(false),
            interrupt_lock: Mutex::new(()),
            execution_count: AtomicU32::new(0),
            registry,
            rustc_version,
            stdin_inbox: crossbeam_channel::bounded(STDIN_INBOX),
        })
    }

    /// Takes a verified message from the stdin socket (an `input_reply`) for the cell that
    /// waits for input; when none waits, the next request for input drops it as stale.
    pub fn on_stdin(&self, message: WireMessage) {
        if self.stdin_inbox.0.try_send(message).is_err() {
            tracing::warn!("stdin: {STDIN_INBOX} messages wait already, one more was dropped");
        }
    }

    /// The session id used in every header the kernel sends.
    pub fn session(&self) -> &str {
        &self.session
    }

    /// Publishes `starting` (once, before any request is read).
    pub fn announce_start(&self) {
        self.status(None, ExecutionState::Starting);
    }

    fn status(&self, parent: Option<&Header>, state: ExecutionState) {
        let output = Output::new(
            self.outbox.iopub.clone(),
            parent.cloned().map(Arc::new),
            false,
        );
        output.publish("status", json!({ "execution_state": state }));
    }

    /// Handles shell requests one at a time until the channel closes. Each request comes with
    /// the time it arrived, so that `stop_on_error` aborts exactly the executions that were
    /// already queued when an execution failed (not ones sent after its reply).
    pub fn serve_shell(&self, requests: Receiver<(Instant, WireMessage)>) {
        self.serve_shell_with(requests, History::open_default());
    }

    /// [`Kernel::serve_shell`] with the history kept in `history`.
    fn serve_shell_with(&self, requests: Receiver<(Instant, WireMessage)>, mut history: History) {
        let mut queue: VecDeque<(Instant, WireMessage)> = VecDeque::new();
        loop {
            let (_, request) = match queue.pop_front() {
                Some(r) => r,
                None => match requests.recv() {
                    Ok(r) => r,
                    Err(_) => return,
                },
            };
            self.status(Some(&request.header), ExecutionState::Busy);
            let failed_at = self.handle_shell(&request, &mut history);
            self.status(Some(&request.header), ExecutionState::Idle);
            if let Some(failed_at) = failed_at {
                queue.extend(requests.try_iter());
                let (aborted, kept): (VecDeque<_>, VecDeque<_>) = queue
                    .drain(..)
                    .partition(|(at, m)| *at < failed_at && m.header.msg_type == "execute_request");
                queue = kept;
                for (_, m) in aborted {
                    self.status(Some(&m.header), ExecutionState::Busy);
                    self.abort_execute(&m);
                    self.status(Some(&m.header), ExecutionState::Idle);
                }
            }
        }
    }

    /// Hands one shell request to its handler; `Some(when)` when it was an execution that
    /// failed with stop_on_error (`when`: just before its reply was sent).
    fn handle_shell(&self, request: &WireMessage, history: &mut History) -> Option<Instant> {
        let parsed = match ShellRequest::read(request) {
            Ok(parsed) => parsed,
            Err(e) => {
                self.reply_malformed(request, &e);
                return None;
            }
        };
        match parsed {
            ShellRequest::Execute(r) => return self.on_execute(request, r, history),
            ShellRequest::KernelInfo => self.on_kernel_info(request, &self.outbox.shell),
            ShellRequest::Complete(r) => self.on_complete(request, r),
            ShellRequest::Inspect(r) => self.on_inspect(request, r),
            ShellRequest::IsComplete(r) => self.on_is_complete(request, r),
            ShellRequest::History(r) => self.on_history(request, r, history),
            ShellRequest::CommInfo => self.on_comm_info(request),
            ShellRequest::Comm => self.on_comm_message(request),
            ShellRequest::Unknown => {
                tracing::warn!("unknown shell request {}", request.header.msg_type);
                self.reply_unknown(request, &self.outbox.shell);
            }
        }
        None
    }

    fn output_for(&self, request: &WireMessage, silent: bool) -> Output {
        Output::new(
            self.outbox.iopub.clone(),
            Some(Arc::new(request.header.clone())),
            silent,
        )
    }

    fn reply_shell(&self, request: &WireMessage, msg_type: &str, content: impl serde::Serialize) {
        self.reply(&self.outbox.shell, request, msg_type, content);
    }

    /// Sends the reply `msg_type` to `request` on the channel `to`.
    fn reply(
        &self,
        to: &UnboundedSender<WireMessage>,
        request: &WireMessage,
        msg_type: &str,
        content: impl serde::Serialize,
    ) {
        let _ = to.send(request.reply(msg_type, &self.session, content));
    }

    /// A request whose content does not fit its type gets an error reply (an execution's
    /// carries the execution count).
    fn reply_malformed(&self, request: &WireMessage, error: &ProtocolError) {
        let msg_type = request.header.msg_type.as_str();
        tracing::warn!("malformed {msg_type}: {error}");
        let reply_type = msg_type.replace("_request", "_reply");
        let mut content = json!({"status": ReplyStatus::Error, "ename": "BadRequest", "evalue": error.to_string(), "traceback": []});
        if msg_type == "execute_request" {
            content["execution_count"] = self.execution_count.load(Ordering::SeqCst).into();
        }
        self.reply_shell(request, &reply_type, content);
    }

    /// Unknown request types get an error reply, never silence.
    fn reply_unknown(&self, request: &WireMessage, to: &UnboundedSender<WireMessage>) {
        let msg_type = &request.header.msg_type;
        let reply_type = match msg_type.strip_suffix("_request") {
            Some(stem) => format!("{stem}_reply"),
            None => format!("{msg_type}_reply"),
        };
        let content = json!({"status": ReplyStatus::Error, "ename": "UnknownMessageType", "evalue": format!("this kernel does not handle {msg_type}"), "traceback": []});
        self.reply(to, request, &reply_type, content);
    }
}
