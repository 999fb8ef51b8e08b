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
