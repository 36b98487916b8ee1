"""JupyterLab in real headless Chromium: the launcher shows "Rust (cluster)" with its logo, a
notebook with the kernel runs a Rust cell with highlighting, an ipywidgets slider of %%python is
drawn and follows Python and the person both ways, and a %cluster card turns from pending to
running with its workers without re-running the cell, in light and dark themes."""
import secrets
import subprocess

import pytest

from labserver import OUT, browser_checks, free_port, lab_command, lab_env, wait_ready

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    work = tmp_path_factory.mktemp("lab")
    env = lab_env(work)
    port, token = free_port(), secrets.token_hex(16)
    server = subprocess.Popen(lab_command(port, token, work), cwd=work, env=env,
                              stdout=subprocess.DEVNULL, stderr=open(work / "lab.log", "w"))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, token, work / "lab.log", alive=lambda: server.poll() is None)
    except AssertionError:
        server.kill()
        raise
    yield base, token
    server.terminate()
    server.wait(timeout=20)


def test_jupyterlab_launcher_notebook_and_live_card(lab):
    base, token = lab
    checks = browser_checks("lab.mjs", base, token, OUT, "--cluster")
    failed = [c for c in checks.values() if not c["ok"]]
    assert not failed, failed
    for expected in ["launcher has Rust (cluster)", "launcher logo loaded", "Rust cell result shown", "Rust syntax highlighting",
                     "%%python widget drawn", "widget follows Python", "Python follows the widget",
                     "card shown before the workers joined", "card updated in place to running with workers", "card legible in the dark theme", "cancel shows the finished card"]:
        assert expected in checks, (expected, checks)
    for shot in ["launcher.png", "notebook.png", "widget.png", "card-light.png", "card-dark.png"]:
        assert (OUT / shot).stat().st_size > 1000, shot
