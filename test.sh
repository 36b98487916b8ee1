#!/usr/bin/env bash
# test.sh — the whole test suite, on a fresh Debian machine as on a developer's.
#
#   ./test.sh          everything: unit tests, the kernel over real sockets, conformance,
#                      the real SLURM, notebooks, and JupyterLab in headless Chromium
#   ./test.sh --fast   unit tests and the kernel's protocol tests only (no SLURM, no browser)
#
# It installs what it needs by itself (apt packages, the rust-src component, the venv .venv,
# a private SLURM under tests/output/) and ends with one line: "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")"
root=$PWD
fast=0
for a in "$@"; do
  case "$a" in
    --fast) fast=1 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "test.sh: unknown option $a" >&2; exit 2 ;;
  esac
done
log() { printf '\n[test.sh] %s\n' "$*" >&2; }
die() { log "$*"; echo "0 passed, 1 failed"; exit 1; }

out=$root/tests/output
mkdir -p "$out"
# Keep history, profiles and the cluster registry of the tests away from the user's own.
export XDG_DATA_HOME=$out/xdg/data XDG_STATE_HOME=$out/xdg/state XDG_CONFIG_HOME=$out/xdg/config
mkdir -p "$XDG_DATA_HOME" "$XDG_STATE_HOME" "$XDG_CONFIG_HOME"

log "set-up: Python venv .venv"
tests/setup/python.sh "$root/.venv" || die "could not set up the Python venv"
if [ "$fast" = 0 ]; then
  log "set-up: the lab SLURM (munge, slurmctld, two slurmd) and the Dask side of the venv"
  tests/slurm/up.sh || die "could not start the lab SLURM"
  tests/slurm/venv.sh "$root/.venv" >/dev/null || die "could not install dask-mpi into .venv"
  tests/setup/attacker.sh "$root/.venv" || die "could not create the second Unix user of tests/cluster/test_security.py"
  export RCK_DASK_VENV=$root/.venv
  log "set-up: Debian's chromium and playwright-core for the JupyterLab test"
  tests/setup/browser.sh || die "could not set up the browser test"
fi
log "set-up: build and install the kernel into .venv"
./install.sh --prefix "$root/.venv" || die "install.sh failed"

# evcxr's cache of compiled :dep crates too (set only now: pip and the browser set-up keep theirs).
export XDG_CACHE_HOME=$out/xdg/cache
mkdir -p "$XDG_CACHE_HOME"

passed=0 failed=0 skipped=0
add() { passed=$((passed + $1)); failed=$((failed + $2)); skipped=$((skipped + ${3:-0})); }

# The crate tests that need the lab SLURM (crates/dask-slurm/tests/real_slurm.rs) are #[ignore]d
# with that reason, and only they are: the full run, which has the lab, includes them; --fast
# leaves them ignored (counted as skipped) and also leaves out the doc tests.
pytest_args=(tests/kernel)
cargo_args=(--workspace --lib --bins --tests)
harness_args=()
if [ "$fast" = 0 ]; then
  pytest_args=(tests)
  cargo_args=(--workspace)
  harness_args=(--include-ignored)
fi

log "cargo test (unit and crate integration tests)"
cargo test --release --locked --no-fail-fast "${cargo_args[@]}" -- "${harness_args[@]}" 2>&1 | tee "$out/cargo-test.log"
cargo_rc=${PIPESTATUS[0]}
read -r p f i < <(awk '/^test result:/ { for (k = 1; k <= NF; k++) { if ($k ~ /^passed;?$/) p += $(k-1); if ($k ~ /^failed;?$/) f += $(k-1); if ($k ~ /^ignored;?$/) i += $(k-1) } } END { print p+0, f+0, i+0 }' "$out/cargo-test.log")
if [ "$cargo_rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # a build failure counts as a failure
add "$p" "$f" "$i"

log "pytest ${pytest_args[*]}"
"$root/.venv/bin/python" -m pytest "${pytest_args[@]}" 2>&1 | tee "$out/pytest.log"
pytest_rc=${PIPESTATUS[0]}
# pytest's own closing line, e.g. "==== 1 failed, 36 passed, 2 skipped in 57.67s ====".
summary=$(grep -E '^=+ .*(passed|failed|error|skipped|no tests ran).* in [0-9.]+s' "$out/pytest.log" | tail -1)
count() { echo "$summary" | grep -oE "[0-9]+ $1" | grep -oE '[0-9]+' | awk '{ s += $1 } END { print s+0 }'; }
p=$(count passed) f=$(( $(count failed) + $(count 'errors?') )) s=$(count skipped)
if [ "$pytest_rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
add "$p" "$f" "$s"

log "summary: cargo exit $cargo_rc, pytest exit $pytest_rc"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
