//! Cluster profiles: named sets of every knob of a cluster, loaded from the user's config file,
//! and [`Overrides`] (from the config file or a command's flags) merged over one to give a
//! [`ClusterSpec`]. The settings themselves are declared in [`crate::settings`].
//!
//! (Over 600 lines: the code is about 310 of them; the rest are the tests of the config file's
//! rules.)
//!
//! The built-in profile `workshop` holds the workshop's values: 2 nodes on `multiple`, 2 workers
//! × 20 threads per node, `30:00`, `90000mb`, `ib0`, `$TMP/dask`. The config file
//! `$XDG_CONFIG_HOME/rust-cluster-kernel/config.toml` (`~/.config/…` without `XDG_CONFIG_HOME`)
//! adds or changes profiles; every key a profile leaves out comes from `workshop`:
//!
//! ```toml
//! default_profile = "lab"          # optional; the default is "workshop"
//!
//! [profiles.lab]
//! partition = "multiple"
//! threads_per_worker = 1
//! interface = "lo"
//! mem = ""                         # "" removes an optional setting inherited from workshop
//! security = "tls"                 # the default: mutual TLS; "none" is plain TCP (anyone on
//!                                  # the network can then run code as you)
//!
//! [profiles.lab.env]
//! OMPI_MCA_btl_tcp_if_include = "lo"
//! ```
//!
//! The environment variable `RUST_CLUSTER_KERNEL_PROFILE` names the default profile and wins over
//! `default_profile`, so tests and notebooks can switch to a small profile without editing a cell.
//! Unknown keys are errors that name the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use crate::settings::{Overrides, Profile};
use crate::spec::{validate_cluster_name, ClusterSpec, PythonEnv, SpecError};

/// The environment variable that selects the default profile.
pub const PROFILE_ENV_VAR: &str = "RUST_CLUSTER_KERNEL_PROFILE";

/// The name of the built-in profile.
pub const WORKSHOP_PROFILE: &str = "workshop";

/// A profile could not be loaded or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// The config file exists but could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The config file.
        path: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has an unknown key; the message names the key and
    /// its line.
    #[error("{}: {message}", path.display())]
    Parse {
        /// The config file.
        path: PathBuf,
        /// The TOML parser's message (with line, column and the offending key).
        message: String,
    },
    /// A profile in the config file has a value that cannot be used.
    #[error("{}: profile {profile:?}: {source}", path.display())]
    InvalidProfile {
        /// The config file.
        path: PathBuf,
        /// The profile's name.
        profile: String,
        /// What is wrong with it.
        source: Box<SpecError>,
    },
    /// A profile name (a `[profiles.NAME]` table) is not a valid name.
    #[error("{}: invalid profile name {name:?}: use letters, digits, `_` and `-`", path.display())]
    InvalidName {
        /// The config file.
        path: PathBuf,
        /// The name.
        name: String,
    },
    /// No profile of that name exists.
    #[error("unknown profile {name:?} (from {origin}); known profiles: {}", known.join(", "))]
    Unknown {
        /// The name asked for.
        name: String,
        /// Where the name came from (`--profile`, `default_profile`, `$RUST_CLUSTER_KERNEL_PROFILE`).
        origin: String,
        /// The profiles that do exist.
        known: Vec<String>,
    },
}

impl Profile {
    /// This profile with `overrides` applied; the result is named `name`.
    ///
    /// Setting `env_archive` clears an inherited `python_env` and the other way round; setting
    /// both in the same `overrides` is a [`SpecError::Conflict`]. An empty string clears an
    /// optional setting. `env` entries are added to (or replace) the inherited ones.
    pub fn merged(&self, name: &str, overrides: &Overrides) -> Result<Profile, SpecError> {
        if overrides.env_archive.is_some() && overrides.python_env.is_some() {
            return Err(SpecError::Conflict {
                first: "env_archive".to_owned(),
                second: "python_env".to_owned(),
                reason: "the packed environment is unpacked and activated on each node; \
                         give one or the other"
                    .to_owned(),
            });
        }
        self.merge_settings(name, overrides)
    }

