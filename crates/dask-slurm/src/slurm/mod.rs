//! The SLURM command-line client: `sbatch`, `squeue`, `sinfo`, `scancel`, `scontrol`.
//!
//! (Over 600 lines: one method per SLURM command, about 625 lines, and the tests of timeouts
//! and missing commands; the parsers are in `parse.rs`, the squeue filters in `filters.rs`.)
//!
//! Every command runs with a timeout (default [`Slurm::DEFAULT_TIMEOUT`]); on expiry its process
//! group is killed. Its stderr is kept and returned verbatim in errors, and a controller that
//! cannot be reached is reported as [`SlurmError::ControllerUnreachable`] (SLURM's own clients
//! give up after about 9 s with the lab's default `MessageTimeout`).
//!
//! Output is requested in fixed formats whose fields are separated by the ASCII unit separator
//! (0x1F), which no SLURM name contains, and the free-text comment is always the last field. The
//! parsers ([`parse_jobs`], [`parse_partitions`], [`parse_start_estimates`],
//! [`parse_scontrol_record`], [`parse_sbatch_parsable`]) are pure functions tested on output
//! captured from SLURM 22.05.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub use crate::model::JobState;
use crate::process::{self, Finished, RunError, StopFlag};
use crate::script::CommentTag;

mod allocation;
mod filters;
mod inherited;
mod parse;
pub use allocation::{
    parse_cpus_per_node, AllocatedNode, Allocation, AllocationError, AllocationLayout, NodeShare,
};
pub use filters::check_squeue_filters;
pub use inherited::{inherited_here, inherited_job_variables};
pub use parse::{
    parse_jobs, parse_partitions, parse_sbatch_parsable, parse_scontrol_record,
    parse_slurm_duration, parse_start_estimates, time_left, ParseError,
};

/// Environment variable naming the directory with SLURM's commands (otherwise `PATH` is searched).
pub const BIN_DIR_ENV_VAR: &str = "RUST_CLUSTER_KERNEL_SLURM_BIN_DIR";

/// The field separator in every `-o` format we use (ASCII unit separator).
const SEP: char = '\u{1f}';

/// `squeue -o` format of [`JobStatus`]: id, state, partition, name, user, node count, node list,
/// elapsed, limit, reason, comment (last: it is free text).
const JOB_FORMAT: &str =
    "%i\u{1f}%T\u{1f}%P\u{1f}%j\u{1f}%u\u{1f}%D\u{1f}%N\u{1f}%M\u{1f}%l\u{1f}%r\u{1f}%k";

/// `squeue --start -o` format of [`StartEstimate`]: id, expected start, scheduled nodes.
const START_FORMAT: &str = "%i\u{1f}%S\u{1f}%Y";

/// `sinfo -o` format of [`PartitionRow`]: partition (`*` marks the default), availability,
/// time limit, nodes allocated/idle/other/total.
const PARTITION_FORMAT: &str = "%P\u{1f}%a\u{1f}%l\u{1f}%F";

