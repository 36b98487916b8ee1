//! The kernel: request handlers, execution counting, busy/idle, and the cell router.
//!
//! The kernel is the only place that publishes `status` messages: `busy` before it looks at a
//! request, `idle` after the request's reply and every output it caused. Shell requests are
//! handled one at a time on the shell thread (they may compile and run Rust); control requests
//! on the control thread, so that interrupt, shutdown and kernel_info answer while a cell runs.

mod history;
mod router;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crossbeam_channel::Receiver;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::cell::{ErrorReport, Interrupt, IopubMessage, Output};
use crate::engine::{is_complete, Completeness, Engine, Interrupter, Stopped};
use crate::magics::{CellRunner, Registry};
use crate::protocol::content::{
    CommInfoReply, CompleteReply, CompleteRequest, ExecuteReply, ExecuteRequest, HelpLink,
    HistoryReply, HistoryRequest, InspectReply, InspectRequest, IsCompleteReply, IsCompleteRequest,
    KernelInfoReply, LanguageInfo, Shutdown,
};
use crate::protocol::{Header, WireMessage, PROTOCOL_VERSION};
use history::History;
use router::Router;

/// Where the kernel sends what it has to say; the server owns the other ends.
#[derive(Clone)]
pub struct Outbox {
    /// Messages for iopub.
    pub iopub: UnboundedSender<IopubMessage>,
    /// Replies on the shell socket.
    pub shell: UnboundedSender<WireMessage>,
    /// Replies on the control socket.
    pub control: UnboundedSender<WireMessage>,
}

