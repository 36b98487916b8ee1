//! Child processes: run one with a timeout, end a process group, keep the end of a log.
//!
//! The SLURM client ([`crate::slurm`]), the Dask client scripts ([`crate::dask`]), the local
//! backend of the manager and the kernel's Python bridge all start processes in a group of their
//! own and end them the same way; these are the one copy of that. Signals go through `rustix`,
//! so nothing here is `unsafe`.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::process::{kill_process_group, Pid, Signal};

/// How long [`kill_group`] waits after SIGTERM before it sends SIGKILL.
pub const TERM_GRACE: Duration = Duration::from_secs(5);

/// A flag that another thread raises to stop a running command at once (a cell's interrupt):
/// [`run_until`] kills the command's process group when it sees it raised.
#[derive(Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    /// A stop flag that is raised whenever `flag` is `true`.
    pub fn new(flag: Arc<AtomicBool>) -> StopFlag {
        StopFlag(flag)
    }

    /// Whether it is raised.
    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl std::fmt::Debug for StopFlag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StopFlag({})", self.is_raised())
    }
}

/// Two stop flags are the same when they are one flag.
impl PartialEq for StopFlag {
    fn eq(&self, other: &StopFlag) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for StopFlag {}

/// What a process run by [`run_with_timeout`] left behind.
#[derive(Debug)]
pub struct Finished {
    /// How it ended.
    pub status: ExitStatus,
    /// Everything it wrote to stdout (lossy UTF-8).
    pub stdout: String,
    /// Everything it wrote to stderr (lossy UTF-8).
    pub stderr: String,
}

/// Why [`run_with_timeout`] has no [`Finished`] to return.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The program could not be started, or waiting for it failed.
    #[error("{0}")]
    Spawn(#[from] std::io::Error),
    /// The stop flag was raised; the whole process group was killed.
    #[error("stopped")]
    Stopped,
    /// The time ran out; the whole process group was killed.
    #[error("timed out after {timeout:?}")]
    TimedOut {
        /// The timeout that ran out.
        timeout: Duration,
        /// What the process had written to stderr by then.
        stderr: String,
    },
}

/// Runs `command` in a process group of its own with stdin closed and stdout and stderr
/// captured (read while it runs, so a chatty process never blocks on a full pipe). When
/// `timeout` runs out, the whole group gets SIGKILL: helpers it forked die with it.
///
/// ```
/// use std::process::Command;
/// use std::time::Duration;
/// let out = dask_slurm::process::run_with_timeout(
///     Command::new("echo").arg("hi"),
///     Duration::from_secs(5),
/// )
/// .unwrap();
/// assert_eq!(out.stdout, "hi\n");
/// ```
pub fn run_with_timeout(command: &mut Command, timeout: Duration) -> Result<Finished, RunError> {
    run_until(command, timeout, None)
}

/// [`run_with_timeout`] that also ends the command (its whole group) as soon as `stop` is
/// raised, with [`RunError::Stopped`].
pub fn run_until(
    command: &mut Command,
    timeout: Duration,
    stop: Option<&StopFlag>,
) -> Result<Finished, RunError> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()?;
    let stdout = child.stdout.take().map(read_in_background);
    let stderr = child.stderr.take().map(read_in_background);
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(2);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if stop.is_some_and(StopFlag::is_raised) => {
                signal_group(&child, Signal::KILL);
                let _ = child.wait();
                return Err(RunError::Stopped);
            }
            Ok(None) if Instant::now() >= deadline => {
                signal_group(&child, Signal::KILL);
                let _ = child.wait();
                return Err(RunError::TimedOut {
                    timeout,
                    stderr: collect(stderr),
                });
            }
            Ok(None) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(e) => {
                signal_group(&child, Signal::KILL);
                let _ = child.wait();
                return Err(RunError::Spawn(e));
            }
        }
    };
    Ok(Finished {
        status,
        stdout: collect(stdout),
        stderr: collect(stderr),
    })
}

/// Ends a child started in its own process group: SIGTERM to the group, SIGKILL after
/// [`TERM_GRACE`]; then reaps it.
pub fn kill_group(child: &mut Child) {
    end_group(child, &[Signal::TERM]);
}

