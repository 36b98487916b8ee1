"""What the browser tests share: a free port, waiting for a Jupyter server, and running a
browser script (lab.mjs, lab-in-job.mjs) for its checks."""
import json
import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OUT = ROOT / "tests/output/browser"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab_env(work):
    """The environment of a JupyterLab whose kernels use the lab profile, with state in work."""
    config = work / "xdg/config/rust-cluster-kernel"
    config.mkdir(parents=True)
    config.joinpath("config.toml").write_text((ROOT / "tests/slurm/test-profile.toml").read_text())
    return dict(os.environ, XDG_CONFIG_HOME=str(work / "xdg/config"), XDG_STATE_HOME=str(work / "xdg/state"),
                RUST_CLUSTER_KERNEL_PROFILE="lab", RCK_DASK_VENV=os.environ.get("RCK_DASK_VENV", str(ROOT / ".venv")),
                JUPYTER_CONFIG_DIR=str(work / "jupyter-config"))


def lab_command(port, token, root):
    """`jupyter lab` of this venv on 127.0.0.1:port with a token, quiet, serving root."""
    jupyter = pathlib.Path(sys.executable).with_name("jupyter")
    return [str(jupyter), "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--ServerApp.disable_check_xsrf=False",
            "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]


def wait_ready(base, token, log, alive=lambda: True, timeout=90):
    """Waits until the server at base answers /api/status; raises with its log's end if not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    text = log.read_text()[-2000:] if log.exists() else "(no log)"
    raise AssertionError(f"JupyterLab at {base} did not start:\n{text}")


def browser_checks(script, *args, timeout=600):
    """Runs a browser script of this folder; returns its checks ({check, ok, detail}) by name."""
    assert (HERE / "node_modules").exists(), "run `npm ci` in tests/browser (test.sh does)"
    result = subprocess.run(["node", str(HERE / script), *map(str, args)],
                            capture_output=True, text=True, timeout=timeout, cwd=HERE)
    checks = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert checks, f"{script} reported nothing: {result.stderr[-2000:]}"
    return {c["check"]: c for c in checks}
