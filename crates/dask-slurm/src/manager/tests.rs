//! The operations against a fake backend, where SLURM is not the point: what `up`, `grow`,
//! `cancel` and the poller's `refresh` do with the jobs a backend reports.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::*;
use crate::model::{ClusterState, JobRole};
use crate::private::tests::scratch;
use crate::slurm::{JobState, JobStatus, StartEstimate};
use std::time::Instant;
use tracked::WORKERS_JOIN_LIMIT;

/// A backend whose jobs are entries in a table that the test sets.
#[derive(Default)]
struct FakeBackend {
    /// The state of every job started, by id.
    states: Mutex<HashMap<String, JobState>>,
    /// The jobs cancel was asked to end, in order.
    cancelled: Mutex<Vec<String>>,
    /// Whether the controller is down: job states cannot be read.
    down: std::sync::atomic::AtomicBool,
}

impl FakeBackend {
    fn set(&self, id: &str, state: JobState) {
        self.states.lock().unwrap().insert(id.to_owned(), state);
    }
}

impl Backend for FakeBackend {
    fn kind(&self) -> model::Backend {
        model::Backend::Local
    }

    fn queues_jobs(&self) -> bool {
        true
    }

    fn polling_is_costly(&self) -> bool {
        false
    }

    fn fit_spec(
        &self,
        _spec: &mut ClusterSpec,
        _started_as: Option<&ClusterSpec>,
    ) -> Result<(), ClusterError> {
        Ok(())
    }

    fn start(
        &self,
        job: &script::JobScript,
        script_path: &Path,
        log_dir: &Path,
    ) -> Result<JobRecord, ClusterError> {
        let mut states = self.states.lock().unwrap();
        let id = format!("fake-{}", states.len() + 1);
        states.insert(id.clone(), JobState::Pending);
        Ok(JobRecord {
            log_path: Some(log_dir.join(format!("{id}.out"))),
            id,
            role: job.role,
            workers_expected: job.workers_expected,
            script_path: Some(script_path.to_path_buf()),
        })
    }

    fn statuses(&self, ids: &[String]) -> Result<Vec<JobStatus>, ClusterError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(ClusterError::Invalid(
                "the controller does not answer".into(),
            ));
        }
        let states = self.states.lock().unwrap();
        Ok(ids
            .iter()
            .map(|id| {
                let mut status = JobStatus::gone(id);
                status.state = states.get(id).cloned().unwrap_or(JobState::Gone);
                status
            })
            .collect())
    }

    fn start_estimates(&self, _ids: &[String]) -> Vec<StartEstimate> {
        Vec::new()
    }

    fn cancel(&self, ids: &[String]) -> Result<(), ClusterError> {
        for id in ids {
            self.set(id, JobState::Cancelled);
        }
        self.cancelled.lock().unwrap().extend(ids.iter().cloned());
        Ok(())
    }

    fn cancel_at_shutdown(&self, ids: &[String]) {
        let _ = self.cancel(ids);
    }
}

/// A manager on the fake backend in a scratch directory (no SLURM, the built-in profiles).
struct Harness {
    clusters: Arc<Clusters>,
    fake: Arc<FakeBackend>,
    dir: PathBuf,
}

impl Harness {
    fn new(name: &str) -> Harness {
        let dir = scratch(&format!("manager-{name}"));
        let settings = ManagerSettings {
            state_dir: dir.join("state"),
            session: "test-session".into(),
            slurm: Slurm::new(Some(dir.join("no-slurm")), None),
            work_dir: dir.clone(),
            config: Some(dir.join("no-config.toml")),
        };
        let fake = Arc::new(FakeBackend::default());
        let clusters = Clusters::open_with(settings, vec![fake.clone()]);
        Harness {
            clusters,
            fake,
            dir,
        }
    }

