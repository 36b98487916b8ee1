//! Build progress for the cell. evcxr copies cargo's `Compiling CRATE` lines (a `:dep` build can
//! take minutes) to the kernel's own stderr, which goes to Jupyter's log, not to the notebook.
//! [`capture`] puts a pipe in front of the kernel's fd 2: every line still reaches the log,
//! and the `Compiling …` lines are also handed to the running cell.

use std::io::{BufRead, BufReader, Write};

use crossbeam_channel::{unbounded, Receiver};

use super::relay::{interpose, StdStream};

/// Routes fd 2 through a relay thread; returns the channel of cargo progress lines, or `None`
/// (and leaves stderr alone, closing what it opened) if the pipe cannot be made.
pub fn capture() -> Option<Receiver<String>> {
    let (reader, log) = interpose(StdStream::Stderr)?;
    let (tx, rx) = unbounded();
    std::thread::Builder::new()
        .name("stderr-relay".into())
        .spawn(move || {
            let mut log = log;
            for line in BufReader::new(reader).split(b'\n').map_while(Result::ok) {
                let _ = log.write_all(&line);
                let _ = log.write_all(b"\n");
                let text = String::from_utf8_lossy(&line);
                if is_progress(&text) {
                    let _ = tx.send(format!("{}\n", text.trim()));
                }
            }
        })
        .ok()?;
    Some(rx)
}

/// cargo's `   Compiling rand v0.8.5` lines.
fn is_progress(line: &str) -> bool {
    let line = line.trim_start();
    line.starts_with("Compiling ")
        || line.starts_with("Downloaded ")
        || line.starts_with("Updating crates.io")
}

#[cfg(test)]
mod tests {
    #[test]
    fn recognises_cargo_progress() {
        assert!(super::is_progress("   Compiling rand v0.8.5"));
        assert!(!super::is_progress("warning: unused variable"));
    }
}
