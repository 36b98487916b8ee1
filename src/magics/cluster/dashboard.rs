//! `%cluster dashboard`: the dashboard through the Jupyter server (probed afresh when the last
//! probe found no way), else its URL and the exact `ssh -N -L` line that reaches it.

use clap::Args;

use super::{failed, Cluster};
use crate::display::dashboard::dashboard;
use crate::display::Bundle;
use crate::magics::MagicError;

#[derive(Args)]
pub(super) struct DashboardArgs {
    /// The cluster (default: the newest).
    name: Option<String>,
}

/// The dashboard's link, address and tunnel.
pub(super) fn run(cluster: &Cluster, args: DashboardArgs) -> Result<Option<Bundle>, MagicError> {
    let c = &cluster.clusters;
    let view = c.status(args.name.as_deref()).map_err(failed)?;
    let board = c.dashboard(Some(&view.name)).map_err(failed)?;
    let link = cluster.dashboards.for_view(&view, true);
    Ok(Some(dashboard(&view.name, &board, link.as_ref())))
}
