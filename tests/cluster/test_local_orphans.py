"""A local cluster (`--backend local`, the default where there is no SLURM) leaves no orphans: a
restarted kernel finds its running processes again, shows them running and ends them on cancel,
and after a SIGKILL of the kernel the script's watchdog ends them as a batch job's would."""
import signal

import pytest

from slurm_lab import Kernel, dask_processes, wait_until

pytestmark = pytest.mark.slurm  # the lab profile's Dask environment (tests/slurm/venv.sh)


def card(kernel, name):
    shown = kernel.run(f"%cluster status {name}").of("display_data")
    return shown[0]["content"]["data"]["text/plain"] if shown else ""


def test_a_restarted_kernel_finds_and_cancels_its_local_cluster(kernel):
    up = kernel.run("%cluster up locre --backend local --wait --timeout 120", timeout=180)
    assert up.status == "ok", up.reply["content"]
    assert dask_processes("locre")
    kernel.restart()
    shown = wait_until(lambda: (c := card(kernel, "locre")) and "3/3" in c and c, 60, "the re-attached card")
    assert "locre  [running]" in shown, shown
    cancel = kernel.run("%cluster cancel locre", timeout=120)
    assert cancel.status == "ok", cancel.reply["content"]
    wait_until(lambda: not dask_processes("locre"), 30, "no dask-mpi process of the cluster left")


def test_sigkill_of_the_kernel_leaves_a_local_cluster_to_its_watchdog(lab_env):
    k = Kernel(lab_env)
    up = k.run("%cluster up lockill --backend local --profile quickdog --wait --timeout 120", timeout=180)
    assert up.status == "ok", up.reply["content"]
    assert dask_processes("lockill")
    k.km.signal_kernel(signal.SIGKILL)
    k.kc.stop_channels()
    # Nobody touches the heartbeat any more: the watchdog (12 s) ends the process group.
    wait_until(lambda: not dask_processes("lockill"), 90, "the watchdog to end the orphaned processes")
