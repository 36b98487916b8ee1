//! The cluster settings, each declared once.
//!
//! One invocation of [`cluster_settings!`] lists every setting with its doc (which is also its
//! flag's help), its type in a profile, its type in overrides, the built-in `workshop` value and
//! its command-line flag. From that list come [`Profile`], [`Overrides`] (which, with the
//! `clap` feature, is also the flags of a command that starts or grows a cluster),
//! [`ClusterSpec`], the `workshop` profile, and the merge of overrides over a profile.
//!
//! Adding a setting is one entry here (plus its validation in [`ClusterSpec::validate`] and its
//! use in the job script, if it has any). How an override changes a profile's value follows
//! from the value's type ([`MergeOver`]): a plain value is replaced, an optional one is replaced
//! or cleared by `""`, a map gains the given keys.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::spec::{MapBy, Placement, PythonEnv, Security, SpecError};

/// How an override of type `O` changes a profile's value of this type.
pub trait MergeOver<O>: Sized {
    /// This value with `over` applied (`None`: unchanged).
    fn merge_over(&self, over: Option<O>) -> Result<Self, SpecError>;
}

/// Plain values: the override replaces the profile's value.
macro_rules! replaced_by_override {
    ($($t:ty),*) => {$(
        impl MergeOver<$t> for $t {
            fn merge_over(&self, over: Option<$t>) -> Result<$t, SpecError> {
                Ok(over.unwrap_or_else(|| self.clone()))
            }
        }
    )*};
}
replaced_by_override!(String, u32, u16, f64, bool, Vec<String>, MapBy);

/// Optional values: the override replaces the profile's value, and `""` removes it.
impl MergeOver<String> for Option<String> {
    fn merge_over(&self, over: Option<String>) -> Result<Option<String>, SpecError> {
        Ok(match over {
            Some(v) if v.is_empty() => None,
            Some(v) => Some(v),
            None => self.clone(),
        })
    }
}

/// Maps (the job's environment, the workers' resources): the override's keys are added to, or
/// replace, the profile's.
impl<V: Clone> MergeOver<BTreeMap<String, V>> for BTreeMap<String, V> {
    fn merge_over(
        &self,
        over: Option<BTreeMap<String, V>>,
    ) -> Result<BTreeMap<String, V>, SpecError> {
        let mut merged = self.clone();
        merged.extend(over.unwrap_or_default());
        Ok(merged)
    }
}

/// Placement is given as text (`batch`, `allocation`, `auto`) and checked here.
impl MergeOver<String> for Placement {
    fn merge_over(&self, over: Option<String>) -> Result<Placement, SpecError> {
        match over {
            Some(value) => Placement::parse(&value),
            None => Ok(*self),
        }
    }
}

/// Security is given as text (`tls`, `none`) and checked here.
impl MergeOver<String> for Security {
    fn merge_over(&self, over: Option<String>) -> Result<Security, SpecError> {
        match over {
            Some(value) => Security::parse(&value),
            None => Ok(*self),
        }
    }
}

