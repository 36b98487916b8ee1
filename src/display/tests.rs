//! Tests of the display layer as a whole: escaping, text twins, the card in every state, the
//! summary of big clusters, and the HTML fixtures under `tests/fixtures/display/`.
//!
//! The fixtures are whole pages (the fragment in a stand-in for JupyterLab's light and dark
//! themes) that reviewers open in a browser and `tests/display/screenshots.sh` turns into
//! PNGs. They are snapshots: a test fails when the rendering differs from the committed page;
//! `RCK_UPDATE_FIXTURES=1` rewrites them.

use std::path::PathBuf;
use std::time::Duration;

use askama::Template;
use dask_slurm::model::{
    Backend, ClusterState, ClusterView, DashboardView, JobRole, JobState, JobView, SchedulerView,
    WorkerView,
};
use dask_slurm::tls::ClusterTls;

use super::card::{cluster_card, LIST_LIMIT};
use super::dashboard::dashboard;
use super::logs::{job_logs, LogTail};
use super::progress::{wait_progress, WaitPhase, WaitProgress};
use super::table::{cluster_list, Cell, Column, Table};
use super::Bundle;
use crate::jupyter_server::{DashboardLink, Route};

const HOSTILE: &str = "<script>alert(1)</script>\"'&";
const HOSTILE_ESCAPED: &str = "&#60;script&#62;alert(1)&#60;/script&#62;&#34;&#39;&#38;";
const GIB: u64 = 1 << 30;

fn html(bundle: &Bundle) -> &str {
    bundle.data["text/html"]
        .as_str()
        .expect("the bundle has text/html")
}

fn text(bundle: &Bundle) -> &str {
    bundle.data["text/plain"]
        .as_str()
        .expect("the bundle has text/plain")
}

fn job(id: &str, role: JobRole, state: &str, nodes: &str, node_count: u32) -> JobView {
    JobView {
        id: id.into(),
        role,
        state: JobState::parse(state),
        nodes: nodes.into(),
        node_count,
        elapsed: if state == "RUNNING" { "12:41" } else { "0:00" }.into(),
        time_limit: "30:00".into(),
        reason: None,
        estimated_start: None,
        workers_expected: 2 * node_count,
        log_path: Some(format!("/home/alice/dask/slurm-{id}.out")),
    }
}

/// `n` workers, two per host, 20 threads and 45 GiB each, named like dask-mpi names them.
fn workers(n: usize) -> Vec<WorkerView> {
    (0..n)
        .map(|i| {
            let host = format!("uc2n{:03}", i / 2 + 1);
            WorkerView {
                name: format!("demo-{}", i + 1),
                address: format!("tls://10.0.{}.{}:{}", i / 200, i % 200 + 10, 40000 + i),
                host,
                nthreads: 20,
                memory_limit: 45 * GIB,
                memory_used: Some(3 * GIB + (i as u64) * (1 << 20)),
            }
        })
        .collect()
}

/// A cluster of the workshop's shape in the given state, with `n` workers when it runs.
fn view(state: ClusterState, n: usize) -> ClusterView {
    let scheduler_job =
        |job_state: &str| job("4711", JobRole::Scheduler, job_state, "uc2n[001-002]", 2);
    let mut pending = job("4711", JobRole::Scheduler, "PENDING", "", 2);
    pending.reason = Some("Resources".into());
    pending.estimated_start = Some("2026-05-01T15:10:00".into());
    let (jobs, scheduler) = match state {
        ClusterState::Pending => (vec![pending], None),
        ClusterState::Starting => (vec![scheduler_job("RUNNING")], None),
        ClusterState::Running => {
            let mut grow = job("4712", JobRole::Grow, "PENDING", "", 2);
            grow.reason = Some("Priority".into());
            grow.estimated_start = Some("N/A".into());
            let mut running = scheduler_job("RUNNING");
            running.reason = Some("None".into());
            (vec![running, grow], Some(n))
        }
        ClusterState::Cancelling => (vec![scheduler_job("COMPLETING")], Some(n)),
        ClusterState::Finished => (vec![scheduler_job("CANCELLED by 1000")], None),
        ClusterState::Failed => (vec![scheduler_job("FAILED")], None),
    };
    let running = scheduler.is_some();
    ClusterView {
        name: "demo".into(),
        backend: Backend::Slurm,
        state,
        jobs,
        scheduler: scheduler.map(|n| SchedulerView {
            address: "tls://10.0.0.5:38211".into(),
            host: "uc2n001".into(),
            dashboard_port: 8787,
            workers: workers(n),
        }),
        scheduler_file: "/home/alice/.dask/demo/scheduler.json".into(),
        workers_expected: 4,
        dashboard: running.then(|| DashboardView {
            url: "http://uc2n001:8787/status".into(),
            local_url: "http://localhost:8787/status".into(),
            ssh_command: "ssh -N -L 8787:uc2n001:8787 alice@uc2.example.org".into(),
        }),
        last_error: (state == ClusterState::Failed).then(|| {
            "Job 4711 ended FAILED (exit code 1:0); the last lines of slurm-4711.out:\n\
             Traceback (most recent call last):\n  File \"/opt/venv/bin/dask-mpi\", line 8, in <module>\n\
             ModuleNotFoundError: No module named 'mpi4py'\n\
             --------------------------------------------------------------------------\n\
             mpirun detected that one or more processes exited with non-zero status"
                .into()
        }),
        tls: Some(ClusterTls::in_dir("/home/alice/.local/state/rust-cluster-kernel/demo/tls").client()),
        python_env: Some("/opt/venv".into()),
        notice: None,
        adapt: None,
        updated_at: "2026-05-01T14:03:22.481+02:00".into(),
    }
}

