//! `%cluster`: the Dask-on-SLURM lifecycle, one file per subcommand — [`up`], [`grow`],
//! [`shrink`], [`adapt`], [`cancel`], [`status`], [`list`], [`wait`], [`logs`], [`dashboard`], [`script`],
//! [`attach`], [`profiles`], [`use`](r#use). Each subcommand parses its own flags (clap) and is a
//! call on the cluster manager ([`Clusters`]) plus a bundle from `display`; this file holds what
//! they share: the magic itself, the subcommand table and the error wording.

mod adapt;
mod attach;
mod cancel;
mod dashboard;
mod grow;
mod list;
mod logs;
mod profiles;
mod script;
mod shrink;
mod spec_args;
mod status;
mod up;
mod r#use;
mod wait;

use std::sync::Arc;

use clap::{Parser, Subcommand};
use dask_slurm::manager::{ClusterError, Clusters};
use dask_slurm::model::ClusterView;

use super::cards::LiveCards;
use super::{args, Magic, MagicCall, MagicContext, MagicError, MagicForms};
use crate::cell::Output;
use crate::display::Bundle;
use crate::jupyter_server::Dashboards;
use crate::python::PythonBridge;

/// `%cluster`
pub struct Cluster {
    /// The clusters of this kernel.
    pub clusters: Arc<Clusters>,
    /// The cards on the page, updated in place.
    pub cards: Arc<LiveCards>,
    /// The Python sub-kernel, for `%cluster use`.
    pub bridge: Arc<PythonBridge>,
    /// Dashboard links through the Jupyter server, for `%cluster dashboard`.
    pub dashboards: Arc<Dashboards>,
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
    Up(up::UpArgs),
    /// Add workers with a second job (dask-mpi --no-scheduler) on the same scheduler.
    Grow(grow::GrowArgs),
    /// Retire workers gracefully, or cancel one grow job.
    Shrink(shrink::ShrinkArgs),
    /// Grow by whole grow jobs while the scheduler wants more workers, and give them back when
    /// it wants fewer (--min-jobs A --max-jobs B; --off; alone: the policy and why).
    Adapt(adapt::AdaptArgs),
    /// End a cluster (graceful scheduler shutdown, then scancel) and wait until its jobs are gone.
    Cancel(cancel::CancelArgs),
    /// The card of a cluster.
    Status(status::StatusArgs),
    /// Every cluster this kernel knows, also those found again after a restart.
    List,
    /// Wait until N workers have joined (interrupt stops the wait, never the cluster).
    Wait(wait::WaitArgs),
    /// The tail of each job's output file (slurm-JOBID.out).
    Logs(logs::LogsArgs),
    /// The dashboard's link through the Jupyter server, else its URL and the ssh tunnel
    /// command for it.
    Dashboard(dashboard::DashboardArgs),
    /// Print the job script that `up` (or `grow` with --grow) would submit; submit nothing.
    Script(script::ScriptArgs),
    /// Adopt a cluster started elsewhere (tls:// with --tls-ca/--tls-cert/--tls-key, tcp://
    /// only with --insecure).
    Attach(attach::AttachArgs),
    /// The profiles from config.toml and which one is the default.
    Profiles,
    /// Bind %%python to this cluster: Client() with no arguments connects to its scheduler.
    Use(r#use::UseArgs),
}

/// A manager error in the magic's words, with what to type next (an interrupt stays one).
fn failed(e: ClusterError) -> MagicError {
    let next_step = match &e {
        ClusterError::Interrupted => return MagicError::Interrupted,
        ClusterError::NoCluster(_) => "%cluster list shows them".to_owned(),
        ClusterError::NoClusters | ClusterError::Ended(_) => {
            "start one with %cluster up".to_owned()
        }
        ClusterError::Exists(name) => format!("pick another name or %cluster cancel {name}"),
        ClusterError::SchedulerJob { cluster, .. } => {
            format!("%cluster cancel {cluster} ends the whole cluster")
        }
        _ => return MagicError::Failed(e.to_string()),
    };
    MagicError::Failed(format!("{e}; {next_step}"))
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
        match args.command {
            None => status::run(self, status::StatusArgs { name: None }, ctx),
            Some(Command::Status(a)) => status::run(self, a, ctx),
            Some(Command::Up(a)) => up::run(self, a, ctx),
            Some(Command::Grow(a)) => grow::run(self, a, ctx),
            Some(Command::Shrink(a)) => shrink::run(self, a, ctx),
            Some(Command::Adapt(a)) => adapt::run(self, a),
            Some(Command::Cancel(a)) => cancel::run(self, a, ctx),
            Some(Command::List) => list::run(self),
            Some(Command::Wait(a)) => wait::run(self, a, ctx),
            Some(Command::Logs(a)) => logs::run(self, a),
            Some(Command::Dashboard(a)) => dashboard::run(self, a),
            Some(Command::Script(a)) => script::run(self, a),
            Some(Command::Attach(a)) => attach::run(self, a, ctx),
            Some(Command::Profiles) => profiles::run(self),
            Some(Command::Use(a)) => r#use::run(self, a),
        }
    }
}

impl Cluster {
    /// Shows a live card for the cluster; nothing as the cell's result.
    fn card(&self, out: &Output, view: ClusterView) -> Result<Option<Bundle>, MagicError> {
        self.cards.show(out, &view);
        Ok(None)
    }
}
