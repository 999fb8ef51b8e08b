"""A store written by release 83683fb (format 2) opens with this code and is migrated once.

The fixture (``tests/fixtures/store-v2/``, made by ``tests/fixtures/make_store_v2.py``) is
copied first: the committed files are never opened in place.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mem_adapters import MemoryEngine, ValidationError, transfer
from mem_adapters.data.chroma import collection_names
from mem_adapters.data.layer import FORMAT, DataLayer

FIXTURES = Path(__file__).parent / "fixtures"
MANIFEST = json.loads((FIXTURES / "store-v2.json").read_text(encoding="utf-8"))
LEGACY_CALLER_IDS = {"default": {"m1", "m2", "lc:s1:x", "b1", "partner", "garden"}, "acme": {"m1"}}


@pytest.fixture
def store_v2(tmp_path) -> Path:
    path = tmp_path / "store-v2"
    shutil.copytree(FIXTURES / "store-v2", path)
    return path


def _open(path: Path, embedder) -> MemoryEngine:
    return MemoryEngine(path, embedder=embedder, enricher=None)


def _records(engine: MemoryEngine, tenant_id: str) -> dict[str, dict]:
    """Every record of a tenant's memory collection, as stored (metadata only)."""
    pair = engine.run(engine.aengine.collections(tenant_id, create=False))
    got = engine.run(pair[0].get_all(include=["metadatas"]))
    return dict(zip(got["ids"], got["metadatas"], strict=True))


def _schema(engine: MemoryEngine, tenant_id: str) -> int:
    return engine.run(transfer.tenant_format(engine.aengine, tenant_id))["ma_schema"]


def _timed_turns(batch: dict) -> list[dict]:
    """The batch's turns that can be re-sent as they were (a turn without id or timestamp is
    stamped with the time of its write, so it is a new turn whenever it is sent)."""
    return [t for t in batch["turns"] if "id" in t or "timestamp" in t]


def _scope(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if k != "turns"}


def test_fixture_is_format_2_and_small():
    size = sum(f.stat().st_size for f in (FIXTURES / "store-v2").rglob("*") if f.is_file())
    assert size < 2 * 1024 * 1024
    assert MANIFEST["made_by"] == "83683fb"
    assert FORMAT == 4


def test_old_store_opens_migrated_and_reads_back(store_v2, embedder):
    engine = _open(store_v2, embedder)
    try:
        assert engine.tenants() == ["acme", "default"]
        for tenant_id, callers in LEGACY_CALLER_IDS.items():
            assert _schema(engine, tenant_id) == FORMAT
            marked = {i: m["caller_id"] for i, m in _records(engine, tenant_id).items() if "caller_id" in m}
            # Old records keep their stored ids; caller ids are marked, engine-made ids are not.
            assert marked == {c: c for c in callers}
        alice = engine.get_messages("s1", user_id="alice")
        assert [m.text for m in alice] == [t["text"] for t in MANIFEST["batches"][0]["turns"]]
        assert [m.id for m in alice] == MANIFEST["answers"][0]["active_ids"]
        assert [m.caller_id for m in alice] == ["m1", "m2", None, "lc:s1:x"]
        assert alice[0].metadata == {"lang": "en"}
        bob = engine.get_messages("s2", user_id="bob")
        assert [m.text for m in bob] == [t["text"] for t in MANIFEST["batches"][1]["turns"]]
        assert [m.text for m in engine.get_messages("s1", tenant_id="acme")] == [
            "Another tenant, the same caller id."
        ]
        (obs,) = engine.list(kinds=["fact"], user_id="alice").results
        assert (obs.text, obs.parent_id) == ("Alice is allergic to shellfish.", "m1")
        partner = engine.get("partner")
        assert (partner.id, partner.caller_id, partner.version) == ("partner", "partner", 2)
        assert [h.event for h in engine.history("partner")] == ["ADD", "UPDATE"]
        anon = engine.get(MANIFEST["raw"]["anon"])
        assert anon.caller_id is None and anon.text == "Bob prefers tea to coffee."
        chunks = engine.list(kinds=["chunk"], user_id="bob", page_size=1000).results
        assert len(chunks) == MANIFEST["raw"]["garden_chunks"] and {c.parent_id for c in chunks} == {"garden"}
        hit = engine.search("Which food is Alice allergic to?", user_id="alice", k=1).results[0]
        assert hit.text == "I'm allergic to shellfish." or hit.parent_id == "m1"
    finally:
        engine.close()


