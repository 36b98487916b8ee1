//! Jobs that are process groups of this kernel: `bash SCRIPT` started in a group of its own,
//! its output in a private log file, ended by signalling the whole group. The local backend's
//! `mpirun` and the allocation backend's launcher are such jobs.
//!
//! A group outlives a kernel that is restarted (or killed); the kernel after it finds the group
//! again by the job id in the leader's environment ([`ProcessGroups::orphan`]), so that it can
//! follow and end it.

use std::collections::{HashMap, HashSet};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use super::super::{io, lock, ClusterError};
use crate::private;
use crate::process;
use crate::slurm::JobState;
use rustix::process::Signal;

/// The process groups this kernel started, by job id.
pub(super) struct ProcessGroups {
    /// What the groups' leaders take as "stop", one a second (then SIGKILL after a grace
    /// period).
    stop: &'static [Signal],
    children: Mutex<HashMap<String, Child>>,
    /// The jobs that were told to end: their exit is a completion, not a failure.
    ended: Mutex<HashSet<String>>,
}

impl ProcessGroups {
    /// Groups that are told to stop with `stop`.
    pub(super) fn new(stop: &'static [Signal]) -> ProcessGroups {
        ProcessGroups {
            stop,
            children: Mutex::default(),
            ended: Mutex::default(),
        }
    }

    /// Starts `bash script_path` as job `id` in a new process group, with `env` added and
    /// without the variables of a SLURM job the kernel runs in (they would make `mpirun` and
    /// `srun` take that job's settings for their own); output to a new 0600 `log_path`.
    /// `what` says what is started, for the error.
    pub(super) fn start(
        &self,
        id: &str,
        script_path: &Path,
        log_path: &Path,
        env: &[(&str, &str)],
        what: &str,
    ) -> Result<(), ClusterError> {
        let log = private::create_file(log_path)
            .map_err(io(format!("creating {}", log_path.display())))?;
        let mut command = Command::new("bash");
        for name in crate::slurm::inherited_here() {
            command.env_remove(name);
        }
        command
            .arg(script_path)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(io("log file"))?)
            .stderr(log)
            .process_group(0);
        if process::running_as_root() {
            command
                .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
                .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
        }
        let child = command.spawn().map_err(io(what.to_owned()))?;
        lock(&self.children).insert(id.to_owned(), child);
        Ok(())
    }

    /// The state of job `id`, or `None` when this kernel did not start it.
    pub(super) fn state(&self, id: &str) -> Option<JobState> {
        let mut children = lock(&self.children);
        let ended = lock(&self.ended);
        let child = children.get_mut(id)?;
        Some(match child.try_wait() {
            Ok(None) => JobState::Running,
            Ok(Some(status)) if status.success() || ended.contains(id) => JobState::Completed,
            Ok(Some(_)) => JobState::Failed,
            Err(_) => JobState::Gone,
        })
    }

    /// Ends those of `ids` that this kernel started (the stop signal to the group, SIGKILL
    /// after a grace period), and those of an earlier kernel that `id_var` finds
    /// ([`ProcessGroups::orphan`]; the stop signal only: they are not our children to reap).
    pub(super) fn end(&self, ids: &[String], id_var: &str) {
        lock(&self.ended).extend(ids.iter().cloned());
        let mut children = lock(&self.children);
        for id in ids {
            match children.get_mut(id) {
                Some(child) => process::end_group(child, self.stop),
                None => {
                    if let Some(pgid) = ProcessGroups::orphan(id, id_var) {
                        process::signal_group_id(pgid, self.stop);
                    }
                }
            }
        }
    }

    /// The process group of job `id` when an earlier kernel started it and it still runs: its
    /// leader's environment names the job (`id_var=id`).
    pub(super) fn orphan(id: &str, id_var: &str) -> Option<i32> {
        process::group_with_marker(&format!("{id_var}={id}"))
    }
}
