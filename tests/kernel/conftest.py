"""Fixtures: one running kernel per test module, started by jupyter_client from the installed
kernelspec, exactly as JupyterLab starts it."""
import os

import pytest
from jupyter_client.manager import start_new_kernel

from kernelclient import KERNEL_NAME, drain, execute


@pytest.fixture(scope="module")
def kernel(request):
    """A test module may set KERNEL_ENV, a dict of environment variables for its kernel."""
    env = dict(os.environ, **getattr(request.module, "KERNEL_ENV", {}))
    km, kc = start_new_kernel(kernel_name=KERNEL_NAME, startup_timeout=60, env=env)
    execute(kc, "1")  # wait for the engine to be ready once
    drain(kc)
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel(now=False)


@pytest.fixture
def kc(kernel):
    drain(kernel[1])
    return kernel[1]