/// Sends `signal` to the process group that `child` leads (it was started with
/// `process_group(0)`). A group that is gone already is not an error.
fn signal_group(child: &Child, signal: Signal) {
    let _ = kill_process_group(Pid::from_child(child), signal);
}

/// The process group whose leader has `marker` (`NAME=value`) among its environment variables:
/// a group that this user started earlier (in an earlier kernel) and that still runs. Other
/// users' processes cannot be read and are skipped; a reused process id has another
/// environment.
pub fn group_with_marker(marker: &str) -> Option<i32> {
    let marker = marker.as_bytes();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let environ = std::fs::read(entry.path().join("environ")).ok()?;
            if !environ.split(|b| *b == 0).any(|var| var == marker) {
                return None;
            }
            let leader = Pid::from_raw(pid)?;
            (rustix::process::getpgid(Some(leader)).ok()? == leader).then_some(pid)
        })
}

/// Sends `signals` to process group `pgid`, one a second (a group that is gone already is not
/// an error).
pub fn signal_group_id(pgid: i32, signals: &[Signal]) {
    let Some(pid) = Pid::from_raw(pgid) else {
        return;
    };
    for (i, signal) in signals.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(Duration::from_secs(1));
        }
        if kill_process_group(pid, *signal).is_err() {
            return;
        }
    }
}

/// Ends a child started in its own process group with `signals` first, one a second (what its
/// leader takes as "stop": SIGINT twice for `mpirun`, whose first only forwards it to the
/// ranks; SIGTERM for `srun`), SIGKILL after [`TERM_GRACE`]; then reaps it.
pub fn end_group(child: &mut Child, signals: &[Signal]) {
    let deadline = Instant::now() + TERM_GRACE;
    let mut next = Instant::now();
    let mut signals = signals.iter();
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        if Instant::now() >= next {
            if let Some(signal) = signals.next() {
                signal_group(child, *signal);
            }
            next = Instant::now() + Duration::from_secs(1);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    signal_group(child, Signal::KILL);
    let _ = child.wait();
}

/// Whether this process runs as root (Open MPI then needs to be told that this is intended).
pub fn running_as_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The last `n` lines of `text`.
///
/// ```
/// assert_eq!(dask_slurm::process::last_lines("a\nb\nc\n", 2), "b\nc");
/// ```
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn read_in_background<R: Read + Send + 'static>(mut r: R) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

fn collect(reader: Option<JoinHandle<String>>) -> String {
    reader.and_then(|h| h.join().ok()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raised_stop_flag_ends_the_whole_group_at_once() {
        let flag = Arc::new(AtomicBool::new(false));
        let stop = StopFlag::new(flag.clone());
        let raiser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            flag.store(true, Ordering::SeqCst);
        });
        let result = run_until(
            Command::new("bash").args(["-c", "sleep 30 & sleep 30"]),
            Duration::from_secs(60),
            Some(&stop),
        );
        raiser.join().unwrap();
        assert!(matches!(result, Err(RunError::Stopped)), "{result:?}");
    }

    #[test]
    fn last_lines_keeps_the_end() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(last_lines("a", 5), "a");
        assert_eq!(last_lines("", 5), "");
    }

    #[test]
    fn a_hanging_group_is_killed_at_the_timeout() {
        let started = Instant::now();
        // The background sleep keeps the pipes open: only killing the group ends the read.
        let err = run_with_timeout(
            Command::new("bash").args(["-c", "echo waiting >&2; sleep 30 & sleep 30"]),
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10));
        match err {
            RunError::TimedOut { stderr, .. } => assert_eq!(stderr.trim(), "waiting"),
            other => panic!("expected a timeout, got {other}"),
        }
    }

    #[test]
    fn output_larger_than_a_pipe_does_not_block() {
        let out = run_with_timeout(
            Command::new("bash").args(["-c", "head -c 300000 /dev/zero | tr '\\0' x"]),
            Duration::from_secs(10),
        )
        .unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout.len(), 300_000);
    }

    #[test]
    fn kill_group_ends_the_group_at_sigterm() {
        let mut child = Command::new("bash")
            .args(["-c", "sleep 30 & sleep 30"])
            .process_group(0)
            .spawn()
            .unwrap();
        let started = Instant::now();
        kill_group(&mut child);
        assert!(child.try_wait().unwrap().is_some());
        assert!(started.elapsed() < TERM_GRACE);
    }
}
