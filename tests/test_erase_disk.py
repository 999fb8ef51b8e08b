"""Erase leaves nothing on disk (issue #11): raw bytes of every file, Chroma's FTS5 index, folders.

The embedded store is real (``PersistentClient``, enrichment on); after an erase every file
under the persist folder is read as bytes and searched for a random marker and for the float32
bytes of erased vectors (read from Chroma before the erase, as given and as unit vectors), and a
*copy* of ``chroma.sqlite3`` is asked through ``fts5vocab`` whether the trigram index still
holds the marker's trigrams. Each check is first shown to find the residue before the erase.
A two-process test on a real ``chroma run`` shows an erase reaching another process's cache.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
import string
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from mem_adapters import MemoryEngine
from mem_adapters.data import collection_names
from mem_adapters.data.chroma import REBUILD_SUFFIX
from mem_adapters.errors import NotFoundError

_ALPHABET = string.ascii_letters + string.digits


def _marker() -> str:
    """24 random ASCII letters/digits (their trigrams are, in practice, found nowhere else)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(24))


def _grep(root: Path, needles: list[bytes]) -> dict[str, int]:
    hits: dict[str, int] = {}
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            n = sum(data.count(x) for x in needles)
            if n:
                hits[str(path.relative_to(root))] = n
    return hits


def _trigrams(text: str) -> set[str]:
    t = text.lower()  # the trigram tokenizer folds case
    return {t[i : i + 3] for i in range(len(t) - 2)}


def _fts_terms(store: Path, tmp: Path) -> tuple[set[str], set[str]]:
    """(terms of the FTS5 index, trigrams of the documents it indexes), read from a copy."""
    copy = tmp / f"copy-{time.time_ns()}.sqlite3"
    shutil.copy(store / "chroma.sqlite3", copy)
    db = sqlite3.connect(copy)
    try:
        db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(embedding_fulltext_search, 'row')")
        terms = {r[0] for r in db.execute("SELECT term FROM v")}
        docs = set()
        for (text,) in db.execute("SELECT c0 FROM embedding_fulltext_search_content"):
            docs |= _trigrams(text or "")
        return terms, docs
    finally:
        db.close()
        copy.unlink()


def _segments(store: Path) -> list[tuple[str, str, str]]:
    """(segment id, collection name, scope) of every live segment: the folders Chroma still uses."""
    db = sqlite3.connect(store / "chroma.sqlite3")
    try:
        sql = "SELECT s.id, c.name, s.scope FROM segments s JOIN collections c ON s.collection = c.id"
        return list(db.execute(sql))
    finally:
        db.close()


def _vector_needles(vectors: list[np.ndarray]) -> list[bytes]:
    out = []
    for v in vectors:
        v = np.asarray(v, dtype=np.float32)
        out.append(v[:16].tobytes())
        out.append((v / np.linalg.norm(v)).astype(np.float32)[:16].tobytes())
    return out


def _records(engine: MemoryEngine, tenant: str, user: str | None) -> dict:
    async def read():
        pair = await engine.aengine.collections(tenant, create=False)
        if pair is None:
            return {"ids": [], "embeddings": [], "documents": []}
        where = {"user_id": user} if user else None
        return await pair[0].get_all(where=where, include=["documents", "embeddings"])

    return engine.run(read())


def _fill(engine: MemoryEngine, marker: str, tenant: str = "default") -> None:
    """Alice (the marker in turns, a raw memory and its history) and Bob, enriched."""
    engine.remember(
        [
            {"role": "user", "text": f"My locker code is {marker} and I live in Porto."},
            {"role": "assistant", "text": "Noted, your locker code is safe with me."},
            {"role": "user", "text": f"I work at the {marker} lab on Tuesdays."},
        ],
        session_id="a1",
        user_id="alice",
        tenant_id=tenant,
    )
    engine.add(
        raw_text=f"Alice keeps {marker} in her notes.", user_id="alice", memory_id="note", tenant_id=tenant
    )
    engine.update("note", text=f"Alice keeps {marker} in her diary.", tenant_id=tenant)
    engine.remember(
        [{"role": "user", "text": "Bob likes espresso with his breakfast."}],
        session_id="b1",
        user_id="bob",
        tenant_id=tenant,
    )
    engine.wait_all(timeout=300)


