#!/usr/bin/env bash
# Renders the display fixtures (tests/fixtures/display/*.html: each fragment in JupyterLab's
# light and dark theme) to PNGs under tests/output/display/ with headless Chromium, for a
# person to look at. Needs Debian's chromium (apt-get install chromium). Usage:
#   tests/display/screenshots.sh [NAME...]     # default: every fixture
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
fixtures=$root/tests/fixtures/display
out=$root/tests/output/display
browser=$(command -v chromium || command -v chromium-browser || true)
if [[ -z $browser ]]; then
    echo "screenshots.sh: no chromium on PATH (apt-get install chromium)" >&2
    exit 1
fi
mkdir -p "$out"
if [[ $# -eq 0 ]]; then
    set -- $(cd "$fixtures" && ls *.html | sed 's/\.html$//')
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
for name in "$@"; do
    page=$fixtures/$name.html
    [[ -f $page ]] || { echo "screenshots.sh: no fixture $page" >&2; exit 1; }
    # Tall enough for the light and the dark copy of the biggest fixture.
    timeout 60 "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
        --user-data-dir="$profile" --window-size="${WIDTH:-900},${HEIGHT:-1400}" \
        --screenshot="$out/$name.png" "file://$page" 2>/dev/null
    echo "$out/$name.png"
done