def test_resending_old_turns_is_a_no_op(store_v2, embedder):
    engine = _open(store_v2, embedder)
    try:
        before = {t: _records(engine, t) for t in LEGACY_CALLER_IDS}
        for batch, answer in zip(MANIFEST["batches"], MANIFEST["answers"], strict=True):
            turns = _timed_turns(batch)
            expected = [i for t, i in zip(batch["turns"], answer["active_ids"], strict=True) if t in turns]
            # With their caller ids (and the turns without ids, by their content hash).
            res = engine.remember(turns, **_scope(batch))
            assert (res.created, res.active_ids) == (0, expected)
            # One at a time, and restamped by a retrying client: still the same turns.
            for turn, tid in zip(turns, expected, strict=True):
                if "id" in turn:
                    again = engine.remember([{**turn, "timestamp": "2026-01-01T00:00:00Z"}], **_scope(batch))
                    assert (again.created, again.active_ids) == (0, [tid])
        assert {t: _records(engine, t) for t in LEGACY_CALLER_IDS} == before  # nothing written
        # The same old caller id for a different turn in the same scope is still refused.
        with pytest.raises(ValidationError):
            engine.remember([{"id": "m1", "role": "user", "text": "not the same"}], session_id="s1",
                            user_id="alice")  # fmt: skip
    finally:
        engine.close()


def test_old_caller_ids_no_longer_collide_across_users_and_sessions(store_v2, embedder):
    engine = _open(store_v2, embedder)
    try:
        # Bob uses alice's "m1" in alice's session, alice uses it in another session.
        bob = engine.remember([{"id": "m1", "role": "user", "text": "Bob's own m1."}], session_id="s1",
                              user_id="bob")  # fmt: skip
        other = engine.remember([{"id": "m1", "role": "user", "text": "Alice, elsewhere."}],
                                session_id="s9", user_id="alice")  # fmt: skip
        assert (bob.created, other.created) == (1, 1)
        assert len({bob.active_ids[0], other.active_ids[0], "m1"}) == 3
        assert engine.get("m1", user_id="alice", session_id="s1").text == "I'm allergic to shellfish."
        assert engine.get("m1", user_id="bob").text == "Bob's own m1."
        # Keyed raw memories: alice's "partner" is replaced in place; bob's is a new memory.
        mine = engine.add(raw_text="Alice's partner is Sam (v3).", user_id="alice", memory_id="partner")
        assert (mine.memory_id, mine.record_id) == ("partner", "partner")
        assert engine.get("partner", user_id="alice").version == 3
        theirs = engine.add(raw_text="Bob's partner is Kim.", user_id="bob", memory_id="partner")
        assert theirs.memory_id == "partner" and theirs.record_id not in ("partner", None)
        assert engine.get("partner", user_id="bob").text == "Bob's partner is Kim."
        assert [h.event for h in engine.history("partner", user_id="alice")] == ["ADD", "UPDATE", "UPDATE"]
    finally:
        engine.close()


_PARTIAL = textwrap.dedent(
    """
    import sys
    import chromadb
    from chromadb.config import Settings

    path, name = sys.argv[1], sys.argv[2]
    client = chromadb.PersistentClient(path=path, settings=Settings(anonymized_telemetry=False))
    col = client.get_collection(name)
    # As a migration killed after its first metadata batch leaves it: two records marked,
    # the format not stamped yet.
    col.update(ids=["m1", "b1"], metadatas=[{"caller_id": "m1"}, {"caller_id": "b1"}])
    assert col.metadata["ma_schema"] == 2
    """
)


