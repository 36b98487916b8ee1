//! `%cluster use NAME`: bind `%%python` to that cluster (`Client()` with no arguments connects to
//! its scheduler).

use clap::Args;

use super::Cluster;
use crate::display::Bundle;
use crate::magics::MagicError;

#[derive(Args)]
pub(super) struct UseArgs {
    /// The cluster.
    name: String,
}

/// Tells the Python sub-kernel which cluster to use.
pub(super) fn run(cluster: &Cluster, args: UseArgs) -> Result<Option<Bundle>, MagicError> {
    let name = args.name;
    let text = match cluster
        .bridge
        .use_cluster(&name)
        .map_err(MagicError::Failed)?
    {
        Some(address) => format!("%%python now uses cluster {name} ({address}).\n"),
        None => format!("%%python will use cluster {name} once its scheduler is up.\n"),
    };
    Ok(Some(Bundle::text(text)))
}
