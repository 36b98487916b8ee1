//! `%python_env`: which interpreter `%%python` runs on, whether its kernel runs, and which
//! cluster it is bound to; `--python` picks another interpreter, `--restart` a fresh kernel.

use std::path::PathBuf;
use std::sync::Arc;

use super::{args, Magic, MagicCall, MagicContext, MagicError, MagicForms};
use crate::display::Bundle;
use crate::paths::expand_path;
use crate::python::PythonBridge;

/// `%python_env`
pub struct PythonEnv {
    /// The sub-kernel of `%%python`.
    pub bridge: Arc<PythonBridge>,
}

/// Shows the Python interpreter and kernel behind `%%python`.
#[derive(clap::Parser)]
#[command(name = "%python_env")]
struct Args {
    /// Use this interpreter from now on (a venv's or conda env's bin/python, with ipykernel).
    #[arg(long, value_name = "PATH")]
    python: Option<String>,
    /// Stop the running Python kernel; the next %%python starts a fresh one.
    #[arg(long)]
    restart: bool,
}

impl Magic for PythonEnv {
    fn name(&self) -> &'static str {
        "python_env"
    }
    fn summary(&self) -> &'static str {
        "the interpreter and kernel behind %%python (--python, --restart)"
    }
    fn forms(&self) -> MagicForms {
        MagicForms::LINE
    }
    fn run(
        &self,
        call: &MagicCall<'_>,
        ctx: &mut MagicContext<'_>,
    ) -> Result<Option<Bundle>, MagicError> {
        let args = args::parse::<Args>(call)?;
        if let Some(python) = args.python {
            let python = PathBuf::from(expand_path(&python));
            if !python.is_file() {
                return Err(MagicError::Failed(format!(
                    "{} is not a file; give the interpreter, e.g. /path/to/venv/bin/python",
                    python.display()
                )));
            }
            self.bridge.set_python(python);
        }
        if args.restart && self.bridge.restart() {
            ctx.out
                .stdout("Stopped the Python kernel; the next %%python starts a fresh one.\n");
        }
        let status = self.bridge.status();
        let mut text = format!(
            "interpreter  {}\n  chosen by  {}\n",
            status.choice.python.display(),
            status.choice.source
        );
        text += &match status.running {
            Some((pid, python)) => {
                format!("kernel       running (pid {pid}, {})\n", python.display())
            }
            None => "kernel       not started (the first %%python starts it)\n".to_owned(),
        };
        text += &match status.bound_to {
            Some((name, address)) => {
                format!("cluster      {name}: DASK_SCHEDULER_ADDRESS={address}\n")
            }
            None => {
                "cluster      none (Client() needs an address until a cluster is up)\n".to_owned()
            }
        };
        Ok(Some(Bundle::text(text)))
    }
}
