//! `complete_request` (Tab): magic names after `%`/`%%`, everything else from the engine.

use serde_json::{json, Value};

use super::Kernel;
use crate::magics::Registry;
use crate::protocol::content::{CompleteReply, CompleteRequest, ReplyStatus};
use crate::protocol::WireMessage;

/// What completes the text before the cursor, and which bytes of the code it replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Completions {
    /// The candidates, in the order to show.
    pub matches: Vec<String>,
    /// Each candidate's kind (`magic`, `function`, …), for JupyterLab's icons.
    pub kinds: Vec<String>,
    /// The first byte replaced.
    pub start: usize,
    /// The byte after the last one replaced.
    pub end: usize,
}

impl Kernel {
    /// Answers with magic names or the engine's completions (a failure is logged and answered
    /// with none).
    pub(super) fn on_complete(&self, request: &WireMessage, r: CompleteRequest) {
        let byte_pos = byte_offset(&r.code, r.cursor_pos);
        let found = match magic_completions(&self.registry, &r.code, byte_pos) {
            Some(found) => found,
            None => match self.engine.complete(&r.code, byte_pos) {
                Ok(c) => Completions {
                    matches: c.matches,
                    kinds: c.kinds,
                    start: c.start,
                    end: c.end,
                },
                Err(e) => {
                    tracing::warn!("completion failed: {}", e.evalue);
                    Completions {
                        matches: Vec::new(),
                        kinds: Vec::new(),
                        start: byte_pos,
                        end: byte_pos,
                    }
                }
            },
        };
        let cursor_start = char_offset(&r.code, found.start);
        let cursor_end = char_offset(&r.code, found.end);
        let types: Vec<Value> = found
            .matches
            .iter()
            .zip(&found.kinds)
            .map(|(text, kind)| json!({"start": cursor_start, "end": cursor_end, "text": text, "type": kind}))
            .collect();
        self.reply_shell(
            request,
            "complete_reply",
            CompleteReply {
                status: ReplyStatus::Ok,
                matches: found.matches,
                cursor_start,
                cursor_end,
                metadata: json!({"_jupyter_types_experimental": types}),
            },
        );
    }
}

/// Completions of magic names after `%` or `%%` at the start of a line.
pub(super) fn magic_completions(
    registry: &Registry,
    code: &str,
    byte_pos: usize,
) -> Option<Completions> {
    let line_start = code[..byte_pos].rfind('\n').map_or(0, |i| i + 1);
    let typed = &code[line_start..byte_pos];
    let prefix = if typed.starts_with("%%") {
        "%%"
    } else if typed.starts_with('%') {
        "%"
    } else {
        return None;
    };
    let name = &typed[prefix.len()..];
    if name.contains(char::is_whitespace) {
        return None;
    }
    let matches: Vec<String> = registry
        .iter()
        .filter(|m| {
            m.name().starts_with(name)
                && if prefix == "%%" {
                    m.forms().cell
                } else {
                    m.forms().line
                }
        })
        .map(|m| format!("{prefix}{}", m.name()))
        .collect();
    Some(Completions {
        kinds: vec!["magic".to_owned(); matches.len()],
        matches,
        start: line_start,
        end: byte_pos,
    })
}

/// Unicode code points → byte offset (clamped to the end).
pub(super) fn byte_offset(text: &str, chars: usize) -> usize {
    text.char_indices()
        .nth(chars)
        .map_or(text.len(), |(i, _)| i)
}

/// Byte offset → Unicode code points.
fn char_offset(text: &str, bytes: usize) -> usize {
    text[..bytes.min(text.len())].chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_offsets_count_code_points() {
        let s = "let é = \"🦀\"; é";
        assert_eq!(byte_offset(s, 4), 4);
        assert_eq!(byte_offset(s, 5), 6);
        assert_eq!(char_offset(s, byte_offset(s, 12)), 12);
        assert_eq!(byte_offset(s, 1000), s.len());
    }

    #[test]
    fn magic_names_complete() {
        let r = Registry::everyday();
        let found = magic_completions(&r, "let x = 1;\n%ls", 14).unwrap();
        assert_eq!(
            found,
            Completions {
                matches: vec!["%lsmagic".to_owned()],
                kinds: vec!["magic".to_owned()],
                start: 11,
                end: 14
            }
        );
        assert_eq!(
            magic_completions(&r, "%%ba", 4).unwrap().matches,
            ["%%bash"]
        );
        assert!(magic_completions(&r, "let x", 5).is_none());
    }
}