    /// The cluster `cluster_name` from this profile with `overrides`, validated.
    ///
    /// `fallback_log_dir` is used when neither the profile nor the overrides name a log
    /// directory (pass the kernel's working directory to write `slurm-%j.out` where the workshop
    /// did). A `log_dir` starting with `~/` is taken relative to `$HOME`.
    pub fn resolve(
        &self,
        cluster_name: &str,
        overrides: &Overrides,
        fallback_log_dir: &Path,
    ) -> Result<ClusterSpec, SpecError> {
        validate_cluster_name(cluster_name)?;
        let p = self.merged(&self.name, overrides)?;
        let python_env = match (p.env_archive.clone(), p.python_env.clone()) {
            (Some(archive), None) => PythonEnv::Staged(archive),
            (None, Some(dir)) => PythonEnv::Activate(dir),
            (None, None) => PythonEnv::Inherit,
            (Some(_), Some(_)) => {
                return Err(SpecError::Conflict {
                    first: "env_archive".to_owned(),
                    second: "python_env".to_owned(),
                    reason: "a profile may set only one of them".to_owned(),
                })
            }
        };
        let log_dir = match &p.log_dir {
            Some(dir) => expand_home(dir),
            None => fallback_log_dir.to_path_buf(),
        };
        let spec = p.into_spec(cluster_name, python_env, log_dir);
        spec.validate()?;
        Ok(spec)
    }
}

/// `~/rest` → `$HOME/rest`; anything else unchanged.
fn expand_home(dir: &str) -> PathBuf {
    match (dir.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(dir),
    }
}

/// The config file's shape.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    default_profile: Option<String>,
    #[serde(default)]
    profiles: BTreeMap<String, Overrides>,
}

/// The profiles a kernel can use: the built-in `workshop` plus the config file's, and which one
/// is the default.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileSet {
    profiles: BTreeMap<String, Profile>,
    default_profile: String,
    source: Option<PathBuf>,
}

impl ProfileSet {
    /// Only the built-in `workshop` profile, which is also the default.
    pub fn builtin() -> ProfileSet {
        let workshop = Profile::workshop();
        ProfileSet {
            profiles: BTreeMap::from([(workshop.name.clone(), workshop)]),
            default_profile: WORKSHOP_PROFILE.to_owned(),
            source: None,
        }
    }

    /// Loads the user's config file ([`config_path`]) if it exists, with the default profile
    /// chosen by `$RUST_CLUSTER_KERNEL_PROFILE` if set.
    pub fn load() -> Result<ProfileSet, ProfileError> {
        let env_profile = std::env::var(PROFILE_ENV_VAR)
            .ok()
            .filter(|v| !v.is_empty());
        ProfileSet::load_from(config_path().as_deref(), env_profile.as_deref())
    }

    /// Loads `path` (a missing file is fine: only the built-in profile) and makes `env_profile`
    /// (the value of `$RUST_CLUSTER_KERNEL_PROFILE`) the default if given.
    pub fn load_from(
        path: Option<&Path>,
        env_profile: Option<&str>,
    ) -> Result<ProfileSet, ProfileError> {
        let Some(path) = path else {
            return ProfileSet::builtin().with_default_from_env(env_profile);
        };
        match std::fs::read_to_string(path) {
            Ok(text) => ProfileSet::from_toml(&text, path, env_profile),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut set = ProfileSet::builtin();
                set.source = Some(path.to_path_buf());
                set.with_default_from_env(env_profile)
            }
            Err(source) => Err(ProfileError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Parses config text (`path` is only used in messages). Each profile inherits from the
    /// built-in `workshop` and is validated here, so a bad value is reported when the file is
    /// loaded, with the profile and key named.
    pub fn from_toml(
        text: &str,
        path: &Path,
        env_profile: Option<&str>,
    ) -> Result<ProfileSet, ProfileError> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| ProfileError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        let mut set = ProfileSet::builtin();
        set.source = Some(path.to_path_buf());
        let workshop = Profile::workshop();
        for (name, table) in &file.profiles {
            if validate_cluster_name(name).is_err() {
                return Err(ProfileError::InvalidName {
                    path: path.to_path_buf(),
                    name: name.clone(),
                });
            }
            let invalid = |source| ProfileError::InvalidProfile {
                path: path.to_path_buf(),
                profile: name.clone(),
                source: Box::new(source),
            };
            let profile = workshop.merged(name, table).map_err(invalid)?;
            profile
                .resolve("check", &Overrides::default(), Path::new("/"))
                .map_err(invalid)?;
            set.profiles.insert(name.clone(), profile);
        }
        if let Some(default) = file.default_profile {
            set.check_known(&default, "default_profile")?;
            set.default_profile = default;
        }
        set.with_default_from_env(env_profile)
    }

    fn with_default_from_env(mut self, env_profile: Option<&str>) -> Result<Self, ProfileError> {
        if let Some(name) = env_profile {
            self.check_known(name, &format!("${PROFILE_ENV_VAR}"))?;
            self.default_profile = name.to_owned();
        }
        Ok(self)
    }

    fn check_known(&self, name: &str, origin: &str) -> Result<(), ProfileError> {
        if self.profiles.contains_key(name) {
            Ok(())
        } else {
            Err(ProfileError::Unknown {
                name: name.to_owned(),
                origin: origin.to_owned(),
                known: self.names().map(str::to_owned).collect(),
            })
        }
    }

    /// The profile `name`, or the default profile for `None`.
    pub fn get(&self, name: Option<&str>) -> Result<&Profile, ProfileError> {
        let name = name.unwrap_or(&self.default_profile);
        self.check_known(name, "--profile")?;
        Ok(&self.profiles[name])
    }

    /// The default profile's name.
    pub fn default_name(&self) -> &str {
        &self.default_profile
    }

    /// Every profile's name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.profiles.keys().map(String::as_str)
    }

