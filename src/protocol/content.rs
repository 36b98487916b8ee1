//! Typed message contents, one struct per message type the kernel reads or writes.
//!
//! Requests are deserialised leniently where clients differ (defaults for optional fields);
//! replies serialise every field the spec requires.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The `status` of a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplyStatus {
    /// The request was handled.
    Ok,
    /// It failed; the reply carries `ename`, `evalue` and `traceback`.
    Error,
    /// An execution that was not run because an earlier one failed with `stop_on_error`.
    Aborted,
}

/// The `status` of an `is_complete_reply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IsCompleteStatus {
    /// The code can run as it is.
    Complete,
    /// More lines are needed (brackets, strings or comments are open).
    Incomplete,
    /// The code can never become valid by adding lines.
    Invalid,
    /// The kernel cannot tell.
    Unknown,
}

/// The `execution_state` of a `status` message on iopub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionState {
    /// Published once, before the first request is read.
    Starting,
    /// A request is being handled.
    Busy,
    /// The request's reply and every output it caused have been sent.
    Idle,
}

/// `execute_request`
#[derive(Debug, Clone, Deserialize)]
pub struct ExecuteRequest {
    /// The cell's code.
    pub code: String,
    /// No output, no execution count increment, no history.
    #[serde(default)]
    pub silent: bool,
    /// Record in history (forced false when silent).
    #[serde(default = "yes")]
    pub store_history: bool,
    /// Expressions to evaluate after the code (not supported for Rust; answered empty).
    #[serde(default)]
    pub user_expressions: Map<String, Value>,
    /// Whether the kernel may send `input_request`s.
    #[serde(default)]
    pub allow_stdin: bool,
    /// Abort queued executions after an error.
    #[serde(default = "yes")]
    pub stop_on_error: bool,
}

fn yes() -> bool {
    true
}

/// `execute_reply` (and the status fields every reply shares).
#[derive(Debug, Clone, Serialize)]
pub struct ExecuteReply {
    /// `ok`, `error` or `aborted`.
    pub status: ReplyStatus,
    /// The count of this execution.
    pub execution_count: u32,
    /// Always empty (no Rust user expressions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_expressions: Option<Map<String, Value>>,
    /// Payloads (unused, empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Vec<Value>>,
    /// Error name, for status `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ename: Option<String>,
    /// Error value, for status `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evalue: Option<String>,
    /// Error traceback, for status `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traceback: Option<Vec<String>>,
}

/// `complete_request`
#[derive(Debug, Clone, Deserialize)]
pub struct CompleteRequest {
    /// The cell's code.
    pub code: String,
    /// Cursor position in Unicode code points.
    pub cursor_pos: usize,
}

/// `complete_reply`
#[derive(Debug, Clone, Serialize)]
pub struct CompleteReply {
    /// `ok` or `error`.
    pub status: ReplyStatus,
    /// The completions.
    pub matches: Vec<String>,
    /// Start of the text to replace, in code points.
    pub cursor_start: usize,
    /// End of the text to replace, in code points.
    pub cursor_end: usize,
    /// `_jupyter_types_experimental`: kinds of the matches, for JupyterLab's icons.
    pub metadata: Value,
}

/// `inspect_request`
#[derive(Debug, Clone, Deserialize)]
pub struct InspectRequest {
    /// The cell's code.
    pub code: String,
    /// Cursor position in Unicode code points.
    pub cursor_pos: usize,
    /// 0 or 1.
    #[serde(default)]
    pub detail_level: u8,
}

/// `inspect_reply`
#[derive(Debug, Clone, Serialize)]
pub struct InspectReply {
    /// `ok` or `error`.
    pub status: ReplyStatus,
    /// Whether anything was found.
    pub found: bool,
    /// MIME bundle of the documentation.
    pub data: Map<String, Value>,
    /// Metadata of the bundle.
    pub metadata: Map<String, Value>,
}

/// `is_complete_request`
#[derive(Debug, Clone, Deserialize)]
pub struct IsCompleteRequest {
    /// The code typed so far.
    pub code: String,
}

/// `is_complete_reply`
#[derive(Debug, Clone, Serialize)]
pub struct IsCompleteReply {
    /// `complete`, `incomplete`, `invalid` or `unknown`.
    pub status: IsCompleteStatus,
    /// For `incomplete`: the indent for the next line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indent: Option<String>,
}

