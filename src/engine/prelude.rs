//! Rust code evaluated once when the engine starts: the `jupyter` module that cells use to
//! show rich output while they run (`display_data`), not only as their final value, and the
//! `rck_display` module that shows a cell's final value in one compile instead of two.
//!
//! evcxr shows a final value by first compiling `(value).evcxr_display();` and, when the type
//! has no such method (every number, string and vector), compiling the cell a second time with
//! `{:?}`. `rck_display` gives the common standard types an `evcxr_display` that prints exactly
//! what that second compile would. Types that have their own `evcxr_display` keep it (inherent
//! methods win), and types outside the list take evcxr's way as before, except that a type of
//! one's own that dereferences to a listed type (a newtype with `Deref`) shows its target.

/// The line that starts a display block on the runtime child's stdout:
/// `RCK_DISPLAY <mime> <line count>`, followed by exactly that many lines of content.
pub const DISPLAY_MARKER: &str = "RCK_DISPLAY";

/// The line that clears the cell's output: `RCK_CLEAR_OUTPUT wait` or `RCK_CLEAR_OUTPUT now`.
pub const CLEAR_MARKER: &str = "RCK_CLEAR_OUTPUT";

/// `rck_display` with its `evcxr_display` for the common standard types, printing `{:?}` as
/// evcxr's own fallback does. One blanket impl over a marker trait: cheaper to compile with
/// every cell than an impl with a body per type.
pub const DEBUG_DISPLAY_ON: &str = r#"
#[allow(dead_code)]
mod rck_display {
    use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
    pub trait DebugDisplay { fn evcxr_display(&self); }
    pub trait Listed {}
    impl<T: std::fmt::Debug + Listed + ?Sized> DebugDisplay for T {
        fn evcxr_display(&self) {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "EVCXR_BEGIN_CONTENT text/plain\n{:?}\nEVCXR_END_CONTENT\n", self);
            let _ = out.flush();
        }
    }
    impl Listed for () {} impl Listed for bool {} impl Listed for char {}
    impl Listed for str {} impl Listed for String {}
    impl Listed for i8 {} impl Listed for i16 {} impl Listed for i32 {} impl Listed for i64 {}
    impl Listed for i128 {} impl Listed for isize {} impl Listed for u8 {} impl Listed for u16 {}
    impl Listed for u32 {} impl Listed for u64 {} impl Listed for u128 {} impl Listed for usize {}
    impl Listed for f32 {} impl Listed for f64 {} impl Listed for std::time::Duration {}
    impl Listed for std::path::Path {} impl Listed for std::path::PathBuf {}
    impl<T> Listed for [T] {} impl<T, const N: usize> Listed for [T; N] {}
    impl<T> Listed for Vec<T> {} impl<T> Listed for VecDeque<T> {}
    impl<T> Listed for Option<T> {} impl<T, E> Listed for Result<T, E> {}
    impl<T> Listed for std::ops::Range<T> {} impl<T> Listed for std::ops::RangeInclusive<T> {}
    impl<K, V, S> Listed for HashMap<K, V, S> {} impl<K, V> Listed for BTreeMap<K, V> {}
    impl<T, S> Listed for HashSet<T, S> {} impl<T> Listed for BTreeSet<T> {}
    impl<A, B> Listed for (A, B) {} impl<A, B, C> Listed for (A, B, C) {}
    impl<A, B, C, D> Listed for (A, B, C, D) {}
}
"#;

/// `rck_display` without any `evcxr_display`: evcxr's own way, needed while `:fmt` or `:types`
/// ask for another format than `{:?}`.
pub const DEBUG_DISPLAY_OFF: &str = r#"
#[allow(dead_code)]
mod rck_display {
    pub trait DebugDisplay {}
}
"#;

/// A variable of the prelude: storing it makes rust-analyzer's first type inference and the
/// code of evcxr's variable store part of the warm-up, not of the user's first `let` (evcxr's
/// `:vars` lists it; the kernel's reports leave it out).
pub const WARM_VARIABLE: &str = "_rck_engine_warm";

/// The prelude's source. Items defined here persist like any cell's; it ends by storing
/// [`WARM_VARIABLE`].
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
use rck_display::DebugDisplay as _;
let _rck_engine_warm = ();
"#;

#[cfg(test)]
mod tests {
    #[test]
    fn the_prelude_stores_the_warm_variable() {
        assert!(super::PRELUDE.contains(&format!("let {} = ();", super::WARM_VARIABLE)));
    }
}
