//! The cluster card: everything about one cluster in one glance, shown by `%cluster up`,
//! `%cluster status`, `grow`, `shrink`, `cancel`, `attach`, and updated in place whenever the
//! poller sees a change.
//!
//! The card is built in two steps: [`CardModel`] turns a [`ClusterView`] into display values
//! (sorted, summarised, in human units), then the `card.html` template and [`CardModel::text`]
//! render the same values as HTML and as the `text/plain` twin, so the two never disagree.
//!
//! The head says how clients authenticate: "mutual TLS" (a badge in the success tone) for a
//! cluster whose scheduler demands a certificate of its own CA, or "no TLS" (warning tone) with a
//! line saying what that means, for a plain `tcp://` cluster (`--insecure`, `security = "none"`,
//! an attached `tcp://` scheduler, or one started before TLS existed).
//!
//! Big clusters are summarised: per-host counts (at most [`LIST_LIMIT`] hosts) and at most
//! [`LIST_LIMIT`] workers, each list followed by an "and N more" line, so a card for 1000
//! workers stays small (see `bench/card_render.rs`).

use std::collections::HashMap;
use std::time::Duration;

use askama::Template;
use dask_slurm::model::{
    allocation_job_of, AdaptView, Backend, ClusterState, ClusterView, JobRole, JobView, WorkerView,
};
use dask_slurm::slurm;

use super::dashboard::ServedLink;
use super::format::{
    and_more, human_bytes, human_slurm_time, human_time, natural_cmp, percent, plural, safe_href,
    text_bar, text_columns, TextAlign,
};
use super::table::{Cell, Column, Table};
use super::{html_bundle, Bundle, Tone};
use crate::jupyter_server::DashboardLink;

/// How many hosts and how many workers a card lists by name before it says "and N more".
pub const LIST_LIMIT: usize = 20;

/// What the card of a cluster without TLS says.
pub const INSECURE_WARNING: &str =
    "no TLS: anyone on the network who can reach this scheduler can run code as you \
     (started with --insecure or security = \"none\").";

/// How many lines of an error's detail (usually a log tail) a card shows; the rest is one
/// `%cluster logs` away.
pub const ERROR_DETAIL_LINES: usize = 40;

/// The card of one cluster, as HTML with its `text/plain` twin; with `link`, the dashboard
/// through the Jupyter server instead of the ssh tunnel.
///
/// ```
/// use dask_slurm::model::{Backend, ClusterState, ClusterView};
/// use rust_cluster_kernel::display::card::cluster_card;
///
/// let view = ClusterView {
///     name: "demo".into(),
///     backend: Backend::Slurm,
///     state: ClusterState::Pending,
///     jobs: vec![],
///     scheduler: None,
///     scheduler_file: "/home/alice/.dask/demo.json".into(),
///     workers_expected: 4,
///     dashboard: None,
///     last_error: None,
///     tls: None,
///     python_env: None,
///     notice: None,
///     adapt: None,
///     updated_at: "2026-05-01T14:03:22+02:00".into(),
/// };
/// let card = cluster_card(&view, None);
/// assert!(card.data["text/html"].as_str().unwrap().contains("pending"));
/// let text = card.data["text/plain"].as_str().unwrap();
/// assert!(text.starts_with("demo  [pending]  SLURM  no TLS"));
/// ```
pub fn cluster_card(view: &ClusterView, link: Option<&DashboardLink>) -> Bundle {
    let mut model = CardModel::new(view);
    model.served_dashboard = link.map(ServedLink::new);
    html_bundle("cluster card", model.render(), model.text())
}

