//! [`StdoutParser`]: reads a cell's stdout line by line. The prelude's display and clear markers
//! and the relay's display bundles become events; everything else is text on stdout.

use super::prelude::{CLEAR_MARKER, DISPLAY_MARKER};
use super::relay::{DISPLAY_BUNDLE, PARTIAL_LINE};
use super::text_twin::with_text_twin;
use super::CellEvent;
use crate::cell::StreamName;
use crate::display::Bundle;

/// The state between lines: a `jupyter::display` whose content spans the next lines.
#[derive(Debug, Default)]
pub(super) struct StdoutParser {
    /// The display being read: its MIME type, how many lines are still to come, those read.
    pending: Option<PendingDisplay>,
}

/// A display announced by `DISPLAY_MARKER mime count` whose `count` lines are being read.
#[derive(Debug)]
struct PendingDisplay {
    mime: String,
    left: usize,
    lines: Vec<String>,
}

impl StdoutParser {
    /// The event that `line` (without its newline) completes, if any: a display when its last
    /// line arrives, nothing while one is being read, otherwise a clear, a bundle or text.
    pub(super) fn line(&mut self, line: String) -> Option<CellEvent> {
        if let Some(pending) = &mut self.pending {
            pending.lines.push(line);
            pending.left -= 1;
            if pending.left > 0 {
                return None;
            }
            let done = self.pending.take().expect("checked");
            let bundle = Bundle::default().with(&done.mime, done.lines.join("\n"));
            return Some(CellEvent::Display(with_text_twin(bundle)));
        }
        if let Some(rest) = line
            .strip_prefix(DISPLAY_MARKER)
            .and_then(|r| r.strip_prefix(' '))
        {
            let mut parts = rest.rsplitn(2, ' ');
            let count = parts.next().and_then(|n| n.parse::<usize>().ok());
            if let (Some(count), Some(mime)) = (count, parts.next()) {
                if count == 0 {
                    return Some(CellEvent::Display(with_text_twin(
                        Bundle::default().with(mime, ""),
                    )));
                }
                self.pending = Some(PendingDisplay {
                    mime: mime.to_owned(),
                    left: count,
                    lines: Vec::new(),
                });
                return None;
            }
        }
        if let Some(bundle) = line
            .strip_prefix(DISPLAY_BUNDLE)
            .and_then(|json| serde_json::from_str(json.trim()).ok())
        {
            return Some(CellEvent::Display(with_text_twin(Bundle {
                data: bundle,
                ..Bundle::default()
            })));
        }
        if let Some(when) = line.strip_prefix(CLEAR_MARKER).map(str::trim) {
            if when == "wait" || when == "now" {
                return Some(CellEvent::ClearOutput {
                    wait: when == "wait",
                });
            }
        }
        let text = match line.strip_suffix(PARTIAL_LINE) {
            Some(partial) => partial.to_owned(),
            None => line + "\n",
        };
        Some(CellEvent::Stream(StreamName::Stdout, text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(parser: &mut StdoutParser, lines: &[&str]) -> Vec<CellEvent> {
        lines
            .iter()
            .filter_map(|l| parser.line((*l).to_owned()))
            .collect()
    }

    fn text(event: &CellEvent) -> Option<&str> {
        match event {
            CellEvent::Stream(StreamName::Stdout, text) => Some(text),
            _ => None,
        }
    }

    #[test]
    fn plain_lines_are_stdout_and_a_partial_line_keeps_no_newline() {
        let mut p = StdoutParser::default();
        let events = lines(&mut p, &["hello", &format!("no newline{PARTIAL_LINE}")]);
        let texts: Vec<_> = events.iter().filter_map(text).collect();
        assert_eq!(texts, ["hello\n", "no newline"]);
    }

    #[test]
    fn a_display_spans_its_announced_lines() {
        let mut p = StdoutParser::default();
        let marker = format!("{DISPLAY_MARKER} text/html 2");
        let events = lines(&mut p, &[&marker, "<b>a</b>", "<i>b</i>", "after"]);
        assert_eq!(events.len(), 2, "{events:?}");
        match &events[0] {
            CellEvent::Display(b) => {
                assert_eq!(b.data["text/html"], "<b>a</b>\n<i>b</i>");
                assert_eq!(b.data["text/plain"], "a b", "a text twin is added");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(text(&events[1]), Some("after\n"));
    }

    #[test]
    fn an_empty_display_and_a_bad_marker() {
        let mut p = StdoutParser::default();
        let empty = format!("{DISPLAY_MARKER} text/markdown 0");
        let bad = format!("{DISPLAY_MARKER} text/html many");
        let events = lines(&mut p, &[&empty, &bad]);
        assert!(matches!(&events[0], CellEvent::Display(b) if b.data["text/markdown"] == ""));
        assert_eq!(
            text(&events[1]),
            Some(format!("{bad}\n").as_str()),
            "shown as text"
        );
    }

    #[test]
    fn bundles_and_clears() {
        let mut p = StdoutParser::default();
        let bundle = format!("{DISPLAY_BUNDLE}{{\"text/plain\": \"x\"}}");
        let clear = format!("{CLEAR_MARKER} wait");
        let odd = format!("{CLEAR_MARKER} later");
        let events = lines(&mut p, &[&bundle, &clear, &odd]);
        assert!(matches!(&events[0], CellEvent::Display(b) if b.data["text/plain"] == "x"));
        assert!(matches!(events[1], CellEvent::ClearOutput { wait: true }));
        assert_eq!(text(&events[2]), Some(format!("{odd}\n").as_str()));
    }
}
