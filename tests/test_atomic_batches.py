"""Batches above Chroma's max batch are atomic: staged invisibly, then committed or rolled back.

Real Chroma throughout (embedded, or a real ``chroma run``); crashes are real SIGKILLs of a
writer process (``tests/atomic_batch_worker.py``) through the documented test hooks of
:mod:`mem_adapters.data.txn`. The fast tests make the store split writes into calls of 100
records (``--max-batch`` / ``ChromaStore._max_batch``), so a few hundred turns take the same
multi-call path a 12,000-turn batch takes with Chroma's own limit (5,461); the ``slow`` ones
use Chroma's own limit.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import chromadb
import pytest
from atomic_batch_worker import HashEmbedder, turns

from mem_adapters import AsyncMemoryEngine
from mem_adapters.data import collection_names
from mem_adapters.data import txn as txn_mod
from mem_adapters.errors import LimitExceededError

HERE = Path(__file__).resolve().parent
WORKER = HERE / "atomic_batch_worker.py"
SMALL = 100  # records per Chroma call in the fast tests


def _worker(*args: str, env: dict[str, str] | None = None, wait: bool = True) -> Any:
    cmd = [sys.executable, str(WORKER), *args]
    full_env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", **(env or {})}
    if not wait:
        return subprocess.Popen(cmd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=900)


async def _engine(path: Path | None = None, *, host: str | None = None, port: int = 0,
                  max_batch: int | None = None) -> AsyncMemoryEngine:  # fmt: skip
    if host is not None:
        eng = AsyncMemoryEngine(host=host, port=port, embedder=HashEmbedder())
    else:
        eng = AsyncMemoryEngine(path, embedder=HashEmbedder())
    store = await eng.store()
    if max_batch is not None:
        store._max_batch = max_batch  # before any collection is opened: every write uses it
    return eng


def _raw_collection(path: Path, tenant: str = "default") -> Any:
    """The tenant's memory collection read with chromadb itself (no engine, no filtering)."""
    client = chromadb.PersistentClient(path=str(path))
    return client.get_collection(collection_names(tenant)[0])


def _staged(col: Any) -> int:
    return len(col.get(where={txn_mod.TXN_FIELD: {"$gt": 0}}, include=[], limit=100_000)["ids"])


async def _raw_counts(eng: AsyncMemoryEngine, tenant: str = "default") -> tuple[int, int]:
    """(records Chroma holds, of which staged) in a tenant's memory collection, unfiltered."""
    pair = await eng.collections(tenant, create=False)
    if pair is None:
        return 0, 0
    raw = pair[0].raw
    staged = await raw.get_all(where={txn_mod.TXN_FIELD: {"$gt": 0}}, include=[])
    return await raw.count(), len(staged["ids"])


def _bulk_texts(items: Any) -> list[str]:
    return [i.text for i in items if i.text.startswith("bulk ")]


# --- a committed batch ----------------------------------------------------------------------


async def test_a_committed_batch_reads_back_complete(tmp_path):
    eng = await _engine(tmp_path / "s", max_batch=SMALL)
    try:
        n = 350  # four Chroma calls
        res = await eng.remember(turns(n), session_id="bulk", user_id="u1")
        assert (res.created, res.duplicates) == (n, 0)
        got = await eng.get_messages("bulk")
        assert [t.text for t in got] == [t["text"] for t in turns(n)]  # all, in write order
        assert all(txn_mod.TXN_FIELD not in t.metadata and txn_mod.BATCH_FIELD not in t.metadata for t in got)
        assert len(await (await eng.data()).partition("default", "u1")) == n
        hits = await eng.search("bulk line 123 about topic2", user_id="u1", k=3)
        assert "bulk line 123 about topic2" in [h.text for h in hits.results]
        assert await _raw_counts(eng) == (n, 0)  # finalized: nothing left staged
        _, aux = await eng.collections("default")
        markers = await aux.get_all(where={"type": txn_mod.MARKER_TYPE}, include=["metadatas"])
        assert [m["n"] for m in markers["metadatas"]] == [n]  # one commit marker
        again = await eng.remember(turns(n), session_id="bulk", user_id="u1")
        assert (again.created, again.duplicates) == (0, n)
    finally:
        await eng.aclose()


async def test_a_batch_within_one_call_takes_no_transaction(tmp_path):
    eng = await _engine(tmp_path / "s", max_batch=SMALL)
    try:
        await eng.remember(turns(SMALL), session_id="bulk", user_id="u1")
        _, aux = await eng.collections("default")
        markers = await aux.get_all(where={"type": txn_mod.MARKER_TYPE}, include=[])
        assert markers["ids"] == []
        assert len(await eng.get_messages("bulk")) == SMALL
    finally:
        await eng.aclose()


# --- crashes --------------------------------------------------------------------------------


