"""Issue 9 on real parts: another Unix user of the machine (tests/setup/attacker.sh) attacks the
Dask clusters that `%cluster up` starts on the lab SLURM and with `--backend local`.

With mutual TLS (the default) the attacker's plain tcp client, TLS client without a certificate,
and TLS clients with certificates of another CA (one of them forging the real CA's names) are
refused, while the same client program run by the owner with the cluster's client certificate
gets in (so a refusal is the authentication at work, not a broken attacker); the certificates,
scheduler file, registry, job scripts, heartbeat and logs are out of the attacker's reach; the
owner's `%%python` computes on the workers; grow works under TLS; the Dask listeners are on the
profile's interface only. The control: an `--insecure` cluster lets the same attacker run code
as the owner, so these tests fail when the protection is off."""
import functools
import json
import os
import pathlib
import pwd
import shutil
import socket
import ssl
import stat
import subprocess
import tempfile
import tomllib

import psutil
import pytest

from slurm_lab import LAB_PROFILE, ROOT, Kernel, dask_processes, squeue_ids, wait_until

pytestmark = pytest.mark.slurm

ATTACKER = os.environ.get("RCK_ATTACKER_USER", "rck-attacker")
WORKERS = 3  # the lab profile: 2 nodes x 2 ranks, one of them the scheduler
GROWN = 7  # a grow job of the lab profile adds 4 workers
TLS_FILES = ("ca.pem", "node.pem", "node-key.pem", "client.pem", "client-key.pem")

# One connection attempt, run as the attacker (or as the owner, for the control). argv: MODE
# ADDRESS TARGET [CERT KEY]; MODE is tcp or tls. A scheduler gets a Client that runs code on it,
# a worker a direct rpc (a worker runs what its `run` handler is sent, too). The TLS context is
# the attacker's own: it presents CERT if given and does not check the server at all.
ATTEMPT = r"""
import asyncio, json, os, ssl, sys
from distributed import Client
from distributed.core import rpc
from distributed.security import Security

mode, address, target, cert = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:6]
# Long enough for a loaded machine: a refusal comes at once (the handshake fails), a timeout
# would count as a refusal, and the owner's control must not be one.
TIMEOUT = 10


class Chosen(Security):
    def __init__(self, context):
        super().__init__()
        self.context = context

    def get_connection_args(self, role):
        return {"ssl_context": self.context, "require_encryption": True, "extra_conn_args": {}}


security = None
if mode == "tls":
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if cert:
        context.load_cert_chain(*cert)
    security = Chosen(context)


async def identity():
    args = security.get_connection_args("client") if security else {}
    worker = rpc(f"{mode}://{address}", connection_args=args, timeout=TIMEOUT)
    try:
        return await asyncio.wait_for(worker.identity(), 2 * TIMEOUT)
    finally:
        await worker.close_rpc()


try:
    if target == "scheduler":
        with Client(f"{mode}://{address}", security=security, timeout=TIMEOUT) as client:
            workers = client.scheduler_info()["workers"]
            out = {"connected": True, "scheduler_uid": client.run_on_scheduler(os.getuid),
                   "workers": {a: {"services": w.get("services", {})} for a, w in workers.items()}}
    else:
        out = {"connected": True, "identity": asyncio.run(identity())}
except Exception as e:
    out = {"connected": False, "error": f"{type(e).__name__}: {e}"}
print(json.dumps(out, default=str))
"""

# Opens each path given, as the attacker: what happened, per path.
READ = r"""
import json, os, sys
seen = {}
for path in sys.argv[1:]:
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            open(path, "rb").read(1)
        seen[path] = "read"
    except OSError as e:
        seen[path] = type(e).__name__
print(json.dumps(seen))
"""


# GETs each URL, as the attacker: the HTTP status (or the error's type), per URL.
HTTP_GET = r"""
import json, sys, urllib.error, urllib.request
seen = {}
for url in sys.argv[1:]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            seen[url] = response.status
    except urllib.error.HTTPError as e:
        seen[url] = e.code
    except OSError as e:
        seen[url] = type(e).__name__
print(json.dumps(seen))
"""


VENV = pathlib.Path(os.environ.get("RCK_DASK_VENV", ROOT / ".venv"))
RUNUSER = shutil.which("runuser") or "runuser"
# A clean environment: nothing of the owner's Dask settings reaches the attacker.
CLEAN_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


