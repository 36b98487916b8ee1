"""A kernel that itself runs inside a SLURM job, as under JupyterHub's batchspawner or Open
OnDemand: the cluster jobs it submits must not inherit the notebook job's settings (its
`SLURM_MEM_PER_CPU`, `SLURM_CPUS_PER_TASK`, … made every multi-node cluster's `srun` fail), on
the real lab SLURM."""
import json
import subprocess
import sys
import textwrap

import pytest

from slurm_lab import ROOT, squeue_ids, wait_until

pytestmark = pytest.mark.slurm

# Runs inside the notebook job: starts the kernel there, brings a 2-node cluster up, and records
# what the cluster's job got.
DRIVER = textwrap.dedent(
    """
    import json, os, subprocess, sys
    sys.path[:0] = [{tests!r}, {cluster_tests!r}]
    from slurm_lab import Kernel, squeue_ids
    result = {{"notebook_job": {{k: os.environ.get(k) for k in ("SLURM_JOB_ID", "SLURM_MEM_PER_CPU", "SLURM_CPUS_PER_TASK")}}}}
    kernel = Kernel(dict(os.environ))
    try:
        up = kernel.run("%cluster up injob --wait --timeout 150", timeout=240)
        result["up"] = up.reply["content"]["status"]
        result["up_error"] = up.reply["content"].get("evalue")
        status = kernel.run("%cluster status injob").of("display_data")
        result["card"] = status[0]["content"]["data"]["text/plain"] if status else ""
        result["jobs"] = {{i: subprocess.run(["scontrol", "show", "job", i], capture_output=True, text=True).stdout
                          for i in squeue_ids("injob")}}
    finally:
        kernel.run("%cluster cancel injob", timeout=120)
        kernel.stop()
        with open(sys.argv[1], "w") as f:
            json.dump(result, f)
    """
)


def scontrol_fields(text):
    return dict(field.split("=", 1) for field in text.split() if "=" in field)


def test_cluster_jobs_do_not_inherit_the_notebook_jobs_settings(lab_env, tmp_path):
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(tests=str(ROOT / "tests"), cluster_tests=str(ROOT / "tests/cluster")))
    out = tmp_path / "result.json"
    submitted = subprocess.run(
        ["sbatch", "--parsable", "--job-name=notebook-job", "--partition=single", "--nodes=1",
         "--cpus-per-task=2", "--mem-per-cpu=100", "--time=10:00", f"--output={tmp_path / 'notebook-job.out'}",
         "--wrap", f"{sys.executable} {driver} {out}"],
        env=lab_env, capture_output=True, text=True,
    )
    assert submitted.returncode == 0, submitted.stderr
    job = submitted.stdout.strip().split(";")[0]
    try:
        wait_until(lambda: out.exists() or job not in squeue_ids(), 300, "the notebook job to finish")
    finally:
        subprocess.run(["scancel", job])
    log = (tmp_path / "notebook-job.out").read_text() if (tmp_path / "notebook-job.out").exists() else ""
    assert out.exists(), f"the driver wrote no result; its log:\n{log}"
    result = json.loads(out.read_text())
    # The kernel really ran inside a job with those settings...
    assert result["notebook_job"] == {"SLURM_JOB_ID": job, "SLURM_MEM_PER_CPU": "100", "SLURM_CPUS_PER_TASK": "2"}
    # ...and still got a 2-node cluster with all its workers (srun died there before).
    assert result["up"] == "ok", (result["up_error"], log)
    workers = next(line for line in result["card"].splitlines() if line.startswith("workers"))
    assert "3/3" in workers, result["card"]
    # The cluster's job has the profile's resources, not the notebook job's.
    [(cluster_job, shown)] = result["jobs"].items()
    fields = scontrol_fields(shown)
    assert cluster_job != job
    assert fields["NumNodes"] == "2", shown
    assert fields["CPUs/Task"] == "1", shown  # threads_per_worker of the lab profile
    assert fields["MinMemoryNode"] == "2400M", shown  # mem of the lab profile, not 2 x 100M per CPU
    assert not squeue_ids("injob")