def test_a_kill_after_the_first_chunk_leaves_nothing_visible_and_is_rolled_back(tmp_path, monkeypatch):
    path = tmp_path / "s"
    n = 450
    proc = _worker("--path", str(path), "--n", str(n), "--max-batch", str(SMALL),
                   env={txn_mod.FAIL_ENV: "1"})  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert _staged(_raw_collection(path)) == SMALL  # the kill landed after chunk 1 was written

    async def check() -> None:
        # Within the grace: the leftovers stay on disk, invisible to every read.
        eng = await _engine(path, max_batch=SMALL)
        try:
            assert await eng.get_messages("bulk") == []
            assert (await eng.list(user_id="u1")).count == 0
            hits = await eng.search("bulk line 3 about topic3", user_id="u1", k=5)
            assert _bulk_texts(hits.results) == []
            assert await _raw_counts(eng) == (SMALL, SMALL)
        finally:
            await eng.aclose()

    asyncio.run(check())
    monkeypatch.setenv(txn_mod.GRACE_ENV, "0")  # past the grace: the next open rolls them back

    async def reopen() -> None:
        eng = await _engine(path, max_batch=SMALL)
        try:
            assert await _raw_counts(eng) == (0, 0)
            # A grace of 0 would also make this writer give up at once (half the grace).
            (await eng.store()).txn_grace_s = txn_mod.DEFAULT_GRACE_S
            res = await eng.remember(turns(n), session_id="bulk", user_id="u1")
            assert (res.created, res.duplicates) == (n, 0)
            assert len(await eng.get_messages("bulk")) == n
            assert await _raw_counts(eng) == (n, 0)
        finally:
            await eng.aclose()

    asyncio.run(reopen())


def test_a_kill_after_the_commit_is_complete_and_finalized_at_open(tmp_path):
    path = tmp_path / "s"
    n = 250
    proc = _worker("--path", str(path), "--n", str(n), "--max-batch", str(SMALL),
                   env={txn_mod.FAIL_ENV: "commit"})  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert _staged(_raw_collection(path)) == n  # committed, not yet stripped

    async def check() -> None:
        eng = await _engine(path, max_batch=SMALL)  # default grace: committed ones are finished anyway
        try:
            assert await _raw_counts(eng) == (n, 0)
            assert len(await eng.get_messages("bulk")) == n
            res = await eng.remember(turns(n), session_id="bulk", user_id="u1")
            assert (res.created, res.duplicates) == (0, n)
        finally:
            await eng.aclose()

    asyncio.run(check())


async def test_a_resent_turn_replaces_a_crashed_staged_copy(tmp_path):
    """A small re-send overwrites a leftover staged record: it must not stay hidden."""
    eng = await _engine(tmp_path / "s", max_batch=SMALL)
    try:
        await eng.remember(turns(20), session_id="bulk", user_id="u1")
        mem, _ = await eng.collections("default")
        got = await mem.raw.get_all(include=["documents", "metadatas", "embeddings"])
        # The state a writer killed mid-staging leaves: the same records, marked staged, no marker.
        metas = [{**m, txn_mod.TXN_FIELD: 77, txn_mod.BATCH_FIELD: 77} for m in got["metadatas"]]
        vectors = [list(map(float, v)) for v in got["embeddings"]]
        await mem.raw.upsert(list(got["ids"]), vectors, list(got["documents"]), metas)
        await eng.aclose()
        eng = await _engine(tmp_path / "s", max_batch=SMALL)
        assert await eng.get_messages("bulk") == []
        assert len(await eng.get_many(list(got["ids"]))) == 0
        res = await eng.remember(turns(20), session_id="bulk", user_id="u1")
        assert (res.created, res.duplicates) == (20, 0)  # "not stored": written again
        assert len(await eng.get_messages("bulk")) == 20
        assert await _raw_counts(eng) == (20, 0)
    finally:
        await eng.aclose()


async def test_committed_markers_are_looked_up_once(tmp_path, monkeypatch):
    async def no_strip(mem: Any, txn: int) -> int:
        return 0

    monkeypatch.setattr(txn_mod, "finalize", no_strip)  # records keep their staging mark
    eng = await _engine(tmp_path / "s", max_batch=SMALL)
    await eng.remember(turns(300), session_id="bulk", user_id="u1")
    assert (await _raw_counts(eng))[1] == 300
    await eng.aclose()
    eng = await _engine(tmp_path / "s", max_batch=SMALL)  # a fresh store: nothing cached
    try:
        mem, _ = await eng.collections("default")
        assert mem.txns is not None
        for _ in range(3):
            assert len(await eng.get_messages("bulk")) == 300
            assert len(await eng.get_many([t.id for t in (await eng.get_messages("bulk"))[:5]])) == 5
        assert mem.txns.lookups == 1  # the open's sweep asked once; every read after used the cache
    finally:
        await eng.aclose()


# --- another process reads while a batch is written -----------------------------------------


async def _step(folder: Path, step: str, proc: subprocess.Popen[bytes]) -> None:
    """Wait until the writer reached ``step`` (it then waits for our ``<step>.go``)."""
    deadline = time.monotonic() + 600
    while not (folder / step).exists():
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        assert time.monotonic() < deadline, f"writer never reached {step}"
        await asyncio.sleep(0.1)


