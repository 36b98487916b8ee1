//! Work for rust-analyzer while the engine is idle after start.
//!
//! evcxr asks rust-analyzer for the type of every new variable. The first time a cell uses
//! iterator adaptors, `collect`, `sum`, maps or `format!`, rust-analyzer learns those parts of
//! std, which takes a few hundred milliseconds per cell. The primer asks for completions on
//! small snippets of such everyday code, one at a time and only while no cell waits, so that
//! this learning happens while the user reads the notebook. Until the first request arrives the
//! steps follow each other at once (the first, 0.8 s, starts rust-analyzer's completion engine,
//! which also spares the user's first Tab that wait); once requests have come, each step waits
//! for [`IDLE_BEFORE_STEP`] of quiet. A cell that arrives during a step waits for that step only
//! (0.1 to 0.8 s). Completions change no state.

use std::time::Duration;

/// How long the engine must have been idle before the primer takes a step after the first.
/// Cells of "Run All" come milliseconds apart, a user's Shift-Enter a fraction of a second
/// apart; a cell that arrives during a step waits for it (about 0.1 s).
const IDLE_BEFORE_STEP: Duration = Duration::from_secs(1);

/// Snippets of everyday std code, each ending where a completion is asked for.
const SNIPPETS: [&str; 4] = [
    "let xs: Vec<f64> = (0..10).map(|i| i as f64 * 0.5).filter(|x| *x > 1.0).collect();\nxs.",
    "let total: f64 = [1.0f64, 2.5].iter().sum();\nlet top = [3u32, 4].iter().copied().max();\nlet pairs: Vec<(usize, char)> = \"ab\".chars().enumerate().collect();\ntotal.",
    "let words: Vec<String> = \"a b\".split_whitespace().map(String::from).collect();\nlet mut counts = std::collections::HashMap::new();\nfor w in &words { *counts.entry(w.clone()).or_insert(0usize) += 1; }\ncounts.",
    "let ps = vec![(1.0f64, 2.0f64)];\nlet s = ps.iter().map(|p| p.0 * p.1).fold(0.0, |a, b| a + b);\nlet text = format!(\"{s:.1} {}\", ps.len());\nlet mut sorted = ps.clone(); sorted.sort_by(|a, b| a.0.total_cmp(&b.0));\ntext.",
];

/// The snippets not yet given to rust-analyzer.
#[derive(Default)]
pub struct Primer {
    next: usize,
    /// Whether a request came since the warm-up: from then on every step waits for quiet.
    requested: bool,
}

impl Primer {
    /// How long the engine should wait for a request before the next step; `None` once all
    /// steps are done.
    pub fn idle_before_next(&self) -> Option<Duration> {
        match self.next {
            n if n >= SNIPPETS.len() => None,
            _ if !self.requested => Some(Duration::ZERO),
            _ => Some(IDLE_BEFORE_STEP),
        }
    }

    /// Notes that the engine handled a request: the next cell may follow in milliseconds.
    pub fn request_handled(&mut self) {
        self.requested = true;
    }

    /// Gives rust-analyzer the next snippet, if any is left.
    pub fn step(&mut self, ctx: &mut evcxr::CommandContext) {
        let Some(code) = SNIPPETS.get(self.next) else {
            return;
        };
        self.next += 1;
        let started = std::time::Instant::now();
        if let Err(e) = ctx.completions(code, code.len()) {
            tracing::debug!("primer snippet {} gave no completions: {e}", self.next);
        }
        tracing::debug!("primer snippet {} took {:?}", self.next, started.elapsed());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_follow_each_other_until_a_request_comes_then_wait_for_quiet() {
        let mut primer = Primer::default();
        assert_eq!(primer.idle_before_next(), Some(Duration::ZERO));
        primer.next = 2;
        assert_eq!(
            primer.idle_before_next(),
            Some(Duration::ZERO),
            "no request yet"
        );
        primer.next = 0;
        primer.request_handled();
        assert_eq!(
            primer.idle_before_next(),
            Some(IDLE_BEFORE_STEP),
            "a cell came first"
        );
        primer.next = 1;
        assert_eq!(primer.idle_before_next(), Some(IDLE_BEFORE_STEP));
        primer.next = SNIPPETS.len();
        assert_eq!(primer.idle_before_next(), None);
    }

    #[test]
    fn every_snippet_ends_where_a_method_is_completed() {
        for snippet in SNIPPETS {
            assert!(snippet.ends_with('.'), "{snippet}");
            assert_eq!(snippet.matches('(').count(), snippet.matches(')').count());
        }
    }
}
