#!/usr/bin/env bash
# tests/slurm/venv.sh - make sure a Python venv has the Dask side of the cluster
# tests: dask, distributed, dask-mpi, mpi4py at the versions the team's lab recipe was proven
# with (see tests/slurm/README.md), plus numpy, pandas and pyarrow for the %%python examples.
# No prometheus_client: the scheduler's /metrics is not used by the tests.
#
#   tests/slurm/venv.sh [VENV_DIR]
#
# VENV_DIR: the first argument, else $RCK_DASK_VENV, else REPO/.venv-dask.
# An existing venv is reused (e.g. the main test venv `.venv` made by the
# Python test set-up): only the packages that are missing or at another version
# are installed, so one venv can serve both. Creates the venv if VENV_DIR has none.
# Prints the venv's absolute path on stdout (for `VENV=$(tests/slurm/venv.sh)`).
#
# Settings: PYTHON (the interpreter to create the venv with; default python3).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
VENV=${1:-${RCK_DASK_VENV:-$REPO/.venv-dask}}
PYTHON=${PYTHON:-python3}
# mpi4py 4.x ships a binary wheel that loads the system's libmpi (Debian's
# Open MPI 4.1.4) at run time, so nothing is compiled.
PKGS=(dask==2026.8.0 distributed==2026.8.0 dask-mpi==2026.3.0 mpi4py==4.1.2 numpy==2.4.6 pandas==3.1.1 pyarrow==26.0.1)

log() { printf '[venv.sh] %s\n' "$*" >&2; }

case "$VENV" in /*) ;; *) VENV=$PWD/$VENV ;; esac

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PYTHON" -m venv "$VENV"
  # Keep a venv made inside the work tree out of git (as Python >= 3.13 does).
  [ -e "$VENV/.gitignore" ] || echo '*' > "$VENV/.gitignore"
fi

# The requirements not yet satisfied, by name and exact version.
missing=$("$VENV/bin/python" - "${PKGS[@]}" <<'EOF'
import sys
from importlib.metadata import version, PackageNotFoundError
for req in sys.argv[1:]:
    name, want = req.split("==")
    try:
        have = version(name)
    except PackageNotFoundError:
        have = None
    if have != want:
        print(req)
EOF
)

if [ -n "$missing" ]; then
  # shellcheck disable=SC2086
  log "installing: $(echo $missing)"
  # shellcheck disable=SC2086
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check $missing >&2
else
  log "$VENV already has ${PKGS[*]}"
fi

[ -x "$VENV/bin/dask-mpi" ] || { log "ERROR: no dask-mpi in $VENV/bin"; exit 1; }
echo "$VENV"
