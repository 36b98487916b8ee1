//! The Rust engine: evcxr behind a small interface. The only module that knows evcxr.
//!
//! evcxr's `CommandContext` lives on a thread of its own (its creation compiles, and every cell
//! compiles and runs there). The kernel talks to it through [`Engine`]: each call sends a job
//! and waits for the answer, forwarding the cell's stdout and stderr as they arrive.
//! [`Interrupter`] stops a cell from another thread: it kills cargo and rustc while a cell
//! compiles (every variable survives) or evcxr's runtime child while the cell runs (evcxr
//! restarts it; variables are lost, and the kernel says which).

mod build_log;
mod is_complete;
mod prelude;
mod primer;
pub mod relay;
mod report;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{select, unbounded, Receiver, RecvTimeoutError, Sender};

pub use is_complete::{ends_with_semicolon, is_complete, Completeness};

use crate::cell::{ErrorReport, StreamName};
use crate::display::Bundle;

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

type Reply<T> = Sender<Result<T, ErrorReport>>;

enum Job {
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

/// Handle to the engine thread. Calls block until the engine answers.
pub struct Engine {
    jobs: Sender<Job>,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    /// cargo's progress lines while a cell's dependencies build (never, if fd 2 could not be captured).
    build_progress: Receiver<String>,
    interrupter: Interrupter,
}

/// Stops the current cell from any thread (see the module docs).
#[derive(Clone, Default)]
pub struct Interrupter {
    /// evcxr's handle on its runtime child, once the context exists.
    child: Arc<Mutex<Option<Arc<Mutex<std::process::Child>>>>>,
    /// Whether the engine runs Rust now (a magic such as `%%python` or `%%bash` may run instead;
    /// it stops its own processes, and the Rust variables must survive its interrupt).
    running_rust: Arc<std::sync::atomic::AtomicBool>,
}

/// What an interrupt stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// cargo/rustc were killed: the cell did not run, every variable is kept.
    Compilation,
    /// The runtime child was killed while the cell ran.
    Execution,
    /// Nothing was compiling or running.
    Nothing,
}

impl Interrupter {
    /// Kills the compilation if one runs, otherwise the runtime child if `cell_running`.
    pub fn interrupt(&self, cell_running: bool) -> Stopped {
        if !cell_running || !self.running_rust.load(std::sync::atomic::Ordering::SeqCst) {
            return Stopped::Nothing;
        }
        let child = self.child.lock().expect("interrupter lock").clone();
        let runtime_pid = child.as_ref().map(|c| c.lock().expect("child lock").id());
        let compilers = compiler_processes(runtime_pid);
        if !compilers.is_empty() {
            for pid in compilers {
                // SAFETY: kill(2) on a descendant of ours; no memory is touched.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            return Stopped::Compilation;
        }
        match child {
            Some(child) => {
                let _ = child.lock().expect("child lock").kill();
                Stopped::Execution
            }
            None => Stopped::Nothing,
        }
    }
}

/// Clears a flag when dropped, whichever way the function that holds it returns.
struct ClearOnDrop<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The cargo processes evcxr started and everything below them (rustc, linkers); never the
/// runtime child, nor other children of the kernel (the `%%python` kernel, `%%bash`, mpirun).
fn compiler_processes(runtime_pid: Option<u32>) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut parents = std::collections::HashMap::new();
    let mut cargo = std::collections::HashSet::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // The command name is in parentheses and may hold spaces; the ppid follows the state.
            let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
                continue;
            };
            if let Some(ppid) = after.split(' ').nth(1).and_then(|s| s.parse::<i32>().ok()) {
                parents.insert(pid, ppid);
            }
            if stat.contains("(cargo)") {
                cargo.insert(pid);
            }
        }
    }
    let excluded = runtime_pid.map(|p| p as i32);
    parents
        .keys()
        .copied()
        .filter(|&pid| {
            let mut p = pid;
            for _ in 0..64 {
                if Some(p) == excluded {
                    return false;
                }
                match parents.get(&p) {
                    Some(&parent) if parent == me => return cargo.contains(&p),
                    Some(&parent) => p = parent,
                    None => return false,
                }
            }
            false
        })
        .collect()
}

impl Engine {
    /// Starts the engine thread; evcxr's context is created there, in the background, so that
    /// the kernel can answer `kernel_info` at once. The first call waits for it.
    pub fn start() -> Engine {
        let (jobs, job_rx) = unbounded::<Job>();
        let (out_tx, stdout) = unbounded();
        let (err_tx, stderr) = unbounded();
        let interrupter = Interrupter::default();
        let child_slot = interrupter.child.clone();
        std::thread::Builder::new()
            .name("evcxr".into())
            .spawn(move || engine_thread(job_rx, out_tx, err_tx, child_slot))
            .expect("spawn the engine thread");
        let build_progress = build_log::capture().unwrap_or_else(crossbeam_channel::never);
        Engine {
            jobs,
            stdout,
            stderr,
            build_progress,
            interrupter,
        }
    }