/// A SLURM command failed, timed out, or printed something unexpected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SlurmError {
    /// The command is not installed (not in the bin directory or on `PATH`).
    #[error("`{program}` not found (searched {searched}); is SLURM installed on this machine?")]
    NotInstalled {
        /// The program, e.g. `sbatch`.
        program: String,
        /// Where it was looked for.
        searched: String,
    },
    /// `SLURM_CONF` names a file that does not exist (SLURM's clients would retry for 60 s).
    #[error("SLURM configuration {} does not exist (from SLURM_CONF)", path.display())]
    ConfigMissing {
        /// The configured path.
        path: PathBuf,
    },
    /// The command could not be started.
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why it could not be started.
        source: std::io::Error,
    },
    /// The command did not finish in time and was killed.
    #[error("`{command}` did not finish within {}s and was killed{}", timeout.as_secs_f32(), stderr_suffix(stderr))]
    Timeout {
        /// The command line.
        command: String,
        /// The timeout that expired.
        timeout: Duration,
        /// What it had written to stderr by then.
        stderr: String,
    },
    /// The command was ended by an interrupt ([`Slurm::stopped_by`]).
    #[error("`{command}` was interrupted")]
    Interrupted {
        /// The command line.
        command: String,
    },
    /// The command says it cannot reach slurmctld.
    #[error("the SLURM controller is not reachable: {stderr}")]
    ControllerUnreachable {
        /// The command line.
        command: String,
        /// The command's stderr, verbatim (e.g. `slurm_load_jobs error: Unable to contact slurm
        /// controller (connect failure)`).
        stderr: String,
    },
    /// The command exited unsuccessfully; `stderr` is its message, verbatim (for `sbatch`, e.g.
    /// `sbatch: error: Batch job submission failed: Invalid partition name specified`).
    #[error("`{program}` failed ({status}): {stderr}")]
    Failed {
        /// The program, e.g. `sbatch`.
        program: String,
        /// The full command line.
        command: String,
        /// The exit status as text (`exit status: 1`).
        status: String,
        /// The command's stderr, verbatim.
        stderr: String,
    },
    /// The command printed something we cannot read.
    #[error("unexpected output from `{command}`: {reason}: {line:?}")]
    Parse {
        /// The command line.
        command: String,
        /// The line in question.
        line: String,
        /// What was expected.
        reason: String,
    },
    /// A job id is not a plain number.
    #[error(
        "invalid job id {id:?}: expected 1234, an array task 1234_7 or 1234_[1-3], 1234+0, or a \
         step 1234.5"
    )]
    InvalidJobId {
        /// The id given.
        id: String,
    },
    /// SLURM does not know the job (it ended more than `MinJobAge` seconds ago, or never existed).
    #[error("job {id} is not known to SLURM (it ended a while ago, or never existed)")]
    UnknownJob {
        /// The job id.
        id: String,
    },
    /// An argument for `%squeue` is not one of the filters it accepts.
    #[error("squeue argument {arg:?} is not allowed: {reason}")]
    Argument {
        /// The argument.
        arg: String,
        /// Why, and what is allowed.
        reason: String,
    },
    /// The name of the current user could not be found.
    #[error("cannot tell the current user's name: {reason}")]
    NoUser {
        /// What went wrong.
        reason: String,
    },
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.trim().is_empty() {
        String::new()
    } else {
        format!("; stderr: {}", stderr.trim())
    }
}

/// One job as squeue reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatus {
    /// The job id.
    pub id: String,
    /// The state.
    pub state: JobState,
    /// The partition.
    pub partition: String,
    /// The job name.
    pub name: String,
    /// The owner.
    pub user: String,
    /// Nodes allocated (running) or requested (pending).
    pub node_count: u32,
    /// The node list (`n[1-2]`); empty while pending.
    pub nodes: String,
    /// Run time so far (`1:23`).
    pub elapsed: String,
    /// Time limit (`30:00`, `UNLIMITED`).
    pub time_limit: String,
    /// SLURM's reason (`Resources`, `Priority`, `NonZeroExitCode`, …); `None` for `None`.
    pub reason: Option<String>,
    /// The job's comment; `None` for `(null)`.
    pub comment: Option<String>,
}

impl JobStatus {
    /// A job that squeue no longer lists.
    pub fn gone(id: &str) -> JobStatus {
        JobStatus {
            id: id.to_owned(),
            state: JobState::Gone,
            partition: String::new(),
            name: String::new(),
            user: String::new(),
            node_count: 0,
            nodes: String::new(),
            elapsed: String::new(),
            time_limit: String::new(),
            reason: None,
            comment: None,
        }
    }

    /// The job's comment tag, if it carries ours.
    pub fn tag(&self) -> Option<CommentTag> {
        self.comment.as_deref().and_then(CommentTag::parse)
    }
}