/// The display values of one card: what both the HTML template and the text twin show.
#[derive(Template)]
#[template(path = "card.html")]
pub(crate) struct CardModel<'a> {
    name: &'a str,
    /// `rck-tone-*` of the cluster state.
    tone: &'static str,
    /// The state word on the badge.
    state: &'static str,
    backend: String,
    /// How the cluster adapts, when it does.
    adapt: Option<AdaptLine>,
    /// The security badge: "mutual TLS" or "no TLS".
    security: &'static str,
    /// `rck-tone-*` of the security badge.
    security_tone: &'static str,
    /// What the badge means (its tooltip).
    security_title: &'static str,
    /// For a cluster without TLS: what anyone on the network can do.
    insecure_warning: Option<&'static str>,
    /// When the scheduler's job nears its time limit: that the cluster ends with it.
    walltime_warning: Option<String>,
    /// A warning of the manager's that does not end the cluster (workers that do not join).
    notice: Option<ErrorText<'a>>,
    /// `updated_at` as given, for `<time datetime>`.
    updated_raw: &'a str,
    /// `updated_at` for people.
    updated: String,
    error: Option<ErrorText<'a>>,
    /// What the state means while there is no scheduler to show (or while cancelling).
    note: Option<&'static str>,
    /// Whether to show workers joined / expected: not for an ended cluster without workers.
    show_meter: bool,
    joined: usize,
    expected: u32,
    percent: u32,
    /// `rck-tone-*` of the workers bar: brand while joining, success when complete.
    bar_tone: &'static str,
    threads: u64,
    memory: String,
    memory_used: Option<String>,
    scheduler: Option<&'a str>,
    dashboard: Option<DashboardLinks<'a>>,
    /// The dashboard through the Jupyter server; when set, the card shows it instead of the
    /// ssh tunnel.
    served_dashboard: Option<ServedLink<'a>>,
    scheduler_file: &'a str,
    jobs: Vec<JobRow<'a>>,
    /// Workers per host, at most [`LIST_LIMIT`] hosts, in natural order.
    hosts: Vec<HostCount<'a>>,
    host_count: usize,
    /// "and N more hosts (M workers)" when hosts were left out.
    hosts_more: Option<String>,
    /// At most [`LIST_LIMIT`] workers, in natural order of their names.
    workers: Vec<WorkerRow<'a>>,
    /// "and N more workers" when workers were left out.
    workers_more: Option<String>,
}

/// The last error: its first line as a headline, the rest (a log tail) as preformatted text.
struct ErrorText<'a> {
    headline: &'a str,
    detail: String,
}

/// The dashboard as links: the `href`s are only set for `http(s)` URLs.
struct DashboardLinks<'a> {
    url: &'a str,
    href: Option<&'a str>,
    local_url: &'a str,
    local_href: Option<&'a str>,
    ssh: &'a str,
}

/// One row of the jobs table.
struct JobRow<'a> {
    id: &'a str,
    role: &'static str,
    state: &'a str,
    tone: &'static str,
    node_count: u32,
    nodes: &'a str,
    time: String,
    note: String,
}

/// Workers on one host.
struct HostCount<'a> {
    host: &'a str,
    workers: usize,
}

/// One row of the workers table.
struct WorkerRow<'a> {
    name: &'a str,
    host: &'a str,
    address: &'a str,
    threads: u32,
    memory: String,
}

impl<'a> CardModel<'a> {
    /// Summarises a view for display.
    pub(crate) fn new(view: &'a ClusterView) -> Self {
        let workers: &[WorkerView] = view
            .scheduler
            .as_ref()
            .map_or(&[], |s| s.workers.as_slice());
        let joined = workers.len();
        let joined_u32 = u32::try_from(joined).unwrap_or(u32::MAX);
        let percent = percent(joined_u32, view.workers_expected);
        let complete = joined > 0 && joined_u32 >= view.workers_expected;

        let (threads, memory_total, memory_used) =
            view.scheduler.as_ref().map_or((0, 0, None), |s| {
                let used = workers
                    .iter()
                    .filter_map(|w| w.memory_used)
                    .reduce(u64::saturating_add);
                (s.total_threads(), s.total_memory(), used)
            });

        let (hosts, host_count, hosts_more) = host_counts(workers);
        let protected = view.tls.is_some();
        let (worker_rows, workers_more) = worker_rows(workers);

        CardModel {
            name: &view.name,
            tone: Tone::of_cluster(view.state).css_class(),
            state: state_word(view.state),
            backend: place_words(view),
            adapt: view.adapt.as_ref().and_then(AdaptLine::new),
            security: security_word(protected),
            security_tone: security_tone(protected).css_class(),
            security_title: if protected {
                "Every connection to the scheduler and workers is encrypted, and only holders of \
                 a certificate of this cluster's own CA can connect."
            } else {
                "Plain TCP without authentication."
            },
            insecure_warning: (!protected).then_some(INSECURE_WARNING),
            walltime_warning: walltime_warning(view),
            notice: view.notice.as_deref().and_then(split_error),
            updated_raw: &view.updated_at,
            updated: human_time(&view.updated_at),
            error: view.last_error.as_deref().and_then(split_error),
            note: state_note(view),
            show_meter: view.scheduler.is_some()
                || !matches!(view.state, ClusterState::Finished | ClusterState::Failed),
            joined,
            expected: view.workers_expected,
            percent,
            bar_tone: if complete {
                Tone::Success.css_class()
            } else {
                Tone::Brand.css_class()
            },
            threads,
            memory: human_bytes(memory_total),
            memory_used: memory_used.map(human_bytes),
            scheduler: view.scheduler.as_ref().map(|s| s.address.as_str()),
            dashboard: view.dashboard.as_ref().map(|d| DashboardLinks {
                url: &d.url,
                href: safe_href(&d.url),
                local_url: &d.local_url,
                local_href: safe_href(&d.local_url),
                ssh: &d.ssh_command,
            }),
            served_dashboard: None,
            scheduler_file: &view.scheduler_file,
            jobs: view.jobs.iter().map(JobRow::new).collect(),
            hosts,
            host_count,
            hosts_more,
            workers: worker_rows,
            workers_more,
        }
    }

