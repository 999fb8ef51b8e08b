"""The data layer: paged reads, revisions and tombstones, partitions caught up by what changed.

Every test runs on real Chroma (embedded, or a real ``chroma run``). "Another process" is a
second engine with its own client and its own data layer: nothing it writes reaches the first
engine's partitions except through Chroma. ``test_subprocess_writer_*`` crosses a real
process boundary.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from atomic_batch_worker import HashEmbedder  # the one hashed bag-of-words test embedder

from mem_adapters import AsyncMemoryEngine
from mem_adapters.data import PAGE, RevisionClock
from mem_adapters.data import chroma as chroma_mod
from mem_adapters.data.layer import INLINE_CHANGES, TOMBSTONE_PREFIX, DataLayer


class Recorder:
    """Forwards every call to a real chromadb collection and records (method, kwargs)."""

    def __init__(self, inner: Any, calls: list[tuple[str, dict[str, Any]]]) -> None:
        self._inner = inner
        self._calls = calls

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self._calls.append((name, kwargs))
            return attr(*args, **kwargs)

        return call


async def _record(engine: AsyncMemoryEngine, tenant: str) -> list[tuple[str, dict[str, Any]]]:
    calls: list[tuple[str, dict[str, Any]]] = []
    mem, aux = await engine.collections(tenant)
    mem.inner = Recorder(mem.inner, calls)
    aux.inner = Recorder(aux.inner, calls)
    return calls


def _turns(prefix: str, n: int, day: int = 1) -> list[dict[str, Any]]:
    return [
        {
            "role": "user" if i % 2 == 0 else "assistant",
            "text": f"{prefix} note {i} about topic{i % 7}",
            "timestamp": f"2024-01-{day:02d}T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
        }
        for i in range(n)
    ]


def _gets_are_paged(calls: list[tuple[str, dict[str, Any]]]) -> None:
    for name, kw in calls:
        if name == "get":
            assert kw.get("ids") is not None or (kw.get("limit") is not None and kw["limit"] <= PAGE), kw
            if kw.get("ids") is not None:
                assert len(kw["ids"]) <= PAGE


async def test_user_search_sends_no_filtered_ann_query_and_every_get_is_paged(tmp_path):
    eng = AsyncMemoryEngine(tmp_path / "s", embedder=HashEmbedder())
    try:
        await eng.remember(_turns("alice", 20), session_id="a1", user_id="alice")
        await eng.remember(_turns("bob", 20), session_id="b1", user_id="bob")
        calls = await _record(eng, "default")
        res = await eng.search("topic3 note", user_id="alice", k=5)
        assert res.results and all(r.user_id == "alice" for r in res.results)
        await eng.search("topic3 note", user_id="alice", k=5, filters={"role": "user"})
        await eng.search("topic3 note", user_id="alice", k=5, filters={"metadata.x": 1})
        await eng.list(user_id="alice")
        await eng.get_messages("a1")
        await eng.erase(user_id="bob")
        assert not [c for c in calls if c[0] == "query"], "a user-scoped search never asks Chroma's ANN"
        assert [c for c in calls if c[0] == "get"]
        _gets_are_paged(calls)
    finally:
        await eng.aclose()


async def test_paging_reads_past_one_page(tmp_path, monkeypatch):
    from mem_adapters.data import layer as layer_mod

    monkeypatch.setattr(chroma_mod, "PAGE", 7)
    monkeypatch.setattr(layer_mod, "LOAD_PAGE", 7)
    eng = AsyncMemoryEngine(tmp_path / "s", embedder=HashEmbedder())
    try:
        await eng.remember(_turns("alice", 50), session_id="a1", user_id="alice")
        calls = await _record(eng, "default")
        assert len(await eng.get_messages("a1")) == 50
        assert (await eng.list(user_id="alice", page_size=1000)).count == 50
        assert len(await (await eng.data()).partition("default", "alice")) == 50
        gets = [kw for name, kw in calls if name == "get" and kw.get("ids") is None]
        assert gets and all(kw["limit"] == 7 for kw in gets)
        assert (await eng.erase(user_id="alice")).turns == 50
    finally:
        await eng.aclose()


@pytest.mark.slow
async def test_a_tenant_above_chromas_get_limit_is_searchable_and_erasable(tmp_path):
    """Chroma rejects a single get of more than 32,766 records; every read here is paged."""
    eng = AsyncMemoryEngine(tmp_path / "s", embedder=HashEmbedder())
    try:
        n = 33_000
        for start in range(0, n, 5000):
            turns = _turns(f"bulk{start}", min(5000, n - start))
            await eng.remember(turns, session_id=f"s{start}", user_id="big")
        res = await eng.search("bulk0 note 3 topic3", user_id="big", k=3)
        assert res.results and res.results[0].user_id == "big"
        assert len(await (await eng.data()).partition("default", "big")) == n
        assert (await eng.erase(user_id="big")).turns == n
    finally:
        await eng.aclose()


@contextlib.asynccontextmanager
async def _searcher_and_writer(
    tmp_path, base: int
) -> AsyncIterator[tuple[AsyncMemoryEngine, AsyncMemoryEngine]]:
    """A searcher ``a`` holding user ``u``'s partition of ``base`` turns, and another engine ``b``.

    A short skew window, and a pause past it: the searcher's own recent writes are re-read by
    every catch-up within the window (bounded by the write rate, not by size).
    """
    path = tmp_path / "s"
    a = AsyncMemoryEngine(path, embedder=HashEmbedder())
    b = AsyncMemoryEngine(path, embedder=HashEmbedder())
    try:
        (await a.data()).clock = RevisionClock(skew_s=0.2)
        await a.remember(_turns("base", base), session_id="s0", user_id="u")
        time.sleep(0.3)
        await a.search("note", user_id="u")
        yield a, b
    finally:
        await a.aclose()
        await b.aclose()


async def test_catch_up_reads_only_what_changed(tmp_path):
    async with _searcher_and_writer(tmp_path, 300) as (a, b):
        data = await a.data()
        for k in (1, 5, 20):
            w = await b.remember(_turns(f"new{k}", k, day=2), session_id=f"s{k}", user_id="u")
            before = data.reads
            res = await a.search(f"new{k} note", user_id="u", k=k)
            read = data.reads - before
            assert set(w.active_ids) <= set((await data.partition("default", "u")).row_of)
            # The new records (read whole, or ids + metadata then documents + vectors), plus
            # what this process wrote within the skew window: O(k), never the 300-record partition.
            assert read <= 3 * k + 4, (k, read)
            assert res.results


async def test_a_catch_up_of_few_changes_is_one_read_and_of_many_reads_metadata_first(tmp_path):
    async with _searcher_and_writer(tmp_path, 50) as (a, b):
        data = await a.data()
        await b.remember(_turns("other", 5), session_id="o0", user_id="v")
        time.sleep(0.3)
        await a.search("note", user_id="u")
        calls = await _record(a, "default")
        for n, label in ((3, "few"), (INLINE_CHANGES + 20, "many")):
            calls.clear()
            w = await b.remember(_turns(label, n, day=3), session_id=label, user_id="u")
            await b.remember(_turns(f"{label}-v", 2, day=3), session_id=f"{label}-v", user_id="v")
            time.sleep(0.3)
            await a.search(f"{label} note", user_id="u")
            mem_gets = [kw for name, kw in calls if name == "get" and "rev" in json.dumps(kw.get("where"))]
            by_id = [kw for name, kw in calls if name == "get" and kw.get("ids") is not None]
            part = await data.partition("default", "u")
            assert set(w.active_ids) <= set(part.row_of)
            if label == "few":
                # One read of the memory collection brings the changed records whole.
                assert len(mem_gets) == 2 and not by_id, calls  # the memory and the aux feed
                inline = next(kw for kw in mem_gets if kw["limit"] == min(INLINE_CHANGES, PAGE - 1) + 1)
                assert {"embeddings", "documents"} <= set(inline["include"])
            else:
                # Too many to take whole: metadata first, then only this user's records by id.
                assert by_id and sum(len(kw["ids"]) for kw in by_id) == n
            _gets_are_paged(calls)
        fresh = await DataLayer((await b.data()).store, HashEmbedder.dimension).partition("default", "u")
        assert _fingerprint(part) == _fingerprint(fresh)


class _CountingGets:
    """The real collection, counting its ``get`` calls (a catch-up read is one or more)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.gets = inner, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get(self, *args: Any, **kwargs: Any) -> Any:
        self.gets += 1
        return self.inner.get(*args, **kwargs)


