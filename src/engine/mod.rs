//! The Rust engine: evcxr behind a small interface. The only module that knows evcxr.
//!
//! evcxr's `CommandContext` lives on a thread of its own ([`thread`]). The kernel talks to it
//! through the [`RustEngine`] trait, which [`Engine`] implements: each call sends a job and
//! waits for the answer, forwarding the cell's stdout ([`stdout`] reads its markers) and stderr
//! as they arrive. The [`Interrupter`] ([`interrupt`]) stops a cell from another thread: it
//! kills cargo and rustc while a cell compiles (every variable survives) or evcxr's runtime
//! child while the cell runs (evcxr restarts it; variables are lost, and the kernel says
//! which). [`settings`] reads the environment, [`prelude`] is the code every session starts with
//! and the state of its value display.
//!
//! Input: a cell that calls `evcxr_input::get_string(prompt)` (or `get_password`) makes the
//! runtime child print evcxr's `EVCXR_INPUT_REQUEST:prompt` line; evcxr, on the engine thread,
//! asks our callback for the answer, which sends an [`InputAsk`](thread::InputAsk) to the
//! waiting [`Engine::execute`]; that asks the frontend through the cell's [`CellInput`] and
//! hands the answer back, which evcxr writes to the child's stdin.

mod build_log;
mod interrupt;
mod is_complete;
mod prelude;
mod primer;
pub mod relay;
mod report;
mod settings;
mod stdout;
mod text_twin;
mod thread;

use std::time::Duration;

use crossbeam_channel::{select, unbounded, Receiver, Sender};

pub use interrupt::{Interrupter, Stopped};
pub use is_complete::{ends_with_semicolon, is_complete, Completeness};
pub use settings::drop_empty_build_dir_setting;

use crate::cell::{CellInput, ErrorReport, InputError, StreamName};
use crate::display::Bundle;
use interrupt::ClearOnDrop;
use stdout::StdoutParser;
use thread::{engine_thread, EngineOutputs, InputAsk, Job};

/// What the kernel needs of a Rust engine: run a cell, complete, inspect, interrupt. [`Engine`]
/// is evcxr; the kernel's unit tests use a scripted one, so that its logic (stop_on_error,
/// history, panics) is tested without compiling Rust.
pub trait RustEngine: Send + Sync {
    /// Runs Rust code (evcxr `:` commands included), calling `on_event` for output as it comes.
    ///
    /// When the cell asks for input, the engine asks `input`; when that gives no answer (the
    /// client accepts no input, or an interrupt), the cell is stopped and its error says why.
    fn execute(
        &self,
        code: &str,
        input: &CellInput,
        on_event: &mut dyn FnMut(CellEvent),
    ) -> Result<CellValue, ErrorReport>;
    /// Completions at byte offset `pos`.
    fn complete(&self, code: &str, pos: usize) -> Result<Completions, ErrorReport>;
    /// Documentation of what is at byte offset `pos`: `(plain text, html)`.
    fn inspect(&self, code: &str, pos: usize) -> Result<Option<(String, String)>, ErrorReport>;
    /// Stops the compilation or run of the current cell (`cell_running`: an execution is being
    /// handled); called from another thread while [`RustEngine::execute`] runs.
    fn interrupt(&self, cell_running: bool) -> Stopped;
}

/// What a finished cell gives back.
#[derive(Debug, Default)]
pub struct CellValue {
    /// The value of the trailing expression and evcxr rich content (`EVCXR_BEGIN_CONTENT`), if any.
    pub result: Option<Bundle>,
    /// With evcxr's `:timing` on: `took 171 ms (final compile 150 ms, execution 3 ms)`.
    pub timing: Option<String>,
}

/// Something the running cell produced before it finished.
#[derive(Debug)]
pub enum CellEvent {
    /// Text on stdout or stderr.
    Stream(StreamName, String),
    /// A `jupyter::display(...)` call: show this bundle now.
    Display(Bundle),
    /// A `jupyter::clear_output(wait)` call.
    ClearOutput {
        /// Clear only when the next output arrives.
        wait: bool,
    },
}

