//! The flags that `up`, `grow` and `script` share: settings that replace the profile's, and the
//! backend.

use clap::{Args, ValueEnum};
use dask_slurm::model::Backend;
use dask_slurm::profile::Overrides;
use dask_slurm::spec::Security;

/// `--backend`: where the cluster runs.
#[derive(Clone, Copy, ValueEnum)]
pub(super) enum BackendArg {
    Slurm,
    Local,
}

impl BackendArg {
    /// The manager's backend.
    pub(super) fn backend(self) -> Backend {
        match self {
            BackendArg::Slurm => Backend::Slurm,
            BackendArg::Local => Backend::Local,
        }
    }
}

/// Settings that replace the profile's for this cluster.
#[derive(Args, Default)]
pub(super) struct SpecArgs {
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
    pub(super) fn overrides_with(&self, insecure: bool) -> Overrides {
        Overrides {
            security: insecure.then(|| Security::None.as_str().to_owned()),
            ..self.overrides()
        }
    }

    /// The overrides as given.
    pub(super) fn overrides(&self) -> Overrides {
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
