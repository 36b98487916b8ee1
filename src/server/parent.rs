//! The kernel does not outlive the process that launched it.
//!
//! A Jupyter server that is killed (or crashes, or loses its node's session) leaves its kernels
//! behind: one was seen still running 58 minutes later, holding half a GiB and touching its
//! clusters' heartbeat files, so that their watchdogs never fired and their nodes stayed held
//! until walltime. Like ipykernel's parent poller, the kernel checks once a second whether its
//! parent is still the process that started it (its parent pid changes when that one dies) and
//! whether the process named by `JPY_PARENT_PID` (which jupyter_client sets) still exists; when
//! either is gone, the server ends as after a shutdown request: what a shutdown cancels is
//! cancelled.

use std::time::Duration;

use rustix::process::{getppid, test_kill_process, Pid};

/// How often the parent is checked.
const POLL: Duration = Duration::from_secs(1);

/// The variable in which jupyter_client names the process that launched the kernel.
const PARENT_VAR: &str = "JPY_PARENT_PID";

/// What identifies the kernel's parent, taken at start.
#[derive(Debug, Clone, Copy)]
pub(super) struct Parent {
    /// The parent pid at start; `None` when the kernel was started by init (nothing to watch).
    ppid: Option<Pid>,
    /// The process of `JPY_PARENT_PID`, when set to a pid that exists (it may be a grandparent).
    launcher: Option<Pid>,
}

impl Parent {
    /// The parent now, and the launcher named by `JPY_PARENT_PID` (`jpy_parent_pid`).
    pub(super) fn now(jpy_parent_pid: Option<&str>) -> Parent {
        let launcher = jpy_parent_pid
            .and_then(|v| v.trim().parse::<i32>().ok())
            .and_then(Pid::from_raw)
            .filter(|pid| test_kill_process(*pid).is_ok());
        Parent {
            ppid: getppid().filter(|p| !p.is_init()),
            launcher,
        }
    }

    /// Whether the process that launched the kernel has gone.
    pub(super) fn gone(&self) -> bool {
        let reparented = self.ppid.is_some() && getppid() != self.ppid;
        let launcher_gone = self
            .launcher
            .is_some_and(|pid| test_kill_process(pid).is_err());
        reparented || launcher_gone
    }
}

/// Resolves when the kernel's launcher has gone (never, when there is nothing to watch).
pub(super) async fn parent_gone() {
    let parent = Parent::now(std::env::var(PARENT_VAR).ok().as_deref());
    if parent.ppid.is_none() && parent.launcher.is_none() {
        return std::future::pending().await;
    }
    loop {
        tokio::time::sleep(POLL).await;
        if parent.gone() {
            tracing::warn!(
                "the process that launched this kernel has gone; shutting down as if asked to"
            );
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_living_parent_and_launcher_are_not_gone() {
        let me = std::process::id().to_string();
        let parent = Parent::now(Some(&me));
        assert!(parent.launcher.is_some(), "this test process exists");
        assert!(!parent.gone());
    }

    #[test]
    fn a_launcher_that_has_exited_is_gone_and_a_bad_variable_is_ignored() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id().to_string();
        child.wait().unwrap();
        // Reaped: the pid names no process (pids are not reused this fast).
        let parent = Parent::now(Some(&pid));
        assert!(
            parent.launcher.is_none(),
            "a pid that does not exist is not watched"
        );
        let mut watched = Parent::now(None);
        watched.launcher = Pid::from_raw(pid.parse().unwrap());
        assert!(watched.gone());
        assert!(Parent::now(Some("not a pid")).launcher.is_none());
    }
}
