"""JupyterLab inside a SLURM job, started the way JupyterHub's batchspawner starts it (`sbatch` a
script that runs the server in an `srun` step), on the lab SLURM, in headless Chromium: a cluster
in the notebook job's own allocation (no new job in squeue, its workers join) whose dashboard
opens through JupyterLab (jupyter-server-proxy, no ssh) and in Dask's JupyterLab panes, then a
batch cluster from the same notebook whose job has the profile's settings and not the notebook
job's, both cancelled, and after the kernel's shutdown nothing of either is left."""
import secrets
import shlex
import subprocess
import time

import pytest

from labserver import OUT, browser_checks, free_port, lab_command, lab_env, wait_ready

pytestmark = [pytest.mark.browser, pytest.mark.slurm]


def squeue(*args):
    return subprocess.run(["squeue", "-h", *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def lab_in_job(tmp_path):
    env = lab_env(tmp_path)
    port, token = free_port(), secrets.token_hex(16)
    log = tmp_path / "lab.log"
    server = " ".join(map(shlex.quote, lab_command(port, token, tmp_path)))
    # 2 nodes with 2 of their 4 CPUs each: the notebook's job; the other CPUs are for a batch cluster.
    submitted = subprocess.run(
        ["sbatch", "--parsable", "--job-name=jupyterhub-lab", "--partition=multiple", "--nodes=2",
         "--ntasks-per-node=1", "--cpus-per-task=2", "--mem=3000", "--time=15:00", f"--output={log}",
         "--wrap", f"srun --nodes=1 --ntasks=1 {server}"],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )
    assert submitted.returncode == 0, submitted.stderr
    job = submitted.stdout.strip().split(";")[0]
    try:
        wait_ready(f"http://127.0.0.1:{port}", token, log, alive=lambda: job in squeue("-o", "%i").split())
        yield f"http://127.0.0.1:{port}", token, job
    finally:
        subprocess.run(["scancel", job])


def test_a_notebook_in_a_slurm_job_gets_a_cluster_in_its_allocation(lab_in_job):
    base, token, job = lab_in_job
    checks = browser_checks("lab-in-job.mjs", base, token, OUT)
    failed = [c for c in checks.values() if not c["ok"]]
    assert not failed, failed
    assert f"in job {job}, 2 nodes" in checks["in-allocation card"]["detail"], checks["in-allocation card"]
    # The dashboard through JupyterLab: a path of the server's own origin, no ssh.
    assert checks["Dask's status page through JupyterLab"]["detail"].startswith(f"{base}/proxy/"), checks
    assert "ssh -N -L" not in checks["in-allocation card"]["detail"], checks["in-allocation card"]
    # No second job for the in-allocation cluster: the queue held the notebook's job alone.
    queued = checks["queue after the in-allocation cluster"]["detail"].splitlines()
    assert [line.split()[0] for line in queued] == [job], queued
    # The batch cluster's job has the lab profile's settings, not the notebook job's.
    shown = checks["batch cluster's job"]["detail"]
    fields = dict(f.split("=", 1) for f in shown.split() if "=" in f)
    assert fields["NumNodes"] == "2" and fields["CPUs/Task"] == "1" and fields["MinMemoryNode"] == "2400M", shown
    assert "kernel shut down" in checks
    # Nothing left: no step of a launch in the notebook's job, no batch cluster job.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and ("alloc-" in squeue("--steps", "-j", job, "-o", "%j") or "batchjob" in squeue("-o", "%j")):
        time.sleep(1)
    assert "alloc-" not in squeue("--steps", "-j", job, "-o", "%j")
    assert "batchjob" not in squeue("-o", "%j")
    assert "Task Stream" in checks["Dask's panes open in JupyterLab"]["detail"], checks
    for shot in ["in-job-card.png", "dashboard-in-job.png", "dask-panes-in-job.png"]:
        assert (OUT / shot).stat().st_size > 1000, shot
