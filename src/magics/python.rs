//! `%%python` and `%python CODE`: run Python in the sub-kernel of [`crate::python`], bound to the
//! cluster's scheduler, with its outputs in this cell.

use std::sync::Arc;

use super::{args, Magic, MagicCall, MagicContext, MagicError, MagicForms};
use crate::display::Bundle;
use crate::python::PythonBridge;

/// `%python` / `%%python`
pub struct Python {
    /// The sub-kernel, shared with `%python_env` and `%cluster use`.
    pub bridge: Arc<PythonBridge>,
}

/// Runs the rest of the line (`%python`) or the cell body (`%%python`) in a Python kernel
/// (ipykernel) started from the cluster's Python environment on first use; its state persists
/// between cells. When a cluster is up, `dask.distributed.Client()` connects to it with no
/// arguments (`%cluster use NAME` picks another). `%python_env` shows the interpreter.
#[derive(clap::Parser)]
#[command(override_usage = "%python CODE\n       %%python  (the cell body is the code)")]
struct Args {}

impl Magic for Python {
    fn name(&self) -> &'static str {
        "python"
    }
    fn summary(&self) -> &'static str {
        "run Python (Dask's API) in a sub-kernel bound to the cluster"
    }
    fn forms(&self) -> MagicForms {
        MagicForms::BOTH
    }
    fn run(
        &self,
        call: &MagicCall<'_>,
        ctx: &mut MagicContext<'_>,
    ) -> Result<Option<Bundle>, MagicError> {
        let code = args::code_of::<Args>(call)?;
        self.bridge
            .execute(code, ctx.out, ctx.interrupt, ctx.input)
            .map_err(MagicError::Cell)
    }
}
