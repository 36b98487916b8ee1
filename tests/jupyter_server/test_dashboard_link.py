"""The Dask dashboard through the Jupyter server (issue 10, part 3): a real `jupyter server`
starts the kernel (POST /api/kernels), the kernel starts a local cluster, and `%cluster
dashboard` shows the link that works — straight through jupyter-server-proxy, through the
kernel's relay on 127.0.0.1 when the proxy's allow-list does not admit the dashboard's host,
or the ssh line when the server has no proxy. Each link is fetched through the server."""
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from jupyter_client.blocking import BlockingKernelClient

from kernelclient import KERNEL_NAME, execute

ROOT = pathlib.Path(__file__).resolve().parents[2]
LAB_PROFILE = ROOT / "tests/slurm/test-profile.toml"
BASE_URL = "/user/rck-test/"
TOKEN = "rck-dashboard-test-token"
# Generous bounds for starting things on a loaded machine; never assertions about speed.
START_TIMEOUT = 120


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


# A redirect (to the login page, say) is an answer of its own, not followed.
NO_REDIRECTS = urllib.request.build_opener(_NoRedirect)


class Server:
    """A `jupyter server` of the test venv with its own runtime directory, and one kernel in it."""

    def __init__(self, base, env, extra_args):
        self.runtime = base / "runtime"
        self.runtime.mkdir(parents=True)
        self.env = dict(env, JUPYTER_RUNTIME_DIR=str(self.runtime))
        args = [sys.executable, "-m", "jupyter", "server", "--no-browser", "--port=0",
                f"--ServerApp.base_url={BASE_URL}", f"--IdentityProvider.token={TOKEN}",
                f"--ServerApp.root_dir={base}", *extra_args]
        if os.geteuid() == 0:
            args.append("--allow-root")
        self.log = open(base / "server.log", "wb")
        self.proc = subprocess.Popen(args, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        info = self.runtime / f"jpserver-{self.proc.pid}.json"
        deadline = time.monotonic() + START_TIMEOUT
        while not info.exists():
            assert self.proc.poll() is None, (base / "server.log").read_text()
            assert time.monotonic() < deadline, "the server wrote no jpserver json"
            time.sleep(0.2)
        time.sleep(0.2)  # written atomically? read until it parses
        self.info = json.loads(info.read_text())
        self.url = f"http://127.0.0.1:{self.info['port']}{BASE_URL}"
        self.kc = None

    def get(self, path, token=True):
        request = urllib.request.Request(self.url + path)
        if token:
            request.add_header("Authorization", f"token {TOKEN}")
        try:
            with NO_REDIRECTS.open(request, timeout=60) as response:
                return response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")

    def start_kernel(self):
        request = urllib.request.Request(self.url + "api/kernels", method="POST",
                                         data=json.dumps({"name": KERNEL_NAME}).encode(),
                                         headers={"Authorization": f"token {TOKEN}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=START_TIMEOUT) as response:
            kernel_id = json.loads(response.read())["id"]
        self.kc = BlockingKernelClient(connection_file=str(self.runtime / f"kernel-{kernel_id}.json"))
        self.kc.load_connection_file()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=START_TIMEOUT)
        return self.kc

    def stop(self):
        if self.kc is not None:
            self.kc.stop_channels()
        # The server shuts its kernels down (which cancels their clusters) on SIGTERM.
        self.proc.terminate()
        try:
            self.proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    if shutil.which("mpirun") is None:
        pytest.fail("mpirun is not on PATH: test.sh installs Open MPI")
    base = tmp_path_factory.mktemp("dashboard")
    config = base / "config/rust-cluster-kernel"
    config.mkdir(parents=True)
    (config / "config.toml").write_text(LAB_PROFILE.read_text())
    venv = os.environ.get("RCK_DASK_VENV", str(ROOT / ".venv"))
    return dict(os.environ,
                XDG_CONFIG_HOME=str(base / "config"), XDG_STATE_HOME=str(base / "state"),
                XDG_DATA_HOME=str(base / "data"), RUST_CLUSTER_KERNEL_PROFILE="lab",
                RCK_DASK_VENV=venv, PATH=f"{venv}/bin:{os.environ['PATH']}")


def start(tmp_path, env, name, *server_args):
    server = Server(tmp_path / name, env, server_args)
    kc = server.start_kernel()
    up = execute(kc, f"%cluster up {name} --backend local --nodes 1 --workers-per-node 2 --wait --timeout 150",
                 timeout=240)
    assert up.status == "ok", (up.reply["content"], up.stderr)
    return server, kc


def dashboard(kc, name):
    run = execute(kc, f"%cluster dashboard {name}")
    assert run.status == "ok", run.reply["content"]
    return run.result["text/plain"], run.result["text/html"]


def dashboard_port(env, name):
    scheduler_file = pathlib.Path(env["XDG_STATE_HOME"]) / "rust-cluster-kernel" / name / "scheduler.json"
    return int(json.loads(scheduler_file.read_text())["services"]["dashboard"])


def assert_dask_status_page(server, path):
    status, body = server.get(path)
    assert status == 200, (status, body[:2000])
    assert "<title>Dask: Status</title>" in body or "Dask" in body and "bokeh" in body.lower(), body[:2000]


def listening_on(port):
    """Whether something accepts connections on 127.0.0.1:port."""
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def cancel(kc, name):
    run = execute(kc, f"%cluster cancel {name}", timeout=240)
    assert run.status == "ok", run.reply["content"]


def test_an_admitted_host_gets_a_direct_proxy_link(tmp_path, env):
    # jupyter-server-proxy's default allow-list admits 127.0.0.1, where the lab profile's
    # dashboard listens (interface lo).
    server, kc = start(tmp_path, env, "direct")
    try:
        port = dashboard_port(env, "direct")
        text, html = dashboard(kc, "direct")
        link = f"{BASE_URL}proxy/127.0.0.1:{port}/status"
        assert link in text and "through jupyter-server-proxy" in text, text
        assert "relay" not in text and "ssh -N" not in text, text
        assert f'href="{link}"' in html, html
        # dask-labextension is in the server's environment: the button opens its panes.
        assert 'data-commandlinker-command="dask:populate-and-launch-layout"' in html, html
        assert_dask_status_page(server, link[len(BASE_URL):])
        # Without the token the server does not serve it.
        status, _ = server.get(link[len(BASE_URL):], token=False)
        assert status in (302, 403), status
        card = execute(kc, "%cluster status direct")
        card_text = card.of("display_data")[0]["content"]["data"]["text/plain"]
        assert link in card_text and "ssh -N" not in card_text, card_text
        # %%python's Dask links the same way.
        run = execute(kc, "%%python\nimport dask\nfrom dask.distributed import Client\n"
                          "client = Client()\nprint(dask.config.get('distributed.dashboard.link'))\n"
                          "print(client.dashboard_link)\nclient.close()", timeout=240)
        assert run.status == "ok", (run.reply["content"], run.stderr)
        assert run.stdout.split() == [link, link], run.stdout
        cancel(kc, "direct")
    finally:
        server.stop()


def test_a_host_the_proxy_refuses_goes_through_the_kernels_relay(tmp_path, env):
    # An allow-list that admits localhost only (as on a compute node whose dashboard host is
    # another node): the direct route is refused, the kernel's relay on 127.0.0.1 is not.
    server, kc = start(tmp_path, env, "relayed", '--ServerProxy.host_allowlist=["localhost"]')
    try:
        port = dashboard_port(env, "relayed")
        status, body = server.get(f"proxy/127.0.0.1:{port}/status")
        assert status == 403, (status, body[:500])  # the control: the direct route is refused
        text, html = dashboard(kc, "relayed")
        found = re.search(re.escape(BASE_URL) + r"proxy/(\d+)/status", text)
        assert found, text
        relay_port = int(found.group(1))
        assert relay_port != port and f"relay on 127.0.0.1:{relay_port}" in text, text
        assert "ssh -N" not in text, text
        assert_dask_status_page(server, f"proxy/{relay_port}/status")
        # The relay listens on loopback only.
        import psutil
        bound = {c.laddr.ip for c in psutil.net_connections(kind="tcp")
                 if c.status == psutil.CONN_LISTEN and c.laddr.port == relay_port}
        assert bound == {"127.0.0.1"}, bound
        cancel(kc, "relayed")
        # The relay ends with its cluster (the card's poller sees the end).
        deadline = time.monotonic() + 60
        while listening_on(relay_port) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not listening_on(relay_port), "the relay outlived its cluster"
    finally:
        server.stop()


def test_without_a_proxy_the_ssh_line_stays(tmp_path, env):
    server, kc = start(tmp_path, env, "tunnel",
                       '--ServerApp.jpserver_extensions={"jupyter_server_proxy": False, "dask_labextension": False}')
    try:
        port = dashboard_port(env, "tunnel")
        status, _ = server.get(f"proxy/127.0.0.1:{port}/status")
        assert status == 404, status  # the control: no proxy in this server
        text, html = dashboard(kc, "tunnel")
        assert f"ssh -N -L {port}:127.0.0.1:{port}" in text, text
        assert "proxy/" not in text and "commandlinker" not in html, text
        cancel(kc, "tunnel")
    finally:
        server.stop()
