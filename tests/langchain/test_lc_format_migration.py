"""A chat history written by format 2's LangChain adapter (release 83683fb) after the upgrade.

Format 2 stored each message under ``lc:{session}:{message.id}``; today's history sends
``message.id`` as the caller id. The fixture (``tests/fixtures/store-v2-langchain/``, made by
``tests/fixtures/make_store_v2_langchain.py`` with that release) is copied, opened with this
code, and its messages are sent again exactly as they were sent then.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, messages_from_dict
from langchain_mem_adapters import MemAdaptersChatMessageHistory

from mem_adapters import MemoryEngine

FIXTURES = Path(__file__).parents[1] / "fixtures"
MANIFEST = json.loads((FIXTURES / "store-v2-langchain.json").read_text(encoding="utf-8"))


@pytest.fixture
def old_store(tmp_path, embedder):
    path = tmp_path / "store"
    shutil.copytree(FIXTURES / "store-v2-langchain", path)
    eng = MemoryEngine(path, embedder=embedder, enricher=None)
    yield eng
    eng.close()


def _sessions():
    for s in MANIFEST["sessions"]:
        yield s["session_id"], s["user_id"], messages_from_dict(s["messages"])


def test_old_messages_read_back_with_their_ids_as_caller_ids(old_store):
    for session_id, user_id, sent in _sessions():
        history = MemAdaptersChatMessageHistory(session_id, engine=old_store, user_id=user_id)
        assert history.messages == sent
        turns = old_store.get_messages(session_id, user_id=user_id)
        for turn, message in zip(turns, sent, strict=True):
            if message.id is not None:
                assert turn.caller_id == message.id  # not "lc:{session}:{id}"
                assert turn.id == f"lc:{session_id}:{message.id}"  # the stored id is kept


def test_resending_old_messages_after_the_upgrade_stores_nothing(old_store):
    before = {s: len(old_store.get_messages(s, user_id=u)) for s, u, _ in _sessions()}
    for session_id, user_id, sent in _sessions():
        history = MemAdaptersChatMessageHistory(session_id, engine=old_store, user_id=user_id)
        history.add_messages([m for m in sent if m.id is not None])
        assert history.messages == sent
    assert {s: len(old_store.get_messages(s, user_id=u)) for s, u, _ in _sessions()} == before


def test_an_old_id_reused_for_another_message_is_still_refused(old_store):
    from mem_adapters import ValidationError

    history = MemAdaptersChatMessageHistory("chat-1", engine=old_store, user_id="alice")
    with pytest.raises(ValidationError):
        history.add_messages([HumanMessage("Something else entirely.", id="m1")])


def test_the_delimiter_neighbour_format_2_refused_is_stored_now(old_store):
    history = MemAdaptersChatMessageHistory("a", engine=old_store, user_id="bob")
    history.add_messages([HumanMessage("Its neighbour in the old id scheme.", id="b:c")])
    assert [m.content for m in history.messages] == ["Its neighbour in the old id scheme."]
    old = MemAdaptersChatMessageHistory("a:b", engine=old_store, user_id="bob")
    assert [m.content for m in old.messages] == ["A session with a delimiter in it."]


def _lg_records(engine: MemoryEngine) -> dict[str, dict]:
    pair = engine.run(engine.aengine.collections("default", create=False))
    got = engine.run(pair[0].get_all(where={"m.lg_store": True}, include=["metadatas"]))
    return dict(zip(got["ids"], got["metadatas"], strict=True))


def test_old_store_items_get_their_namespace_user_and_erase_reaches_them(old_store):
    from langchain_mem_adapters import MemAdaptersStore

    store = MemAdaptersStore(old_store)  # today's default: the user is the namespace's first label
    puts = MANIFEST["puts"]
    assert store.get(("alice", "prefs"), "food").value == puts[1]["value"]
    assert store.get(("bob", "prefs"), "drink").value == puts[2]["value"]
    assert (
        MemAdaptersStore(old_store, scopes={"user_id": 1}).get(("memories", "carol"), "pet").value
        == puts[4]["value"]
    )
    users = {m["kind"] + ":" + m["m.lg_ns0"]: m["user_id"] for m in _lg_records(old_store).values()}
    assert users == {"raw:alice": "alice", "chunk:alice": "alice", "raw:bob": "bob", "raw:memories": "carol"}
    assert [h.event for h in old_store.history(_stored_id(old_store, "alice", "food"))] == ["ADD", "UPDATE"]

    receipt = old_store.erase(user_id="alice")

    assert receipt.memories == 2 and receipt.history >= 1
    assert store.get(("alice", "prefs"), "food") is None and store.get(("alice", "notes"), "long") is None
    assert {m["user_id"] for m in _lg_records(old_store).values()} == {"bob", "carol"}
    assert store.get(("bob", "prefs"), "drink").value == puts[2]["value"]


def _stored_id(engine: MemoryEngine, user: str, key: str) -> str:
    (rid,) = [i for i, m in _lg_records(engine).items() if m["user_id"] == user and m["kind"] == "raw"
              and json.loads(m["meta"])["lg_key"] == key]  # fmt: skip
    return rid


def test_a_put_after_the_upgrade_updates_the_old_item_in_place(old_store):
    from langchain_mem_adapters import MemAdaptersStore

    store = MemAdaptersStore(old_store)
    old_id = _stored_id(old_store, "bob", "drink")
    store.put(("bob", "prefs"), "drink", {"text": "Bob switched to green tea."})
    assert [i.value for i in store.search(("bob", "prefs"))] == [{"text": "Bob switched to green tea."}]
    assert _stored_id(old_store, "bob", "drink") == old_id
