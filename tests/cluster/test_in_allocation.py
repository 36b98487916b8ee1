"""`%cluster up --in-allocation`: a kernel that runs inside a SLURM job the way JupyterHub's
batchspawner starts it (the notebook server in an `srun` step of a batch job) starts Dask as job
steps of that job, with no second queue wait, on the real lab SLURM; its grow jobs are batch jobs,
and cancel and shutdown leave no step behind."""
import json
import pathlib
import subprocess
import sys
import textwrap

import pytest

from slurm_lab import ROOT, squeue_ids, wait_until

pytestmark = pytest.mark.slurm

# Runs inside the notebook job's step: the kernel, two clusters in the allocation (one by flag,
# one by a profile with placement = "auto"), a grow job, cancel, and a shutdown with a cluster up.
DRIVER = textwrap.dedent(
    """
    import json, os, subprocess, sys
    sys.path[:0] = [{tests!r}, {cluster_tests!r}]
    from slurm_lab import Kernel, squeue_ids, wait_until
    job = os.environ["SLURM_JOB_ID"]
    result = {{"step": os.environ.get("SLURM_STEP_ID"), "steps": {{}}}}

    def steps():
        out = subprocess.run(["squeue", "-h", "--steps", "-j", job, "-o", "%i %j"],
                             capture_output=True, text=True).stdout
        return sorted(line.split()[1] for line in out.splitlines() if line.split()[1].startswith("alloc-"))

    def card(kernel, name):
        shown = kernel.run("%cluster status " + name).of("display_data")
        return shown[0]["content"]["data"]["text/plain"] if shown else ""

    kernel = Kernel(dict(os.environ))
    try:
        up = kernel.run("%cluster up nb --in-allocation --notebook-cores 1 --notebook-mem 1G --wait --timeout 150", timeout=240)
        result["up"] = [up.reply["content"]["status"], up.reply["content"].get("evalue")]
        result["queue_after_up"] = squeue_ids()
        result["card"] = card(kernel, "nb")
        result["steps"]["up"] = steps()
        result["script"] = open(sorted(__import__("glob").glob(os.path.join(
            os.environ["XDG_STATE_HOME"], "rust-cluster-kernel/nb/up-*.sh")))[-1]).read()
        grow = kernel.run("%cluster grow nb --nodes 2 --workers-per-node 1", timeout=120)
        result["grow"] = [grow.reply["content"]["status"], grow.reply["content"].get("evalue")]
        result["grow_jobs"] = squeue_ids("nb-grow")
        wait = kernel.run("%cluster wait nb --workers 5 --timeout 150", timeout=240)
        result["wait"] = [wait.reply["content"]["status"], wait.reply["content"].get("evalue")]
        result["card_grown"] = card(kernel, "nb")
        cancel = kernel.run("%cluster cancel nb", timeout=120)
        result["cancel"] = cancel.reply["content"]["status"]
        result["steps"]["after_cancel"] = steps()
        result["grow_jobs_after_cancel"] = [j for j in result["grow_jobs"] if j in squeue_ids()]
        # The default profile here is "inalloc", chosen by RUST_CLUSTER_KERNEL_PROFILE.
        auto = kernel.run("%cluster up nb2 --wait --timeout 150", timeout=240)
        result["auto"] = [auto.reply["content"]["status"], auto.reply["content"].get("evalue")]
        result["card_auto"] = card(kernel, "nb2")
        result["steps"]["auto"] = steps()
        # A restarted kernel finds the launch through its steps, and its shutdown ends them.
        kernel.restart()
        result["card_restarted"] = card(kernel, "nb2")
    finally:
        kernel.stop()
        try:
            wait_until(lambda: not steps(), 90, "the steps to end")
        except AssertionError:
            pass
        result["steps"]["after_shutdown"] = steps()
        with open(sys.argv[1], "w") as f:
            json.dump(result, f)
    """
)


