//! The launcher of a cluster inside the SLURM job the kernel runs in: a bash script that the
//! kernel runs on its own node, which starts the scheduler and the workers as job steps of that
//! job (`srun --jobid=JOB --overlap`), with no second queue wait.
//!
//! It shares the batch script's set-up (umask, watchdog, prologue, Python environment, the
//! profile's environment, TLS) and differs in the launch:
//!
//! - no `mpirun`: MPI inside a step that shares its CPUs is what sites get wrong most, and Dask
//!   needs none of it. The scheduler is `dask scheduler` in a one-CPU step on the kernel's node;
//!   each node's workers are one `dask worker --nworkers W` step of `W × threads` CPUs;
//! - `SLURM_OVERLAP=1` for every `srun` of the script (the prologue's and the environment
//!   staging's too): since SLURM 20.11 steps do not share CPUs, and JupyterHub's batchspawner
//!   runs the notebook server itself in a step that holds them, so a plain `srun` would wait
//!   forever;
//! - every step is named after the launch (`--job-name="$RCK_LAUNCH_ID"`, set by the kernel), so
//!   a restarted kernel finds and ends them with `squeue --steps` and `scancel JOB.STEP`;
//! - the watchdog ends the launcher's process group (its `srun`s end their steps), never the
//!   notebook's job;
//! - the cluster lives as long as its scheduler step: when it ends, the workers' steps are ended.

use std::fmt::Write as _;

use super::{
    dashboard_ip, job_setup, literal_word, path_word, protocol, JobContext, JobScript, ScriptError,
    WatchdogEnd, WORKER_DEATH_TIMEOUT_SECS,
};
use crate::model::JobRole;
use crate::slurm::AllocationLayout;
use crate::spec::{ClusterSpec, Security, ShellText};

/// The variable, set by the kernel when it starts the launcher, that names the launch: the
/// name of every step it starts, and the cluster's job id on the card.
pub const LAUNCH_ID_VAR: &str = "RCK_LAUNCH_ID";

/// The watchdog of a launcher ends the launcher's own process group: its `srun`s end their
/// steps. The notebook's job goes on.
const END_THE_STEPS: WatchdogEnd = WatchdogEnd {
    what: "ending the cluster's job steps",
    command: "kill -TERM 0",
};