async def test_sole_writer_process_skips_the_catch_up_read_until_something_is_written(tmp_path):
    """Holding the folder's lock, searches read nothing from Chroma while no engine writes."""
    import chromadb

    path = tmp_path / "s"
    a = AsyncMemoryEngine(path, embedder=HashEmbedder())
    b = AsyncMemoryEngine(path, embedder=HashEmbedder())
    c = AsyncMemoryEngine(client=chromadb.PersistentClient(path=str(path)), embedder=HashEmbedder())
    try:
        await a.remember(_turns("quiet", 30), session_id="s", user_id="u")
        await a.search("quiet note", user_id="u")
        mem, aux = await a.collections("default")
        spy_mem, spy_aux = _CountingGets(mem.inner), _CountingGets(aux.inner)
        mem.inner, aux.inner = spy_mem, spy_aux
        for _ in range(5):
            assert (await a.search("quiet note", user_id="u")).results
        assert spy_mem.gets == 0 and spy_aux.gets == 0
        # Another engine of this process writes (through the lock, or an injected client of
        # the same folder): the next search reads what changed and finds it.
        for k, writer in enumerate((b, c)):
            w = await writer.remember(_turns(f"loud{k}", 2, day=3), session_id=f"s{k}", user_id="u")
            res = await a.search(f"loud{k} note", user_id="u", k=5)
            assert set(w.active_ids) <= set((await (await a.data()).partition("default", "u")).row_of)
            assert set(w.active_ids) & {r.id for r in res.results}
            assert spy_mem.gets > 0
            spy_mem.gets = spy_aux.gets = 0
            await a.search("quiet note", user_id="u")
            assert spy_mem.gets == 0 and spy_aux.gets == 0
        deleted = w.active_ids[0]
        await c.delete(deleted)
        await a.search("loud1 note", user_id="u")
        assert deleted not in (await (await a.data()).partition("default", "u")).row_of
    finally:
        await a.aclose()
        await b.aclose()
        await c.aclose()


