//! Against the real lab SLURM (`tests/slurm/up.sh`) and a real dask-mpi venv
//! (`tests/slurm/venv.sh`): render the `up` script from the lab profile, submit it, watch the job
//! run, the scheduler file appear and the workers join over the scheduler's HTTP, grow, read the
//! log path and the comment tags back, cancel, and see the jobs end. Hostile values are refused
//! before anything is submitted; an unreachable controller is reported as such.
//!
//! Every test here is `#[ignore]`d with the reason "needs the lab SLURM": a plain `cargo test`
//! lists them as ignored instead of passing them without SLURM. Run them where the lab is up
//! (`./test.sh` does, in its full run; `--fast` leaves them ignored):
//!
//! ```text
//! cargo test --release -p dask-slurm --test real_slurm -- --include-ignored
//! ```
//!
//! Once run, a test without `sbatch` on PATH fails and says so; none of them skips.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dask_slurm::model::JobRole;
use dask_slurm::profile::{Overrides, ProfileSet};
use dask_slurm::script::{render_grow, render_up, wrap_batch, CommentTag, JobContext};
use dask_slurm::slurm::{current_user, JobState, Slurm, SlurmError};
use dask_slurm::tls::ClusterTls;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The lab's SLURM client; a test that runs without `sbatch` on PATH fails here.
fn lab_slurm() -> Slurm {
    let slurm = Slurm::from_env();
    assert!(
        slurm.is_available(),
        "`sbatch` is not on PATH: start the lab SLURM with tests/slurm/up.sh (these tests are \
         ignored by default; they ran because of --include-ignored or --ignored)"
    );
    slurm
}

/// The venv with dask-mpi: `$RCK_DASK_VENV` or `REPO/.venv-dask`.
fn dask_venv() -> PathBuf {
    let venv = std::env::var_os("RCK_DASK_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv-dask"));
    assert!(
        venv.join("bin/dask-mpi").exists(),
        "no dask-mpi in {}: run tests/slurm/venv.sh [VENV] first",
        venv.display()
    );
    venv.canonicalize().unwrap()
}

/// The cluster's certificates in `dir/tls`, made as `%cluster up` makes them.
fn certificates(dir: &Path, name: &str) -> ClusterTls {
    let tls = ClusterTls::in_dir(dir.join("tls"));
    tls.create(name).unwrap();
    tls
}

/// Polls `check` every 200 ms until it gives `Some`, or panics with `what` after `limit`.
fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Cancels the jobs it holds when dropped, so a failing test leaves nothing in the queue.
struct Jobs<'a> {
    slurm: &'a Slurm,
    ids: Vec<String>,
}

impl Drop for Jobs<'_> {
    fn drop(&mut self) {
        if !self.ids.is_empty() {
            let _ = self.slurm.cancel(&self.ids);
        }
    }
}

/// A scratch directory for one test run.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rck-it-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Workers the scheduler reports at `http://HOST:PORT/json/identity.json`: their names.
fn worker_names(base: &str) -> Option<Vec<String>> {
    let body: serde_json::Value = ureq::get(&format!("{base}/json/identity.json"))
        .config()
        .timeout_global(Some(Duration::from_secs(3)))
        .build()
        .call()
        .ok()?
        .body_mut()
        .read_json()
        .ok()?;
    let workers = body.get("workers")?.as_object()?;
    let mut names: Vec<String> = workers
        .values()
        .filter_map(|w| {
            w.get("name")
                .map(|n| n.to_string().trim_matches('"').to_owned())
        })
        .collect();
    names.sort();
    Some(names)
}

