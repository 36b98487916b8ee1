//! Execution history, kept across sessions in a JSON-lines file
//! (`$XDG_DATA_HOME/rust-cluster-kernel/history.jsonl`), and the `history_request` handler.

use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Kernel;
use crate::protocol::content::{HistoryReply, HistoryRequest, ReplyStatus};
use crate::protocol::WireMessage;

/// One executed input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The session number (1 for the first kernel that used this file).
    pub session: i64,
    /// The execution count within the session.
    pub line: i64,
    /// The code as typed.
    pub input: String,
    /// The text/plain of the cell's result, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// The history file and this session's place in it.
pub struct History {
    /// The file; `None` when it cannot be written (history then lives in memory only).
    path: Option<PathBuf>,
    /// Every entry, older sessions first.
    entries: Vec<Entry>,
    /// This kernel's session number.
    session: i64,
}

impl History {
    /// Opens the default history file (created on first write).
    pub fn open_default() -> Self {
        let dir = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .map(|d| d.join("rust-cluster-kernel"));
        Self::open(dir.map(|d| d.join("history.jsonl")))
    }

    /// Opens `path` (or keeps history in memory only).
    pub fn open(path: Option<PathBuf>) -> Self {
        let entries: Vec<Entry> = path
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|text| {
                text.lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect()
            })
            .unwrap_or_default();
        let session = entries.iter().map(|e| e.session).max().unwrap_or(0) + 1;
        History {
            path,
            entries,
            session,
        }
    }

    /// Records one input of this session, with the text of its result.
    pub fn record(&mut self, line: u32, input: &str, output: Option<String>) {
        let entry = Entry {
            session: self.session,
            line: i64::from(line),
            input: input.to_owned(),
            output,
        };
        if let Some(path) = &self.path {
            let written = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|_| {
                    let mut f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)?;
                    writeln!(
                        f,
                        "{}",
                        serde_json::to_string(&entry).expect("entries serialise")
                    )
                });
            if let Err(e) = written {
                tracing::warn!("history not saved to {}: {e}", path.display());
            }
        }
        self.entries.push(entry);
    }

    /// The last `n` entries, over all sessions.
    pub fn tail(&self, n: usize) -> Vec<Entry> {
        self.entries[self.entries.len().saturating_sub(n)..].to_vec()
    }

    /// Entries of one session (0: this one; negative: counted back from this one) with
    /// `start <= line < stop`.
    pub fn range(&self, session: i64, start: i64, stop: Option<i64>) -> Vec<Entry> {
        let session = if session <= 0 {
            self.session + session
        } else {
            session
        };
        self.entries
            .iter()
            .filter(|e| e.session == session && e.line >= start && stop.is_none_or(|s| e.line < s))
            .cloned()
            .collect()
    }

    /// Entries whose input matches a glob (`*` and `?`), newest last, at most `n` (if given).
    pub fn search(&self, pattern: &str, n: Option<usize>, unique: bool) -> Vec<Entry> {
        let mut found: Vec<Entry> = self
            .entries
            .iter()
            .filter(|e| glob(pattern, &e.input))
            .cloned()
            .collect();
        if unique {
            let mut seen = std::collections::HashSet::new();
            let mut kept: Vec<Entry> = found
                .into_iter()
                .rev()
                .filter(|e| seen.insert(e.input.clone()))
                .collect();
            kept.reverse();
            found = kept;
        }
        match n {
            Some(n) => found[found.len().saturating_sub(n)..].to_vec(),
            None => found,
        }
    }
}

/// Glob match with `*` (any run) and `?` (any one character).
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// `history_request`: the handler.
impl Kernel {
    /// Answers from `history`: a `range` of a session, a glob `search`, or the `tail` (any other
    /// access type).
    pub(super) fn on_history(&self, request: &WireMessage, r: HistoryRequest, history: &History) {
        let entries = match r.hist_access_type.as_str() {
            "range" => history.range(r.session, r.start, r.stop),
            "search" => history.search(r.pattern.as_deref().unwrap_or("*"), r.n, r.unique),
            _ => history.tail(r.n.unwrap_or(10)),
        };
        let history = entries
            .into_iter()
            .map(|e| {
                let input = if r.output {
                    json!([e.input, e.output])
                } else {
                    json!(e.input)
                };
                (e.session, e.line, input)
            })
            .collect();
        self.reply_shell(
            request,
            "history_reply",
            HistoryReply {
                status: ReplyStatus::Ok,
                history,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_persist_in_the_file() {
        let dir = std::env::temp_dir().join(format!("rck-history-{}", std::process::id()));
        let path = dir.join("h.jsonl");
        let mut first = History::open(Some(path.clone()));
        first.record(1, "let a = 1;", None);
        first.record(2, "a + 1", Some("2".into()));
        let mut second = History::open(Some(path.clone()));
        second.record(1, "println!(\"hi\")", None);
        assert_eq!(
            second
                .tail(2)
                .iter()
                .map(|e| (e.session, e.line))
                .collect::<Vec<_>>(),
            [(1, 2), (2, 1)]
        );
        assert_eq!(second.range(-1, 1, None).len(), 2);
        assert_eq!(second.range(0, 1, Some(2))[0].input, "println!(\"hi\")");
        assert_eq!(second.search("*a*", None, false).len(), 2);
        assert_eq!(second.search("*hi*", Some(1), true)[0].session, 2);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn globs() {
        assert!(glob("*", ""));
        assert!(glob("a?c*", "abcdef"));
        assert!(!glob("a?c", "abcd"));
    }
}
