//! rust-cluster-kernel: a Jupyter kernel for Rust (through `evcxr`) with magics that run a
//! Dask cluster on SLURM.
//!
//! The crate is a stack of layers; each may only import the layers below it:
//!
//! ```text
//!  server           ZeroMQ sockets: shell, control, iopub, stdin, heartbeat
//!    │
//!  kernel           request handlers, busy/idle, execution count, history, the cell router
//!    │
//!    ├──► magics ──► python     %line and %%cell magics; the %%python sub-kernel
//!    └──► engine                evcxr
//!            │
//!  cell             what a cell produces: outputs, stream names, display ids, errors, interrupts
//!    │
//!  protocol, display            the Jupyter protocol as data; MIME bundles
//!    │
//!  dask_slurm (crates/dask-slurm)  SLURM and Dask, no Jupyter
//! ```
//!
//! - [`server`]: the kernel's own sockets; it receives a ready [`kernel::Kernel`] and feeds it.
//! - [`kernel`]: request handlers; the only place that publishes busy/idle and counts executions.
//!   Its cell router sends each cell to the magics or to the engine.
//! - [`magics`]: `%line` and `%%cell` magics, one file each (one per subcommand for
//!   `%cluster`), parsed with clap.
//! - [`engine`]: the only module that knows evcxr.
//! - [`python`]: the Python sub-kernel behind `%%python`, a Jupyter *client* of an ipykernel
//!   that it binds to the cluster's scheduler (over sockets of its own).
//! - [`cell`]: the vocabulary every layer above speaks: [`cell::Output`], [`cell::ErrorReport`],
//!   [`cell::Interrupt`].
//! - [`protocol`]: connection files, typed message contents, HMAC signing, wire framing and its
//!   ZeroMQ messages. Pure: no sockets, no Rust, no SLURM.
//! - [`display`]: turns the domain crate's data into MIME bundles (HTML through templates, plus
//!   plain text).
//! - [`jupyter_server`]: the Jupyter server the kernel belongs to, and links to the Dask
//!   dashboard through it (jupyter-server-proxy, or a relay of the kernel's on `127.0.0.1`).
//!   A leaf: `display` shows its links, `magics` and `python` ask it for them.
//! - [`paths`] (`~` and `$VAR` in paths) and [`install`] (the kernelspec) are leaves.
//! - the `dask_slurm` crate (`crates/dask-slurm`): SLURM and Dask, with no knowledge of Jupyter;
//!   it returns data. A crate of its own so that the boundary is enforced and it builds in seconds.
//!
//! The rule is a test: `cargo test --test layers` reads every `crate::…` path in `src/` and fails
//! on one that names a layer its file may not import (the allowed pairs are a table in
//! `tests/layers.rs`; a new top-level module must be added to it).

pub mod cell;
pub mod display;
pub mod engine;
pub mod install;
pub mod jupyter_server;
pub mod kernel;
pub mod magics;
pub mod paths;
pub mod protocol;
pub mod python;
pub mod server;