    /// A handle that can stop the running cell from another thread.
    pub fn interrupter(&self) -> Interrupter {
        self.interrupter.clone()
    }

    /// Runs Rust code (evcxr `:` commands included), calling `on_event` for output as it comes.
    pub fn execute(
        &self,
        code: &str,
        on_event: &mut dyn FnMut(CellEvent),
    ) -> Result<CellValue, ErrorReport> {
        let running = &self.interrupter.running_rust;
        running.store(true, std::sync::atomic::Ordering::SeqCst);
        let _running = ClearOnDrop(running);
        // Progress lines from before this cell (the engine's own warm-up) are not the cell's.
        while self.build_progress.try_recv().is_ok() {}
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.send(Job::Execute {
            code: code.to_owned(),
            reply,
        })?;
        let mut display: Option<(String, usize, Vec<String>)> = None;
        let mut handle_stdout = |line: String, on_event: &mut dyn FnMut(CellEvent)| {
            if let Some((mime, left, lines)) = &mut display {
                lines.push(line);
                *left -= 1;
                if *left == 0 {
                    let bundle = Bundle::default().with(mime, lines.join("\n"));
                    on_event(CellEvent::Display(with_text_twin(bundle)));
                    display = None;
                }
                return;
            }
            if let Some(rest) = line
                .strip_prefix(prelude::DISPLAY_MARKER)
                .and_then(|r| r.strip_prefix(' '))
            {
                let mut parts = rest.rsplitn(2, ' ');
                let count = parts.next().and_then(|n| n.parse::<usize>().ok());
                if let (Some(count), Some(mime)) = (count, parts.next()) {
                    if count == 0 {
                        on_event(CellEvent::Display(with_text_twin(
                            Bundle::default().with(mime, ""),
                        )));
                    } else {
                        display = Some((mime.to_owned(), count, Vec::new()));
                    }
                    return;
                }
            }
            if let Some(bundle) = line
                .strip_prefix(relay::DISPLAY_BUNDLE)
                .and_then(|json| serde_json::from_str(json.trim()).ok())
            {
                on_event(CellEvent::Display(with_text_twin(Bundle {
                    data: bundle,
                    ..Bundle::default()
                })));
                return;
            }
            if let Some(when) = line.strip_prefix(prelude::CLEAR_MARKER).map(str::trim) {
                if when == "wait" || when == "now" {
                    on_event(CellEvent::ClearOutput {
                        wait: when == "wait",
                    });
                    return;
                }
            }
            let text = match line.strip_suffix(relay::PARTIAL_LINE) {
                Some(partial) => partial.to_owned(),
                None => line + "\n",
            };
            on_event(CellEvent::Stream(StreamName::Stdout, text));
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
                recv(answer) -> result => break result.unwrap_or_else(|_| Err(engine_gone())),
            }
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

    /// Completions at byte offset `pos`.
    pub fn complete(&self, code: &str, pos: usize) -> Result<Completions, ErrorReport> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.send(Job::Complete {
            code: code.to_owned(),
            pos,
            reply,
        })?;
        answer.recv().unwrap_or_else(|_| Err(engine_gone()))
    }