const STATES: [ClusterState; 6] = [
    ClusterState::Pending,
    ClusterState::Starting,
    ClusterState::Running,
    ClusterState::Cancelling,
    ClusterState::Finished,
    ClusterState::Failed,
];

/// One of each bundle this module makes, with hostile text wherever text comes from outside.
fn hostile_bundles() -> Vec<(&'static str, Bundle)> {
    let mut v = view(ClusterState::Failed, 0);
    v.name = HOSTILE.into();
    v.last_error = Some(format!("{HOSTILE}\n{HOSTILE}"));
    v.scheduler_file = HOSTILE.into();
    v.jobs[0].id = HOSTILE.into();
    v.jobs[0].state = JobState::Other(HOSTILE.into());
    v.jobs[0].nodes = HOSTILE.into();
    v.jobs[0].reason = Some(HOSTILE.into());
    v.updated_at = HOSTILE.into();
    let mut w = workers(1);
    w[0].name = HOSTILE.into();
    w[0].host = HOSTILE.into();
    w[0].address = HOSTILE.into();
    v.scheduler = Some(SchedulerView {
        address: HOSTILE.into(),
        host: HOSTILE.into(),
        dashboard_port: 8787,
        workers: w,
    });
    let board = DashboardView {
        url: format!("http://n1/{HOSTILE}"),
        local_url: HOSTILE.into(),
        ssh_command: HOSTILE.into(),
    };
    v.dashboard = Some(board.clone());

    let mut table =
        Table::new(HOSTILE, [Column::left(HOSTILE), Column::right(HOSTILE)]).footer(HOSTILE);
    table.push([Cell::code(HOSTILE), Cell::job_state(HOSTILE)]);
    table.push([Cell::link(HOSTILE, HOSTILE), Cell::text(HOSTILE)]);
    let empty = Table::new(HOSTILE, [Column::left(HOSTILE)]).empty_message(HOSTILE);

    vec![
        ("card", cluster_card(&v, None)),
        ("table", table.to_bundle()),
        ("empty table", empty.to_bundle()),
        ("cluster list", cluster_list(std::slice::from_ref(&v))),
        (
            "progress",
            wait_progress(&WaitProgress {
                cluster: HOSTILE,
                joined: 1,
                target: 2,
                waited: Duration::from_secs(3),
                phase: WaitPhase::Waiting,
            }),
        ),
        (
            "logs",
            job_logs(
                HOSTILE,
                &[LogTail {
                    job_id: HOSTILE,
                    role: Some(JobRole::Grow),
                    path: Some(HOSTILE),
                    text: HOSTILE,
                }],
            ),
        ),
        ("dashboard", dashboard(HOSTILE, &board, None)),
        ("card served", cluster_card(&v, Some(&hostile_link()))),
        (
            "dashboard served",
            dashboard(HOSTILE, &board, Some(&hostile_link())),
        ),
    ]
}

/// A dashboard link through the server whose URL is hostile text (with the panes button).
fn hostile_link() -> DashboardLink {
    DashboardLink {
        url: format!("/user/{HOSTILE}/proxy/8787/status"),
        route: Route::Relay { port: 40000 },
        lab_panes: true,
    }
}

#[test]
fn hostile_text_is_escaped_in_every_bundle() {
    for (what, bundle) in hostile_bundles() {
        let html = html(&bundle);
        assert!(!html.contains("<script"), "{what}: raw <script> in {html}");
        assert!(!html.contains("\"'&"), "{what}: raw quotes in {html}");
        assert!(
            html.contains(HOSTILE_ESCAPED),
            "{what}: the escaped text is missing from {html}"
        );
        assert!(
            text(&bundle).contains(HOSTILE),
            "{what}: the text twin shows the text as it is"
        );
    }
}

