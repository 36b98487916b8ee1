"""Fixtures for the %cluster tests on the real lab SLURM (tests/slurm/up.sh, started by test.sh):
kernels whose environment selects the small `lab` profile, in a private state directory."""
import os
import subprocess

import pytest

from slurm_lab import LAB_PROFILE, ROOT, Kernel


@pytest.fixture(scope="module")
def lab_env(tmp_path_factory):
    if subprocess.run(["which", "sbatch"], capture_output=True).returncode != 0:
        pytest.fail("sbatch is not on PATH: test.sh starts the lab SLURM with tests/slurm/up.sh")
    base = tmp_path_factory.mktemp("cluster")
    config = base / "config/rust-cluster-kernel"
    config.mkdir(parents=True)
    text = LAB_PROFILE.read_text()
    # A second profile whose watchdog ends a job 12 s after its kernel stops touching the heartbeat.
    quick = text.replace("[profiles.lab", "[profiles.quickdog").replace("watchdog_minutes = 2", "watchdog_minutes = 0.2")
    # A stricter site: memory per CPU instead of per node (the generated --mem line skipped).
    site = text.replace("[profiles.lab", "[profiles.site").replace(
        'watchdog_minutes = 2', 'watchdog_minutes = 2\nskip_directives = ["mem"]\nextra_directives = ["--mem-per-cpu=300"]')
    (config / "config.toml").write_text(text + "\n" + quick + "\n" + site)
    env = dict(os.environ)
    env.update(
        XDG_CONFIG_HOME=str(base / "config"),
        XDG_STATE_HOME=str(base / "state"),
        XDG_DATA_HOME=str(base / "data"),
        RUST_CLUSTER_KERNEL_PROFILE="lab",
        RCK_DASK_VENV=os.environ.get("RCK_DASK_VENV", str(ROOT / ".venv")),
    )
    return env


@pytest.fixture
def kernel(lab_env):
    k = Kernel(lab_env)
    yield k
    k.stop()