#[test]
#[ignore = "needs the lab SLURM (tests/slurm/up.sh)"]
fn cluster_up_grow_cancel_on_real_slurm() {
    let slurm = lab_slurm();
    let venv = dask_venv();
    let t0 = Instant::now();
    let profiles = ProfileSet::load_from(
        Some(&repo_root().join("tests/slurm/test-profile.toml")),
        Some("lab"),
    )
    .unwrap();
    let lab = profiles.get(None).unwrap();
    let user = current_user().unwrap();
    let dir = scratch("up");
    let name = format!("rck-it-{}", std::process::id());
    // Jobs of this test's cluster, in any state (other tests may submit meanwhile).
    let named = || {
        slurm
            .my_jobs(&["-t".into(), "all".into(), "-n".into(), name.clone()])
            .unwrap()
            .len()
    };
    assert_eq!(named(), 0);

    // Hostile values: clear errors naming the field, and nothing reaches sbatch.
    for (overrides, field) in [
        (
            Overrides {
                partition: Some("multiple;touch /tmp/x".into()),
                ..Default::default()
            },
            "partition",
        ),
        (
            Overrides {
                time: Some("$(rm -rf ~)".into()),
                ..Default::default()
            },
            "time",
        ),
        (
            Overrides {
                time: Some("10:00\n#SBATCH --uid=0".into()),
                ..Default::default()
            },
            "time",
        ),
    ] {
        let err = lab.resolve(&name, &overrides, &dir).unwrap_err();
        assert_eq!(err.field(), field, "{err}");
    }
    let err = lab
        .resolve("x'; id", &Overrides::default(), &dir)
        .unwrap_err();
    assert_eq!(err.field(), "cluster name");
    // A well-formed but unknown partition reaches sbatch, which refuses it: its stderr verbatim.
    let nosuch = lab
        .resolve(
            &name,
            &Overrides {
                partition: Some("nosuch".into()),
                ..Default::default()
            },
            &dir,
        )
        .unwrap();
    let scheduler_file = dir.join("scheduler.json");
    let heartbeat = dir.join("heartbeat");
    std::fs::write(&heartbeat, "").unwrap();
    let tls = certificates(&dir, &name);
    let ctx = JobContext {
        user: &user,
        scheduler_file: &scheduler_file,
        heartbeat_file: Some(&heartbeat),
        tls: Some(&tls),
    };
    let bad_script = dir.join("nosuch.sh");
    std::fs::write(&bad_script, render_up(&nosuch, &ctx).unwrap().text).unwrap();
    match slurm.sbatch(&bad_script, &[]) {
        Err(SlurmError::Failed {
            program, stderr, ..
        }) => {
            assert_eq!(program, "sbatch");
            assert!(
                stderr.contains("invalid partition specified: nosuch"),
                "{stderr}"
            );
        }
        other => panic!("expected sbatch to refuse the partition, got {other:?}"),
    }
    assert_eq!(named(), 0, "a refused cluster must not leave a job");

    // up
    let spec = lab
        .resolve(&name, &Overrides::default(), &dir.join("logs"))
        .unwrap();
    std::fs::create_dir_all(&spec.log_dir).unwrap();
    let up = render_up(&spec, &ctx).unwrap();
    assert_eq!(up.workers_expected, 3);
    let up_path = dir.join("up.sh");
    std::fs::write(&up_path, &up.text).unwrap();
    let export = vec![format!("--export=ALL,RCK_DASK_VENV={}", venv.display())];
    let t_submit = Instant::now();
    let up_id = slurm.sbatch(&up_path, &export).unwrap().job_id;
    let mut guard = Jobs {
        slurm: &slurm,
        ids: vec![up_id.clone()],
    };

    let job = wait_for("the up job to run", Duration::from_secs(60), || {
        let job = slurm.jobs(std::slice::from_ref(&up_id)).unwrap().remove(0);
        assert!(
            !job.state.is_finished(),
            "up job ended: {job:?}; log {:?}",
            slurm.job_log_path(&up_id)
        );
        (job.state == JobState::Running).then_some(job)
    });
    let t_running = t_submit.elapsed();
    assert_eq!(job.node_count, 2);
    assert_eq!(job.name, name);
    let tag = job.tag().expect("our comment tag");
    assert_eq!(
        (tag.user.as_str(), tag.cluster.as_deref(), tag.role),
        (user.as_str(), Some(name.as_str()), JobRole::Scheduler)
    );

    let identity: serde_json::Value =
        wait_for("the scheduler file", Duration::from_secs(60), || {
            let text = std::fs::read_to_string(&scheduler_file).ok()?;
            serde_json::from_str(&text).ok()
        });
    let t_file = t_submit.elapsed();
    let address = identity["address"].as_str().unwrap().to_owned();
    assert!(address.starts_with("tls://"), "{address}");
    let host = address
        .trim_start_matches("tls://")
        .rsplit_once(':')
        .unwrap()
        .0
        .to_owned();
    let port = identity["services"]["dashboard"].as_u64().unwrap();
    let base = format!("http://{host}:{port}");
    let names = wait_for("3 workers", Duration::from_secs(60), || {
        worker_names(&base).filter(|n| n.len() == 3)
    });
    let t_workers = t_submit.elapsed();
    for rank in 1..=3 {
        assert!(
            names.contains(&format!("{name}-{up_id}-{rank}")),
            "{names:?}"
        );
    }

    // grow: one worker per node, two more in all.
    let grow_spec = lab
        .resolve(
            &name,
            &Overrides {
                workers_per_node: Some(1),
                ..Default::default()
            },
            &dir.join("logs"),
        )
        .unwrap();
    let grow = render_grow(&grow_spec, &ctx).unwrap();
    assert_eq!(grow.workers_expected, 2);
    let grow_path = dir.join("grow.sh");
    std::fs::write(&grow_path, &grow.text).unwrap();
    let t_grow = Instant::now();
    let grow_id = slurm.sbatch(&grow_path, &export).unwrap().job_id;
    guard.ids.push(grow_id.clone());
    let names = wait_for("5 workers", Duration::from_secs(60), || {
        worker_names(&base).filter(|n| n.len() == 5)
    });
    let t_grown = t_grow.elapsed();
    assert!(
        names.contains(&format!("{name}-grow-{grow_id}-0")),
        "{names:?}"
    );

    // What the magics read: both jobs in one squeue call, the log path, our tags, %squeue, %sinfo.
    let both = slurm.jobs(&[up_id.clone(), grow_id.clone()]).unwrap();
    assert_eq!(
        both.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
        [up_id.as_str(), grow_id.as_str()]
    );
    assert!(
        both.iter().all(|j| j.state == JobState::Running),
        "{both:?}"
    );
    let log = slurm.job_log_path(&up_id).unwrap();
    assert_eq!(log, spec.log_dir.join(format!("slurm-{up_id}.out")));
    let tagged = slurm.find_tagged_jobs(&user).unwrap();
    let role_of = |id: &str| tagged.iter().find(|t| t.job.id == id).map(|t| t.tag.role);
    assert_eq!(role_of(&up_id), Some(JobRole::Scheduler));
    assert_eq!(role_of(&grow_id), Some(JobRole::Grow));
    let mine = slurm.my_jobs(&["-p".into(), "multiple".into()]).unwrap();
    assert!(mine.iter().any(|j| j.id == grow_id), "{mine:?}");
    let partitions = slurm.partitions().unwrap();
    let multiple = partitions
        .iter()
        .find(|p| p.name == "multiple")
        .expect("partition multiple");
    assert!(
        multiple.nodes_allocated >= 1 && multiple.nodes_total >= 2,
        "{multiple:?}"
    );
    assert!(
        partitions
            .iter()
            .any(|p| p.name == "single" && p.is_default),
        "{partitions:?}"
    );

    // cancel: both jobs end, and the scheduler's HTTP goes away.
    let t_cancel = Instant::now();
    slurm.cancel(&[grow_id.clone(), up_id.clone()]).unwrap();
    let ended = wait_for("both jobs to end", Duration::from_secs(30), || {
        let jobs = slurm.jobs(&[up_id.clone(), grow_id.clone()]).unwrap();
        jobs.iter().all(|j| j.state.is_finished()).then_some(jobs)
    });
    let t_ended = t_cancel.elapsed();
    assert!(
        ended.iter().all(|j| j.state == JobState::Cancelled),
        "{ended:?}"
    );
    wait_for(
        "the scheduler to stop answering",
        Duration::from_secs(30),
        || worker_names(&base).is_none().then_some(()),
    );
    wait_for("no dask-mpi process left", Duration::from_secs(30), || {
        dask_processes(&scheduler_file).is_empty().then_some(())
    });
    guard.ids.clear();
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains("distributed.scheduler"),
        "log: {log_text}"
    );
    eprintln!(
        "timings: sbatch->RUNNING {:.1}s, ->scheduler file {:.1}s, ->3 workers {:.1}s; \
         grow ->5 workers {:.1}s; scancel ->both ended {:.1}s; whole test {:.1}s",
        t_running.as_secs_f32(),
        t_file.as_secs_f32(),
        t_workers.as_secs_f32(),
        t_grown.as_secs_f32(),
        t_ended.as_secs_f32(),
        t0.elapsed().as_secs_f32()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Pids of the processes whose command line names `scheduler_file` (the lab's "nodes" are this
/// machine, so /proc shows every rank).
fn dask_processes(scheduler_file: &Path) -> Vec<String> {
    let needle = scheduler_file.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let pid = e.file_name().into_string().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            (cmdline.contains("dask-mpi") && cmdline.contains(&needle)).then_some(pid)
        })
        .collect()
}