def test_a_cluster_in_the_notebooks_own_allocation(lab_env, tmp_path):
    env = dict(lab_env)
    # A profile whose placement is "auto": inside a job with room, the allocation.
    profile = (ROOT / "tests/slurm/test-profile.toml").read_text().replace("[profiles.lab", "[profiles.inalloc")
    profile = profile.replace('poll_interval_secs = 5', 'poll_interval_secs = 5\nplacement = "auto"\nnotebook_cores = 1\nnotebook_mem = "1G"')
    # Its watchdog ends the launch 12 s after the last kernel that knew it stopped.
    profile = profile.replace("watchdog_minutes = 2", "watchdog_minutes = 0.2")
    config_dir = tmp_path / "config/rust-cluster-kernel"
    config_dir.mkdir(parents=True)
    lab_config = pathlib.Path(lab_env["XDG_CONFIG_HOME"]) / "rust-cluster-kernel/config.toml"
    (config_dir / "config.toml").write_text(lab_config.read_text() + "\n" + profile)
    # The kernel's default profile, as a site would set it for its JupyterHub: placement "auto".
    env.update(XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_STATE_HOME=str(tmp_path / "state"),
               RUST_CLUSTER_KERNEL_PROFILE="inalloc")
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(tests=str(ROOT / "tests"), cluster_tests=str(ROOT / "tests/cluster")))
    out = tmp_path / "result.json"
    log = tmp_path / "notebook-job.out"
    # The notebook job as batchspawner submits it: the server (here the driver) in an srun step.
    submitted = subprocess.run(
        ["sbatch", "--parsable", "--job-name=notebook-job", "--partition=multiple", "--nodes=2",
         "--ntasks-per-node=1", "--cpus-per-task=2", "--mem=3000", "--time=10:00", f"--output={log}",
         "--wrap", f"srun --nodes=1 --ntasks=1 {sys.executable} {driver} {out}"],
        env=env, capture_output=True, text=True,
    )
    assert submitted.returncode == 0, submitted.stderr
    job = submitted.stdout.strip().split(";")[0]
    try:
        wait_until(lambda: out.exists() or job not in squeue_ids(), 600, "the notebook job to finish")
    finally:
        subprocess.run(["scancel", job])
    text = log.read_text() if log.exists() else ""
    assert out.exists(), f"the driver wrote no result; its log:\n{text}"
    r = json.loads(out.read_text())
    assert r["step"] == "0", "the kernel ran in a step of the notebook job, as under batchspawner"
    assert r["up"] == ["ok", None], (r["up"], text)
    # No second job: the cluster is steps of the notebook job.
    assert r["queue_after_up"] == [job], r["queue_after_up"]
    assert f"in job {job}, 2 nodes" in r["card"], r["card"]
    workers = next(line for line in r["card"].splitlines() if line.startswith("workers"))
    # 1 of n1's 2 CPUs is the notebook's, n2's 2 are free: 1 + 2 workers of 1 thread.
    assert "3/3" in workers, r["card"]
    # The notebook job's walltime is the cluster's.
    assert "10:00" in r["card"], r["card"]
    # One step for the scheduler and one per node for its workers, all named after the launch.
    assert len(r["steps"]["up"]) == 3 and len(set(r["steps"]["up"])) == 1, r["steps"]
    # 90 % of each node's 3000 MiB, less the notebook's 1 GiB on n1, shared by its workers.
    assert "--memory-limit 1778MiB \\\n  --name nb-n1" in r["script"], r["script"]
    assert "--memory-limit 1350MiB \\\n  --name nb-n2" in r["script"], r["script"]
    # A grow job is a batch job of its own, and its workers join the same scheduler.
    assert r["grow"] == ["ok", None] and len(r["grow_jobs"]) == 1, r
    assert r["wait"] == ["ok", None], r["wait"]
    assert "5/5" in r["card_grown"], r["card_grown"]
    # Cancel ends the steps and the grow job.
    assert r["cancel"] == "ok"
    assert r["steps"]["after_cancel"] == [], r["steps"]
    assert r["grow_jobs_after_cancel"] == [], r
    # placement = "auto" in the profile the environment chose: inside a job with room, the
    # allocation again.
    assert r["auto"] == ["ok", None], r["auto"]
    assert f"in job {job}" in r["card_auto"], r["card_auto"]
    assert r["steps"]["auto"], r["steps"]
    assert "nb2  [running]" in r["card_restarted"] and "3/3" in r["card_restarted"], r["card_restarted"]
    # Nothing is left running: a cluster that a restarted kernel re-attached (it did not start
    # it, so its shutdown leaves it, as for batch clusters) is ended by its watchdog.
    assert r["steps"]["after_shutdown"] == [], r["steps"]


def test_in_allocation_outside_a_job_says_so_and_submits_nothing(kernel):
    before = squeue_ids()
    r = kernel.run("%cluster up outside --in-allocation")
    assert r.reply["content"]["status"] == "error"
    assert "does not run inside a SLURM job" in r.reply["content"]["evalue"], r.reply["content"]
    assert squeue_ids() == before
    # The flag and an explicit backend contradict each other: clap says so.
    r = kernel.run("%cluster up outside --in-allocation --backend slurm")
    assert r.reply["content"]["status"] == "error"
    assert "--backend" in r.reply["content"]["evalue"], r.reply["content"]
