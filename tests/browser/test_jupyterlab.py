"""JupyterLab in real headless Chromium: the launcher shows "Rust (cluster)" with its logo, a
notebook with the kernel runs a Rust cell with highlighting, an ipywidgets slider of %%python is
drawn and follows Python and the person both ways, and a %cluster card turns from pending to
running with its workers without re-running the cell, in light and dark themes."""
import json
import os
import pathlib
import secrets
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
HERE = pathlib.Path(__file__).resolve().parent
OUT = ROOT / "tests/output/browser"

pytestmark = pytest.mark.browser


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    work = tmp_path_factory.mktemp("lab")
    config = work / "xdg/config/rust-cluster-kernel"
    config.mkdir(parents=True)
    config.joinpath("config.toml").write_text((ROOT / "tests/slurm/test-profile.toml").read_text())
    env = dict(os.environ, XDG_CONFIG_HOME=str(work / "xdg/config"), XDG_STATE_HOME=str(work / "xdg/state"),
               RUST_CLUSTER_KERNEL_PROFILE="lab", RCK_DASK_VENV=os.environ.get("RCK_DASK_VENV", str(ROOT / ".venv")),
               JUPYTER_CONFIG_DIR=str(work / "jupyter-config"))
    port, token = free_port(), secrets.token_hex(16)
    jupyter = pathlib.Path(sys.executable).with_name("jupyter")
    server = subprocess.Popen(
        [str(jupyter), "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={work}", "--ServerApp.disable_check_xsrf=False", "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=open(work / "lab.log", "w"),
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        server.kill()
        pytest.fail(f"JupyterLab did not start: {(work / 'lab.log').read_text()[-2000:]}")
    yield base, token
    server.terminate()
    server.wait(timeout=20)


def test_jupyterlab_launcher_notebook_and_live_card(lab):
    base, token = lab
    node_modules = HERE / "node_modules"
    assert node_modules.exists(), "run `npm ci` in tests/browser (test.sh does)"
    result = subprocess.run(["node", str(HERE / "lab.mjs"), base, token, str(OUT), "--cluster"],
                            capture_output=True, text=True, timeout=600, cwd=HERE)
    checks = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    failed = [c for c in checks if not c["ok"]]
    assert checks, f"the browser script reported nothing: {result.stderr[-2000:]}"
    assert not failed, failed
    names = {c["check"] for c in checks}
    for expected in ["launcher has Rust (cluster)", "launcher logo loaded", "Rust cell result shown", "Rust syntax highlighting",
                     "%%python widget drawn", "widget follows Python", "Python follows the widget",
                     "card shown before the workers joined", "card updated in place to running with workers", "card legible in the dark theme", "cancel shows the finished card"]:
        assert expected in names, (expected, checks)
    for shot in ["launcher.png", "notebook.png", "widget.png", "card-light.png", "card-dark.png"]:
        assert (OUT / shot).stat().st_size > 1000, shot
