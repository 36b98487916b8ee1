#!/usr/bin/env bash
# install.sh — build rust-cluster-kernel and register the Jupyter kernelspec "Rust (cluster)".
#
#   ./install.sh                  # for this user (~/.local/share/jupyter/kernels/rust-cluster)
#   ./install.sh --sys-prefix     # into the active Python environment ($VIRTUAL_ENV / $CONDA_PREFIX)
#   ./install.sh --prefix DIR     # into DIR/share/jupyter/kernels/rust-cluster (binary in DIR/bin)
#
# It also makes sure of what evcxr needs at run time: cargo, rustc, and the rust-src component
# (without it, completion and inspection of std types fail).
set -euo pipefail
cd "$(dirname "$0")"

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }
mode=user prefix=""
while [ $# -gt 0 ]; do
  case "$1" in
    --user) mode=user ;;
    --sys-prefix) mode=sys-prefix ;;
    --prefix) [ $# -ge 2 ] || { echo "install.sh: --prefix needs a directory" >&2; exit 2; }
              mode=prefix prefix=$2; shift ;;
    --prefix=*) mode=prefix prefix=${1#--prefix=} ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

log() { printf '[install] %s\n' "$*" >&2; }

command -v cargo >/dev/null || { log "cargo not found: install Rust with rustup (https://rustup.rs) first"; exit 1; }
if command -v rustup >/dev/null; then
  if ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
    log "adding the rust-src component (evcxr needs it for completion and inspection)"
    rustup component add rust-src
  fi
elif [ ! -d "$(rustc --print sysroot)/lib/rustlib/src/rust/library" ]; then
  log "warning: no rustup and no std sources in $(rustc --print sysroot): completion of std types will not work"
fi

log "building the release binary (the first build of evcxr takes about 10 minutes on 2 cores)"
# Cargo says where it put the binary: CARGO_TARGET_DIR (scratch space on clusters with small home
# quotas), build.target-dir or build.target in a cargo config all move it away from
# target/release, where an older build's binary may still lie. Diagnostics still go to stderr.
binary=$(cargo build --release --locked --bin rust-cluster-kernel --message-format=json-render-diagnostics \
  | sed -n '/"reason":"compiler-artifact"/{/"kind":\["bin"\]/{/"name":"rust-cluster-kernel"/s/.*"executable":"\([^"]*\)".*/\1/p;};}' \
  | tail -n 1)
[ -n "$binary" ] && [ -x "$binary" ] || { log "cargo reported no rust-cluster-kernel binary (got '${binary}')"; exit 1; }
log "built $binary"

case "$mode" in
  user) bindir=${XDG_BIN_HOME:-$HOME/.local/bin}; flag=--user ;;
  sys-prefix)
    env_prefix=${VIRTUAL_ENV:-${CONDA_PREFIX:-}}
    [ -n "$env_prefix" ] || { log "--sys-prefix needs an active venv or conda environment"; exit 2; }
    bindir=$env_prefix/bin; flag=--sys-prefix ;;
  prefix) mkdir -p "$prefix"; prefix=$(cd "$prefix" && pwd); bindir=$prefix/bin; flag="--prefix=$prefix" ;;
esac
mkdir -p "$bindir"
# Copy to a temporary name and rename, so that a running kernel's binary is never overwritten.
install -m 0755 "$binary" "$bindir/.rust-cluster-kernel.new"
mv -f "$bindir/.rust-cluster-kernel.new" "$bindir/rust-cluster-kernel"
"$bindir/rust-cluster-kernel" install "$flag"
log "kernel binary: $bindir/rust-cluster-kernel"
if ! command -v jupyter >/dev/null && [ "$mode" = user ]; then
  log "Jupyter itself was not found. Get it with: python3 -m venv .venv && .venv/bin/pip install jupyterlab"
  log "(or run ./lab.sh, which does that and opens the workshop notebooks)"
fi
