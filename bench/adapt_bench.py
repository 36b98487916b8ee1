"""Adaptive vs fixed cluster on the lab SLURM (tests/slurm/up.sh), in ONE run, for a bursty
workload: three bursts of 60 one-second tasks with 45 s of idleness after each.

- adaptive: `%cluster up` + `%cluster adapt --max-jobs 1` (the lab has CPUs for one grow job);
- fixed: `%cluster up` + one `%cluster grow` job held throughout.

Reported for each: the time from the first burst to the last result, and the node-minutes its
jobs held during that time (squeue sampled every 2 s: the nodes of each running job); and the
controller calls (squeue, sbatch, scancel; counted by logging wrappers first on the kernel's PATH)
per minute while adapting. Not a test: it prints figures and writes
bench/results/adapt-latest.md.
Run: RCK_DASK_VENV=$PWD/.venv .venv/bin/python bench/adapt_bench.py (kernel installed in .venv)."""
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests/cluster")]

from slurm_lab import LAB_PROFILE, Kernel  # noqa: E402

BURSTS, TASKS, IDLE = 3, 60, 45
CONTROLLER_COMMANDS = ("squeue", "sbatch", "scancel")

WORKLOAD = f"""%%python
import time
from dask.distributed import Client
client = Client()
def slow(i):
    import time
    time.sleep(1)
    return i
for burst in range({BURSTS}):
    assert sum(client.gather(client.map(slow, range({TASKS}), key=[f"b{{burst}}-{{i}}" for i in range({TASKS})]))) == sum(range({TASKS}))
    if burst < {BURSTS} - 1:
        time.sleep({IDLE})
print("done")
"""


def environment(base, log):
    """The lab profile, and wrappers that log every controller call before running the real one."""
    config = base / "config/rust-cluster-kernel"
    config.mkdir(parents=True)
    config.joinpath("config.toml").write_text(LAB_PROFILE.read_text())
    shim = base / "bin"
    shim.mkdir()
    for command in CONTROLLER_COMMANDS:
        real = shutil.which(command)
        (shim / command).write_text(f'#!/bin/sh\necho "$(date +%s.%N) {command}" >> {log}\nexec {real} "$@"\n')
        (shim / command).chmod(0o755)
    return dict(os.environ, PATH=f"{shim}:{os.environ['PATH']}", XDG_CONFIG_HOME=str(base / "config"),
                XDG_STATE_HOME=str(base / "state"), XDG_DATA_HOME=str(base / "data"),
                RUST_CLUSTER_KERNEL_PROFILE="lab", RCK_DASK_VENV=os.environ.get("RCK_DASK_VENV", str(ROOT / ".venv")))


class NodeMeter(threading.Thread):
    """Samples the running jobs of a cluster every 2 s and integrates their nodes over time."""

    def __init__(self, name):
        super().__init__(daemon=True)
        self.name_prefix, self.node_seconds, self.stop = name, 0.0, threading.Event()

    def run(self):
        last = time.monotonic()
        while not self.stop.wait(2):
            out = subprocess.run(["squeue", "-h", "-t", "R", "-o", "%j %D"], capture_output=True, text=True).stdout
            nodes = sum(int(n) for j, n in (line.split() for line in out.splitlines()) if j.startswith(self.name_prefix))
            now = time.monotonic()
            self.node_seconds += nodes * (now - last)
            last = now


def one_way(name, adaptive):
    base = pathlib.Path(tempfile.mkdtemp(prefix=f"rck-bench-{name}-"))
    log = base / "calls.log"
    kernel = Kernel(environment(base, log))
    try:
        assert kernel.run(f"%cluster up {name} --wait --timeout 300", timeout=400).status == "ok"
        if adaptive:
            assert kernel.run(f"%cluster adapt {name} --max-jobs 1 --interval 5 --cooldown 20").status == "ok"
        else:
            assert kernel.run(f"%cluster grow {name} --wait --timeout 300", timeout=400).status == "ok"
        meter = NodeMeter(name)
        meter.start()
        start, wall = time.time(), time.perf_counter()
        run = kernel.run(WORKLOAD, timeout=900)
        elapsed = time.perf_counter() - wall
        end = time.time()
        meter.stop.set()
        meter.join()
        assert run.stdout.strip() == "done", run.reply["content"]
        calls = [float(line.split()[0]) for line in log.read_text().splitlines()]
        per_minute = sum(1 for t in calls if start <= t < end) * 60 / (end - start)
        kernel.run(f"%cluster cancel {name}", timeout=120)
    finally:
        kernel.stop()
        shutil.rmtree(base, ignore_errors=True)
    return elapsed, meter.node_seconds / 60, per_minute


def main():
    print("[bench] adaptive …", flush=True)
    adaptive = one_way("benchadapt", adaptive=True)
    print("[bench] fixed …", flush=True)
    fixed = one_way("benchfixed", adaptive=False)
    lines = [
        f"# Adaptive vs fixed, {time.strftime('%Y-%m-%d %H:%M')}, lab SLURM",
        "",
        f"Workload: {BURSTS} bursts of {TASKS} one-second tasks, {IDLE} s idle after each but the last.",
        "",
        "| cluster | time to the last result | node-minutes held | controller calls per minute |",
        "| --- | ---: | ---: | ---: |",
        f"| adaptive (0–1 grow jobs) | {adaptive[0]:.1f} s | {adaptive[1]:.1f} | {adaptive[2]:.1f} |",
        f"| fixed (1 grow job) | {fixed[0]:.1f} s | {fixed[1]:.1f} | {fixed[2]:.1f} |",
        f"| adaptive / fixed | {adaptive[0] / fixed[0]:.2f}× | {adaptive[1] / fixed[1]:.2f}× | |",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    (ROOT / "bench/results/adapt-latest.md").write_text(text)


if __name__ == "__main__":
    main()
