//! `%cluster`: the Dask-on-SLURM lifecycle — up, grow, shrink, cancel, status, list, wait, logs,
//! dashboard, script, attach, profiles, use. Each subcommand is a call on the cluster manager
//! ([`Clusters`]) and a bundle from `display`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use dask_slurm::manager::{
    AttachSource, AttachTls, CancelTarget, ClusterError, Clusters, GrowRequest, Shrink, UpRequest,
};
use dask_slurm::model::{Backend, ClusterView};
use dask_slurm::profile::Overrides;
use dask_slurm::spec::Security;
use dask_slurm::tls::ClientTls;

use super::args::expand_path;
use super::cards::LiveCards;
use super::{args, Magic, MagicCall, MagicContext, MagicError, MagicForms};
use crate::display::dashboard::dashboard;
use crate::display::logs::{job_logs, LogTail};
use crate::display::progress::{wait_progress, WaitPhase, WaitProgress};
use crate::display::table::cluster_list;
use crate::display::Bundle;
use crate::kernel::{new_display_id, Output};
use crate::python::PythonBridge;

/// `%cluster`
pub struct Cluster {
    /// The clusters of this kernel.
    pub clusters: Arc<Clusters>,
    /// The cards on the page, updated in place.
    pub cards: Arc<LiveCards>,
    /// The Python sub-kernel, for `%cluster use`.
    pub bridge: Arc<PythonBridge>,
}

