//! The flags that `up`, `grow` and `script` share: settings that replace the profile's, and the
//! backend.

use clap::{Args, ValueEnum};
use dask_slurm::model::Backend;
use dask_slurm::profile::Overrides;
use dask_slurm::spec::{Placement, Security};

/// `--backend`: where the cluster runs.
#[derive(Clone, Copy, ValueEnum)]
pub(super) enum BackendArg {
    Slurm,
    Local,
}

impl BackendArg {
    /// The manager's backend.
    pub(super) fn backend(self) -> Backend {
        match self {
            BackendArg::Slurm => Backend::Slurm,
            BackendArg::Local => Backend::Local,
        }
    }
}

/// Settings that replace the profile's for this cluster: the flags come from the settings'
/// one declaration ([`dask_slurm::settings`]).
#[derive(Args, Default)]
pub(super) struct SpecArgs {
    #[command(flatten)]
    settings: Overrides,
}

impl SpecArgs {
    /// The overrides, with `security = "none"` when `insecure` and `placement = "allocation"`
    /// when `in_allocation`.
    pub(super) fn overrides_with(&self, insecure: bool, in_allocation: bool) -> Overrides {
        let mut overrides = self.overrides();
        if insecure {
            overrides.security = Some(Security::None.as_str().to_owned());
        }
        if in_allocation {
            overrides.placement = Some(Placement::Allocation.as_str().to_owned());
        }
        overrides
    }

    /// The overrides as given.
    pub(super) fn overrides(&self) -> Overrides {
        self.settings.clone()
    }
}
