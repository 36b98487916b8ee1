"""What mutual TLS costs the Dask clusters, on the lab SLURM (tests/slurm/up.sh), in ONE run:

1. time from `%cluster up --wait` to all workers joined, TLS (the default) against `--insecure`,
   interleaved (A B, B A, …) so that drift hits both alike; target: TLS costs at most 10 %;
2. a trivial Dask round trip from `%%python` (`client.submit(lambda: 1, pure=False).result()`,
   many times, median) on each of those clusters.

Not a test: it prints figures and writes bench/results/tls-latest.md."""
import argparse
import json
import os
import pathlib
import shutil
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests/cluster"))

from slurm_lab import LAB_PROFILE, Kernel, squeue_ids, wait_until  # noqa: E402

ROUND_TRIP = """%%python
import json, time
from dask.distributed import Client
with Client() as client:
    client.submit(lambda: 1, pure=False).result()  # warm: the function is pickled once
    times = []
    for _ in range({n}):
        t0 = time.perf_counter()
        assert client.submit(lambda: 1, pure=False).result() == 1
        times.append(time.perf_counter() - t0)
    print(json.dumps({{"address": client.scheduler.address, "times": times}}))
"""


def lab_environment(base):
    config = base / "config/rust-cluster-kernel"
    config.mkdir(parents=True)
    config.joinpath("config.toml").write_text(LAB_PROFILE.read_text())
    return dict(
        os.environ,
        XDG_CONFIG_HOME=str(base / "config"),
        XDG_STATE_HOME=str(base / "state"),
        XDG_DATA_HOME=str(base / "data"),
        RUST_CLUSTER_KERNEL_PROFILE="lab",
        RCK_DASK_VENV=os.environ.get("RCK_DASK_VENV", str(ROOT / ".venv")),
    )


def one_run(kernel, name, options, round_trips):
    """`%cluster up --wait` timed to all workers, then the round trips; the cluster is cancelled."""
    t0 = time.perf_counter()
    up = kernel.run(f"%cluster up {name} {options} --wait --timeout 300", timeout=400)
    elapsed = time.perf_counter() - t0
    try:
        assert up.status == "ok", up.reply["content"]
        status = kernel.run(f"%cluster status {name}")
        text = status.of("display_data")[-1]["content"]["data"]["text/plain"]
        want = "no TLS" if options else "mutual TLS"
        assert want in text, f"the card of {name} does not say {want!r}:\n{text}"
        assert kernel.run(f"%cluster use {name}").status == "ok"
        run = kernel.run(ROUND_TRIP.format(n=round_trips), timeout=300)
        assert run.status == "ok", (run.reply["content"], run.stderr)
        seen = json.loads(run.stdout.strip().splitlines()[-1])
        assert seen["address"].startswith("tcp://" if options else "tls://"), seen["address"]
    finally:
        kernel.run(f"%cluster cancel {name}", timeout=120)
        wait_until(lambda: not squeue_ids(name), 60, f"the jobs of {name} to end")
    return elapsed, statistics.median(seen["times"])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="cluster starts of each kind (the median is reported)")
    parser.add_argument("--round-trips", type=int, default=300, help="submit/result round trips per cluster")
    args = parser.parse_args()
    base = pathlib.Path(tempfile.mkdtemp(prefix="rck-bench-tls-"))
    kernel = Kernel(lab_environment(base))
    ups = {"tls": [], "insecure": []}
    trips = {"tls": [], "insecure": []}
    options = {"tls": "", "insecure": "--insecure"}
    try:
        for i in range(args.runs):
            order = ["tls", "insecure"] if i % 2 == 0 else ["insecure", "tls"]
            for kind in order:
                print(f"[bench] run {i + 1}/{args.runs}: %cluster up --wait, {kind} …", flush=True)
                elapsed, trip = one_run(kernel, f"tb{kind[0]}{i}", options[kind], args.round_trips)
                ups[kind].append(elapsed)
                trips[kind].append(trip)
    finally:
        kernel.stop()
        shutil.rmtree(base, ignore_errors=True)
    median = statistics.median
    up_ratio = median(ups["tls"]) / median(ups["insecure"])
    trip_ratio = median(trips["tls"]) / median(trips["insecure"])
    ms = lambda xs: [round(x * 1000, 2) for x in xs]  # noqa: E731
    lines = [
        f"%cluster up --wait -> 3 workers joined, median of {args.runs} (interleaved):",
        f"  mutual TLS:  {median(ups['tls']):6.2f} s  {[round(x, 2) for x in ups['tls']]}",
        f"  --insecure:  {median(ups['insecure']):6.2f} s  {[round(x, 2) for x in ups['insecure']]}",
        f"  TLS / insecure: {up_ratio:.3f} ({(up_ratio - 1) * 100:+.1f} %; target <= +10 %: {'PASS' if up_ratio <= 1.10 else 'MISS'})",
        f"%%python client.submit(lambda: 1).result(), median of {args.round_trips} per cluster (per-cluster medians):",
        f"  mutual TLS:  {median(trips['tls']) * 1000:6.2f} ms  {ms(trips['tls'])}",
        f"  --insecure:  {median(trips['insecure']) * 1000:6.2f} ms  {ms(trips['insecure'])}",
        f"  TLS / insecure: {trip_ratio:.3f} ({(trip_ratio - 1) * 100:+.1f} %)",
    ]
    text = "\n".join(lines)
    print(text)
    out = ROOT / "bench/results"
    out.mkdir(exist_ok=True)
    (out / "tls-latest.md").write_text(f"# TLS benchmark, {time.strftime('%Y-%m-%d %H:%M')}\n\n```\n{text}\n```\n")


if __name__ == "__main__":
    main()
