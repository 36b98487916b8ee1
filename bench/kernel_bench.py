"""Kernel benchmark: rust-cluster against evcxr_jupyter and ipykernel, measured in ONE run on
the same machine. Not a test: it prints figures and ratios (and writes bench/results/)."""
import argparse
import json
import os
import pathlib
import statistics
import threading
import time

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

HERE = pathlib.Path(__file__).resolve().parent

RUST_NOTEBOOK = [
    "let greeting = \"hello\";",
    "fn square(x: u64) -> u64 { x * x }",
    "struct Point { x: f64, y: f64 }",
    "let p = Point { x: 3.0, y: 4.0 };",
    "(p.x * p.x + p.y * p.y).sqrt()",
    "let v: Vec<u64> = (1..=100).map(square).collect();",
    "v.iter().sum::<u64>()",
    "for i in 0..3 { println!(\"{} {}\", greeting, i); }",
    "let mut total = 0u64; for x in &v { total += x; }",
    "total",
]
PYTHON_NOTEBOOK = [
    "greeting = 'hello'",
    "def square(x): return x * x",
    "class Point:\n    def __init__(self, x, y): self.x, self.y = x, y",
    "p = Point(3.0, 4.0)",
    "(p.x * p.x + p.y * p.y) ** 0.5",
    "v = [square(i) for i in range(1, 101)]",
    "sum(v)",
    "for i in range(3): print(greeting, i)",
    "total = 0\nfor x in v: total += x",
    "total",
]


def tree_rss_kib(pid):
    """RSS of a process and all its descendants, in KiB (from /proc)."""
    children = {}
    for proc in pathlib.Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(proc.name))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in pathlib.Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
        todo.extend(children.get(p, []))
    return total


class PeakRss:
    """Samples a process tree's RSS every 20 ms in the background."""

    def __init__(self, pid):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss_kib(self.pid))
            time.sleep(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_cell(kc, code, timeout=300):
    reply = kc.execute_interactive(code, timeout=timeout, output_hook=lambda msg: None)
    assert reply["content"]["status"] == "ok", (code, reply["content"])


def start(name):
    km = KernelManager(kernel_name=name)
    t0 = time.perf_counter()
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=120)
    return km, kc, time.perf_counter() - t0


def stop(km, kc):
    kc.stop_channels()
    km.shutdown_kernel(now=False)


def measure(name, language, read_pause):
    r = {}
    cell = "40 + 2"
    notebook = RUST_NOTEBOOK if language == "rust" else PYTHON_NOTEBOOK
    # The first cell a user runs is the notebook's first: a definition (`let greeting = …`).
    first = notebook[0]
    # Start → first kernel_info_reply (wait_for_ready sends kernel_info until one answers).
    km, kc, r["ready_s"] = start(name)
    t = time.perf_counter()
    run_cell(kc, first)
    r["first_cell_s"] = time.perf_counter() - t
    r["start_to_first_result_s"] = r["ready_s"] + r["first_cell_s"]
    run_cell(kc, cell)
    rtts = []
    for _ in range(200):
        t = time.perf_counter()
        kc.kernel_info(reply=True, timeout=10)
        rtts.append(time.perf_counter() - t)
    rtts.sort()
    r["kernel_info_p50_ms"] = rtts[len(rtts) // 2] * 1e3
    r["kernel_info_p99_ms"] = rtts[int(len(rtts) * 0.99)] * 1e3
    warm = []
    for _ in range(15):
        t = time.perf_counter()
        run_cell(kc, cell)
        warm.append(time.perf_counter() - t)
    r["warm_cell_s"] = statistics.median(warm)
    # Heartbeat and control round trips, idle and while a 3 s cell runs.
    sleep = "std::thread::sleep(std::time::Duration::from_secs(3));" if language == "rust" else "import time; time.sleep(3)"

    def control_rtt():
        msg = kc.session.msg("kernel_info_request")
        t = time.perf_counter()
        kc.control_channel.send(msg)
        while True:
            reply = kc.control_channel.get_msg(timeout=10)
            if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
                return time.perf_counter() - t

    def hb_rtt():
        import zmq
        info = km.get_connection_info()
        s = zmq.Context.instance().socket(zmq.REQ)
        s.connect(f"tcp://{info['ip']}:{info['hb_port']}")
        t = time.perf_counter()
        s.send(b"ping")
        s.recv()
        dt = time.perf_counter() - t
        s.close(linger=0)
        return dt

    r["control_idle_ms"] = statistics.median(control_rtt() for _ in range(20)) * 1e3
    r["hb_idle_ms"] = statistics.median(hb_rtt() for _ in range(20)) * 1e3
    msg_id = kc.execute(sleep)
    time.sleep(0.8)
    r["control_busy_ms"] = statistics.median(control_rtt() for _ in range(10)) * 1e3
    r["hb_busy_ms"] = statistics.median(hb_rtt() for _ in range(10)) * 1e3
    while kc.get_shell_msg(timeout=30)["parent_header"].get("msg_id") != msg_id:
        pass
    stop(km, kc)

    # A 10-cell notebook from start, with the process tree's peak RSS.
    t = time.perf_counter()
    km, kc, _ = start(name)
    r["rss_at_start_mib"] = tree_rss_kib(km.provisioner.process.pid) / 1024
    with PeakRss(km.provisioner.process.pid) as peak:
        for code in notebook:
            run_cell(kc, code)
    r["notebook_from_start_s"] = time.perf_counter() - t
    r["peak_rss_mib"] = peak.peak / 1024
    stop(km, kc)

    # The same notebook after the user has read it for a while (the engine warms up meanwhile).
    km, kc, _ = start(name)
    time.sleep(read_pause)
    t = time.perf_counter()
    run_cell(kc, first)
    r["first_cell_after_pause_s"] = time.perf_counter() - t
    for code in notebook[1:]:
        run_cell(kc, code)
    r["notebook_after_pause_s"] = time.perf_counter() - t
    stop(km, kc)
    return r


def measure_python_bridge():
    """A trivial `%%python` cell in our kernel (its ipykernel started) against the same cell in
    ipykernel directly: the bridge's overhead per cell."""
    import sys
    timings = {}
    for label, name, code, env in [
        ("bridge", "rust-cluster", "%%python\n40 + 2", dict(os.environ, RUST_CLUSTER_KERNEL_PYTHON=sys.executable)),
        ("ipykernel", "python3", "40 + 2", dict(os.environ)),
    ]:
        km = KernelManager(kernel_name=name)
        km.start_kernel(env=env)
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=120)
        run_cell(kc, code)  # starts the sub-kernel
        cells = []
        for _ in range(30):
            t = time.perf_counter()
            run_cell(kc, code)
            cells.append(time.perf_counter() - t)
        timings[label] = statistics.median(cells)
        stop(km, kc)
    return timings