/// Completions for the code at a cursor (byte offsets into the code).
#[derive(Debug, Default)]
pub struct Completions {
    /// The candidate texts.
    pub matches: Vec<String>,
    /// Their kinds (`function`, `class`, …), for JupyterLab's icons.
    pub kinds: Vec<String>,
    /// Byte offset where the replaced text starts.
    pub start: usize,
    /// Byte offset where it ends.
    pub end: usize,
}

/// Handle to the engine thread. Calls block until the engine answers.
pub struct Engine {
    jobs: Sender<Job>,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    /// cargo's progress lines while a cell's dependencies build (never, if fd 2 could not be captured).
    build_progress: Receiver<String>,
    /// The running cell's requests for input, from evcxr's callback on the engine thread.
    input_asks: Receiver<InputAsk>,
    interrupter: Interrupter,
}

impl Engine {
    /// Starts the engine thread; evcxr's context is created there, in the background, so that
    /// the kernel can answer `kernel_info` at once. The first call waits for it.
    pub fn start() -> Engine {
        let (jobs, job_rx) = unbounded::<Job>();
        let (out_tx, stdout) = unbounded();
        let (err_tx, stderr) = unbounded();
        let (asks_tx, input_asks) = unbounded();
        let interrupter = Interrupter::default();
        let child_slot = interrupter.child.clone();
        let outputs = EngineOutputs {
            stdout: out_tx,
            stderr: err_tx,
            input_asks: asks_tx,
        };
        std::thread::Builder::new()
            .name("evcxr".into())
            .spawn(move || engine_thread(job_rx, outputs, child_slot))
            .expect("spawn the engine thread");
        let build_progress = build_log::capture().unwrap_or_else(crossbeam_channel::never);
        Engine {
            jobs,
            stdout,
            stderr,
            build_progress,
            input_asks,
            interrupter,
        }
    }

    fn send(&self, job: Job) -> Result<(), ErrorReport> {
        self.jobs.send(job).map_err(|_| engine_gone())
    }
}

impl RustEngine for Engine {
    fn execute(
        &self,
        code: &str,
        input: &CellInput,
        on_event: &mut dyn FnMut(CellEvent),
    ) -> Result<CellValue, ErrorReport> {
        let running = &self.interrupter.running_rust;
        running.store(true, std::sync::atomic::Ordering::SeqCst);
        let _running = ClearOnDrop(running);
        // Progress lines from before this cell (the engine's own warm-up) are not the cell's,
        // nor is a request for input that an earlier cell left behind.
        while self.build_progress.try_recv().is_ok() {}
        while self.input_asks.try_recv().is_ok() {}
        // Why the cell was stopped while it asked for input, if it was.
        let mut unanswered: Option<InputError> = None;
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.send(Job::Execute {
            code: code.to_owned(),
            reply,
        })?;
        let mut stdout = StdoutParser::default();
        let mut handle_stdout = |line: String, on_event: &mut dyn FnMut(CellEvent)| {
            if let Some(event) = stdout.line(line) {
                on_event(event);
            }
        };
        // Whether the last stderr line was the child's sync mark, which it writes just before it
        // says that the run is complete: it often arrives before evcxr's answer.
        let mut stderr_synced = false;
        let result = loop {
            select! {
                recv(self.stdout) -> line => if let Ok(line) = line { handle_stdout(line, on_event) },
                recv(self.stderr) -> line => if let Ok(line) = line {
                    stderr_synced = handle_stderr(line, on_event) == StderrLine::Sync;
                },
                recv(self.build_progress) -> line => if let Ok(line) = line { on_event(CellEvent::Stream(StreamName::Stderr, line)) },
                recv(self.input_asks) -> ask => if let Ok(ask) = ask {
                    // Every line the cell printed before it asked has reached `self.stdout`
                    // (the engine thread saw to that): show it above the input box.
                    while let Ok(line) = self.stdout.try_recv() {
                        handle_stdout(line, on_event);
                    }
                    match input.request(&ask.prompt, ask.password) {
                        Ok(value) => {
                            let _ = ask.answer.send(value);
                        }
                        Err(e) => {
                            // Stopped before evcxr is released, so that the child never reads
                            // an answer that the person did not give.
                            self.interrupter.stop_runtime();
                            unanswered = Some(e);
                            drop(ask);
                        }
                    }
                },
                recv(answer) -> result => break result.unwrap_or_else(|_| Err(engine_gone())),
            }
        };
        let result = match unanswered {
            Some(e) => Err(unanswered_report(e, result)),
            None => result,
        };
        // Everything the cell printed reached evcxr's channels before it answered, except stderr,
        // which evcxr reads on another thread: wait for the child's sync line that follows the
        // cell's stderr (unless it came already), or for a moment of quiet when the cell never
        // ran in the child.
        while let Ok(line) = self.stdout.try_recv() {
            handle_stdout(line, on_event);
        }
        while !stderr_synced {
            match self.stderr.recv_timeout(STDERR_QUIET) {
                Ok(line) => stderr_synced = handle_stderr(line, on_event) == StderrLine::Sync,
                Err(_) => break,
            }
        }
        // Code that ends with `;` has no value: content it printed last is a display, not one.
        match result {
            Ok(CellValue {
                result: Some(bundle),
                timing,
            }) if ends_with_semicolon(code) => {
                on_event(CellEvent::Display(bundle));
                Ok(CellValue {
                    result: None,
                    timing,
                })
            }
            other => other,
        }
    }

