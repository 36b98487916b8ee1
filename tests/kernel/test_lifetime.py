"""The kernel does not outlive the process that launched it: when its Jupyter server dies
without a shutdown request (killed, crashed), the kernel and its %%python sub-kernel end by
themselves, as after a shutdown, instead of running (and holding their clusters) for hours."""
import os
import pathlib
import re
import signal
import subprocess
import sys
import textwrap
import time

from kernelclient import KERNEL_NAME

# A stand-in for a Jupyter server: starts the kernel with jupyter_client (which sets
# JPY_PARENT_PID), starts its %%python sub-kernel, writes both pids, then waits to be killed.
LAUNCHER = textwrap.dedent(
    """
    import json, re, sys, time
    sys.path.insert(0, {tests!r})
    from jupyter_client.manager import KernelManager
    from kernelclient import execute
    km = KernelManager(kernel_name={kernel!r})
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    assert execute(kc, "%python 1 + 1").status == "ok"
    env = execute(kc, "%python_env").result["text/plain"]
    sub = int(re.search(r"running \\(pid (\\d+)", env).group(1))
    with open(sys.argv[1], "w") as f:
        json.dump({{"kernel": km.provisioner.process.pid, "python": sub}}, f)
    time.sleep(600)
    """
)


def alive(pid):
    """Whether pid is a process that has not exited (a zombie has)."""
    try:
        state = pathlib.Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return not re.search(r"^State:\s+Z", state, re.M)


def test_the_kernel_ends_when_its_launcher_is_killed(tmp_path):
    import json

    script = tmp_path / "launcher.py"
    script.write_text(LAUNCHER.format(tests=str(pathlib.Path(__file__).resolve().parents[1]), kernel=KERNEL_NAME))
    pids_file = tmp_path / "pids.json"
    # The sub-kernel runs on the test venv's Python (it has ipykernel).
    env = dict(os.environ, RUST_CLUSTER_KERNEL_PYTHON=sys.executable)
    launcher = subprocess.Popen([sys.executable, str(script), str(pids_file)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not pids_file.exists() or not pids_file.read_text():
            assert launcher.poll() is None, "the launcher failed"
            assert time.monotonic() < deadline, "the launcher never wrote the pids"
            time.sleep(0.2)
        time.sleep(0.2)
        pids = json.loads(pids_file.read_text())
        assert alive(pids["kernel"]) and alive(pids["python"])
        # A second later both are still there: the kernel does not end while its launcher lives.
        time.sleep(2)
        assert alive(pids["kernel"]) and alive(pids["python"])
        launcher.send_signal(signal.SIGKILL)
        launcher.wait()
        deadline = time.monotonic() + 30
        while (alive(pids["kernel"]) or alive(pids["python"])) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not alive(pids["kernel"]), "the kernel outlived its launcher"
        assert not alive(pids["python"]), "the %%python sub-kernel outlived the kernel's end"
    finally:
        if launcher.poll() is None:
            launcher.kill()
