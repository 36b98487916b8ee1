"""evcxr builds every cell in a crate of its own, in $EVCXR_TMPDIR when that is set: an empty
value must not make the notebook's directory that crate."""
import os

from jupyter_client.manager import start_new_kernel

from kernelclient import KERNEL_NAME, execute

MANIFEST = '[package]\nname = "mine"\nversion = "0.1.0"\n'


def test_an_empty_evcxr_tmpdir_leaves_the_notebook_directory_alone(tmp_path):
    (tmp_path / "Cargo.toml").write_text(MANIFEST)
    env = dict(os.environ, EVCXR_TMPDIR="")
    km, kc = start_new_kernel(kernel_name=KERNEL_NAME, startup_timeout=60, env=env, cwd=str(tmp_path))
    try:
        assert execute(kc, "40 + 2").result["text/plain"] == "42"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert (tmp_path / "Cargo.toml").read_text() == MANIFEST
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Cargo.toml"]
