//! MIME bundles: what a cell shows. Every bundle has a `text/plain` twin so that consoles,
//! `nbconvert --to markdown` and screen readers get something useful too.

use serde_json::{Map, Value};

/// The `data` and `metadata` of a `display_data`, `update_display_data` or `execute_result`.
///
/// ```
/// use rust_cluster_kernel::display::Bundle;
/// let b = Bundle::html("<b>3 workers</b>", "3 workers");
/// assert_eq!(b.data["text/plain"], "3 workers");
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bundle {
    /// MIME type → content (a string for text types, JSON for `application/json`).
    pub data: Map<String, Value>,
    /// MIME type → metadata (for example image sizes); usually empty.
    pub metadata: Map<String, Value>,
}

impl Bundle {
    /// A bundle with only `text/plain`.
    pub fn text(text: impl Into<String>) -> Self {
        let mut b = Bundle::default();
        b.data
            .insert("text/plain".into(), Value::String(text.into()));
        b
    }

    /// A bundle with `text/html` and its `text/plain` twin.
    pub fn html(html: impl Into<String>, text: impl Into<String>) -> Self {
        let mut b = Bundle::text(text);
        b.data
            .insert("text/html".into(), Value::String(html.into()));
        b
    }

    /// Adds (or replaces) one MIME type.
    pub fn with(mut self, mime: &str, content: impl Into<Value>) -> Self {
        self.data.insert(mime.to_owned(), content.into());
        self
    }
}
