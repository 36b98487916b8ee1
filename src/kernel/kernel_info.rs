//! `kernel_info_request` (on shell and on control): who this kernel is.

use tokio::sync::mpsc::UnboundedSender;

use super::Kernel;
use crate::protocol::content::{HelpLink, KernelInfoReply, LanguageInfo, ReplyStatus};
use crate::protocol::{WireMessage, PROTOCOL_VERSION};

impl Kernel {
    /// Answers a `kernel_info_request` on the channel it came from (`to`).
    pub(super) fn on_kernel_info(&self, request: &WireMessage, to: &UnboundedSender<WireMessage>) {
        self.reply(to, request, "kernel_info_reply", self.kernel_info());
    }

    fn kernel_info(&self) -> KernelInfoReply {
        let version = self
            .rustc_version
            .get()
            .cloned()
            .unwrap_or_else(rustc_version_now);
        KernelInfoReply {
            status: ReplyStatus::Ok,
            protocol_version: PROTOCOL_VERSION,
            implementation: "rust-cluster-kernel",
            implementation_version: env!("CARGO_PKG_VERSION"),
            banner: format!("Rust (cluster) {} — Rust {version} through evcxr, with %cluster magics for Dask on SLURM. %lsmagic lists the magics.", env!("CARGO_PKG_VERSION")),
            language_info: LanguageInfo {
                name: "rust",
                version,
                mimetype: "text/rust",
                file_extension: ".rs",
                pygments_lexer: "rust",
                codemirror_mode: "rust",
                nbconvert_exporter: "rust",
            },
            supported_features: Vec::new(),
            debugger: false,
            help_links: vec![
                HelpLink { text: "The Rust Book", url: "https://doc.rust-lang.org/book/" },
                HelpLink { text: "Rust standard library", url: "https://doc.rust-lang.org/std/" },
                HelpLink { text: "evcxr", url: "https://github.com/evcxr/evcxr" },
                HelpLink { text: "Dask", url: "https://docs.dask.org/" },
                HelpLink { text: "SLURM", url: "https://slurm.schedmd.com/documentation.html" },
            ],
        }
    }
}

/// rustc's version (`1.91.0`), or `unknown`.
pub(super) fn rustc_version_now() -> String {
    std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.split_whitespace().nth(1).map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}
