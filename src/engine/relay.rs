//! A relay on evcxr's runtime child's stdout.
//!
//! evcxr reads the child's stdout line by line and waits for a line that is exactly
//! `EVCXR_EXECUTION_COMPLETE`. A cell that ends with `print!("no newline")` makes the child
//! write `no newlineEVCXR_EXECUTION_COMPLETE`, and evcxr would wait forever. In the child we
//! therefore put a pipe in front of stdout and a thread that moves evcxr's markers to a line of
//! their own, tagging the text before them with [`PARTIAL_LINE`] so that the kernel shows it
//! without adding a newline.
//!
//! evcxr (patched, `vendor/evcxr/PATCHES.md`) ends that line with a random nonce that it gives
//! the child, so a cell that prints `EVCXR_EXECUTION_COMPLETE` itself ends no run: without the
//! nonce, evcxr took it for the end of the run and every later cell showed the output of the
//! cell before it.
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
//!
//! evcxr_input's request for input (`EVCXR_INPUT_REQUEST:prompt`) gets a line of its own too
//! (after `print!("Name: ")`, say), and its prompt is encoded ([`encode_prompt`]) so that evcxr,
//! which cuts the line at every `:`, passes on the whole of it.

use std::fs::File;
use std::io::{Read, Write};
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError};

/// Appended to a line that had no newline of its own; the kernel strips it.
pub const PARTIAL_LINE: &str = "\u{1}RCK_PARTIAL_LINE";

/// Ends a stderr line after the cell has run: text before it on the same line is the cell's
/// last partial line. The kernel waits for it and never shows it.
pub const STDERR_SYNC: &str = "\u{1}RCK_STDERR_SYNC";

/// A display that the cell printed as content blocks while it ran, for the kernel to show in
/// place: `RCK_DISPLAY_BUNDLE {"text/html": "…", …}` (one line of JSON).
pub const DISPLAY_BUNDLE: &str = "RCK_DISPLAY_BUNDLE";

/// The start of the line with which evcxr's runtime says that a run is complete.
const EXECUTION_COMPLETE: &str = "EVCXR_EXECUTION_COMPLETE";

/// The variable in which evcxr (patched, vendor/evcxr/PATCHES.md) gives its runtime child a
/// random nonce that ends the completion line: a cell that prints `EVCXR_EXECUTION_COMPLETE`
/// itself ends nothing.
const EXECUTION_NONCE_VAR: &str = "EVCXR_EXECUTION_NONCE";

/// The runtime's completion line in this child: `EVCXR_EXECUTION_COMPLETE` and the nonce.
fn execution_complete_line() -> String {
    match std::env::var(EXECUTION_NONCE_VAR) {
        Ok(nonce) if !nonce.is_empty() => format!("{EXECUTION_COMPLETE} {nonce}"),
        _ => EXECUTION_COMPLETE.to_owned(),
    }
}

/// evcxr's line for a panic of the cell.
const PANIC_NOTIFICATION: &str = "EVCXR_PANIC_NOTIFICATION";

/// Starts a content block: `EVCXR_BEGIN_CONTENT mime`, the content's lines, [`END_CONTENT`].
const BEGIN_CONTENT: &str = "EVCXR_BEGIN_CONTENT";

/// Ends a content block.
const END_CONTENT: &str = "EVCXR_END_CONTENT";

/// Starts evcxr_input's request for input: `EVCXR_INPUT_REQUEST:prompt`, or
/// `EVCXR_INPUT_REQUEST_PASSWORD:prompt` for a password.
const INPUT_REQUEST: &str = "EVCXR_INPUT_REQUEST";

/// The markers of evcxr's child protocol that must start a line.
const MARKERS: [&str; 4] = [
    EXECUTION_COMPLETE,
    PANIC_NOTIFICATION,
    BEGIN_CONTENT,
    INPUT_REQUEST,
];

