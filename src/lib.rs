//! rust-cluster-kernel: a Jupyter kernel for Rust (through `evcxr`) with magics that run a
//! Dask cluster on SLURM.
//!
//! The crate is one pipeline in five rooms; each folder may only look "downstream":
//!
//! ```text
//!  ZeroMQ sockets ──► protocol ──► kernel ──► cell router ──┬─► engine (evcxr)
//!  (server/)          (pure)      (busy/idle,   (magics/)    ├─► magics ──► cluster ──► SLURM CLI / mpirun
//!                                  counting)                 │                 └─► Dask scheduler HTTP
//!                                                            └─► display (HTML + text bundles)
//! ```
//!
//! - [`protocol`]: connection files, typed message contents, HMAC signing and wire framing.
//!   Pure: no sockets, no Rust, no SLURM.
//! - [`server`]: the only module with sockets: shell, control, iopub, stdin, heartbeat.
//! - [`kernel`]: request handlers; the only place that publishes busy/idle and counts executions.
//! - [`engine`]: the only module that knows evcxr.
//! - [`magics`]: `%line` and `%%cell` magics, one file each, parsed with clap.
//! - the `dask_slurm` crate (`crates/dask-slurm`): SLURM and Dask, with no knowledge of Jupyter;
//!   it returns data. A crate of its own so that the boundary is enforced and it builds in seconds.
//! - [`display`]: turns that data into MIME bundles (HTML through templates, plus plain text).
//! - [`python`]: the Python sub-kernel behind `%%python`, a Jupyter *client* of an ipykernel
//!   that it binds to the cluster's scheduler.

pub mod display;
pub mod engine;
pub mod install;
pub mod kernel;
pub mod magics;
pub mod protocol;
pub mod python;
pub mod server;
