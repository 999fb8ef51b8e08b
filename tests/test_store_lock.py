"""One writer process per embedded store folder (``flock``), released however the holder dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from mem_adapters import AsyncMemoryEngine, MemoryEngine
from mem_adapters.data.lock import LOCK_NAME, StoreLock
from mem_adapters.errors import StoreError, StoreLockedError

HOLDER = textwrap.dedent(
    """
    import sys, time
    from mem_adapters import MemoryEngine

    class Tiny:
        identity, dimension = "test:tiny:4", 4
        def embed_documents(self, texts):
            return [[1.0, float(len(t) % 7), 0.5, 0.25] for t in texts]
        def embed_query(self, text):
            return [1.0, float(len(text) % 7), 0.5, 0.25]

    engine = MemoryEngine(sys.argv[1], embedder=Tiny())
    engine.remember([{"role": "user", "text": "held by the subprocess"}], session_id="s")
    print("ready", flush=True)
    time.sleep(600)
    """
)


class Tiny:
    """A 4-d embedder: the lock does not care what is embedded."""

    identity, dimension = "test:tiny:4", 4

    def embed_documents(self, texts):
        return [[1.0, float(len(t) % 7), 0.5, 0.25] for t in texts]

    def embed_query(self, text):
        return [1.0, float(len(text) % 7), 0.5, 0.25]


@pytest.fixture
def holder(tmp_path):
    """A real subprocess that opened an engine on ``tmp_path/store`` and keeps it open."""
    path = tmp_path / "store"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        pytest.fail(f"holder did not start: {proc.stderr.read()[-2000:]}")
    yield path, proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_second_process_gets_a_typed_error_naming_the_pid_then_reopens_after_sigkill(holder):
    path, proc = holder
    with pytest.raises(StoreLockedError) as info:
        MemoryEngine(path, embedder=Tiny())
    err = info.value
    assert isinstance(err, StoreError)
    assert err.pid == proc.pid
    assert str(proc.pid) in str(err) and "Chroma server" in str(err)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with MemoryEngine(path, embedder=Tiny()) as engine:  # the OS released the lock
        texts = [m.text for m in engine.get_messages("s")]
    assert texts == ["held by the subprocess"]


async def test_async_engine_is_refused_too_and_a_failed_open_leaves_no_share(holder):
    path, proc = holder
    for _ in range(2):
        with pytest.raises(StoreLockedError):
            AsyncMemoryEngine(path, embedder=Tiny())
    proc.kill()
    proc.wait()
    engine = AsyncMemoryEngine(path, embedder=Tiny())
    await engine.aclose()
    # Closed: nothing of this process keeps the folder, so another process may open it.
    out = subprocess.run(
        [sys.executable, "-c", HOLDER.replace("time.sleep(600)", "engine.close()"), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    assert out.returncode == 0, out.stderr[-2000:]


def test_engines_of_one_process_share_the_folder_and_the_last_close_releases_it(tmp_path):
    path = tmp_path / "store"
    a = MemoryEngine(path, embedder=Tiny())
    b = MemoryEngine(path, embedder=Tiny())
    a.remember([{"role": "user", "text": "from a"}], session_id="s")
    assert [m.text for m in b.get_messages("s")] == ["from a"]
    a.close()
    b.remember([{"role": "user", "text": "from b"}], session_id="s")  # b still holds its share
    probe = subprocess.run(
        [sys.executable, "-c", HOLDER, str(path)], capture_output=True, text=True, timeout=120,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )  # fmt: skip
    assert probe.returncode != 0 and "StoreLockedError" in probe.stderr
    assert str(os.getpid()) in probe.stderr
    b.close()
    b.close()  # idempotent: releases once
    lock = StoreLock(path)  # free again
    assert (path / LOCK_NAME).read_text().strip() == str(os.getpid())
    lock.release()
    lock.release()
    assert (path / LOCK_NAME).read_text() == ""
