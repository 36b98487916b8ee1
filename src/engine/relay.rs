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
//!
//! evcxr reads both streams with `BufRead::lines`, whose threads stop for good at the first
//! line that is not UTF-8: a cell that wrote such bytes to stdout shifted every later cell's
//! output by one cell, and after such bytes on stderr no stderr (and no panic) was seen again.
//! Both relays therefore pass every line on as lossy UTF-8 (U+FFFD for bad bytes, as ipykernel
//! shows them), so evcxr's readers only ever see text. The stderr relay sits behind fd 2 too;
//! the stdout relay's [`STDERR_SYNC`] goes through it, after the cell's own stderr.

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

/// In evcxr's runtime child, before `evcxr::runtime_hook()`: routes fd 2 and then fd 1 through
/// the relays. Does nothing in the kernel process itself.
pub fn install_in_runtime_child() {
    if std::env::var_os("EVCXR_IS_RUNTIME").is_none() {
        return;
    }
    // stderr first, so that the stdout relay's syncs (written to fd 2) pass through it in order.
    if let Some((reader, writer)) = interpose(2) {
        std::thread::spawn(move || relay_text(reader, writer));
    }
    if let Some((reader, writer)) = interpose(1) {
        std::thread::spawn(move || relay(reader, writer, std::io::stderr()));
    }
}

/// Puts a pipe in front of `fd`: returns the pipe's reading end and the original file. On any
/// failure `fd` is left as it was and nothing leaks.
fn interpose(fd: RawFd) -> Option<(std::fs::File, std::fs::File)> {
    let mut fds: [RawFd; 2] = [0; 2];
    // SAFETY: plain POSIX calls on fds we own; every fd is closed or owned by a File on every path.
    unsafe {
        if libc::pipe(fds.as_mut_ptr()) != 0 {
            return None;
        }
        let reader = std::fs::File::from_raw_fd(fds[0]);
        let pipe_writer = std::fs::File::from_raw_fd(fds[1]);
        let original = libc::dup(fd);
        if original < 0 {
            return None;
        }
        let original = std::fs::File::from_raw_fd(original);
        if libc::dup2(fds[1], fd) < 0 {
            return None;
        }
        drop(pipe_writer); // fd itself now holds the pipe's writing end
        Some((reader, original))
    }
}

/// Moves `from` to `to` line by line as lossy UTF-8 (stderr: evcxr looks for nothing but text
/// there, and the kernel for [`STDERR_SYNC`]).
fn relay_text(mut from: impl Read, mut to: impl Write) {
    let mut pending = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        let Some(last_newline) = pending.iter().rposition(|&b| b == b'\n') else {
            continue;
        };
        let lines: Vec<u8> = pending.drain(..=last_newline).collect();
        let _ = to.write_all(String::from_utf8_lossy(&lines).as_bytes());
        let _ = to.flush();
    }
    let _ = to.write_all(String::from_utf8_lossy(&pending).as_bytes());
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
    let _ = to.write_all(String::from_utf8_lossy(&pending).as_bytes());
}

/// One line (without its newline) → the text to write as lossy UTF-8, newline(s) included.
fn split_markers(line: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(line);
    let cut = MARKERS
        .iter()
        .filter_map(|m| text.find(m))
        .filter(|&at| at > 0)
        .min();
    match cut {
        Some(at) => format!("{}{PARTIAL_LINE}\n{}\n", &text[..at], &text[at..]).into_bytes(),
        None => format!("{text}\n").into_bytes(),
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
    fn bytes_that_are_not_utf8_become_replacement_characters() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        relay(&b"bad \xff\xfe\nok\n"[..], &mut out, &mut err);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "bad \u{fffd}\u{fffd}\nok\n"
        );

        let mut out = Vec::new();
        relay_text(&b"worse \xc3\nfine\npartial \xff"[..], &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "worse \u{fffd}\nfine\npartial \u{fffd}"
        );
    }

    #[test]
    fn a_character_split_between_reads_stays_whole() {
        /// Hands out one byte per read, as a pipe may.
        struct ByteByByte<'a>(&'a [u8]);
        impl Read for ByteByByte<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let Some((first, rest)) = self.0.split_first() else {
                    return Ok(0);
                };
                buf[0] = *first;
                self.0 = rest;
                Ok(1)
            }
        }
        let mut out = Vec::new();
        relay_text(ByteByByte("grüße\n".as_bytes()), &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "grüße\n");
    }

    #[test]
    fn content_blocks_after_partial_text() {
        assert_eq!(
            String::from_utf8(split_markers(b"abcEVCXR_BEGIN_CONTENT text/html")).unwrap(),
            format!("abc{PARTIAL_LINE}\nEVCXR_BEGIN_CONTENT text/html\n")
        );
    }
}
