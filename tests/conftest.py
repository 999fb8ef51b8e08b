"""Shared fixtures: the real model (found as the engine finds it), fresh embedded engines, a Chroma server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

# After the telemetry switch: importing the engine imports chromadb.
from mem_adapters.embeddings import resolve_model_dir
from mem_adapters.errors import ModelNotFoundError

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"  # small made-up data; see fixtures/README.md
# The model as the engine finds it: $MEM_ADAPTERS_MODEL_DIR, else Chroma's cache
# (~/.cache/chroma/onnx_models/all-MiniLM-L6-v2/onnx). Never downloaded by the tests.
try:
    MODEL_DIR = resolve_model_dir(download=False)
except ModelNotFoundError as e:
    pytest.exit(f"The tests need the embedding model. {e}", returncode=4)
# Subprocesses (examples, README quickstarts, crash workers) get the same files.
os.environ.setdefault("MEM_ADAPTERS_MODEL_DIR", str(MODEL_DIR))


@pytest.fixture(scope="session")
def embedder():
    """One real all-MiniLM-L6-v2 embedder shared by the whole run (loading it costs ~0.3 s)."""
    from mem_adapters import OnnxMiniLMEmbedder

    return OnnxMiniLMEmbedder(MODEL_DIR)


@pytest.fixture
def engine(tmp_path, embedder) -> Iterator:
    """A fresh embedded engine on its own folder."""
    from mem_adapters import MemoryEngine

    eng = MemoryEngine(tmp_path / "store", embedder=embedder)
    yield eng
    eng.close()


@pytest.fixture
async def aengine(tmp_path, embedder) -> AsyncIterator:
    """A fresh embedded async engine on its own folder."""
    from mem_adapters import AsyncMemoryEngine

    eng = AsyncMemoryEngine(tmp_path / "astore", embedder=embedder)
    yield eng
    await eng.aclose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory) -> Iterator[tuple[str, int]]:
    """A real ``chroma run`` server on a free loopback port, for the whole test session."""
    exe = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    port = _free_port()
    data = tmp_path_factory.mktemp("chroma-server")
    log = open(data / "server.log", "wb")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(
        [exe, "run", "--path", str(data / "db"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    import chromadb

    deadline = time.time() + 60
    while True:
        try:
            chromadb.HttpClient(host="127.0.0.1", port=port).heartbeat()
            break
        except Exception:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise RuntimeError((data / "server.log").read_text()[-2000:]) from None
            time.sleep(0.2)
    yield "127.0.0.1", port
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
