//! `%cluster list`: every cluster this kernel knows, also those found again after a restart.

use super::Cluster;
use crate::display::table::cluster_list;
use crate::display::Bundle;
use crate::magics::MagicError;

/// The table of clusters.
pub(super) fn run(cluster: &Cluster) -> Result<Option<Bundle>, MagicError> {
    Ok(Some(cluster_list(&cluster.clusters.list())))
}