/// SLURM's estimate of when a pending job starts (`squeue --start`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartEstimate {
    /// The job id.
    pub id: String,
    /// Expected start (`2026-11-24T18:39:17`); `None` while SLURM has none (`N/A`, the first
    /// ~30 s until the backfill scheduler has run).
    pub start: Option<String>,
    /// The nodes it is expected to start on, if known.
    pub nodes: Option<String>,
}

/// One partition as `%sinfo` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRow {
    /// The partition name (without sinfo's `*`).
    pub name: String,
    /// True for the default partition.
    pub is_default: bool,
    /// `up`, `down`, `drain` or `inact`.
    pub available: String,
    /// The maximum time limit (`3-00:00:00`, `infinite`).
    pub time_limit: String,
    /// Nodes with jobs.
    pub nodes_allocated: u32,
    /// Nodes without jobs.
    pub nodes_idle: u32,
    /// Nodes in other states (down, drained, …).
    pub nodes_other: u32,
    /// All nodes.
    pub nodes_total: u32,
}

/// A successful `sbatch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// The new job's id.
    pub job_id: String,
    /// What sbatch wrote to stderr (warnings), verbatim; usually empty.
    pub stderr: String,
}

/// A job of ours found by its comment tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedJob {
    /// The job as squeue lists it.
    pub job: JobStatus,
    /// Its parsed tag.
    pub tag: CommentTag,
}

/// The SLURM client: where the commands are, which configuration, and how long to wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slurm {
    /// Directory of `sbatch`, `squeue`, …; `None` searches `PATH`.
    bin_dir: Option<PathBuf>,
    /// `SLURM_CONF` for the commands; `None` leaves the environment as it is.
    conf: Option<PathBuf>,
    /// How long one command may take before it is killed.
    timeout: Duration,
    /// Raised to end a running command at once (a cell's interrupt); none for the poller.
    stop: Option<StopFlag>,
}

impl Slurm {
    /// The default timeout of one command.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

    /// A client for the commands in `bin_dir` (or on `PATH`) with `conf` as `SLURM_CONF` (or
    /// SLURM's own lookup).
    pub fn new(bin_dir: Option<PathBuf>, conf: Option<PathBuf>) -> Slurm {
        Slurm {
            bin_dir,
            conf,
            timeout: Slurm::DEFAULT_TIMEOUT,
            stop: None,
        }
    }

    /// This client, with its commands ended at once (as [`SlurmError::Interrupted`]) when
    /// `stop` is raised: for a cell, whose interrupt must not wait out a hanging command's
    /// timeout.
    pub fn stopped_by(&self, stop: StopFlag) -> Slurm {
        Slurm {
            stop: Some(stop),
            ..self.clone()
        }
    }

    /// A client configured from the environment: `$RUST_CLUSTER_KERNEL_SLURM_BIN_DIR` and
    /// `$SLURM_CONF`.
    pub fn from_env() -> Slurm {
        let non_empty = |name| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Slurm::new(non_empty(BIN_DIR_ENV_VAR), non_empty("SLURM_CONF"))
    }

