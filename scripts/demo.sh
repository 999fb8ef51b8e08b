#!/usr/bin/env bash
# The main job: install the engine, record a conversation in the embedded store, recall it. Offline.
source "$(dirname "$0")/_env.sh"
"$VPY" -m pip install --quiet --disable-pip-version-check -e "$ROOT"
exec "$ROOT/.venv/bin/mem-adapters" demo "$@"
