#!/usr/bin/env bash
# tests/setup/browser.sh — what the JupyterLab-in-Chromium test needs: Debian's chromium
# (no browser download) and playwright-core from npm (tests/browser/package-lock.json).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
log() { printf '[browser.sh] %s\n' "$*" >&2; }
if [ ! -x /usr/bin/chromium ]; then
  log "installing Debian's chromium"
  sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
    || { $sudo apt-get update -q >/dev/null && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }
fi
if [ ! -d "$root/tests/browser/node_modules/playwright-core" ]; then
  log "npm ci in tests/browser"
  (cd "$root/tests/browser" && npm ci --no-audit --no-fund --silent)
fi