    /// The `text/plain` twin: a compact, aligned summary for a terminal.
    pub(crate) fn text(&self) -> String {
        let mut out = format!(
            "{}  [{}]  {}  {}  updated {}\n",
            self.name, self.state, self.backend, self.security, self.updated
        );
        if let Some(warning) = self.insecure_warning {
            out.push_str(&format!("WARNING: {warning}\n"));
        }
        if let Some(warning) = &self.walltime_warning {
            out.push_str(&format!("WARNING: {warning}\n"));
        }
        if let Some(notice) = &self.notice {
            out.push_str(&format!("WARNING: {}\n", notice.headline));
            for line in notice.detail.lines() {
                out.push_str(&format!("  | {line}\n"));
            }
        }
        if let Some(error) = &self.error {
            out.push_str(&format!("ERROR: {}\n", error.headline));
            for line in error.detail.lines() {
                out.push_str(&format!("  | {line}\n"));
            }
        }
        if let Some(note) = self.note {
            out.push_str(note);
            out.push('\n');
        }

        let mut facts = Vec::new();
        if self.show_meter {
            let mut workers = format!(
                "{}/{}  {} {:>3}%",
                self.joined,
                self.expected,
                text_bar(self.percent, 20),
                self.percent
            );
            if self.scheduler.is_some() {
                workers.push_str(&format!("  {} threads  {}", self.threads, self.memory));
                if let Some(used) = &self.memory_used {
                    workers.push_str(&format!(" ({used} in use)"));
                }
            }
            facts.push(vec!["workers".to_owned(), workers]);
        }
        if let Some(address) = self.scheduler {
            facts.push(vec!["scheduler".to_owned(), address.to_owned()]);
        }
        match (&self.served_dashboard, &self.dashboard) {
            (Some(link), d) => {
                facts.push(vec!["dashboard".to_owned(), link.url.to_owned()]);
                facts.push(vec![String::new(), link.how.clone()]);
                if let Some(d) = d {
                    facts.push(vec!["on the cluster".to_owned(), d.url.to_owned()]);
                }
            }
            (None, Some(d)) => {
                facts.push(vec!["dashboard".to_owned(), d.url.to_owned()]);
                facts.push(vec!["ssh tunnel".to_owned(), d.ssh.to_owned()]);
                facts.push(vec![String::new(), format!("then open {}", d.local_url)]);
            }
            (None, None) => {}
        }
        facts.push(vec![
            "scheduler file".to_owned(),
            self.scheduler_file.to_owned(),
        ]);
        if !self.hosts.is_empty() {
            let mut items: Vec<String> = self
                .hosts
                .iter()
                .map(|h| format!("{} ×{}", h.host, h.workers))
                .collect();
            items.extend(self.hosts_more.clone());
            for (i, line) in wrap_list(&items, HOSTS_LINE_WIDTH).into_iter().enumerate() {
                let label = if i == 0 { "hosts" } else { "" };
                facts.push(vec![label.to_owned(), line]);
            }
        }
        if let Some(a) = &self.adapt {
            facts.push(vec!["adapting".to_owned(), a.summary.clone()]);
            if let Some(last) = &a.last {
                facts.push(vec![String::new(), format!("last: {last}")]);
            }
        }
        out.push_str(&text_columns(&facts, &[TextAlign::Left], ""));

        if self.jobs.is_empty() {
            out.push_str("jobs: none yet\n");
        } else {
            let mut jobs = Table::new(
                "jobs:",
                [
                    Column::left("JOB"),
                    Column::left("ROLE"),
                    Column::left("STATE"),
                    Column::right("NODES"),
                    Column::left("NODE LIST"),
                    Column::right("ELAPSED / LIMIT"),
                    Column::left("REASON / START"),
                ],
            );
            for j in &self.jobs {
                jobs.push([
                    Cell::text(j.id),
                    Cell::text(j.role),
                    Cell::text(j.state),
                    Cell::text(j.node_count.to_string()),
                    Cell::text(j.nodes),
                    Cell::text(j.time.clone()),
                    Cell::text(j.note.clone()),
                ]);
            }
            out.push_str(&jobs.text_indented("  "));
            out.push('\n');
        }

        if !self.workers.is_empty() {
            let mut workers = Table::new(
                "workers:",
                [
                    Column::left("NAME"),
                    Column::left("HOST"),
                    Column::left("ADDRESS"),
                    Column::right("THREADS"),
                    Column::right("MEMORY"),
                ],
            );
            for w in &self.workers {
                workers.push([
                    Cell::text(w.name),
                    Cell::text(w.host),
                    Cell::text(w.address),
                    Cell::text(w.threads.to_string()),
                    Cell::text(w.memory.clone()),
                ]);
            }
            if let Some(more) = &self.workers_more {
                workers = workers.footer(more.clone());
            }
            out.push_str(&workers.text_indented("  "));
        }
        out.truncate(out.trim_end().len());
        out
    }
}

