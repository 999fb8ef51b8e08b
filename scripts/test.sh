#!/usr/bin/env bash
# The whole test suite: install the engine, both integrations and the test tools, then run pytest.
source "$(dirname "$0")/_env.sh"
"$VPY" -m pip install --quiet --disable-pip-version-check \
  -e "$ROOT[test,bench,server]" \
  -e "$ROOT/integrations/langchain[test]" \
  -e "$ROOT/integrations/llama-index[test]"
"$ROOT/scripts/install-browser.sh"  # Debian chromium + axe-core for tests/test_ui.py
"$VPY" -m ruff check src integrations tests examples benchmarks
exec "$VPY" -m pytest "$@"
