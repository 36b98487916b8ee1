//! Job scripts as strings: the `up` job (scheduler + workers), the `grow` job (more workers for
//! the same scheduler) and the wrapper for a user's own `%%sbatch` cell.
//!
//! (Over 600 lines: the code is about 585 of them; the rest are the tests that render the job
//! scripts and run their shell parts.)
//!
//! What the workshop wrote by hand, generated from a validated [`ClusterSpec`]:
//!
//! 1. `#SBATCH` lines: job name, partition, nodes, tasks (`nodes × workers_per_node`),
//!    tasks per node, `--cpus-per-task` (= threads per worker, so that `--map-by core:PE=T` has
//!    the cores it binds to), time, memory, account, output file and a `--comment` tag
//!    ([`CommentTag`]) that marks the job as this kernel's;
//! 2. `umask 077`, so that what the job writes (the scheduler file, Dask's spill files) is the
//!    user's alone; the heartbeat watchdog (see [`JobContext::heartbeat_file`]);
//! 3. optionally, a packed environment unpacked to node-local `$TMP` by one `srun` task per node,
//!    then activated; or a venv/conda directory activated;
//! 4. the profile's extra environment, then Dask's TLS settings (`DASK_DISTRIBUTED__COMM__…`:
//!    encryption required, the cluster's CA, the node certificate for the scheduler, worker and
//!    client roles), exported before `mpirun` like every variable of the job: the ranks inherit
//!    mpirun's environment (Open MPI under SLURM starts its daemons with `srun`, which passes it
//!    on). A rank that lacked them could not connect at all (`tls://` needs a certificate), so a
//!    lost variable fails loudly instead of falling back to plain TCP;
//! 5. for the `up` job, the IPv4 address of the interface, which the dashboard (plain HTTP, no
//!    login) listens on instead of every interface (`--dashboard-address :PORT` binds 0.0.0.0);
//!    the scheduler is rank 0 on the batch host, where the script runs;
//! 6. `mpirun [--map-by POLICY] -np N [ARGS] dask-mpi --scheduler-file F --scheduler-port 0
//!    --dashboard-address IP:PORT --protocol tls --interface IF --local-directory D
//!    --worker-class distributed.Worker --worker-options '{"death_timeout": 300}' --nthreads T
//!    [--memory-limit M] --name PREFIX-$SLURM_JOB_ID` (`--protocol tcp` for a cluster with
//!    `security = "none"`).
//!
//! Pitfalls from real runs (slurm-lab/NOTES.md) that shape it: `--scheduler-port 0` (a fixed
//! 8786 collides when two clusters share a node); `--worker-class distributed.Worker`, never
//! `--no-nanny` (broken in dask-mpi 2026.3); worker names unique per job (a grow job whose names
//! repeat loses its workers), hence the `$SLURM_JOB_ID` in every prefix.
//!
//! Every value is either validated to a strict character set (everything on `#SBATCH` lines) or
//! shell-quoted (paths, arguments, environment values; `$NAME` references stay live, see
//! [`ShellText`]).

use std::fmt::Write as _;

/// Seconds a worker keeps trying to reach a scheduler that has gone before it closes
/// (`death_timeout`); long enough for a scheduler that starts slowly on a loaded node.
const WORKER_DEATH_TIMEOUT_SECS: u32 = 300;

/// dask-mpi's `--worker-options`: keyword arguments of the worker class. `death_timeout`
/// always (a worker whose scheduler is gone closes instead of retrying until the job's
/// walltime, and its mpirun ends and frees the nodes), and the profile's resources and
/// lifetime when set.
fn worker_options(spec: &ClusterSpec) -> serde_json::Value {
    let mut options = serde_json::Map::new();
    options.insert("death_timeout".into(), WORKER_DEATH_TIMEOUT_SECS.into());
    if !spec.worker_resources.is_empty() {
        options.insert(
            "resources".into(),
            serde_json::to_value(&spec.worker_resources).expect("resources serialise"),
        );
    }
    if let Some(lifetime) = &spec.lifetime {
        options.insert("lifetime".into(), lifetime.clone().into());
    }
    if let Some(stagger) = &spec.lifetime_stagger {
        options.insert("lifetime_stagger".into(), stagger.clone().into());
    }
    serde_json::Value::Object(options)
}
use std::path::Path;

mod allocation;
pub use allocation::{render_in_allocation, LAUNCH_ID_VAR};

use crate::model::JobRole;
use crate::spec::{validate_user_name, ClusterSpec, PythonEnv, Security, ShellText, SpecError};
use crate::tls::{self, ClusterTls};

/// The first field of every comment tag.
pub const TAG_PREFIX: &str = "rust-cluster-kernel";

/// A job script could not be rendered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScriptError {
    /// A value of the spec or the context is not allowed.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A batch job was asked for with no script in it.
    #[error("the batch script is empty")]
    EmptyBatchScript,
    /// The spec asks for TLS but the context names no certificates.
    #[error("cluster {0} uses TLS, but no certificate directory was given")]
    NoCertificates(String),
}

/// The `--comment` that marks a job as started by this kernel:
/// `rust-cluster-kernel:user=U:cluster=NAME:role=ROLE` (`cluster=` is left out for a `%%sbatch`
/// job that belongs to no cluster). A lost registry is rebuilt from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentTag {
    /// The user who submitted the job.
    pub user: String,
    /// The cluster the job belongs to, if any.
    pub cluster: Option<String>,
    /// What the job does for its cluster.
    pub role: JobRole,
}

impl CommentTag {
    /// Checks the user and cluster names (they go into an `#SBATCH` line).
    pub fn validate(&self) -> Result<(), SpecError> {
        validate_user_name(&self.user)?;
        if let Some(cluster) = &self.cluster {
            crate::spec::validate_cluster_name(cluster)?;
        }
        Ok(())
    }

    /// The tag as it goes into `--comment`.
    pub fn render(&self) -> String {
        let mut s = format!("{TAG_PREFIX}:user={}", self.user);
        if let Some(cluster) = &self.cluster {
            let _ = write!(s, ":cluster={cluster}");
        }
        let _ = write!(s, ":role={}", role_name(self.role));
        s
    }

    /// Reads a tag back from a job's comment; `None` if the comment is not one of ours.
    pub fn parse(comment: &str) -> Option<CommentTag> {
        let mut fields = comment.trim().split(':');
        if fields.next()? != TAG_PREFIX {
            return None;
        }
        let (mut user, mut cluster, mut role) = (None, None, None);
        for field in fields {
            match field.split_once('=')? {
                ("user", v) => user = Some(v.to_owned()),
                ("cluster", v) => cluster = Some(v.to_owned()),
                ("role", "scheduler") => role = Some(JobRole::Scheduler),
                ("role", "grow") => role = Some(JobRole::Grow),
                ("role", "batch") => role = Some(JobRole::Batch),
                _ => return None,
            }
        }
        let tag = CommentTag {
            user: user?,
            cluster,
            role: role?,
        };
        tag.validate().ok()?;
        Some(tag)
    }
}

fn role_name(role: JobRole) -> &'static str {
    match role {
        JobRole::Scheduler => "scheduler",
        JobRole::Grow => "grow",
        JobRole::Batch => "batch",
    }
}