async def test_deletes_leave_id_only_tombstones_and_reach_other_processes(tmp_path):
    path = tmp_path / "s"
    a = AsyncMemoryEngine(path, embedder=HashEmbedder())
    b = AsyncMemoryEngine(path, embedder=HashEmbedder())
    try:
        w = await a.remember(_turns("gone", 3), session_id="s", user_id="u")
        assert len((await a.search("gone note", user_id="u")).results) == 3
        await b.delete(w.active_ids[1])
        res = await a.search("gone note", user_id="u")
        assert w.active_ids[1] not in {r.id for r in res.results}
        assert w.active_ids[1] not in await (await a.data()).partition("default", "u")
        _, aux = await a.collections("default")
        tomb = await aux.get(ids=[TOMBSTONE_PREFIX + w.active_ids[1]], include=["documents", "metadatas"])
        assert tomb["documents"] == [""] and tomb["metadatas"][0]["target"] == w.active_ids[1]
        assert set(tomb["metadatas"][0]) == {"type", "target", "user_id", "rev"}
        # Old tombstones are swept (a clock two days ahead sees this one as old).
        data = await a.data()
        assert await data.purge_tombstones("default") == 0
        data.clock = RevisionClock(offset_s=2 * 86400)
        assert await data.purge_tombstones("default") == 1
    finally:
        await a.aclose()
        await b.aclose()


