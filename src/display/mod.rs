//! MIME bundles: what a cell shows. Every bundle has a `text/plain` twin so that consoles,
//! `nbconvert --to markdown` and screen readers get something useful too.
//!
//! The cluster crate returns plain data ([`dask_slurm::model`]); this module turns it into
//! bundles, one file per kind of output:
//!
//! - [`card`]: the live cluster card ([`card::cluster_card`]);
//! - [`table`]: a generic table for `%squeue`, `%sinfo`, and `%cluster list`
//!   ([`table::cluster_list`]);
//! - [`progress`]: workers joined / expected while `%cluster wait` blocks;
//! - [`logs`]: the tails of each job's output for `%cluster logs`;
//! - [`dashboard`]: the dashboard link and ssh tunnel line for `%cluster dashboard`.
//!
//! HTML comes only from askama templates, with HTML escaping on (askama's default for
//! `.html` files). The templates live in `templates/` at the root of the crate (askama's
//! default directory, so no `askama.toml` is needed); `templates/rck_style.html` is the one
//! style sheet every fragment includes. The fragments carry their own `<style>`, use no
//! JavaScript, prefix every class with `rck-`, and colour themselves only through
//! JupyterLab's CSS variables (each with a light-theme fallback), so they fit light and dark
//! themes. Text twins are plain `String`s laid out in aligned columns.

pub mod card;
pub mod dashboard;
mod format;
pub mod logs;
pub mod progress;
pub mod table;
#[cfg(test)]
mod tests;
mod tone;

pub use tone::Tone;

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

/// An HTML bundle from a rendered template and its text twin. A template that fails to render
/// (only a failing `Display` can do that) leaves the text, and says so in the log.
fn html_bundle(what: &str, html: askama::Result<String>, text: String) -> Bundle {
    match html {
        Ok(html) => Bundle::html(html, text),
        Err(error) => {
            tracing::error!(%error, "rendering the {what} failed; showing text only");
            Bundle::text(text)
        }
    }
}
