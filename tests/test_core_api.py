"""Contract tests of the core engine's public API (issue 2): writes, reads, changes, erase."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest

import mem_adapters
from mem_adapters import (
    AddResult,
    AsyncMemoryEngine,
    EraseReceipt,
    HistoryEntry,
    MemAdaptersError,
    MemoryEngine,
    MemoryItem,
    NotFoundError,
    Page,
    RecordResult,
    Scope,
    SearchResult,
    Turn,
    ValidationError,
    WriteResult,
)

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc)


def ts(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def convo(n: int, prefix: str = "turn") -> list[dict]:
    roles = ["user", "assistant"]
    return [{"role": roles[i % 2], "text": f"{prefix} number {i}", "timestamp": ts(i)} for i in range(n)]


def all_items(engine: MemoryEngine, tenant_id: str = "default") -> list[MemoryItem]:
    page = engine.list(page_size=1000, tenant_id=tenant_id)
    return page.results


# ---------------------------------------------------------------- public API surface


def test_public_api_names_importable():
    names = "MemoryEngine AsyncMemoryEngine Turn Scope WriteResult RecordResult AddResult MemoryItem"
    for name in (*names.split(), "Page", "HistoryEntry", "EraseReceipt", "SearchResult"):
        assert hasattr(mem_adapters, name), name
        assert name in mem_adapters.__all__
    assert Scope().tenant_id == "default"


def test_async_engine_has_every_sync_method_as_coroutine():
    import inspect

    public = [n for n, v in vars(MemoryEngine).items() if callable(v) and not n.startswith("_")]
    assert {"remember", "record_message", "add", "get", "list", "update", "delete", "history",
            "get_messages", "clear_session", "erase", "search", "count_turns", "archive_oldest",
            "delete_oldest", "reembed", "purge_expired"} <= set(public)  # fmt: skip
    for name in public:
        if name in ("close", "submit", "arun", "run"):  # sync-only: bridges into the engine loop
            continue
        assert inspect.iscoroutinefunction(getattr(AsyncMemoryEngine, name)), name


def test_default_path_is_dot_mem_adapters_in_cwd(tmp_path, monkeypatch, embedder):
    monkeypatch.delenv("MEM_ADAPTERS_PATH", raising=False)
    monkeypatch.chdir(tmp_path)
    with MemoryEngine(embedder=embedder) as eng:
        eng.remember([{"role": "user", "text": "hello", "timestamp": ts(0)}], session_id="s")
    assert (tmp_path / ".mem_adapters").is_dir()
    assert any((tmp_path / ".mem_adapters").iterdir())
    # And the data is persistent: a new engine on the same cwd reads it back.
    with MemoryEngine(embedder=embedder) as eng:
        assert [m.text for m in eng.get_messages("s")] == ["hello"]


def test_env_path_respected(tmp_path, monkeypatch, embedder):
    target = tmp_path / "elsewhere"
    monkeypatch.setenv("MEM_ADAPTERS_PATH", str(target))
    monkeypatch.chdir(tmp_path)
    with MemoryEngine(embedder=embedder) as eng:
        eng.remember([{"role": "user", "text": "hello", "timestamp": ts(0)}], session_id="s")
    assert target.is_dir() and any(target.iterdir())
    assert not (tmp_path / ".mem_adapters").exists()


def test_explicit_client_is_used(tmp_path, embedder):
    import chromadb

    client = chromadb.PersistentClient(path=str(tmp_path / "c"))
    with MemoryEngine(client=client, embedder=embedder) as eng:
        eng.remember([{"role": "user", "text": "hello", "timestamp": ts(0)}], session_id="s")
        assert eng.path is None
    assert any(c.name.endswith("-mem") for c in client.list_collections())


# ---------------------------------------------------------------- remember


def test_remember_returns_one_id_per_turn_in_order(engine):
    turns = convo(4)
    res = engine.remember(turns, session_id="s1", user_id="u1")
    assert isinstance(res, WriteResult)
    assert res.job_id
    assert len(res.active_ids) == 4 and len(set(res.active_ids)) == 4
    got = engine.get_many(res.active_ids)
    assert [g.text for g in got] == [t["text"] for t in turns]
    assert all(g.kind == "turn" and g.session_id == "s1" and g.user_id == "u1" for g in got)
    # Searchable as soon as the call returns.
    hits = engine.search("turn number 2", session_id="s1", k=4)
    assert res.active_ids[2] in [h.id for h in hits.results]


def test_remember_accepts_turn_models_and_free_form_roles(engine):
    res = engine.remember(
        [Turn(role="Caroline", text="I adopted a dog", timestamp=ts(0)),
         {"role": "tool", "text": "weather: 18C", "timestamp": ts(1)}],
        session_id="s",
    )  # fmt: skip
    items = engine.get_many(res.active_ids)
    assert [i.role for i in items] == ["Caroline", "tool"]


def test_usage_counts_tokens_with_embedder_tokenizer(engine, embedder):
    turns = convo(3)
    texts = [t["text"] for t in turns]
    res = engine.remember(turns, session_id="s")
    expected = embedder.count_tokens(texts)
    assert expected > 0
    assert res.usage.tokens_in == expected
    assert res.usage.tokens_out == expected
    again = engine.remember(turns, session_id="s")
    assert again.usage.tokens_in == expected
    assert again.usage.tokens_out == 0  # nothing newly embedded


def test_timestamps_naive_is_utc_and_missing_is_now(engine):
    before = datetime.now(timezone.utc)
    res = engine.remember(
        [{"role": "user", "text": "naive", "timestamp": "2025-01-02T03:04:05"},
         {"role": "user", "text": "offset", "timestamp": "2025-01-02T05:04:05+02:00"},
         {"role": "user", "text": "zulu", "timestamp": "2025-01-02T03:04:05Z"},
         {"role": "user", "text": "missing"}],
        session_id="s",
    )  # fmt: skip
    after = datetime.now(timezone.utc)
    items = engine.get_many(res.active_ids)
    want = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    for item in items[:3]:
        assert item.timestamp == want
        assert item.timestamp.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= items[3].timestamp <= after + timedelta(seconds=1)
    assert items[3].timestamp.utcoffset() == timedelta(0)


def test_remember_metadata_applies_to_every_turn_turn_metadata_wins(engine):
    res = engine.remember(
        [{"role": "user", "text": "a", "timestamp": ts(0), "metadata": {"topic": "food"}},
         {"role": "user", "text": "b", "timestamp": ts(1)}],
        session_id="s", metadata={"topic": "general", "source": "chat"},
    )  # fmt: skip
    a, b = engine.get_many(res.active_ids)
    assert a.metadata == {"topic": "food", "source": "chat"}
    assert b.metadata == {"topic": "general", "source": "chat"}


def test_observations_stored_as_linked_facts(engine):
    res = engine.remember(
        [{"role": "user", "text": "I'm allergic to shellfish", "timestamp": ts(0),
          "observations": ["User is allergic to shellfish",
                           {"text": "User avoids shrimp", "metadata": {"confidence": "high"}}]}],
        session_id="s", user_id="u",
    )  # fmt: skip
    tid = res.active_ids[0]
    facts = engine.list({"kind": "fact"}).results
    assert sorted(f.text for f in facts) == ["User avoids shrimp", "User is allergic to shellfish"]
    for f in facts:
        assert f.kind == "fact"
        assert f.parent_id == tid
        assert f.source_ids == [tid]
        assert f.user_id == "u" and f.session_id == "s"
    assert next(f for f in facts if f.text == "User avoids shrimp").metadata == {"confidence": "high"}
    # Observations are not transcript turns.
    assert [m.id for m in engine.get_messages("s")] == [tid]


# ---------------------------------------------------------------- record_message


def test_record_message_strict(engine):
    r = engine.record_message("conv1", "user", "Hi, I'm Ana", user_id="u1", customer_id="acme")
    assert isinstance(r, RecordResult)
    assert r.message_id and r.conversation_id == "conv1" and r.session_id
    assert r.recorded_at.tzinfo is not None
    r2 = engine.record_message("conv1", "assistant", "Hello Ana", user_id="u1", customer_id="acme",
                               session_id="sess-A", metadata={"lang": "en"})  # fmt: skip
    assert r2.session_id == "sess-A"
    assert r2.message_id != r.message_id
    item = engine.get(r2.message_id, tenant_id="acme")
    assert item.text == "Hello Ana" and item.role == "assistant" and item.user_id == "u1"
    assert item.metadata == {"lang": "en"}
    # customer_id is the tenant: nothing in the default tenant.
    with pytest.raises(NotFoundError):
        engine.get(r2.message_id)


@pytest.mark.parametrize("role", ["system", "tool", "User", "", "Caroline"])
def test_record_message_rejects_non_user_assistant_roles(engine, role):
    with pytest.raises(ValidationError) as e:
        engine.record_message("conv1", role, "x", user_id="u1", customer_id="acme")
    assert e.value.field == "role"
    assert engine.list(tenant_id="acme").count == 0


def test_record_message_requires_content(engine):
    with pytest.raises(ValidationError) as e:
        engine.record_message("conv1", "user", "  ", user_id="u1", customer_id="acme")
    assert e.value.field == "content"


# ---------------------------------------------------------------- add


def test_add_raw_text_short(engine):
    r = engine.add(raw_text="The wifi password is hunter2", tenant_id="t", user_id="u")
    assert isinstance(r, AddResult)
    assert r.memory_id and r.source_id
    assert (r.chunks_created, r.original_chunks, r.inferred_chunks) == (1, 1, 0)
    item = engine.get(r.memory_id, tenant_id="t")
    assert item.text == "The wifi password is hunter2" and item.user_id == "u"
    hits = engine.search("what is the wifi password", tenant_id="t", k=3)
    assert hits.results[0].id == r.memory_id


def test_add_long_text_is_chunked_and_chunks_are_searchable(engine):
    sentences = [f"Paragraph {i} talks about subject {i} in some detail and keeps going." for i in range(60)]
    sentences[37] = "The secret rendezvous point is the old lighthouse on the northern cliff."
    text = " ".join(sentences)
    r = engine.add(raw_text=text, tenant_id="t")
    assert r.original_chunks > 1
    assert r.chunks_created == r.original_chunks + r.inferred_chunks
    chunks = engine.list({"kind": "chunk"}, tenant_id="t").results
    assert len(chunks) == r.original_chunks
    assert all(c.parent_id == r.memory_id for c in chunks)
    # Every sentence is in some chunk.
    for s in sentences:
        assert any(s in c.text for c in chunks), s
    assert engine.get(r.memory_id, tenant_id="t").text == text
    hits = engine.search("where is the secret meeting place?", tenant_id="t", k=3)
    assert "lighthouse" in hits.results[0].text


def test_add_pairs(engine):
    r = engine.add(pairs=[{"user": "I live in Porto", "assistant": "Nice city!"}, ("I'm a nurse", "Cool")],
                   tenant_id="t", user_name="Ana")  # fmt: skip
    text = engine.get(r.memory_id, tenant_id="t").text
    for part in ("I live in Porto", "Nice city!", "I'm a nurse", "Cool", "Ana"):
        assert part in text


def test_add_infer_stores_condensed_memories(engine):
    r = engine.add(raw_text="user: Hi there! I'm allergic to peanuts. What's up?", tenant_id="t", infer=True)
    assert r.inferred_chunks >= 1
    assert r.chunks_created == r.original_chunks + r.inferred_chunks
    facts = engine.list({"kind": "fact"}, tenant_id="t").results
    assert len(facts) == r.inferred_chunks
    assert any("peanuts" in f.text for f in facts)


def test_add_raw_text_and_pairs_is_an_error(engine):
    with pytest.raises(ValidationError) as e:
        engine.add(raw_text="x", pairs=[("a", "b")], tenant_id="t")
    assert e.value.field in ("raw_text", "pairs")
    assert "pairs" in str(e.value) and "raw_text" in str(e.value)
    assert engine.list(tenant_id="t").count == 0


def test_add_neither_raw_text_nor_pairs_is_an_error(engine):
    with pytest.raises(ValidationError):
        engine.add(tenant_id="t")


def test_keyed_memory_replaced_history_keeps_old(engine):
    engine.add(raw_text="Favourite colour: blue", memory_id="pref-colour", tenant_id="t")
    r = engine.add(raw_text="Favourite colour: green", memory_id="pref-colour", tenant_id="t")
    assert r.memory_id == "pref-colour"
    page = engine.list(tenant_id="t")
    assert page.count == 1
    assert engine.get("pref-colour", tenant_id="t").text == "Favourite colour: green"
    texts = [h.text for h in engine.history("pref-colour", tenant_id="t")]
    assert texts == ["Favourite colour: blue", "Favourite colour: green"]
    hits = engine.search("favourite colour", tenant_id="t")
    assert [h.text for h in hits.results] == ["Favourite colour: green"]


def test_keyed_long_memory_replaced_by_short_drops_old_chunks(engine):
    long_text = " ".join(f"Sentence {i} about the old document content." for i in range(80))
    first = engine.add(raw_text=long_text, memory_id="doc", tenant_id="t")
    assert first.original_chunks > 1
    engine.add(raw_text="Short replacement.", memory_id="doc", tenant_id="t")
    items = all_items(engine, "t")
    assert [i.text for i in items] == ["Short replacement."]


# ---------------------------------------------------------------- get / list / update / delete / history


def test_get_unknown_id_not_found(engine):
    with pytest.raises(NotFoundError) as e:
        engine.get("nope")
    assert isinstance(e.value, MemAdaptersError)
    assert "nope" in str(e.value)


def test_list_pagination(engine):
    res = engine.remember(convo(7), session_id="s")
    p1 = engine.list(page=1, page_size=3)
    assert isinstance(p1, Page)
    assert p1.count == 7 and p1.previous is None and p1.next == 2
    p2 = engine.list(page=2, page_size=3)
    assert p2.previous == 1 and p2.next == 3
    p3 = engine.list(page=3, page_size=3)
    assert p3.next is None and len(p3.results) == 1
    ids = [i.id for p in (p1, p2, p3) for i in p.results]
    assert ids == res.active_ids  # write order, no overlap, nothing missing


def test_list_filters(engine):
    engine.remember(convo(4), session_id="s1", user_id="u1")
    engine.remember(convo(2, "other"), session_id="s2", user_id="u2")
    assert engine.list({"role": "user"}).count == 3
    assert engine.list({"session_id": "s2"}).count == 2
    assert engine.list(user_id="u1").count == 4
    assert engine.list({"$or": [{"session_id": "s2"}, {"role": "assistant"}]}).count == 4


def test_update_text_reembeds_and_records_history(tmp_path, embedder):
    import chromadb
    import numpy as np

    client = chromadb.PersistentClient(path=str(tmp_path / "db"))
    engine = MemoryEngine(client=client, embedder=embedder)
    try:
        res = engine.remember(
            [{"role": "user", "text": "I live in Berlin", "timestamp": ts(0)},
             {"role": "user", "text": "I like jazz", "timestamp": ts(1)}],
            session_id="s",
        )  # fmt: skip
        tid = res.active_ids[0]
        seq_before = engine.get(tid).seq
        updated = engine.update(tid, text="I moved to a farm with goats and chickens")
        assert updated.text == "I moved to a farm with goats and chickens"
        assert updated.version == 2
        got = engine.get(tid)
        assert got.text == updated.text and got.kind == "turn" and got.seq == seq_before
        assert [m.id for m in engine.get_messages("s")] == res.active_ids  # position kept
        hist = engine.history(tid)
        assert all(isinstance(h, HistoryEntry) for h in hist)
        assert [h.text for h in hist] == ["I live in Berlin", "I moved to a farm with goats and chickens"]
        assert [h.version for h in hist] == [1, 2]
        # Re-embedded: Chroma holds the new text's vector (the exact text, no speaker).
        (col,) = [c for c in client.list_collections() if c.name.endswith("-mem")]
        stored = client.get_collection(col.name).get(ids=[tid], include=["embeddings"])["embeddings"][0]
        want = embedder.embed_query("I moved to a farm with goats and chickens")
        assert float(np.dot(stored, want)) > 0.9999
        hits = engine.search("farm animals: goats and chickens", session_id="s", k=1)
        assert hits.results[0].id == tid
    finally:
        engine.close()


def test_update_metadata_merges_and_none_deletes(engine):
    r = engine.add(raw_text="note", metadata={"a": 1, "b": 2}, tenant_id="t")
    engine.update(r.memory_id, metadata={"b": None, "c": [1, 2]}, tenant_id="t")
    assert engine.get(r.memory_id, tenant_id="t").metadata == {"a": 1, "c": [1, 2]}
    hist = engine.history(r.memory_id, tenant_id="t")
    assert hist[0].metadata == {"a": 1, "b": 2}


def test_update_requires_something(engine):
    r = engine.add(raw_text="note", tenant_id="t")
    with pytest.raises(ValidationError):
        engine.update(r.memory_id, tenant_id="t")
    with pytest.raises(ValidationError) as e:
        engine.update(r.memory_id, text=" ", tenant_id="t")
    assert e.value.field == "text"
    with pytest.raises(NotFoundError):
        engine.update("missing", text="x", tenant_id="t")


def test_delete_and_history_records_deletion(engine):
    r = engine.add(raw_text="temporary note", tenant_id="t")
    engine.delete(r.memory_id, tenant_id="t")
    with pytest.raises(NotFoundError):
        engine.get(r.memory_id, tenant_id="t")
    assert engine.list(tenant_id="t").count == 0
    assert engine.search("temporary note", tenant_id="t").results == []
    hist = engine.history(r.memory_id, tenant_id="t")
    assert hist[-1].event == "DELETE"
    assert hist[0].text == "temporary note"
    with pytest.raises(NotFoundError):
        engine.delete(r.memory_id, tenant_id="t")


def test_delete_turn_removes_its_observations(engine):
    res = engine.remember([{"role": "user", "text": "I have a cat", "timestamp": ts(0),
                            "observations": ["User owns a cat"]}], session_id="s")  # fmt: skip
    engine.delete(res.active_ids[0])
    assert engine.list().count == 0


def test_history_unknown_id(engine):
    with pytest.raises(NotFoundError):
        engine.history("never-existed")


# ---------------------------------------------------------------- transcript, status, session


def test_get_messages_exact_write_order(engine):
    # Timestamps deliberately out of order: the transcript is write order, not timestamp order.
    first = engine.remember(
        [{"role": "user", "text": "second by time", "timestamp": ts(10)},
         {"role": "assistant", "text": "first by time", "timestamp": ts(1)}],
        session_id="s",
    )  # fmt: skip
    second = engine.remember([{"role": "user", "text": "third write", "timestamp": ts(5)}], session_id="s")
    msgs = engine.get_messages("s")
    assert [m.id for m in msgs] == [*first.active_ids, *second.active_ids]
    seqs = [m.seq for m in msgs]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_turn_status_archive_and_delete_oldest(engine):
    res = engine.remember(convo(6), session_id="s")
    ids = res.active_ids
    assert engine.count_turns("s") == 6
    archived = engine.archive_oldest("s", 2)
    assert archived == ids[:2]
    assert engine.count_turns("s", status="active") == 4
    assert engine.count_turns("s", status="archived") == 2
    assert [m.id for m in engine.get_messages("s", status="archived")] == ids[:2]
    assert [m.id for m in engine.get_messages("s", status="active")] == ids[2:]
    assert [m.id for m in engine.get_messages("s")] == ids
    assert all(m.status == "archived" for m in engine.get_messages("s", status="archived"))
    # Archiving again takes the next oldest active ones.
    assert engine.archive_oldest("s", 1) == [ids[2]]
    deleted = engine.delete_oldest("s", 2, status="archived")
    assert deleted == ids[:2]
    assert [m.id for m in engine.get_messages("s")] == ids[2:]
    assert engine.count_turns("s") == 4


def test_get_messages_limit_last(engine):
    res = engine.remember(convo(5), session_id="s")
    assert [m.id for m in engine.get_messages("s", limit=2)] == res.active_ids[:2]
    assert [m.id for m in engine.get_messages("s", limit=2, last=True)] == res.active_ids[-2:]


def test_clear_session_only_that_session(engine):
    engine.remember(convo(3), session_id="s1")
    keep = engine.remember(convo(2, "keep"), session_id="s2")
    n = engine.clear_session("s1")
    assert n == 3
    assert engine.get_messages("s1") == []
    assert [m.id for m in engine.get_messages("s2")] == keep.active_ids


# ---------------------------------------------------------------- search


def test_search_semantic_sanity(engine):
    engine.remember(
        [{"role": "user", "text": "I'm allergic to shellfish.", "timestamp": ts(0)},
         {"role": "user", "text": "My favourite football team is Benfica.", "timestamp": ts(1)},
         {"role": "user", "text": "I work as a software engineer in Lisbon.", "timestamp": ts(2)},
         {"role": "user", "text": "We adopted a golden retriever puppy last week.", "timestamp": ts(3)}],
        session_id="s", user_id="u",
    )  # fmt: skip
    res = engine.search("what food should I avoid", user_id="u")
    assert isinstance(res, SearchResult)
    assert res.results[0].text == "I'm allergic to shellfish."
    scores = [r.score for r in res.results]
    assert scores == sorted(scores, reverse=True)
    assert len(engine.search("dog", user_id="u", k=2).results) == 2


def test_search_scope_and_filters(engine):
    engine.remember(
        [{"role": "user", "text": "I love sushi", "timestamp": ts(0)}], session_id="s1", user_id="u1"
    )
    engine.remember(
        [{"role": "user", "text": "I love sushi too", "timestamp": ts(0)}], session_id="s2", user_id="u2"
    )
    assert {r.user_id for r in engine.search("sushi", user_id="u1").results} == {"u1"}
    assert {r.session_id for r in engine.search("sushi", filters={"session_id": "s2"}).results} == {"s2"}
    assert engine.search("sushi", user_id="nobody").results == []


# ---------------------------------------------------------------- erase


def test_erase_user_receipt_counts_everything(engine):
    t = "erase-t"
    w = engine.remember(
        [{"role": "user", "text": "I have two cats", "timestamp": ts(0),
          "observations": ["User has two cats"]},
         {"role": "assistant", "text": "Lovely!", "timestamp": ts(1)},
         {"role": "user", "text": "And a parrot", "timestamp": ts(2)}],
        session_id="s", user_id="u1", tenant_id=t,
    )  # fmt: skip
    short = engine.add(raw_text="Prefers window seats", user_id="u1", tenant_id=t)
    long_ = engine.add(raw_text=" ".join(f"Line {i} of the travel diary entry." for i in range(80)),
                       user_id="u1", tenant_id=t)  # fmt: skip
    engine.update(short.memory_id, text="Prefers aisle seats", tenant_id=t)
    engine.delete(w.active_ids[2], tenant_id=t)
    other = engine.remember([{"role": "user", "text": "not mine", "timestamp": ts(0)}],
                            session_id="s", user_id="u2", tenant_id=t)  # fmt: skip
    # Expected counts, from the public API.
    items = all_items(engine, t)
    mine = [i for i in items if i.user_id == "u1"]
    turns = sum(i.kind == "turn" for i in mine)
    chunks = sum(i.kind == "chunk" for i in mine)
    derived = sum(i.kind in ("fact", "episode") for i in mine)
    assert (turns, chunks, derived) == (2, long_.original_chunks, 1)
    history_rows = 0
    for mid in {short.memory_id, w.active_ids[2], *(i.id for i in mine)}:
        live = 1 if any(i.id == mid for i in items) else 0
        history_rows += len(engine.history(mid, tenant_id=t)) - live
    assert history_rows >= 3  # one UPDATE pre-image, a pre-image and a DELETE row for the turn

    receipt = engine.erase(user_id="u1", tenant_id=t)
    assert isinstance(receipt, EraseReceipt)
    assert receipt.user_id == "u1" and receipt.tenant_id == t
    assert receipt.turns == turns
    assert receipt.chunks == chunks
    assert receipt.derived == derived
    assert receipt.memories == 2  # the two raw memories
    assert receipt.history == history_rows
    # Nothing of u1 is left anywhere; u2 untouched.
    left = all_items(engine, t)
    assert [i.id for i in left] == other.active_ids
    for mid in (short.memory_id, long_.memory_id, *w.active_ids):
        with pytest.raises(NotFoundError):
            engine.get(mid, tenant_id=t)
        with pytest.raises(NotFoundError):
            engine.history(mid, tenant_id=t)
    assert engine.search("cats", tenant_id=t, user_id="u1").results == []


def test_erase_tenant(engine):
    engine.remember(convo(3), session_id="s", user_id="a", tenant_id="gone")
    engine.add(raw_text="memo", user_id="b", tenant_id="gone")
    engine.remember(convo(1), session_id="s", tenant_id="stays")
    receipt = engine.erase(tenant_id="gone")
    assert receipt.turns == 3 and receipt.memories == 1
    assert receipt.total == 4
    assert engine.list(tenant_id="gone").count == 0
    assert engine.search("turn", tenant_id="gone").results == []
    assert engine.list(tenant_id="stays").count == 1
    # Erasing again is harmless and removes nothing.
    assert engine.erase(tenant_id="gone").total == 0


# ---------------------------------------------------------------- expiry


def _raw_ids(client) -> set[str]:
    """Every record id in every memory collection, read straight from Chroma."""
    out: set[str] = set()
    for col in client.list_collections():
        if col.name.endswith("-mem"):
            out |= set(client.get_collection(col.name).get(include=[])["ids"])
    return out


def test_expiry_invisible_everywhere_then_purged(tmp_path, embedder):
    import chromadb

    client = chromadb.PersistentClient(path=str(tmp_path / "db"))
    engine = MemoryEngine(client=client, embedder=embedder)
    try:
        long_text = " ".join(f"Ephemeral sentence {i} about a passing detail." for i in range(60))
        gone = engine.add(raw_text=long_text, tenant_id="t", expiry_seconds=3)
        short = engine.add(raw_text="Ephemeral door code is 4411", tenant_id="t", expiry_seconds=3)
        keep = engine.add(raw_text="Permanent door code is 9911", tenant_id="t")
        # Before expiry everything is visible (so the checks below can fail for the right reason).
        assert engine.get(short.memory_id, tenant_id="t").expires_at is not None
        assert engine.list(tenant_id="t").count == 3 + gone.original_chunks
        assert len(engine.search("ephemeral door code", tenant_id="t").results) == 2 + gone.original_chunks
        time.sleep(3.3)  # generous: a loaded CI machine may take seconds to write
        for mid in (gone.memory_id, short.memory_id, f"{gone.memory_id}#c0"):
            with pytest.raises(NotFoundError):
                engine.get(mid, tenant_id="t")
        ids = [gone.memory_id, short.memory_id, keep.memory_id]
        assert [i.id for i in engine.get_many(ids, tenant_id="t")] == [keep.memory_id]
        assert [i.id for i in engine.list(tenant_id="t").results] == [keep.memory_id]
        assert [h.id for h in engine.search("door code", tenant_id="t").results] == [keep.memory_id]
        assert [h.id for h in engine.search("ephemeral passing detail", tenant_id="t").results] == [
            keep.memory_id
        ]
        purged = engine.purge_expired("t")
        assert purged >= 0
        # Purged for real: Chroma itself no longer holds the expired records.
        assert _raw_ids(client) == {keep.memory_id}
        assert engine.purge_expired("t") == 0
        assert engine.get(keep.memory_id, tenant_id="t").text == "Permanent door code is 9911"
    finally:
        engine.close()


def test_purge_expired_returns_count_of_removed_records(tmp_path, embedder):
    import chromadb

    client = chromadb.PersistentClient(path=str(tmp_path / "db"))
    engine = MemoryEngine(client=client, embedder=embedder)
    try:
        a = engine.add(raw_text=" ".join(f"Short lived line {i} here." for i in range(80)),
                       tenant_id="t", expiry_seconds=3)  # fmt: skip
        engine.add(raw_text="also short lived", tenant_id="t", expiry_seconds=3)
        keep = engine.add(raw_text="kept", tenant_id="t")
        time.sleep(3.3)
        assert engine.purge_expired("t") == 2 + a.original_chunks
        assert _raw_ids(client) == {keep.memory_id}
    finally:
        engine.close()


def test_expiry_must_be_positive(engine):
    with pytest.raises(ValidationError) as e:
        engine.add(raw_text="x", tenant_id="t", expiry_seconds=0)
    assert e.value.field == "expiry_seconds"


# ---------------------------------------------------------------- context managers


async def test_async_engine_basic_roundtrip(aengine):
    res = await aengine.remember(convo(3), session_id="s")
    msgs = await aengine.get_messages("s")
    assert [m.id for m in msgs] == res.active_ids
    hits = await aengine.search("turn number 1", session_id="s", k=1)
    assert hits.results[0].id == res.active_ids[1]
    r = await aengine.add(raw_text="async note", tenant_id="t")
    assert (await aengine.get(r.memory_id, tenant_id="t")).text == "async note"


def test_json_dump_of_results_is_possible(engine):
    res = engine.remember(convo(1), session_id="s")
    item = engine.get(res.active_ids[0])
    json.loads(item.model_dump_json())
    json.loads(res.model_dump_json())


def test_caller_id_reused_for_a_different_turn_is_not_silently_dropped(engine):
    """A caller id already used by another turn: reject it (naming the field) or store the turn.

    What must never happen is the new turn silently vanishing.
    """
    engine.remember([{"role": "user", "text": "first", "timestamp": ts(0), "id": "m1"}], session_id="s1")
    try:
        res = engine.remember(
            [{"role": "user", "text": "other", "timestamp": ts(1), "id": "m1"}], session_id="s2"
        )
    except ValidationError as e:
        assert e.field == "turns[0].id"
        assert [m.text for m in engine.get_messages("s2")] == []
        return
    assert res.duplicates == 0 or res.created == 1
    assert [m.text for m in engine.get_messages("s2")] == ["other"]


def test_update_long_raw_memory_rechunks(engine):
    old = " ".join(f"Old fact number {i} about the archive." for i in range(70))
    r = engine.add(raw_text=old, tenant_id="t")
    new = " ".join(f"New statement {i} concerning the volcano expedition." for i in range(70))
    engine.update(r.memory_id, text=new, tenant_id="t")
    item = engine.get(r.memory_id, tenant_id="t")
    assert item.text == new and item.version == 2
    chunks = engine.list({"kind": "chunk"}, page_size=1000, tenant_id="t").results
    assert chunks and all("volcano" in c.text and "archive" not in c.text for c in chunks)
    assert [h.text for h in engine.history(r.memory_id, tenant_id="t")] == [old, new]
    assert "volcano" in engine.search("volcano expedition", tenant_id="t").results[0].text


def test_keyed_memory_versions_accumulate(engine):
    for i in range(4):
        engine.add(raw_text=f"Address version {i}", memory_id="addr", tenant_id="t")
    hist = engine.history("addr", tenant_id="t")
    assert [h.text for h in hist] == [f"Address version {i}" for i in range(4)]
    assert [h.version for h in hist] == [1, 2, 3, 4]
    assert engine.get("addr", tenant_id="t").version == 4
    assert engine.list(tenant_id="t").count == 1


def test_concurrent_keyed_adds_keep_one_live_record(engine):
    import threading

    threads = [
        threading.Thread(
            target=engine.add, kwargs={"raw_text": f"value {i}", "memory_id": "k", "tenant_id": "t"}
        )
        for i in range(5)
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert engine.list(tenant_id="t").count == 1
    hist = engine.history("k", tenant_id="t")
    assert sorted(h.text for h in hist) == sorted(f"value {i}" for i in range(5))
    assert [h.version for h in hist] == [1, 2, 3, 4, 5]


def test_idempotency_survives_reopen(tmp_path, embedder):
    batch = convo(3)
    with MemoryEngine(tmp_path / "db", embedder=embedder) as eng:
        first = eng.remember(batch, session_id="s")
    with MemoryEngine(tmp_path / "db", embedder=embedder) as eng:
        again = eng.remember(batch[::-1], session_id="s")
        assert again.active_ids == first.active_ids[::-1]
        assert again.created == 0
        assert [m.id for m in eng.get_messages("s")] == first.active_ids


def test_record_message_transcript(engine):
    ids = [
        engine.record_message("conv", role, text, user_id="u", customer_id="acme").message_id
        for role, text in [("user", "hi"), ("assistant", "hello"), ("user", "bye")]
    ]
    msgs = engine.get_messages("conv", tenant_id="acme")
    assert [m.caller_id for m in msgs] == ids  # message ids are the turns' caller ids
    assert engine.get(ids[1], tenant_id="acme").text == "hello"
    assert [m.role for m in msgs] == ["user", "assistant", "user"]


def test_sub_tenant_scope(engine):
    engine.remember(convo(2), session_id="s", sub_tenant_id="team-a")
    engine.remember(convo(1, "other"), session_id="s2", sub_tenant_id="team-b")
    assert engine.list(sub_tenant_id="team-a").count == 2
    assert {h.sub_tenant_id for h in engine.search("number", sub_tenant_id="team-b").results} == {"team-b"}


def test_clear_session_leaves_no_stale_history(engine):
    """After clear_session a turn's history is gone or ends with DELETE, never a live-looking old version."""
    w = engine.remember([{"role": "user", "text": "secret v1", "timestamp": ts(0)}], session_id="s")
    engine.update(w.active_ids[0], text="secret v2")
    assert engine.clear_session("s") == 1
    with pytest.raises(NotFoundError):
        engine.get(w.active_ids[0])
    try:
        hist = engine.history(w.active_ids[0])
    except NotFoundError:
        return
    assert hist[-1].event == "DELETE", [(h.version, h.event, h.text) for h in hist]


def test_touch_slides_expiry_without_a_new_version(tmp_path, embedder):
    with MemoryEngine(tmp_path / "db", embedder=embedder) as engine:
        long_text = " ".join(f"Sliding sentence {i} about a renewable detail." for i in range(60))
        slid = engine.add(raw_text=long_text, expiry_seconds=3)
        other = engine.add(raw_text="Renewable detail that is left to expire", expiry_seconds=3)
        assert slid.original_chunks > 1
        assert engine.touch([slid.memory_id, "unknown-id"], 3600) == [slid.memory_id]
        time.sleep(3.3)  # generous: past the original expiry on a loaded machine
        item = engine.get(slid.memory_id)
        assert item.version == 1 and item.expires_at is not None
        with pytest.raises(NotFoundError):
            engine.get(other.memory_id)
        # The chunks slid with their memory: search still finds them, through the lexical index too.
        hits = engine.search("renewable detail sliding sentence", k=20).results
        assert hits and {h.parent_id or h.id for h in hits} == {slid.memory_id}
        with pytest.raises(ValidationError):
            engine.touch([slid.memory_id], 0)