impl<'a> JobRow<'a> {
    fn new(job: &'a JobView) -> Self {
        let elapsed = if job.elapsed.is_empty() {
            "—"
        } else {
            job.elapsed.as_str()
        };
        let time = match (job.time_limit.is_empty(), time_left(job)) {
            (true, _) => elapsed.to_owned(),
            (false, Some(left)) => format!(
                "{elapsed} / {} · {} left",
                job.time_limit,
                human_duration(left)
            ),
            (false, None) => format!("{elapsed} / {}", job.time_limit),
        };
        // squeue says `None` as the reason of a running job, and `N/A` for an unknown start.
        let reason = job
            .reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty() && *r != "None");
        let start = job
            .estimated_start
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty() && *s != "N/A" && *s != "Unknown");
        let note = match (reason, start) {
            (Some(r), Some(s)) => format!("{r} · start ≈ {}", human_slurm_time(s)),
            (Some(r), None) => r.to_owned(),
            (None, Some(s)) => format!("start ≈ {}", human_slurm_time(s)),
            (None, None) => String::new(),
        };
        JobRow {
            id: &job.id,
            role: role_word(job.role),
            state: job.state.as_str(),
            tone: Tone::of_job(&job.state).css_class(),
            node_count: job.node_count,
            nodes: if job.nodes.is_empty() {
                "—"
            } else {
                &job.nodes
            },
            time,
            note,
        }
    }
}

/// How wide the hosts list of the text twin may grow before it wraps.
const HOSTS_LINE_WIDTH: usize = 72;