/// In evcxr's runtime child, before `evcxr::runtime_hook()`: routes fd 2 and then fd 1 through
/// the relays. Does nothing in the kernel process itself.
pub fn install_in_runtime_child() {
    if std::env::var_os("EVCXR_IS_RUNTIME").is_none() {
        return;
    }
    // stderr first, so that the stdout relay's syncs (written to fd 2) pass through it in order.
    if let Some((reader, writer)) = interpose(StdStream::Stderr) {
        std::thread::spawn(move || relay_text(reader, writer));
    }
    if let Some((reader, writer)) = interpose(StdStream::Stdout) {
        let complete = execution_complete_line();
        std::thread::spawn(move || relay(reader, writer, std::io::stderr(), complete));
    }
}

/// The standard stream that [`interpose`] puts a pipe in front of.
#[derive(Debug, Clone, Copy)]
pub(super) enum StdStream {
    /// fd 1.
    Stdout,
    /// fd 2.
    Stderr,
}

/// Puts a pipe in front of `stream`: returns the pipe's reading end and the original file. On
/// any failure the stream is left as it was, and every fd made so far is closed (they are owned
/// from the start).
pub(super) fn interpose(stream: StdStream) -> Option<(File, File)> {
    let (reader, writer) = rustix::pipe::pipe().ok()?;
    let original = match stream {
        StdStream::Stdout => rustix::io::dup(std::io::stdout()),
        StdStream::Stderr => rustix::io::dup(std::io::stderr()),
    }
    .ok()?;
    match stream {
        StdStream::Stdout => rustix::stdio::dup2_stdout(&writer),
        StdStream::Stderr => rustix::stdio::dup2_stderr(&writer),
    }
    .ok()?;
    // The stream's own fd now holds the pipe's writing end.
    drop(writer);
    Some((File::from(reader), File::from(original)))
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

/// How long the relay holds content blocks back to see whether the run completes right after
/// them (then they are the cell's value, for evcxr) or more output follows (then they are shown
/// at once, in order, as a display).
const HOLD: Duration = Duration::from_millis(50);

/// Moves `from` to `to` line by line with the markers on lines of their own, writing
/// [`STDERR_SYNC`] to `stderr` before each completed run, which ends with the line `complete`
/// (see [`StdoutRelay`]).
fn relay(from: impl Read + Send + 'static, to: impl Write, stderr: impl Write, complete: String) {
    let lines = lines_of(from);
    let mut relay = StdoutRelay::new(to, stderr, complete);
    loop {
        let next = if relay.holds_blocks() {
            lines.recv_timeout(HOLD)
        } else {
            lines.recv().map_err(|_| RecvTimeoutError::Disconnected)
        };
        match next {
            Ok(line) => relay.line(&line),
            Err(RecvTimeoutError::Timeout) => relay.quiet(),
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    relay.end();
}

/// The lines read from `from` on a thread of their own, without their newline (the last one may
/// have had none).
fn lines_of(mut from: impl Read + Send + 'static) -> Receiver<Vec<u8>> {
    let (tx, rx) = unbounded();
    std::thread::spawn(move || {
        let mut pending = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            pending.extend_from_slice(&buf[..n]);
            while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = pending.drain(..=nl).collect();
                line.pop();
                if tx.send(line).is_err() {
                    return;
                }
            }
        }
        if !pending.is_empty() {
            let _ = tx.send(pending);
        }
    });
    rx
}

/// The stdout relay's state: evcxr's markers get lines of their own, and content blocks
/// (`EVCXR_BEGIN_CONTENT mime` … `EVCXR_END_CONTENT`) that more output follows become one
/// [`DISPLAY_BUNDLE`] line each, shown where they were printed. evcxr itself collects every
/// block of a run into the cell's value, shown after everything else; that is left to it only
/// for the blocks that end the run (the value of the cell's last expression).
struct StdoutRelay<W, E> {
    to: W,
    stderr: E,
    /// The runtime's completion line (with evcxr's nonce); a cell's own `EVCXR_EXECUTION_COMPLETE`
    /// is output like any other.
    complete: String,
    /// The lines of a content block not yet ended, its `EVCXR_BEGIN_CONTENT` line first.
    open_block: Option<Vec<String>>,
    /// Ended blocks held back, in order: `(mime, content, the block's lines)`.
    held: Vec<(String, String, Vec<String>)>,
}

impl<W: Write, E: Write> StdoutRelay<W, E> {
    fn new(to: W, stderr: E, complete: String) -> Self {
        StdoutRelay {
            to,
            stderr,
            complete,
            open_block: None,
            held: Vec::new(),
        }
    }

    /// Whether ended blocks wait for what comes next.
    fn holds_blocks(&self) -> bool {
        self.open_block.is_none() && !self.held.is_empty()
    }

    /// One line from the child, without its newline.
    fn line(&mut self, raw: &[u8]) {
        let text = String::from_utf8_lossy(raw);
        for (line, partial) in split_markers(&text) {
            if partial {
                self.show_held();
                let _ = self
                    .to
                    .write_all(format!("{line}{PARTIAL_LINE}\n").as_bytes());
            } else {
                self.logical_line(line);
            }
        }
        let _ = self.to.flush();
    }

    fn logical_line(&mut self, line: &str) {
        if let Some(block) = &mut self.open_block {
            block.push(line.to_owned());
            if line == END_CONTENT {
                let block = self.open_block.take().unwrap_or_default();
                let mime = block[0][BEGIN_CONTENT.len()..].trim().to_owned();
                let content = block[1..block.len() - 1].join("\n");
                self.held.push((mime, content, block));
            } else if line == PANIC_NOTIFICATION {
                // evcxr ends the block here and records the panic: pass it on as it was.
                let block = self.open_block.take().unwrap_or_default();
                self.write_lines(&block);
            }
            return;
        }
        if line.starts_with(BEGIN_CONTENT) {
            self.open_block = Some(vec![line.to_owned()]);
            return;
        }
        if let Some((command, prompt)) = line
            .split_once(':')
            .filter(|(command, _)| command.starts_with(INPUT_REQUEST))
        {
            self.show_held();
            let line = format!("{command}:{}", encode_prompt(prompt));
            self.write_lines(&[line]);
            return;
        }
        if line == self.complete {
            // The blocks that end the run are the cell's value: evcxr collects them.
            let held: Vec<String> = self.held.drain(..).flat_map(|(_, _, l)| l).collect();
            self.write_lines(&held);
            let _ = self.to.flush();
            let _ = writeln!(self.stderr, "{STDERR_SYNC}");
            let _ = self.stderr.flush();
        } else {
            self.show_held();
        }
        self.write_lines(&[line.to_owned()]);
    }

    /// Nothing came for a while: held blocks are shown now.
    fn quiet(&mut self) {
        self.show_held();
        let _ = self.to.flush();
    }

    /// The child's stdout closed: whatever is left goes on as it was.
    fn end(&mut self) {
        let mut rest: Vec<String> = self.held.drain(..).flat_map(|(_, _, l)| l).collect();
        rest.extend(self.open_block.take().unwrap_or_default());
        self.write_lines(&rest);
        let _ = self.to.flush();
    }

    /// Held blocks as one display, all their MIME types in one bundle.
    fn show_held(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let bundle: serde_json::Map<String, serde_json::Value> = self
            .held
            .drain(..)
            .map(|(mime, content, _)| (mime, content.into()))
            .collect();
        let _ = writeln!(
            self.to,
            "{DISPLAY_BUNDLE} {}",
            serde_json::Value::Object(bundle)
        );
    }

    fn write_lines(&mut self, lines: &[String]) {
        for line in lines {
            let _ = writeln!(self.to, "{line}");
        }
    }
}

/// A prompt as the relay passes it on: evcxr keeps only the text up to the prompt's first `:`
/// (`Name: ` would become `Name`), so `%` and `:` are written as `%25` and `%3A`.
fn encode_prompt(prompt: &str) -> String {
    prompt.replace('%', "%25").replace(':', "%3A")
}

/// The prompt that [`encode_prompt`] encoded.
pub(super) fn decode_prompt(encoded: &str) -> String {
    encoded.replace("%3A", ":").replace("%25", "%")
}

/// One line (without its newline) → its logical lines: text before a marker in the middle of
/// the line is a partial line (`true`), the marker and the rest a line of its own.
fn split_markers(text: &str) -> Vec<(&str, bool)> {
    let cut = MARKERS
        .iter()
        .filter_map(|m| text.find(m))
        .filter(|&at| at > 0)
        .min();
    match cut {
        Some(at) => vec![(&text[..at], true), (&text[at..], false)],
        None => vec![(text, false)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The completion line of these tests' runtime.
    const NONCED: &str = "EVCXR_EXECUTION_COMPLETE n0nce";

    /// Feeds `input` line by line to a [`StdoutRelay`], calling `quiet` where a line is `QUIET`,
    /// and returns (stdout, stderr).
    fn relayed(input: &[&[u8]]) -> (String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut relay = StdoutRelay::new(&mut out, &mut err, NONCED.to_owned());
        for &line in input {
            if line == b"QUIET" {
                relay.quiet();
            } else {
                relay.line(line);
            }
        }
        relay.end();
        (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn markers_get_their_own_line() {
        let (out, err) = relayed(&[
            b"hello",
            b"no newlineEVCXR_EXECUTION_COMPLETE n0nce",
            b"EVCXR_EXECUTION_COMPLETE n0nce",
        ]);
        assert_eq!(out, format!("hello\nno newline{PARTIAL_LINE}\nEVCXR_EXECUTION_COMPLETE n0nce\nEVCXR_EXECUTION_COMPLETE n0nce\n"));
        assert_eq!(
            err,
            format!("{STDERR_SYNC}\n{STDERR_SYNC}\n"),
            "one sync per completed run"
        );
    }

    #[test]
    fn a_cell_that_prints_the_marker_ends_nothing() {
        let (out, err) = relayed(&[
            b"EVCXR_EXECUTION_COMPLETE",
            b"EVCXR_BEGIN_CONTENT text/html",
            b"<b>x</b>",
            b"EVCXR_END_CONTENT",
            b"EVCXR_EXECUTION_COMPLETE",
            b"after",
            b"EVCXR_EXECUTION_COMPLETE n0nce",
        ]);
        assert_eq!(
            out,
            format!("EVCXR_EXECUTION_COMPLETE\n{DISPLAY_BUNDLE} {{\"text/html\":\"<b>x</b>\"}}\nEVCXR_EXECUTION_COMPLETE\nafter\n{NONCED}\n"),
            "the cell's own marker lines are output, and the block they follow is shown in place"
        );
        assert_eq!(err, format!("{STDERR_SYNC}\n"), "one run, one sync");
    }

    #[test]
    fn the_threaded_relay_passes_everything_on() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        relay(
            &b"a\nEVCXR_BEGIN_CONTENT text/html\n<b>x</b>\nEVCXR_END_CONTENT\nb\nEVCXR_EXECUTION_COMPLETE n0nce\nrest"[..],
            &mut out,
            &mut err,
            NONCED.to_owned(),
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("a\n{DISPLAY_BUNDLE} {{\"text/html\":\"<b>x</b>\"}}\nb\nEVCXR_EXECUTION_COMPLETE n0nce\nrest\n")
        );
        assert_eq!(String::from_utf8(err).unwrap(), format!("{STDERR_SYNC}\n"));
    }

    #[test]
    fn no_sync_without_a_completed_run() {
        let (out, err) = relayed(&[b"EVCXR_BEGIN_CONTENT text/html", b"<b>x</b>"]);
        assert!(err.is_empty());
        assert_eq!(
            out, "EVCXR_BEGIN_CONTENT text/html\n<b>x</b>\n",
            "passed on as it was"
        );
    }

    #[test]
    fn blocks_followed_by_output_are_shown_in_place() {
        let (out, _) = relayed(&[
            b"before",
            b"EVCXR_BEGIN_CONTENT text/html",
            b"<b>bold</b>",
            b"<i>two lines</i>",
            b"EVCXR_END_CONTENT",
            b"EVCXR_BEGIN_CONTENT text/plain",
            b"bold",
            b"EVCXR_END_CONTENT",
            b"after",
            b"EVCXR_EXECUTION_COMPLETE n0nce",
        ]);
        assert_eq!(
            out,
            format!(
                "before\n{DISPLAY_BUNDLE} {{\"text/html\":\"<b>bold</b>\\n<i>two lines</i>\",\"text/plain\":\"bold\"}}\nafter\nEVCXR_EXECUTION_COMPLETE n0nce\n"
            )
        );
    }

    #[test]
    fn blocks_that_end_the_run_are_left_to_evcxr_as_the_value() {
        let block: [&[u8]; 3] = [
            b"EVCXR_BEGIN_CONTENT text/html",
            b"<b>42</b>",
            b"EVCXR_END_CONTENT",
        ];
        let mut input: Vec<&[u8]> = vec![b"text"];
        input.extend(block);
        input.push(b"EVCXR_EXECUTION_COMPLETE n0nce");
        let (out, err) = relayed(&input);
        assert_eq!(
            out,
            "text\nEVCXR_BEGIN_CONTENT text/html\n<b>42</b>\nEVCXR_END_CONTENT\nEVCXR_EXECUTION_COMPLETE n0nce\n"
        );
        assert_eq!(err, format!("{STDERR_SYNC}\n"));
    }

    #[test]
    fn held_blocks_are_shown_when_the_cell_goes_quiet() {
        let (out, _) = relayed(&[
            b"EVCXR_BEGIN_CONTENT image/svg+xml",
            b"<svg/>",
            b"EVCXR_END_CONTENT",
            b"QUIET",
            b"EVCXR_EXECUTION_COMPLETE n0nce",
        ]);
        assert_eq!(
            out,
            format!(
                "{DISPLAY_BUNDLE} {{\"image/svg+xml\":\"<svg/>\"}}\nEVCXR_EXECUTION_COMPLETE n0nce\n"
            )
        );
    }

    #[test]
    fn a_panic_inside_a_block_reaches_evcxr_unchanged() {
        let (out, _) = relayed(&[
            b"EVCXR_BEGIN_CONTENT text/html",
            b"<b>",
            b"EVCXR_PANIC_NOTIFICATION",
            b"EVCXR_EXECUTION_COMPLETE n0nce",
        ]);
        assert_eq!(
            out,
            "EVCXR_BEGIN_CONTENT text/html\n<b>\nEVCXR_PANIC_NOTIFICATION\nEVCXR_EXECUTION_COMPLETE n0nce\n"
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_become_replacement_characters() {
        let (out, _) = relayed(&[b"bad \xff\xfe", b"ok"]);
        assert_eq!(out, "bad \u{fffd}\u{fffd}\nok\n");

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
    fn an_input_request_gets_a_line_of_its_own_and_keeps_its_whole_prompt() {
        let (out, _) = relayed(&[
            b"Hello EVCXR_INPUT_REQUEST:Name: ",
            b"EVCXR_INPUT_REQUEST_PASSWORD:100% sure? (y:n)",
        ]);
        assert_eq!(
            out,
            format!(
                "Hello {PARTIAL_LINE}\nEVCXR_INPUT_REQUEST:Name%3A \nEVCXR_INPUT_REQUEST_PASSWORD:100%25 sure? (y%3An)\n"
            )
        );
        // evcxr keeps what follows the first `:` up to the next one: all of the encoded prompt.
        for line in out.lines().skip(1) {
            let evcxr_prompt = line.split(':').nth(1).unwrap();
            assert!(
                ["Name: ", "100% sure? (y:n)"].contains(&decode_prompt(evcxr_prompt).as_str()),
                "{line}"
            );
        }
    }

    #[test]
    fn content_blocks_after_partial_text() {
        let (out, _) = relayed(&[
            b"abcEVCXR_BEGIN_CONTENT text/html",
            b"<b>x</b>",
            b"EVCXR_END_CONTENT",
            b"EVCXR_EXECUTION_COMPLETE n0nce",
        ]);
        assert_eq!(
            out,
            format!("abc{PARTIAL_LINE}\nEVCXR_BEGIN_CONTENT text/html\n<b>x</b>\nEVCXR_END_CONTENT\nEVCXR_EXECUTION_COMPLETE n0nce\n")
        );
    }
}
