//! Rust code evaluated once when the engine starts: the `jupyter` module that cells use to
//! show rich output while they run (`display_data`), not only as their final value.

/// The line that starts a display block on the runtime child's stdout:
/// `RCK_DISPLAY <mime> <line count>`, followed by exactly that many lines of content.
pub const DISPLAY_MARKER: &str = "RCK_DISPLAY";

/// The line that clears the cell's output: `RCK_CLEAR_OUTPUT wait` or `RCK_CLEAR_OUTPUT now`.
pub const CLEAR_MARKER: &str = "RCK_CLEAR_OUTPUT";

/// The prelude's source. Items defined here persist like any cell's.
pub const PRELUDE: &str = r#"
/// Rich output from Rust cells: `jupyter::html("<b>hi</b>")`, `jupyter::display("image/svg+xml", svg)`.
#[allow(dead_code)]
mod jupyter {
    /// Shows `content` as MIME type `mime` below the cell, right away.
    pub fn display(mime: &str, content: impl std::fmt::Display) {
        use std::io::Write;
        let content = content.to_string();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "RCK_DISPLAY {} {}", mime, content.lines().count());
        for line in content.lines() {
            let _ = writeln!(out, "{}", line);
        }
        let _ = out.flush();
    }
    /// Shows HTML.
    pub fn html(html: impl std::fmt::Display) { display("text/html", html) }
    /// Shows Markdown.
    pub fn markdown(md: impl std::fmt::Display) { display("text/markdown", md) }
    /// Shows an SVG image.
    pub fn svg(svg: impl std::fmt::Display) { display("image/svg+xml", svg) }
    /// Shows a PNG image given as base64.
    pub fn png_base64(data: impl std::fmt::Display) { display("image/png", data) }
    /// Clears the cell's output; with `wait`, only when the next output arrives (no flicker).
    pub fn clear_output(wait: bool) {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "RCK_CLEAR_OUTPUT {}", if wait { "wait" } else { "now" });
        let _ = out.flush();
    }
}
"#;