@pytest.mark.server
async def test_a_reader_on_a_server_never_sees_part_of_a_batch(chroma_server, tmp_path, monkeypatch):
    host, port = chroma_server
    tenant = f"atomic{time.time_ns()}"
    n, chunks = 450, 5
    # No look-back window: the staged records' revisions fall below the reader's horizon
    # before the commit, so only the commit marker in the change feed can bring them in.
    monkeypatch.setenv("MEM_ADAPTERS_CLOCK_SKEW_S", "0")
    reader = await _engine(host=host, port=port)
    steps = tmp_path / "steps"
    steps.mkdir()
    proc = None
    try:
        await reader.remember(turns(2, "own"), session_id="own", user_id="u1", tenant_id=tenant)
        await reader.search("own line", user_id="u1", tenant_id=tenant)  # partitions held from here
        await reader.search("own line", tenant_id=tenant)
        data = await reader.data()
        proc = _worker("--host", host, "--port", str(port), "--n", str(n), "--tenant", tenant,
                       "--max-batch", str(SMALL), env={txn_mod.STEP_DIR_ENV: str(steps)},
                       wait=False)  # fmt: skip

        async def visible() -> set[int]:
            """How many of the batch each read path shows (each must be 0 or n)."""
            seen = {
                len(await reader.get_messages("bulk", tenant_id=tenant)),
                (await reader.list(tenant_id=tenant, session_id="bulk", page_size=1000)).count,
                len(await data.partition(tenant, "u1")) - 2,
                len(await data.partition(tenant, None)) - 2,
            }
            ends = ["bulk line 0 about topic0", f"bulk line {n - 1} about topic{(n - 1) % 11}"]
            for user in ("u1", None):  # searched for by their text: the first and last turn, or neither
                found = 0
                for e in ends:
                    hits = await reader.search(e, user_id=user, tenant_id=tenant, k=5)
                    found += e in [h.text for h in hits.results]
                seen.add({0: 0, 2: n}.get(found, -1))
            fresh = await _engine(host=host, port=port)  # another reader, loading from scratch
            try:
                seen.add(len(await fresh.get_messages("bulk", tenant_id=tenant)))
                seen.add(len(await (await fresh.data()).partition(tenant, "u1")) - 2)
            finally:
                await fresh.aclose()
            return seen

        for k in range(1, chunks + 1):
            await _step(steps, f"staged-{k}", proc)
            assert await visible() == {0}, f"after chunk {k} of {chunks}"
            (steps / f"staged-{k}.go").touch()
        await _step(steps, "committed", proc)
        assert await visible() == {n}  # committed, not yet stripped: all of it, at once
        (steps / "committed.go").touch()
        await _step(steps, "finalized", proc)
        (steps / "finalized.go").touch()
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]
        assert json.loads(out.decode().strip().splitlines()[-1])["created"] == n
        assert await visible() == {n}
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        await reader.erase(tenant_id=tenant)
        await reader.aclose()


# --- the documented size --------------------------------------------------------------------


async def test_more_than_max_batch_turns_is_refused_before_any_write(tmp_path):
    eng = await _engine(tmp_path / "s")
    try:
        with pytest.raises(LimitExceededError):
            await eng.remember(turns(eng.limits.max_batch_turns + 1), session_id="bulk", user_id="u1")
        assert await eng.collections("default", create=False) is None  # nothing written, not even the tenant
    finally:
        await eng.aclose()


@pytest.mark.slow
def test_real_size_kill_after_the_first_chunk_then_resend_writes_all_once(tmp_path):
    """12,000 turns, Chroma's own max batch (5,461): SIGKILL after the first call."""
    path = tmp_path / "s"
    n = 12_000
    proc = _worker("--path", str(path), "--n", str(n), env={txn_mod.FAIL_ENV: "1"})
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    col = _raw_collection(path)
    first = col.count()
    assert first == _staged(col) and 0 < first < n  # exactly the first call's records, all staged
    del col

    async def resend() -> None:
        eng = await _engine(path)
        try:
            assert await eng.get_messages("bulk", limit=10) == []
            res = await eng.remember(turns(n), session_id="bulk", user_id="u1")
            assert (res.created, res.duplicates) == (n, 0)  # the leftovers counted as not stored
            assert await _raw_counts(eng) == (n, 0)  # each once, none staged
            assert len(await (await eng.data()).partition("default", "u1")) == n
        finally:
            await eng.aclose()

    asyncio.run(resend())


@pytest.mark.slow
async def test_the_documented_batch_size_is_accepted_and_atomic(tmp_path):
    eng = await _engine(tmp_path / "s")
    try:
        n = eng.limits.max_batch_turns
        assert n >= 50_000
        res = await eng.remember(turns(n), session_id="bulk", user_id="u1")
        assert res.created == n
        assert await _raw_counts(eng) == (n, 0)
        _, aux = await eng.collections("default")
        markers = await aux.get_all(where={"type": txn_mod.MARKER_TYPE}, include=["metadatas"])
        assert [m["n"] for m in markers["metadatas"]] == [n]
    finally:
        await eng.aclose()