#[test]
fn a_link_through_the_server_replaces_the_ssh_tunnel() {
    let running = view(ClusterState::Running, 3);
    let board = running.dashboard.clone().unwrap();
    let mut link = DashboardLink {
        url: "/user/alice/proxy/uc2n001:8787/status".into(),
        route: Route::Proxy,
        lab_panes: false,
    };
    for bundle in [
        cluster_card(&running, Some(&link)),
        dashboard("demo", &board, Some(&link)),
    ] {
        let (html, text) = (html(&bundle), text(&bundle));
        assert!(
            html.contains(r#"href="/user/alice/proxy/uc2n001:8787/status""#),
            "{html}"
        );
        assert!(html.contains("through jupyter-server-proxy"), "{html}");
        assert!(
            !html.contains("ssh -N") && !text.contains("ssh -N"),
            "{text}"
        );
        assert!(
            text.contains("/user/alice/proxy/uc2n001:8787/status"),
            "{text}"
        );
        assert!(
            text.contains("http://uc2n001:8787/status"),
            "the cluster URL stays: {text}"
        );
        assert!(
            !html.contains("data-commandlinker-command"),
            "no panes without the extension"
        );
    }
    link.lab_panes = true;
    for bundle in [
        cluster_card(&running, Some(&link)),
        dashboard("demo", &board, Some(&link)),
    ] {
        let html = html(&bundle);
        assert!(
            html.contains(r#"data-commandlinker-command="dask:populate-and-launch-layout""#),
            "{html}"
        );
        assert!(
            html.contains(
                r#"data-commandlinker-args="{&#34;url&#34;:&#34;/user/alice/proxy/uc2n001:8787/status&#34;}""#
            ),
            "{html}"
        );
    }
}

#[test]
fn only_same_origin_paths_of_the_server_become_links() {
    let running = view(ClusterState::Running, 3);
    let board = running.dashboard.clone().unwrap();
    for url in [
        "//evil.example/proxy/1/status",
        "javascript:alert(1)",
        "/\\evil.example/x",
    ] {
        let link = DashboardLink {
            url: url.into(),
            route: Route::Proxy,
            lab_panes: false,
        };
        for bundle in [
            cluster_card(&running, Some(&link)),
            dashboard("demo", &board, Some(&link)),
        ] {
            let html = html(&bundle);
            assert!(
                !html.contains("href=\"//") && !html.contains("href=\"javascript"),
                "{html}"
            );
            assert!(!html.contains("href=\"/\\"), "{html}");
        }
    }
}

#[test]
fn only_http_urls_become_links() {
    let mut v = view(ClusterState::Running, 4);
    v.dashboard = Some(DashboardView {
        url: "javascript:alert(1)".into(),
        local_url: "data:text/html,<b>x</b>".into(),
        ssh_command: "ssh -N -L 8787:uc2n001:8787 alice@uc2.example.org".into(),
    });
    let board = v.dashboard.clone().unwrap();
    let mut table = Table::new("links", [Column::left("url")]);
    table.push([Cell::link("click", "javascript:alert(1)")]);
    for bundle in [
        cluster_card(&v, None),
        dashboard("demo", &board, None),
        cluster_list(&[v]),
        table.to_bundle(),
    ] {
        let html = html(&bundle);
        assert!(!html.contains("href=\"javascript"), "{html}");
        assert!(!html.contains("href=\"data"), "{html}");
        assert!(!html.contains("<a "), "{html}");
    }

    let running = view(ClusterState::Running, 4);
    let card = cluster_card(&running, None);
    assert!(html(&card).contains(
        r#"<a class="rck-link" href="http://uc2n001:8787/status" target="_blank" rel="noopener noreferrer">"#
    ));
    assert!(html(&card).contains(r#"href="http://localhost:8787/status""#));
}

#[test]
fn every_bundle_has_a_text_twin_and_html() {
    let mut bundles: Vec<(String, Bundle)> = hostile_bundles()
        .into_iter()
        .map(|(w, b)| (w.to_owned(), b))
        .collect();
    for state in STATES {
        bundles.push((
            format!("card {state:?}"),
            cluster_card(&view(state, 4), None),
        ));
    }
    for phase in [
        WaitPhase::Waiting,
        WaitPhase::Reached,
        WaitPhase::TimedOut,
        WaitPhase::Interrupted,
        WaitPhase::ClusterEnded,
    ] {
        let v = view(ClusterState::Running, 3);
        bundles.push((
            format!("progress {phase:?}"),
            wait_progress(&WaitProgress::from_view(
                &v,
                4,
                Duration::from_secs(75),
                phase,
            )),
        ));
    }
    bundles.push(("no logs".into(), job_logs("demo", &[])));
    bundles.push(("no clusters".into(), cluster_list(&[])));
    for (what, bundle) in bundles {
        let plain = text(&bundle);
        assert!(!plain.trim().is_empty(), "{what}: empty text twin");
        assert!(
            !plain.contains("rck-"),
            "{what}: markup in the text twin: {plain}"
        );
        let html = html(&bundle);
        assert!(html.contains("<style>"), "{what}: no style sheet");
        assert!(
            html.contains("class=\"rck rck-root"),
            "{what}: no scoped root"
        );
        assert!(!html.contains("<script"), "{what}: script in {html}");
    }
}

#[test]
fn card_shows_each_state_with_its_badge_and_meaning() {
    let expectations = [
        (
            ClusterState::Pending,
            "rck-tone-warn",
            "pending",
            Some("Waiting in the queue"),
        ),
        (
            ClusterState::Starting,
            "rck-tone-brand",
            "starting",
            Some("waiting for the Dask scheduler"),
        ),
        (ClusterState::Running, "rck-tone-success", "running", None),
        (
            ClusterState::Cancelling,
            "rck-tone-warn",
            "cancelling",
            Some("Cancelling:"),
        ),
        (
            ClusterState::Finished,
            "rck-tone-neutral",
            "finished",
            Some("has ended"),
        ),
        (ClusterState::Failed, "rck-tone-error", "failed", None),
    ];
    for (state, tone, word, note) in expectations {
        let card = cluster_card(&view(state, 4), None);
        let html = html(&card);
        let badge = format!(r#"<span class="rck-badge {tone}">{word}</span>"#);
        assert!(html.contains(&badge), "{state:?}: no {badge} in {html}");
        assert!(
            html.contains(&format!("rck-card {tone}")),
            "{state:?}: card edge"
        );
        assert_eq!(
            html.contains("class=\"rck-note\""),
            note.is_some(),
            "{state:?}: note"
        );
        if let Some(note) = note {
            assert!(html.contains(note), "{state:?}: no note {note:?}");
        }
        assert!(text(&card).starts_with(&format!(
            "demo  [{word}]  SLURM  mutual TLS  updated 2026-05-01 14:03:22\n"
        )));
        assert!(html.contains(
            r#"<time datetime="2026-05-01T14:03:22.481+02:00">2026-05-01 14:03:22</time>"#
        ));
        assert_eq!(
            html.contains("role=\"alert\""),
            state == ClusterState::Failed,
            "{state:?}"
        );
    }
}

#[test]
fn running_card_shows_workers_jobs_and_the_way_to_the_dashboard() {
    let card = cluster_card(&view(ClusterState::Running, 3), None);
    let html = html(&card);
    assert!(html.contains("<span><b>3</b> / 4 workers</span>"));
    assert!(html.contains(r#"<progress class="rck-bar rck-tone-brand" max="100" value="75""#));
    assert!(html.contains("60 threads · 135.0 GiB ("), "{html}");
    assert!(html.contains(r#"<code class="rck-code">tls://10.0.0.5:38211</code>"#));
    assert!(html.contains(
        r#"<code class="rck-code rck-copy" title="click to select, then copy">ssh -N -L 8787:uc2n001:8787 alice@uc2.example.org</code>"#
    ));
    // Per host: uc2n001 has demo-1 and demo-2, uc2n002 has demo-3.
    assert!(html.contains("uc2n001 <b>×2</b>") && html.contains("uc2n002 <b>×1</b>"));
    // The running job's "None" reason is not shown; the pending one's reason is, without "N/A".
    assert!(!html.contains(">None<"));
    assert!(
        html.contains(r#"<td class="rck-wrap">Priority</td>"#),
        "{html}"
    );
    assert!(html.contains(r#"<td class="rck-num">12:41 / 30:00 · 17 min left</td>"#));

    let plain = text(&card);
    let expected_lines = [
        "workers         3/4  [###############-----]  75%  60 threads  135.0 GiB (9.0 GiB in use)",
        "scheduler       tls://10.0.0.5:38211",
        "dashboard       http://uc2n001:8787/status",
        "ssh tunnel      ssh -N -L 8787:uc2n001:8787 alice@uc2.example.org",
        "                then open http://localhost:8787/status",
        "hosts           uc2n001 ×2, uc2n002 ×1",
        "  JOB   ROLE       STATE    NODES  NODE LIST                  ELAPSED / LIMIT  REASON / START",
        "  4711  scheduler  RUNNING      2  uc2n[001-002]  12:41 / 30:00 · 17 min left",
        "  4712  grow       PENDING      2  —                             0:00 / 30:00  Priority",
    ];
    for line in expected_lines {
        assert!(
            plain.lines().any(|l| l == line),
            "no line {line:?} in\n{plain}"
        );
    }
    assert!(
        plain.contains("  demo-3  uc2n002  tls://10.0.0.12:40002       20  3.0 GiB / 45.0 GiB"),
        "{plain}"
    );

    // Complete: the bar turns green.
    let mut full = view(ClusterState::Running, 4);
    full.workers_expected = 4;
    assert!(html_of(&cluster_card(&full, None)).contains("rck-bar rck-tone-success"));
}

#[test]
fn the_card_says_whether_the_cluster_is_protected() {
    let protected = cluster_card(&view(ClusterState::Running, 3), None);
    let head = text(&protected).lines().next().unwrap().to_owned();
    assert!(
        head.starts_with("demo  [running]  SLURM  mutual TLS  updated"),
        "{head}"
    );
    assert!(!text(&protected).contains("no TLS"));
    assert!(html(&protected).contains(">mutual TLS</span>"));
    assert!(html(&protected).contains("rck-badge rck-tone-success\" title=\"Every connection"));

    let mut open = view(ClusterState::Running, 3);
    open.tls = None;
    let card = cluster_card(&open, None);
    let mut lines = text(&card).lines();
    assert!(lines.next().unwrap().contains("  SLURM  no TLS  updated"));
    assert_eq!(
        lines.next().unwrap(),
        "WARNING: no TLS: anyone on the network who can reach this scheduler can run code as \
         you (started with --insecure or security = \"none\")."
    );
    assert!(!text(&card).contains("mutual TLS"));
    assert!(html(&card).contains("<span class=\"rck-badge rck-tone-warn\""));
    assert!(html(&card).contains("<div class=\"rck-warning\" role=\"note\">no TLS: anyone"));
}

fn html_of(bundle: &Bundle) -> String {
    html(bundle).to_owned()
}

#[test]
fn pending_card_shows_reason_and_estimated_start() {
    let card = cluster_card(&view(ClusterState::Pending, 0), None);
    assert!(html(&card).contains("Resources · start ≈ 2026-05-01 15:10"));
    assert!(text(&card).contains("Resources · start ≈ 2026-05-01 15:10"));
    assert!(html(&card).contains("<span><b>0</b> / 4 workers</span>"));
    assert!(
        !html(&card).contains("rck-workers"),
        "no workers table without workers"
    );
    assert!(
        !html(&card).contains("threads ·"),
        "no totals without a scheduler"
    );
    assert!(text(&card).contains("\nworkers         0/4  [--------------------]   0%\n"));
}

#[test]
fn failed_card_shows_the_error_headline_and_its_log_tail() {
    let card = cluster_card(&view(ClusterState::Failed, 0), None);
    let html = html(&card);
    assert!(html.contains(
        "<div class=\"rck-error-title\">Job 4711 ended FAILED (exit code 1:0); the last lines of slurm-4711.out:</div>"
    ));
    assert!(html.contains("<pre class=\"rck-pre\">Traceback (most recent call last):\n  File &#34;/opt/venv/bin/dask-mpi&#34;"));
    assert!(html.contains("No module named &#39;mpi4py&#39;"));
    assert!(
        !html.contains("class=\"rck-section rck-meter\""),
        "an ended cluster without workers has no bar"
    );
    assert!(!text(&card).contains("workers "));
    let plain = text(&card);
    assert!(plain.contains("\nERROR: Job 4711 ended FAILED (exit code 1:0)"));
    assert!(plain.contains("\n  | ModuleNotFoundError: No module named 'mpi4py'\n"));
}

#[test]
fn a_long_error_keeps_only_the_end_of_its_tail() {
    let mut v = view(ClusterState::Failed, 0);
    let lines: Vec<String> = (1..=500).map(|i| format!("log line {i}")).collect();
    v.last_error = Some(format!("\n\nsbatch failed\n{}", lines.join("\n")));
    let card = cluster_card(&v, None);
    let html = html(&card);
    assert!(html.contains("<div class=\"rck-error-title\">sbatch failed</div>"));
    assert!(html.contains("… 460 earlier lines not shown (%cluster logs has them)\nlog line 461\n"));
    assert!(html.contains("log line 500</pre>"));
    assert!(!html.contains("log line 460\n"));

    v.last_error = Some("  \n ".into());
    assert!(!super::card::cluster_card(&v, None).data["text/html"]
        .as_str()
        .unwrap()
        .contains("role=\"alert\""));
}

#[test]
fn a_thousand_workers_are_summarised() {
    let mut v = view(ClusterState::Running, 1000);
    v.workers_expected = 1000;
    let card = cluster_card(&v, None);
    let html = html(&card);
    assert!(html.len() < 200 * 1024, "card is {} bytes", html.len());

    let workers_table = html
        .split("<table class=\"rck-table rck-workers\">")
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .expect("a workers table");
    assert_eq!(
        workers_table.matches("<tr>").count(),
        LIST_LIMIT + 1,
        "header + {LIST_LIMIT} rows"
    );
    assert!(html.contains("<div class=\"rck-muted rck-more\">and 980 more workers</div>"));
    assert_eq!(html.matches("class=\"rck-host\"").count(), LIST_LIMIT);
    assert!(html.contains("hosts (500)"));
    assert!(html.contains("and 480 more hosts (960 workers)"));
    // Natural order: demo-1 … demo-20 are listed, demo-100 is not.
    assert!(html.contains("<td>demo-20</td>") && !html.contains("<td>demo-100</td>"));
    assert!(html.contains("<span><b>1000</b> / 1000 workers</span>"));
    assert!(html.contains("20000 threads · 43.9 TiB"));

    let plain = text(&card);
    assert!(
        plain.len() < 16 * 1024,
        "text twin is {} bytes",
        plain.len()
    );
    assert!(plain.lines().count() < 40, "{plain}");
    assert!(plain.contains("  and 980 more workers"));
    assert!(
        plain.lines().all(|l| l.chars().count() <= 100),
        "the text twin fits a terminal:\n{plain}"
    );
    assert!(
        plain.contains("\n                uc2n007 ×2, "),
        "hosts wrap under their column"
    );
    assert!(
        plain.contains("uc2n020 ×2, and 480 more hosts (960 workers)\n"),
        "{plain}"
    );
}

#[test]
fn tables_keep_their_shape_and_say_when_they_are_empty() {
    let mut squeue = Table::new(
        "Jobs of alice",
        [
            Column::left("job"),
            Column::left("name"),
            Column::left("state"),
            Column::right("nodes"),
            Column::left("node list / reason"),
        ],
    )
    .empty_message("No jobs in the queue.");
    assert!(squeue.is_empty());
    let empty = squeue.to_bundle();
    assert!(html(&empty).contains(r#"<td class="rck-note" colspan="5">No jobs in the queue.</td>"#));
    assert_eq!(text(&empty), "Jobs of alice\nNo jobs in the queue.");

    squeue.push([
        Cell::code("4711"),
        "demo".into(),
        Cell::job_state("RUNNING"),
        2u32.into(),
        "uc2n[001-002]".into(),
    ]);
    squeue.push([
        Cell::code("4712"),
        "demo-grow".into(),
        Cell::job_state("PENDING"),
        2u32.into(),
        "(Priority)".into(),
    ]);
    assert_eq!(squeue.len(), 2);
    let bundle = squeue.footer("2 jobs").to_bundle();
    let html = html(&bundle);
    assert_eq!(html.matches("<tr>").count(), 3);
    assert_eq!(html.matches("<td ").count(), 10);
    assert!(html.contains(
        r#"<td class="rck-txt"><span class="rck-badge rck-tone-success">RUNNING</span></td>"#
    ));
    assert!(html.contains(r#"<td class="rck-txt"><code class="rck-code">4712</code></td>"#));
    assert!(html.contains(r#"<th class="rck-num">nodes</th>"#));
    assert_eq!(
        text(&bundle),
        "Jobs of alice\n\
         job   name       state    nodes  node list / reason\n\
         4711  demo       RUNNING      2  uc2n[001-002]\n\
         4712  demo-grow  PENDING      2  (Priority)\n\
         2 jobs"
    );
}

#[test]
fn cluster_list_has_one_row_per_cluster() {
    let clusters: Vec<ClusterView> = STATES.iter().map(|&s| view(s, 4)).collect();
    let bundle = cluster_list(&clusters);
    let html = html(&bundle);
    assert!(html.contains("<caption>Clusters (6)</caption>"));
    assert_eq!(html.matches("<tr>").count(), 1 + clusters.len());
    assert!(html.contains("4711 RUNNING, 4712 PENDING"));
    assert!(html.contains(r#"<td class="rck-num">4/4</td>"#));
    assert_eq!(text(&bundle).lines().count(), 2 + clusters.len());
    assert_eq!(
        text(&bundle).matches("  mutual TLS  ").count(),
        clusters.len()
    );
    let mut open = view(ClusterState::Running, 1);
    open.tls = None;
    let list = cluster_list(&[open]);
    assert!(text(&list).contains("  no TLS  "));
    assert!(self::html(&list).contains(r#"<span class="rck-badge rck-tone-warn">no TLS</span>"#));
    assert!(text(&cluster_list(&[])).contains("No clusters yet: %cluster up starts one."));
}

#[test]
fn logs_show_each_job_with_its_tail() {
    let bundle = job_logs(
        "demo",
        &[
            LogTail {
                job_id: "4711",
                role: Some(JobRole::Scheduler),
                path: Some("/home/alice/dask/slurm-4711.out"),
                text: "Scheduler at: tcp://10.0.0.5:38211\nWorker demo-1 joined\n",
            },
            LogTail {
                job_id: "4712",
                role: Some(JobRole::Grow),
                path: None,
                text: "",
            },
        ],
    );
    let html = html(&bundle);
    assert_eq!(html.matches("<h4 class=\"rck-heading\">").count(), 2);
    assert!(html.contains(
        "<pre class=\"rck-pre\">Scheduler at: tcp://10.0.0.5:38211\nWorker demo-1 joined</pre>"
    ));
    assert!(html.contains("The job has written nothing yet."));
    assert_eq!(
        text(&bundle),
        "== job 4711 (scheduler): /home/alice/dask/slurm-4711.out, last 2 lines ==\n\
         Scheduler at: tcp://10.0.0.5:38211\n\
         Worker demo-1 joined\n\
         \n\
         == job 4712 (grow): no log file ==\n\
         (empty so far)"
    );
    assert_eq!(text(&job_logs("demo", &[])), "demo: no job has a log yet.");
}

#[test]
fn progress_reports_each_phase() {
    let v = view(ClusterState::Running, 3);
    let waiting = wait_progress(&WaitProgress::from_view(
        &v,
        5,
        Duration::from_secs(75),
        WaitPhase::Waiting,
    ));
    assert_eq!(
        text(&waiting),
        "demo: workers joined 3/5 [############--------]  60%  waiting, 1 min 15 s"
    );
    assert!(
        html(&waiting).contains(r#"<progress class="rck-bar rck-tone-brand" max="100" value="60""#)
    );
    let done = wait_progress(&WaitProgress::from_view(
        &v,
        3,
        Duration::from_secs(2),
        WaitPhase::Reached,
    ));
    assert!(html(&done).contains(r#"<span class="rck-badge rck-tone-success">done</span>"#));
    let stopped = wait_progress(&WaitProgress::from_view(
        &v,
        5,
        Duration::ZERO,
        WaitPhase::Interrupted,
    ));
    assert!(text(&stopped).ends_with("interrupted; the cluster keeps running, 0 s"));
}

/// A fixture page: the fragment in light and dark JupyterLab stand-ins. Test-only.
#[derive(Template)]
#[template(path = "preview.html")]
struct Preview<'a> {
    title: &'a str,
    fragment: &'a str,
}

fn fixture_pages() -> Vec<(&'static str, Bundle)> {
    let mut pending = view(ClusterState::Pending, 0);
    pending.name = "workshop".into();
    let mut big = view(ClusterState::Running, 1000);
    big.workers_expected = 1000;
    let mut sinfo = Table::new(
        "Partitions",
        [
            Column::left("partition"),
            Column::right("idle"),
            Column::right("allocated"),
            Column::right("other"),
            Column::right("total"),
            Column::left("time limit"),
        ],
    );
    sinfo.push([
        "single".into(),
        1u32.into(),
        1u32.into(),
        0u32.into(),
        2u32.into(),
        "3-00:00:00".into(),
    ]);
    sinfo.push([
        "multiple".into(),
        0u32.into(),
        2u32.into(),
        0u32.into(),
        2u32.into(),
        "3-00:00:00".into(),
    ]);
    let mut squeue = Table::new(
        "Jobs of alice",
        [
            Column::left("job"),
            Column::left("name"),
            Column::left("partition"),
            Column::left("state"),
            Column::right("time"),
            Column::right("nodes"),
            Column::left("node list (reason)"),
        ],
    )
    .footer("3 jobs");
    for (id, name, state, time, nodes) in [
        ("4711", "demo", "RUNNING", "12:41", "uc2n[001-002]"),
        ("4712", "demo-grow-1", "PENDING", "0:00", "(Priority)"),
        ("4698", "train.sh", "COMPLETING", "1:02:17", "uc2n003"),
    ] {
        squeue.push([
            Cell::code(id),
            name.into(),
            "multiple".into(),
            Cell::job_state(state),
            time.into(),
            2u32.into(),
            nodes.into(),
        ]);
    }
    let running = view(ClusterState::Running, 3);
    let served = DashboardLink {
        url: "/user/alice/proxy/41327/status".into(),
        route: Route::Relay { port: 41327 },
        lab_panes: true,
    };
    let mut insecure = view(ClusterState::Running, 3);
    insecure.tls = None;
    if let Some(scheduler) = insecure.scheduler.as_mut() {
        scheduler.address = scheduler.address.replace("tls://", "tcp://");
        for w in &mut scheduler.workers {
            w.address = w.address.replace("tls://", "tcp://");
        }
    }
    vec![
        ("squeue", squeue.to_bundle()),
        ("card-running", cluster_card(&running, None)),
        ("card-pending", cluster_card(&pending, None)),
        ("card-failed", cluster_card(&view(ClusterState::Failed, 0), None)),
        ("card-insecure", cluster_card(&insecure, None)),
        ("card-1000-workers", cluster_card(&big, None)),
        ("card-served-dashboard", cluster_card(&running, Some(&served))),
        (
            "dashboard-served",
            dashboard("demo", running.dashboard.as_ref().unwrap(), Some(&served)),
        ),
        ("sinfo", sinfo.to_bundle()),
        (
            "cluster-list",
            cluster_list(&[running.clone(), pending, view(ClusterState::Finished, 0)]),
        ),
        (
            "progress",
            wait_progress(&WaitProgress::from_view(&running, 4, Duration::from_secs(42), WaitPhase::Waiting)),
        ),
        (
            "logs",
            job_logs(
                "demo",
                &[LogTail {
                    job_id: "4711",
                    role: Some(JobRole::Scheduler),
                    path: Some("/home/alice/dask/slurm-4711.out"),
                    text: "distributed.scheduler - INFO - State start\n\
                           distributed.scheduler - INFO -   Scheduler at:  tcp://10.0.0.5:38211\n\
                           distributed.scheduler - INFO -   dashboard at:  http://10.0.0.5:8787/status\n\
                           distributed.scheduler - INFO - Register worker <WorkerState 'tcp://10.0.0.5:40001', name: demo-1, status: init, memory: 0, processing: 0>",
                }],
            ),
        ),
        ("dashboard", dashboard("demo", running.dashboard.as_ref().unwrap(), None)),
    ]
}

#[test]
fn fixtures_match_the_rendering() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/display");
    let update = std::env::var_os("RCK_UPDATE_FIXTURES").is_some();
    if update {
        std::fs::create_dir_all(&dir).unwrap();
    }
    for (name, bundle) in fixture_pages() {
        let page = Preview {
            title: name,
            fragment: html(&bundle),
        }
        .render()
        .unwrap();
        let path = dir.join(format!("{name}.html"));
        if update {
            std::fs::write(&path, &page).unwrap();
        } else {
            let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                panic!("{}: {e} (RCK_UPDATE_FIXTURES=1 writes it)", path.display())
            });
            assert!(
                committed == page,
                "{} differs from the rendering; look at the change, then RCK_UPDATE_FIXTURES=1",
                path.display()
            );
        }
    }
}

#[test]
fn a_running_jobs_time_left_shows_and_the_end_of_the_scheduler_job_is_announced() {
    let mut v = view(ClusterState::Running, 4);
    // 12:41 of 30:00: no warning yet.
    let card = cluster_card(&v, None);
    assert!(
        text(&card).contains("12:41 / 30:00 · 17 min left"),
        "{}",
        text(&card)
    );
    assert!(!text(&card).contains("ends in"));
    // 8 minutes before the limit, in both twins.
    v.jobs[0].elapsed = "22:00".into();
    let card = cluster_card(&v, None);
    let warning = "ends in 8 min (its time limit): the cluster ends with it";
    assert!(text(&card).contains(warning), "{}", text(&card));
    assert!(html(&card).contains(warning), "{}", html(&card));
    // A pending job has no time left, and an unlimited one no warning.
    v.jobs[0].time_limit = "UNLIMITED".into();
    assert!(!text(&cluster_card(&v, None)).contains("ends in"));
}

#[test]
fn a_notice_of_the_manager_shows_as_a_warning_with_its_log_lines() {
    let mut v = view(ClusterState::Running, 1);
    v.notice = Some(
        "1 of the 3 workers of the running jobs have joined after 4 min: MPI may be stuck\n\
         the end of job 4711's log:\n<orted> waiting"
            .into(),
    );
    let card = cluster_card(&v, None);
    assert!(
        text(&card).contains("WARNING: 1 of the 3 workers"),
        "{}",
        text(&card)
    );
    assert!(
        text(&card).contains("  | <orted> waiting"),
        "{}",
        text(&card)
    );
    assert!(
        html(&card).contains("&#60;orted&#62; waiting"),
        "escaped: {}",
        html(&card)
    );
}

#[test]
fn a_cluster_in_the_notebooks_allocation_says_which_job_and_whose_walltime() {
    let mut v = view(ClusterState::Running, 3);
    v.backend = Backend::Allocation;
    v.jobs[0].id = "alloc-1234-101500123".into();
    v.jobs[0].node_count = 3;
    v.jobs[0].elapsed = "22:00".into();
    let card = cluster_card(&v, None);
    assert!(
        text(&card).contains("in job 1234, 3 nodes"),
        "{}",
        text(&card)
    );
    assert!(
        html(&card).contains("in job 1234, 3 nodes"),
        "{}",
        html(&card)
    );
    assert!(
        text(&card).contains("The notebook's own job 1234 ends in 8 min"),
        "{}",
        text(&card)
    );
    v.jobs[0].node_count = 1;
    assert!(text(&cluster_card(&v, None)).contains("in job 1234, 1 node "));
}
