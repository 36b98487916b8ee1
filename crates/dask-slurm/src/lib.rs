//! Dask clusters on SLURM (or on local `mpirun`), with no knowledge of Jupyter.
//!
//! It writes job scripts, runs SLURM's commands (`sbatch`, `squeue`, `sinfo`, `scancel`,
//! `scontrol`) with timeouts, asks Dask schedulers over HTTP, keeps a registry of clusters on
//! disk, and returns plain data ([`model`]) for the kernel to render.

pub mod model;