@pytest.fixture
def store(tmp_path, embedder):
    path = tmp_path / "store"
    eng = MemoryEngine(path, embedder=embedder, enricher="default")
    yield path, eng
    if not eng.closed:
        eng.close()


def _residue_before(path: Path, tmp: Path, marker: str, vectors: list[np.ndarray]) -> set[str]:
    """The checks find the marker, the vectors and the trigrams before any erase (they can fail)."""
    assert _grep(path, [marker.encode()]), "the marker is stored"
    # The vectors may still be only in memory (Chroma writes HNSW files in batches and purges
    # its log): not asserted before, but grepped after every erase.
    terms, _ = _fts_terms(path, tmp)
    own = _trigrams(marker)
    assert own & terms, "the FTS5 index holds the marker's trigrams"
    return own


def _no_residue(path: Path, tmp: Path, marker: str, vectors: list[np.ndarray]) -> None:
    assert _grep(path, [marker.encode()]) == {}
    hits = _grep(path, _vector_needles(vectors))
    assert hits == {}, (hits, _segments(path))
    terms, survivors = _fts_terms(path, tmp)
    # A trigram some surviving document holds is that document's, not residue.
    assert (_trigrams(marker) - survivors) & terms == set()
    assert not [p for p in path.iterdir() if p.name.startswith("chroma.sqlite3-")]


def test_user_erase_leaves_no_byte_of_the_user(store, tmp_path, embedder):
    path, eng = store
    marker = _marker()
    _fill(eng, marker)
    alice = _records(eng, "default", "alice")
    bob_before = _records(eng, "default", "bob")
    assert any(marker in d for d in alice["documents"])
    vectors = [alice["embeddings"][i] for i, d in enumerate(alice["documents"]) if marker in d][:3]
    own = _residue_before(path, tmp_path, marker, vectors)
    assert len(own) >= 20

    receipt = eng.erase(user_id="alice")
    assert receipt.turns == 3 and receipt.memories == 1 and receipt.history >= 1
    assert receipt.verified_on_disk is True, receipt.residue_checks
    assert any(c.startswith("grep:") and c.endswith(": 0 hits") for c in receipt.residue_checks)
    _no_residue(path, tmp_path, marker, vectors)

    # Bob is whole and searchable; Alice is nowhere.
    bob_after = _records(eng, "default", "bob")
    assert sorted(bob_after["ids"]) == sorted(bob_before["ids"])
    assert "espresso" in eng.search("what does Bob drink?", user_id="bob").results[0].text
    assert eng.search(marker, user_id="alice").results == []
    assert all(marker not in h.text for h in eng.search(marker).results)
    with pytest.raises(NotFoundError):
        eng.history("note")

    # Reopen, write more: still nothing comes back (no cache flushes erased vectors later).
    eng.close()
    eng2 = MemoryEngine(path, embedder=embedder, enricher="default")
    try:
        eng2.remember([{"role": "user", "text": f"Bob again, turn {i}."} for i in range(30)],
                      session_id="b2", user_id="bob")  # fmt: skip
        eng2.wait_all(timeout=300)
        assert "espresso" in eng2.search("espresso", user_id="bob").results[0].text
    finally:
        eng2.close()
    _no_residue(path, tmp_path, marker, vectors)