    /// The same client with another per-command timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Slurm {
        self.timeout = timeout;
        self
    }

    /// The per-command timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// True if `sbatch` can be found (the kernel then defaults to the SLURM backend).
    pub fn is_available(&self) -> bool {
        self.program("sbatch").is_ok()
    }

    fn program(&self, name: &str) -> Result<PathBuf, SlurmError> {
        let is_exe = |p: &Path| {
            use std::os::unix::fs::PermissionsExt;
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        };
        let (found, searched) = match &self.bin_dir {
            Some(dir) => {
                let p = dir.join(name);
                (is_exe(&p).then_some(p), dir.display().to_string())
            }
            None => {
                let path = std::env::var_os("PATH").unwrap_or_default();
                let found = std::env::split_paths(&path)
                    .map(|d| d.join(name))
                    .find(|p| is_exe(p));
                (found, "PATH".to_owned())
            }
        };
        found.ok_or_else(|| SlurmError::NotInstalled {
            program: name.to_owned(),
            searched,
        })
    }

    /// Runs `program args…` with the timeout; a non-zero exit becomes an error (unreachable
    /// controller recognised).
    fn run(&self, program: &str, args: &[String]) -> Result<Finished, SlurmError> {
        let out = self.run_unchecked(program, args)?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(self.failure(program, args, out))
        }
    }

    fn failure(&self, program: &str, args: &[String], out: Finished) -> SlurmError {
        let command = command_line(program, args);
        let stderr = out.stderr.trim_end().to_owned();
        if is_unreachable(&stderr) {
            SlurmError::ControllerUnreachable { command, stderr }
        } else {
            SlurmError::Failed {
                program: program.to_owned(),
                command,
                status: out.status.to_string(),
                stderr,
            }
        }
    }

    fn run_unchecked(&self, program: &str, args: &[String]) -> Result<Finished, SlurmError> {
        self.run_unchecked_with(program, args, &[], false)
    }

    /// Runs `program args…` with `env` added; `new_job`: it starts new work, which must not
    /// inherit the kernel's own job's settings ([`inherited_here`]).
    fn run_unchecked_with(
        &self,
        program: &str,
        args: &[String],
        env: &[(&str, &str)],
        new_job: bool,
    ) -> Result<Finished, SlurmError> {
        if let Some(conf) = &self.conf {
            if !conf.exists() {
                return Err(SlurmError::ConfigMissing { path: conf.clone() });
            }
        }
        let path = self.program(program)?;
        let command = command_line(program, args);
        tracing::debug!(%command, "running SLURM command");
        let mut cmd = Command::new(&path);
        cmd.args(args);
        if new_job {
            for name in inherited_here() {
                cmd.env_remove(name);
            }
        }
        if let Some(conf) = &self.conf {
            cmd.env("SLURM_CONF", conf);
        }
        cmd.envs(env.iter().copied());
        // The whole process group dies at the timeout: SLURM clients may fork helpers.
        match process::run_until(&mut cmd, self.timeout, self.stop.as_ref()) {
            Ok(finished) => Ok(finished),
            Err(RunError::Stopped) => {
                tracing::info!(%command, "SLURM command stopped by an interrupt");
                Err(SlurmError::Interrupted { command })
            }
            Err(RunError::TimedOut { stderr, .. }) => {
                tracing::warn!(%command, "SLURM command timed out");
                Err(SlurmError::Timeout {
                    command,
                    timeout: self.timeout,
                    stderr,
                })
            }
            Err(RunError::Spawn(source)) => Err(SlurmError::Spawn { command, source }),
        }
    }

    /// Submits `script_path` with `sbatch --parsable [extra_args…]`. On failure the error carries
    /// sbatch's stderr verbatim ([`SlurmError::Failed`]). `extra_args` are passed as argv (never
    /// through a shell). The job does not inherit the settings of a job that the kernel itself
    /// runs in ([`inherited_here`]: `SLURM_*`, `PMI*`, …).
    pub fn sbatch(
        &self,
        script_path: &Path,
        extra_args: &[String],
    ) -> Result<Submitted, SlurmError> {
        self.sbatch_with_umask(script_path, extra_args, None)
    }

    /// [`Slurm::sbatch`] with the job's umask set (`SLURM_UMASK`, e.g. `0077`): SLURM creates
    /// the job's output file with it, and the job starts with it.
    pub fn sbatch_with_umask(
        &self,
        script_path: &Path,
        extra_args: &[String],
        umask: Option<&str>,
    ) -> Result<Submitted, SlurmError> {
        let mut args = vec!["--parsable".to_owned()];
        args.extend(extra_args.iter().cloned());
        args.push(script_path.to_string_lossy().into_owned());
        let env: Vec<(&str, &str)> = umask.map(|m| ("SLURM_UMASK", m)).into_iter().collect();
        let out = self.run_unchecked_with("sbatch", &args, &env, true)?;
        let out = if out.status.success() {
            out
        } else {
            return Err(self.failure("sbatch", &args, out));
        };
        let job_id =
            parse_sbatch_parsable(&out.stdout).map_err(|e| parse_error("sbatch", &args, e))?;
        if !out.stderr.trim().is_empty() {
            tracing::info!(job_id, stderr = out.stderr.trim(), "sbatch wrote to stderr");
        }
        Ok(Submitted {
            job_id,
            stderr: out.stderr.trim_end().to_owned(),
        })
    }

    /// The status of each of `ids`, in the order given, from ONE `squeue -h -t all -j ID,ID -o
    /// FORMAT` call. A job squeue does not list (any more) is [`JobState::Gone`].
    pub fn jobs(&self, ids: &[String]) -> Result<Vec<JobStatus>, SlurmError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = job_list(ids)?;
        let args = strings(["-h", "-t", "all", "-j", &list, "-o", JOB_FORMAT]);
        let listed = match self.run_unchecked("squeue", &args)? {
            out if out.status.success() => {
                parse_jobs(&out.stdout).map_err(|e| parse_error("squeue", &args, e))?
            }
            // A single id that has left the queue: "slurm_load_jobs error: Invalid job id
            // specified" (several ids are filtered instead, and give an empty answer).
            out if out.stderr.contains("Invalid job id specified") => Vec::new(),
            out => return Err(self.failure("squeue", &args, out)),
        };
        Ok(ids
            .iter()
            .map(|id| {
                listed
                    .iter()
                    .find(|j| &j.id == id)
                    .cloned()
                    .unwrap_or_else(|| JobStatus::gone(id))
            })
            .collect())
    }

    /// SLURM's start estimates for those of `ids` that are pending (`squeue --start`).
    pub fn start_estimates(&self, ids: &[String]) -> Result<Vec<StartEstimate>, SlurmError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = job_list(ids)?;
        let args = strings(["-h", "--start", "-j", &list, "-o", START_FORMAT]);
        match self.run_unchecked("squeue", &args)? {
            out if out.status.success() => {
                parse_start_estimates(&out.stdout).map_err(|e| parse_error("squeue", &args, e))
            }
            out if out.stderr.contains("Invalid job id specified") => Ok(Vec::new()),
            out => Err(self.failure("squeue", &args, out)),
        }
    }

    /// Jobs for `%squeue`: the current user's (`--me`) unless `filters` name users, filtered by
    /// `filters` (squeue's own options; only filters are allowed, see [`check_squeue_filters`]).
    pub fn my_jobs(&self, filters: &[String]) -> Result<Vec<JobStatus>, SlurmError> {
        check_squeue_filters(filters)?;
        let names_users = filters
            .iter()
            .any(|f| f == "--me" || f == "-u" || f.starts_with("-u") || f.starts_with("--user"));
        let mut args = strings(["-h", "-o", JOB_FORMAT]);
        if !names_users {
            args.push("--me".to_owned());
        }
        args.extend(filters.iter().cloned());
        let out = self.run("squeue", &args)?;
        parse_jobs(&out.stdout).map_err(|e| parse_error("squeue", &args, e))
    }

    /// Partitions for `%sinfo`.
    pub fn partitions(&self) -> Result<Vec<PartitionRow>, SlurmError> {
        let args = strings(["-h", "-o", PARTITION_FORMAT]);
        let out = self.run("sinfo", &args)?;
        parse_partitions(&out.stdout).map_err(|e| parse_error("sinfo", &args, e))
    }

    /// Cancels `ids` with one `scancel`. Cancelling a job that has already ended is not an
    /// error (SLURM 22.05's scancel exits 0 for it).
    pub fn cancel(&self, ids: &[String]) -> Result<(), SlurmError> {
        if ids.is_empty() {
            return Ok(());
        }
        for id in ids {
            check_job_id(id)?;
        }
        self.run("scancel", ids)?;
        Ok(())
    }

    /// The path of the job's output file (`StdOut=` of `scontrol -o show job ID`, with `%j` and
    /// friends expanded). [`SlurmError::UnknownJob`] once the job has left SLURM's memory.
    pub fn job_log_path(&self, id: &str) -> Result<PathBuf, SlurmError> {
        check_job_id(id)?;
        let args = strings(["-o", "show", "job", id]);
        let out = match self.run_unchecked("scontrol", &args)? {
            out if out.status.success() => out,
            out if out.stderr.contains("Invalid job id specified") => {
                return Err(SlurmError::UnknownJob { id: id.to_owned() })
            }
            out => return Err(self.failure("scontrol", &args, out)),
        };
        let line = out.stdout.lines().next().unwrap_or_default();
        parse_scontrol_record(line)
            .into_iter()
            .find(|(k, _)| k == "StdOut")
            .map(|(_, v)| PathBuf::from(v))
            .ok_or_else(|| {
                parse_error("scontrol", &args, ParseError::new(line, "no StdOut= field"))
            })
    }

    /// Every job of `user` that squeue still lists (any state) and that carries our comment tag
    /// for that user: the input for rebuilding a lost registry.
    pub fn find_tagged_jobs(&self, user: &str) -> Result<Vec<TaggedJob>, SlurmError> {
        crate::spec::validate_user_name(user).map_err(|e| SlurmError::Argument {
            arg: user.to_owned(),
            reason: e.to_string(),
        })?;
        let args = strings(["-h", "-t", "all", "-u", user, "-o", JOB_FORMAT]);
        let out = self.run("squeue", &args)?;
        let jobs = parse_jobs(&out.stdout).map_err(|e| parse_error("squeue", &args, e))?;
        Ok(jobs
            .into_iter()
            .filter_map(|job| {
                let tag = job.tag()?;
                (tag.user == user).then_some(TaggedJob { job, tag })
            })
            .collect())
    }
}

