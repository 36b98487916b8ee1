//! A relay on evcxr's runtime child's stdout.
//!
//! evcxr reads the child's stdout line by line and waits for a line that is exactly
//! `EVCXR_EXECUTION_COMPLETE`. A cell that ends with `print!("no newline")` makes the child
//! write `no newlineEVCXR_EXECUTION_COMPLETE`, and evcxr would wait forever. In the child we
//! therefore put a pipe in front of stdout and a thread that moves evcxr's markers to a line of
//! their own, tagging the text before them with [`PARTIAL_LINE`] so that the kernel shows it
//! without adding a newline.
//!
//! The child's stderr reaches the kernel through another pipe and another thread of evcxr's, so
//! the kernel cannot tell from stdout when the cell's stderr is complete. Before it passes on
//! `EVCXR_EXECUTION_COMPLETE` (written after the cell's code returned), the relay therefore
//! writes [`STDERR_SYNC`] to stderr: everything the cell wrote there comes before it.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, RawFd};

/// Appended to a line that had no newline of its own; the kernel strips it.
pub const PARTIAL_LINE: &str = "\u{1}RCK_PARTIAL_LINE";

/// Ends a stderr line after the cell has run: text before it on the same line is the cell's
/// last partial line. The kernel waits for it and never shows it.
pub const STDERR_SYNC: &str = "\u{1}RCK_STDERR_SYNC";

/// The line with which evcxr's runtime says that a run is complete.
const EXECUTION_COMPLETE: &str = "EVCXR_EXECUTION_COMPLETE";

/// The markers of evcxr's child protocol that must start a line.
const MARKERS: [&str; 3] = [
    EXECUTION_COMPLETE,
    "EVCXR_PANIC_NOTIFICATION",
    "EVCXR_BEGIN_CONTENT",
];

/// In evcxr's runtime child, before `evcxr::runtime_hook()`: routes fd 1 through the relay.
/// Does nothing in the kernel process itself.
pub fn install_in_runtime_child() {
    if std::env::var_os("EVCXR_IS_RUNTIME").is_none() {
        return;
    }
    let mut fds: [RawFd; 2] = [0; 2];
    // SAFETY: plain POSIX calls on fds we own; on any failure we leave stdout as it is.
    unsafe {
        if libc::pipe(fds.as_mut_ptr()) != 0 {
            return;
        }
        let real_stdout = libc::dup(1);
        if real_stdout < 0 || libc::dup2(fds[1], 1) < 0 {
            return;
        }
        libc::close(fds[1]);
        let reader = std::fs::File::from_raw_fd(fds[0]);
        let writer = std::fs::File::from_raw_fd(real_stdout);
        std::thread::spawn(move || relay(reader, writer, std::io::stderr()));
    }
}

/// Moves `from` to `to` line by line with the markers on lines of their own, writing
/// [`STDERR_SYNC`] to `stderr` before each completed run.
fn relay(mut from: impl Read, mut to: impl Write, mut stderr: impl Write) {
    let mut pending = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=nl).collect();
            let out = split_markers(&line[..line.len() - 1]);
            let completes_a_run = out
                .strip_suffix(b"\n")
                .is_some_and(|l| l.ends_with(EXECUTION_COMPLETE.as_bytes()));
            if completes_a_run {
                let _ = to.flush();
                let _ = writeln!(stderr, "{STDERR_SYNC}");
                let _ = stderr.flush();
            }
            let _ = to.write_all(&out);
        }
        let _ = to.flush();
    }
    let _ = to.write_all(&pending);
}

/// One line (without its newline) → the bytes to write, newline(s) included.
fn split_markers(line: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(line);
    let cut = MARKERS
        .iter()
        .filter_map(|m| text.find(m))
        .filter(|&at| at > 0)
        .min();
    match cut {
        Some(at) => format!("{}{PARTIAL_LINE}\n{}\n", &text[..at], &text[at..]).into_bytes(),
        None => {
            let mut out = line.to_vec();
            out.push(b'\n');
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_get_their_own_line() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        relay(
            &b"hello\nno newlineEVCXR_EXECUTION_COMPLETE\nEVCXR_EXECUTION_COMPLETE\n"[..],
            &mut out,
            &mut err,
        );
        let out = String::from_utf8(out).unwrap();
        assert_eq!(out, format!("hello\nno newline{PARTIAL_LINE}\nEVCXR_EXECUTION_COMPLETE\nEVCXR_EXECUTION_COMPLETE\n"));
        let err = String::from_utf8(err).unwrap();
        assert_eq!(
            err,
            format!("{STDERR_SYNC}\n{STDERR_SYNC}\n"),
            "one sync per completed run"
        );
    }

    #[test]
    fn no_sync_without_a_completed_run() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        relay(
            &b"EVCXR_BEGIN_CONTENT text/html\n<b>x</b>\n"[..],
            &mut out,
            &mut err,
        );
        assert!(err.is_empty());
    }

    #[test]
    fn content_blocks_after_partial_text() {
        assert_eq!(
            String::from_utf8(split_markers(b"abcEVCXR_BEGIN_CONTENT text/html")).unwrap(),
            format!("abc{PARTIAL_LINE}\nEVCXR_BEGIN_CONTENT text/html\n")
        );
    }
}
