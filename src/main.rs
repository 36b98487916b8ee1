//! The `rust-cluster-kernel` binary: runs the kernel for a connection file, or installs and
//! removes its kernelspec.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use dask_slurm::manager::{Clusters, ManagerSettings};
use rust_cluster_kernel::install::{self, Location};
use rust_cluster_kernel::jupyter_server::{Dashboards, JupyterServer};
use rust_cluster_kernel::kernel::{Kernel, Outbox};
use rust_cluster_kernel::magics::Registry;
use rust_cluster_kernel::protocol::ConnectionInfo;

/// A Jupyter kernel for Rust (through evcxr) with magics for Dask clusters on SLURM.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The connection file Jupyter wrote (how Jupyter starts the kernel).
    #[arg(long, short = 'f', global = false)]
    connection_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Install the kernelspec "Rust (cluster)" (name rust-cluster).
    Install {
        #[command(flatten)]
        location: LocationArgs,
    },
    /// Remove the kernelspec.
    Uninstall {
        #[command(flatten)]
        location: LocationArgs,
    },
}

/// Where the kernelspec goes (default: --user).
#[derive(clap::Args)]
#[group(multiple = false)]
struct LocationArgs {
    /// In the user's Jupyter data directory (the default).
    #[arg(long)]
    user: bool,
    /// In the prefix of the running Python environment ($VIRTUAL_ENV or $CONDA_PREFIX).
    #[arg(long)]
    sys_prefix: bool,
    /// Under DIR/share/jupyter/kernels.
    #[arg(long, value_name = "DIR")]
    prefix: Option<PathBuf>,
}

impl LocationArgs {
    fn location(&self) -> anyhow::Result<Location> {
        if let Some(p) = &self.prefix {
            return Ok(Location::Prefix(std::path::absolute(p)?));
        }
        if self.sys_prefix {
            let prefix = std::env::var_os("VIRTUAL_ENV")
                .or_else(|| std::env::var_os("CONDA_PREFIX"))
                .context(
                    "--sys-prefix needs an active Python environment (VIRTUAL_ENV or CONDA_PREFIX)",
                )?;
            return Ok(Location::Prefix(prefix.into()));
        }
        Ok(Location::User)
    }
}

fn main() -> anyhow::Result<()> {
    // Must come first: this binary is also evcxr's runtime child and rustc wrapper.
    rust_cluster_kernel::engine::relay::install_in_runtime_child();
    evcxr::runtime_hook();

    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_CLUSTER_KERNEL_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    let cli = Cli::parse();
    match (cli.command, cli.connection_file) {
        (Some(Command::Install { location }), _) => {
            let binary = std::env::current_exe()?.canonicalize()?;
            let dir = install::install(&location.location()?, &binary)?;
            println!(
                "Installed kernelspec {} in {}",
                install::KERNEL_NAME,
                dir.display()
            );
        }
        (Some(Command::Uninstall { location }), _) => {
            match install::uninstall(&location.location()?)? {
                Some(dir) => println!("Removed {}", dir.display()),
                None => println!("No kernelspec {} there", install::KERNEL_NAME),
            }
        }
        (None, Some(path)) => {
            if rust_cluster_kernel::engine::drop_empty_build_dir_setting() {
                tracing::warn!(
                    "EVCXR_TMPDIR is empty: ignored, evcxr builds in a temporary directory"
                );
            }
            let info = ConnectionInfo::read(&path)?;
            let session = uuid::Uuid::new_v4().to_string();
            // Re-attaches the clusters of earlier kernels (a restart) from the registry.
            let clusters = Clusters::open(ManagerSettings::from_env(&session));
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let (outbox, outgoing) = Outbox::channels();
            // The Jupyter server that launched the kernel, for dashboard links through it.
            let dashboards = Arc::new(Dashboards::new(JupyterServer::find(&path)));
            let magics = Registry::builtin(clusters.clone(), dashboards);
            let kernel = Kernel::new(outbox, magics, session);
            let restart =
                runtime.block_on(rust_cluster_kernel::server::serve(info, kernel, outgoing))?;
            tracing::info!("shutting down (restart: {restart})");
            if !restart {
                // The notebook was closed: cancel what this kernel started (unless --keep).
                clusters.shutdown();
            }
            // The replies have left and the sub-kernel is gone (`server::serve` waited for
            // both); the engine thread and evcxr's child end with the process.
            std::process::exit(0);
        }
        (None, None) => anyhow::bail!(
            "give --connection-file FILE (as Jupyter does), or a subcommand; see --help"
        ),
    }
    Ok(())
}
