//! Build progress for the cell. evcxr copies cargo's `Compiling CRATE` lines (a `:dep` build can
//! take minutes) to the kernel's own stderr, which goes to Jupyter's log, not to the notebook.
//! [`capture`] puts a pipe in front of the kernel's fd 2: every line still reaches the log,
//! and the `Compiling …` lines are also handed to the running cell.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, RawFd};

use crossbeam_channel::{unbounded, Receiver};

/// Routes fd 2 through a relay thread; returns the channel of cargo progress lines, or `None`
/// (and leaves stderr alone) if the pipe cannot be made.
pub fn capture() -> Option<Receiver<String>> {
    let mut fds: [RawFd; 2] = [0; 2];
    // SAFETY: plain POSIX calls on fds this function owns.
    let (reader, log) = unsafe {
        if libc::pipe(fds.as_mut_ptr()) != 0 {
            return None;
        }
        let original = libc::dup(2);
        if original < 0 || libc::dup2(fds[1], 2) < 0 {
            return None;
        }
        libc::close(fds[1]);
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(original),
        )
    };
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