/// Joins items with ", " into lines of at most `width` characters (an item longer than that
/// gets a line of its own).
fn wrap_list(items: &[String], width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for (i, item) in items.iter().enumerate() {
        let piece = if i + 1 < items.len() {
            format!("{item},")
        } else {
            item.clone()
        };
        if !line.is_empty() && line.chars().count() + 1 + piece.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&piece);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Counts workers per host: the first [`LIST_LIMIT`] hosts in natural order, the number of
/// hosts, and a line for the rest.
fn host_counts(workers: &[WorkerView]) -> (Vec<HostCount<'_>>, usize, Option<String>) {
    let mut per_host: HashMap<&str, usize> = HashMap::new();
    for w in workers {
        *per_host.entry(w.host.as_str()).or_default() += 1;
    }
    let mut hosts: Vec<HostCount<'_>> = per_host
        .into_iter()
        .map(|(host, workers)| HostCount { host, workers })
        .collect();
    hosts.sort_by(|a, b| natural_cmp(a.host, b.host));
    let host_count = hosts.len();
    let more = (host_count > LIST_LIMIT).then(|| {
        let rest = &hosts[LIST_LIMIT..];
        let rest_workers: usize = rest.iter().map(|h| h.workers).sum();
        format!(
            "{} ({})",
            and_more(rest.len(), "host", "hosts"),
            plural(rest_workers, "worker", "workers")
        )
    });
    hosts.truncate(LIST_LIMIT);
    (hosts, host_count, more)
}

/// The first [`LIST_LIMIT`] workers in natural order of their names, and a line for the rest.
fn worker_rows(workers: &[WorkerView]) -> (Vec<WorkerRow<'_>>, Option<String>) {
    let mut sorted: Vec<&WorkerView> = workers.iter().collect();
    sorted.sort_by(|a, b| natural_cmp(&a.name, &b.name).then_with(|| a.address.cmp(&b.address)));
    let more = (sorted.len() > LIST_LIMIT)
        .then(|| and_more(sorted.len() - LIST_LIMIT, "worker", "workers"));
    let rows = sorted
        .into_iter()
        .take(LIST_LIMIT)
        .map(|w| WorkerRow {
            name: &w.name,
            host: &w.host,
            address: &w.address,
            threads: w.nthreads,
            memory: match w.memory_used {
                Some(used) => format!("{} / {}", human_bytes(used), human_bytes(w.memory_limit)),
                None => human_bytes(w.memory_limit),
            },
        })
        .collect();
    (rows, more)
}

/// Splits an error into its first non-empty line and the rest, keeping the last
/// [`ERROR_DETAIL_LINES`] lines of the rest. `None` for an error that is only whitespace.
fn split_error(error: &str) -> Option<ErrorText<'_>> {
    let error = error.trim_start_matches(['\n', '\r']).trim_end();
    if error.trim().is_empty() {
        return None;
    }
    let (headline, rest) = error.split_once('\n').unwrap_or((error, ""));
    let lines: Vec<&str> = rest.trim_start_matches(['\n', '\r']).lines().collect();
    let skipped = lines.len().saturating_sub(ERROR_DETAIL_LINES);
    let mut detail = String::new();
    if skipped > 0 {
        detail.push_str(&format!(
            "… {} not shown (%cluster logs has them)\n",
            plural(skipped, "earlier line", "earlier lines")
        ));
    }
    detail.push_str(&lines[skipped..].join("\n"));
    Some(ErrorText {
        headline: headline.trim(),
        detail,
    })
}

/// What a state means when the card has little else to say.
fn state_note(view: &ClusterView) -> Option<&'static str> {
    match view.state {
        ClusterState::Pending => {
            Some("Waiting in the queue; this card updates by itself when the job starts.")
        }
        ClusterState::Starting if view.scheduler.is_none() => {
            Some("The job runs; waiting for the Dask scheduler to write its file and answer.")
        }
        ClusterState::Running if view.scheduler.is_none() => {
            Some("The scheduler did not answer the last poll.")
        }
        ClusterState::Starting | ClusterState::Running => None,
        ClusterState::Cancelling => {
            Some("Cancelling: the scheduler is shutting down and the jobs are ending.")
        }
        ClusterState::Finished => Some("The cluster has ended; its nodes are released."),
        ClusterState::Failed if view.last_error.is_none() => {
            Some("The cluster failed; %cluster logs shows its jobs' output.")
        }
        ClusterState::Failed => None,
    }
}

/// The word on a cluster's state badge.
pub(crate) fn state_word(state: ClusterState) -> &'static str {
    match state {
        ClusterState::Pending => "pending",
        ClusterState::Starting => "starting",
        ClusterState::Running => "running",
        ClusterState::Cancelling => "cancelling",
        ClusterState::Finished => "finished",
        ClusterState::Failed => "failed",
    }
}

