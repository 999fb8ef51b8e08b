# Shared set-up for scripts/demo.sh and scripts/test.sh: a venv with everything installed.
# Sourced, not run. Idempotent: re-running only installs what changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY="$ROOT/.venv/bin/python"
"$VPY" -m pip install --quiet --disable-pip-version-check --upgrade pip
# The model: an explicit MEM_ADAPTERS_MODEL_DIR wins; else the checkout's shared/ copy (developers, CI);
# else the engine looks in Chroma's cache and finally asks Chroma's downloader.
if [ -z "${MEM_ADAPTERS_MODEL_DIR:-}" ] && [ -f "$ROOT/../shared/models/all-MiniLM-L6-v2/onnx/model.onnx" ]; then
  export MEM_ADAPTERS_MODEL_DIR="$ROOT/../shared/models/all-MiniLM-L6-v2/onnx"
fi
export ANONYMIZED_TELEMETRY=False