fn strings<const N: usize>(a: [&str; N]) -> Vec<String> {
    a.iter().map(|s| (*s).to_owned()).collect()
}

fn command_line(program: &str, args: &[String]) -> String {
    let mut s = program.to_owned();
    for a in args {
        s.push(' ');
        let shown = a.replace(SEP, "|");
        s.push_str(&shlex::try_quote(&shown).map_or(shown.clone(), |q| q.into_owned()));
    }
    s
}

fn parse_error(program: &str, args: &[String], e: ParseError) -> SlurmError {
    SlurmError::Parse {
        command: command_line(program, args),
        line: e.line,
        reason: e.reason,
    }
}

fn is_unreachable(stderr: &str) -> bool {
    stderr.contains("Unable to contact slurm controller")
}

/// Checks a job id as SLURM's commands take it: `1234`, an array task `1234_7`, a set of array
/// tasks `1234_[1-3,7]`, a component of a heterogeneous job `1234+0`, or a job step `1234.5`
/// (an in-allocation cluster's). Nothing else (no shell, no lists: one id per argument).
pub fn check_job_id(id: &str) -> Result<(), SlurmError> {
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    let task_set = |s: &str| {
        s.strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .is_some_and(|list| {
                list.split(',').all(|item| match item.split_once('-') {
                    Some((from, to)) => digits(from) && digits(to),
                    None => digits(item),
                })
            })
    };
    let valid = match id.split_once(['_', '+', '.']) {
        None => digits(id),
        Some((job, step)) if id.as_bytes()[job.len()] == b'.' => digits(job) && digits(step),
        Some((job, rest)) if id.as_bytes()[job.len()] == b'_' => {
            digits(job) && (digits(rest) || task_set(rest))
        }
        Some((job, component)) => digits(job) && digits(component),
    };
    if valid && id.len() <= 64 {
        Ok(())
    } else {
        Err(SlurmError::InvalidJobId { id: id.to_owned() })
    }
}