    fn up(&self) -> ClusterView {
        self.clusters.up(UpRequest::default()).unwrap()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.clusters.shutdown();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn up_starts_one_scheduler_job_that_the_poller_follows() {
    let h = Harness::new("up");
    let view = h.up();
    assert_eq!(view.name, "dask");
    assert_eq!(view.state, ClusterState::Pending);
    assert_eq!(view.jobs.len(), 1);
    assert_eq!(view.jobs[0].role, JobRole::Scheduler);
    assert_eq!(view.jobs[0].state, JobState::Submitted);
    let logs = h.clusters.logs(None, None, 5).unwrap();
    assert_eq!(logs[0].job_id, view.jobs[0].id);
    // A second cluster gets the next free name.
    assert_eq!(h.up().name, "dask-2");

    h.fake.set(&view.jobs[0].id, JobState::Running);
    h.clusters.refresh(true);
    let view = h.clusters.status(Some("dask")).unwrap();
    assert_eq!(view.jobs[0].state, JobState::Running);
    // Running, but no scheduler answers yet.
    assert_eq!(view.state, ClusterState::Starting);
}

#[test]
fn grow_adds_a_job_to_the_cluster_and_its_record() {
    let h = Harness::new("grow");
    let up = h.up();
    h.fake.set(&up.jobs[0].id, JobState::Running);
    h.clusters.refresh(true);
    let overrides = Overrides {
        nodes: Some(2),
        ..Overrides::default()
    };
    let view = h
        .clusters
        .grow(GrowRequest {
            name: None,
            overrides,
        })
        .unwrap();
    assert_eq!(view.jobs.len(), 2);
    assert_eq!(view.jobs[1].role, JobRole::Grow);
    assert!(view.workers_expected > up.workers_expected);
    let (records, _) = h.clusters.registry.load_all();
    assert_eq!(records[0].jobs.len(), 2);
}

#[test]
fn a_grow_job_takes_every_setting_of_its_cluster_as_started_but_its_own_flags() {
    let h = Harness::new("grow-settings");
    // An `up` that differs from the built-in profile in every setting.
    let up = Overrides {
        partition: Some("single".into()),
        nodes: Some(3),
        workers_per_node: Some(1),
        threads_per_worker: Some(4),
        time: Some("00:10:00".into()),
        mem: Some("1000M".into()),
        memory_limit: Some("900MiB".into()),
        interface: Some("lo".into()),
        local_directory: Some("/scratch/dask".into()),
        account: Some("proj1".into()),
        login_host: Some("login1".into()),
        dashboard_port: Some(9999),
        env: Some([("SITE_VAR".to_owned(), "1".to_owned())].into()),
        mpirun_args: Some(vec!["--report-bindings".into()]),
        map_by: Some(crate::spec::MapBy("slot".into())),
        watchdog_minutes: Some(3.0),
        poll_interval_secs: Some(7),
        python_env: Some("/opt/dask-env".into()),
        log_dir: Some(h.dir.join("logs").display().to_string()),
        ..Overrides::default()
    };
    h.clusters
        .up(UpRequest {
            overrides: up,
            ..UpRequest::default()
        })
        .unwrap();
    let started = lock(&h.clusters.table).get(None).unwrap().record.clone();
    let started = started.spec.unwrap();
    let (_, grow) = h
        .clusters
        .grow_spec(&GrowRequest {
            name: None,
            overrides: Overrides {
                nodes: Some(1),
                time: Some("5:00".into()),
                ..Overrides::default()
            },
        })
        .unwrap();
    let mut expected = started.clone();
    expected.nodes = 1;
    expected.time = "5:00".into();
    assert_eq!(grow, expected, "the profile's values came back");
}

#[test]
fn a_submitted_cluster_stays_tracked_when_the_registry_cannot_be_written() {
    let h = Harness::new("registry-fails");
    let records = h.dir.join("state/clusters");
    let _ = std::fs::remove_dir_all(&records);
    std::fs::create_dir_all(records.parent().unwrap()).unwrap();
    std::fs::write(&records, "a file where the registry's directory should be").unwrap();
    let err = h.clusters.up(UpRequest::default()).unwrap_err();
    assert!(err.to_string().contains("is tracked here"), "{err}");
    // On the card, followed, and cancelled at shutdown like any other.
    let view = h.clusters.status(None).unwrap();
    assert_eq!(view.jobs.len(), 1);
    h.clusters.shutdown();
    assert_eq!(
        *h.fake.cancelled.lock().unwrap(),
        vec![view.jobs[0].id.clone()]
    );
}

#[test]
fn the_names_of_the_kernels_own_directories_are_not_cluster_names() {
    let h = Harness::new("reserved");
    for name in ["clusters", "batch"] {
        let err = h
            .clusters
            .up(UpRequest {
                name: Some(name.into()),
                ..UpRequest::default()
            })
            .unwrap_err();
        assert!(matches!(err, ClusterError::Reserved(_)), "{name}: {err}");
    }
    assert!(
        h.fake.states.lock().unwrap().is_empty(),
        "nothing was started"
    );
}

#[test]
fn grow_jobs_are_cancelled_when_their_schedulers_job_ends() {
    let h = Harness::new("orphans");
    let up = h.up();
    h.fake.set(&up.jobs[0].id, JobState::Running);
    h.clusters.refresh(true);
    let grown = h.clusters.grow(GrowRequest::default()).unwrap();
    let grow_id = grown.jobs[1].id.clone();
    h.fake.set(&grow_id, JobState::Running);
    h.clusters.refresh(true);
    assert!(
        h.fake.cancelled.lock().unwrap().is_empty(),
        "both run: nothing to cancel"
    );
    // The scheduler's job hits its walltime while the grow job still runs.
    h.fake.set(&up.jobs[0].id, JobState::Timeout);
    h.clusters.refresh(true);
    // The grow job and nothing else (the poller's own round may have sent the cancel too).
    let mut cancelled = h.fake.cancelled.lock().unwrap().clone();
    cancelled.dedup();
    assert_eq!(cancelled, vec![grow_id]);
}

#[test]
fn a_wait_for_workers_that_no_job_will_bring_fails_at_once_with_the_reason() {
    let h = Harness::new("unreachable");
    let up = h.up();
    h.fake.set(&up.jobs[0].id, JobState::Running);
    h.clusters.refresh(true);
    let grown = h.clusters.grow(GrowRequest::default()).unwrap();
    let target = grown.workers_expected;
    // SLURM fails the grow job at once (BadConstraints, as a real site did).
    h.fake.set(&grown.jobs[1].id, JobState::Failed);
    h.clusters.refresh(true);
    let err = h
        .clusters
        .wait_workers(
            None,
            target,
            Duration::from_secs(30),
            &|| false,
            &mut |_| {},
        )
        .unwrap_err();
    assert!(!matches!(err, ClusterError::Timeout(_)), "it waited: {err}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("job {} ended FAILED", grown.jobs[1].id)),
        "{text}"
    );
    assert!(text.contains(&format!("never {target}")), "{text}");
}

#[test]
fn workers_that_do_not_join_a_scheduler_that_answers_are_noted_not_failed() {
    let h = Harness::new("missing-workers");
    let up = h.up();
    h.fake.set(&up.jobs[0].id, JobState::Running);
    h.clusters.refresh(true);
    let mut table = lock(&h.clusters.table);
    let t = table.clusters.get_mut("dask").unwrap();
    t.scheduler = Some(model::SchedulerView {
        address: "tls://10.0.0.5:1".into(),
        host: "n1".into(),
        dashboard_port: 8787,
        workers: Vec::new(),
    });
    t.scheduler_answers = true;
    let start = Instant::now();
    t.note_missing_workers(start);
    assert_eq!(t.notice, None, "workers may take a while");
    t.note_missing_workers(start + WORKERS_JOIN_LIMIT + Duration::from_secs(1));
    let notice = t.notice.clone().unwrap();
    assert!(
        notice.starts_with("0 of the 3 workers of the running jobs have joined after 3 min"),
        "{notice}"
    );
    assert_eq!(t.state(), ClusterState::Running, "a notice, not a failure");
    // They join: the notice goes.
    let joined = model::WorkerView {
        name: "dask-1".into(),
        host: "n1".into(),
        address: "tls://10.0.0.6:2".into(),
        nthreads: 1,
        memory_limit: 1,
        memory_used: None,
    };
    t.scheduler.as_mut().unwrap().workers = vec![joined.clone(), joined.clone(), joined];
    t.note_missing_workers(start + WORKERS_JOIN_LIMIT * 2);
    assert_eq!(t.notice, None);
}

#[test]
fn cancel_while_the_controller_is_down_sends_the_cancel_and_stops_waiting_with_the_reason() {
    let h = Harness::new("cancel-down");
    let up = h.up();
    h.fake.set(&up.jobs[0].id, JobState::Running);
    h.clusters.refresh(true);
    h.fake.down.store(true, Ordering::SeqCst);
    let err = h.clusters.cancel(CancelTarget::Cluster(None)).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("was sent, but their state cannot be read"),
        "{text}"
    );
    assert!(text.contains("the controller does not answer"), "{text}");
    assert_eq!(
        *h.fake.cancelled.lock().unwrap(),
        vec![up.jobs[0].id.clone()]
    );
}

#[test]
fn cancel_ends_every_live_job_and_forgets_the_cluster() {
    let h = Harness::new("cancel");
    let up = h.up();
    h.fake.set(&up.jobs[0].id, JobState::Running);
    h.clusters.refresh(true);
    h.clusters.grow(GrowRequest::default()).unwrap();
    let views = h.clusters.cancel(CancelTarget::Cluster(None)).unwrap();
    assert_eq!(views[0].state, ClusterState::Finished);
    assert_eq!(h.fake.cancelled.lock().unwrap().len(), 2);
    assert!(h.clusters.registry.load_all().0.is_empty());
    // A finished cluster cannot grow.
    let err = h.clusters.grow(GrowRequest::default()).unwrap_err();
    assert!(err.to_string().contains("has ended"), "{err}");
}

#[test]
fn refresh_fails_a_cluster_whose_scheduler_job_failed_and_shows_its_log() {
    let h = Harness::new("failed");
    let up = h.up();
    let log = PathBuf::from(up.jobs[0].log_path.clone().unwrap());
    std::fs::write(&log, "starting\nImportError: no dask_mpi\n").unwrap();
    h.fake.set(&up.jobs[0].id, JobState::Failed);
    h.clusters.refresh(true);
    let view = h.clusters.status(None).unwrap();
    assert_eq!(view.state, ClusterState::Failed);
    let error = view.last_error.unwrap();
    assert!(error.contains("ended FAILED"), "{error}");
    assert!(error.contains("ImportError: no dask_mpi"), "{error}");
}

#[test]
fn a_panicking_subscriber_stops_neither_the_others_nor_the_manager() {
    let h = Harness::new("panic");
    let told = Arc::new(AtomicUsize::new(0));
    h.clusters
        .subscribe(Box::new(|_| panic!("a card failed to render")));
    let counter = told.clone();
    h.clusters.subscribe(Box::new(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    }));
    // The poller thread may be the one to tell them: wait for it, a while at most.
    let told_more_than = |n: usize| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while told.load(Ordering::SeqCst) <= n {
            assert!(std::time::Instant::now() < deadline, "not told");
            h.clusters.refresh(true);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        told.load(Ordering::SeqCst)
    };
    let up = h.up();
    let after_up = told_more_than(0);
    h.fake.set(&up.jobs[0].id, JobState::Running);
    told_more_than(after_up);
    assert_eq!(
        h.clusters.status(None).unwrap().jobs[0].state,
        JobState::Running
    );
}
