"""%cluster and mutual TLS through the kernel, without a cluster: the job script's TLS lines and
--insecure, attach's refusals, and no keys (and no cluster) under a directory others can write.
The clusters themselves are tested on the lab SLURM (tests/cluster/test_security.py)."""
import os
import pathlib
import subprocess
import tempfile

from kernelclient import execute

# The state directory sits below a world-writable directory without the sticky bit: anyone could
# swap the cluster's keys there, so %cluster up must refuse before it starts anything.
_BASE = pathlib.Path(tempfile.mkdtemp(prefix="rck-cluster-security-"))
_OPEN = _BASE / "open"
_OPEN.mkdir()
_OPEN.chmod(0o777)
STATE = _OPEN / "state"
KERNEL_ENV = {"XDG_STATE_HOME": str(STATE), "XDG_CONFIG_HOME": str(_BASE / "config")}


def test_the_job_script_uses_the_clusters_certificates(kc):
    text = execute(kc, "%cluster script demo --backend local").result["text/plain"]
    tls = STATE / "rust-cluster-kernel/demo/tls"
    assert f"rck_tls={tls}\n" in text
    assert "export DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION=True\n" in text
    assert 'export DASK_DISTRIBUTED__COMM__TLS__WORKER__KEY="$rck_tls"/node-key.pem\n' in text
    assert "--protocol tls" in text and "umask 077" in text
    assert '--dashboard-address "$rck_ip":' in text
    insecure = execute(kc, "%cluster script demo --backend local --insecure").result["text/plain"]
    assert "--protocol tcp" in insecure and "DASK_DISTRIBUTED__COMM" not in insecure
    assert "Anyone who can reach these ports" in insecure


def test_attach_needs_certificates_or_consent(kc):
    run = execute(kc, "%cluster attach x --address tcp://127.0.0.1:9 --dashboard-port 9")
    assert run.status == "error" and "--insecure" in run.reply["content"]["evalue"]
    run = execute(kc, "%cluster attach x --address tls://127.0.0.1:9 --dashboard-port 9")
    assert run.status == "error" and "--tls-ca" in run.reply["content"]["evalue"]
    run = execute(kc, "%cluster attach x --address tls://127.0.0.1:9 --dashboard-port 9 --tls-ca a")
    assert run.status == "error" and run.reply["content"]["ename"] == "UsageError"


def test_up_refuses_keys_below_a_directory_others_can_write(kc):
    run = execute(kc, "%cluster up demo --backend local --interface lo --nodes 1 --workers-per-node 2")
    assert run.status == "error", run.reply["content"]
    message = run.reply["content"]["evalue"]
    assert "refusing" in message and str(_OPEN) in message and "writable by other users" in message
    assert not (STATE / "rust-cluster-kernel/demo").exists(), "nothing may be written"
    running = subprocess.run(["pgrep", "-f", f"{STATE}/rust-cluster-kernel/demo/"], capture_output=True)
    assert running.returncode == 1, "nothing may be started"


def teardown_module():
    subprocess.run(["rm", "-rf", str(_BASE)], check=False)
    assert not os.path.exists(_BASE)