def _fingerprint(part) -> dict[str, Any]:
    rows = {i: r for i, r in part.row_of.items()}
    return {
        "ids": sorted(rows),
        "texts": {i: part.texts[r] for i, r in rows.items()},
        "revs": {i: part.revs[r] for i, r in rows.items()},
        "status": {i: part.strings.values[part.status.data[r]] for i, r in rows.items()},
        "expires": {i: float(part.num["expires_at"].data[r]) for i, r in rows.items()},
        "vec": {i: np.round(part.vectors[r], 5).tolist() for i, r in rows.items()},
        "df": dict(sorted(part.df.items())),
        "n_indexed": part.n_indexed,
        "total_len": part.total_len,
    }


@pytest.mark.parametrize("seed", [1, 2])
async def test_partition_equals_a_fresh_load_after_random_interleaved_writes(tmp_path, seed):
    rng = random.Random(seed)
    path = tmp_path / "s"
    a = AsyncMemoryEngine(path, embedder=HashEmbedder())
    b = AsyncMemoryEngine(path, embedder=HashEmbedder())
    try:
        live: list[str] = []
        for step in range(40):
            eng = rng.choice([a, b])
            op = rng.choice(["remember", "remember", "update", "delete", "expire", "add", "status"])
            if op == "remember" or not live:
                w = await eng.remember(
                    _turns(f"p{step}", rng.randint(1, 4)), session_id=f"s{step % 3}", user_id="u"
                )
                live += w.active_ids
            elif op == "update":
                await eng.update(rng.choice(live), text=f"changed at step {step}", metadata={"step": step})
            elif op == "delete":
                victim = live.pop(rng.randrange(len(live)))
                await eng.delete_many([victim])
            elif op == "expire":
                await eng.add(raw_text=f"short lived {step}", user_id="u", expiry_seconds=0.05)
            elif op == "add":
                m = await eng.add(raw_text=f"kept memory {step}", user_id="u", memory_id=f"k{step % 4}")
                if m.record_id not in live:  # stored ids: delete_many/set_status take those
                    live.append(m.record_id)
            else:
                await eng.set_status([rng.choice(live)], rng.choice(["active", "archived"]))
            if step % 5 == 0:
                await a.search("note changed memory", user_id="u")  # a catches up mid-way
        time.sleep(0.1)
        await b.purge_expired("default", force=True)
        await a.search("note", user_id="u")
        held = await (await a.data()).partition("default", "u")
        fresh_layer = DataLayer((await b.data()).store, HashEmbedder.dimension)
        fresh = await fresh_layer.partition("default", "u")
        assert _fingerprint(held) == _fingerprint(fresh)
        q = "note changed kept memory topic3"
        got_a = [(r.id, r.score) for r in (await a.search(q, user_id="u", k=20)).results]
        (await a.data()).drop_all()
        got_fresh = [(r.id, r.score) for r in (await a.search(q, user_id="u", k=20)).results]
        assert got_a == got_fresh
    finally:
        await a.aclose()
        await b.aclose()


async def test_a_small_tenant_s_user_partition_is_read_whole_and_equals_a_filtered_read(
    tmp_path, monkeypatch
):
    """Chroma answers a ``user_id`` filter by listing that user's records across the whole store."""
    from mem_adapters.data import layer as layer_mod

    eng = AsyncMemoryEngine(tmp_path / "s", embedder=HashEmbedder())
    try:
        await eng.remember(_turns("alice", 30), session_id="a1", user_id="alice")
        await eng.remember(_turns("bob", 20), session_id="b1", user_id="bob")
        store = (await eng.data()).store
        calls = await _record(eng, "default")

        def by_user() -> list[dict[str, Any]]:
            gets = [kw for name, kw in calls if name == "get"]
            return [kw for kw in gets if "user_id" in json.dumps(kw.get("where"))]

        whole = await DataLayer(store, HashEmbedder.dimension).partition("default", "alice")
        assert len(whole) == 30 and not by_user()
        monkeypatch.setattr(layer_mod, "WHOLE_READ_MAX", 49)  # the tenant holds 50: filtered now
        filtered = await DataLayer(store, HashEmbedder.dimension).partition("default", "alice")
        assert by_user()
        assert _fingerprint(whole) == _fingerprint(filtered)
        _gets_are_paged(calls)
    finally:
        await eng.aclose()


