//! `%cluster status` (and `%cluster` alone): the live card of a cluster.

use clap::Args;

use super::{failed, Cluster};
use crate::display::Bundle;
use crate::magics::{MagicContext, MagicError};

#[derive(Args)]
pub(super) struct StatusArgs {
    /// The cluster (default: the newest).
    pub(super) name: Option<String>,
}

/// Shows the cluster's card.
pub(super) fn run(
    cluster: &Cluster,
    status: StatusArgs,
    ctx: &mut MagicContext<'_>,
) -> Result<Option<Bundle>, MagicError> {
    let view = cluster
        .clusters
        .status(status.name.as_deref())
        .map_err(failed)?;
    cluster.card(ctx.out, view)
}
