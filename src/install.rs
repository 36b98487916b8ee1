//! Installing and removing the kernelspec (`kernel.json` and the logos) where Jupyter looks.

use std::path::{Path, PathBuf};

use serde_json::json;

/// The kernelspec's directory name.
pub const KERNEL_NAME: &str = "rust-cluster";
/// The name shown in JupyterLab's launcher.
pub const DISPLAY_NAME: &str = "Rust (cluster)";

const LOGO_32: &[u8] = include_bytes!("../kernelspec/logo-32x32.png");
const LOGO_64: &[u8] = include_bytes!("../kernelspec/logo-64x64.png");
const LOGO_SVG: &[u8] = include_bytes!("../kernelspec/logo-svg.svg");

/// Where to install, as with `jupyter kernelspec install` / ipykernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `~/.local/share/jupyter/kernels` (or `$JUPYTER_DATA_DIR/kernels`).
    User,
    /// `PREFIX/share/jupyter/kernels` of the Python environment Jupyter runs in.
    Prefix(PathBuf),
}

impl Location {
    /// The kernels directory for this location.
    pub fn kernels_dir(&self) -> anyhow::Result<PathBuf> {
        Ok(match self {
            Location::User => match std::env::var_os("JUPYTER_DATA_DIR") {
                Some(d) => PathBuf::from(d).join("kernels"),
                None => {
                    let data = std::env::var_os("XDG_DATA_HOME")
                        .map(PathBuf::from)
                        .or_else(|| {
                            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share"))
                        });
                    data.ok_or_else(|| anyhow::anyhow!("neither HOME nor XDG_DATA_HOME is set"))?
                        .join("jupyter/kernels")
                }
            },
            Location::Prefix(p) => p.join("share/jupyter/kernels"),
        })
    }
}

/// The `kernel.json` for a kernel binary at `binary`.
pub fn kernel_json(binary: &Path) -> serde_json::Value {
    json!({
        "argv": [binary.display().to_string(), "--connection-file", "{connection_file}"],
        "display_name": DISPLAY_NAME,
        "language": "rust",
        "interrupt_mode": "message",
        "metadata": {"debugger": false},
    })
}

/// Writes the kernelspec for `binary` into `location`; returns the kernelspec directory.
pub fn install(location: &Location, binary: &Path) -> anyhow::Result<PathBuf> {
    let dir = location.kernels_dir()?.join(KERNEL_NAME);
    std::fs::create_dir_all(&dir)?;
    let json = serde_json::to_string_pretty(&kernel_json(binary))?;
    std::fs::write(dir.join("kernel.json"), json + "\n")?;
    std::fs::write(dir.join("logo-32x32.png"), LOGO_32)?;
    std::fs::write(dir.join("logo-64x64.png"), LOGO_64)?;
    std::fs::write(dir.join("logo-svg.svg"), LOGO_SVG)?;
    Ok(dir)
}

/// Removes the kernelspec from `location`; returns the removed directory, if there was one.
pub fn uninstall(location: &Location) -> anyhow::Result<Option<PathBuf>> {
    let dir = location.kernels_dir()?.join(KERNEL_NAME);
    if !dir.exists() {
        return Ok(None);
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(Some(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_under_prefix_and_uninstalls() {
        let prefix = std::env::temp_dir().join(format!("rck-install-{}", std::process::id()));
        let dir = install(
            &Location::Prefix(prefix.clone()),
            Path::new("/opt/rck/bin/rust-cluster-kernel"),
        )
        .unwrap();
        assert_eq!(dir, prefix.join("share/jupyter/kernels/rust-cluster"));
        let spec: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("kernel.json")).unwrap())
                .unwrap();
        assert_eq!(spec["display_name"], "Rust (cluster)");
        assert_eq!(spec["argv"][0], "/opt/rck/bin/rust-cluster-kernel");
        assert_eq!(spec["interrupt_mode"], "message");
        assert!(dir.join("logo-64x64.png").exists() && dir.join("logo-32x32.png").exists());
        assert_eq!(
            uninstall(&Location::Prefix(prefix.clone())).unwrap(),
            Some(dir.clone())
        );
        assert!(!dir.exists());
        std::fs::remove_dir_all(prefix).unwrap();
    }
}
