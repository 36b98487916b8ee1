//! The engine thread: evcxr's `CommandContext` lives here (its creation compiles, and every
//! cell compiles and runs here); the [`Engine`](super::Engine) handle sends it [`Job`]s.

use std::sync::{Arc, Mutex};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::prelude::{prelude_code, run_prelude, switch_display, FormatChange, ValueFormat};
use super::relay::decode_prompt;
use super::settings::{turn_on_dependency_cache, ProcessEnv};
use super::text_twin::with_text_twin;
use super::{lost_variables_sentence, CellValue, Completions};
use crate::cell::ErrorReport;
use crate::display::Bundle;

/// Where a job's answer goes.
pub(super) type Reply<T> = Sender<Result<T, ErrorReport>>;

/// A call on the engine thread, with the channel for its answer.
pub(super) enum Job {
    Execute {
        code: String,
        reply: Reply<CellValue>,
    },
    Complete {
        code: String,
        pos: usize,
        reply: Reply<Completions>,
    },
    Inspect {
        code: String,
        pos: usize,
        reply: Reply<Option<(String, String)>>,
    },
}

/// A running cell's request for input, from evcxr's callback on the engine thread to
/// [`Engine::execute`](super::Engine) on the shell thread.
pub(super) struct InputAsk {
    /// The prompt the cell gave.
    pub(super) prompt: String,
    /// Whether to ask in a password box.
    pub(super) password: bool,
    /// Where the answer goes; dropped without one when the cell is being stopped instead.
    pub(super) answer: Sender<String>,
}

/// Where the engine thread sends what the cells produce.
pub(super) struct EngineOutputs {
    /// Lines of the runtime child's stdout.
    pub(super) stdout: Sender<String>,
    /// Lines of its stderr.
    pub(super) stderr: Sender<String>,
    /// Requests for input.
    pub(super) input_asks: Sender<InputAsk>,
}