def test_migration_resumes_after_a_partial_run_and_runs_once(store_v2, embedder, monkeypatch):
    mem_name, _ = collection_names("default")
    subprocess.run([sys.executable, "-c", _PARTIAL, str(store_v2), mem_name], check=True, timeout=300)
    engine = _open(store_v2, embedder)
    try:
        records = _records(engine, "default")
        assert (_schema(engine, "default"), _schema(engine, "acme")) == (FORMAT, FORMAT)
        marked = {i for i, m in records.items() if "caller_id" in m}
        assert marked == LEGACY_CALLER_IDS["default"]
        assert engine.remember(_timed_turns(MANIFEST["batches"][0]), user_id="alice",
                               session_id="s1").created == 0  # fmt: skip
    finally:
        engine.close()
    runs: list[str] = []
    real = DataLayer._migrate_caller_ids

    async def counted(self, tenant_id, pair):
        runs.append(tenant_id)
        await real(self, tenant_id, pair)

    monkeypatch.setattr(DataLayer, "_migrate_caller_ids", counted)
    engine = _open(store_v2, embedder)  # a second open migrates nothing (revisions unchanged)
    try:
        assert _records(engine, "default") == records
        assert _schema(engine, "acme") == FORMAT
        assert len(engine.get_messages("s1", user_id="alice")) == 4
    finally:
        engine.close()
    assert runs == []


def test_an_export_of_a_format_2_store_imports_with_its_caller_ids(store_v2, tmp_path, embedder):
    async def collect(aengine, tenant_id):
        return [r async for r in transfer.export_records(aengine, tenant_id=tenant_id)]

    engine = _open(store_v2, embedder)
    try:
        records = engine.run(collect(engine.aengine, "default"))
    finally:
        engine.close()
    # What the format-2 export wrote: the same records without the caller_id marks.
    old = [{**r, "fields": {k: v for k, v in r["fields"].items() if k != "caller_id"}} for r in records]
    assert any(r["record"] == "memory" and r["id"] == "m1" for r in old)
    fresh = _open(tmp_path / "fresh", embedder)
    try:
        counts = fresh.run(transfer.import_records(fresh.aengine, [transfer.header(), *old]))
        assert counts.memories == sum(1 for r in old if r["record"] == "memory")
        marked = {i: m["caller_id"] for i, m in _records(fresh, "default").items() if "caller_id" in m}
        assert marked == {c: c for c in LEGACY_CALLER_IDS["default"]}
        batch, answer = MANIFEST["batches"][0], MANIFEST["answers"][0]
        res = fresh.remember(_timed_turns(batch), **_scope(batch))
        assert (res.created, res.active_ids) == (0, answer["active_ids"])
    finally:
        fresh.close()


def test_a_new_tenant_is_written_at_the_current_format_and_never_repaired(tmp_path, embedder, monkeypatch):
    from mem_adapters.enrichment import Enricher

    repairs: list[str] = []

    async def counted(self, tenant_id):
        repairs.append(tenant_id)
        return 0

    monkeypatch.setattr(Enricher, "repair_mixed_episodes", counted)
    engine = MemoryEngine(tmp_path / "new", embedder=embedder, enricher="default")
    try:
        engine.remember(
            [{"role": "user", "text": "A first turn."}], session_id="s", user_id="u", tenant_id="fresh"
        )
        engine.search("first", user_id="u", tenant_id="fresh")
        pair = engine.run(engine.aengine.collections("fresh", create=False))
        assert pair[0].metadata["ma_schema"] == FORMAT == 4
        assert "ma_repair_episodes" not in pair[0].metadata
    finally:
        engine.close()
    assert repairs == []