@functools.cache
def attacker_python():
    """How the attacker runs the venv's Dask: its python, or (when that links into a directory
    the attacker cannot enter, e.g. a pyenv under /root) the system's python of the same version
    with the venv's packages on PYTHONPATH. The same choice as tests/setup/attacker.sh."""
    version = next(line.split("=")[1].strip() for line in (VENV / "pyvenv.cfg").read_text().splitlines()
                   if line.startswith("version"))
    short = ".".join(version.split(".")[:2])
    choices = [([str(VENV / "bin/python")], {})]
    system = shutil.which(f"python{short}", path=CLEAN_ENV["PATH"])
    if system:
        choices.append(([system, "-s"], {"PYTHONPATH": str(VENV / f"lib/python{short}/site-packages")}))
    for cmd, env in choices:
        probe = subprocess.run([RUNUSER, "-u", ATTACKER, "--", *cmd, "-c", "import distributed"],
                               env=dict(CLEAN_ENV, **env), cwd="/", capture_output=True)
        if probe.returncode == 0:
            return cmd, env
    pytest.fail(f"{ATTACKER} cannot import distributed from {VENV} (tests/setup/attacker.sh says why)")


def command(code, args, as_attacker):
    if as_attacker:
        python, env = attacker_python()
        cmd = [RUNUSER, "-u", ATTACKER, "--", *python]
        env = dict(CLEAN_ENV, **env)
    else:
        cmd = [str(VENV / "bin/python")]
        env = dict(CLEAN_ENV, HOME=os.environ.get("HOME", "/root"))
    return dict(args=[*cmd, "-c", code, *map(str, args)], env=env, cwd="/",
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def attempts(*tries):
    """Runs the connection attempts (as_attacker, mode, address, target, cert...) at once; their
    results."""
    procs = [subprocess.Popen(**command(ATTEMPT, args, as_attacker)) for as_attacker, *args in tries]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=90)
        assert p.returncode == 0 and out.strip(), err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def attacker_reads(paths):
    run = subprocess.run(**command(READ, paths, True), timeout=60)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def card(run):
    return run.of("display_data")[-1]["content"]["data"]["text/plain"]


def host_port(address):
    return address.split("://", 1)[1]


def subject(path):
    """The subject of a PEM certificate, as openssl's -subj wants it (/CN=…/O=…)."""
    short = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
             "countryName": "C", "stateOrProvinceName": "ST", "localityName": "L"}
    decoded = ssl._ssl._test_decode_cert(str(path))
    parts = [f"/{short.get(k, k)}={v}" for rdn in decoded["subject"] for k, v in rdn]
    return "".join(parts) or "/CN=dask"


def forge(directory, ca_subject, client_subject):
    """A CA of the attacker's with ca_subject, and a client certificate it signed; (cert, key)."""
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    ca, ca_key = directory / "ca.pem", directory / "ca-key.pem"
    cert, key, csr = directory / "cert.pem", directory / "key.pem", directory / "req.csr"
    ssl_run = lambda *a: subprocess.run(["openssl", *map(str, a)], check=True, capture_output=True)  # noqa: E731
    ssl_run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
            "-subj", ca_subject, "-keyout", ca_key, "-out", ca,
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    ssl_run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-subj", client_subject, "-keyout", key, "-out", csr)
    ssl_run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-days", "1", "-out", cert)
    for f in directory.iterdir():
        f.chmod(0o644)  # the attacker's own files
    return cert, key


def interface_address():
    """The IPv4 address of the lab profile's interface (lo: 127.0.0.1)."""
    iface = tomllib.loads(LAB_PROFILE.read_text())["profiles"]["lab"]["interface"]
    (address,) = [a.address for a in psutil.net_if_addrs()[iface] if a.family == socket.AF_INET][:1]
    return address


def listening(port):
    """Local addresses of the TCP sockets listening on port (0.0.0.0 or :: for every interface)."""
    return [c.laddr.ip for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port]


