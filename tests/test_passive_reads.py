"""Turns stored with ``remember(write_active=False)`` (status ``"passive"``) are never read back by default.

They are enrichment input: the engine's ``list``, ``get_messages``, ``count_turns``,
``list_sessions`` and search leave them out (and so every adapter reading through them: the
LangChain chat history, the LlamaIndex chat stores); ``get(id)`` still finds one, and
``list(filters={"status": "passive"})`` lists them on purpose. Real embedded Chroma, real model.
"""

from __future__ import annotations

import pytest

from mem_adapters import MemoryEngine
from mem_adapters.enrichment import Enricher

PASSIVE = {"role": "user", "text": "I live in Paris.", "timestamp": "2024-01-01T10:00:00Z"}
CHAT = [
    {"role": "user", "text": "Book me a table for two.", "timestamp": "2024-01-02T10:00:00Z"},
    {"role": "assistant", "text": "Done, 8 pm.", "timestamp": "2024-01-02T10:00:05Z"},
]


@pytest.fixture
def eng(tmp_path, embedder):
    e = MemoryEngine(tmp_path / "pr", embedder=embedder, enricher=Enricher(backoff=0.01))
    yield e
    e.close()


@pytest.fixture
def written(eng):
    """A passive turn written first (the oldest), then two ordinary turns, same session and user."""
    passive = eng.remember([PASSIVE], session_id="s1", user_id="u1", write_active=False)
    (pid,) = passive.passive_ids
    chat = eng.remember(CHAT, session_id="s1", user_id="u1")
    assert eng.wait(passive.passive_job_id, timeout=120).status == "done"
    assert eng.wait(chat.passive_job_id, timeout=120).status == "done"
    # A session holding only a passive turn.
    only = eng.remember([{**PASSIVE, "text": "I work at a bakery."}], session_id="s2", user_id="u1",
                        write_active=False)  # fmt: skip
    assert eng.wait(only.passive_job_id, timeout=120).status == "done"
    return pid, chat.active_ids, only.passive_ids[0]


def test_engine_reads_leave_passive_turns_out(eng, written):
    pid, active, pid2 = written
    assert [t.id for t in eng.get_messages("s1")] == active
    assert [t.id for t in eng.get_messages("s1", user_id="u1")] == active
    assert [t.id for t in eng.get_messages("s1", limit=1)] == active[:1]
    assert [t.id for t in eng.get_messages("s1", status="active")] == active
    assert eng.get_messages("s2") == []
    assert eng.count_turns("s1") == 2 and eng.count_turns("s2") == 0
    assert eng.list_sessions(user_id="u1") == ["s1"]
    everything = eng.list(page_size=1000)
    ids = {i.id for i in everything.results}
    assert pid not in ids and pid2 not in ids and set(active) <= ids
    assert everything.count == len(everything.results)
    assert [t.id for t in eng.list(kinds=["turn"]).results] == active
    # Their facts are memories: listed and searched, citing the passive turn.
    facts = eng.list(kinds=["fact"], page_size=1000).results
    assert pid in {s for f in facts for s in f.source_ids}
    hits = eng.search("I live in Paris.", k=20).results
    assert hits and not {pid, pid2} & {h.id for h in hits}
    # By id (the documented way to reach them) and on purpose by status.
    assert eng.get(pid).status == "passive" and eng.get(pid).text == PASSIVE["text"]
    assert [i.id for i in eng.get_many([pid, active[0]])] == [pid, active[0]]
    assert {i.id for i in eng.list({"status": "passive"}).results} == {pid, pid2}
    assert [i.id for i in eng.list({"status": "active"}, kinds=["turn"]).results] == active


def test_trimming_the_oldest_turns_skips_passive_ones(eng, written):
    pid, active, _ = written
    assert eng.delete_oldest("s1", 1) == [active[0]]
    assert eng.get(pid).status == "passive"
    assert [t.id for t in eng.get_messages("s1")] == active[1:]


def test_langchain_chat_history_never_returns_passive_turns(eng, written):
    lc = pytest.importorskip("langchain_mem_adapters")
    history = lc.MemAdaptersChatMessageHistory("s1", engine=eng, user_id="u1")
    assert [m.content for m in history.messages] == [t["text"] for t in CHAT]
    assert lc.MemAdaptersChatMessageHistory("s2", engine=eng, user_id="u1").messages == []


async def test_llama_index_chat_stores_never_return_passive_turns(tmp_path, embedder):
    li = pytest.importorskip("llama_index.memory.mem_adapters")
    from mem_adapters import AsyncMemoryEngine

    eng = AsyncMemoryEngine(tmp_path / "li", embedder=embedder, enricher=Enricher(backoff=0.01))
    try:
        passive = await eng.remember([PASSIVE], session_id="s1", user_id="u1", write_active=False)
        await eng.remember(CHAT, session_id="s1", user_id="u1")
        await eng.remember([PASSIVE], session_id="s2", write_active=False)
        await eng.wait(passive.passive_job_id, timeout=120)
        texts = [t["text"] for t in CHAT]
        store = li.MemAdaptersAsyncChatStore(engine=eng)
        assert [m.content for m in await store.get_messages("s1", status=None)] == texts
        assert [m.content for m in await store.get_messages("s1")] == texts
        assert await store.count_messages("s1", status=None) == 2
        assert await store.get_messages("s2", status=None) == []
        sync_store = li.MemAdaptersChatStore(engine=eng)
        assert [m.content for m in await sync_store.aget_messages("s1")] == texts
        assert await sync_store.aget_messages("s2") == []
        assert await sync_store.aget_keys() == ["s1"]  # s2 holds a passive turn only
    finally:
        await eng.aclose()
