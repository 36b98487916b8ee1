#!/usr/bin/env bash
# tests/setup/attacker.sh [VENV] — the second Unix user of tests/cluster/test_security.py:
# another person on the same login node, who tries to use the kernel user's Dask clusters.
#
# Creates the unprivileged system user rck-attacker (RCK_ATTACKER_USER) if it does not exist,
# and checks that this user can run the Dask client of VENV (default .venv). Idempotent; needs root.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${1:-$root/.venv}
user=${RCK_ATTACKER_USER:-rck-attacker}
log() { printf '[attacker.sh] %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
  log "needs root to create the user $user"
  exit 1
fi
if ! id -u "$user" >/dev/null 2>&1; then
  log "creating the user $user"
  useradd --system --create-home --shell /usr/sbin/nologin "$user"
fi
# The user must not share a group with anyone: group-readable files stay out of reach.
if [ "$(id -u "$user")" = 0 ] || id -nG "$user" | tr ' ' '\n' | grep -qx root; then
  log "$user is root or in the group root: it cannot play another user"
  exit 1
fi
# The attacker runs the venv's Dask: with the venv's python, or, when that links into a directory
# the attacker cannot enter (a pyenv under /root), with the system's python of the same version
# and the venv's packages on PYTHONPATH (tests/cluster/test_security.py makes the same choice).
can_import() { (cd / && env -i PATH=/usr/local/bin:/usr/bin:/bin "$@" "$runuser" -u "$user" -- "${py[@]}" -c 'import distributed') >/dev/null 2>&1; }
runuser=$(command -v runuser)
py=("$venv/bin/python")
if can_import; then exit 0; fi
short=$(sed -n 's/^version *= *\([0-9]*\.[0-9]*\).*/\1/p' "$venv/pyvenv.cfg")
if system=$(PATH=/usr/local/bin:/usr/bin:/bin command -v "python$short"); then
  py=("$system" -s)
  if can_import PYTHONPATH="$venv/lib/python$short/site-packages"; then exit 0; fi
fi
log "$user cannot import distributed from $venv: make the venv (and the python it links to)" \
    "readable and searchable by others (chmod o+rx), or install python$short on the system"
exit 1