/// The launcher of cluster `spec.name` in `layout` (see the module's documentation).
pub fn render_in_allocation(
    spec: &ClusterSpec,
    ctx: &JobContext<'_>,
    layout: &AllocationLayout,
) -> Result<JobScript, ScriptError> {
    spec.validate()?;
    let tls_dir = match (spec.security, ctx.tls) {
        (Security::Tls, Some(files)) => Some(path_word("tls", files.dir())?),
        (Security::Tls, None) => return Err(ScriptError::NoCertificates(spec.name.clone())),
        (Security::None, _) => None,
    };
    let scheduler_file = path_word("scheduler_file", ctx.scheduler_file)?;
    let job = literal_word("job id", &layout.job_id)?;
    let interface = literal_word("interface", &spec.interface)?;
    let local_directory = ShellText::parse("local_directory", &spec.local_directory)?.to_shell();
    let shares = layout
        .nodes
        .iter()
        .map(|n| format!("{} on {}", n.workers, n.node))
        .collect::<Vec<_>>()
        .join(", ");

    let mut s = String::from("#!/bin/bash\n");
    let _ = writeln!(
        s,
        "# rust-cluster-kernel: Dask cluster {} (profile {}) inside job {}, as job steps:",
        spec.name, spec.profile, layout.job_id
    );
    let _ = writeln!(
        s,
        "# the scheduler on {} (the kernel's node); workers of {} thread(s): {shares}.",
        layout.scheduler_node, layout.threads
    );
    s.push_str(&job_setup(spec, ctx, tls_dir.as_deref(), &END_THE_STEPS)?);
    let _ = write!(
        s,
        r#"
# The job the steps run in. SLURM_OVERLAP: every srun here shares CPUs with the steps that
# run already, such as the notebook server's own (a plain srun would wait for them forever).
export SLURM_JOB_ID={job} SLURM_JOB_NUM_NODES={nodes} SLURM_OVERLAP=1
rck_step() {{  # NODE CPUS COMMAND…: one task on NODE, named after this launch
  local node=$1 cpus=$2
  shift 2
  srun --jobid={job} --job-name="${LAUNCH_ID_VAR}" --overlap --exact --nodes=1 --ntasks=1 \
    --nodelist="$node" --cpus-per-task="$cpus" "$@"
}}
"#,
        nodes = layout.nodes.len().max(1),
    );
    s.push_str(&dashboard_ip(&interface));
    let dashboard_port = spec.dashboard_port;
    let protocol = protocol(spec.security);
    let _ = write!(
        s,
        r#"
# The scheduler, on this node; --port 0: a free port (clusters may share the node).
rck_step {node} 1 dask scheduler \
  --scheduler-file {scheduler_file} \
  --port 0 \
  --dashboard-address "$rck_ip":{dashboard_port} \
  --protocol {protocol} \
  --interface {interface} &
rck_scheduler=$!
# The cluster lives as long as its scheduler: when the launcher ends, so do the workers' steps.
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT

# The workers: one step per node, `--nworkers` of them (each with its nanny), named after the
# node. No worker dashboard: the scheduler's is the one page, on the cluster's interface.
"#,
        node = literal_word("node", &layout.scheduler_node)?,
    );
    let mut common = vec![
        format!("--scheduler-file {scheduler_file}"),
        format!("--nthreads {}", layout.threads),
        format!("--protocol {protocol}"),
        format!("--interface {interface}"),
        format!("--local-directory {local_directory}"),
        format!(
            "--worker-class {}",
            literal_word("worker_class", &spec.worker_class)?
        ),
        format!("--death-timeout {WORKER_DEATH_TIMEOUT_SECS}"),
        "--no-dashboard".to_owned(),
    ];
    if !spec.worker_resources.is_empty() {
        let resources = spec
            .worker_resources
            .iter()
            .map(|(name, amount)| format!("{name}={amount}"))
            .collect::<Vec<_>>()
            .join(" ");
        common.push(format!(
            "--resources {}",
            literal_word("worker_resources", &resources)?
        ));
    }
    if let Some(lifetime) = &spec.lifetime {
        common.push(format!(
            "--lifetime {}",
            literal_word("lifetime", lifetime)?
        ));
    }
    if let Some(stagger) = &spec.lifetime_stagger {
        common.push(format!(
            "--lifetime-stagger {}",
            literal_word("lifetime_stagger", stagger)?
        ));
    }
    for share in &layout.nodes {
        let node = literal_word("node", &share.node)?;
        let _ = write!(
            s,
            "rck_step {node} {cpus} dask worker \\\n  --nworkers {workers}",
            cpus = share.workers * layout.threads,
            workers = share.workers,
        );
        for arg in &common {
            let _ = write!(s, " \\\n  {arg}");
        }
        let limit = spec
            .memory_limit
            .clone()
            .or(share.worker_memory_mib.map(|mib| format!("{mib}MiB")));
        if let Some(limit) = limit {
            let _ = write!(
                s,
                " \\\n  --memory-limit {}",
                literal_word("memory_limit", &limit)?
            );
        }
        let name = literal_word("worker name", &format!("{}-{}", spec.name, share.node))?;
        let _ = writeln!(s, " \\\n  --name {name} &");
    }
    s.push_str("\nwait \"$rck_scheduler\"\n");

    Ok(JobScript {
        role: JobRole::Scheduler,
        job_name: spec.name.clone(),
        tag: String::new(),
        ntasks: 1 + u32::try_from(layout.nodes.len()).unwrap_or(u32::MAX),
        workers_expected: layout.workers(),
        text: s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{Overrides, Profile};
    use crate::slurm::Allocation;
    use crate::tls::ClusterTls;
    use std::path::Path;

    fn lab_layout() -> AllocationLayout {
        Allocation::from_parts(
            "1234",
            vec!["n1".into(), "n2".into()],
            "4(x2)",
            Some("4096"),
            None,
            "n1",
        )
        .unwrap()
        .layout(1, 2, 1024)
        .unwrap()
    }

    fn render(spec: &ClusterSpec) -> JobScript {
        let tls = ClusterTls::in_dir("/home/alice/.local/state/rust-cluster-kernel/nb/tls");
        render_in_allocation(
            spec,
            &JobContext {
                user: "alice",
                scheduler_file: Path::new("/home/alice/.local/state/rust-cluster-kernel/nb/s.json"),
                heartbeat_file: Some(Path::new(
                    "/home/alice/.local/state/rust-cluster-kernel/nb/hb",
                )),
                tls: Some(&tls),
            },
            &lab_layout(),
        )
        .unwrap()
    }

    fn spec(overrides: Overrides) -> ClusterSpec {
        Profile::workshop()
            .resolve("nb", &overrides, Path::new("/home/alice"))
            .unwrap()
    }

    #[test]
    fn steps_for_the_scheduler_and_each_nodes_workers() {
        let job = render(&spec(Overrides::default()));
        let t = &job.text;
        assert_eq!(job.workers_expected, 6);
        assert!(
            t.contains("export SLURM_JOB_ID=1234 SLURM_JOB_NUM_NODES=2 SLURM_OVERLAP=1\n"),
            "{t}"
        );
        assert!(
            t.contains("srun --jobid=1234 --job-name=\"$RCK_LAUNCH_ID\" --overlap"),
            "{t}"
        );
        assert!(
            t.contains("rck_step n1 1 dask scheduler \\\n  --scheduler-file "),
            "{t}"
        );
        assert!(
            t.contains("rck_step n1 2 dask worker \\\n  --nworkers 2"),
            "{t}"
        );
        assert!(
            t.contains("rck_step n2 4 dask worker \\\n  --nworkers 4"),
            "{t}"
        );
        assert!(
            t.contains("--memory-limit 1382MiB \\\n  --name nb-n1 &"),
            "{t}"
        );
        assert!(
            t.contains("--memory-limit 921MiB \\\n  --name nb-n2 &"),
            "{t}"
        );
        assert!(t.contains("--protocol tls"), "{t}");
        assert!(
            t.contains("kill -TERM 0"),
            "the watchdog ends the steps: {t}"
        );
        assert!(!t.contains("scancel"), "never the notebook's job: {t}");
        assert!(!t.contains("mpirun") && !t.contains("#SBATCH"), "{t}");
        let out = std::process::Command::new("bash")
            .args(["-n", "-c", t])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn the_profiles_worker_settings_reach_every_worker() {
        let mut s = spec(Overrides {
            memory_limit: Some("2GiB".into()),
            lifetime: Some("55m".into()),
            ..Overrides::default()
        });
        s.worker_resources.insert("slot".into(), 1.0);
        let t = render(&s).text;
        assert_eq!(t.matches("--memory-limit 2GiB").count(), 2, "{t}");
        assert_eq!(t.matches("--resources 'slot=1'").count(), 2, "{t}");
        assert_eq!(t.matches("--lifetime 55m").count(), 2, "{t}");
    }
}
