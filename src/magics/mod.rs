//! Magics: `%name args` line magics and `%%name args` cell magics, IPython-style.
//!
//! A cell whose first line starts with `%%name` is a cell magic: that magic gets the rest of
//! the cell as its body. Otherwise the leading lines that start with `%name` are line magics,
//! run in order, and whatever follows them is Rust for the engine. Arguments are split like a
//! shell ([`parse`]) and parsed with clap ([`args`]), so every magic has `--help`.
//!
//! One file per magic (for `%cluster` a folder, one file per subcommand); [`Registry::builtin`]
//! lists them all.

pub mod args;
pub mod parse;

mod bash;
mod cards;
mod cd;
mod cluster;
mod env;
mod lsmagic;
mod pwd;
mod python;
mod python_env;
mod sbatch;
mod scancel;
mod sinfo;
mod squeue;
mod time;

use std::collections::BTreeMap;
use std::sync::Arc;

use cards::LiveCards;
use dask_slurm::manager::Clusters;
use dask_slurm::process::StopFlag;
use dask_slurm::slurm::{Slurm, SlurmError};

use crate::cell::{CellInput, ErrorReport, Interrupt, Interrupted, Output};
use crate::display::Bundle;
use crate::jupyter_server::Dashboards;
use crate::python::PythonBridge;

/// One call of a magic, as written in the cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MagicCall<'a> {
    /// The name without `%` or `%%`.
    pub name: &'a str,
    /// The rest of the `%name` or `%%name` line, as written (for magics that take code).
    pub line: &'a str,
    /// The cell body after the `%%name` line, for a cell magic; `None` for a line magic.
    pub body: Option<&'a str>,
}

impl MagicCall<'_> {
    /// The arguments, split like a shell; an unclosed quote is a usage error.
    pub fn args(&self) -> Result<Vec<String>, MagicError> {
        shlex::split(self.line)
            .ok_or_else(|| MagicError::Usage(format!("unbalanced quotes in: {}", self.line)))
    }
}

/// Whether a magic may be used as `%name`, as `%%name`, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MagicForms {
    /// Usable as a line magic, `%name`.
    pub line: bool,
    /// Usable as a cell magic, `%%name`.
    pub cell: bool,
}

impl MagicForms {
    /// Only `%name`.
    pub const LINE: MagicForms = MagicForms {
        line: true,
        cell: false,
    };
    /// Only `%%name`.
    pub const CELL: MagicForms = MagicForms {
        line: false,
        cell: true,
    };
    /// Both `%name` and `%%name`.
    pub const BOTH: MagicForms = MagicForms {
        line: true,
        cell: true,
    };
}

/// What a magic may touch while it runs.
pub struct MagicContext<'a> {
    /// Outputs of the current cell (stream, display, update in place).
    pub out: &'a Output,
    /// Raised when the user interrupts the cell; long magics must poll it.
    pub interrupt: &'a Interrupt,
    /// The cell's stdin: asks the frontend for a line of input (`%%python`'s `input()`).
    pub input: &'a CellInput,
    /// Runs code as a cell (magics included), for magics such as `%%time` that wrap a cell.
    pub cells: &'a mut dyn CellRunner,
    /// Every magic there is, for `%lsmagic`.
    pub registry: &'a Registry,
}

impl MagicContext<'_> {
    /// The SLURM client of `clusters` for this cell: interrupt ends its running command at once
    /// instead of waiting out the command's timeout.
    pub fn slurm(&self, clusters: &Clusters) -> Slurm {
        clusters
            .slurm()
            .stopped_by(StopFlag::new(self.interrupt.flag()))
    }
}

/// A SLURM client's error as a magic's: an interrupted command is the cell's interrupt.
fn slurm_error(e: SlurmError) -> MagicError {
    match e {
        SlurmError::Interrupted { .. } => MagicError::Interrupted,
        e => MagicError::Failed(e.to_string()),
    }
}

/// Runs the text of a cell, magics and Rust alike. Implemented by the kernel's cell router.
pub trait CellRunner {
    /// Runs `code` and returns the value to show as the cell's result, if any.
    fn run_cell(&mut self, code: &str, out: &Output) -> Result<Option<Bundle>, ErrorReport>;
}

/// A magic command.
pub trait Magic: Send + Sync {
    /// The name, without `%`.
    fn name(&self) -> &'static str;
    /// One line for `%lsmagic`.
    fn summary(&self) -> &'static str;
    /// Line magic, cell magic, or both.
    fn forms(&self) -> MagicForms;
    /// Runs the magic; `Ok(Some(bundle))` becomes the cell's `execute_result`.
    fn run(
        &self,
        call: &MagicCall<'_>,
        ctx: &mut MagicContext<'_>,
    ) -> Result<Option<Bundle>, MagicError>;
}