    /// Documentation of what is at byte offset `pos`: `(plain text, html)`.
    pub fn inspect(&self, code: &str, pos: usize) -> Result<Option<(String, String)>, ErrorReport> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.send(Job::Inspect {
            code: code.to_owned(),
            pos,
            reply,
        })?;
        answer.recv().unwrap_or_else(|_| Err(engine_gone()))
    }

    fn send(&self, job: Job) -> Result<(), ErrorReport> {
        self.jobs.send(job).map_err(|_| engine_gone())
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

/// Drops an empty `EVCXR_TMPDIR` from the environment: evcxr would take it for the current
/// directory (the notebook's) and overwrite the `Cargo.toml` and `src/lib.rs` there with its
/// own. Call it before any thread starts. Returns whether it dropped one.
pub fn drop_empty_build_dir_setting() -> bool {
    let empty = std::env::var_os(BUILD_DIR_VAR).is_some_and(|v| v.is_empty());
    if empty {
        std::env::remove_var(BUILD_DIR_VAR);
    }
    empty
}

/// The variable in which evcxr looks for a directory of its own to build cells in.
const BUILD_DIR_VAR: &str = "EVCXR_TMPDIR";

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

/// Adds a `text/plain` twin to a bundle that has none: the text of its HTML (tags dropped), or
/// else the names of its MIME types (`<image/png>`), so that consoles and `nbconvert --to
/// markdown` show something useful.
fn with_text_twin(mut bundle: Bundle) -> Bundle {
    if bundle.data.contains_key("text/plain") {
        return bundle;
    }
    let text = match bundle.data.get("text/html").and_then(|v| v.as_str()) {
        Some(html) if !text_of_html(html).is_empty() => text_of_html(html),
        _ => {
            let mimes: Vec<String> = bundle.data.keys().cloned().collect();
            format!("<{}>", mimes.join(", "))
        }
    };
    bundle.data.insert("text/plain".into(), text.into());
    bundle
}

/// The visible text of an HTML fragment, roughly: tags dropped, the common entities decoded,
/// runs of blank space made one space.
fn text_of_html(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn engine_thread(
    jobs: Receiver<Job>,
    out_tx: Sender<String>,
    err_tx: Sender<String>,
    child_slot: Arc<Mutex<Option<Arc<Mutex<std::process::Child>>>>>,
) {
    // Taken before evcxr spawns its runtime child, which inherits exactly this state.
    let mut process_env = ProcessEnv::now();
    let started = std::time::Instant::now();
    let created = evcxr::CommandContext::new();
    tracing::info!("evcxr's context created in {:?}", started.elapsed());
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
    forward(outputs.stdout, out_tx);
    forward(outputs.stderr, err_tx);
    turn_on_dependency_cache(&mut ctx);
    let mut value_format = ValueFormat::default();
    run_prelude(&mut ctx, &value_format);
    tracing::info!("engine ready {:?} after start", started.elapsed());
    let mut primer = primer::Primer::default();
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
                let result = execute(&mut ctx, &code);
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

/// The variable that sets the size of evcxr's cache of compiled `:dep` crates, in MiB.
const DEP_CACHE_VAR: &str = "RUST_CLUSTER_KERNEL_DEP_CACHE_MB";

/// The cache's size when [`DEP_CACHE_VAR`] does not say otherwise.
const DEP_CACHE_DEFAULT_MB: u64 = 1024;

/// The cache size that [`DEP_CACHE_VAR`]'s value asks for (`0` turns the cache off).
fn dep_cache_mb(setting: Option<&str>) -> Result<u64, String> {
    match setting.map(str::trim) {
        None | Some("") => Ok(DEP_CACHE_DEFAULT_MB),
        Some(value) => value.parse().map_err(|_| {
            format!("{DEP_CACHE_VAR}={value:?} is not a size in MiB; using {DEP_CACHE_DEFAULT_MB}")
        }),
    }
}

/// Turns on evcxr's cache of compiled dependencies (in `$XDG_CACHE_HOME/evcxr`, kept within
/// its size): a `:dep` crate built once is copied, not compiled, in later sessions (`:dep regex`
/// 11.5 s → 1.1 s here). It costs nothing per cell; `:cache 0` turns it off for a session.
fn turn_on_dependency_cache(ctx: &mut evcxr::CommandContext) {
    let mb = dep_cache_mb(std::env::var(DEP_CACHE_VAR).ok().as_deref()).unwrap_or_else(|e| {
        tracing::warn!("{e}");
        DEP_CACHE_DEFAULT_MB
    });
    if let Err(e) = ctx.execute(&format!(":cache {mb}")) {
        tracing::warn!("evcxr's dependency cache stays off: {e}");
    }
}

/// Evaluates the prelude (again after `:clear`, which removes every item).
fn run_prelude(ctx: &mut evcxr::CommandContext, format: &ValueFormat) {
    let code = format!("{}{}", prelude::DEBUG_DISPLAY_ON, prelude::PRELUDE);
    if let Err(e) = ctx.execute(&code) {
        tracing::warn!("the jupyter prelude did not compile: {e}");
    }
    if !format.is_default() {
        switch_display(ctx, false);
    }
}

/// Turns the prelude's one-compile display on or off (see [`ValueFormat`]).
fn switch_display(ctx: &mut evcxr::CommandContext, on: bool) {
    let module = if on {
        prelude::DEBUG_DISPLAY_ON
    } else {
        prelude::DEBUG_DISPLAY_OFF
    };
    if let Err(e) = ctx.execute(module) {
        tracing::warn!("could not switch the one-compile display: {e}");
    }
}

/// evcxr's `:fmt` and `:types` settings as the cells set them: the prelude's one-compile
/// display stands in for evcxr's own only while they ask for plain `{:?}`.
#[derive(Debug)]
struct ValueFormat {
    format: String,
    types: bool,
}

/// What a cell's evcxr commands did to the prelude.
#[derive(Debug, PartialEq, Eq)]
enum FormatChange {
    /// `:clear` removed the prelude with every other item (the settings survive it).
    Cleared,
    /// Whether the format is now evcxr's default, `{:?}` without types (it was not before).
    Default(bool),
}

impl Default for ValueFormat {
    fn default() -> Self {
        ValueFormat {
            format: "{:?}".to_owned(),
            types: false,
        }
    }
}

impl ValueFormat {
    fn is_default(&self) -> bool {
        self.format == "{:?}" && !self.types
    }

    /// Follows the `:fmt`, `:types` and `:clear` lines of a cell that ran.
    fn observe(&mut self, code: &str) -> Option<FormatChange> {
        let was_default = self.is_default();
        let mut cleared = false;
        for line in code.lines().map(str::trim) {
            let mut words = line.splitn(2, char::is_whitespace);
            match words.next() {
                Some(":fmt") => {
                    self.format = words.next().map(str::trim).unwrap_or("{:?}").to_owned();
                }
                Some(":types") => self.types = !self.types,
                Some(":clear") => cleared = true,
                _ => {}
            }
        }
        if cleared {
            return Some(FormatChange::Cleared);
        }
        (self.is_default() != was_default).then(|| FormatChange::Default(self.is_default()))
    }
}

/// The working directory and environment that evcxr's runtime child last saw. `%cd` and `%env`
/// change the kernel's own; before the next cell the child is brought up to date.
struct ProcessEnv {
    dir: Option<std::path::PathBuf>,
    vars: std::collections::BTreeMap<String, String>,
}

impl ProcessEnv {
    fn now() -> Self {
        ProcessEnv {
            dir: std::env::current_dir().ok(),
            vars: std::env::vars().collect(),
        }
    }

    /// Runs a hidden cell in the child that applies what changed since the last sync.
    fn sync_child(&mut self, ctx: &mut evcxr::CommandContext) {
        let now = ProcessEnv::now();
        let mut code = String::new();
        if now.dir != self.dir {
            if let Some(dir) = now.dir.as_ref().and_then(|d| d.to_str()) {
                code.push_str(&format!("let _ = std::env::set_current_dir({dir:?});\n"));
            }
        }
        for (name, value) in &now.vars {
            if self.vars.get(name) != Some(value) {
                code.push_str(&format!("#[allow(unused_unsafe)] unsafe {{ std::env::set_var({name:?}, {value:?}) }};\n"));
            }
        }
        for name in self.vars.keys().filter(|n| !now.vars.contains_key(*n)) {
            code.push_str(&format!(
                "#[allow(unused_unsafe)] unsafe {{ std::env::remove_var({name:?}) }};\n"
            ));
        }
        if !code.is_empty() {
            if let Err(e) = ctx.execute(&code) {
                tracing::warn!(
                    "could not bring the runtime's directory and environment up to date: {e}"
                );
            }
        }
        *self = now;
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
        .filter(|name| *name != prelude::WARM_VARIABLE)
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

fn execute(ctx: &mut evcxr::CommandContext, code: &str) -> Result<CellValue, ErrorReport> {
    let before = user_variables(ctx);
    match ctx.execute(code) {
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
                .map(|e| report::render_compile_error(e, code))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependency_cache_size_comes_from_the_environment() {
        assert_eq!(dep_cache_mb(None), Ok(DEP_CACHE_DEFAULT_MB));
        assert_eq!(dep_cache_mb(Some(" 256 ")), Ok(256));
        assert_eq!(dep_cache_mb(Some("0")), Ok(0));
        assert!(dep_cache_mb(Some("1G"))
            .unwrap_err()
            .contains("not a size in MiB"));
    }

    #[test]
    fn one_compile_display_follows_fmt_and_types() {
        let mut format = ValueFormat::default();
        assert_eq!(format.observe("40 + 2"), None);
        assert_eq!(
            format.observe(":fmt {:#?}\nvec![1]"),
            Some(FormatChange::Default(false))
        );
        assert_eq!(format.observe(":types"), None, "still not the default");
        assert_eq!(format.observe(":fmt"), None, "types are still shown");
        assert_eq!(format.observe(":types"), Some(FormatChange::Default(true)));
        assert_eq!(format.observe(":clear"), Some(FormatChange::Cleared));
        assert!(format.is_default());
    }

    #[test]
    fn text_twins_say_what_a_display_shows() {
        let html = with_text_twin(Bundle::default().with(
            "text/html",
            "<table><tr><td>a &amp; b</td>\n<td>&lt;42&gt;</td></tr></table>",
        ));
        assert_eq!(html.data["text/plain"], "a & b <42>");
        let png = with_text_twin(Bundle::default().with("image/png", "iVBOR"));
        assert_eq!(png.data["text/plain"], "<image/png>");
        let own = with_text_twin(Bundle::text("mine").with("text/html", "<b>x</b>"));
        assert_eq!(own.data["text/plain"], "mine", "a twin of its own is kept");
    }
}
