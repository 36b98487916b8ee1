"""A grow job drains before its walltime (issue 11), on the real lab SLURM: the USR1 that SLURM
sends its batch shell `drain_margin` seconds before the limit (`#SBATCH --signal=B:USR1@300`;
here sent at once, as SLURM sends it, with `scancel --signal=USR1 --batch`) makes the script's
trap retire the job's workers through the scheduler. Their results move to the up job's workers,
the grow job ends COMPLETED, the card goes back to 3 workers without an error, and nothing is
lost."""
import json
import subprocess

import pytest

from slurm_lab import squeue_ids, wait_until

pytestmark = pytest.mark.slurm

NAME = "drainer"


def card(kernel):
    return kernel.run(f"%cluster status {NAME}").of("display_data")[-1]["content"]["data"]["text/plain"]


def workers_line(text):
    return next(line for line in text.splitlines() if line.startswith("workers"))


def job_state(job):
    shown = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
    return next((w.split("=", 1)[1] for w in shown.split() if w.startswith("JobState=")), None)


def test_usr1_retires_a_grow_jobs_workers_and_keeps_their_results(kernel):
    up = kernel.run(f"%cluster up {NAME} --wait --timeout 90")
    assert up.status == "ok", up.reply["content"]
    try:
        grow_options = "--nodes 2 --workers-per-node 1"
        script = kernel.run(f"%cluster script {NAME} --grow {grow_options}").result["text/plain"]
        assert "#SBATCH --signal=B:USR1@300\n" in script, script
        assert "trap 'rck_signalled=1; rck_drain' USR1" in script
        grow = kernel.run(f"%cluster grow {NAME} {grow_options}")
        assert grow.status == "ok", grow.reply["content"]
        [job] = squeue_ids(f"{NAME}-grow")
        waited = kernel.run(f"%cluster wait {NAME} --workers 5 --timeout 90", timeout=120)
        assert waited.status == "ok", waited.reply["content"]

        # Results that live on the grow job's two workers only (no replica anywhere else).
        placed = kernel.run(
            "%%python\n"
            "import json\n"
            "from dask.distributed import Client, wait\n"
            "client = Client()\n"
            "info = client.scheduler_info()['workers']\n"
            f"grown = sorted(a for a, w in info.items() if str(w['name']).startswith('{NAME}-grow-'))\n"
            "futures = client.map(lambda i: list(range(i * 1000, (i + 1) * 1000)), range(40),\n"
            "                     workers=grown, allow_other_workers=False, pure=False)\n"
            "wait(futures)\n"
            "holders = {a for f in futures for a in client.who_has([f])[f.key]}\n"
            "print(json.dumps({'grown': grown, 'holders': sorted(holders),\n"
            "                  'names': sorted(str(w['name']) for w in info.values())}))",
            timeout=120,
        )
        assert placed.status == "ok", placed.reply["content"]
        seen = json.loads(placed.stdout.strip().splitlines()[-1])
        assert seen["grown"] and len(seen["grown"]) == 2, seen
        # dask-mpi names a grow job's workers NAME-grow-JOBID-RANK.
        assert {f"{NAME}-grow-{job}-0", f"{NAME}-grow-{job}-1"} <= set(seen["names"]), seen
        assert set(seen["holders"]) <= set(seen["grown"]), seen

        # The signal SLURM sends 300 s before the limit, now, to the batch shell only.
        subprocess.run(["scancel", "--signal=USR1", "--batch", job], check=True)

        # The grow job's workers retire, and the job ends by itself, COMPLETED.
        ended = wait_until(lambda: (s := job_state(job)) not in (None, "RUNNING", "COMPLETING") and s, 90, f"grow job {job} to end")
        assert ended == "COMPLETED", subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
        text = wait_until(lambda: (t := card(kernel)) and "3/3" in workers_line(t) and t, 60, "the card back at 3/3 workers")
        # (The lab's 10-minute limit brings the scheduler job's walltime warning; no error.)
        assert "ERROR" not in text, text
        assert "[running]" in text, text
        logs = kernel.run(f"%cluster logs {NAME} --job {job} --tail 50").result["text/plain"]
        assert "rust-cluster-kernel drain: USR1 at" in logs, logs
        assert "retired 2 of 2 worker(s)" in logs, logs

        # Nothing lost: every result is still there, now on the up job's workers.
        after = kernel.run(
            "%%python\n"
            "values = client.gather(futures)\n"
            "holders = {a for f in futures for a in client.who_has([f])[f.key]}\n"
            "print(json.dumps({'ok': values == [list(range(i * 1000, (i + 1) * 1000)) for i in range(40)],\n"
            "                  'holders': sorted(holders), 'workers': sorted(client.scheduler_info()['workers'])}))",
            timeout=120,
        )
        assert after.status == "ok", after.reply["content"]
        moved = json.loads(after.stdout.strip().splitlines()[-1])
        assert moved["ok"], moved
        assert len(moved["workers"]) == 3 and not set(moved["workers"]) & set(seen["grown"]), moved
        assert set(moved["holders"]) <= set(moved["workers"]), moved
    finally:
        kernel.run(f"%cluster cancel {NAME}", timeout=120)
    assert not squeue_ids(NAME)