async def test_eviction_and_reload_give_identical_results(tmp_path):
    eng = AsyncMemoryEngine(tmp_path / "s", embedder=HashEmbedder(), partition_budget_mb=0.01)
    try:
        for u in ("u1", "u2", "u3"):
            await eng.remember(_turns(u, 40), session_id=f"{u}-s", user_id=u)
        first = [(r.id, r.score) for r in (await eng.search("note topic2", user_id="u1", k=8)).results]
        data = await eng.data()
        await eng.search("note topic2", user_id="u2", k=8)
        await eng.search("note topic2", user_id="u3", k=8)
        assert ("default", "u1") not in data.held_partitions()  # evicted under the budget
        again = [(r.id, r.score) for r in (await eng.search("note topic2", user_id="u1", k=8)).results]
        assert again == first
        assert data.held_partitions()[-1] == ("default", "u1")
    finally:
        await eng.aclose()


async def test_a_writer_within_the_skew_window_is_seen_at_once(tmp_path):
    path = tmp_path / "s"
    a = AsyncMemoryEngine(path, embedder=HashEmbedder())
    b = AsyncMemoryEngine(path, embedder=HashEmbedder())
    try:
        await a.remember(_turns("first", 2), session_id="s", user_id="u")
        await a.search("first", user_id="u")
        (await b.data()).clock = RevisionClock(offset_s=-1.5, skew_s=2.0)  # b's clock lags 1.5 s
        w = await b.remember(
            [{"role": "user", "text": "lagging writer says platypus"}], session_id="s", user_id="u"
        )
        res = await a.search("platypus", user_id="u", k=1)
        assert res.results[0].id == w.active_ids[0]
    finally:
        await a.aclose()
        await b.aclose()


def test_clock_offset_hook_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("MEM_ADAPTERS_CLOCK_OFFSET_S", "-3")
    clock = RevisionClock()
    assert abs(clock.now() - (time.time_ns() - 3_000_000_000)) < 1_000_000_000
    clock.observe(clock.now() + 10**10)  # a newer revision seen elsewhere
    assert clock.next() > clock.now() + 10**9  # never stamps below what it has seen


_WRITER = textwrap.dedent(
    """
    import asyncio, json, sys
    sys.path.insert(0, {tests!r})
    from test_data_layer import HashEmbedder
    from mem_adapters import AsyncMemoryEngine

    async def main():
        eng = AsyncMemoryEngine(host={host!r}, port={port}, embedder=HashEmbedder())
        ids = []
        for i in range({k}):
            w = await eng.remember([{{"role": "user", "text": f"subprocess wrote okapi {{i}}"}}],
                                   session_id="sp", user_id="u", tenant_id={tenant!r})
            ids += w.active_ids
        await eng.aclose()
        print(json.dumps(ids))

    asyncio.run(main())
    """
)


@pytest.mark.server
async def test_subprocess_writer_on_a_chroma_server_is_in_the_next_search(chroma_server, tmp_path):
    host, port = chroma_server
    tenant = f"sub{time.time_ns()}"
    eng = AsyncMemoryEngine(host=host, port=port, embedder=HashEmbedder())
    try:
        data = await eng.data()
        data.clock = RevisionClock(skew_s=0.5)
        await eng.remember(_turns("base", 50), session_id="s0", user_id="u", tenant_id=tenant)
        time.sleep(0.6)
        await eng.search("note", user_id="u", tenant_id=tenant)
        k = 6
        code = _WRITER.format(tests=os.path.dirname(__file__), host=host, port=port, k=k, tenant=tenant)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "MEM_ADAPTERS_CLOCK_OFFSET_S": "-0.3"})  # fmt: skip
        assert out.returncode == 0, out.stderr[-2000:]
        ids = json.loads(out.stdout.strip().splitlines()[-1])
        before = data.reads
        res = await eng.search("okapi subprocess", user_id="u", tenant_id=tenant, k=k)
        assert data.reads - before <= 3 * k + 4
        assert set(ids) <= set((await data.partition(tenant, "u")).row_of)
        assert res.results[0].id in ids
    finally:
        await eng.erase(tenant_id=tenant)
        await eng.aclose()


