//! The engine's settings from the environment: evcxr's build directory, the size of its
//! dependency cache, and the working directory and environment that the runtime child sees.

/// Drops an empty `EVCXR_TMPDIR` from the environment: evcxr would take it for the current
/// directory (the notebook's) and overwrite the `Cargo.toml` and `src/lib.rs` there with its
/// own. Call it before any thread starts. Returns whether it dropped one.
pub fn drop_empty_build_dir_setting() -> bool {
    let empty = std::env::var_os(BUILD_DIR_VAR).is_some_and(|v| v.is_empty());
    if empty {
        std::env::remove_var(BUILD_DIR_VAR);
    }
    empty
}

/// The variable in which evcxr looks for a directory of its own to build cells in.
const BUILD_DIR_VAR: &str = "EVCXR_TMPDIR";

/// The variable that sets the size of evcxr's cache of compiled `:dep` crates, in MiB.
const DEP_CACHE_VAR: &str = "RUST_CLUSTER_KERNEL_DEP_CACHE_MB";

/// The cache's size when [`DEP_CACHE_VAR`] does not say otherwise.
const DEP_CACHE_DEFAULT_MB: u64 = 1024;

/// The cache size that [`DEP_CACHE_VAR`]'s value asks for (`0` turns the cache off).
fn dep_cache_mb(setting: Option<&str>) -> Result<u64, String> {
    match setting.map(str::trim) {
        None | Some("") => Ok(DEP_CACHE_DEFAULT_MB),
        Some(value) => value.parse().map_err(|_| {
            format!("{DEP_CACHE_VAR}={value:?} is not a size in MiB; using {DEP_CACHE_DEFAULT_MB}")
        }),
    }
}

/// Turns on evcxr's cache of compiled dependencies (in `$XDG_CACHE_HOME/evcxr`, kept within
/// its size): a `:dep` crate built once is copied, not compiled, in later sessions (`:dep regex`
/// 11.5 s → 1.1 s here). It costs nothing per cell; `:cache 0` turns it off for a session.
pub(super) fn turn_on_dependency_cache(ctx: &mut evcxr::CommandContext) {
    let mb = dep_cache_mb(std::env::var(DEP_CACHE_VAR).ok().as_deref()).unwrap_or_else(|e| {
        tracing::warn!("{e}");
        DEP_CACHE_DEFAULT_MB
    });
    if let Err(e) = ctx.execute(&format!(":cache {mb}")) {
        tracing::warn!("evcxr's dependency cache stays off: {e}");
    }
}

/// The working directory and environment that evcxr's runtime child last saw. `%cd` and `%env`
/// change the kernel's own; before the next cell the child is brought up to date.
pub(super) struct ProcessEnv {
    dir: Option<std::path::PathBuf>,
    vars: std::collections::BTreeMap<String, String>,
}

impl ProcessEnv {
    /// The kernel's directory and environment now.
    pub(super) fn now() -> Self {
        ProcessEnv {
            dir: std::env::current_dir().ok(),
            vars: std::env::vars().collect(),
        }
    }

    /// Runs a hidden cell in the child that applies what changed since the last sync.
    pub(super) fn sync_child(&mut self, ctx: &mut evcxr::CommandContext) {
        let now = ProcessEnv::now();
        let mut code = String::new();
        if now.dir != self.dir {
            if let Some(dir) = now.dir.as_ref().and_then(|d| d.to_str()) {
                code.push_str(&format!("let _ = std::env::set_current_dir({dir:?});\n"));
            }
        }
        for (name, value) in &now.vars {
            if self.vars.get(name) != Some(value) {
                code.push_str(&format!("#[allow(unused_unsafe)] unsafe {{ std::env::set_var({name:?}, {value:?}) }};\n"));
            }
        }
        for name in self.vars.keys().filter(|n| !now.vars.contains_key(*n)) {
            code.push_str(&format!(
                "#[allow(unused_unsafe)] unsafe {{ std::env::remove_var({name:?}) }};\n"
            ));
        }
        if !code.is_empty() {
            if let Err(e) = ctx.execute(&code) {
                tracing::warn!(
                    "could not bring the runtime's directory and environment up to date: {e}"
                );
            }
        }
        *self = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependency_cache_size_comes_from_the_environment() {
        assert_eq!(dep_cache_mb(None), Ok(DEP_CACHE_DEFAULT_MB));
        assert_eq!(dep_cache_mb(Some(" 256 ")), Ok(256));
        assert_eq!(dep_cache_mb(Some("0")), Ok(0));
        assert!(dep_cache_mb(Some("1G"))
            .unwrap_err()
            .contains("not a size in MiB"));
    }
}