class Cluster:
    def __init__(self, kernel, env, name, up):
        self.kernel, self.name, self.up = kernel, name, up
        self.state = pathlib.Path(env["XDG_STATE_HOME"]) / "rust-cluster-kernel"
        self.dir = self.state / name
        self.tls = self.dir / "tls"
        self.scheduler_file = self.dir / "scheduler.json"
        self.address = json.loads(self.scheduler_file.read_text())["address"]

    def status(self):
        return card(self.kernel.run(f"%cluster status {self.name}"))

    def client_cert(self):
        cert = [self.tls / "client.pem", self.tls / "client-key.pem"]
        assert all(f.exists() for f in cert), f"the cluster has no client certificate in {self.tls}"
        return cert

    def registry(self):
        return json.loads((self.state / "clusters" / f"{self.name}.json").read_text())


def start(kernel, env, name, options=""):
    up = kernel.run(f"%cluster up {name} {options} --wait --timeout 150", timeout=240)
    assert up.status == "ok", up.reply["content"]
    return Cluster(kernel, env, name, up)


def cancel(kernel, name, slurm=True):
    kernel.run(f"%cluster cancel {name}", timeout=120)
    if slurm:
        wait_until(lambda: not squeue_ids(name), 60, f"the jobs of {name} to leave the queue")
    wait_until(lambda: not dask_processes(f"/{name}/"), 30, f"no dask-mpi process of {name} left")


def dask_array_sum(kernel, name):
    """The owner's %%python: Client() with no arguments, a dask.array sum on the workers."""
    assert kernel.run(f"%cluster use {name}").status == "ok"
    run = kernel.run(
        "%%python\n"
        "import json\n"
        "import dask.array as da\n"
        "from dask.distributed import Client, get_task_stream\n"
        "with Client() as client:\n"
        "    x = da.arange(2_000_000, chunks=250_000, dtype='int64')\n"
        "    with get_task_stream() as stream:\n"
        "        total = int((x * 3).sum().compute())\n"
        "    print(json.dumps({'address': client.scheduler.address, 'total': total,\n"
        "                      'workers': sorted(client.scheduler_info()['workers']),\n"
        "                      'ran_on': sorted({t['worker'] for t in stream.data})}))\n",
        timeout=300,
    )
    assert run.status == "ok", (run.reply["content"], run.stderr)
    return json.loads(run.stdout.strip().splitlines()[-1])


def assert_computed(seen, cluster, workers):
    n = 2_000_000
    assert seen["total"] == 3 * n * (n - 1) // 2
    assert seen["address"] == cluster.address and seen["address"].startswith("tls://")
    assert len(seen["workers"]) == workers and all(w.startswith("tls://") for w in seen["workers"])
    assert seen["ran_on"] and set(seen["ran_on"]) <= set(seen["workers"])


def assert_attacks_fail(cluster, workdir):
    """The attacker's four ways in are refused, at the scheduler and at a worker; the owner's
    same program with the cluster's client certificate gets in (and runs code on the scheduler,
    as the owner), so a refusal is the authentication at work."""
    (control,) = attempts((False, "tls", host_port(cluster.address), "scheduler", *cluster.client_cert()))
    assert control["connected"] and control["scheduler_uid"] == os.getuid(), control
    unrelated = forge(workdir / f"{cluster.name}-other-ca", "/CN=attacker CA", "/CN=attacker")
    forged = forge(workdir / f"{cluster.name}-forged-ca", subject(cluster.tls / "ca.pem"), subject(cluster.tls / "client.pem"))
    ways = {"plain tcp": ("tcp",), "TLS without a certificate": ("tls",),
            "TLS with another CA's certificate": ("tls", *unrelated),
            "TLS with a forged CA's certificate (the real CA's names)": ("tls", *forged)}
    worker = sorted(control["workers"])[0]
    tries = {}
    for target, address in [("scheduler", cluster.address), ("worker", worker)]:
        tries[f"{target}, owner's certificate"] = (False, "tls", host_port(address), target, *cluster.client_cert())
        for what, (mode, *cert) in ways.items():
            tries[f"{target}, {what}"] = (True, mode, host_port(address), target, *cert)
    results = dict(zip(tries, attempts(*tries.values())))
    assert results["worker, owner's certificate"]["connected"], results["worker, owner's certificate"]
    assert results["worker, owner's certificate"]["identity"]["type"] == "Worker"
    assert results["scheduler, owner's certificate"]["connected"]
    got_in = {what: r for what, r in results.items() if r["connected"] and "owner" not in what}
    assert not got_in, f"the attacker got in: {got_in}"


