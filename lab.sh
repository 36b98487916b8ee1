#!/usr/bin/env bash
# lab.sh — install everything the workshop needs and open JupyterLab on notebooks/.
#
#   ./lab.sh [jupyter lab options…]
#
# Uses the `jupyter` on PATH if there is one; otherwise creates the project venv .venv with
# JupyterLab (and the Dask side for the %cluster magics). Then builds and registers the kernel
# in that Jupyter and starts `jupyter lab notebooks/`.
set -euo pipefail
cd "$(dirname "$0")"
log() { printf '[lab] %s\n' "$*" >&2; }

if command -v jupyter >/dev/null && jupyter lab --version >/dev/null 2>&1; then
  jupyter_bin=$(command -v jupyter)
  ./install.sh --user
else
  log "no JupyterLab found: creating the project venv .venv"
  # tests/requirements.txt brings jupyter-server-proxy and dask-labextension (and bokeh): the
  # card links the Dask dashboard through this JupyterLab, and opens it in Dask's panes.
  tests/setup/python.sh .venv
  tests/slurm/venv.sh "$PWD/.venv" >/dev/null
  jupyter_bin=$PWD/.venv/bin/jupyter
  ./install.sh --prefix "$PWD/.venv"
  # The kernel finds dask-mpi (local backend) and the Python of %%python on PATH.
  export PATH="$PWD/.venv/bin:$PATH"
fi
log "starting JupyterLab on notebooks/ — pick the kernel \"Rust (cluster)\""
exec "$jupyter_bin" lab notebooks/ "$@"
