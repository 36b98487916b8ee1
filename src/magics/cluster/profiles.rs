//! `%cluster profiles`: the profiles of `config.toml` and which one is the default.

use super::{failed, Cluster};
use crate::display::Bundle;
use crate::magics::MagicError;

/// One profile name a line, the default marked.
pub(super) fn run(cluster: &Cluster) -> Result<Option<Bundle>, MagicError> {
    let (names, default) = cluster.clusters.profile_names().map_err(failed)?;
    let text = names
        .iter()
        .map(|n| {
            if *n == default {
                format!("{n} (default)\n")
            } else {
                format!("{n}\n")
            }
        })
        .collect::<String>();
    Ok(Some(Bundle::text(text)))
}