def assert_private(cluster, probe):
    """The cluster's files: 0700 directories and 0600 files, out of the attacker's reach."""
    dirs = [cluster.dir, cluster.tls, cluster.state / "clusters"]
    files = [cluster.tls / f for f in TLS_FILES]
    files += [cluster.scheduler_file, cluster.dir / "heartbeat", cluster.state / "clusters" / f"{cluster.name}.json"]
    jobs = cluster.registry()["jobs"]
    files += [pathlib.Path(j["script_path"]) for j in jobs] + [pathlib.Path(j["log_path"]) for j in jobs]
    wrong = {str(d): oct(mode(d)) for d in dirs if mode(d) != 0o700}
    wrong.update({str(f): oct(mode(f)) for f in files if mode(f) != 0o600})
    assert not wrong, f"not private: {wrong}"
    seen = attacker_reads([probe, *dirs, *files])
    # The attacker can read a world-readable file next to the state directory: what stops it
    # below is the cluster's own modes, not the test's set-up.
    assert seen.pop(str(probe)) == "read"
    assert set(seen.values()) == {"PermissionError"}, seen


@pytest.fixture(scope="module")
def attacker():
    try:
        user = pwd.getpwnam(ATTACKER)
    except KeyError:
        pytest.fail(f"no user {ATTACKER}: test.sh creates it with tests/setup/attacker.sh")
    assert user.pw_uid != os.getuid() and user.pw_uid != 0
    attacker_python()
    return user


@pytest.fixture(scope="module")
def base(attacker):
    """A directory others can search (0755, as a home directory often is): the state directory
    goes below it, so only the kernel's own modes keep the attacker out; and the attacker's files."""
    base = pathlib.Path(tempfile.mkdtemp(prefix="rck-security-"))
    for d in (base, base / "state", base / "attacker"):
        d.mkdir(exist_ok=True)
        d.chmod(0o755)
    probe = base / "state/readable-probe"
    probe.write_text("anyone may read this\n")
    probe.chmod(0o644)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def lab_env(lab_env, base):
    return dict(lab_env, XDG_STATE_HOME=str(base / "state"))


@pytest.fixture(scope="module")
def owner(lab_env):
    k = Kernel(lab_env)
    yield k
    k.stop()


@pytest.fixture(scope="module")
def workdir(base):
    return base / "attacker"


@pytest.fixture(scope="module")
def probe(base):
    return base / "state/readable-probe"


def test_insecure_cluster_lets_the_attacker_run_code_as_the_owner(owner, lab_env, attacker):
    """The control: with the protection off, the attack of issue 9 works, so the tests below
    would notice if the default were not protected."""
    cluster = start(owner, lab_env, "open", "--insecure")
    try:
        text = cluster.status()
        assert "no TLS" in text and "mutual TLS" not in text, text
        assert cluster.address.startswith("tcp://")
        (tcp,) = attempts((True, "tcp", host_port(cluster.address), "scheduler"))
        assert tcp["connected"], tcp
        assert tcp["scheduler_uid"] == os.getuid() != attacker.pw_uid
        (worker,) = attempts((True, "tcp", host_port(sorted(tcp["workers"])[0]), "worker"))
        assert worker["connected"] and worker["identity"]["type"] == "Worker", worker
    finally:
        cancel(owner, "open")


def test_local_backend_is_mutual_tls(owner, lab_env, workdir, probe):
    cluster = start(owner, lab_env, "secloc", "--backend local")
    try:
        text = cluster.status()
        assert "mutual TLS" in text and "no TLS" not in text, text
        assert cluster.address.startswith("tls://")
        assert_private(cluster, probe)
        assert_attacks_fail(cluster, workdir)
        assert_computed(dask_array_sum(owner, "secloc"), cluster, WORKERS)
    finally:
        cancel(owner, "secloc", slurm=False)


@pytest.fixture(scope="module")
def slurm_cluster(owner, lab_env):
    cluster = start(owner, lab_env, "sec")
    yield cluster
    cancel(owner, "sec")


