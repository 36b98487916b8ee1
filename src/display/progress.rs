//! The progress line of `%cluster wait` and `%cluster up --wait`: "workers joined 3/5" with a
//! bar. The caller shows the first bundle with a display id and sends each later one as an
//! update of that display, so the line changes in place.

use std::time::Duration;

use askama::Template;
use dask_slurm::model::ClusterView;

use super::format::{percent, text_bar};
use super::{html_bundle, Bundle, Tone};

/// Where a wait for workers stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitPhase {
    /// Still waiting.
    Waiting,
    /// Enough workers have joined.
    Reached,
    /// The timeout ran out first.
    TimedOut,
    /// The user interrupted the wait (the cluster keeps running).
    Interrupted,
    /// The cluster ended or failed while we waited.
    ClusterEnded,
}

/// One snapshot of a wait for workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitProgress<'a> {
    /// The cluster's name.
    pub cluster: &'a str,
    /// Workers that have joined so far.
    pub joined: u32,
    /// Workers waited for.
    pub target: u32,
    /// Time spent waiting so far.
    pub waited: Duration,
    /// Where the wait stands.
    pub phase: WaitPhase,
}

impl<'a> WaitProgress<'a> {
    /// The progress of a wait for `target` workers, read from a view of the cluster.
    pub fn from_view(
        view: &'a ClusterView,
        target: u32,
        waited: Duration,
        phase: WaitPhase,
    ) -> Self {
        let joined = view.scheduler.as_ref().map_or(0, |s| s.workers.len());
        WaitProgress {
            cluster: &view.name,
            joined: u32::try_from(joined).unwrap_or(u32::MAX),
            target,
            waited,
            phase,
        }
    }
}

/// The progress line as HTML (a bar) with a one-line text twin.
///
/// ```
/// use std::time::Duration;
/// use rust_cluster_kernel::display::progress::{wait_progress, WaitPhase, WaitProgress};
///
/// let bundle = wait_progress(&WaitProgress {
///     cluster: "demo",
///     joined: 3,
///     target: 5,
///     waited: Duration::from_secs(12),
///     phase: WaitPhase::Waiting,
/// });
/// assert_eq!(
///     bundle.data["text/plain"],
///     "demo: workers joined 3/5 [############--------]  60%  waiting, 12 s"
/// );
/// ```
pub fn wait_progress(progress: &WaitProgress<'_>) -> Bundle {
    let percent = percent(progress.joined, progress.target);
    let (phase, tone) = match progress.phase {
        WaitPhase::Waiting => ("waiting", Tone::Brand),
        WaitPhase::Reached => ("done", Tone::Success),
        WaitPhase::TimedOut => ("timed out", Tone::Warn),
        WaitPhase::Interrupted => ("interrupted; the cluster keeps running", Tone::Warn),
        WaitPhase::ClusterEnded => ("the cluster ended", Tone::Error),
    };
    let waited = waited_words(progress.waited);
    let text = format!(
        "{}: workers joined {}/{} {} {:>3}%  {phase}, {waited}",
        progress.cluster,
        progress.joined,
        progress.target,
        text_bar(percent, 20),
        percent
    );
    let html = ProgressHtml {
        cluster: progress.cluster,
        joined: progress.joined,
        target: progress.target,
        percent,
        tone: tone.css_class(),
        phase,
        waited: &waited,
    };
    html_bundle("progress line", html.render(), text)
}

/// `12 s`, `3 min 05 s`, `1 h 02 min`.
fn waited_words(waited: Duration) -> String {
    let s = waited.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
    }
}

#[derive(Template)]
#[template(path = "progress.html")]
struct ProgressHtml<'a> {
    cluster: &'a str,
    joined: u32,
    target: u32,
    percent: u32,
    tone: &'static str,
    phase: &'static str,
    waited: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waited_time_reads_naturally() {
        assert_eq!(waited_words(Duration::from_millis(900)), "0 s");
        assert_eq!(waited_words(Duration::from_secs(185)), "3 min 05 s");
        assert_eq!(waited_words(Duration::from_secs(3720)), "1 h 02 min");
    }
}