/// What the kernel decides for a job, beyond the cluster spec.
#[derive(Debug, Clone, Copy)]
pub struct JobContext<'a> {
    /// The submitting user (goes into the comment tag).
    pub user: &'a str,
    /// The Dask scheduler file (written by the `up` job's rank 0, read by every worker). Must be
    /// on a file system that the nodes and the kernel share.
    pub scheduler_file: &'a Path,
    /// The kernel's heartbeat file. While the job runs, a watchdog loop in the batch script
    /// cancels the job (`scancel $SLURM_JOB_ID`) once this file's modification time is older
    /// than the spec's `watchdog_minutes` (a missing file counts as stale), so a kernel killed
    /// without a shutdown does not burn the allocation until its time limit. The file must be on
    /// a file system the batch host sees (e.g. under `$HOME`), and the kernel must touch it more
    /// often than the timeout. `None`, or `watchdog_minutes = 0`, renders no watchdog.
    pub heartbeat_file: Option<&'a Path>,
    /// The cluster's certificates (on a file system the nodes see), for a spec with
    /// [`Security::Tls`]; the script names their paths, never their contents.
    pub tls: Option<&'a ClusterTls>,
}

/// A rendered job script and what it brings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobScript {
    /// What the job does.
    pub role: JobRole,
    /// The SLURM job name (`NAME` or `NAME-grow`).
    pub job_name: String,
    /// The comment tag on the job.
    pub tag: String,
    /// MPI ranks in the job.
    pub ntasks: u32,
    /// Dask workers the job adds once it runs.
    pub workers_expected: u32,
    /// The script text (bash), ready for `sbatch`.
    pub text: String,
}

/// The `up` job: rank 0 runs the scheduler and writes the scheduler file, ranks 1.. are workers.
/// It needs at least two ranks (`nodes × workers_per_node ≥ 2`), or the cluster would have no
/// worker at all.
pub fn render_up(spec: &ClusterSpec, ctx: &JobContext<'_>) -> Result<JobScript, ScriptError> {
    if spec.ntasks() < 2 {
        return Err(SpecError::Invalid {
            field: "workers_per_node".to_owned(),
            value: spec.workers_per_node.to_string(),
            reason: format!(
                "{} node(s) × {} rank(s) leave no rank for a worker next to the scheduler; \
                 use at least 2 ranks in all",
                spec.nodes, spec.workers_per_node
            ),
        }
        .into());
    }
    render(spec, ctx, JobRole::Scheduler)
}

/// The `grow` job: every rank is a worker (`dask-mpi --no-scheduler`) that joins the scheduler
/// in the scheduler file, named `NAME-grow-$SLURM_JOB_ID-RANK` so that no name repeats.
///
/// With a drain margin ([`ClusterSpec::drain_margin`]), SLURM signals the job's shell that
/// long before the time limit (`#SBATCH --signal=B:USR1@SECONDS`), and its trap retires the
/// job's workers through the scheduler, so that their results move to the other workers
/// instead of being lost.
pub fn render_grow(spec: &ClusterSpec, ctx: &JobContext<'_>) -> Result<JobScript, ScriptError> {
    spec.check_drain_fits_the_time()?;
    render(spec, ctx, JobRole::Grow)
}

