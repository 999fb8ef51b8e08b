#!/usr/bin/env bash
# The lower bounds are real: install the LOWEST version every pyproject.toml allows for each direct
# dependency (uv --resolution lowest-direct) into fresh venvs beside .venv and run the tests there:
#   .venv-lowest         engine [server] + both integrations with their [test] extras -> tests/langchain,
#                        tests/llama_index (each adapter test runs on an engine and on a client of `serve`)
#   .venv-lowest-engine  the engine alone with its [test] extra             -> a few engine tests (embedded + server)
#   .venv-lowest-server  the engine with its [server] extra                 -> its libraries import
# Run by .ci/run after the main suite; needs network access to PyPI (uv comes from PyPI, into .venv).
source "$(dirname "$0")/_env.sh"
"$VPY" -m pip install --quiet --disable-pip-version-check "uv>=0.5,<1"
UV="$ROOT/.venv/bin/uv"
export UV_PYTHON_DOWNLOADS=never # use this machine's Python, never a downloaded one
BASE_PY="$("$VPY" -c 'import sys; print(sys._base_executable)')"

lowest_venv() { # lowest_venv DIR REQUIREMENT... : a fresh venv with the lowest direct versions
  local dir="$1"
  shift
  rm -rf "$dir"
  "$UV" venv --quiet --python "$BASE_PY" "$dir"
  "$UV" pip install --quiet --python "$dir/bin/python" --resolution lowest-direct "$@"
}

echo "== lowest direct versions: engine + integrations"
LOW="$ROOT/.venv-lowest"
lowest_venv "$LOW" -e "$ROOT[server]" -e "$ROOT/integrations/langchain[test]" -e "$ROOT/integrations/llama-index[test]"
"$UV" pip list --python "$LOW/bin/python" 2>/dev/null |
  grep -E -i '^(chromadb|pydantic|onnxruntime|tokenizers|numpy|fastapi|uvicorn|httpx|pyjwt|langchain|langchain-core|langchain-tests|langgraph|langgraph-checkpoint|llama-index-core|aiosqlite|hypothesis|pytest|pytest-asyncio) '
# The llama_index tests importorskip their package: an import failure must fail here, not skip there.
"$LOW/bin/python" -c "import mem_adapters, langchain_mem_adapters, llama_index.memory.mem_adapters"
"$LOW/bin/python" -m pytest tests/langchain tests/llama_index -q -p no:cacheprovider --disable-warnings

echo "== lowest direct versions: the engine alone"
LOWE="$ROOT/.venv-lowest-engine"
lowest_venv "$LOWE" -e "$ROOT[test]"
"$UV" pip list --python "$LOWE/bin/python" 2>/dev/null |
  grep -E -i '^(chromadb|pydantic|onnxruntime|tokenizers|numpy|pytest|pytest-asyncio|hypothesis) '
"$LOWE/bin/python" -m pytest tests/test_core_api.py tests/test_server_mode.py -q -p no:cacheprovider --disable-warnings

echo "== lowest direct versions: the [server] extra"
LOWS="$ROOT/.venv-lowest-server"
lowest_venv "$LOWS" -e "$ROOT[server]"
"$UV" pip list --python "$LOWS/bin/python" 2>/dev/null | grep -E -i '^(fastapi|uvicorn|pyjwt|httpx|mcp|pydantic) '
"$LOWS/bin/python" -c "import fastapi, httpx, jwt, mcp, uvicorn, uvloop; assert jwt.algorithms.has_crypto"
