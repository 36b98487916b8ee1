//! Dask clusters on SLURM (or on local `mpirun`), with no knowledge of Jupyter.
//!
//! It writes job scripts, runs SLURM's commands (`sbatch`, `squeue`, `sinfo`, `scancel`,
//! `scontrol`) with timeouts, asks Dask schedulers over HTTP, keeps a registry of clusters on
//! disk, and returns plain data ([`model`]) for the kernel to render.
//!
//! From the bottom up: [`settings`] declares every cluster setting once (profile, overrides and
//! flags, spec); [`spec`] validates every value that can reach a job script and holds the
//! resolved [`spec::ClusterSpec`]; [`profile`] loads named profiles (built-in `workshop` plus the
//! user's config file) and merges overrides over one; [`script`] renders the `up` and
//! `grow` job scripts and wraps plain batch scripts; [`slurm`] runs SLURM's commands with timeouts
//! and parses what they print; [`tls`] makes each cluster's private CA and certificates, and
//! [`private`] the 0600 files in 0700 directories that hold them and the rest of the state;
//! [`process`] runs child processes with a timeout and ends their process groups. On top,
//! [`manager`] keeps the clusters of one kernel, behind a [`manager::Backend`] (SLURM batch jobs
//! or local process groups), and a poller thread that follows them.

pub mod dask;
pub mod manager;
pub mod model;
pub mod private;
pub mod process;
pub mod profile;
pub mod registry;
pub mod script;
pub mod settings;
pub mod slurm;
pub mod spec;
pub mod tls;