    fn complete(&self, code: &str, pos: usize) -> Result<Completions, ErrorReport> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.send(Job::Complete {
            code: code.to_owned(),
            pos,
            reply,
        })?;
        answer.recv().unwrap_or_else(|_| Err(engine_gone()))
    }

    fn inspect(&self, code: &str, pos: usize) -> Result<Option<(String, String)>, ErrorReport> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.send(Job::Inspect {
            code: code.to_owned(),
            pos,
            reply,
        })?;
        answer.recv().unwrap_or_else(|_| Err(engine_gone()))
    }

    fn interrupt(&self, cell_running: bool) -> Stopped {
        self.interrupter.interrupt(cell_running)
    }
}

/// How long stderr must stay quiet after a cell that did not run in the child (a compile error,
/// an evcxr `:` command) before the cell counts as finished.
const STDERR_QUIET: Duration = Duration::from_millis(15);

/// What a line of the child's stderr was.
#[derive(Debug, PartialEq, Eq)]
enum StderrLine {
    /// Output of the cell.
    Output,
    /// The relay's [`relay::STDERR_SYNC`]: all of the run's stderr came before it.
    Sync,
}

/// Passes a line of the child's stderr on as output, the sync mark's partial line included.
fn handle_stderr(line: String, on_event: &mut dyn FnMut(CellEvent)) -> StderrLine {
    match line.strip_suffix(relay::STDERR_SYNC) {
        Some(partial) => {
            if !partial.is_empty() {
                on_event(CellEvent::Stream(StreamName::Stderr, partial.to_owned()));
            }
            StderrLine::Sync
        }
        None => {
            on_event(CellEvent::Stream(StreamName::Stderr, line + "\n"));
            StderrLine::Output
        }
    }
}

/// The error of a cell that was stopped while it waited for input, because of `why`; `result`
/// is what evcxr answered after its runtime child was stopped (which variables died with it).
///
/// `evcxr_input` reads the answer from the child's stdin and turns every failure to read into
/// an empty string, so the cell itself cannot be told "no answer": the only way not to let it
/// go on with an empty string that nobody typed is to stop the runtime child, as an interrupt
/// does (evcxr starts a new one; functions, types and `use`s are kept, variables are lost, and
/// the error names them).
fn unanswered_report(why: InputError, result: Result<CellValue, ErrorReport>) -> ErrorReport {
    let lost = match result {
        Err(ErrorReport {
            lost_variables: Some(lost),
            ..
        }) => lost,
        _ => Vec::new(),
    };
    let mut report = ErrorReport::new(
        why.ename(),
        format!(
            "{why}; the cell was stopped, {}",
            lost_variables_sentence(&lost)
        ),
    );
    report.lost_variables = Some(lost);
    report
}

/// "variables lost: a, b (functions, types and `use`s are kept)" or "no variables were lost".
pub fn lost_variables_sentence(lost: &[String]) -> String {
    if lost.is_empty() {
        "no variables were lost".to_owned()
    } else {
        format!(
            "variables lost: {} (functions, types and `use`s are kept)",
            lost.join(", ")
        )
    }
}

fn engine_gone() -> ErrorReport {
    ErrorReport::new("EngineError", "the Rust engine stopped; restart the kernel")
}
