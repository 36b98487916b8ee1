//! `%cluster logs`: for each job, a heading (job id, role, file) and the tail of its output.

use askama::Template;
use dask_slurm::model::JobRole;

use super::card::role_word;
use super::format::plural;
use super::{html_bundle, Bundle};

/// The tail of one job's output file, as the magic read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTail<'a> {
    /// The job id.
    pub job_id: &'a str,
    /// What the job does for the cluster, if it belongs to one.
    pub role: Option<JobRole>,
    /// The file the tail was read from (`slurm-JOBID.out`), if there is one.
    pub path: Option<&'a str>,
    /// The last lines of the file, newline-separated; empty when the job wrote nothing yet.
    pub text: &'a str,
}

/// The logs of a cluster's jobs: HTML headings with `<pre>` tails, and a text twin.
///
/// ```
/// use dask_slurm::model::JobRole;
/// use rust_cluster_kernel::display::logs::{job_logs, LogTail};
///
/// let bundle = job_logs("demo", &[LogTail {
///     job_id: "1234",
///     role: Some(JobRole::Scheduler),
///     path: Some("/home/alice/slurm-1234.out"),
///     text: "distributed.scheduler - INFO - Scheduler at: tcp://10.0.0.5:38211",
/// }]);
/// let text = bundle.data["text/plain"].as_str().unwrap();
/// assert!(text.starts_with("== job 1234 (scheduler): /home/alice/slurm-1234.out, last 1 line =="));
/// ```
pub fn job_logs(cluster: &str, tails: &[LogTail<'_>]) -> Bundle {
    let sections: Vec<Section<'_>> = tails.iter().map(Section::new).collect();
    let mut text = String::new();
    if sections.is_empty() {
        text.push_str(&format!("{cluster}: no job has a log yet."));
    }
    for (i, s) in sections.iter().enumerate() {
        if i > 0 {
            text.push('\n');
        }
        text.push_str(&format!("== {} ==\n", s.heading_text()));
        if s.body.is_empty() {
            text.push_str("(empty so far)\n");
        } else {
            text.push_str(s.body);
            text.push('\n');
        }
    }
    text.truncate(text.trim_end().len());
    let html = LogsHtml { cluster, sections };
    html_bundle("logs", html.render(), text)
}

#[derive(Template)]
#[template(path = "logs.html")]
struct LogsHtml<'a> {
    cluster: &'a str,
    sections: Vec<Section<'a>>,
}

/// One job's part of the output.
struct Section<'a> {
    job_id: &'a str,
    role: Option<&'static str>,
    path: Option<&'a str>,
    /// "last 40 lines"
    extent: String,
    body: &'a str,
}

impl<'a> Section<'a> {
    fn new(tail: &'a LogTail<'a>) -> Self {
        let body = tail.text.trim_end();
        Section {
            job_id: tail.job_id,
            role: tail.role.map(role_word),
            path: tail.path,
            extent: format!("last {}", plural(body.lines().count(), "line", "lines")),
            body,
        }
    }

    fn heading_text(&self) -> String {
        let mut h = format!("job {}", self.job_id);
        if let Some(role) = self.role {
            h.push_str(&format!(" ({role})"));
        }
        h.push_str(": ");
        h.push_str(self.path.unwrap_or("no log file"));
        if !self.body.is_empty() {
            h.push_str(&format!(", {}", self.extent));
        }
        h
    }
}
