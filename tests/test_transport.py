"""Transport faults on a real ``chroma run``: typed errors, timeouts, retried writes, nothing lost.

Each fault test starts its own short-lived server (it is killed or stopped on purpose); the
retry test puts a small TCP proxy in front of one that drops the first answers of upserts
after the server has committed them.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from dropping_proxy import DroppingProxy

from mem_adapters import AsyncMemoryEngine
from mem_adapters.data.chroma import async_http_client, http_client, is_transport_failure
from mem_adapters.errors import StoreError, TransportError
from mem_adapters.limits import Limits

GUARD = 120  # seconds: a hung call fails the test instead of blocking the run


class Tiny:
    """A 4-d embedder: transport does not care what is embedded."""

    identity, dimension = "test:tiny:4", 4

    def embed_documents(self, texts):
        return [[1.0, float(len(t) % 7), 0.5, 0.25] for t in texts]

    def embed_query(self, text):
        return [1.0, float(len(text) % 7), 0.5, 0.25]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A ``chroma run`` process that a test may kill, stop, continue and restart (same data)."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port, self.proc = folder, _free_port(), None
        self.start()

    def start(self) -> None:
        exe = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
        log = open(self.folder / "server.log", "ab")  # noqa: SIM115 - the process owns it
        self.proc = subprocess.Popen(
            [exe, "run", "--path", str(self.folder / "db"), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
        )
        log.close()
        deadline = time.time() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/api/v2/heartbeat", timeout=2).raise_for_status()
                return
            except httpx.HTTPError:
                if self.proc.poll() is not None or time.time() > deadline:
                    self.proc.kill()
                    raise RuntimeError((self.folder / "server.log").read_text()[-2000:]) from None
                time.sleep(0.2)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path)
    yield srv
    srv.close()


def _turns(prefix: str, n: int) -> list[dict]:
    return [
        {
            "role": "user",
            "text": f"{prefix} turn {i}",
            "timestamp": f"2025-01-01T10:{i // 60:02d}:{i % 60:02d}Z",
        }
        for i in range(n)
    ]


FAST = Limits(connect_timeout=2.0, read_timeout=3.0, write_retries=0, retry_backoff=0.05)


async def test_server_down_at_start_is_a_transport_error_at_first_use():
    port = _free_port()  # nothing listens here
    engine = AsyncMemoryEngine(host="127.0.0.1", port=port, embedder=Tiny(), limits=FAST)
    try:
        with pytest.raises(TransportError) as info:
            await asyncio.wait_for(engine.remember(_turns("x", 1), session_id="s"), GUARD)
        assert isinstance(info.value, StoreError)
        assert f"127.0.0.1:{port}" in str(info.value) and "chroma run" in str(info.value)
        assert isinstance(info.value.__cause__, httpx.ConnectError)
        with pytest.raises(TransportError):  # still typed on the next call, not a raw error
            await asyncio.wait_for(engine.search("anything"), GUARD)
        with pytest.raises(TransportError):
            await async_http_client("127.0.0.1", port, FAST)
    finally:
        await engine.aclose()


def test_client_helpers_fail_clearly_and_set_timeouts(server):
    with pytest.raises(TransportError):
        http_client("127.0.0.1", _free_port(), FAST)
    client = http_client("127.0.0.1", server.port, FAST)
    assert client.heartbeat() > 0
    assert client._server._session.timeout.read == FAST.read_timeout  # Chroma's default is None


def test_what_counts_as_a_transport_failure():
    assert is_transport_failure(httpx.ReadError("reset"))
    assert is_transport_failure(
        ValueError("Could not connect to a Chroma server. Are you sure it is running?")
    )
    try:
        try:
            raise httpx.RemoteProtocolError("server disconnected")
        except httpx.HTTPError as e:
            raise RuntimeError("wrapped") from e
    except RuntimeError as outer:
        assert is_transport_failure(outer)
    assert not is_transport_failure(ValueError("Expected metadata value to be a str"))
    assert not is_transport_failure(KeyError("x"))


async def test_server_killed_mid_write_gives_typed_errors_and_a_retry_after_restart_loses_nothing(server):
    engine = AsyncMemoryEngine(host="127.0.0.1", port=server.port, embedder=Tiny(), limits=FAST)
    tenant = f"t{uuid.uuid4().hex[:6]}"
    try:
        first = await engine.remember(_turns("before", 50), session_id="s", tenant_id=tenant)
        batch = _turns("during", 200)
        task = asyncio.create_task(engine.remember(batch, session_id="s", tenant_id=tenant))
        await asyncio.sleep(0)  # the write is under way
        server.kill()
        with pytest.raises(TransportError) as info:
            await asyncio.wait_for(task, GUARD)
        assert info.value.__cause__ is not None  # the transport error is chained
        with pytest.raises(TransportError):  # reads are typed too while the server is gone
            await asyncio.wait_for(engine.get_messages("s", tenant_id=tenant), GUARD)
        server.start()  # same data folder
        again = await asyncio.wait_for(engine.remember(batch, session_id="s", tenant_id=tenant), GUARD)
        texts = [m.text for m in await engine.get_messages("s", tenant_id=tenant)]
        assert texts == [t["text"] for t in _turns("before", 50)] + [t["text"] for t in batch]
        assert len(set(again.active_ids)) == 200 and not set(again.active_ids) & set(first.active_ids)
    finally:
        await engine.aclose()


async def test_sigstopped_server_times_out_with_a_typed_error_and_nothing_is_lost(server):
    engine = AsyncMemoryEngine(host="127.0.0.1", port=server.port, embedder=Tiny(), limits=FAST)
    tenant = f"t{uuid.uuid4().hex[:6]}"
    try:
        await engine.remember(_turns("before", 20), session_id="s", tenant_id=tenant)
        batch = _turns("during", 100)
        server.signal(signal.SIGSTOP)
        with pytest.raises(TransportError) as info:
            await asyncio.wait_for(engine.remember(batch, session_id="s", tenant_id=tenant), GUARD)
        assert isinstance(info.value.__cause__, httpx.TimeoutException)
        server.signal(signal.SIGCONT)
        await asyncio.wait_for(engine.remember(batch, session_id="s", tenant_id=tenant), GUARD)
        texts = [m.text for m in await engine.get_messages("s", tenant_id=tenant)]
        assert texts == [t["text"] for t in _turns("before", 20)] + [t["text"] for t in batch]
    finally:
        await engine.aclose()


def _upserts(route: bytes) -> bool:
    return b"/upsert " in route


async def test_writes_are_retried_after_a_lost_answer_and_written_once(chroma_server):
    host, port = chroma_server
    assert host == "127.0.0.1"  # the proxy forwards to loopback
    proxy = DroppingProxy(("127.0.0.1", port), 2, _upserts)
    limits = Limits(connect_timeout=2.0, read_timeout=10.0, write_retries=3, retry_backoff=0.05)
    engine = AsyncMemoryEngine(host="127.0.0.1", port=proxy.port, embedder=Tiny(), limits=limits)
    tenant = f"t{uuid.uuid4().hex[:6]}"
    try:
        res = await asyncio.wait_for(
            engine.remember(_turns("x", 30), session_id="s", tenant_id=tenant), GUARD
        )
        assert proxy.dropped == 2 and res.created == 30
        assert await engine.count_turns("s", tenant_id=tenant) == 30
    finally:
        await engine.aclose()
        proxy.close()
    no_retry = AsyncMemoryEngine(
        host="127.0.0.1",
        port=(p := DroppingProxy(("127.0.0.1", port), 1, _upserts)).port,
        embedder=Tiny(),
        limits=FAST,
    )
    try:
        with pytest.raises(TransportError):  # without retries the lost answer is the caller's to retry
            await asyncio.wait_for(no_retry.remember(_turns("y", 5), session_id="s", tenant_id=tenant), GUARD)
        again = await asyncio.wait_for(
            no_retry.remember(_turns("y", 5), session_id="s", tenant_id=tenant), GUARD
        )
        assert again.created == 0 and again.duplicates == 5  # the first attempt had committed
    finally:
        await no_retry.aclose()
        p.close()