/// A literal word for the shell: no control characters, then `shlex::try_quote`.
fn literal_word(field: &str, value: &str) -> Result<String, SpecError> {
    let invalid = |reason: &str| SpecError::Invalid {
        field: field.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    if value.chars().any(char::is_control) {
        return Err(invalid(
            "control characters (newline, tab, …) are not allowed",
        ));
    }
    shlex::try_quote(value)
        .map(|q| q.into_owned())
        .map_err(|_| invalid("cannot be quoted for the shell"))
}

fn path_word(field: &str, path: &Path) -> Result<String, SpecError> {
    let s = path.to_str().ok_or_else(|| SpecError::Invalid {
        field: field.to_owned(),
        value: path.to_string_lossy().into_owned(),
        reason: "the path is not valid UTF-8".to_owned(),
    })?;
    literal_word(field, s)
}

fn render(
    spec: &ClusterSpec,
    ctx: &JobContext<'_>,
    role: JobRole,
) -> Result<JobScript, ScriptError> {
    spec.validate()?;
    let tag = CommentTag {
        user: ctx.user.to_owned(),
        cluster: Some(spec.name.clone()),
        role,
    };
    tag.validate()?;
    let scheduler_file = path_word("scheduler_file", ctx.scheduler_file)?;
    let tls_dir = match (spec.security, ctx.tls) {
        (Security::Tls, Some(files)) => Some(path_word("tls", files.dir())?),
        (Security::Tls, None) => return Err(ScriptError::NoCertificates(spec.name.clone())),
        (Security::None, _) => None,
    };
    let grow = role == JobRole::Grow;
    let job_name = if grow {
        format!("{}-grow", spec.name)
    } else {
        spec.name.clone()
    };
    let ntasks = spec.ntasks();
    let workers_expected = if grow {
        spec.workers_in_grow_job()
    } else {
        spec.workers_in_up_job()
    };

    let mut s = String::new();
    s.push_str("#!/bin/bash\n");
    let _ = writeln!(s, "#SBATCH --job-name={job_name}");
    // The lines a site may skip (`skip_directives`): it rejects them, or sets them itself.
    let skippable = [
        ("partition", Some(spec.partition.clone())),
        ("nodes", Some(spec.nodes.to_string())),
        ("ntasks", Some(ntasks.to_string())),
        ("ntasks-per-node", Some(spec.workers_per_node.to_string())),
        ("cpus-per-task", Some(spec.threads_per_worker.to_string())),
        ("time", Some(spec.time.clone())),
        ("mem", spec.mem.clone()),
        ("mem-per-cpu", spec.mem_per_cpu.clone()),
        ("account", spec.account.clone()),
        ("qos", spec.qos.clone()),
        ("constraint", spec.constraint.clone()),
        ("reservation", spec.reservation.clone()),
        ("gres", spec.gres.clone()),
        ("gpus-per-node", spec.gpus_per_node.clone()),
        // `B:`: the batch shell alone, whose trap drains; mpirun would pass USR1 on to the
        // ranks, and Python dies of it.
        (
            "signal",
            spec.drain_margin_secs()
                .filter(|_| grow)
                .map(|margin| format!("B:USR1@{margin}")),
        ),
    ];
    let skipped = |option: &str| spec.skip_directives.iter().any(|s| s == option);
    for (option, value) in skippable {
        if let Some(value) = value.filter(|_| !skipped(option)) {
            let _ = writeln!(s, "#SBATCH --{option}={value}");
        }
    }
    if spec.exclusive && !skipped("exclusive") {
        s.push_str("#SBATCH --exclusive\n");
    }
    // The site's other options, each checked to be one `--name[=value]`.
    for directive in &spec.extra_directives {
        let _ = writeln!(s, "#SBATCH {directive}");
    }
    s.push_str(&output_line(&spec.log_dir));
    let _ = writeln!(s, "#SBATCH --comment={}", tag.render());
    s.push_str("#\n");
    if grow {
        let _ = writeln!(
            s,
            "# rust-cluster-kernel: {ntasks} more Dask worker(s) for cluster {} (profile {}).",
            spec.name, spec.profile
        );
    } else {
        let _ = writeln!(
            s,
            "# rust-cluster-kernel: Dask cluster {} (profile {}): rank 0 is the scheduler,",
            spec.name, spec.profile
        );
        let _ = writeln!(s, "# ranks 1-{} are workers.", ntasks.saturating_sub(1));
    }
    if grow && spec.drain_margin_secs().is_some() {
        // Bash's default for USR1 is to die: a drain asked for during the set-up (a short
        // time limit, a slow staging) is noted instead, and no worker starts.
        s.push_str(DRAIN_EARLY_TRAP);
    }
    s.push_str(&job_setup(spec, ctx, tls_dir.as_deref(), &CANCEL_THE_JOB)?);
    if !grow {
        s.push_str(&dashboard_ip(&literal_word("interface", &spec.interface)?));
    }

    s.push('\n');
    if grow {
        s.push_str(
            "# Every rank is a worker that joins the scheduler named in the scheduler file.\n",
        );
    } else {
        s.push_str(
            "# --scheduler-port 0: a free port (a fixed 8786 collides when clusters share a node).\n",
        );
    }
    s.push_str("# --worker-class (distributed.Worker unless the profile says): dask-mpi's --no-nanny is broken (2026.3).\n");
    s.push_str("# $SLURM_JOB_ID in --name keeps worker names unique across jobs.\n");
    let mut line = String::from("mpirun");
    if let Some(map_by) = spec.map_by.value_for(spec.threads_per_worker) {
        let _ = write!(line, " --map-by {map_by}");
    }
    let _ = write!(line, " -np {ntasks}");
    for arg in &spec.mpirun_args {
        line.push(' ');
        line.push_str(&literal_word("mpirun_args", arg)?);
    }
    line.push_str(" dask-mpi");
    let mut args: Vec<String> = Vec::new();
    if grow {
        args.push("--no-scheduler".to_owned());
    }
    args.push(format!("--scheduler-file {scheduler_file}"));
    if !grow {
        args.push("--scheduler-port 0".to_owned());
        args.push(format!(
            "--dashboard-address \"$rck_ip\":{}",
            spec.dashboard_port
        ));
    }
    args.push(format!("--protocol {}", protocol(spec.security)));
    args.push(format!(
        "--interface {}",
        literal_word("interface", &spec.interface)?
    ));
    args.push(format!(
        "--local-directory {}",
        ShellText::parse("local_directory", &spec.local_directory)?.to_shell()
    ));
    args.push(format!(
        "--worker-class {}",
        literal_word("worker_class", &spec.worker_class)?
    ));
    args.push(format!(
        "--worker-options {}",
        literal_word("worker_options", &worker_options(spec).to_string())?
    ));
    args.push(format!("--nthreads {}", spec.threads_per_worker));
    if let Some(limit) = spec.worker_memory_limit() {
        args.push(format!(
            "--memory-limit {}",
            literal_word("memory_limit", &limit)?
        ));
    }
    let prefix = if grow {
        format!("{}-grow", spec.name)
    } else {
        spec.name.clone()
    };
    args.push(format!("--name {prefix}-\"$SLURM_JOB_ID\""));
    let mut launch = line;
    for arg in args {
        launch.push_str(" \\\n  ");
        launch.push_str(&arg);
    }
    launch.push('\n');
    match spec.drain_margin_secs().filter(|_| grow) {
        Some(margin) => s.push_str(&drain_launch(&launch, margin, &scheduler_file, &prefix)),
        None => s.push_str(&launch),
    }

    Ok(JobScript {
        role,
        job_name,
        tag: tag.render(),
        ntasks,
        workers_expected,
        text: s,
    })
}

/// Seconds the drain of a grow job may take: its margin less half a minute for the workers to
/// close and mpirun to end before the time limit, and at least half the margin.
fn drain_timeout_secs(margin: u32) -> u32 {
    margin.saturating_sub(30).max(margin / 2)
}

/// The grow job's first trap: a USR1 that comes before the workers start is noted (see
/// [`drain_launch`]).
const DRAIN_EARLY_TRAP: &str =
    "trap 'rck_drain_early=1' USR1  # the drain, before the workers start\n";

/// The drain's Python (`argv`: the scheduler file, the job's worker name prefix): retires
/// every worker of the scheduler whose name is the prefix and a rank (`NAME-grow-JOB-3`; a
/// worker class that starts several workers per rank adds `-N`), with `close_workers`, and
/// logs what it did. Exit status 1 if some could not retire (their results had nowhere to go).
/// No `'` in it: the script holds it in single quotes.
const DRAIN_PY: &str = r#"import sys
from distributed import Client
scheduler_file, prefix = sys.argv[1], sys.argv[2]
def log(*words):
    print("rust-cluster-kernel drain:", *words, flush=True)
with Client(scheduler_file=scheduler_file, timeout=30) as client:
    try:
        workers = client.scheduler_info(n_workers=-1)["workers"]
    except Exception:
        workers = client.scheduler_info()["workers"]
    ours = {address: str(w["name"]) for address, w in workers.items()
            if str(w["name"]).startswith(prefix)
            and str(w["name"])[len(prefix):].replace("-", "").isdigit()}
    if not ours:
        log("no worker of this job is left")
        sys.exit(0)
    names = sorted(ours.values())
    held = sum(len(keys) for address, keys in client.has_what().items() if address in ours)
    log("retiring", len(names), "worker(s) that hold", held, "result(s):", *names)
    retired = client.retire_workers(names=names, close_workers=True)
    log("retired", len(retired), "of", len(names), "worker(s); their results moved to the others")
    sys.exit(0 if len(retired) == len(names) else 1)
"#;

/// A grow job's launch with a drain: `launch` (the `mpirun` command) in a function, run in the
/// background while the shell waits, so that the `USR1` trap runs at once (bash runs a trap
/// only between commands); the trap retires the job's workers through the scheduler
/// ([`DRAIN_PY`], bounded by [`drain_timeout_secs`]), after which they close and mpirun ends
/// with status 0 (a USR1 before the launch, noted by [`DRAIN_EARLY_TRAP`], starts no worker).
/// Run as a local process group (no time limit), mpirun stays in the
/// foreground: bash's background commands ignore SIGINT, by which the group is ended.
fn drain_launch(launch: &str, margin: u32, scheduler_file: &str, worker_prefix: &str) -> String {
    debug_assert!(!DRAIN_PY.contains('\''));
    let timeout = drain_timeout_secs(margin);
    let launch = launch
        .lines()
        .map(|l| format!("  {l}\n"))
        .collect::<String>();
    format!(
        r#"
# Drain before the time limit (drain_margin = {margin}): SLURM sends USR1 to this shell {margin} s
# before it (up to 60 s earlier: SLURM looks about once a minute), as `scancel --signal=USR1
# --batch JOBID` does at once. rck_drain then retires this job's workers through the scheduler
# (for at most {timeout} s): their results move to the cluster's other workers, the workers close,
# and mpirun ends with them.
rck_launch() {{
{launch}}}
rck_drain_py='{DRAIN_PY}'
rck_drain() {{
  if [ -n "${{rck_draining:-}}" ]; then return 0; fi
  rck_draining=1
  echo "rust-cluster-kernel drain: USR1 at $(date +%T); retiring workers {worker_prefix}-$SLURM_JOB_ID-* (at most {timeout} s)"
  timeout -k 10 {timeout} python3 -c "$rck_drain_py" {scheduler_file} "{worker_prefix}-$SLURM_JOB_ID-" \
    || echo "rust-cluster-kernel drain: not finished (status $?); workers that are left stay until the time limit"
}}
if [ -n "${{rck_drain_early:-}}" ]; then
  echo "rust-cluster-kernel drain: USR1 came before the workers started; starting none"
  exit 0
fi
if [ -n "${{RCK_PROCESS_GROUP_JOB:-}}" ]; then
  # A local process group: no time limit, and SIGINT, which ends the group, must reach mpirun.
  rck_launch
  exit
fi
trap 'rck_signalled=1; rck_drain' USR1
rck_launch &
rck_launch_pid=$!
while :; do
  rck_signalled=
  rck_status=0
  wait "$rck_launch_pid" || rck_status=$?
  if [ -z "$rck_signalled" ]; then break; fi
done
exit "$rck_status"
"#
    )
}

/// How the watchdog ends what it guards.
struct WatchdogEnd {
    /// What it says it does (shell text, may name variables).
    what: &'static str,
    /// The command.
    command: &'static str,
}

/// Set (to `1`) in the environment of a job script that runs as a local process group, not as
/// a SLURM job: its watchdog then ends the group.
pub const PROCESS_GROUP_JOB_VAR: &str = "RCK_PROCESS_GROUP_JOB";

/// A batch job's watchdog cancels the job; run as a local process group, it interrupts the
/// group twice (`mpirun` forwards the first SIGINT to its ranks, which Dask's outlive, and
/// aborts the job on the second).
const CANCEL_THE_JOB: WatchdogEnd = WatchdogEnd {
    what: "ending job $SLURM_JOB_ID",
    command: "if [ -n \"${RCK_PROCESS_GROUP_JOB:-}\" ]; then kill -INT 0; sleep 2; kill -INT 0; \
              else scancel \"$SLURM_JOB_ID\"; fi",
};

/// The part every cluster job shares, up to its launch: strict shell options, the private
/// umask, `$TMP`, the watchdog (ending with `end`), the site's prologue, the Python
/// environment, the profile's environment, and Dask's TLS settings.
fn job_setup(
    spec: &ClusterSpec,
    ctx: &JobContext<'_>,
    tls_dir: Option<&str>,
    end: &WatchdogEnd,
) -> Result<String, ScriptError> {
    let mut s = String::new();
    s.push_str("set -eo pipefail\n");
    s.push_str("umask 077  # what the job writes (scheduler file, spill files) is yours alone\n");
    s.push_str(
        ": \"${TMP:=/tmp}\"  # node-local scratch (set per job on the workshop's cluster)\n",
    );
    if let (Some(heartbeat), Some(secs)) = (ctx.heartbeat_file, spec.watchdog_secs()) {
        s.push_str(&watchdog(
            &path_word("heartbeat_file", heartbeat)?,
            secs,
            end,
        ));
    }
    if !spec.prologue.is_empty() {
        s.push_str("\n# The site's set-up (the profile's prologue), as written.\n");
        for line in &spec.prologue {
            let _ = writeln!(s, "{line}");
        }
    }
    s.push_str(&python_env(&spec.python_env, &spec.prologue)?);
    if !spec.env.is_empty() {
        s.push_str("\n# Environment from the profile.\n");
        for (name, value) in &spec.env {
            let value = ShellText::parse(&format!("env.{name}"), value)?.to_shell();
            let _ = writeln!(s, "export {name}={value}");
        }
    }
    s.push_str(&security_lines(tls_dir));
    Ok(s)
}

/// The scheme of every Dask address of a cluster: `tls` or `tcp`.
pub fn protocol(security: Security) -> &'static str {
    match security {
        Security::Tls => "tls",
        Security::None => "tcp",
    }
}

