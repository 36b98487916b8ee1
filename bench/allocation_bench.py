"""In-allocation benchmark on the lab SLURM (tests/slurm/up.sh), in ONE run: from a kernel that runs
in an `srun` step of a notebook job (as JupyterHub's batchspawner starts it), the time of
`%cluster up --in-allocation --wait` (steps of the notebook's job) against `%cluster up --wait`
(a batch job of its own), each to all of its workers, interleaved, 3 times each.

Not a test: it prints figures and writes bench/results/allocation-latest.md.
Run: RCK_DASK_VENV=$PWD/.venv .venv/bin/python bench/allocation_bench.py (kernel installed in .venv)."""
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import textwrap
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests/cluster")]

from slurm_lab import LAB_PROFILE, squeue_ids, wait_until  # noqa: E402

RUNS = 3

# Inside the notebook job's step: up, wait for every worker, cancel; in-allocation and batch in turn.
DRIVER = textwrap.dedent(
    """
    import json, sys, time, os
    sys.path[:0] = [{tests!r}, {cluster_tests!r}]
    from slurm_lab import Kernel
    kernel = Kernel(dict(os.environ))
    times = {{"allocation": [], "batch": []}}
    try:
        for i in range({runs}):
            for way, flags in (("allocation", "--in-allocation --notebook-cores 1 --notebook-mem 1G"), ("batch", "")):
                t0 = time.perf_counter()
                r = kernel.run(f"%cluster up b{{i}}{{way[0]}} {{flags}} --wait --timeout 240", timeout=300)
                elapsed = time.perf_counter() - t0
                assert r.reply["content"]["status"] == "ok", r.reply["content"]
                times[way].append(elapsed)
                kernel.run(f"%cluster cancel b{{i}}{{way[0]}}", timeout=120)
    finally:
        kernel.stop()
        with open(sys.argv[1], "w") as f:
            json.dump(times, f)
    """
)


def main():
    work = pathlib.Path(tempfile.mkdtemp(prefix="rck-bench-alloc-"))
    config = work / "config/rust-cluster-kernel"
    config.mkdir(parents=True)
    config.joinpath("config.toml").write_text(LAB_PROFILE.read_text())
    env = dict(os.environ)
    env.update(XDG_CONFIG_HOME=str(work / "config"), XDG_STATE_HOME=str(work / "state"),
               XDG_DATA_HOME=str(work / "data"), RUST_CLUSTER_KERNEL_PROFILE="lab",
               RCK_DASK_VENV=os.environ.get("RCK_DASK_VENV", str(ROOT / ".venv")))
    driver = work / "driver.py"
    driver.write_text(DRIVER.format(tests=str(ROOT / "tests"), cluster_tests=str(ROOT / "tests/cluster"), runs=RUNS))
    out = work / "times.json"
    # 2 of each node's 4 CPUs: the other 2 are free for the batch cluster (2 ranks per node).
    job = subprocess.run(
        ["sbatch", "--parsable", "--job-name=bench-notebook", "--partition=multiple", "--nodes=2",
         "--ntasks-per-node=1", "--cpus-per-task=2", "--mem=3000", "--time=20:00",
         f"--output={work / 'notebook.out'}", "--wrap", f"srun --nodes=1 --ntasks=1 {sys.executable} {driver} {out}"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip().split(";")[0]
    try:
        wait_until(lambda: out.exists() or job not in squeue_ids(), 1200, "the notebook job")
    finally:
        subprocess.run(["scancel", job])
    if not out.exists():
        sys.exit("no result; the notebook job's log:\n" + (work / "notebook.out").read_text())
    times = json.loads(out.read_text())
    a, b = times["allocation"], times["batch"]
    ratios = [x / y for x, y in zip(a, b)]
    when = time.strftime("%Y-%m-%d %H:%M")
    lines = [
        f"# In-allocation vs batch, {when}, lab SLURM (2 nodes, 3 workers each way)",
        "",
        "| way | runs | median |",
        "| --- | ---: | ---: |",
        f"| `%cluster up --in-allocation --wait` | {' '.join(f'{x:.2f}' for x in a)} s | {sorted(a)[len(a) // 2]:.2f} s |",
        f"| `%cluster up --wait` (batch job) | {' '.join(f'{x:.2f}' for x in b)} s | {sorted(b)[len(b) // 2]:.2f} s |",
        f"| in-allocation / batch, per run | {' '.join(f'{r:.2f}' for r in ratios)}× | |",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    (ROOT / "bench/results/allocation-latest.md").write_text(text)


if __name__ == "__main__":
    main()