/// The engine thread: creates evcxr's context, runs the prelude, then serves jobs until the
/// [`Engine`](super::Engine) is dropped, priming rust-analyzer while no job waits.
pub(super) fn engine_thread(
    jobs: Receiver<Job>,
    outputs_to: EngineOutputs,
    child_slot: Arc<Mutex<Option<Arc<Mutex<std::process::Child>>>>>,
) {
    // Taken before evcxr spawns its runtime child, which inherits exactly this state.
    let mut process_env = ProcessEnv::now();
    let started = std::time::Instant::now();
    let mut value_format = ValueFormat::default();
    // evcxr compiles something to create its context; the prelude instead of its `42` (patched
    // evcxr, vendor/evcxr/PATCHES.md) saves a compilation before the first cell. Should the
    // prelude not compile on this machine, the context is created as usual and the prelude's
    // warning logged.
    let created = evcxr::CommandContext::with_initial_code(&prelude_code()).or_else(|e| {
        tracing::warn!("the prelude did not compile as evcxr's first code: {e}");
        evcxr::CommandContext::new().map(|(mut ctx, outputs)| {
            run_prelude(&mut ctx, &value_format);
            (ctx, outputs)
        })
    });
    tracing::info!(
        "evcxr's context and prelude ready in {:?}",
        started.elapsed()
    );
    let (mut ctx, outputs) = match created {
        Ok(pair) => pair,
        Err(e) => {
            let error = ErrorReport::new("EngineError", format!("evcxr could not start: {e}"));
            tracing::error!("{}", error.evalue);
            for job in jobs {
                fail(job, error.clone());
            }
            return;
        }
    };
    *child_slot.lock().expect("interrupter lock") = Some(ctx.process_handle());
    let stdout = StdoutForward::start(outputs.stdout, outputs_to.stdout);
    forward(outputs.stderr, outputs_to.stderr);
    let asks = outputs_to.input_asks;
    turn_on_dependency_cache(&mut ctx);
    tracing::info!("engine ready {:?} after start", started.elapsed());
    let mut primer = super::primer::Primer::default();
    loop {
        let next = match primer.idle_before_next() {
            Some(idle) => jobs.recv_timeout(idle),
            None => jobs.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let job = match next {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => {
                primer.step(&mut ctx);
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        primer.request_handled();
        match job {
            Job::Execute { code, reply } => {
                process_env.sync_child(&mut ctx);
                let result = execute(&mut ctx, &code, &|prompt, password| {
                    ask_for_input(prompt, password, &stdout, &asks)
                });
                match value_format.observe(&code) {
                    Some(FormatChange::Cleared) => run_prelude(&mut ctx, &value_format),
                    Some(FormatChange::Default(default)) => switch_display(&mut ctx, default),
                    None => {}
                }
                let _ = reply.send(result);
            }
            Job::Complete { code, pos, reply } => {
                let result = ctx
                    .completions(&code, pos)
                    .map_err(|e| ErrorReport::new("CompletionError", e.to_string()));
                let _ = reply.send(result.map(|c| Completions {
                    kinds: c.completions.iter().map(|x| x.kind.to_owned()).collect(),
                    matches: c.completions.into_iter().map(|x| x.code).collect(),
                    start: c.start_offset,
                    end: c.end_offset,
                }));
            }
            Job::Inspect { code, pos, reply } => {
                let result = match ctx.hover_at(&code, pos) {
                    Ok((plain, _)) if plain.trim().is_empty() => Ok(None),
                    Ok(found) => Ok(Some(found)),
                    Err(e) => Err(ErrorReport::new("InspectError", e.to_string())),
                };
                let _ = reply.send(result);
            }
        }
    }
}

/// evcxr's `input_reader`: asks the shell thread for the answer to the request for input
/// (evcxr's `prompt`, encoded by the relay) once the lines printed before it have been
/// forwarded, and waits. An empty answer when there is none: then the runtime child has been
/// stopped already, and the answer is never read.
fn ask_for_input(
    prompt: &str,
    password: bool,
    stdout: &StdoutForward,
    asks: &Sender<InputAsk>,
) -> String {
    stdout.flush();
    let (answer, answered) = crossbeam_channel::bounded(1);
    let ask = InputAsk {
        prompt: decode_prompt(prompt),
        password,
        answer,
    };
    if asks.send(ask).is_err() {
        return String::new();
    }
    // evcxr writes the answer as one line to the child's stdin, where the next line would be
    // taken for a command of evcxr's: only the first line is the answer.
    let value = answered.recv().unwrap_or_default();
    value.lines().next().unwrap_or_default().to_owned()
}

/// Moves evcxr's stdout lines to ours on a thread of its own, and on request confirms that
/// every line evcxr had sent before has been moved.
struct StdoutForward {
    flushes: Sender<Sender<()>>,
}

impl StdoutForward {
    fn start(from: Receiver<String>, to: Sender<String>) -> StdoutForward {
        let (flushes, flush_requests) = crossbeam_channel::unbounded::<Sender<()>>();
        std::thread::spawn(move || loop {
            crossbeam_channel::select! {
                recv(from) -> line => match line {
                    Ok(line) => if to.send(line).is_err() { break },
                    Err(_) => break,
                },
                recv(flush_requests) -> done => {
                    let Ok(done) = done else { break };
                    while let Ok(line) = from.try_recv() {
                        let _ = to.send(line);
                    }
                    let _ = done.send(());
                }
            }
        });
        StdoutForward { flushes }
    }

    /// Returns once every line evcxr sent before this call is on our channel.
    fn flush(&self) {
        let (done, confirmed) = crossbeam_channel::bounded(1);
        if self.flushes.send(done).is_ok() {
            let _ = confirmed.recv();
        }
    }
}

/// Moves lines from evcxr's channel to ours (so that `Engine` owns receivers from the start,
/// before the context exists).
fn forward(from: Receiver<String>, to: Sender<String>) {
    std::thread::spawn(move || {
        for line in from {
            if to.send(line).is_err() {
                break;
            }
        }
    });
}

fn fail(job: Job, error: ErrorReport) {
    match job {
        Job::Execute { reply, .. } => drop(reply.send(Err(error))),
        Job::Complete { reply, .. } => drop(reply.send(Err(error))),
        Job::Inspect { reply, .. } => drop(reply.send(Err(error))),
    }
}

/// The names of the variables that persist between cells, except the prelude's own.
fn user_variables(ctx: &evcxr::CommandContext) -> Vec<String> {
    ctx.variables_and_types()
        .map(|(name, _)| name)
        .filter(|name| *name != super::prelude::WARM_VARIABLE)
        .map(str::to_owned)
        .collect()
}

/// "took 171 ms (final compile 150 ms, execution 3 ms)", when evcxr's `:timing` is on.
fn timing_sentence(outputs: &evcxr::EvalOutputs) -> Option<String> {
    let mut sentence = format!("took {} ms", outputs.timing?.as_millis());
    if !outputs.phases.is_empty() {
        let parts: Vec<String> = outputs
            .phases
            .iter()
            .map(|p| format!("{} {} ms", p.name.to_lowercase(), p.duration.as_millis()))
            .collect();
        sentence.push_str(&format!(" ({})", parts.join(", ")));
    }
    Some(sentence)
}

/// Runs a cell; `ask(prompt, password)` answers its requests for input.
fn execute(
    ctx: &mut evcxr::CommandContext,
    code: &str,
    ask: &dyn Fn(&str, bool) -> String,
) -> Result<CellValue, ErrorReport> {
    let before = user_variables(ctx);
    // evcxr does not export the type of its input requests; the closure's argument is inferred.
    let callbacks = &mut evcxr::EvalCallbacks {
        input_reader: &|request| ask(&request.prompt, request.is_password),
    };
    match ctx.execute_with_callbacks(code, callbacks) {
        Ok(outputs) => {
            let timing = timing_sentence(&outputs);
            if outputs.content_by_mime_type.is_empty() {
                return Ok(CellValue {
                    result: None,
                    timing,
                });
            }
            let mut bundle = Bundle::default();
            for (mime, content) in outputs.content_by_mime_type {
                bundle.data.insert(mime, content.into());
            }
            Ok(CellValue {
                result: Some(with_text_twin(bundle)),
                timing,
            })
        }
        Err(evcxr::Error::CompilationErrors(errors)) => {
            let rendered: Vec<String> = errors
                .iter()
                .map(|e| super::report::render_compile_error(e, code))
                .collect();
            let first = errors.first().map(|e| e.message()).unwrap_or_default();
            let mut report = ErrorReport::new("CompileError", first);
            report.traceback = rendered;
            Err(report)
        }
        Err(evcxr::Error::SubprocessTerminated(message)) => {
            let after = user_variables(ctx);
            let lost: Vec<String> = before.into_iter().filter(|v| !after.contains(v)).collect();
            let mut report = ErrorReport::new(
                "ProcessTerminated",
                format!("{}; {}", message.trim(), lost_variables_sentence(&lost)),
            );
            report.lost_variables = Some(lost);
            Err(report)
        }
        Err(evcxr::Error::TypeRedefinedVariablesLost(vars)) => Err(ErrorReport::new(
            "VariablesLost",
            format!(
                "a type was redefined; these variables were lost: {}",
                vars.join(", ")
            ),
        )),
        Err(e) => Err(ErrorReport::new("EvcxrError", e.to_string())),
    }
}