async def test_snapshot_lets_a_new_process_search_without_reading_the_store(tmp_path, monkeypatch):
    from mem_adapters.data import layer as layer_mod

    monkeypatch.setattr(layer_mod, "MIN_RECORDS", 10)
    monkeypatch.setenv("MEM_ADAPTERS_CLOCK_SKEW_S", "0.2")  # recent writes are re-read within it
    path = tmp_path / "s"
    a = AsyncMemoryEngine(path, embedder=HashEmbedder())
    await a.remember(_turns("snap", 120), session_id="s", user_id="u")
    time.sleep(0.3)
    before = [(r.id, r.score) for r in (await a.search("snap note topic4", user_id="u", k=10)).results]
    snap = (await a.data()).snapshots.path("default", "u")
    assert snap.exists()
    await a.aclose()
    # Another process writes after the snapshot; the next one starts from the snapshot and
    # reads only that write.
    b = AsyncMemoryEngine(path, embedder=HashEmbedder())
    w = await b.remember([{"role": "user", "text": "snap note written later"}], session_id="s", user_id="u")
    await b.aclose()
    c = AsyncMemoryEngine(path, embedder=HashEmbedder())
    try:
        data = await c.data()
        res = await c.search("snap note topic4", user_id="u", k=10)
        assert data.reads <= 5, data.reads
        assert w.active_ids[0] in await data.partition("default", "u")
        data.drop_all()  # drops held partitions and snapshots: a full load from Chroma
        assert not snap.exists()
        fresh = await c.search("snap note topic4", user_id="u", k=10)
        assert [(r.id, r.score) for r in res.results] == [(r.id, r.score) for r in fresh.results]
        assert data.reads > 120
        assert before  # the first process's results came from a full load as well
    finally:
        await c.aclose()


async def test_a_new_process_reads_the_snapshot_while_it_opens_the_tenant(tmp_path, monkeypatch):
    # The first search of a new process preloads the user's partition from its snapshot (beside
    # the tenant's opening), in write order already: the same results as a process that had
    # loaded it from Chroma, and a search of an unknown tenant creates nothing.
    import chromadb

    from mem_adapters.data import layer as layer_mod

    monkeypatch.setattr(layer_mod, "MIN_RECORDS", 10)
    monkeypatch.setenv("MEM_ADAPTERS_CLOCK_SKEW_S", "0.2")  # recent writes are re-read within it
    path = tmp_path / "s"
    a = AsyncMemoryEngine(path, embedder=HashEmbedder())
    await a.remember(_turns("pre", 90), session_id="s1", user_id="u")
    await a.remember(_turns("pre", 30, day=2), session_id="s2", user_id="u")
    time.sleep(0.3)
    loaded = [(r.id, r.score) for r in (await a.search("pre note topic3", user_id="u", k=10)).results]
    await a.aclose()
    b = AsyncMemoryEngine(path, embedder=HashEmbedder())
    try:
        data = await b.data()
        part = data.snapshots.load("default", "u", embedder=data.store.embedder_identity)[0]
        assert not part._order_dirty  # sorted when written, not by each reader
        res = await b.search("pre note topic3", user_id="u", k=10)
        assert [(r.id, r.score) for r in res.results] == loaded
        assert data.reads <= 5, data.reads  # from the snapshot, caught up by revision
        assert not (await b.search("pre note", user_id="u", tenant_id="nobody")).results
    finally:
        await b.aclose()
    names = [c.name for c in chromadb.PersistentClient(path=str(path)).list_collections()]
    assert len(names) == 2, names  # the default tenant's pair only


