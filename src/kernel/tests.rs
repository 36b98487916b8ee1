//! The kernel's own logic — stop_on_error, history, panics folded into the error, input
//! requests — against a scripted engine, without compiling Rust.

use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::history::History;
use super::{Kernel, Outbox, OutboxReceivers};
use crate::cell::{CellInput, ErrorReport, StreamName};
use crate::display::Bundle;
use crate::engine::{CellEvent, CellValue, Completions, RustEngine, Stopped};
use crate::magics::Registry;
use crate::protocol::WireMessage;

/// An engine that answers by the cell's code: `fail` is a compile error, `panic` prints a panic
/// on stderr (as a Rust panic does, while evcxr answers Ok), `input PROMPT` asks for input and
/// is the answer, anything else is its own value.
#[derive(Default)]
struct Scripted {
    interrupts: Arc<InterruptLog>,
}

/// What the scripted engine saw of interrupts.
#[derive(Default)]
struct InterruptLog {
    /// Whether an interrupt is being handled (it takes a while, like the real engine's search
    /// for compiler processes).
    interrupting: AtomicBool,
    /// Cells that started while an interrupt was being handled.
    started_during_interrupt: AtomicUsize,
}

impl RustEngine for Scripted {
    fn execute(
        &self,
        code: &str,
        input: &CellInput,
        on_event: &mut dyn FnMut(CellEvent),
    ) -> Result<CellValue, ErrorReport> {
        if self.interrupts.interrupting.load(SeqCst) {
            self.interrupts
                .started_during_interrupt
                .fetch_add(1, SeqCst);
        }
        if let Some(prompt) = code.strip_prefix("input ") {
            return match input.request(prompt, false) {
                Ok(value) => Ok(CellValue {
                    result: Some(Bundle::text(&value)),
                    timing: None,
                }),
                Err(e) => Err(ErrorReport::new(e.ename(), e.to_string())),
            };
        }
        match code {
            "fail" => Err(ErrorReport::new("CompileError", "expected one of `;`")),
            "panic" => {
                for line in [
                    "printed before\n",
                    "\n",
                    "thread 'main' (7) panicked at src/lib.rs:1:1:\n",
                    "boom\n",
                    "note: run with `RUST_BACKTRACE=1`\n",
                ] {
                    let stream = if line == "printed before\n" {
                        StreamName::Stdout
                    } else {
                        StreamName::Stderr
                    };
                    on_event(CellEvent::Stream(stream, line.to_owned()));
                }
                Ok(CellValue::default())
            }
            value => Ok(CellValue {
                result: Some(Bundle::text(value)),
                timing: None,
            }),
        }
    }
    fn complete(&self, _: &str, pos: usize) -> Result<Completions, ErrorReport> {
        Ok(Completions {
            start: pos,
            end: pos,
            ..Completions::default()
        })
    }
    fn inspect(&self, _: &str, _: usize) -> Result<Option<(String, String)>, ErrorReport> {
        Ok(None)
    }
    fn interrupt(&self, _: bool) -> Stopped {
        self.interrupts.interrupting.store(true, SeqCst);
        std::thread::sleep(Duration::from_millis(300));
        self.interrupts.interrupting.store(false, SeqCst);
        Stopped::Nothing
    }
}

fn kernel() -> (Arc<Kernel>, OutboxReceivers) {
    kernel_with(Scripted::default())
}

fn kernel_with(engine: Scripted) -> (Arc<Kernel>, OutboxReceivers) {
    let (outbox, receivers) = Outbox::channels();
    let kernel = Kernel::with_engine(
        outbox,
        Registry::everyday(),
        "test".into(),
        Box::new(engine),
    );
    (kernel, receivers)
}

fn execute(code: &str) -> WireMessage {
    WireMessage::new(
        "execute_request",
        "client",
        None,
        json!({"code": code, "stop_on_error": true}),
    )
}

/// Serves `requests` (each with its arrival time) to the end; returns the shell replies' contents
/// and the iopub messages as (type, content).
fn serve(
    kernel: &Kernel,
    receivers: &mut OutboxReceivers,
    requests: Vec<(Instant, WireMessage)>,
) -> (Vec<Value>, Vec<(String, Value)>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    for r in requests {
        tx.send(r).unwrap();
    }
    drop(tx);
    kernel.serve_shell_with(rx, History::open(None));
    let mut replies = Vec::new();
    while let Ok(reply) = receivers.shell.try_recv() {
        replies.push(reply.content);
    }
    let mut iopub = Vec::new();
    while let Ok(m) = receivers.iopub.try_recv() {
        iopub.push((m.msg_type, m.content));
    }
    (replies, iopub)
}

#[test]
fn a_failed_execution_aborts_those_queued_before_its_reply_only() {
    let (kernel, mut receivers) = kernel();
    let now = Instant::now();
    let later = now + Duration::from_secs(3600);
    let (replies, _) = serve(
        &kernel,
        &mut receivers,
        vec![
            (now, execute("1")),
            (now, execute("fail")),
            (now, execute("2")),
            (later, execute("3")),
        ],
    );
    let statuses: Vec<&str> = replies
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["ok", "error", "aborted", "ok"]);
    let counts: Vec<u64> = replies
        .iter()
        .map(|r| r["execution_count"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [1, 2, 2, 3], "an aborted cell takes no count");
}

#[test]
fn every_request_is_wrapped_in_busy_and_idle() {
    let (kernel, mut receivers) = kernel();
    let (_, iopub) = serve(
        &kernel,
        &mut receivers,
        vec![(Instant::now(), execute("7"))],
    );
    let types: Vec<&str> = iopub.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        ["status", "execute_input", "execute_result", "status"]
    );
    assert_eq!(iopub[0].1["execution_state"], "busy");
    assert_eq!(iopub[3].1["execution_state"], "idle");
}

