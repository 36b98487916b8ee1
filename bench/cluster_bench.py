"""Cluster benchmark on the lab SLURM (tests/slurm/up.sh), in ONE run:

1. time from submission to all workers joined: `%cluster up --wait` in the kernel against the
   workshop's own way (a Python script that writes the job script, sbatch-es it, polls squeue and
   the scheduler file, connects a Client and waits for the workers), same SLURM, same sizes;
2. squeue calls (counted by a logging `squeue` first on the kernel's PATH that runs the real
   one): per minute while a cluster is steady, target <= 2; while the controller is down (the
   kernel's SLURM_CONF pointed at a dead port), target <= the steady rate + 1; and during
   `%cluster cancel`, target <= one call per poll interval + 1 (cancel asks once soon after its
   scancel, then at the poller's cadence);
3. the card of a 1000-worker cluster (bench/card_render.rs), targets < 50 ms and < 200 KB.

Not a test: it prints figures and writes bench/results/cluster-latest.md."""
import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests/cluster"))

from slurm_lab import LAB_PROFILE, Kernel, squeue_ids, wait_until  # noqa: E402

WORKERS = 3  # the lab profile: 2 nodes x 2 ranks, one of them the scheduler
POLL_INTERVAL = 5  # the lab profile's poll_interval_secs

WORKSHOP_SCRIPT = """#!/bin/bash
#SBATCH --partition=multiple
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=2
#SBATCH --time=10:00
#SBATCH --mem=500M
#SBATCH --job-name=bench-workshop
#SBATCH --output={work}/slurm-%j.out
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_btl=self,tcp
source {venv}/bin/activate
mpirun --map-by core:PE=1 -np 4 dask-mpi --scheduler-file {work}/scheduler.json --scheduler-port 0 \\
  --interface lo --nthreads 1 --memory-limit 1GiB --local-directory {work}/dask --dashboard-address :0
"""


def workshop_way(venv):
    """The notebook's by-hand cycle, timed from sbatch to all workers in a connected Client."""
    from dask.distributed import Client

    work = pathlib.Path(tempfile.mkdtemp(prefix="rck-bench-workshop-"))
    script = work / "job.sh"
    script.write_text(WORKSHOP_SCRIPT.format(work=work, venv=venv))
    t0 = time.perf_counter()
    job = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True, check=True).stdout.strip()
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # as the workshop polled: is it running yet?
            state = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True).stdout.strip()
            if state == "RUNNING":
                break
            time.sleep(1)
        else:
            raise RuntimeError(f"job {job} did not start within 300 s")
        while not (work / "scheduler.json").exists():
            time.sleep(0.5)
        with Client(scheduler_file=str(work / "scheduler.json"), timeout="60s") as client:
            client.wait_for_workers(WORKERS, timeout=300)
            elapsed = time.perf_counter() - t0
    finally:
        subprocess.run(["scancel", job])
        wait_until(lambda: job not in squeue_ids(), 60, "the workshop job to end")
        shutil.rmtree(work, ignore_errors=True)
    return elapsed


def lab_environment(base, squeue_log, conf):
    """The tests' lab environment, plus a squeue that logs each call before running the real one,
    and SLURM_CONF at conf (a copy of the lab's, which the bench points at a dead port)."""
    config = base / "config/rust-cluster-kernel"
    config.mkdir(parents=True)
    config.joinpath("config.toml").write_text(LAB_PROFILE.read_text())
    shim = base / "bin"
    shim.mkdir()
    real = shutil.which("squeue")
    (shim / "squeue").write_text(f'#!/bin/sh\necho "$(date +%s.%N) $*" >> {squeue_log}\nexec {real} "$@"\n')
    (shim / "squeue").chmod(0o755)
    return dict(
        os.environ,
        PATH=f"{shim}:{os.environ['PATH']}",
        XDG_CONFIG_HOME=str(base / "config"),
        XDG_STATE_HOME=str(base / "state"),
        XDG_DATA_HOME=str(base / "data"),
        RUST_CLUSTER_KERNEL_PROFILE="lab",
        RCK_DASK_VENV=os.environ.get("RCK_DASK_VENV", str(ROOT / ".venv")),
        SLURM_CONF=str(conf),
    )


def calls_between(squeue_log, start, end):
    """squeue calls logged in [start, end)."""
    return sum(1 for line in squeue_log.read_text().splitlines() if start <= float(line.split()[0]) < end)