def test_slurm_cluster_is_mutual_tls_and_private(slurm_cluster, probe):
    c = slurm_cluster
    text = c.status()
    assert "mutual TLS" in text and "no TLS" not in text, text
    assert c.address.startswith("tls://")
    assert_private(c, probe)
    # The job script makes dask-mpi use TLS; %cluster script shows that, never a key.
    script = c.kernel.run("%cluster script sec").result["text/plain"]
    assert "tls" in script.lower()
    key_lines = [line for f in ("node-key.pem", "client-key.pem")
                 for line in (c.tls / f).read_text().splitlines() if line and "-----" not in line]
    assert key_lines and not any(line in script for line in key_lines)
    up_script = pathlib.Path(c.registry()["jobs"][0]["script_path"]).read_text()
    assert not any(line in up_script for line in key_lines), "a private key is written into the job script"


def test_slurm_cluster_refuses_the_attackers_clients(slurm_cluster, workdir):
    assert_attacks_fail(slurm_cluster, workdir)


def test_owner_python_computes_on_the_workers_over_tls(slurm_cluster):
    assert_computed(dask_array_sum(slurm_cluster.kernel, "sec"), slurm_cluster, WORKERS)


def test_dask_listens_on_the_clusters_interface_only(slurm_cluster):
    (info,) = attempts((False, "tls", host_port(slurm_cluster.address), "scheduler", *slurm_cluster.client_cert()))
    assert info["connected"], info
    ports = {"scheduler": int(slurm_cluster.address.rsplit(":", 1)[1])}
    dashboard = json.loads(slurm_cluster.scheduler_file.read_text()).get("services", {}).get("dashboard")
    assert dashboard, "the scheduler has no dashboard"
    ports["dashboard"] = int(dashboard)
    for address, worker in info["workers"].items():
        ports[address] = int(address.rsplit(":", 1)[1])
        for service, port in worker.get("services", {}).items():
            ports[f"{address} {service}"] = int(port)
    allowed = {interface_address()}
    bound = {what: listening(port) for what, port in ports.items()}
    assert bound["dashboard"], f"nothing listens on the dashboard port {dashboard}"
    wrong = {what: hosts for what, hosts in bound.items() if set(hosts) - allowed}
    assert not wrong, f"listening beyond {allowed}: {wrong}"
    # The dashboard is plain HTTP that the attacker reaches (said in the README), but without
    # Dask's HTTP API, which would let anyone retire the owner's workers, and without Dask's
    # proxy route, which relays to any host and port where jupyter-server-proxy is installed
    # (without that package the route answers 200 with a hint; gone, it is a 404).
    base = f"http://{bound['dashboard'][0]}:{dashboard}"
    proxy = f"{base}/proxy/{dashboard}/{bound['dashboard'][0]}/status"
    run = subprocess.run(**command(HTTP_GET, [f"{base}/health", f"{base}/api/v1/get_workers",
                                              f"{base}/api/v1/retire_workers", proxy], True), timeout=60)
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)
    assert seen[f"{base}/health"] == 200, seen
    assert seen[f"{base}/api/v1/get_workers"] == 404 and seen[f"{base}/api/v1/retire_workers"] == 404, seen
    assert seen[proxy] == 404, seen


def test_grow_under_tls(slurm_cluster):
    c = slurm_cluster
    grow = c.kernel.run("%cluster grow sec --wait --timeout 150", timeout=240)
    assert grow.status == "ok", grow.reply["content"]
    workers = next(line for line in c.status().splitlines() if line.startswith("workers"))
    assert f"{GROWN}/{GROWN}" in workers
    (info,) = attempts((False, "tls", host_port(c.address), "scheduler", *c.client_cert()))
    assert info["connected"], info
    assert len(info["workers"]) == GROWN and all(w.startswith("tls://") for w in info["workers"])
    grow_job = c.registry()["jobs"][-1]
    assert grow_job["role"].lower() == "grow"
    assert mode(grow_job["script_path"]) == 0o600 and mode(grow_job["log_path"]) == 0o600


def test_restart_reattaches_with_the_client_certificate(slurm_cluster):
    """After a kernel restart the re-attached cluster is followed over TLS and %%python still
    connects with no arguments (the client certificate comes back from the registry)."""
    c = slurm_cluster
    c.kernel.restart()
    wait_until(lambda: "running" in c.kernel.run("%cluster list").result["text/plain"], 60, "the re-attached cluster")
    text = c.status()
    assert "mutual TLS" in text, text
    assert_computed(dask_array_sum(c.kernel, "sec"), c, GROWN)
