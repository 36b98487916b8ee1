//! Jobs that are process groups of this kernel: `bash SCRIPT` started in a group of its own,
//! its output in a private log file, ended by signalling the whole group. The local backend's
//! `mpirun` and the allocation backend's launcher are such jobs.

use std::collections::{HashMap, HashSet};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use super::super::{io, lock, ClusterError};
use crate::private;
use crate::process::{self, kill_group};
use crate::slurm::JobState;

/// The process groups this kernel started, by job id.
#[derive(Default)]
pub(super) struct ProcessGroups {
    children: Mutex<HashMap<String, Child>>,
    /// The jobs that were told to end: their exit is a completion, not a failure.
    ended: Mutex<HashSet<String>>,
}

impl ProcessGroups {
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

    /// Ends those of `ids` that this kernel started (SIGTERM to the group, SIGKILL after a
    /// grace period); the others are not ours to end.
    pub(super) fn end(&self, ids: &[String]) {
        lock(&self.ended).extend(ids.iter().cloned());
        let mut children = lock(&self.children);
        for id in ids {
            if let Some(child) = children.get_mut(id) {
                kill_group(child);
            }
        }
    }
}