async def test_damaged_or_foreign_snapshots_are_ignored_and_erase_deletes_them(tmp_path, monkeypatch):
    from mem_adapters.data import layer as layer_mod

    monkeypatch.setattr(layer_mod, "MIN_RECORDS", 10)
    path = tmp_path / "s"
    a = AsyncMemoryEngine(path, embedder=HashEmbedder())
    await a.remember(_turns("dmg", 60), session_id="s", user_id="u")
    await a.search("dmg note", user_id="u")
    snap = (await a.data()).snapshots.path("default", "u")
    await a.aclose()
    blob = bytearray(snap.read_bytes())
    blob[-10] ^= 0xFF  # one flipped byte: the checksum no longer holds
    snap.write_bytes(bytes(blob))
    b = AsyncMemoryEngine(path, embedder=HashEmbedder())
    try:
        res = await b.search("dmg note", user_id="u", k=5)
        assert res.results
        assert (await b.data()).reads >= 60  # loaded from Chroma, not from the damaged file
        assert snap.exists()  # rewritten whole
        assert (await b.erase(user_id="u")).turns == 60
        assert not snap.exists()
        assert not (await b.search("dmg note", user_id="u")).results
    finally:
        await b.aclose()


async def test_snapshot_of_an_older_partition_layout_is_ignored(tmp_path, monkeypatch):
    """A snapshot pickled when Partition had other fields (same FORMAT) is stale, not loaded."""
    import json

    from mem_adapters.data import layer as layer_mod
    from mem_adapters.data import snapshots as snap_mod

    monkeypatch.setattr(layer_mod, "MIN_RECORDS", 10)
    path = tmp_path / "s"
    a = AsyncMemoryEngine(path, embedder=HashEmbedder())
    await a.remember(_turns("lay", 40), session_id="s", user_id="u")
    await a.search("lay note", user_id="u")
    snap = (await a.data()).snapshots.path("default", "u")
    await a.aclose()
    header, payload = snap.read_bytes().split(b"\n", 1)
    fields = json.loads(header)
    assert fields["layout"] == snap_mod.LAYOUT
    fields["layout"] = "a-release-with-other-partition-fields"
    snap.write_bytes(json.dumps(fields).encode() + b"\n" + payload)
    b = AsyncMemoryEngine(path, embedder=HashEmbedder())
    try:
        res = await b.search("lay note", user_id="u", k=5)
        assert res.results
        assert (await b.data()).reads >= 40  # loaded from Chroma, not from the stale file
    finally:
        await b.aclose()


async def test_idle_tenants_handles_are_let_go_and_reopen_on_use(tmp_path, monkeypatch):
    monkeypatch.setattr(chroma_mod, "MAX_OPEN_TENANTS", 3)
    eng = AsyncMemoryEngine(tmp_path / "s", embedder=HashEmbedder())
    try:
        for t in range(8):
            await eng.remember(_turns(f"tenant{t}", 3), session_id="s", user_id="u", tenant_id=f"t{t}")
        store = await eng.store()
        assert len(store._cache) == 3 and list(store._cache) == ["t5", "t6", "t7"]
        res = await eng.search("tenant0 note", user_id="u", tenant_id="t0", k=3)
        assert res.results and all(r.tenant_id == "t0" for r in res.results)
        assert list(store._cache)[-1] == "t0" and len(store._cache) == 3
        assert (await eng.search("tenant1 note", tenant_id="missing")).results == []
        assert "missing" not in store._cache and "missing" not in await eng.tenants()
    finally:
        await eng.aclose()


