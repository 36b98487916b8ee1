#!/usr/bin/env bash
# tests/setup/python.sh [VENV] — create the project venv (default .venv) and install
# tests/requirements.txt into it, only when something is missing (fast on re-runs).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${1:-$root/.venv}
req=$root/tests/requirements.txt
log() { printf '[python.sh] %s\n' "$*" >&2; }
if [ ! -x "$venv/bin/python" ]; then
  log "creating $venv"
  python3 -m venv "$venv"
fi
stamp=$venv/.requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing $(grep -cv '^#' "$req") packages from tests/requirements.txt"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
  echo "$want" > "$stamp"
fi