/// Dask's TLS settings for the job (`tls_dir` is the quoted certificate directory), or the
/// warning of a plain-TCP cluster.
fn security_lines(tls_dir: Option<&str>) -> String {
    let Some(dir) = tls_dir else {
        return "\n# security = \"none\": plain TCP without authentication. Anyone who can reach \
                these ports\n# can run code as you.\n"
            .to_owned();
    };
    let mut s = String::from(
        "\n# Mutual TLS: every Dask connection is encrypted, and both ends must show a certificate\n\
         # of this cluster's own CA (made by the kernel; the keys are 0600 files only you can read).\n\
         # Scheduler, workers and tasks that open a Client use the node certificate.\n",
    );
    let _ = writeln!(s, "rck_tls={dir}");
    let _ = writeln!(s, "export {}=True", tls::ENV_REQUIRE_ENCRYPTION);
    let _ = writeln!(
        s,
        "export {}=\"$rck_tls\"/{}",
        tls::ENV_CA_FILE,
        tls::CA_FILE
    );
    for [cert, key] in [tls::ENV_SCHEDULER, tls::ENV_WORKER, tls::ENV_CLIENT] {
        let _ = writeln!(s, "export {cert}=\"$rck_tls\"/{}", tls::NODE_CERT);
        let _ = writeln!(s, "export {key}=\"$rck_tls\"/{}", tls::NODE_KEY);
    }
    s
}

/// The scheduler's HTTP routes: Dask's defaults without `distributed.http.proxy`, which
/// forwards requests to any host and port when `jupyter-server-proxy` is installed in the
/// environment (as it often is next to JupyterLab) and would make the dashboard an open relay.
/// Dask's HTTP API (`distributed.http.scheduler.api`) is not among them either.
const SCHEDULER_HTTP_ROUTES: &str = "['distributed.http.scheduler.prometheus', \
     'distributed.http.scheduler.info', 'distributed.http.scheduler.json', \
     'distributed.http.health', 'distributed.http.statics']";

/// `rck_ip`: the IPv4 address of the interface (`interface_word`, quoted), found the way Dask's
/// `--interface` finds it (psutil, the first IPv4 address), for the dashboard to listen on; and
/// the dashboard's routes ([`SCHEDULER_HTTP_ROUTES`]).
fn dashboard_ip(interface_word: &str) -> String {
    format!(
        r#"
# The dashboard is plain HTTP without a login: it listens on this interface's address only,
# not on every interface (the scheduler, rank 0, runs on this node), and serves Dask's pages
# but neither its HTTP API nor its proxy (which would relay anyone to any host and port).
rck_ip=$(python3 -c 'import socket, sys, psutil
ips = [a.address for a in psutil.net_if_addrs().get(sys.argv[1], []) if a.family == socket.AF_INET]
if not ips:
    sys.exit("rust-cluster-kernel: interface %s has no IPv4 address on this node" % sys.argv[1])
print(ips[0])' {interface_word})
export DASK_DISTRIBUTED__SCHEDULER__HTTP__ROUTES="{SCHEDULER_HTTP_ROUTES}"
"#
    )
}

/// `#SBATCH --output="LOG_DIR/slurm-%j.out"` (the directory is validated: no quotes, `%`, `$`).
fn output_line(log_dir: &Path) -> String {
    format!(
        "#SBATCH --output=\"{}\"\n",
        log_dir.join("slurm-%j.out").display()
    )
}

/// The heartbeat watchdog: a background loop that ends the job (`end`) when the heartbeat file
/// is older than `secs`. Bash + coreutils `stat -c %Y` + `date +%s`.
fn watchdog(heartbeat_word: &str, secs: u64, end: &WatchdogEnd) -> String {
    let interval = (secs / 4).clamp(1, 30);
    let WatchdogEnd { what, command } = end;
    format!(
        r#"
# Watchdog: end this job if the kernel's heartbeat file has not been touched for {secs} s
# (the kernel died without cancelling it). Checked every {interval} s.
rck_heartbeat={heartbeat_word}
rck_watchdog() {{
  local now mtime
  while sleep {interval}; do
    now=$(date +%s)
    mtime=$(stat -c %Y "$rck_heartbeat" 2>/dev/null) || mtime=0
    if [ $((now - mtime)) -ge {secs} ]; then
      echo "rust-cluster-kernel watchdog: $rck_heartbeat not touched for {secs} s; {what}" >&2
      {command}
      return 0
    fi
  done
}}
rck_watchdog &
rck_watchdog_pid=$!
trap 'kill "$rck_watchdog_pid" 2>/dev/null || true' EXIT
"#
    )
}

/// Activation of the Python environment that has dask-mpi.
fn python_env(env: &PythonEnv, prologue: &[String]) -> Result<String, SpecError> {
    const ACTIVATE: &str = r#"rck_activate() {  # a venv or conda environment directory
  if [ -f "$1/bin/activate" ]; then
    source "$1/bin/activate"
  else
    export PATH="$1/bin:$PATH"
  fi
}
"#;
    Ok(match env {
        PythonEnv::Inherit => String::new(),
        PythonEnv::Activate(dir) => {
            let dir = ShellText::parse("python_env", dir)?.to_shell();
            format!("\n# The Python environment with dask-mpi.\n{ACTIVATE}rck_activate {dir}\n")
        }
        PythonEnv::Staged(archive) => {
            let archive = ShellText::parse("env_archive", archive)?.to_shell();
            // The site's set-up runs on every node that unpacks, before it unpacks: the lines
            // reach the srun's shell through a variable, as written (a quoted here-document).
            let (prologue_text, run_prologue) = if prologue.is_empty() {
                (String::new(), "")
            } else {
                (
                    format!(
                        "RCK_PROLOGUE=$(cat <<'{end}'\n{}\n{end}\n)\nexport RCK_PROLOGUE\n",
                        prologue.join("\n"),
                        end = crate::spec::PROLOGUE_END
                    ),
                    "\n  eval \"$RCK_PROLOGUE\"",
                )
            };
            format!(
                r#"
# Unpack the packed environment to node-local $TMP, one task per node (after the prologue),
# then activate it.
export RCK_ENV_ARCHIVE={archive}
{prologue_text}srun --nodes="$SLURM_JOB_NUM_NODES" --ntasks="$SLURM_JOB_NUM_NODES" --ntasks-per-node=1 bash -c '
  set -eo pipefail{run_prologue}
  d="${{TMP:-/tmp}}/rck-env-$SLURM_JOB_ID"
  mkdir -p "$d"
  tar -xf "$RCK_ENV_ARCHIVE" -C "$d"
  if [ -x "$d/bin/conda-unpack" ]; then source "$d/bin/activate" && conda-unpack; fi
  echo "rust-cluster-kernel: environment unpacked to $d on ${{SLURMD_NODENAME:-$(hostname)}}" >&2
'
{ACTIVATE}rck_activate "$TMP/rck-env-$SLURM_JOB_ID"
"#
            )
        }
    })
}