def test_tenant_erase_leaves_no_byte_and_no_folder(store, tmp_path, embedder):
    path, eng = store
    marker = _marker()
    _fill(eng, marker, tenant="acme")
    _fill(eng, "keepsake-" + _marker(), tenant="other")
    recs = _records(eng, "acme", None)
    vectors = [recs["embeddings"][i] for i, d in enumerate(recs["documents"]) if marker in d][:3]
    _residue_before(path, tmp_path, marker, vectors)
    before_dirs = {p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")}
    other_ids = sorted(_records(eng, "other", None)["ids"])

    receipt = eng.erase(tenant_id="acme")
    assert receipt.turns == 4 and receipt.verified_on_disk is True, receipt.residue_checks[-3:]
    _no_residue(path, tmp_path, marker, vectors)
    after_dirs = {p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")}
    assert after_dirs < before_dirs  # the tenant's segment folders went, nothing new appeared
    assert "acme" not in eng.tenants()
    assert sorted(_records(eng, "other", None)["ids"]) == other_ids
    assert "espresso" in eng.search("espresso", user_id="bob", tenant_id="other").results[0].text

    eng.close()
    eng2 = MemoryEngine(path, embedder=embedder)
    try:
        eng2.remember(
            [{"role": "user", "text": "A new acme turn."}], session_id="n", user_id="u", tenant_id="acme"
        )
        assert len(eng2.get_messages("n", tenant_id="acme")) == 1
    finally:
        eng2.close()
    _no_residue(path, tmp_path, marker, vectors)


def test_a_rebuild_killed_after_the_drop_is_finished_at_open(store, embedder):
    """The state a kill between dropping the old collection and renaming its copy leaves."""
    path, eng = store
    _fill(eng, _marker())
    ids = sorted(_records(eng, "default", None)["ids"])
    mem_name, aux_name = collection_names("default")

    async def crash_state():
        st = await eng.aengine.store()
        for name in (mem_name, aux_name):
            src = await st.get_raw(name)
            copy = await st.create_raw(name + REBUILD_SUFFIX, src.metadata)
            got = await src.get_all(include=["documents", "metadatas", "embeddings"])
            vectors = [list(map(float, v)) for v in got["embeddings"]]
            await copy.upsert(list(got["ids"]), vectors, list(got["documents"]), list(got["metadatas"]))
            await st.delete_raw(name)  # killed here: only the copy holds the tenant

    eng.run(crash_state())
    eng.close()
    eng2 = MemoryEngine(path, embedder=embedder)
    try:
        assert sorted(_records(eng2, "default", None)["ids"]) == ids
        assert "espresso" in eng2.search("espresso", user_id="bob").results[0].text
        assert [h.event for h in eng2.history("note")] == ["ADD", "UPDATE"]
    finally:
        eng2.close()


def test_a_rebuild_killed_before_the_drop_is_redone_by_a_rerun(store, tmp_path, embedder):
    """A partial copy left beside the whole collection: the rerun of the erase drops it and finishes."""
    path, eng = store
    marker = _marker()
    _fill(eng, marker)
    mem_name, _ = collection_names("default")

    async def partial_copy():
        st = await eng.aengine.store()
        src = await st.get_raw(mem_name)
        copy = await st.create_raw(mem_name + REBUILD_SUFFIX, src.metadata)
        got = await src.get(limit=2, include=["documents", "metadatas", "embeddings"])
        vectors = [list(map(float, v)) for v in got["embeddings"]]
        await copy.upsert(list(got["ids"]), vectors, list(got["documents"]), list(got["metadatas"]))

    eng.run(partial_copy())
    bob = sorted(_records(eng, "default", "bob")["ids"])
    receipt = eng.erase(user_id="alice")
    assert receipt.verified_on_disk is True, receipt.residue_checks
    assert sorted(_records(eng, "default", "bob")["ids"]) == bob
    names = eng.run(_names(eng))
    assert mem_name + REBUILD_SUFFIX not in names
    assert eng.erase(user_id="alice").turns == 0  # a rerun is harmless
    assert _grep(path, [marker.encode()]) == {}


async def _names(eng: MemoryEngine) -> list[str]:
    return await (await eng.aengine.store()).list_collection_names()


def test_expiry_purges_history_with_the_memory(engine):
    engine.add(raw_text="A note that will expire soon enough.", memory_id="ephemeral", expiry_seconds=1)
    engine.update("ephemeral", text="The note, edited before it expired.")
    assert len(engine.history("ephemeral")) == 2
    time.sleep(1.5)  # past the expiry (no timing is asserted)
    assert engine.purge_expired() >= 1
    with pytest.raises(NotFoundError):
        engine.history("ephemeral")


# ---------------------------------------------------------------- two processes, a Chroma server

_B = textwrap.dedent(
    """
    import json, sys
    from mem_adapters import MemoryEngine
    eng = MemoryEngine(host={host!r}, port={port})
    for line in sys.stdin:
        user = line.strip() or None
        res = eng.search("locker code Porto", user_id=user, tenant_id={tenant!r}, k=20)
        print(json.dumps([h.text for h in res.results]), flush=True)
    eng.close()
    """
)


@pytest.mark.server
def test_an_erase_reaches_another_process_cache(chroma_server, embedder):
    host, port = chroma_server
    tenant = f"er{time.time_ns()}"
    marker = _marker()
    eng = MemoryEngine(host=host, port=port, embedder=embedder)
    proc = subprocess.Popen(
        [sys.executable, "-c", _B.format(host=host, port=port, tenant=tenant)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "MEM_ADAPTERS_CLOCK_SKEW_S": "2"},
    )

    def ask(user: str) -> list[str]:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(user + "\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        assert line, "process B died"
        return json.loads(line)

    try:
        eng.remember([{"role": "user", "text": f"My locker code is {marker}, I live in Porto."}],
                     session_id="a", user_id="alice", tenant_id=tenant)  # fmt: skip
        eng.remember([{"role": "user", "text": "Bob's locker is near Porto station."}],
                     session_id="b", user_id="bob", tenant_id=tenant)  # fmt: skip
        assert any(marker in t for t in ask("alice"))  # B holds Alice's partition
        assert any(marker in t for t in ask(""))  # and the tenant-wide one
        receipt = eng.erase(user_id="alice", tenant_id=tenant)
        assert receipt.turns == 1 and receipt.verified_on_disk is None and receipt.note
        assert ask("alice") == []
        tenant_wide = ask("")
        assert tenant_wide and all(marker not in t for t in tenant_wide)
        eng.erase(tenant_id=tenant)
        assert ask("bob") == []
        assert ask("") == []
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.wait(timeout=120)
        eng.close()


async def test_writes_during_an_erase_are_kept(tmp_path, embedder):
    """Bob writes while Alice is erased (one process, one loop): every write of Bob's survives the rebuild."""
    import asyncio

    from mem_adapters import AsyncMemoryEngine

    eng = AsyncMemoryEngine(tmp_path / "s", embedder=embedder)
    try:
        marker = _marker()
        await eng.remember([{"role": "user", "text": f"Alice {marker} turn {i}"} for i in range(200)],
                           session_id="a", user_id="alice")  # fmt: skip

        async def bob() -> list[str]:
            ids = []
            for i in range(15):
                w = await eng.remember([{"role": "user", "text": f"Bob writes line {i} during the erase"}],
                                       session_id="b", user_id="bob")  # fmt: skip
                ids += w.active_ids
                await asyncio.sleep(0)
            return ids

        receipt, ids = await asyncio.gather(eng.erase(user_id="alice"), bob())
        assert receipt.turns == 200 and receipt.verified_on_disk is True, receipt.residue_checks
        assert sorted(t.id for t in await eng.get_messages("b", user_id="bob")) == sorted(ids)
        assert _grep(tmp_path / "s", [marker.encode()]) == {}
    finally:
        await eng.aclose()


def test_the_operator_scrub_clears_what_api_deletes_leave(tmp_path, embedder):
    """A folder as a Chroma server leaves it (deletes through the API only): the scrub command clears it."""
    path = tmp_path / "srv"
    eng = MemoryEngine(path, embedder=embedder)
    marker = _marker()
    eng.remember([{"role": "user", "text": f"Alice's passphrase is {marker}, keep it."} for _ in range(1)]
                 + [{"role": "user", "text": f"Alice again: {marker} number {i}."} for i in range(40)],
                 session_id="a", user_id="alice")  # fmt: skip
    eng.remember([{"role": "user", "text": "Bob keeps bees on the roof."}], session_id="b", user_id="bob")
    vectors = [v for v, d in zip(*(_records(eng, "default", "alice")[k] for k in ("embeddings", "documents")),
                                 strict=True) if marker in d][:3]  # fmt: skip
    assert eng.clear_session("a", user_id="alice") == 41
    eng.close()
    assert _grep(path, [marker.encode()]), "an API delete leaves the text on disk"
    out = subprocess.run([sys.executable, "-m", "mem_adapters.data.erasure", "--path", str(path)],
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "VACUUM" in out.stdout
    _no_residue(path, tmp_path, marker, vectors)
    eng2 = MemoryEngine(path, embedder=embedder)
    try:
        assert "bees" in eng2.search("bees", user_id="bob").results[0].text
    finally:
        eng2.close()
