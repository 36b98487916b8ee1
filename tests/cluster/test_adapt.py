"""`%cluster adapt` on the real lab SLURM with real Dask: a %%python workload of many slow tasks
makes the kernel submit grow jobs up to the maximum and never more while one is queued; when the
work is done the queued job is cancelled and the running one's workers are retired before its job
is cancelled, the scheduler's job untouched and no result lost; the policy survives a restart and
--off ends it."""
import re
import time

import pytest

from slurm_lab import squeue_ids, wait_until

pytestmark = pytest.mark.slurm

TASKS = 90


def card(kernel, name):
    shown = kernel.run(f"%cluster status {name}").of("display_data")
    return shown[0]["content"]["data"]["text/plain"] if shown else ""


def grow_jobs(name):
    return squeue_ids(f"{name}-grow")


def test_adapt_grows_under_load_within_its_maximum_and_gives_back_when_idle(kernel):
    up = kernel.run("%cluster up adapting --wait --timeout 90")
    assert up.status == "ok", up.reply["content"]
    [scheduler_job] = squeue_ids("adapting")
    try:
        on = kernel.run("%cluster adapt adapting --max-jobs 2 --interval 5 --cooldown 20")
        assert on.status == "ok", on.reply["content"]
        assert "adaptive 0–2 grow jobs" in on.result["text/plain"], on.result
        load = kernel.run(
            "%%python\n"
            "from dask.distributed import Client\n"
            "client = Client()\n"
            "def slow(i):\n"
            "    import time\n"
            "    time.sleep(1)\n"
            "    return i\n"
            f"futures = client.map(slow, range({TASKS}))\n"
        )
        assert load.status == "ok", load.reply["content"]
        # Each lab grow job (2 nodes x 2 ranks) takes the lab's last free CPUs, so the second
        # one waits in the queue: it counts as planned, and no third is ever submitted.
        most, deadline = 0, time.monotonic() + 120
        while time.monotonic() < deadline:
            most = max(most, len(grow_jobs("adapting")))
            if most == 2:
                break
            time.sleep(1)
        assert most == 2, card(kernel, "adapting")
        text = card(kernel, "adapting")
        assert "adapting" in text and "0–2 grow jobs" in text and "target" in text, text
        done = kernel.run("%%python\nprint(sum(client.gather(futures)))", timeout=300)
        assert done.stdout.strip() == str(sum(range(TASKS))), done.reply["content"]
        most = max(most, len(grow_jobs("adapting")))
        assert most == 2
        kernel.run("%%python\ndel futures")
        # Idle: the queued job is cancelled, the running one retired and cancelled (the
        # decisions are collected as they come: each look replaces the last).
        decisions, deadline = set(), time.monotonic() + 150
        while time.monotonic() < deadline and grow_jobs("adapting"):
            assert len(grow_jobs("adapting")) <= 2
            decisions.add(kernel.run("%cluster adapt adapting").result["text/plain"].splitlines()[-1])
            time.sleep(1)
        assert not grow_jobs("adapting"), card(kernel, "adapting")
        # The decision is recorded once its cancel has returned, a moment after the job left.
        wait_until(lambda: decisions.add(kernel.run("%cluster adapt adapting").result["text/plain"].splitlines()[-1])
                   or any("retired" in d for d in decisions), 30, "the retirement's decision")
        assert squeue_ids("adapting") == [scheduler_job]  # never the scheduler's job
        assert any(re.search(r"retired the workers of grow job \d+, then cancelled it", d) for d in decisions), "\n".join(sorted(decisions))
        # The policy is in the cluster's record: a restarted kernel resumes it; --off ends it.
        kernel.restart()
        assert "adaptive 0–2 grow jobs" in kernel.run("%cluster adapt adapting").result["text/plain"]
        off = kernel.run("%cluster adapt adapting --off")
        assert "not adapting" in off.result["text/plain"], off.result
    finally:
        kernel.run("%cluster cancel adapting", timeout=120)