def kernel_way(steady_seconds):
    """`%cluster up --wait` timed to all workers, then squeue calls counted while it is steady."""
    base = pathlib.Path(tempfile.mkdtemp(prefix="rck-bench-kernel-"))
    squeue_log = base / "squeue.log"
    good = pathlib.Path("/tmp/slurm-lab/etc/slurm.conf").read_text()
    conf = base / "slurm.conf"
    conf.write_text(good)
    kernel = Kernel(lab_environment(base, squeue_log, conf))
    rates = {}
    try:
        t0 = time.perf_counter()
        up = kernel.run("%cluster up benchk --wait --timeout 300", timeout=400)
        elapsed = time.perf_counter() - t0
        assert up.status == "ok", up.reply["content"]
        if steady_seconds:
            # Let the poller settle into its steady interval, then count one window.
            time.sleep(35)
            start = time.time()
            time.sleep(steady_seconds)
            rates["steady"] = calls_between(squeue_log, start, start + steady_seconds) * 60 / steady_seconds
            # The controller goes away for as long; the card says so, the poller stays polite.
            conf.write_text(good.replace("SlurmctldPort=6817", "SlurmctldPort=6899"))
            start = time.time()
            time.sleep(steady_seconds)
            rates["down"] = calls_between(squeue_log, start, start + steady_seconds) * 60 / steady_seconds
            conf.write_text(good)
            time.sleep(35)
        start = time.time()
        kernel.run("%cluster cancel benchk", timeout=120)
        end = time.time()
        rates["cancel"] = (calls_between(squeue_log, start, end), end - start)
    finally:
        conf.write_text(good)
        kernel.stop()
        shutil.rmtree(base, ignore_errors=True)
    return elapsed, rates

def card_render():
    out = subprocess.run(["cargo", "run", "--quiet", "--release", "--locked", "--example", "card_render"],
                         cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() or out.stderr.strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steady", type=float, default=120, help="seconds of each window (steady, controller down) to count squeue calls over")
    parser.add_argument("--runs", type=int, default=2, help="up-to-workers runs of each way (the median is reported)")
    args = parser.parse_args()
    venv = os.environ.get("RCK_DASK_VENV", str(ROOT / ".venv"))
    workshop, kernel, rates = [], [], {}
    for i in range(args.runs):
        print(f"[bench] run {i + 1}/{args.runs}: the workshop's way …", flush=True)
        workshop.append(workshop_way(venv))
        print(f"[bench] run {i + 1}/{args.runs}: %cluster up --wait …", flush=True)
        elapsed, run_rates = kernel_way(args.steady if i == 0 else 0)
        kernel.append(elapsed)
        rates = rates or run_rates
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    verdict = lambda ok: "PASS" if ok else "MISS"  # noqa: E731
    steady, down = rates["steady"], rates["down"]
    cancel_calls, cancel_secs = rates["cancel"]
    cancel_limit = cancel_secs / POLL_INTERVAL + 1
    lines = [
        f"submission -> {WORKERS} workers joined, median of {args.runs}:",
        f"  workshop's way (sbatch, poll squeue, scheduler file, Client): {median(workshop):6.2f} s  {[round(x, 2) for x in workshop]}",
        f"  %cluster up --wait:                                           {median(kernel):6.2f} s  {[round(x, 2) for x in kernel]}",
        f"  difference: {median(kernel) - median(workshop):+.2f} s (target <= +1 s: {verdict(median(kernel) <= median(workshop) + 1)})",
        f"squeue calls ({args.steady:.0f} s windows):",
        f"  per minute while steady:              {steady:.1f} (target <= 2: {verdict(steady <= 2)})",
        f"  per minute while the controller is down: {down:.1f} (target <= steady + 1 = {steady + 1:.1f}: {verdict(down <= steady + 1)})",
        f"  during %cluster cancel: {cancel_calls} in {cancel_secs:.1f} s (target <= 1 per {POLL_INTERVAL} s + 1 = {cancel_limit:.1f}: {verdict(cancel_calls <= cancel_limit)})",
        "card of a big cluster (bench/card_render.rs):",
        *("  " + line for line in card_render().splitlines()),
    ]
    text = "\n".join(lines)
    print(text)
    out = ROOT / "bench/results"
    out.mkdir(exist_ok=True)
    (out / "cluster-latest.md").write_text(f"# Cluster benchmark, {time.strftime('%Y-%m-%d %H:%M')}\n\n```\n{text}\n```\n")


if __name__ == "__main__":
    main()
