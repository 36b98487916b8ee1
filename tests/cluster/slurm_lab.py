"""Helpers for the %cluster tests on the real lab SLURM: squeue, processes, a restartable kernel."""
import os
import pathlib
import subprocess
import time

from jupyter_client.manager import KernelManager

from kernelclient import KERNEL_NAME, execute

ROOT = pathlib.Path(__file__).resolve().parents[2]
LAB_PROFILE = ROOT / "tests/slurm/test-profile.toml"


def squeue_ids(name_filter=None):
    """Job ids in the queue (optionally only those whose name starts with name_filter)."""
    out = subprocess.run(["squeue", "-h", "-o", "%i %j"], capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in out.splitlines() if not name_filter or line.split()[1].startswith(name_filter)]


def wait_until(check, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def dask_processes(marker):
    """pids of dask-mpi processes whose command line mentions marker."""
    pids = []
    for proc in pathlib.Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "dask-mpi" in cmd and marker in cmd:
            pids.append(int(proc.name))
    return pids


class Kernel:
    """A kernel started (and restartable) with the lab environment."""

    def __init__(self, env):
        self.km = KernelManager(kernel_name=KERNEL_NAME)
        self.km.start_kernel(env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def run(self, code, timeout=180):
        return execute(self.kc, code, timeout=timeout)

    def restart(self):
        self.km.restart_kernel(now=False)
        self.kc.wait_for_ready(timeout=60)

    def stop(self):
        self.kc.stop_channels()
        if self.km.is_alive():
            self.km.shutdown_kernel(now=False)
