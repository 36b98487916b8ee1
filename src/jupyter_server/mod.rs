//! The Jupyter server the kernel belongs to, and the Dask dashboard through it.
//!
//! When JupyterLab runs on a compute node (JupyterHub's batchspawner, Open OnDemand), the
//! browser reaches the Jupyter server and nothing else of the cluster's network. With
//! jupyter-server-proxy installed in the server's environment, the dashboard is reachable
//! through the server instead of an ssh tunnel:
//!
//! - [`server`]: finds the server (its `jpserver-<pid>.json` beside the kernel's connection
//!   file, or JupyterHub's variables) and asks it things over HTTP with its token;
//! - [`link`]: which route to take (jupyter-server-proxy straight to the dashboard's host, or to
//!   the kernel's relay on `127.0.0.1`), decided by probing each through the server;
//! - [`relay`]: that relay, a TCP forwarder to the one dashboard address;
//! - [`dashboards`]: one link per cluster, remembered, with its relay, until the cluster ends.
//!
//! This module imports nothing of the crate's other layers; `display` shows its
//! [`DashboardLink`], `magics` and `python` ask [`Dashboards`] for one.

pub mod dashboards;
pub mod link;
pub mod relay;
pub mod server;

pub use dashboards::Dashboards;
pub use link::{DashboardLink, Route};
pub use relay::Relay;
pub use server::JupyterServer;
