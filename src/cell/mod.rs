//! What a cell produces, in the words every layer above speaks: its outputs on iopub
//! ([`Output`], [`StreamName`], display ids), its error ([`ErrorReport`]), the interrupt that
//! may stop it ([`Interrupt`]) and its stdin ([`CellInput`]: input requests to the frontend).
//!
//! A leaf of the crate: it imports only [`protocol`](crate::protocol) and
//! [`display`](crate::display), so that the engine, the magics, the Python bridge and the kernel
//! can all speak it without importing each other.

mod input;
mod interrupt;
mod output;

pub use input::{CellInput, InputError};
pub use interrupt::{Interrupt, Interrupted};
pub use output::{new_display_id, IopubMessage, Output, StreamName};

/// An error as Jupyter shows it: the `ename`, `evalue` and `traceback` of an error reply and of
/// the `error` message on iopub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReport {
    /// The kind of error, e.g. `CompileError`, `UsageError`, `KeyboardInterrupt`.
    pub ename: String,
    /// The message.
    pub evalue: String,
    /// The lines to show (they may carry ANSI colours).
    pub traceback: Vec<String>,
    /// When the Rust runtime process died (exit, abort, interrupt): the variables that died with it.
    pub lost_variables: Option<Vec<String>>,
}

impl ErrorReport {
    /// An error whose traceback is its message.
    pub fn new(ename: impl Into<String>, evalue: impl Into<String>) -> Self {
        let ename = ename.into();
        let evalue = evalue.into();
        let traceback = vec![format!("\x1b[0;31m{ename}\x1b[0m: {evalue}")];
        ErrorReport {
            ename,
            evalue,
            traceback,
            lost_variables: None,
        }
    }
}