#[test]
fn history_keeps_inputs_and_results() {
    let (kernel, mut receivers) = kernel();
    let history = WireMessage::new(
        "history_request",
        "client",
        None,
        json!({"hist_access_type": "tail", "n": 5, "output": true}),
    );
    let now = Instant::now();
    let (replies, _) = serve(
        &kernel,
        &mut receivers,
        vec![(now, execute("40")), (now, execute("fail")), (now, history)],
    );
    let entries = replies[2]["history"].as_array().unwrap();
    let inputs: Vec<&Value> = entries.iter().map(|e| &e[2]).collect();
    assert_eq!(inputs, [&json!(["40", "40"]), &json!(["fail", null])]);
}

#[test]
fn a_panic_becomes_the_error_and_its_backtrace_the_traceback() {
    let (kernel, mut receivers) = kernel();
    let (replies, iopub) = serve(
        &kernel,
        &mut receivers,
        vec![(Instant::now(), execute("panic"))],
    );
    assert_eq!(replies[0]["status"], "error");
    assert_eq!(replies[0]["ename"], "Panic");
    assert_eq!(replies[0]["evalue"], "boom");
    let traceback = replies[0]["traceback"].to_string();
    assert!(traceback.contains("panicked at src/lib.rs") && traceback.contains("RUST_BACKTRACE"));
    let streams: Vec<&Value> = iopub
        .iter()
        .filter(|(t, _)| t == "stream")
        .map(|(_, c)| &c["text"])
        .collect();
    assert_eq!(
        streams,
        [&json!("printed before\n")],
        "the panic's lines (and the blank line before them) are not on stderr"
    );
}

/// An execute_request from the frontend `identity` that says whether it accepts input.
fn execute_from(identity: &[u8], code: &str, allow_stdin: bool) -> WireMessage {
    let mut request = WireMessage::new(
        "execute_request",
        "client",
        None,
        json!({"code": code, "allow_stdin": allow_stdin}),
    );
    request.identities = vec![identity.to_vec()];
    request
}

#[test]
fn a_cell_asks_its_frontend_for_input_and_gets_the_answer() {
    let (kernel, mut receivers) = kernel();
    let request = execute_from(b"frontend-7", "input Name: ", true);
    let frontend = {
        let kernel = kernel.clone();
        let mut stdin = std::mem::replace(
            &mut receivers.stdin,
            tokio::sync::mpsc::unbounded_channel().1,
        );
        std::thread::spawn(move || {
            let asked = stdin.blocking_recv().expect("an input_request");
            let reply = WireMessage::new(
                "input_reply",
                "client",
                Some(asked.header.clone()),
                json!({"value": "Ada"}),
            );
            kernel.on_stdin(reply);
            asked
        })
    };
    let (replies, iopub) = serve(
        &kernel,
        &mut receivers,
        vec![(Instant::now(), request.clone())],
    );
    let asked = frontend.join().unwrap();
    assert_eq!(asked.header.msg_type, "input_request");
    assert_eq!(
        asked.identities, request.identities,
        "to the execution's sender"
    );
    assert_eq!(asked.parent_header.as_ref(), Some(&request.header));
    assert_eq!(
        asked.content,
        json!({"prompt": "Name: ", "password": false})
    );
    assert_eq!(replies[0]["status"], "ok");
    let result = iopub.iter().find(|(t, _)| t == "execute_result").unwrap();
    assert_eq!(result.1["data"]["text/plain"], "Ada");
}

#[test]
fn a_client_that_takes_no_input_gets_an_error_and_no_request() {
    let (kernel, mut receivers) = kernel();
    let now = Instant::now();
    let (replies, _) = serve(
        &kernel,
        &mut receivers,
        vec![
            (now, execute_from(b"nbclient", "input Name: ", false)),
            (now + Duration::from_secs(1), execute("7")),
        ],
    );
    assert_eq!(replies[0]["status"], "error");
    assert_eq!(replies[0]["ename"], "StdinNotImplementedError");
    assert!(replies[0]["evalue"]
        .as_str()
        .unwrap()
        .contains("allow_stdin"));
    assert!(receivers.stdin.try_recv().is_err(), "nothing was asked");
    assert_eq!(replies[1]["status"], "ok", "the next cell runs");
}

#[test]
fn an_interrupt_while_waiting_for_input_stops_that_cell_and_not_the_next() {
    let interrupts = Arc::new(InterruptLog::default());
    let (kernel, mut receivers) = kernel_with(Scripted {
        interrupts: interrupts.clone(),
    });
    let mut stdin = std::mem::replace(
        &mut receivers.stdin,
        tokio::sync::mpsc::unbounded_channel().1,
    );
    let interrupter = {
        let kernel = kernel.clone();
        std::thread::spawn(move || {
            stdin.blocking_recv().expect("an input_request");
            // The waiting cell ends as soon as it sees the flag, before this call returns.
            kernel.interrupt();
        })
    };
    let now = Instant::now();
    let (replies, _) = serve(
        &kernel,
        &mut receivers,
        vec![
            (now, execute_from(b"frontend", "input never answered", true)),
            (now + Duration::from_secs(1), execute("7")),
        ],
    );
    interrupter.join().unwrap();
    assert_eq!(replies[0]["ename"], "KeyboardInterrupt");
    assert_eq!(replies[1]["status"], "ok");
    assert_eq!(
        interrupts.started_during_interrupt.load(SeqCst),
        0,
        "the next cell started only once the interrupt had been handled"
    );
}
