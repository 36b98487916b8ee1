//! Benchmark: the cluster card for a big cluster. Renders the card of a cluster with 1000
//! workers (2 per host, 500 hosts, a scheduler and a grow job) many times and reports the HTML
//! size and the render time against the targets of the cluster issue: < 200 KB and < 50 ms.
//! A 10 000-worker card is measured too, to show how the summary scales.
//!
//! Run: `cargo run --release --example card_render` (from the repository root)
//! (add `-- RUNS` to change the number of timed runs, 200 by default). Exits with status 1
//! when the 1000-worker card misses a target.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use dask_slurm::model::{
    Backend, ClusterState, ClusterView, DashboardView, JobRole, JobState, JobView, SchedulerView,
    WorkerView,
};
use rust_cluster_kernel::display::card::cluster_card;

const SIZE_TARGET: usize = 200 * 1024;
const TIME_TARGET: Duration = Duration::from_millis(50);

fn job(id: &str, role: JobRole, nodes: &str, node_count: u32) -> JobView {
    JobView {
        id: id.into(),
        role,
        state: JobState::Running,
        nodes: nodes.into(),
        node_count,
        elapsed: "12:41".into(),
        time_limit: "30:00".into(),
        reason: None,
        estimated_start: None,
        workers_expected: 2 * node_count,
        log_path: Some(format!("/home/alice/dask/slurm-{id}.out")),
    }
}

/// A running cluster with `n` workers, two per host, as dask-mpi names them.
fn cluster(n: u32) -> ClusterView {
    let hosts = n.div_ceil(2);
    let half = hosts / 2;
    let workers = (0..n)
        .map(|i| WorkerView {
            name: format!("bench-{}", i + 1),
            address: format!(
                "tcp://10.{}.{}.{}:{}",
                i / 65536,
                i / 256 % 256,
                i % 256,
                40000 + i % 20000
            ),
            host: format!("uc2n{:04}", i / 2 + 1),
            nthreads: 20,
            memory_limit: 45 << 30,
            memory_used: Some((3 << 30) + u64::from(i) * (1 << 20)),
        })
        .collect();
    ClusterView {
        name: "bench".into(),
        backend: Backend::Slurm,
        state: ClusterState::Running,
        jobs: vec![
            job(
                "4711",
                JobRole::Scheduler,
                &format!("uc2n[0001-{half:04}]"),
                half,
            ),
            job(
                "4712",
                JobRole::Grow,
                &format!("uc2n[{:04}-{hosts:04}]", half + 1),
                hosts - half,
            ),
        ],
        scheduler: Some(SchedulerView {
            address: "tcp://10.0.0.1:38211".into(),
            host: "uc2n0001".into(),
            dashboard_port: 8787,
            workers,
        }),
        scheduler_file: "/home/alice/.dask/bench/scheduler.json".into(),
        workers_expected: n,
        dashboard: Some(DashboardView {
            url: "http://uc2n0001:8787/status".into(),
            local_url: "http://localhost:8787/status".into(),
            ssh_command: "ssh -N -L 8787:uc2n0001:8787 alice@uc2.example.org".into(),
        }),
        last_error: None,
        tls: None,
        python_env: None,
        notice: None,
        adapt: None,
        updated_at: "2026-05-01T14:03:22+02:00".into(),
    }
}

struct Measurement {
    html_bytes: usize,
    text_bytes: usize,
    /// The bundle as it goes over the wire (JSON of the MIME data).
    json_bytes: usize,
    median: Duration,
    max: Duration,
}

fn measure(workers: u32, runs: usize) -> Measurement {
    let view = cluster(workers);
    let bundle = cluster_card(&view, None); // warm-up, and the sizes
    let size = |mime: &str| bundle.data[mime].as_str().map_or(0, str::len);
    let json_bytes = serde_json::to_vec(&bundle.data).map_or(0, |v| v.len());
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let bundle = cluster_card(std::hint::black_box(&view), None);
            let elapsed = start.elapsed();
            std::hint::black_box(bundle);
            elapsed
        })
        .collect();
    times.sort();
    Measurement {
        html_bytes: size("text/html"),
        text_bytes: size("text/plain"),
        json_bytes,
        median: times[times.len() / 2],
        max: times[times.len() - 1],
    }
}

fn main() -> ExitCode {
    let runs = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .filter(|&r: &usize| r > 0)
        .unwrap_or(200);
    let mut ok = true;
    for workers in [1000, 10_000] {
        let m = measure(workers, runs);
        println!(
            "card for {workers:>5} workers: html {:>6} B, text {:>5} B, bundle json {:>6} B; \
             render median {:>8.3} ms, max {:>8.3} ms over {runs} runs",
            m.html_bytes,
            m.text_bytes,
            m.json_bytes,
            m.median.as_secs_f64() * 1e3,
            m.max.as_secs_f64() * 1e3,
        );
        if workers == 1000 {
            let size_ok = m.html_bytes < SIZE_TARGET;
            let time_ok = m.max < TIME_TARGET;
            println!(
                "  targets: html < {} KB {}, every render < {} ms {}",
                SIZE_TARGET / 1024,
                if size_ok { "met" } else { "MISSED" },
                TIME_TARGET.as_millis(),
                if time_ok { "met" } else { "MISSED" },
            );
            ok &= size_ok && time_ok;
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