impl Outbox {
    /// A new outbox and the server's ends of its three queues.
    pub fn channels() -> (Outbox, OutboxReceivers) {
        let (iopub, iopub_rx) = unbounded_channel();
        let (shell, shell_rx) = unbounded_channel();
        let (control, control_rx) = unbounded_channel();
        (
            Outbox {
                iopub,
                shell,
                control,
            },
            OutboxReceivers {
                iopub: iopub_rx,
                shell: shell_rx,
                control: control_rx,
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
}

/// What shell and control share.
pub struct Kernel {
    /// This kernel process's session id (the `session` of every header it sends).
    session: String,
    outbox: Outbox,
    engine: Engine,
    interrupter: Interrupter,
    interrupt: Interrupt,
    /// Whether an execute_request is being handled (an interrupt outside one does nothing).
    executing: AtomicBool,
    /// The last execution count given out.
    execution_count: AtomicU32,
    registry: Registry,
    /// rustc's version, looked up once in the background at start.
    rustc_version: Arc<OnceLock<String>>,
}

impl Kernel {
    /// A kernel that sends through `outbox` as `session`; the engine starts warming up at once.
    pub fn new(outbox: Outbox, registry: Registry, session: String) -> Arc<Kernel> {
        let engine = Engine::start();
        let rustc_version = Arc::new(OnceLock::new());
        let slot = rustc_version.clone();
        std::thread::spawn(move || {
            let _ = slot.set(rustc_version_now());
        });
        Arc::new(Kernel {
            session,
            interrupter: engine.interrupter(),
            engine,
            outbox,
            interrupt: Interrupt::default(),
            executing: AtomicBool::new(false),
            execution_count: AtomicU32::new(0),
            registry,
            rustc_version,
        })
    }

    /// The session id used in every header the kernel sends.
    pub fn session(&self) -> &str {
        &self.session
    }

    /// Publishes `starting` (once, before any request is read).
    pub fn announce_start(&self) {
        self.status(None, "starting");
    }

    fn status(&self, parent: Option<&Header>, state: &str) {
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
        let mut history = History::open_default();
        let mut queue: VecDeque<(Instant, WireMessage)> = VecDeque::new();
        loop {
            let (_, request) = match queue.pop_front() {
                Some(r) => r,
                None => match requests.recv() {
                    Ok(r) => r,
                    Err(_) => return,
                },
            };
            self.status(Some(&request.header), "busy");
            let failed_at = self.handle_shell(&request, &mut history);
            self.status(Some(&request.header), "idle");
            if let Some(failed_at) = failed_at {
                queue.extend(requests.try_iter());
                let (aborted, kept): (VecDeque<_>, VecDeque<_>) = queue
                    .drain(..)
                    .partition(|(at, m)| *at < failed_at && m.header.msg_type == "execute_request");
                queue = kept;
                for (_, m) in aborted {
                    self.status(Some(&m.header), "busy");
                    self.reply_shell(&m, "execute_reply", json!({"status": "aborted", "execution_count": self.execution_count.load(Ordering::SeqCst)}));
                    self.status(Some(&m.header), "idle");
                }
            }
        }
    }

    /// Handles one shell request; `Some(when)` when it was an execution that failed with
    /// stop_on_error (`when`: just before its reply was sent).
    fn handle_shell(&self, request: &WireMessage, history: &mut History) -> Option<Instant> {
        let msg_type = request.header.msg_type.as_str();
        let result = match msg_type {
            "kernel_info_request" => {
                self.reply_shell(request, "kernel_info_reply", self.kernel_info());
                Ok(())
            }
            "execute_request" => return self.execute(request, history),
            "complete_request" => request
                .content_as::<CompleteRequest>()
                .map(|r| self.complete(request, r)),
            "inspect_request" => request
                .content_as::<InspectRequest>()
                .map(|r| self.inspect(request, r)),
            "is_complete_request" => request.content_as::<IsCompleteRequest>().map(|r| {
                let reply = match is_complete(&r.code) {
                    Completeness::Complete => IsCompleteReply {
                        status: "complete",
                        indent: None,
                    },
                    Completeness::Incomplete(indent) => IsCompleteReply {
                        status: "incomplete",
                        indent: Some(indent),
                    },
                    Completeness::Invalid => IsCompleteReply {
                        status: "invalid",
                        indent: None,
                    },
                };
                self.reply_shell(request, "is_complete_reply", reply)
            }),
            "history_request" => request.content_as::<HistoryRequest>().map(|r| {
                let entries = match r.hist_access_type.as_str() {
                    "range" => history.range(r.session, r.start, r.stop),
                    "search" => history.search(r.pattern.as_deref().unwrap_or("*"), r.n, r.unique),
                    _ => history.tail(r.n.unwrap_or(10)),
                };
                let history = entries
                    .into_iter()
                    .map(|e| {
                        let input = if r.output {
                            json!([e.input, e.output])
                        } else {
                            json!(e.input)
                        };
                        (e.session, e.line, input)
                    })
                    .collect();
                self.reply_shell(
                    request,
                    "history_reply",
                    HistoryReply {
                        status: "ok",
                        history,
                    },
                )
            }),
            // Comms (widgets) live in the `%%python` sub-kernel; the Rust side has none.
            "comm_info_request" => {
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
                        status: "ok",
                        comms,
                    },
                );
                Ok(())
            }
            "comm_open" | "comm_msg" | "comm_close" => {
                let out = self.output_for(request, false);
                let msg_type = request.header.msg_type.as_str();
                let forwarded = self
                    .registry
                    .python()
                    .is_some_and(|python| python.forward_comm(request, &out));
                // A comm opened where no target exists is closed again (spec).
                if !forwarded && msg_type == "comm_open" {
                    if let Some(id) = request.content.get("comm_id") {
                        out.publish("comm_close", json!({"comm_id": id, "data": {}}));
                    }
                }
                Ok(())
            }
            other => {
                tracing::warn!("unknown shell request {other}");
                self.reply_unknown(request, &self.outbox.shell);
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::warn!("malformed {msg_type}: {e}");
            let reply_type = msg_type.replace("_request", "_reply");
            self.reply_shell(request, &reply_type, json!({"status": "error", "ename": "BadRequest", "evalue": e.to_string(), "traceback": []}));
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

    /// Runs one cell; `Some(when)` if it failed and asked for stop_on_error.
    fn execute(&self, request: &WireMessage, history: &mut History) -> Option<Instant> {
        let r = match request.content_as::<ExecuteRequest>() {
            Ok(r) => r,
            Err(e) => {
                self.reply_shell(request, "execute_reply", json!({"status": "error", "ename": "BadRequest", "evalue": e.to_string(), "traceback": [], "execution_count": self.execution_count.load(Ordering::SeqCst)}));
                return None;
            }
        };
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
        self.interrupt.reset();
        self.executing.store(true, Ordering::SeqCst);
        // `?path` (IPython's help syntax) opens the documentation in the pager.
        let mut payload = Vec::new();
        let result = match help_target(&r.code) {
            Some(target) => self.page_documentation(target).map(|page| {
                payload.push(page);
                None
            }),
            None => {
                let mut router = Router {
                    engine: &self.engine,
                    registry: &self.registry,
                    interrupt: &self.interrupt,
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
                        status: "ok",
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
                        status: "error",
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

    fn complete(&self, request: &WireMessage, r: CompleteRequest) {
        let byte_pos = byte_offset(&r.code, r.cursor_pos);
        let (matches, kinds, start, end) =
            match magic_completions(&self.registry, &r.code, byte_pos) {
                Some(found) => found,
                None => match self.engine.complete(&r.code, byte_pos) {
                    Ok(c) => (c.matches, c.kinds, c.start, c.end),
                    Err(e) => {
                        tracing::warn!("completion failed: {}", e.evalue);
                        (Vec::new(), Vec::new(), byte_pos, byte_pos)
                    }
                },
            };
        let cursor_start = char_offset(&r.code, start);
        let cursor_end = char_offset(&r.code, end);
        let types: Vec<Value> = matches
            .iter()
            .zip(&kinds)
            .map(|(text, kind)| json!({"start": cursor_start, "end": cursor_end, "text": text, "type": kind}))
            .collect();
        self.reply_shell(
            request,
            "complete_reply",
            CompleteReply {
                status: "ok",
                matches,
                cursor_start,
                cursor_end,
                metadata: json!({"_jupyter_types_experimental": types}),
            },
        );
    }

    fn inspect(&self, request: &WireMessage, r: InspectRequest) {
        let byte_pos = byte_offset(&r.code, r.cursor_pos);
        // Inspect the whole identifier under the cursor, not only the part before it.
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
                status: "ok",
                found: found.is_some(),
                data,
                metadata: Map::new(),
            },
        );
    }

    /// Handles one control request (busy/idle around it).
    pub fn handle_control(&self, request: &WireMessage) -> ControlOutcome {
        self.status(Some(&request.header), "busy");
        let mut outcome = ControlOutcome::Continue;
        match request.header.msg_type.as_str() {
            "kernel_info_request" => {
                self.reply_control(request, "kernel_info_reply", self.kernel_info())
            }
            "interrupt_request" => {
                self.interrupt();
                self.reply_control(request, "interrupt_reply", json!({"status": "ok"}));
            }
            "shutdown_request" => {
                let r = request.content_as::<Shutdown>().unwrap_or(Shutdown {
                    status: None,
                    restart: false,
                });
                self.reply_control(
                    request,
                    "shutdown_reply",
                    Shutdown {
                        status: Some("ok".into()),
                        restart: r.restart,
                    },
                );
                outcome = ControlOutcome::Shutdown { restart: r.restart };
            }
            _ => self.reply_unknown(request, &self.outbox.control),
        }
        self.status(Some(&request.header), "idle");
        outcome
    }

    /// Interrupts the running cell (from interrupt_request or SIGINT).
    pub fn interrupt(&self) {
        let running = self.executing.load(Ordering::SeqCst);
        if running {
            self.interrupt.raise();
        }
        match self.interrupter.interrupt(running) {
            Stopped::Compilation => tracing::info!("interrupt: compilation stopped"),
            Stopped::Execution => tracing::info!("interrupt: runtime process stopped"),
            Stopped::Nothing => tracing::info!("interrupt: nothing to stop"),
        }
    }

    fn kernel_info(&self) -> KernelInfoReply {
        let version = self
            .rustc_version
            .get()
            .cloned()
            .unwrap_or_else(rustc_version_now);
        KernelInfoReply {
            status: "ok",
            protocol_version: PROTOCOL_VERSION,
            implementation: "rust-cluster-kernel",
            implementation_version: env!("CARGO_PKG_VERSION"),
            banner: format!("Rust (cluster) {} — Rust {version} through evcxr, with %cluster magics for Dask on SLURM. %lsmagic lists the magics.", env!("CARGO_PKG_VERSION")),
            language_info: LanguageInfo {
                name: "rust",
                version,
                mimetype: "text/rust",
                file_extension: ".rs",
                pygments_lexer: "rust",
                codemirror_mode: "rust",
                nbconvert_exporter: "rust",
            },
            supported_features: Vec::new(),
            debugger: false,
            help_links: vec![
                HelpLink { text: "The Rust Book", url: "https://doc.rust-lang.org/book/" },
                HelpLink { text: "Rust standard library", url: "https://doc.rust-lang.org/std/" },
                HelpLink { text: "evcxr", url: "https://github.com/evcxr/evcxr" },
                HelpLink { text: "Dask", url: "https://docs.dask.org/" },
                HelpLink { text: "SLURM", url: "https://slurm.schedmd.com/documentation.html" },
            ],
        }
    }

    fn reply_shell(&self, request: &WireMessage, msg_type: &str, content: impl serde::Serialize) {
        let _ = self
            .outbox
            .shell
            .send(request.reply(msg_type, &self.session, content));
    }

    fn reply_control(&self, request: &WireMessage, msg_type: &str, content: impl serde::Serialize) {
        let _ = self
            .outbox
            .control
            .send(request.reply(msg_type, &self.session, content));
    }

    /// Unknown request types get an error reply, never silence.
    fn reply_unknown(&self, request: &WireMessage, to: &UnboundedSender<WireMessage>) {
        let msg_type = &request.header.msg_type;
        let reply_type = match msg_type.strip_suffix("_request") {
            Some(stem) => format!("{stem}_reply"),
            None => format!("{msg_type}_reply"),
        };
        let content = json!({"status": "error", "ename": "UnknownMessageType", "evalue": format!("this kernel does not handle {msg_type}"), "traceback": []});
        let _ = to.send(request.reply(&reply_type, &self.session, content));
    }
}

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

fn rustc_version_now() -> String {
    std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.split_whitespace().nth(1).map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
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

/// Completions of magic names after `%` or `%%` at the start of a line.
fn magic_completions(
    registry: &Registry,
    code: &str,
    byte_pos: usize,
) -> Option<(Vec<String>, Vec<String>, usize, usize)> {
    let line_start = code[..byte_pos].rfind('\n').map_or(0, |i| i + 1);
    let typed = &code[line_start..byte_pos];
    let prefix = if typed.starts_with("%%") {
        "%%"
    } else if typed.starts_with('%') {
        "%"
    } else {
        return None;
    };
    let name = &typed[prefix.len()..];
    if name.contains(char::is_whitespace) {
        return None;
    }
    let matches: Vec<String> = registry
        .iter()
        .filter(|m| {
            m.name().starts_with(name)
                && if prefix == "%%" {
                    m.forms().cell
                } else {
                    m.forms().line
                }
        })
        .map(|m| format!("{prefix}{}", m.name()))
        .collect();
    let kinds = vec!["magic".to_owned(); matches.len()];
    Some((matches, kinds, line_start, byte_pos))
}

/// Unicode code points → byte offset (clamped to the end).
fn byte_offset(text: &str, chars: usize) -> usize {
    text.char_indices()
        .nth(chars)
        .map_or(text.len(), |(i, _)| i)
}

/// Byte offset → Unicode code points.
fn char_offset(text: &str, bytes: usize) -> usize {
    text[..bytes.min(text.len())].chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_offsets_count_code_points() {
        let s = "let é = \"🦀\"; é";
        assert_eq!(byte_offset(s, 4), 4);
        assert_eq!(byte_offset(s, 5), 6);
        assert_eq!(char_offset(s, byte_offset(s, 12)), 12);
        assert_eq!(byte_offset(s, 1000), s.len());
    }

    #[test]
    fn help_targets() {
        assert_eq!(help_target("?std::vec::Vec"), Some("std::vec::Vec"));
        assert_eq!(help_target(" ??Vec \n"), Some("Vec"));
        assert_eq!(help_target("x?"), None);
        assert_eq!(help_target("?a + b"), None);
    }

    #[test]
    fn magic_names_complete() {
        let r = Registry::everyday();
        let (m, _, start, end) = magic_completions(&r, "let x = 1;\n%ls", 14).unwrap();
        assert_eq!((m, start, end), (vec!["%lsmagic".to_owned()], 11, 14));
        let (m, ..) = magic_completions(&r, "%%ba", 4).unwrap();
        assert_eq!(m, ["%%bash"]);
        assert!(magic_completions(&r, "let x", 5).is_none());
    }
}