/// Why a magic did not do its work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MagicError {
    /// No magic of that name (the text suggests `%lsmagic`).
    #[error("no magic named %{0}; %lsmagic lists them")]
    Unknown(String),
    /// The magic exists but not in that form (`%x` for a cell-only magic, or the reverse).
    #[error("{0}")]
    WrongForm(String),
    /// The arguments are wrong; the text is clap's, with the usage line.
    #[error("{0}")]
    Usage(String),
    /// `--help` was asked for: the router prints the text, and the cell succeeds.
    #[error("{0}")]
    Help(String),
    /// The magic ran and failed; the text says why, in the user's terms.
    #[error("{0}")]
    Failed(String),
    /// The user interrupted the magic.
    #[error("interrupted")]
    Interrupted,
    /// A cell run by the magic (as with `%%time`) failed with this error.
    #[error("{}: {}", .0.ename, .0.evalue)]
    Cell(ErrorReport),
}

impl From<Interrupted> for MagicError {
    fn from(_: Interrupted) -> Self {
        MagicError::Interrupted
    }
}

impl MagicError {
    /// The error as the kernel reports it (`ename`, `evalue`, `traceback`).
    pub fn into_report(self) -> ErrorReport {
        let ename = match &self {
            MagicError::Unknown(_) | MagicError::WrongForm(_) | MagicError::Usage(_) => {
                "UsageError"
            }
            MagicError::Help(_) => "Help",
            MagicError::Failed(_) => "MagicError",
            MagicError::Interrupted => "KeyboardInterrupt",
            MagicError::Cell(report) => return report.clone(),
        };
        ErrorReport::new(ename, self.to_string())
    }
}

/// Every magic, by name.
#[derive(Clone, Default)]
pub struct Registry {
    magics: BTreeMap<&'static str, Arc<dyn Magic>>,
    /// The `%%python` sub-kernel, if the registry has the cluster magics: the kernel passes it
    /// the frontend's comm messages (widgets live in Python).
    python: Option<Arc<PythonBridge>>,
}

impl Registry {
    /// The magics that ship with the kernel; the cluster magics work on `clusters`, and link
    /// their dashboards through the kernel's Jupyter server as `dashboards` finds.
    pub fn builtin(clusters: Arc<Clusters>, dashboards: Arc<Dashboards>) -> Self {
        let cards = LiveCards::follow(&clusters, dashboards.clone());
        let bridge = Arc::new(PythonBridge::new(clusters.clone(), dashboards.clone()));
        let mut r = Registry::everyday();
        r.register(Arc::new(cluster::Cluster {
            clusters: clusters.clone(),
            cards: cards.clone(),
            bridge: bridge.clone(),
            dashboards,
        }));
        r.register(Arc::new(python::Python {
            bridge: bridge.clone(),
        }));
        r.register(Arc::new(python_env::PythonEnv {
            bridge: bridge.clone(),
        }));
        r.python = Some(bridge);
        r.register(Arc::new(sbatch::Sbatch {
            clusters: clusters.clone(),
            cards,
        }));
        r.register(Arc::new(squeue::Squeue {
            clusters: clusters.clone(),
        }));
        r.register(Arc::new(sinfo::Sinfo {
            clusters: clusters.clone(),
        }));
        r.register(Arc::new(scancel::Scancel { clusters }));
        r
    }

    /// The everyday magics alone (no cluster).
    pub fn everyday() -> Self {
        let mut r = Registry::default();
        r.register(Arc::new(lsmagic::LsMagic));
        r.register(Arc::new(time::Time));
        r.register(Arc::new(env::Env));
        r.register(Arc::new(bash::Bash));
        r.register(Arc::new(pwd::Pwd));
        r.register(Arc::new(cd::Cd));
        r
    }

    /// Adds a magic (replacing one of the same name).
    pub fn register(&mut self, magic: Arc<dyn Magic>) {
        self.magics.insert(magic.name(), magic);
    }

    /// The `%%python` sub-kernel's bridge, when the registry has the cluster magics.
    pub fn python(&self) -> Option<&Arc<PythonBridge>> {
        self.python.as_ref()
    }

    /// The magic called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Magic>> {
        self.magics.get(name).cloned()
    }

    /// All magics in name order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Magic>> {
        self.magics.values()
    }
}
