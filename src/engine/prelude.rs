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

/// The prelude with the one-compile display on, as a session starts.
pub(super) fn prelude_code() -> String {
    format!("{DEBUG_DISPLAY_ON}{PRELUDE}")
}

/// Evaluates the prelude (again after `:clear`, which removes every item).
pub(super) fn run_prelude(ctx: &mut evcxr::CommandContext, format: &ValueFormat) {
    if let Err(e) = ctx.execute(&prelude_code()) {
        tracing::warn!("the jupyter prelude did not compile: {e}");
    }
    if !format.is_default() {
        switch_display(ctx, false);
    }
}

/// Turns the prelude's one-compile display on or off (see [`ValueFormat`]).
pub(super) fn switch_display(ctx: &mut evcxr::CommandContext, on: bool) {
    let module = if on {
        DEBUG_DISPLAY_ON
    } else {
        DEBUG_DISPLAY_OFF
    };
    if let Err(e) = ctx.execute(module) {
        tracing::warn!("could not switch the one-compile display: {e}");
    }
}

/// evcxr's `:fmt` and `:types` settings as the cells set them: the prelude's one-compile
/// display stands in for evcxr's own only while they ask for plain `{:?}`.
#[derive(Debug)]
pub(super) struct ValueFormat {
    format: String,
    types: bool,
}

/// What a cell's evcxr commands did to the prelude.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum FormatChange {
    /// `:clear` removed the prelude with every other item (the settings survive it).
    Cleared,
    /// Whether the format is now evcxr's default, `{:?}` without types (it was not before).
    Default(bool),
}

impl Default for ValueFormat {
    fn default() -> Self {
        ValueFormat {
            format: "{:?}".to_owned(),
            types: false,
        }
    }
}

impl ValueFormat {
    /// Whether values print as evcxr's default, `{:?}` without types.
    pub(super) fn is_default(&self) -> bool {
        self.format == "{:?}" && !self.types
    }

    /// Follows the `:fmt`, `:types` and `:clear` lines of a cell that ran.
    pub(super) fn observe(&mut self, code: &str) -> Option<FormatChange> {
        let was_default = self.is_default();
        let mut cleared = false;
        for line in code.lines().map(str::trim) {
            let mut words = line.splitn(2, char::is_whitespace);
            match words.next() {
                Some(":fmt") => {
                    self.format = words.next().map(str::trim).unwrap_or("{:?}").to_owned();
                }
                Some(":types") => self.types = !self.types,
                Some(":clear") => cleared = true,
                _ => {}
            }
        }
        if cleared {
            return Some(FormatChange::Cleared);
        }
        (self.is_default() != was_default).then(|| FormatChange::Default(self.is_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prelude_ends_by_storing_the_warm_variable() {
        let last = PRELUDE.trim_end().lines().last().unwrap();
        assert_eq!(last, format!("let {WARM_VARIABLE} = ();"));
    }

    #[test]
    fn the_prelude_writes_the_markers_the_stdout_parser_reads() {
        // The prelude is Rust source and cannot use the constants: its literal lines must agree.
        assert!(PRELUDE.contains(&format!(r#"writeln!(out, "{DISPLAY_MARKER} {{}} {{}}""#)));
        assert!(PRELUDE.contains(&format!(r#"writeln!(out, "{CLEAR_MARKER} {{}}""#)));
        assert!(PRELUDE.contains(r#"if wait { "wait" } else { "now" }"#));
    }

    #[test]
    fn one_compile_display_follows_fmt_and_types() {
        let mut format = ValueFormat::default();
        assert_eq!(format.observe("40 + 2"), None);
        assert_eq!(
            format.observe(":fmt {:#?}\nvec![1]"),
            Some(FormatChange::Default(false))
        );
        assert_eq!(format.observe(":types"), None, "still not the default");
        assert_eq!(format.observe(":fmt"), None, "types are still shown");
        assert_eq!(format.observe(":types"), Some(FormatChange::Default(true)));
        assert_eq!(format.observe(":clear"), Some(FormatChange::Cleared));
        assert!(format.is_default());
    }
}
