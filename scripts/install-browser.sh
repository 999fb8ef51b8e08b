#!/usr/bin/env bash
# Headless Chromium for the inspector's browser tests (tests/test_ui*.py): Debian's chromium
# package, Playwright's Python API (no browser download: the tests launch /usr/bin/chromium)
# and axe-core from npm into tests/ui/node_modules (tests only, never shipped in the package).
set -euo pipefail
source "$(dirname "$0")/_env.sh"
if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
"$VPY" -m pip install --quiet --disable-pip-version-check "playwright>=1.49"
if [ ! -f "$ROOT/tests/ui/node_modules/axe-core/axe.min.js" ]; then
  (cd "$ROOT/tests/ui" && npm install --no-audit --no-fund --silent)
fi