#[test]
#[ignore = "needs the lab SLURM (tests/slurm/up.sh)"]
fn watchdog_ends_a_job_whose_kernel_is_gone() {
    let slurm = lab_slurm();
    let venv = dask_venv();
    let profiles = ProfileSet::load_from(
        Some(&repo_root().join("tests/slurm/test-profile.toml")),
        Some("lab"),
    )
    .unwrap();
    let dir = scratch("watchdog");
    let overrides = Overrides {
        workers_per_node: Some(1),
        watchdog_minutes: Some(0.1),
        ..Default::default()
    };
    let spec = profiles
        .get(None)
        .unwrap()
        .resolve(&format!("rck-wd-{}", std::process::id()), &overrides, &dir)
        .unwrap();
    std::fs::create_dir_all(&spec.log_dir).unwrap();
    // The kernel "died" an hour ago: its heartbeat file is stale.
    let heartbeat = dir.join("heartbeat");
    std::fs::write(&heartbeat, "").unwrap();
    let status = std::process::Command::new("touch")
        .args(["-d", "1 hour ago"])
        .arg(&heartbeat)
        .status()
        .unwrap();
    assert!(status.success());
    let user = current_user().unwrap();
    let tls = certificates(&dir, &spec.name);
    let ctx = JobContext {
        user: &user,
        scheduler_file: &dir.join("scheduler.json"),
        heartbeat_file: Some(&heartbeat),
        tls: Some(&tls),
    };
    let script = dir.join("up.sh");
    std::fs::write(&script, render_up(&spec, &ctx).unwrap().text).unwrap();
    let export = vec![format!("--export=ALL,RCK_DASK_VENV={}", venv.display())];
    let id = slurm.sbatch(&script, &export).unwrap().job_id;
    let _guard = Jobs {
        slurm: &slurm,
        ids: vec![id.clone()],
    };
    let job = wait_for(
        "the watchdog to cancel the job",
        Duration::from_secs(60),
        || {
            let job = slurm.jobs(std::slice::from_ref(&id)).unwrap().remove(0);
            job.state.is_finished().then_some(job)
        },
    );
    assert_eq!(job.state, JobState::Cancelled, "{job:?}");
    let log = std::fs::read_to_string(slurm.job_log_path(&id).unwrap()).unwrap();
    assert!(
        log.contains(&format!("not touched for 6 s; ending job {id}")),
        "log: {log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs the lab SLURM (tests/slurm/up.sh)"]
fn staged_environment_is_unpacked_on_each_node() {
    let slurm = lab_slurm();
    let venv = dask_venv();
    let dir = scratch("staged");
    // A stand-in for a conda-pack/venv-pack tarball: its bin/activate puts the real venv on
    // PATH and says where it was unpacked.
    let env = dir.join("env");
    std::fs::create_dir_all(env.join("bin")).unwrap();
    std::fs::write(
        env.join("bin/activate"),
        "export PATH=\"$RCK_DASK_VENV/bin:$PATH\"\n\
         echo \"staged env activated from ${BASH_SOURCE[0]}\" >&2\n",
    )
    .unwrap();
    let archive = dir.join("env.tar.gz");
    let tar = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(&env)
        .arg(".")
        .status()
        .unwrap();
    assert!(tar.success());
    let profiles = ProfileSet::load_from(
        Some(&repo_root().join("tests/slurm/test-profile.toml")),
        Some("lab"),
    )
    .unwrap();
    let overrides = Overrides {
        env_archive: Some(archive.to_string_lossy().into_owned()),
        workers_per_node: Some(1),
        ..Default::default()
    };
    let spec = profiles
        .get(None)
        .unwrap()
        .resolve(&format!("rck-st-{}", std::process::id()), &overrides, &dir)
        .unwrap();
    std::fs::create_dir_all(&spec.log_dir).unwrap();
    let user = current_user().unwrap();
    let scheduler_file = dir.join("scheduler.json");
    let tls = certificates(&dir, &spec.name);
    let ctx = JobContext {
        user: &user,
        scheduler_file: &scheduler_file,
        heartbeat_file: None,
        tls: Some(&tls),
    };
    let script = dir.join("up.sh");
    std::fs::write(&script, render_up(&spec, &ctx).unwrap().text).unwrap();
    let export = vec![format!("--export=ALL,RCK_DASK_VENV={}", venv.display())];
    let id = slurm.sbatch(&script, &export).unwrap().job_id;
    let _guard = Jobs {
        slurm: &slurm,
        ids: vec![id.clone()],
    };
    let identity: serde_json::Value =
        wait_for("the scheduler file", Duration::from_secs(60), || {
            serde_json::from_str(&std::fs::read_to_string(&scheduler_file).ok()?).ok()
        });
    assert!(identity["address"].as_str().is_some());
    let log = std::fs::read_to_string(slurm.job_log_path(&id).unwrap()).unwrap();
    assert!(
        log.contains(&format!(
            "staged env activated from /tmp/rck-env-{id}/bin/activate"
        )),
        "log: {log}"
    );
    // One srun task per node unpacked it (both emulated nodes share this machine's /tmp).
    for node in ["n1", "n2"] {
        assert!(
            log.contains(&format!(
                "environment unpacked to /tmp/rck-env-{id} on {node}"
            )),
            "log: {log}"
        );
    }
    slurm.cancel(std::slice::from_ref(&id)).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(format!("/tmp/rck-env-{id}"));
}

#[test]
#[ignore = "needs the lab SLURM (tests/slurm/up.sh)"]
fn batch_cell_job_is_tagged_and_logged() {
    let slurm = lab_slurm();
    let dir = scratch("batch");
    let user = current_user().unwrap();
    let tag = CommentTag {
        user: user.clone(),
        cluster: None,
        role: JobRole::Batch,
    };
    let body =
        "#SBATCH --partition=single\n#SBATCH --ntasks=1\necho \"hello from $SLURM_JOB_ID\"\n";
    let script = dir.join("batch.sh");
    std::fs::write(&script, wrap_batch(body, &tag, &dir, &[]).unwrap()).unwrap();
    let id = slurm
        .sbatch(&script, &["--job-name=rck-batch".to_owned()])
        .unwrap()
        .job_id;
    let _guard = Jobs {
        slurm: &slurm,
        ids: vec![id.clone()],
    };
    let job = wait_for("the batch job to end", Duration::from_secs(60), || {
        let job = slurm.jobs(std::slice::from_ref(&id)).unwrap().remove(0);
        job.state.is_finished().then_some(job)
    });
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    assert_eq!(job.tag(), Some(tag));
    let log = slurm.job_log_path(&id).unwrap();
    assert_eq!(log, dir.join(format!("slurm-{id}.out")));
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        format!("hello from {id}\n")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs the lab SLURM (tests/slurm/up.sh)"]
fn unreachable_controller_is_reported_as_such() {
    let slurm = lab_slurm();
    // A private copy of the lab's configuration pointing at a port where no slurmctld listens:
    // the real clients fail as they would with the controller down, and the shared lab SLURM
    // keeps running for everyone else.
    let conf = std::env::var_os("SLURM_CONF")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/slurm/slurm.conf"));
    let text = std::fs::read_to_string(&conf).expect("the lab's slurm.conf");
    let free_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead: String = text
        .lines()
        .map(|l| {
            if l.starts_with("SlurmctldPort=") {
                format!("SlurmctldPort={free_port}")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let dir = scratch("dead");
    let dead_conf = dir.join("slurm.conf");
    std::fs::write(&dead_conf, dead).unwrap();
    let dead_slurm = Slurm::new(None, Some(dead_conf)).with_timeout(slurm.timeout());
    let script = dir.join("job.sh");
    std::fs::write(&script, "#!/bin/bash\ntrue\n").unwrap();
    // squeue and sbatch each take SLURM's own ~9 s to give up; ask both at once.
    let started = Instant::now();
    let submit = {
        let (dead_slurm, script) = (dead_slurm.clone(), script.clone());
        std::thread::spawn(move || dead_slurm.sbatch(&script, &[]))
    };
    match dead_slurm.jobs(&["1".into(), "2".into()]) {
        Err(SlurmError::ControllerUnreachable { stderr, .. }) => {
            assert!(
                stderr.contains("Unable to contact slurm controller"),
                "{stderr}"
            );
        }
        other => panic!("expected ControllerUnreachable, got {other:?}"),
    }
    eprintln!(
        "squeue against a dead controller failed after {:.1}s",
        started.elapsed().as_secs_f32()
    );
    let err = submit.join().unwrap().unwrap_err();
    assert!(
        matches!(err, SlurmError::ControllerUnreachable { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("not reachable"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