/// Dask clusters on SLURM: start one with `%cluster up`, watch its card, grow it, cancel it.
/// With no subcommand: the status of the newest cluster.
#[derive(Parser)]
#[command(name = "%cluster")]
struct ClusterArgs {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Write the job script, submit it (sbatch), and show the live card. The cluster runs with
    /// mutual TLS (its own CA, certificates in STATE/NAME/tls) unless --insecure.
    Up(UpArgs),
    /// Add workers with a second job (dask-mpi --no-scheduler) on the same scheduler.
    Grow(GrowArgs),
    /// Retire workers gracefully, or cancel one grow job.
    Shrink(ShrinkArgs),
    /// End a cluster (graceful scheduler shutdown, then scancel) and wait until its jobs are gone.
    Cancel(CancelArgs),
    /// The card of a cluster.
    Status {
        /// The cluster (default: the newest).
        name: Option<String>,
    },
    /// Every cluster this kernel knows, also those found again after a restart.
    List,
    /// Wait until N workers have joined (interrupt stops the wait, never the cluster).
    Wait(WaitArgs),
    /// The tail of each job's output file (slurm-JOBID.out).
    Logs(LogsArgs),
    /// The dashboard URL and the ssh tunnel command for it.
    Dashboard {
        /// The cluster (default: the newest).
        name: Option<String>,
    },
    /// Print the job script that `up` (or `grow` with --grow) would submit; submit nothing.
    Script(ScriptArgs),
    /// Adopt a cluster started elsewhere (tls:// with --tls-ca/--tls-cert/--tls-key, tcp://
    /// only with --insecure).
    Attach(AttachArgs),
    /// The profiles from config.toml and which one is the default.
    Profiles,
    /// Bind %%python to this cluster: Client() with no arguments connects to its scheduler.
    Use {
        /// The cluster.
        name: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum BackendArg {
    Slurm,
    Local,
}

/// Settings that replace the profile's for this cluster.
#[derive(Args, Default)]
struct SpecArgs {
    /// SLURM partition (queue), e.g. multiple.
    #[arg(long, short = 'p')]
    partition: Option<String>,
    /// Nodes per job.
    #[arg(long, short = 'N')]
    nodes: Option<u32>,
    /// Dask processes (MPI ranks) per node.
    #[arg(long)]
    workers_per_node: Option<u32>,
    /// Threads per Dask worker.
    #[arg(long)]
    threads_per_worker: Option<u32>,
    /// Time limit (SLURM format: 30:00, 2:00:00, 1-12:00).
    #[arg(long, short = 't')]
    time: Option<String>,
    /// Memory per node for SLURM (90000mb, 90G).
    #[arg(long)]
    mem: Option<String>,
    /// Memory limit per Dask worker (4GiB).
    #[arg(long)]
    memory_limit: Option<String>,
    /// Network interface for Dask (ib0, eth0, lo).
    #[arg(long)]
    interface: Option<String>,
    /// Dask's local directory on the nodes ($TMP/dask).
    #[arg(long)]
    local_directory: Option<String>,
    /// A packed environment (tar.gz) to stage to node-local $TMP, one srun per node.
    #[arg(long)]
    env_archive: Option<String>,
    /// A venv or conda environment with dask-mpi to activate.
    #[arg(long)]
    python_env: Option<String>,
    /// SLURM account.
    #[arg(long, short = 'A')]
    account: Option<String>,
}

impl SpecArgs {
    /// The overrides, with `security = "none"` when `insecure`.
    fn overrides_with(&self, insecure: bool) -> Overrides {
        Overrides {
            security: insecure.then(|| Security::None.as_str().to_owned()),
            ..self.overrides()
        }
    }

    fn overrides(&self) -> Overrides {
        Overrides {
            partition: self.partition.clone(),
            nodes: self.nodes,
            workers_per_node: self.workers_per_node,
            threads_per_worker: self.threads_per_worker,
            time: self.time.clone(),
            mem: self.mem.clone(),
            memory_limit: self.memory_limit.clone(),
            interface: self.interface.clone(),
            local_directory: self.local_directory.clone(),
            env_archive: self.env_archive.clone(),
            python_env: self.python_env.clone(),
            account: self.account.clone(),
            ..Overrides::default()
        }
    }
}

#[derive(Args)]
struct UpArgs {
    /// The cluster's name (default: dask).
    name: Option<String>,
    /// The profile from config.toml (default: its default_profile, or the workshop's).
    #[arg(long)]
    profile: Option<String>,
    #[command(flatten)]
    spec: SpecArgs,
    /// slurm (sbatch) or local (mpirun here); default: slurm when sbatch is on PATH.
    #[arg(long, value_enum)]
    backend: Option<BackendArg>,
    /// Wait until every worker has joined (the card updates either way).
    #[arg(long)]
    wait: bool,
    /// With --wait: give up waiting after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Print the job script instead of submitting it.
    #[arg(long)]
    dry_run: bool,
    /// Keep the cluster when the notebook's kernel shuts down.
    #[arg(long)]
    keep: bool,
    /// Plain TCP instead of mutual TLS: anyone who can reach the scheduler can run code as you.
    #[arg(long)]
    insecure: bool,
}

#[derive(Args)]
struct GrowArgs {
    /// The cluster (default: the newest).
    name: Option<String>,
    #[command(flatten)]
    spec: SpecArgs,
    /// Wait until the new workers have joined.
    #[arg(long)]
    wait: bool,
    /// With --wait: give up waiting after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Print the job script instead of submitting it.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Args)]
#[command(group(ArgGroup::new("how").required(true).args(["workers", "job"])))]
struct ShrinkArgs {
    /// The cluster (default: the newest).
    name: Option<String>,
    /// Retire this many workers (newest first), gracefully through the scheduler.
    #[arg(long)]
    workers: Option<u32>,
    /// Cancel this grow job.
    #[arg(long)]
    job: Option<String>,
}

#[derive(Args)]
struct CancelArgs {
    /// The cluster (default: the newest).
    #[arg(conflicts_with = "all")]
    name: Option<String>,
    /// Cancel every cluster.
    #[arg(long)]
    all: bool,
    /// Cancel only this job of the cluster.
    #[arg(long, conflicts_with = "all")]
    job: Option<String>,
}

#[derive(Args)]
struct WaitArgs {
    /// The cluster (default: the newest).
    name: Option<String>,
    /// How many workers (default: all the cluster's jobs bring).
    #[arg(long)]
    workers: Option<u32>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

#[derive(Args)]
struct LogsArgs {
    /// The cluster (default: the newest).
    name: Option<String>,
    /// Only this job.
    #[arg(long)]
    job: Option<String>,
    /// How many lines of each log.
    #[arg(long, default_value_t = 30)]
    tail: usize,
}

#[derive(Args)]
struct ScriptArgs {
    /// The cluster's name.
    name: Option<String>,
    /// The grow job's script (of an existing cluster) instead of the up job's.
    #[arg(long)]
    grow: bool,
    /// The profile from config.toml.
    #[arg(long)]
    profile: Option<String>,
    #[command(flatten)]
    spec: SpecArgs,
    /// slurm or local.
    #[arg(long, value_enum)]
    backend: Option<BackendArg>,
    /// The script of a plain-TCP cluster (up --insecure).
    #[arg(long, conflicts_with = "grow")]
    insecure: bool,
}

#[derive(Args)]
#[command(group(ArgGroup::new("source").required(true).args(["scheduler_file", "address"])))]
struct AttachArgs {
    /// A name for the cluster here.
    name: Option<String>,
    /// The Dask scheduler file the cluster wrote.
    #[arg(long)]
    scheduler_file: Option<String>,
    /// The scheduler's address (tls://HOST:PORT or tcp://HOST:PORT); needs --dashboard-port.
    #[arg(long, requires = "dashboard_port")]
    address: Option<String>,
    /// The scheduler's dashboard (HTTP) port, with --address.
    #[arg(long)]
    dashboard_port: Option<u16>,
    /// For a tls:// scheduler: the CA certificate it trusts (PEM). Not needed for the scheduler
    /// file of a cluster started by this kernel elsewhere: its certificates are beside it.
    #[arg(long, requires_all = ["tls_cert", "tls_key"])]
    tls_ca: Option<String>,
    /// For a tls:// scheduler: the client certificate (PEM), signed by that CA.
    #[arg(long, requires_all = ["tls_ca", "tls_key"])]
    tls_cert: Option<String>,
    /// For a tls:// scheduler: the client's private key (PEM).
    #[arg(long, requires_all = ["tls_ca", "tls_cert"])]
    tls_key: Option<String>,
    /// Accept a plain tcp:// scheduler, which anyone who can reach it can use to run code as its
    /// owner.
    #[arg(long, conflicts_with_all = ["tls_ca", "tls_cert", "tls_key"])]
    insecure: bool,
}

impl AttachArgs {
    /// What to present to the scheduler.
    fn tls(&self) -> AttachTls {
        match (&self.tls_ca, &self.tls_cert, &self.tls_key) {
            (Some(ca), Some(cert), Some(key)) => AttachTls::Files(ClientTls {
                ca_file: expand_path(ca).into(),
                cert: expand_path(cert).into(),
                key: expand_path(key).into(),
            }),
            _ if self.insecure => AttachTls::Insecure,
            _ => AttachTls::Unspecified,
        }
    }
}

fn failed(e: ClusterError) -> MagicError {
    match e {
        ClusterError::Interrupted => MagicError::Interrupted,
        other => MagicError::Failed(other.to_string()),
    }
}

impl Magic for Cluster {
    fn name(&self) -> &'static str {
        "cluster"
    }
    fn summary(&self) -> &'static str {
        "Dask clusters on SLURM: up, grow, shrink, cancel, status, wait, logs, dashboard"
    }
    fn forms(&self) -> MagicForms {
        MagicForms::LINE
    }
    fn run(
        &self,
        call: &MagicCall<'_>,
        ctx: &mut MagicContext<'_>,
    ) -> Result<Option<Bundle>, MagicError> {
        let args = args::parse::<ClusterArgs>(call)?;
        let c = &self.clusters;
        match args.command {
            None => self.card(ctx.out, c.status(None).map_err(failed)?),
            Some(Command::Status { name }) => {
                self.card(ctx.out, c.status(name.as_deref()).map_err(failed)?)
            }
            Some(Command::Up(up)) => {
                let req = UpRequest {
                    name: up.name,
                    profile: up.profile,
                    overrides: up.spec.overrides_with(up.insecure),
                    backend: up.backend.map(backend),
                    keep: up.keep,
                };
                if up.dry_run {
                    return Ok(Some(Bundle::text(c.script_for_up(&req).map_err(failed)?)));
                }
                let view = c.up(req).map_err(failed)?;
                self.cards.show(ctx.out, &view);
                if up.wait {
                    self.wait(ctx, Some(&view.name), None, Duration::from_secs(up.timeout))?;
                }
                Ok(None)
            }
            Some(Command::Grow(grow)) => {
                let req = GrowRequest {
                    name: grow.name,
                    overrides: grow.spec.overrides(),
                };
                if grow.dry_run {
                    return Ok(Some(Bundle::text(c.script_for_grow(&req).map_err(failed)?)));
                }
                let view = c.grow(req).map_err(failed)?;
                self.cards.show(ctx.out, &view);
                if grow.wait {
                    self.wait(
                        ctx,
                        Some(&view.name),
                        None,
                        Duration::from_secs(grow.timeout),
                    )?;
                }
                Ok(None)
            }
            Some(Command::Shrink(shrink)) => {
                let how = match (shrink.workers, shrink.job) {
                    (Some(n), _) => Shrink::Workers(n),
                    (None, Some(job)) => Shrink::Job(job),
                    (None, None) => unreachable!("clap requires --workers or --job"),
                };
                self.card(
                    ctx.out,
                    c.shrink(shrink.name.as_deref(), how).map_err(failed)?,
                )
            }
            Some(Command::Cancel(cancel)) => {
                let target = match (cancel.all, cancel.job) {
                    (true, _) => CancelTarget::All,
                    (false, Some(job)) => CancelTarget::Job(cancel.name, job),
                    (false, None) => CancelTarget::Cluster(cancel.name),
                };
                ctx.out.stdout("cancelling…\n");
                for view in c.cancel(target).map_err(failed)? {
                    self.cards.show(ctx.out, &view);
                }
                Ok(None)
            }
            Some(Command::List) => Ok(Some(cluster_list(&c.list()))),
            Some(Command::Wait(wait)) => {
                let view = self.wait(
                    ctx,
                    wait.name.as_deref(),
                    wait.workers,
                    Duration::from_secs(wait.timeout),
                )?;
                self.card(ctx.out, view)
            }
            Some(Command::Logs(logs)) => {
                let name = c.status(logs.name.as_deref()).map_err(failed)?.name;
                let found = c
                    .logs(Some(&name), logs.job.as_deref(), logs.tail)
                    .map_err(failed)?;
                let paths: Vec<Option<String>> = found
                    .iter()
                    .map(|l| l.path.as_ref().map(|p| p.display().to_string()))
                    .collect();
                let tails: Vec<LogTail<'_>> = found
                    .iter()
                    .zip(&paths)
                    .map(|(l, path)| LogTail {
                        job_id: &l.job_id,
                        role: Some(l.role),
                        path: path.as_deref(),
                        text: &l.text,
                    })
                    .collect();
                Ok(Some(job_logs(&name, &tails)))
            }
            Some(Command::Dashboard { name }) => {
                let view = c.status(name.as_deref()).map_err(failed)?;
                let board = c.dashboard(Some(&view.name)).map_err(failed)?;
                Ok(Some(dashboard(&view.name, &board)))
            }
            Some(Command::Script(script)) => {
                let text = if script.grow {
                    c.script_for_grow(&GrowRequest {
                        name: script.name,
                        overrides: script.spec.overrides(),
                    })
                } else {
                    c.script_for_up(&UpRequest {
                        name: script.name,
                        profile: script.profile,
                        overrides: script.spec.overrides_with(script.insecure),
                        backend: script.backend.map(backend),
                        keep: false,
                    })
                };
                Ok(Some(Bundle::text(text.map_err(failed)?)))
            }
            Some(Command::Attach(attach)) => {
                let tls = attach.tls();
                let source = match (attach.scheduler_file, attach.address) {
                    (Some(file), _) => AttachSource::SchedulerFile(expand_path(&file).into()),
                    (None, Some(address)) => AttachSource::Address {
                        address,
                        dashboard_port: attach.dashboard_port.expect("clap requires it"),
                    },
                    (None, None) => unreachable!("clap requires a source"),
                };
                let view = c.attach(attach.name, source, tls).map_err(failed)?;
                self.card(ctx.out, view)
            }
            Some(Command::Profiles) => {
                let (names, default) = c.profile_names().map_err(failed)?;
                let text = names
                    .iter()
                    .map(|n| {
                        if *n == default {
                            format!("{n} (default)\n")
                        } else {
                            format!("{n}\n")
                        }
                    })
                    .collect::<String>();
                Ok(Some(Bundle::text(text)))
            }
            Some(Command::Use { name }) => {
                let text = match self.bridge.use_cluster(&name).map_err(MagicError::Failed)? {
                    Some(address) => format!("%%python now uses cluster {name} ({address}).\n"),
                    None => format!("%%python will use cluster {name} once its scheduler is up.\n"),
                };
                Ok(Some(Bundle::text(text)))
            }
        }
    }
}

fn backend(arg: BackendArg) -> Backend {
    match arg {
        BackendArg::Slurm => Backend::Slurm,
        BackendArg::Local => Backend::Local,
    }
}

impl Cluster {
    /// Shows a live card for the cluster; nothing as the cell's result.
    fn card(&self, out: &Output, view: ClusterView) -> Result<Option<Bundle>, MagicError> {
        self.cards.show(out, &view);
        Ok(None)
    }

    /// Waits for workers with a progress line that updates in place.
    fn wait(
        &self,
        ctx: &mut MagicContext<'_>,
        name: Option<&str>,
        workers: Option<u32>,
        timeout: Duration,
    ) -> Result<ClusterView, MagicError> {
        let start = Instant::now();
        let first = self.clusters.status(name).map_err(failed)?;
        let target = workers.unwrap_or(first.workers_expected).max(1);
        let id = new_display_id();
        let out = ctx.out.clone();
        let show = |view: &ClusterView, phase: WaitPhase, first: bool| {
            let bundle = wait_progress(&WaitProgress::from_view(
                view,
                target,
                start.elapsed(),
                phase,
            ));
            if first {
                out.display_with_id(&bundle, &id);
            } else {
                out.update_display(&bundle, &id);
            }
        };
        show(&first, WaitPhase::Waiting, true);
        let interrupt = ctx.interrupt.clone();
        let result = self.clusters.wait_workers(
            Some(&first.name),
            target,
            timeout,
            &|| interrupt.is_raised(),
            &mut |view| show(view, WaitPhase::Waiting, false),
        );
        let last = self.clusters.status(Some(&first.name)).map_err(failed)?;
        let phase = match &result {
            Ok(_) => WaitPhase::Reached,
            Err(ClusterError::Interrupted) => WaitPhase::Interrupted,
            Err(ClusterError::Timeout(_)) => WaitPhase::TimedOut,
            Err(_) => WaitPhase::ClusterEnded,
        };
        show(&last, phase, false);
        result.map_err(failed)
    }
}
