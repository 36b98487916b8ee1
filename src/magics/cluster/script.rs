//! `%cluster script`: the job script that `up` (or `grow`) would submit; submits nothing.

use clap::Args;
use dask_slurm::manager::{GrowRequest, UpRequest};

use super::spec_args::{BackendArg, SpecArgs};
use super::{failed, Cluster};
use crate::display::Bundle;
use crate::magics::MagicError;

#[derive(Args)]
pub(super) struct ScriptArgs {
    /// The cluster's name.
    name: Option<String>,
    /// The grow job's script (of an existing cluster) instead of the up job's.
    #[arg(long)]
    grow: bool,
    /// The profile from config.toml.
    #[arg(long)]
    profile: Option<String>,
    #[command(flatten)]
    spec: SpecArgs,
    /// slurm or local.
    #[arg(long, value_enum)]
    backend: Option<BackendArg>,
    /// Run the workers as steps of the SLURM job this kernel runs in (JupyterHub, Open
    /// OnDemand): no queue wait; the same as --placement allocation.
    #[arg(long, conflicts_with_all = ["backend", "placement", "grow"])]
    in_allocation: bool,
    /// The script of a plain-TCP cluster (up --insecure).
    #[arg(long, conflicts_with = "grow")]
    insecure: bool,
}

/// The script as text.
pub(super) fn run(cluster: &Cluster, script: ScriptArgs) -> Result<Option<Bundle>, MagicError> {
    let c = &cluster.clusters;
    let text = if script.grow {
        c.script_for_grow(&GrowRequest {
            name: script.name,
            overrides: script.spec.overrides(),
        })
    } else {
        c.script_for_up(&UpRequest {
            name: script.name,
            profile: script.profile,
            overrides: script
                .spec
                .overrides_with(script.insecure, script.in_allocation),
            backend: script.backend.map(BackendArg::backend),
            keep: false,
        })
    };
    Ok(Some(Bundle::text(text.map_err(failed)?)))
}
