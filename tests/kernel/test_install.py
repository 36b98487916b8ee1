"""install.sh installs the binary that cargo has just built, also when CARGO_TARGET_DIR moves the
build out of target/ (on clusters, to scratch space) and an older binary still lies in
target/release."""
import json
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

STALE = b"#!/bin/sh\n# an older build: answers everything with success and installs nothing\nexit 0\n"


def test_install_takes_the_binary_from_where_cargo_built_it(tmp_path):
    # Without a new build (one into an empty target directory takes 10 minutes): the repository is
    # seen through a directory of symlinks whose own target/release holds only a stale binary,
    # and CARGO_TARGET_DIR is the real target directory, which holds the current build. Cargo's
    # fingerprints do not depend on where the sources are seen from, so it finds nothing to
    # build; and nothing is written into the real target/ but what a build would write.
    metadata = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps", "--locked"],
        cwd=REPO, capture_output=True, text=True, check=True,
    )
    target_dir = Path(json.loads(metadata.stdout)["target_directory"])
    shadow = tmp_path / "repo"
    shadow.mkdir()
    for entry in REPO.iterdir():
        if entry.name != "target":
            (shadow / entry.name).symlink_to(entry)
    stale = shadow / "target" / "release" / "rust-cluster-kernel"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(STALE)
    stale.chmod(0o755)
    assert target_dir.resolve() != stale.parent.parent.resolve()

    prefix = tmp_path / "prefix"
    env = dict(os.environ, CARGO_TARGET_DIR=str(target_dir))
    run = subprocess.run(
        [str(shadow / "install.sh"), "--prefix", str(prefix)],
        env=env, capture_output=True, text=True, timeout=1200,
    )
    assert run.returncode == 0, run.stderr

    installed = prefix / "bin" / "rust-cluster-kernel"
    assert installed.read_bytes() != STALE, "install.sh installed the stale target/release binary"
    # The build: target_dir/release/, or target_dir/TRIPLE/release/ under a cargo config's build.target.
    [built] = [line.split(" built ", 1)[1] for line in run.stderr.splitlines() if line.startswith("[install] built ")]
    assert Path(built).resolve().is_relative_to(target_dir.resolve()), built
    assert installed.read_bytes() == Path(built).read_bytes()
    spec = json.loads((prefix / "share/jupyter/kernels/rust-cluster/kernel.json").read_text())
    assert Path(spec["argv"][0]) == installed.resolve()
