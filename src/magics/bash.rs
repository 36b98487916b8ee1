//! `%%bash`: runs the cell body with bash and streams its output as it comes.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use rustix::process::{kill_process_group, Pid, Signal};

use super::{args, Magic, MagicCall, MagicContext, MagicError, MagicForms};
use crate::cell::StreamName;
use crate::display::Bundle;

/// `%%bash`
pub struct Bash;

/// Runs the cell with bash; stdout and stderr stream into the cell. Interrupt stops the script.
#[derive(clap::Parser)]
struct Args {
    /// Arguments passed to the script (`$1`, `$2`, …).
    script_args: Vec<String>,
}

impl Magic for Bash {
    fn name(&self) -> &'static str {
        "bash"
    }
    fn summary(&self) -> &'static str {
        "run the cell with bash, streaming its output"
    }
    fn forms(&self) -> MagicForms {
        MagicForms::CELL
    }
    fn run(
        &self,
        call: &MagicCall<'_>,
        ctx: &mut MagicContext<'_>,
    ) -> Result<Option<Bundle>, MagicError> {
        let args = args::parse::<Args>(call)?;
        let status = run_streaming(
            Command::new("bash")
                .arg("-c")
                .arg(call.body.unwrap_or_default())
                .arg("bash")
                .args(&args.script_args),
            ctx,
        )?;
        if status.success() {
            Ok(None)
        } else {
            Err(MagicError::Failed(format!("bash exited with {status}")))
        }
    }
}

/// Runs `command` in its own process group, forwarding stdout and stderr to the cell as they
/// arrive. On interrupt the whole group gets SIGINT, then SIGKILL after two seconds.
pub(crate) fn run_streaming(
    command: &mut Command,
    ctx: &mut MagicContext<'_>,
) -> Result<std::process::ExitStatus, MagicError> {
    use std::os::unix::process::CommandExt;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| MagicError::Failed(format!("cannot start bash: {e}")))?;
    let (tx, rx) = mpsc::channel::<(StreamName, Vec<u8>)>();
    let readers = [
        (
            StreamName::Stdout,
            Box::new(child.stdout.take().expect("piped")) as Box<dyn Read + Send>,
        ),
        (
            StreamName::Stderr,
            Box::new(child.stderr.take().expect("piped")),
        ),
    ]
    .map(|(name, mut pipe)| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 || tx.send((name, buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        })
    });
    drop(tx);
    let pid = Pid::from_child(&child);
    let mut signalled_at = None;
    let mut pending: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok((name, bytes)) => {
                let slot = &mut pending[name as usize];
                slot.extend_from_slice(&bytes);
                // Send only whole UTF-8 characters; keep a split one for the next read.
                let valid = match std::str::from_utf8(slot) {
                    Ok(s) => s.len(),
                    Err(e) if e.error_len().is_none() => e.valid_up_to(),
                    Err(_) => slot.len(),
                };
                let text = String::from_utf8_lossy(&slot[..valid]).into_owned();
                slot.drain(..valid);
                ctx.out.stream(name, &text);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if ctx.interrupt.is_raised() {
            let since = *signalled_at.get_or_insert_with(|| {
                // The child leads its own process group; it may have ended already.
                let _ = kill_process_group(pid, Signal::INT);
                std::time::Instant::now()
            });
            if since.elapsed() > Duration::from_secs(2) {
                let _ = kill_process_group(pid, Signal::KILL);
            }
        }
    }
    for r in readers {
        let _ = r.join();
    }
    let status = child
        .wait()
        .map_err(|e| MagicError::Failed(format!("waiting for bash: {e}")))?;
    if signalled_at.is_some() {
        return Err(MagicError::Interrupted);
    }
    Ok(status)
}