    /// The config file these profiles came from (or would have), if any.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }
}

/// `$XDG_CONFIG_HOME/rust-cluster-kernel/config.toml`, or `$HOME/.config/…` when
/// `XDG_CONFIG_HOME` is unset or empty; `None` if neither variable is set.
pub fn config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("rust-cluster-kernel").join("config.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Security;

    const LAB: &str = r#"
default_profile = "lab"

[profiles.lab]
nodes = 2
workers_per_node = 2
threads_per_worker = 1
interface = "lo"
mem = "1000M"
time = "5:00"
map_by = ""
python_env = "/opt/venv"
watchdog_minutes = 0.5

[profiles.lab.env]
OMPI_ALLOW_RUN_AS_ROOT = "1"

[profiles.big]
nodes = 8
account = "hk-project"
"#;

    fn path() -> &'static Path {
        Path::new("/home/u/.config/rust-cluster-kernel/config.toml")
    }

    #[test]
    fn workshop_profile_resolves_to_the_workshop_job() {
        let spec = Profile::workshop()
            .resolve("demo", &Overrides::default(), Path::new("/home/u"))
            .unwrap();
        assert_eq!(spec.partition, "multiple");
        assert_eq!(
            (spec.nodes, spec.workers_per_node, spec.threads_per_worker),
            (2, 2, 20)
        );
        assert_eq!(spec.time, "30:00");
        assert_eq!(spec.mem.as_deref(), Some("90000mb"));
        assert_eq!(spec.interface, "ib0");
        assert_eq!(spec.local_directory, "$TMP/dask");
        assert_eq!(spec.python_env, PythonEnv::Inherit);
        assert_eq!(spec.watchdog_secs(), Some(600));
        assert_eq!(spec.poll_interval_secs, 30);
        assert_eq!(spec.log_dir, Path::new("/home/u"));
        assert_eq!(spec.workers_in_up_job(), 3);
    }

    #[test]
    fn config_profiles_inherit_missing_keys_from_workshop() {
        let set = ProfileSet::from_toml(LAB, path(), None).unwrap();
        assert_eq!(set.default_name(), "lab");
        assert_eq!(set.names().collect::<Vec<_>>(), ["big", "lab", "workshop"]);
        let lab = set.get(None).unwrap();
        assert_eq!(lab.threads_per_worker, 1);
        assert_eq!(lab.partition, "multiple", "inherited");
        assert_eq!(lab.local_directory, "$TMP/dask", "inherited");
        assert_eq!(lab.map_by.value_for(1), None);
        let big = set.get(Some("big")).unwrap();
        assert_eq!(big.nodes, 8);
        assert_eq!(big.threads_per_worker, 20);
        assert_eq!(big.account.as_deref(), Some("hk-project"));
    }

    #[test]
    fn env_variable_selects_the_default_profile() {
        let set = ProfileSet::from_toml(LAB, path(), Some("big")).unwrap();
        assert_eq!(set.default_name(), "big");
        let err = ProfileSet::from_toml(LAB, path(), Some("nosuch")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("nosuch") && msg.contains(PROFILE_ENV_VAR),
            "{msg}"
        );
        assert!(msg.contains("big, lab, workshop"), "{msg}");
        // Without a config file the variable may still name the built-in profile.
        let set = ProfileSet::load_from(None, Some("workshop")).unwrap();
        assert_eq!(set.default_name(), "workshop");
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = ProfileSet::from_toml("[profiles.x]\npartion = \"single\"\n", path(), None)
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("unknown field `partion`"), "{msg}");
        assert!(msg.contains("line 2"), "{msg}");
        let err = ProfileSet::from_toml("defaultprofile = \"x\"\n", path(), None).unwrap_err();
        assert!(err.to_string().contains("`defaultprofile`"), "{err}");
    }

    #[test]
    fn bad_values_name_profile_and_key() {
        let err = ProfileSet::from_toml("[profiles.x]\ntime = \"$(rm -rf ~)\"\n", path(), None)
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("profile \"x\"") && msg.contains("invalid time"),
            "{msg}"
        );
        let err = ProfileSet::from_toml("[profiles.x]\nnodes = 0\n", path(), None).unwrap_err();
        assert!(err.to_string().contains("invalid nodes"), "{err}");
        let err =
            ProfileSet::from_toml("[profiles.x.env]\n\"A B\" = \"1\"\n", path(), None).unwrap_err();
        assert!(err.to_string().contains("invalid env \"A B\""), "{err}");
        let err = ProfileSet::from_toml("[profiles.\"a b\"]\n", path(), None).unwrap_err();
        assert!(matches!(err, ProfileError::InvalidName { .. }), "{err}");
        let err = ProfileSet::from_toml("default_profile = \"zz\"\n", path(), None).unwrap_err();
        assert!(err.to_string().contains("default_profile"), "{err}");
        let err = ProfileSet::from_toml(
            "[profiles.x]\nenv_archive = \"/a.tgz\"\npython_env = \"/v\"\n",
            path(),
            None,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("env_archive and python_env"),
            "{err}"
        );
    }

    #[test]
    fn overrides_replace_profile_values() {
        let set = ProfileSet::from_toml(LAB, path(), None).unwrap();
        let lab = set.get(Some("lab")).unwrap();
        let overrides = Overrides {
            nodes: Some(3),
            partition: Some("single".into()),
            mem: Some(String::new()),
            env_archive: Some("$HOME/env.tar.gz".into()),
            env: Some(BTreeMap::from([("EXTRA".into(), "x".into())])),
            ..Overrides::default()
        };
        let spec = lab.resolve("c1", &overrides, Path::new("/tmp")).unwrap();
        assert_eq!(spec.profile, "lab");
        assert_eq!(spec.nodes, 3);
        assert_eq!(spec.partition, "single");
        assert_eq!(spec.mem, None, "an empty string removes the setting");
        assert_eq!(
            spec.python_env,
            PythonEnv::Staged("$HOME/env.tar.gz".into())
        );
        assert_eq!(
            spec.env.len(),
            2,
            "env is merged key by key: {:?}",
            spec.env
        );
        let both = Overrides {
            env_archive: Some("/a".into()),
            python_env: Some("/b".into()),
            ..Overrides::default()
        };
        assert!(matches!(
            lab.resolve("c1", &both, Path::new("/tmp")),
            Err(SpecError::Conflict { .. })
        ));
    }

    #[test]
    fn hostile_overrides_are_refused_with_the_field_named() {
        let w = Profile::workshop();
        let cases = [
            (
                Overrides {
                    partition: Some("multiple; rm -rf ~".into()),
                    ..Default::default()
                },
                "partition",
            ),
            (
                Overrides {
                    time: Some("30:00\n#SBATCH --uid=0".into()),
                    ..Default::default()
                },
                "time",
            ),
            (
                Overrides {
                    account: Some("a\"b".into()),
                    ..Default::default()
                },
                "account",
            ),
            (
                Overrides {
                    mem: Some("$(id)".into()),
                    ..Default::default()
                },
                "mem",
            ),
            (
                Overrides {
                    interface: Some("ib0 --x".into()),
                    ..Default::default()
                },
                "interface",
            ),
            (
                Overrides {
                    local_directory: Some("$(rm -rf ~)".into()),
                    ..Default::default()
                },
                "local_directory",
            ),
            (
                Overrides {
                    python_env: Some("`id`".into()),
                    ..Default::default()
                },
                "python_env",
            ),
            (
                Overrides {
                    nodes: Some(0),
                    ..Default::default()
                },
                "nodes",
            ),
            (
                Overrides {
                    poll_interval_secs: Some(1),
                    ..Default::default()
                },
                "poll_interval_secs",
            ),
            (
                Overrides {
                    watchdog_minutes: Some(-1.0),
                    ..Default::default()
                },
                "watchdog_minutes",
            ),
            (
                Overrides {
                    log_dir: Some("relative/logs".into()),
                    ..Default::default()
                },
                "log_dir",
            ),
            (
                Overrides {
                    mpirun_args: Some(vec!["--x=$(id)".into()]),
                    ..Default::default()
                },
                "mpirun_args",
            ),
        ];
        for (overrides, field) in cases {
            let err = w.resolve("c", &overrides, Path::new("/tmp")).unwrap_err();
            assert_eq!(err.field(), field, "{err}");
        }
        let err = w
            .resolve("bad name", &Overrides::default(), Path::new("/tmp"))
            .unwrap_err();
        assert_eq!(err.field(), "cluster name");
    }

    #[test]
    fn missing_config_file_gives_the_builtin_profile() {
        let dir = std::env::temp_dir().join(format!("rck-profile-test-{}", std::process::id()));
        let set = ProfileSet::load_from(Some(&dir.join("none.toml")), None).unwrap();
        assert_eq!(set.default_name(), WORKSHOP_PROFILE);
        assert_eq!(set.names().count(), 1);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config.toml");
        std::fs::write(&file, LAB).unwrap();
        let set = ProfileSet::load_from(Some(&file), None).unwrap();
        assert_eq!(set.source(), Some(file.as_path()));
        assert_eq!(set.default_name(), "lab");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_lab_test_profile_loads() {
        let file =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/slurm/test-profile.toml");
        let set = ProfileSet::load_from(Some(&file), Some("lab")).unwrap();
        let spec = set
            .get(None)
            .unwrap()
            .resolve("c", &Overrides::default(), Path::new("/tmp"))
            .unwrap();
        assert_eq!(
            (spec.nodes, spec.workers_per_node, spec.threads_per_worker),
            (2, 2, 1)
        );
        assert_eq!(spec.interface, "lo");
        assert_eq!(
            spec.python_env,
            PythonEnv::Activate("${RCK_DASK_VENV}".into())
        );
        assert_eq!(spec.env["OMPI_ALLOW_RUN_AS_ROOT"], "1");
    }

    #[test]
    fn security_is_tls_unless_a_profile_or_override_says_none() {
        let spec = Profile::workshop()
            .resolve("c", &Overrides::default(), Path::new("/x"))
            .unwrap();
        assert_eq!(spec.security, Security::Tls);
        let set =
            ProfileSet::from_toml("[profiles.open]\nsecurity = \"none\"\n", path(), None).unwrap();
        let open = set.get(Some("open")).unwrap();
        assert_eq!(open.security, Security::None);
        let back = Overrides {
            security: Some("tls".into()),
            ..Overrides::default()
        };
        assert_eq!(
            open.resolve("c", &back, Path::new("/x")).unwrap().security,
            Security::Tls
        );
        let err =
            ProfileSet::from_toml("[profiles.x]\nsecurity = \"off\"\n", path(), None).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("invalid security \"off\"") && msg.contains("\"none\""),
            "{msg}"
        );
    }

    #[test]
    fn log_dir_tilde_is_home() {
        let o = Overrides {
            log_dir: Some("~/logs".into()),
            ..Default::default()
        };
        let spec = Profile::workshop()
            .resolve("c", &o, Path::new("/x"))
            .unwrap();
        let home = std::env::var("HOME").unwrap();
        assert_eq!(spec.log_dir, Path::new(&home).join("logs"));
    }
}