async def test_hits_built_from_the_partition_equal_what_get_returns(tmp_path, embedder):
    from mem_adapters.enrichment import Enricher

    eng = AsyncMemoryEngine(tmp_path / "s", embedder=embedder, enricher=Enricher(backoff=0.01))
    try:
        w = await eng.remember(
            [
                {"role": "Ana", "text": "I moved to Berlin.", "metadata": {"topic": "move", "n": 2}},
                {"role": "Ben", "text": "I work as a nurse in Lisbon.", "timestamp": "2024-03-01T10:00:00Z",
                 "observations": [{"text": "Ben is a nurse", "metadata": {"src": "obs"}}]},
            ],
            session_id="s", user_id="u", agent_id="a", sub_session_id="ss", metadata={"app": "x"},
        )  # fmt: skip
        await eng.wait(w.passive_job_id, timeout=60)
        long_text = " ".join(f"Sentence {i} about the garden and the harbour." for i in range(40))
        await eng.add(raw_text=long_text, user_id="u", memory_id="garden", expiry_seconds=3600)
        await eng.update(w.active_ids[0], metadata={"topic": "moved"})
        res = await eng.search("Berlin nurse garden harbour", user_id="u", k=30, mode="context")
        kinds = {h.kind for h in res.results}
        assert {"turn", "chunk", "fact"} <= kinds
        for hit in res.results:
            stored = await eng.get(hit.id)
            assert hit.model_dump(exclude={"score", "score_parts"}) == stored.model_dump(
                exclude={"score", "score_parts"}
            ), hit.id
    finally:
        await eng.aclose()


@pytest.mark.server
async def test_paging_on_a_chroma_server_tenant(chroma_server, monkeypatch):
    """The same paged reads against a real ``chroma run`` (a small page stands in for 100k)."""
    from mem_adapters.data import layer as layer_mod

    monkeypatch.setattr(chroma_mod, "PAGE", 9)
    monkeypatch.setattr(layer_mod, "LOAD_PAGE", 9)
    host, port = chroma_server
    tenant = f"paged{time.time_ns()}"
    eng = AsyncMemoryEngine(host=host, port=port, embedder=HashEmbedder())
    try:
        await eng.remember(_turns("srv", 60), session_id="s", user_id="u", tenant_id=tenant)
        calls = await _record(eng, tenant)
        res = await eng.search("srv note topic2", user_id="u", tenant_id=tenant, k=5)
        assert res.results and all(r.tenant_id == tenant for r in res.results)
        assert len(await eng.get_messages("s", tenant_id=tenant)) == 60
        assert len(await (await eng.data()).partition(tenant, "u")) == 60
        assert not [c for c in calls if c[0] == "query"]
        gets = [kw for name, kw in calls if name == "get" and kw.get("ids") is None]
        assert gets and all(kw["limit"] <= 9 for kw in gets)
    finally:
        await eng.erase(tenant_id=tenant)
        await eng.aclose()


class _GatedEmbedder(HashEmbedder):
    """Holds a query embedding until told, so a write can land while a search waits for it."""

    def __init__(self) -> None:
        self.hold = False
        self.waiting = threading.Event()
        self.gate = threading.Event()

    def embed_query(self, text: str) -> list[float]:
        if self.hold:
            self.waiting.set()
            assert self.gate.wait(30)
        return super().embed_query(text)


async def test_a_write_landing_while_a_search_embeds_its_query_stays_out_of_that_search(tmp_path):
    """The write appends rows to the partition the search holds; the search must not trip on them."""
    emb = _GatedEmbedder()
    eng = AsyncMemoryEngine(tmp_path / "s", embedder=emb)
    try:
        await eng.remember(_turns("alice", 6), session_id="a1", user_id="alice")
        await eng.search("alice note", user_id="alice")  # the partition is held from here on
        emb.hold = True
        searching = asyncio.create_task(eng.search("alice note topic3", user_id="alice", k=10))
        assert await asyncio.to_thread(emb.waiting.wait, 30)
        emb.hold = False
        await eng.remember(_turns("later", 3), session_id="a1", user_id="alice")
        emb.gate.set()
        res = await searching
        assert res.results and not [r for r in res.results if r.text.startswith("later")]
        again = await eng.search("later note", user_id="alice", k=10)
        assert [r for r in again.results if r.text.startswith("later")]
    finally:
        emb.gate.set()
        await eng.aclose()