fn job_list(ids: &[String]) -> Result<String, SlurmError> {
    for id in ids {
        check_job_id(id)?;
    }
    Ok(ids.join(","))
}

/// The name of the user running this process (from the password database, else `$USER`).
pub fn current_user() -> Result<String, SlurmError> {
    // SAFETY: getpwuid_r writes into the buffers we own and passes back a pointer into them.
    unsafe {
        let uid = libc::getuid();
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result);
        if rc == 0 && !result.is_null() && !pwd.pw_name.is_null() {
            let name = std::ffi::CStr::from_ptr(pwd.pw_name)
                .to_string_lossy()
                .into_owned();
            if !name.is_empty() {
                return Ok(name);
            }
        }
    }
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| SlurmError::NoUser {
            reason: "no password entry for this uid and $USER is not set".to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn job_ids_are_checked_before_any_command() {
        let slurm = Slurm::new(Some(PathBuf::from("/nonexistent")), None);
        for bad in [
            "",
            "12;rm",
            "1 2",
            "-1",
            "1,2",
            "$(id)",
            "12_",
            "_4",
            "12_4_5",
            "12_[1-",
            "12_[a]",
            "12+",
            "12+x",
            "12_4+0",
            "12_[1-3];x",
            "12.",
            "12.x",
            "12.4.5",
        ] {
            assert!(matches!(
                slurm.cancel(&[bad.to_owned()]),
                Err(SlurmError::InvalidJobId { .. })
            ));
            assert!(matches!(
                slurm.jobs(&[bad.to_owned()]),
                Err(SlurmError::InvalidJobId { .. })
            ));
        }
        assert_eq!(slurm.jobs(&[]).unwrap(), vec![]);
        for good in [
            "1234",
            "1234_7",
            "1234_[1-3,7]",
            "1234_[5]",
            "1234+0",
            "1234.5",
        ] {
            assert!(check_job_id(good).is_ok(), "{good}");
        }
    }

    /// A directory of fake SLURM commands, for the faults a real SLURM cannot show on demand
    /// (a command that hangs, a missing binary). Everything else is tested on the real SLURM.
    struct FakeBin(PathBuf);

    impl FakeBin {
        fn new(tag: &str) -> FakeBin {
            let dir =
                std::env::temp_dir().join(format!("rck-fake-slurm-{tag}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            FakeBin(dir)
        }

        fn command(&self, name: &str, body: &str) {
            use std::os::unix::fs::PermissionsExt;
            let p = self.0.join(name);
            std::fs::write(&p, format!("#!/bin/bash\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    impl Drop for FakeBin {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_hanging_command_is_killed_at_the_timeout() {
        let bin = FakeBin::new("hang");
        // A child that keeps the pipes open: the whole process group must die.
        bin.command("squeue", "echo 'squeue: waiting' >&2; sleep 30 & sleep 30");
        let slurm = Slurm::new(Some(bin.0.clone()), None).with_timeout(Duration::from_millis(300));
        let started = Instant::now();
        let err = slurm.jobs(&["1".into()]).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not killed: {:?}",
            started.elapsed()
        );
        match err {
            SlurmError::Timeout { stderr, .. } => assert_eq!(stderr.trim(), "squeue: waiting"),
            other => panic!("expected a timeout, got {other}"),
        }
    }

    #[test]
    fn missing_commands_and_config_are_reported() {
        let bin = FakeBin::new("empty");
        let slurm = Slurm::new(Some(bin.0.clone()), None);
        assert!(!slurm.is_available());
        let err = slurm.partitions().unwrap_err();
        assert!(matches!(err, SlurmError::NotInstalled { .. }), "{err}");
        assert!(err.to_string().contains("`sinfo` not found"), "{err}");
        bin.command("sinfo", "exit 0");
        let slurm = Slurm::new(Some(bin.0.clone()), Some(bin.0.join("no-slurm.conf")));
        let err = slurm.partitions().unwrap_err();
        assert!(matches!(err, SlurmError::ConfigMissing { .. }), "{err}");
    }

    #[test]
    fn current_user_has_a_name() {
        let user = current_user().unwrap();
        crate::spec::validate_user_name(&user).unwrap();
    }
}