/// Declares the settings. Two groups: `spec { … }` settings are copied as they are into the
/// [`ClusterSpec`]; `profile_only { … }` settings are turned into other spec fields by
/// [`Profile::resolve`](crate::profile::Profile::resolve) (the Python environment, the log
/// directory). Each entry:
///
/// ```text
/// /// Doc, also the flag's help.
/// @spec #[serde(…)]            (optional: attributes for the ClusterSpec field only)
/// name: ProfileType, override OverrideType = workshop value, flag(clap arg attributes | skip);
/// ```
macro_rules! cluster_settings {
    (
        spec {$(
            $(#[doc = $doc:literal])*
            $(@spec #[$spec_attr:meta])*
            $field:ident : $ty:ty, override $over:ty = $default:expr, flag($($flag:tt)*);
        )*}
        profile_only {$(
            $(#[doc = $p_doc:literal])*
            $p_field:ident : $p_ty:ty, override $p_over:ty = $p_default:expr, flag($($p_flag:tt)*);
        )*}
    ) => {
        /// Every knob of a cluster, with a value (or a deliberate "none") for each.
        ///
        /// A profile is a template: [`Profile::resolve`](crate::profile::Profile::resolve)
        /// merges [`Overrides`] over it and validates the result into a [`ClusterSpec`].
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        pub struct Profile {
            /// The profile's name (`workshop` for the built-in one).
            pub name: String,
            $($(#[doc = $doc])* pub $field: $ty,)*
            $($(#[doc = $p_doc])* pub $p_field: $p_ty,)*
        }

        /// Settings that change a profile: a `[profiles.NAME]` table of the config file, or the
        /// flags of a command that starts or grows a cluster. Every field is optional; `None`
        /// keeps the profile's value, and `""` removes an optional setting.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[cfg_attr(feature = "clap", derive(clap::Args))]
        #[serde(deny_unknown_fields)]
        pub struct Overrides {
            $(
                $(#[doc = $doc])*
                #[cfg_attr(feature = "clap", arg($($flag)*))]
                pub $field: Option<$over>,
            )*
            $(
                $(#[doc = $p_doc])*
                #[cfg_attr(feature = "clap", arg($($p_flag)*))]
                pub $p_field: Option<$p_over>,
            )*
        }

        /// A fully resolved cluster: what [`crate::script`] renders into a job script.
        ///
        /// Build it with [`crate::profile::Profile::resolve`] (profile + overrides), which
        /// validates every field; [`ClusterSpec::validate`] checks again before anything is
        /// rendered, so a spec built or changed by hand cannot smuggle a value into a script
        /// either.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        pub struct ClusterSpec {
            /// The cluster's name: job name, comment tag and worker name prefix.
            pub name: String,
            /// The profile it was resolved from (for the card and the registry).
            pub profile: String,
            /// Where the Python environment with dask-mpi comes from.
            pub python_env: PythonEnv,
            /// Directory for the jobs' `slurm-%j.out` files (absolute; must exist before
            /// `sbatch`).
            pub log_dir: PathBuf,
            $($(#[doc = $doc])* $(#[$spec_attr])* pub $field: $ty,)*
        }

        impl ClusterSpec {
            /// A profile with every setting of this spec, and the `profile_only` ones unset
            /// (see [`ClusterSpec::as_profile`](crate::spec::ClusterSpec::as_profile)).
            pub(crate) fn settings_as_profile(&self) -> Profile {
                Profile {
                    name: self.profile.clone(),
                    $($field: self.$field.clone(),)*
                    $($p_field: Default::default(),)*
                }
            }
        }

        impl Profile {
            /// The built-in profile: the workshop's job script, as parameters.
            pub fn workshop() -> Profile {
                Profile {
                    name: crate::profile::WORKSHOP_PROFILE.to_owned(),
                    $($field: $default,)*
                    $($p_field: $p_default,)*
                }
            }

            /// Every setting of this profile with `overrides` merged over it ([`MergeOver`]),
            /// named `name`.
            fn merge_each(&self, name: &str, overrides: Overrides) -> Result<Profile, SpecError> {
                Ok(Profile {
                    name: name.to_owned(),
                    $($field: self.$field.merge_over(overrides.$field)?,)*
                    $($p_field: self.$p_field.merge_over(overrides.$p_field)?,)*
                })
            }

            /// The spec of cluster `name` from this (merged) profile and the spec fields made
            /// from its `profile_only` settings.
            pub(crate) fn into_spec(self, name: &str, python_env: PythonEnv, log_dir: PathBuf) -> ClusterSpec {
                ClusterSpec {
                    name: name.to_owned(),
                    profile: self.name,
                    python_env,
                    log_dir,
                    $($field: self.$field,)*
                }
            }
        }
    };
}

cluster_settings! {
    spec {
        /// SLURM partition (queue), e.g. multiple.
        partition: String, override String = "multiple".to_owned(), flag(long, short = 'p');
        /// Nodes per job.
        nodes: u32, override u32 = 2, flag(long, short = 'N');
        /// Dask processes (MPI ranks) per node; the `up` job's scheduler takes one of them.
        workers_per_node: u32, override u32 = 2, flag(long);
        /// Threads per Dask worker (`--nthreads`, `--cpus-per-task`).
        threads_per_worker: u32, override u32 = 20, flag(long);
        /// Time limit (SLURM format: 30:00, 2:00:00, 1-12:00).
        time: String, override String = "30:00".to_owned(), flag(long, short = 't');
        /// Memory per node for SLURM (90000mb, 90G).
        mem: Option<String>, override String = Some("90000mb".to_owned()), flag(long);
        /// Memory per CPU for SLURM instead of per node (2000mb), where the site wants it.
        mem_per_cpu: Option<String>, override String = None, flag(long);
        /// Memory limit per Dask worker (4GiB).
        memory_limit: Option<String>, override String = None, flag(long);
        /// The Dask worker class (`distributed.Worker`; `dask_cuda.CUDAWorker` for GPUs).
        worker_class: String, override String = "distributed.Worker".to_owned(), flag(long);
        /// Abstract resources each worker offers to tasks (`GPU = 1`), Dask's `resources`.
        worker_resources: BTreeMap<String, f64>, override BTreeMap<String, f64> = BTreeMap::new(),
            flag(skip);
        /// How long a worker lives before it retires gracefully (`55m`), so that its tasks move
        /// before the job's walltime; Dask's `lifetime`.
        lifetime: Option<String>, override String = None, flag(long);
        /// Spread of the workers' lifetimes (`5m`), so that they do not all retire at once.
        lifetime_stagger: Option<String>, override String = None, flag(long);
        /// Seconds before a grow job's time limit at which SLURM signals it (`#SBATCH
        /// --signal=B:USR1@SECONDS`, up to 60 s early) to retire its workers gracefully through
        /// the scheduler, so that their data moves to the other workers; 0 turns the drain off.
        @spec #[serde(default = "crate::spec::default_drain_margin")]
        drain_margin: u32, override u32 = crate::spec::default_drain_margin(),
            flag(long, alias = "signal", value_name = "SECONDS");
        /// Network interface for Dask (ib0, eth0, lo).
        interface: String, override String = "ib0".to_owned(), flag(long);
        /// Dask's local directory on the nodes ($TMP/dask).
        local_directory: String, override String = "$TMP/dask".to_owned(), flag(long);
        /// SLURM account.
        account: Option<String>, override String = None, flag(long, short = 'A');
        /// SLURM quality of service (`--qos`), where the site requires one.
        qos: Option<String>, override String = None, flag(long);
        /// Node features the jobs need (`--constraint`, e.g. `ib&skylake`).
        constraint: Option<String>, override String = None, flag(long, short = 'C');
        /// A reservation to run in (`--reservation`), e.g. a workshop's.
        reservation: Option<String>, override String = None, flag(long);
        /// Generic resources per node (`--gres`, e.g. `gpu:2` or `gpu:a100:1`).
        gres: Option<String>, override String = None, flag(long);
        /// GPUs per node (`--gpus-per-node`, e.g. `4` or `a100:4`), where the site counts GPUs
        /// so instead of through `gres`.
        gpus_per_node: Option<String>, override String = None, flag(long);
        /// Whole nodes (`--exclusive`): no other job shares the cluster's nodes.
        @spec #[serde(default)]
        exclusive: bool, override bool = false,
            flag(long, num_args = 0..=1, default_missing_value = "true");
        /// Login host for the dashboard's ssh tunnel line.
        login_host: Option<String>, override String = None, flag(skip);
        /// Preferred dashboard port (the scheduler falls back to a free one if it is taken).
        dashboard_port: u16, override u16 = 8787, flag(skip);
        /// Extra environment variables for the job (name → value; values may refer to `$VARS`).
        env: BTreeMap<String, String>, override BTreeMap<String, String> = BTreeMap::new(),
            flag(skip);
        /// Further `#SBATCH` options the site needs, each one `--name` or `--name=value`
        /// (`--mem-per-cpu=2000`, `--exclusive`, `--signal=B:USR1@300`).
        extra_directives: Vec<String>, override Vec<String> = Vec::new(), flag(skip);
        /// Generated `#SBATCH` lines to leave out, by option name (`mem`, `ntasks-per-node`),
        /// for sites that reject them or set them themselves.
        skip_directives: Vec<String>, override Vec<String> = Vec::new(), flag(skip);
        /// The site's own set-up lines (`module load devel/python/3.12`), run as written in the
        /// job before the Python environment is activated: your shell, one line per entry.
        prologue: Vec<String>, override Vec<String> = Vec::new(), flag(skip);
        /// Extra `mpirun` arguments, each passed as one quoted word.
        mpirun_args: Vec<String>, override Vec<String> = Vec::new(), flag(skip);
        /// `mpirun --map-by` policy; `{threads}` stands for threads per worker, `""` means none.
        map_by: MapBy, override MapBy = MapBy::core_pe(), flag(skip);
        /// Minutes without a kernel heartbeat before the job ends itself (0 = no watchdog;
        /// fractions are allowed).
        watchdog_minutes: f64, override f64 = 10.0, flag(skip);
        /// Seconds between `squeue` polls while nothing changes (at least
        /// [`MIN_POLL_INTERVAL_SECS`](crate::spec::MIN_POLL_INTERVAL_SECS)).
        poll_interval_secs: u32, override u32 = 30, flag(skip);
        /// Mutual TLS (`tls`, the default) or plain TCP (`none`). A record written before this
        /// setting existed has none, and its cluster ran plain TCP, so a missing value reads as
        /// [`Security::None`] (a grow job must speak what the running scheduler speaks).
        @spec #[serde(default = "Security::of_old_record")]
        security: Security, override String = Security::Tls, flag(skip);
        /// Where the cluster runs: `batch` (a job of its own), `allocation` (job steps in the
        /// SLURM job the kernel runs in, as under JupyterHub) or `auto` (the allocation when the
        /// kernel is inside a job with room, else batch).
        @spec #[serde(default)]
        placement: Placement, override String = Placement::Batch, flag(long);
        /// CPUs of the kernel's own node kept for the notebook (its cells and builds) when a
        /// cluster runs in the kernel's allocation.
        @spec #[serde(default = "crate::spec::default_notebook_cores")]
        notebook_cores: u32, override u32 = crate::spec::default_notebook_cores(), flag(long);
        /// Memory of the kernel's own node kept for the notebook (4G) when a cluster runs in the
        /// kernel's allocation.
        @spec #[serde(default = "crate::spec::default_notebook_mem")]
        notebook_mem: String, override String = crate::spec::default_notebook_mem(), flag(long);
    }
    profile_only {
        /// A packed environment (tar.gz) to stage to node-local $TMP, one srun per node.
        env_archive: Option<String>, override String = None, flag(long);
        /// A venv or conda environment with dask-mpi to activate.
        python_env: Option<String>, override String = None, flag(long);
        /// Directory for `slurm-%j.out` (`~/` is expanded; by default the notebook's directory).
        log_dir: Option<String>, override String = None, flag(skip);
    }
}

impl Profile {
    /// Every setting of this profile with `overrides` merged over it, named `name`; the
    /// packed environment and the environment to activate replace each other.
    pub(crate) fn merge_settings(
        &self,
        name: &str,
        overrides: &Overrides,
    ) -> Result<Profile, SpecError> {
        let mut merged = self.merge_each(name, overrides.clone())?;
        // Memory per node and per CPU replace each other (SLURM takes one of them).
        if overrides.mem_per_cpu.is_some() && overrides.mem.is_none() {
            merged.mem = None;
        }
        if overrides.mem.is_some() && overrides.mem_per_cpu.is_none() {
            merged.mem_per_cpu = None;
        }
        if overrides.env_archive.is_some() {
            merged.python_env = None;
        }
        if overrides.python_env.is_some() {
            merged.env_archive = None;
        }
        Ok(merged)
    }
}
