//! The kernel: request handlers, execution counting, busy/idle, and the cell router.

mod interrupt;
mod output;

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
}

impl ErrorReport {
    /// An error whose traceback is its message.
    pub fn new(ename: impl Into<String>, evalue: impl Into<String>) -> Self {
        let ename = ename.into();
        let evalue = evalue.into();
        let traceback = vec![format!("\x1b[0;31m{ename}\x1b[0m: {evalue}")];
        ErrorReport { ename, evalue, traceback }
    }
}