/// The user's `%%sbatch` cell body, ready for `sbatch`.
///
/// Decisions (documented for the magic's help):
/// - a body without a `#!` first line gets `#!/bin/bash` (sbatch refuses a script without one);
/// - `#SBATCH --comment=TAG` is added so the job is tracked and found again after a restart,
///   unless the user set `--comment` themselves (in the body's leading `#SBATCH` lines or in
///   `sbatch_args`): the user's value wins, and the job is then tracked only by its id;
/// - `#SBATCH --output="LOG_DIR/slurm-%j.out"` is added unless the user set `-o`/`--output`;
/// - our lines go right after the `#!` line; nothing else in the body changes.
pub fn wrap_batch(
    body: &str,
    tag: &CommentTag,
    log_dir: &Path,
    sbatch_args: &[String],
) -> Result<String, ScriptError> {
    if body.trim().is_empty() {
        return Err(ScriptError::EmptyBatchScript);
    }
    tag.validate()?;
    crate::spec::validate_sbatch_path("log_dir", &log_dir.to_string_lossy())?;
    let (shebang, rest) = match body.strip_prefix("#!") {
        Some(_) => match body.split_once('\n') {
            Some((first, rest)) => (first.to_owned(), rest),
            None => (body.to_owned(), ""),
        },
        None => ("#!/bin/bash".to_owned(), body),
    };
    let options = leading_sbatch_options(rest)
        .into_iter()
        .chain(sbatch_args.iter().cloned())
        .collect::<Vec<_>>();
    let user_sets = |long: &str, short: Option<&str>| {
        options.iter().any(|o| {
            o == long
                || o.starts_with(&format!("{long}="))
                || short.is_some_and(|s| o.starts_with(s))
        })
    };
    let mut s = shebang;
    s.push('\n');
    if !user_sets("--comment", None) {
        let _ = writeln!(s, "#SBATCH --comment={}", tag.render());
    }
    if !user_sets("--output", Some("-o")) {
        s.push_str(&output_line(log_dir));
    }
    s.push_str(rest);
    if !s.ends_with('\n') {
        s.push('\n');
    }
    Ok(s)
}