/// The security badge: "mutual TLS" for a cluster whose clients present a certificate of its
/// CA, "no TLS" for a plain `tcp://` one.
pub(crate) fn security_word(protected: bool) -> &'static str {
    if protected {
        "mutual TLS"
    } else {
        "no TLS"
    }
}

/// The tone of the security badge: success when protected, a warning when not.
pub(crate) fn security_tone(protected: bool) -> Tone {
    if protected {
        Tone::Success
    } else {
        Tone::Warn
    }
}

/// The card's adapting line: "0–2 grow jobs · target 7 workers · 1 running, 1 queued".
pub(crate) struct AdaptLine {
    summary: String,
    /// The last decision and why.
    last: Option<String>,
}

impl AdaptLine {
    /// The line of a cluster that adapts (`None` when its policy is off).
    pub(crate) fn new(view: &AdaptView) -> Option<AdaptLine> {
        let policy = view.policy?;
        let mut summary = format!("{}–{} grow jobs", policy.min_jobs, policy.max_jobs);
        if let Some(target) = view.target {
            summary.push_str(&format!(" · target {target} workers"));
        }
        summary.push_str(&format!(
            " · {} running, {} queued",
            view.running_jobs, view.queued_jobs
        ));
        Some(AdaptLine {
            summary,
            last: view.last_decision.clone(),
        })
    }

    /// The whole line as text.
    pub(crate) fn text(&self) -> String {
        match &self.last {
            Some(last) => format!("adaptive {}\nlast decision: {last}", self.summary),
            None => format!("adaptive {}", self.summary),
        }
    }
}

/// How a backend is named on the card.
pub(crate) fn backend_word(backend: Backend) -> &'static str {
    match backend {
        Backend::Slurm => "SLURM",
        Backend::Local => "local",
        Backend::Allocation => "in allocation",
    }
}

/// Where the cluster lives, for the card's title line: the backend, and for a cluster in the
/// kernel's allocation the job and its nodes ("in job 1234, 2 nodes").
pub(crate) fn place_words(view: &ClusterView) -> String {
    let launch = view
        .jobs
        .iter()
        .find(|j| j.role == JobRole::Scheduler)
        .and_then(|j| Some((allocation_job_of(&j.id)?, j.node_count)));
    match (view.backend, launch) {
        (Backend::Allocation, Some((job, nodes))) if nodes > 0 => {
            format!(
                "in job {job}, {nodes} node{}",
                if nodes == 1 { "" } else { "s" }
            )
        }
        (Backend::Allocation, Some((job, _))) => format!("in job {job}"),
        (backend, _) => backend_word(backend).to_owned(),
    }
}

/// How a job's role is named on the card.
pub(crate) fn role_word(role: JobRole) -> &'static str {
    match role {
        JobRole::Scheduler => "scheduler",
        JobRole::Grow => "grow",
        JobRole::Batch => "batch",
    }
}

/// How long before the scheduler's job reaches its time limit the card warns that the cluster
/// ends with it.
const WALLTIME_WARNING: Duration = Duration::from_secs(10 * 60);

/// The time a running job has left before its limit, from squeue's elapsed time and limit (as
/// of the last poll).
fn time_left(job: &JobView) -> Option<Duration> {
    slurm::time_left(&job.state, &job.elapsed, &job.time_limit)
}

/// "The scheduler's job ends in 8 min: …" when it has [`WALLTIME_WARNING`] or less left.
fn walltime_warning(view: &ClusterView) -> Option<String> {
    let job = view.jobs.iter().find(|j| j.role == JobRole::Scheduler)?;
    let left = time_left(job).filter(|left| *left <= WALLTIME_WARNING)?;
    let whose = match allocation_job_of(&job.id) {
        Some(notebook_job) => format!("The notebook's own job {notebook_job}"),
        None => format!("The scheduler's job {}", job.id),
    };
    Some(format!(
        "{whose} ends in {} (its time limit): the cluster ends with it, and so do the results \
         its workers hold. Save what you need now.",
        human_duration(left)
    ))
}

/// `45 s`, `8 min`, `1 h 05 min`, `2 d 3 h`.
fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        3600..=86399 => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {} h", s / 86400, (s % 86400) / 3600),
    }
}