TARGETS = {
    # metric: (peer, maximum ratio ours/peer)
    "ready_s": ("evcxr", 0.1),
    "warm_cell_s": ("evcxr", 0.8),
    "notebook_after_pause_s": ("evcxr", 0.8),
    "first_cell_after_pause_s": ("evcxr", 0.5),
    "peak_rss_mib": ("evcxr", 1.0),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--read-pause", type=float, default=5.0, help="seconds the user 'reads' before the first cell")
    parser.add_argument("--evcxr-kernel", default="rust", help="kernelspec name of evcxr_jupyter")
    args = parser.parse_args()
    specs = KernelSpecManager().find_kernel_specs()
    kernels = [("ours", "rust-cluster", "rust"), ("evcxr", args.evcxr_kernel, "rust"), ("ipykernel", "python3", "python")]
    results = {}
    for label, name, language in kernels:
        if name not in specs:
            print(f"[bench] {label}: kernelspec {name!r} not installed; skipped")
            continue
        print(f"[bench] measuring {label} ({name}) …", flush=True)
        results[label] = measure(name, language, args.read_pause)
    metrics = list(next(iter(results.values())).keys())
    header = f"{'metric':28} " + " ".join(f"{k:>12}" for k in results) + "   ours/evcxr  ours/ipykernel  target"
    lines = [header, "-" * len(header)]
    for m in metrics:
        row = f"{m:28} " + " ".join(f"{results[k][m]:12.3f}" for k in results)
        for peer in ("evcxr", "ipykernel"):
            if "ours" in results and peer in results and results[peer][m]:
                row += f"   {results['ours'][m] / results[peer][m]:9.2f}x"
            else:
                row += "           -"
        if m in TARGETS and "ours" in results and TARGETS[m][0] in results:
            peer, limit = TARGETS[m]
            ratio = results["ours"][m] / results[peer][m]
            row += f"   ≤{limit}x {'PASS' if ratio <= limit else 'MISS'}"
        lines.append(row)
    busy = results.get("ours")
    if busy:
        lines.append(f"control busy/idle: {busy['control_busy_ms'] / busy['control_idle_ms']:.2f}x, heartbeat busy/idle: {busy['hb_busy_ms'] / busy['hb_idle_ms']:.2f}x (target ≤ 2x)")
    specs_needed = {"rust-cluster", "python3"}
    if specs_needed <= set(specs):
        print("[bench] measuring %%python against ipykernel …", flush=True)
        bridge = measure_python_bridge()
        results["python_bridge"] = bridge
        ratio = bridge["bridge"] / bridge["ipykernel"]
        lines.append(f"%%python trivial cell: {bridge['bridge'] * 1e3:.1f} ms, ipykernel: {bridge['ipykernel'] * 1e3:.1f} ms,"
                     f" ratio {ratio:.2f}x (target ≤ 1.5x {'PASS' if ratio <= 1.5 else 'MISS'})")
    text = "\n".join(lines)
    print(text)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"kernel-{stamp}.json").write_text(json.dumps(results, indent=2))
    (out / "kernel-latest.md").write_text(f"# Kernel benchmark, {time.strftime('%Y-%m-%d %H:%M')}\n\n```\n{text}\n```\n")


if __name__ == "__main__":
    main()