/// The option words of the `#SBATCH` lines that sbatch reads: those before the first line that
/// is neither blank nor a comment.
fn leading_sbatch_options(script: &str) -> Vec<String> {
    let mut options = Vec::new();
    for line in script.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if !line.starts_with('#') {
            break;
        }
        if let Some(args) = line.strip_prefix("#SBATCH") {
            let words = shlex::split(args).unwrap_or_default();
            options.extend(words.into_iter().take_while(|w| !w.starts_with('#')));
        }
    }
    options
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{Overrides, Profile};
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    const SNAPSHOTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots");

    /// Compares `text` with the checked-in snapshot `name`; `UPDATE_SNAPSHOTS=1` rewrites it.
    fn assert_snapshot(name: &str, text: &str) {
        let path = PathBuf::from(SNAPSHOTS).join(name);
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
            std::fs::create_dir_all(SNAPSHOTS).unwrap();
            std::fs::write(&path, text).unwrap();
        }
        let expected = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_SNAPSHOTS=1)", path.display()));
        assert_eq!(text, expected, "snapshot {name} differs");
    }

    fn ctx<'a>(scheduler: &'a Path, heartbeat: Option<&'a Path>) -> JobContext<'a> {
        JobContext {
            user: "alice",
            scheduler_file: scheduler,
            heartbeat_file: heartbeat,
            tls: Some(&TLS),
        }
    }

    static TLS: std::sync::LazyLock<ClusterTls> = std::sync::LazyLock::new(|| {
        ClusterTls::in_dir("/home/alice/.local/state/rust-cluster-kernel/demo/tls")
    });

    fn workshop(overrides: Overrides) -> ClusterSpec {
        Profile::workshop()
            .resolve("demo", &overrides, Path::new("/home/alice/notebooks"))
            .unwrap()
    }

    const SCHED: &str = "/home/alice/.local/state/rust-cluster-kernel/demo/scheduler.json";
    const HEARTBEAT: &str = "/home/alice/.local/state/rust-cluster-kernel/heartbeat-4242";

    fn bash_n(text: &str) {
        let dir = std::env::temp_dir().join(format!("rck-script-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!("{:x}.sh", text.len() ^ (text.as_ptr() as usize)));
        std::fs::write(&file, text).unwrap();
        let out = std::process::Command::new("bash")
            .arg("-n")
            .arg(&file)
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&file);
        assert!(
            out.status.success(),
            "bash -n failed: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn workshop_up_script() {
        let spec = workshop(Overrides::default());
        let job = render_up(&spec, &ctx(Path::new(SCHED), Some(Path::new(HEARTBEAT)))).unwrap();
        assert_eq!(job.role, JobRole::Scheduler);
        assert_eq!((job.ntasks, job.workers_expected), (4, 3));
        assert_eq!(
            job.tag,
            "rust-cluster-kernel:user=alice:cluster=demo:role=scheduler"
        );
        assert_snapshot("workshop-up.sh", &job.text);
        bash_n(&job.text);
    }

    #[test]
    fn workshop_up_script_with_staging() {
        let spec = workshop(Overrides {
            env_archive: Some("$HOME/envs/dask env.tar.gz".into()),
            account: Some("hk-project".into()),
            qos: Some("normal".into()),
            skip_directives: Some(vec!["mem".into(), "ntasks-per-node".into()]),
            extra_directives: Some(vec!["--mem-per-cpu=2000".into(), "--exclusive".into()]),
            prologue: Some(vec![
                "module purge".into(),
                "module load devel/python/3.12 mpi/openmpi/4.1".into(),
            ]),
            constraint: Some("ib&[skylake|icelake]".into()),
            reservation: Some("workshop-2026".into()),
            gres: Some("gpu:a100:2".into()),
            memory_limit: Some("40GiB".into()),
            login_host: Some("uc2.scc.kit.edu".into()),
            env: Some(BTreeMap::from([
                ("DASK_DISTRIBUTED__WORKER__DAEMON".into(), "False".into()),
                ("MY_PATH".into(), "$HOME/bin:$PATH".into()),
            ])),
            mpirun_args: Some(vec!["--mca".into(), "btl".into(), "^openib".into()]),
            ..Overrides::default()
        });
        let job = render_up(&spec, &ctx(Path::new(SCHED), Some(Path::new(HEARTBEAT)))).unwrap();
        assert_snapshot("workshop-up-staged.sh", &job.text);
        bash_n(&job.text);
    }

    #[test]
    fn gpu_profile_script() {
        // The README's GPU profile: one GPU per worker, dask-cuda's worker, a lifetime that
        // retires workers before the walltime.
        let spec = workshop(Overrides {
            partition: Some("gpu_4".into()),
            nodes: Some(1),
            workers_per_node: Some(4),
            threads_per_worker: Some(8),
            gres: Some("gpu:4".into()),
            worker_class: Some("dask_cuda.CUDAWorker".into()),
            worker_resources: Some(BTreeMap::from([("GPU".into(), 1.0)])),
            lifetime: Some("55m".into()),
            lifetime_stagger: Some("2m".into()),
            ..Overrides::default()
        });
        let job = render_up(&spec, &ctx(Path::new(SCHED), Some(Path::new(HEARTBEAT)))).unwrap();
        assert_snapshot("gpu-up.sh", &job.text);
        bash_n(&job.text);
    }

    #[test]
    fn grow_jobs_drain_before_their_time_limit_unless_off() {
        let spec = workshop(Overrides::default());
        let grow = render_grow(&spec, &ctx(Path::new(SCHED), None))
            .unwrap()
            .text;
        assert!(grow.contains("\n#SBATCH --signal=B:USR1@300\n"), "{grow}");
        assert!(
            grow.contains("\ntrap 'rck_signalled=1; rck_drain' USR1\n"),
            "{grow}"
        );
        assert!(grow.contains("timeout -k 10 270 python3"), "{grow}");
        bash_n(&grow);
        // The up job's end is the cluster's: its scheduler goes, and with it every result.
        let up = render_up(&spec, &ctx(Path::new(SCHED), None)).unwrap().text;
        assert!(
            !up.contains("#SBATCH --signal") && !up.contains("rck_drain"),
            "{up}"
        );
        // Skipped, the line goes and the trap stays (a site's own signal, or a hand's, drains).
        let mut skipped = spec.clone();
        skipped.skip_directives = vec!["signal".into()];
        let text = render_grow(&skipped, &ctx(Path::new(SCHED), None))
            .unwrap()
            .text;
        assert!(
            !text.contains("#SBATCH --signal") && text.contains("rck_drain"),
            "{text}"
        );
        // Off: the launch of before, in the foreground.
        let off = workshop(Overrides {
            drain_margin: Some(0),
            ..Overrides::default()
        });
        let text = render_grow(&off, &ctx(Path::new(SCHED), None))
            .unwrap()
            .text;
        assert!(
            !text.contains("#SBATCH --signal") && !text.contains("rck_drain"),
            "{text}"
        );
        assert!(text.contains("\nmpirun --map-by core:PE=20 -np 4 dask-mpi \\\n  --no-scheduler"));
        bash_n(&text);
        // The margin must leave the job time to run first.
        let short = workshop(Overrides {
            time: Some("5:00".into()),
            ..Overrides::default()
        });
        let err = render_grow(&short, &ctx(Path::new(SCHED), None)).unwrap_err();
        assert!(
            err.to_string().contains("time limit 5:00 is 300 s"),
            "{err}"
        );
        let mut site_time = short.clone();
        site_time.skip_directives = vec!["time".into()];
        assert!(render_grow(&site_time, &ctx(Path::new(SCHED), None)).is_ok());
        assert!(render_up(&short, &ctx(Path::new(SCHED), None)).is_ok());
    }

    /// When the test sends the grow job's shell USR1.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Usr1 {
        /// While mpirun runs.
        WhileRunning,
        /// Never (mpirun is ended instead).
        Never,
        /// Before the launch (the shell sends it to itself during the "set-up").
        BeforeLaunch,
    }

    /// Runs a grow script's launch with stubs for `mpirun` (waits, records its pid, ends with
    /// `status` on SIGTERM or after 20 s) and `python3` (records its arguments and ends the
    /// stub mpirun, as retired workers end theirs), sending the shell USR1 as `usr1` says.
    /// Returns the shell's exit code, its output and the stub python's arguments.
    fn run_launch_with_stubs(usr1: Usr1, status: u8) -> (Option<i32>, String, String) {
        let dir = std::env::temp_dir().join(format!(
            "rck-drain-{}-{usr1:?}-{status}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.display();
        let stubs = [
            (
                "mpirun",
                format!(
                    "#!/bin/bash\necho $$ > {d}/mpirun.pid\ntrap 'exit {status}' TERM\n\
                     sleep 20 >/dev/null & wait\nexit {status}\n"
                ),
            ),
            (
                "python3",
                format!(
                    "#!/bin/bash\nshift 2\necho \"$@\" > {d}/python.args\n\
                     kill \"$(cat {d}/mpirun.pid)\"\necho retired\n"
                ),
            ),
        ];
        for (name, text) in stubs {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            std::process::Command::new("chmod")
                .arg("+x")
                .arg(&path)
                .status()
                .unwrap();
        }
        let spec = workshop(Overrides::default());
        let text = render_grow(&spec, &ctx(Path::new(SCHED), None))
            .unwrap()
            .text;
        let launch = &text[text.find("rck_launch() {").unwrap()..];
        assert!(text.contains(DRAIN_EARLY_TRAP));
        let set_up = match usr1 {
            Usr1::BeforeLaunch => "kill -USR1 $$\n",
            _ => "",
        };
        let child = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "set -eo pipefail\n{DRAIN_EARLY_TRAP}{set_up}{launch}"
            ))
            .env("PATH", format!("{d}:{}", std::env::var("PATH").unwrap()))
            .env("SLURM_JOB_ID", "4242")
            .env_remove(PROCESS_GROUP_JOB_VAR)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid_file = dir.join("mpirun.pid");
        let started = std::time::Instant::now();
        while usr1 != Usr1::BeforeLaunch && !pid_file.exists() && started.elapsed().as_secs() < 10 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        match usr1 {
            Usr1::WhileRunning => {
                std::process::Command::new("kill")
                    .args(["-USR1", &child.id().to_string()])
                    .status()
                    .unwrap();
            }
            Usr1::Never => {
                let pid = std::fs::read_to_string(&pid_file).unwrap();
                std::process::Command::new("kill")
                    .arg(pid.trim())
                    .status()
                    .unwrap();
            }
            Usr1::BeforeLaunch => {}
        }
        let out = child.wait_with_output().unwrap();
        let args = std::fs::read_to_string(dir.join("python.args")).unwrap_or_default();
        std::fs::remove_dir_all(&dir).unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            args,
        )
    }

    #[test]
    fn usr1_drains_while_mpirun_runs_and_the_job_ends_with_its_status() {
        let (code, out, args) = run_launch_with_stubs(Usr1::WhileRunning, 0);
        assert_eq!(code, Some(0), "{out}");
        assert!(
            out.contains("rust-cluster-kernel drain: USR1 at ")
                && out.contains("retiring workers demo-grow-4242-* (at most 270 s)")
                && out.contains("retired\n"),
            "{out}"
        );
        assert_eq!(args.trim(), format!("{SCHED} demo-grow-4242-"));
        // Without the signal nothing drains, and mpirun's status is the job's.
        let (code, out, args) = run_launch_with_stubs(Usr1::Never, 3);
        assert_eq!(code, Some(3), "{out}");
        assert!(!out.contains("drain") && args.is_empty(), "{out}");
        // A drain asked for before the workers start: none start, and the job ends well.
        let (code, out, args) = run_launch_with_stubs(Usr1::BeforeLaunch, 0);
        assert_eq!(code, Some(0), "{out}");
        assert!(
            out.contains("came before the workers started; starting none"),
            "{out}"
        );
        assert!(args.is_empty(), "{out}");
    }

    #[test]
    fn whole_nodes_and_gpus_per_node_are_one_line_each_and_skippable() {
        let mut spec = workshop(Overrides {
            gpus_per_node: Some("a100:4".into()),
            exclusive: Some(true),
            ..Overrides::default()
        });
        let text = render_up(&spec, &ctx(Path::new(SCHED), None)).unwrap().text;
        assert!(
            text.contains("#SBATCH --gpus-per-node=a100:4\n#SBATCH --exclusive\n"),
            "{text}"
        );
        spec.skip_directives = vec!["exclusive".into(), "gpus-per-node".into()];
        let text = render_up(&spec, &ctx(Path::new(SCHED), None)).unwrap().text;
        assert!(
            !text.contains("--exclusive") && !text.contains("--gpus-per-node"),
            "{text}"
        );
    }

    #[test]
    fn the_prologue_runs_on_every_node_that_unpacks_the_environment() {
        // srun runs its command here; tar records what the prologue set in its shell.
        let dir = std::env::temp_dir().join(format!("rck-prologue-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        let stub = |name: &str, body: &str| {
            use std::os::unix::fs::PermissionsExt;
            let p = dir.join("bin").join(name);
            std::fs::write(&p, format!("#!/bin/bash\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        stub(
            "srun",
            r#"while [[ $1 == --* ]]; do shift; done; exec "$@""#,
        );
        stub("tar", r#"echo "$RCK_MARK" > "$RCK_SEEN""#);
        let prologue = vec![
            "export RCK_MARK='site set-up'".to_owned(),
            "echo \"a line with 'quotes' and $HOME\" >/dev/null".to_owned(),
        ];
        let text = python_env(&PythonEnv::Staged("/envs/dask.tar.gz".into()), &prologue).unwrap();
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(&text)
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    dir.join("bin").display(),
                    std::env::var("PATH").unwrap()
                ),
            )
            .env("RCK_SEEN", dir.join("seen"))
            .env("TMP", &dir)
            .env("SLURM_JOB_ID", "7")
            .env("SLURM_JOB_NUM_NODES", "1")
            .env_remove("RCK_MARK")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let seen = std::fs::read_to_string(dir.join("seen")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(seen.trim(), "site set-up");
        // A line that would end the here-document early is refused.
        let mut spec = workshop(Overrides::default());
        spec.prologue = vec![crate::spec::PROLOGUE_END.to_owned()];
        assert!(spec.validate().is_err());
    }

    #[test]
    fn workshop_grow_script() {
        let spec = workshop(Overrides {
            nodes: Some(3),
            python_env: Some("/home/alice/venvs/dask".into()),
            ..Overrides::default()
        });
        let job = render_grow(&spec, &ctx(Path::new(SCHED), Some(Path::new(HEARTBEAT)))).unwrap();
        assert_eq!(job.role, JobRole::Grow);
        assert_eq!(job.job_name, "demo-grow");
        assert_eq!((job.ntasks, job.workers_expected), (6, 6));
        assert!(job.text.contains("--name demo-grow-\"$SLURM_JOB_ID\""));
        assert!(job.text.contains("dask-mpi \\\n    --no-scheduler"));
        assert!(!job.text.contains("--scheduler-port"));
        assert!(!job.text.contains("--dashboard-address"));
        assert_snapshot("workshop-grow.sh", &job.text);
        bash_n(&job.text);
    }

    #[test]
    fn tls_lines_name_the_certificates_for_every_role() {
        let spec = workshop(Overrides::default());
        assert_eq!(spec.security, Security::Tls);
        for job in [
            render_up(&spec, &ctx(Path::new(SCHED), None)).unwrap(),
            render_grow(&spec, &ctx(Path::new(SCHED), None)).unwrap(),
        ] {
            let t = &job.text;
            assert!(t.contains("\numask 077 "), "{t}");
            assert!(t.contains("  --protocol tls \\\n"), "{t}");
            assert!(t.contains("rck_tls=/home/alice/.local/state/rust-cluster-kernel/demo/tls\n"));
            assert!(t.contains("export DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION=True\n"));
            assert!(t.contains("export DASK_DISTRIBUTED__COMM__TLS__CA_FILE=\"$rck_tls\"/ca.pem\n"));
            for role in ["SCHEDULER", "WORKER", "CLIENT"] {
                assert!(t.contains(&format!(
                    "export DASK_DISTRIBUTED__COMM__TLS__{role}__CERT=\"$rck_tls\"/node.pem\n"
                )));
                assert!(t.contains(&format!(
                    "export DASK_DISTRIBUTED__COMM__TLS__{role}__KEY=\"$rck_tls\"/node-key.pem\n"
                )));
            }
            // Ours come after the profile's environment, so a profile cannot undo them.
            assert!(t.find("rck_tls=").unwrap() < t.find("mpirun ").unwrap());
            assert!(!t.contains("client.pem") && !t.contains("PRIVATE KEY"));
            bash_n(t);
        }
        let err = render_up(
            &spec,
            &JobContext {
                tls: None,
                ..ctx(Path::new(SCHED), None)
            },
        )
        .unwrap_err();
        assert!(matches!(err, ScriptError::NoCertificates(_)), "{err}");
    }

    #[test]
    fn an_insecure_cluster_says_so_and_speaks_tcp() {
        let spec = workshop(Overrides {
            security: Some("none".into()),
            ..Overrides::default()
        });
        let job = render_up(
            &spec,
            &JobContext {
                tls: None,
                ..ctx(Path::new(SCHED), None)
            },
        )
        .unwrap();
        let t = &job.text;
        assert!(t.contains("--protocol tcp"), "{t}");
        assert!(t.contains("Anyone who can reach these ports"), "{t}");
        assert!(!t.contains("DASK_DISTRIBUTED__COMM"), "{t}");
        assert!(t.contains("\numask 077 "), "{t}");
        bash_n(t);
    }

    #[test]
    fn the_dashboard_listens_on_the_interface_address() {
        let spec = workshop(Overrides {
            interface: Some("lo".into()),
            ..Overrides::default()
        });
        let job = render_up(&spec, &ctx(Path::new(SCHED), None)).unwrap();
        assert!(job
            .text
            .contains("\n  --dashboard-address \"$rck_ip\":8787 \\\n"));
        let routes = "export DASK_DISTRIBUTED__SCHEDULER__HTTP__ROUTES=";
        assert!(job.text.contains(routes) && job.text.contains("distributed.http.health"));
        assert!(!job.text.contains("distributed.http.proxy") && !job.text.contains(".api"));
        // The snippet, run by bash with a Python that has psutil, gives loopback's address.
        let start = job.text.find("rck_ip=$(").unwrap();
        let end = start + job.text[start..].find("lo)\n").unwrap() + 3;
        let snippet = format!("{}\nprintf %s \"$rck_ip\"", &job.text[start..end]);
        let venv_python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin");
        let path = format!(
            "{}:{}",
            venv_python.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let has_psutil = std::process::Command::new("python3")
            .args(["-c", "import psutil"])
            .env("PATH", &path)
            .status()
            .is_ok_and(|s| s.success());
        if !has_psutil {
            eprintln!("no python3 with psutil: the snippet is not run");
            return;
        }
        let out = std::process::Command::new("bash")
            .args(["-c", &snippet])
            .env("PATH", &path)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "127.0.0.1");
        let bad = snippet.replace("' lo)", "' rck-no-such-if)");
        let out = std::process::Command::new("bash")
            .args(["-c", &format!("set -e\n{bad}")])
            .env("PATH", &path)
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("has no IPv4 address"));
    }

    #[test]
    fn no_watchdog_without_heartbeat_or_with_zero_minutes() {
        let spec = workshop(Overrides::default());
        let job = render_up(&spec, &ctx(Path::new(SCHED), None)).unwrap();
        assert!(!job.text.contains("rck_watchdog"));
        let spec = workshop(Overrides {
            watchdog_minutes: Some(0.0),
            ..Overrides::default()
        });
        let job = render_up(&spec, &ctx(Path::new(SCHED), Some(Path::new(HEARTBEAT)))).unwrap();
        assert!(!job.text.contains("rck_watchdog"));
        bash_n(&job.text);
    }

    #[test]
    fn lab_policy_drops_map_by() {
        let spec = workshop(Overrides {
            map_by: Some(crate::spec::MapBy(String::new())),
            threads_per_worker: Some(1),
            ..Overrides::default()
        });
        let job = render_up(&spec, &ctx(Path::new(SCHED), None)).unwrap();
        assert!(job.text.contains("\nmpirun -np 4 dask-mpi"), "{}", job.text);
        bash_n(&job.text);
    }

    #[test]
    fn hostile_context_values_are_quoted_or_refused() {
        let spec = workshop(Overrides::default());
        let marker = std::env::temp_dir().join(format!("rck-pwned-{}", std::process::id()));
        let evil = format!("/tmp/$(touch {}) ';x.json", marker.display());
        let job = render_up(&spec, &ctx(Path::new(&evil), None)).unwrap();
        bash_n(&job.text);
        // The word in the script, evaluated by bash, is the path itself and runs nothing.
        let word = job
            .text
            .lines()
            .find_map(|l| l.trim().strip_prefix("--scheduler-file "))
            .unwrap()
            .trim_end_matches(" \\");
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("printf %s {word}"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), evil);
        assert!(!marker.exists());
        let err = render_up(&spec, &ctx(Path::new("/tmp/a\nb"), None)).unwrap_err();
        assert!(err.to_string().contains("scheduler_file"), "{err}");
        let bad_user = JobContext {
            user: "a;b",
            scheduler_file: Path::new(SCHED),
            heartbeat_file: None,
            tls: Some(&TLS),
        };
        let err = render_up(&spec, &bad_user).unwrap_err();
        assert!(err.to_string().contains("user name"), "{err}");
    }

    #[test]
    fn an_up_job_needs_a_worker_rank() {
        let spec = workshop(Overrides {
            nodes: Some(1),
            workers_per_node: Some(1),
            ..Overrides::default()
        });
        let err = render_up(&spec, &ctx(Path::new(SCHED), None)).unwrap_err();
        assert!(err.to_string().contains("no rank for a worker"), "{err}");
        let grow = render_grow(&spec, &ctx(Path::new(SCHED), None)).unwrap();
        assert_eq!(grow.workers_expected, 1);
    }

    #[test]
    fn hand_made_specs_are_validated_before_rendering() {
        let mut spec = workshop(Overrides::default());
        spec.partition = "multiple\n#SBATCH --uid=0".into();
        let err = render_up(&spec, &ctx(Path::new(SCHED), None)).unwrap_err();
        assert!(err.to_string().contains("invalid partition"), "{err}");
    }

    #[test]
    fn watchdog_cancels_when_heartbeat_is_stale() {
        // Run the real watchdog with a stub `scancel` that records its argument.
        let dir = std::env::temp_dir().join(format!("rck-watchdog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("scancel.log");
        let stub = dir.join("scancel");
        std::fs::write(
            &stub,
            format!("#!/bin/sh\necho \"$1\" > '{}'\n", log.display()),
        )
        .unwrap();
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&stub)
            .status()
            .unwrap();
        let heartbeat = dir.join("heartbeat");
        std::fs::write(&heartbeat, "").unwrap();
        // A heartbeat 10 s old, watchdog timeout 2 s: the first check (after 1 s) cancels.
        std::process::Command::new("touch")
            .args(["-d", "10 seconds ago"])
            .arg(&heartbeat)
            .status()
            .unwrap();
        let script = format!(
            "set -eo pipefail\n{}wait \"$rck_watchdog_pid\"\n",
            watchdog(&path_word("h", &heartbeat).unwrap(), 2, &CANCEL_THE_JOB)
        );
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(&script)
            .env(
                "PATH",
                format!("{}:{}", dir.display(), std::env::var("PATH").unwrap()),
            )
            .env("SLURM_JOB_ID", "4242")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("not touched for 2 s; ending job 4242"),
            "{stderr}"
        );
        assert_eq!(std::fs::read_to_string(&log).unwrap().trim(), "4242");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn comment_tags_round_trip() {
        let tag = CommentTag {
            user: "alice".into(),
            cluster: Some("demo".into()),
            role: JobRole::Grow,
        };
        assert_eq!(
            tag.render(),
            "rust-cluster-kernel:user=alice:cluster=demo:role=grow"
        );
        assert_eq!(CommentTag::parse(&tag.render()), Some(tag));
        let batch = CommentTag {
            user: "bob".into(),
            cluster: None,
            role: JobRole::Batch,
        };
        assert_eq!(CommentTag::parse(&batch.render()), Some(batch));
        for other in [
            "",
            "(null)",
            "my comment",
            "rust-cluster-kernel:user=a",
            "rust-cluster-kernel:user=a:role=boss",
            "rust-cluster-kernel:user=a b:role=grow",
            "other:user=a:role=grow",
        ] {
            assert_eq!(CommentTag::parse(other), None, "{other}");
        }
    }

    fn batch_tag() -> CommentTag {
        CommentTag {
            user: "alice".into(),
            cluster: None,
            role: JobRole::Batch,
        }
    }

    #[test]
    fn batch_wrapper_adds_tag_and_output() {
        let body = "#!/bin/bash\n#SBATCH -p single\n#SBATCH --ntasks=2\nsrun hostname\n";
        let s = wrap_batch(body, &batch_tag(), Path::new("/home/alice/nb"), &[]).unwrap();
        assert_eq!(
            s,
            "#!/bin/bash\n#SBATCH --comment=rust-cluster-kernel:user=alice:role=batch\n\
             #SBATCH --output=\"/home/alice/nb/slurm-%j.out\"\n\
             #SBATCH -p single\n#SBATCH --ntasks=2\nsrun hostname\n"
        );
        bash_n(&s);
    }

    #[test]
    fn batch_wrapper_respects_user_settings() {
        let body = "#SBATCH --output=/tmp/mine-%j.out\n#SBATCH --comment \"keep me\"\nhostname";
        let s = wrap_batch(body, &batch_tag(), Path::new("/l"), &[]).unwrap();
        assert_eq!(s, format!("#!/bin/bash\n{body}\n"));
        let s = wrap_batch(
            "hostname\n",
            &batch_tag(),
            Path::new("/l"),
            &["-o/tmp/x".into()],
        )
        .unwrap();
        assert!(s.contains("--comment=") && !s.contains("--output"), "{s}");
        let s = wrap_batch(
            "#!/bin/sh\n#SBATCH -o x\necho\n",
            &batch_tag(),
            Path::new("/l"),
            &[],
        )
        .unwrap();
        assert!(
            s.starts_with("#!/bin/sh\n#SBATCH --comment=") && !s.contains("--output"),
            "{s}"
        );
        // An #SBATCH line after the first command is not read by sbatch, so ours is still added.
        let s = wrap_batch(
            "echo\n#SBATCH --output=x\n",
            &batch_tag(),
            Path::new("/l"),
            &[],
        )
        .unwrap();
        assert!(s.contains("#SBATCH --output=\"/l/slurm-%j.out\""), "{s}");
        assert!(matches!(
            wrap_batch(" \n", &batch_tag(), Path::new("/l"), &[]),
            Err(ScriptError::EmptyBatchScript)
        ));
    }
}
