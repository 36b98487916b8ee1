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
/// evcxr's own fallback does.
pub const DEBUG_DISPLAY_ON: &str = r#"
#[allow(dead_code)]
mod rck_display {
    pub trait DebugDisplay { fn evcxr_display(&self); }
    fn send(text: String) {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "EVCXR_BEGIN_CONTENT text/plain\n{}\nEVCXR_END_CONTENT\n", text);
        let _ = out.flush();
    }
    macro_rules! debug_display {
        ($([$($generics:tt)*] $type:ty;)*) => {$(
            impl<$($generics)*> DebugDisplay for $type {
                fn evcxr_display(&self) { send(format!("{:?}", self)) }
            }
        )*};
    }
    use std::fmt::Debug;
    use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
    debug_display! {
        [] (); [] bool; [] char; [] str; [] String;
        [] i8; [] i16; [] i32; [] i64; [] i128; [] isize;
        [] u8; [] u16; [] u32; [] u64; [] u128; [] usize; [] f32; [] f64;
        [] std::time::Duration; [] std::path::Path; [] std::path::PathBuf;
        [T: Debug] [T]; [T: Debug, const N: usize] [T; N]; [T: Debug] Vec<T>; [T: Debug] VecDeque<T>;
        [T: Debug] Option<T>; [T: Debug, E: Debug] Result<T, E>;
        [T: Debug] std::ops::Range<T>; [T: Debug] std::ops::RangeInclusive<T>;
        [K: Debug, V: Debug, S] HashMap<K, V, S>; [K: Debug, V: Debug] BTreeMap<K, V>;
        [T: Debug, S] HashSet<T, S>; [T: Debug] BTreeSet<T>;
        [A: Debug, B: Debug] (A, B); [A: Debug, B: Debug, C: Debug] (A, B, C);
        [A: Debug, B: Debug, C: Debug, D: Debug] (A, B, C, D);
    }
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
use rck_display::DebugDisplay as _;
let _rck_engine_warm = ();
"#;
