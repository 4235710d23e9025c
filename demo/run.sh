#!/usr/bin/env bash
# The main job: a demo research log in a fresh folder, exercising everything recap can do so far.
# Each capability adds its own step in demo/steps/ (run in name order, sharing this shell's env).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export DEMO_DIR="${DEMO_DIR:-$(pwd)/demo-log}"
export SHARED_DIR="${SHARED_DIR:-$(cd "$here/../.." && pwd)/shared}"
export DEMO_FIXTURES="$here/fixtures"
rm -rf "$DEMO_DIR"
export RECAP_ROOT="$DEMO_DIR"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }
export -f step show
for s in "$here"/steps/*.sh; do
  source "$s"
done
printf '\nDemo log ready in %s\n' "$DEMO_DIR"