/// `history_request`
#[derive(Debug, Clone, Deserialize)]
pub struct HistoryRequest {
    /// Give each entry as `[input, output]`, the output being the cell's `text/plain` result
    /// (null when it had none).
    #[serde(default)]
    pub output: bool,
    /// Return the raw input (always raw here).
    #[serde(default)]
    pub raw: bool,
    /// `range`, `tail` or `search`.
    #[serde(default = "tail")]
    pub hist_access_type: String,
    /// For `range`: the session (0 = current, negative = earlier).
    #[serde(default)]
    pub session: i64,
    /// For `range`: first line.
    #[serde(default)]
    pub start: i64,
    /// For `range`: end (exclusive).
    #[serde(default)]
    pub stop: Option<i64>,
    /// For `tail` and `search`: how many entries.
    #[serde(default)]
    pub n: Option<usize>,
    /// For `search`: glob pattern.
    #[serde(default)]
    pub pattern: Option<String>,
    /// For `search`: only unique inputs.
    #[serde(default)]
    pub unique: bool,
}

fn tail() -> String {
    "tail".to_owned()
}

/// `history_reply`
#[derive(Debug, Clone, Serialize)]
pub struct HistoryReply {
    /// `ok`.
    pub status: ReplyStatus,
    /// `(session, line_number, input)` triples, or `(session, line_number, [input, output])`
    /// when the request asked for output.
    pub history: Vec<(i64, i64, Value)>,
}

/// `comm_info_reply`
#[derive(Debug, Clone, Serialize)]
pub struct CommInfoReply {
    /// `ok`.
    pub status: ReplyStatus,
    /// Open comms by id (none: this kernel has no comm targets).
    pub comms: Map<String, Value>,
}

/// `shutdown_request` and `shutdown_reply`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Shutdown {
    /// Only in replies: `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ReplyStatus>,
    /// Whether a restart follows.
    #[serde(default)]
    pub restart: bool,
}

/// `input_reply` (on stdin)
#[derive(Debug, Clone, Deserialize)]
pub struct InputReply {
    /// What the user typed.
    pub value: String,
}

/// The `kernel_info_reply` content.
#[derive(Debug, Clone, Serialize)]
pub struct KernelInfoReply {
    /// `ok`.
    pub status: ReplyStatus,
    /// The protocol version.
    pub protocol_version: &'static str,
    /// `rust-cluster-kernel`.
    pub implementation: &'static str,
    /// This crate's version.
    pub implementation_version: &'static str,
    /// Rust, with rustc's version.
    pub language_info: LanguageInfo,
    /// Shown by consoles at start.
    pub banner: String,
    /// Optional protocol features (JEP 92): none beyond the core yet.
    pub supported_features: Vec<String>,
    /// Whether the debugger is supported (no).
    pub debugger: bool,
    /// Links for the Help menu.
    pub help_links: Vec<HelpLink>,
}

/// The language part of `kernel_info_reply`.
#[derive(Debug, Clone, Serialize)]
pub struct LanguageInfo {
    /// `rust`.
    pub name: &'static str,
    /// rustc's version, e.g. `1.95.0`.
    pub version: String,
    /// `text/rust`.
    pub mimetype: &'static str,
    /// `.rs`.
    pub file_extension: &'static str,
    /// `rust` (Pygments lexer).
    pub pygments_lexer: &'static str,
    /// `rust` (CodeMirror mode).
    pub codemirror_mode: &'static str,
    /// `rust` (nbconvert exporter name).
    pub nbconvert_exporter: &'static str,
}

/// One Help-menu link.
#[derive(Debug, Clone, Serialize)]
pub struct HelpLink {
    /// Menu text.
    pub text: &'static str,
    /// Target URL.
    pub url: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn execute_request_defaults() {
        let r: ExecuteRequest = serde_json::from_value(json!({"code": "1"})).unwrap();
        assert!(!r.silent && r.store_history && r.stop_on_error && !r.allow_stdin);
    }

    #[test]
    fn error_reply_has_error_fields_and_ok_reply_has_not() {
        let ok = serde_json::to_value(ExecuteReply {
            status: ReplyStatus::Ok,
            execution_count: 1,
            user_expressions: Some(Map::new()),
            payload: Some(vec![]),
            ename: None,
            evalue: None,
            traceback: None,
        })
        .unwrap();
        assert_eq!(
            ok,
            json!({"status": "ok", "execution_count": 1, "user_expressions": {}, "payload": []})
        );
    }

    #[test]
    fn history_request_tail() {
        let r: HistoryRequest = serde_json::from_value(
            json!({"hist_access_type": "tail", "n": 3, "output": false, "raw": true}),
        )
        .unwrap();
        assert_eq!((r.hist_access_type.as_str(), r.n), ("tail", Some(3)));
    }
}
