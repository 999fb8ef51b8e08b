"""Adapters bound to a user: a call cannot widen the scope; reads, clears and deletes stay in it.

Alice and Bob share one session id (``chat-1``) in one tenant; every adapter bound to Alice
must leave Bob's messages alone and never return them.
"""

from __future__ import annotations

import pytest

from mem_adapters.errors import ValidationError

lc = pytest.importorskip("langchain_mem_adapters")
from langchain_core.messages import AIMessage, HumanMessage  # noqa: E402


def test_engine_clear_session_of_one_user(engine):
    engine.remember([{"role": "user", "text": "alice says hi"}], session_id="chat-1", user_id="alice")
    engine.remember([{"role": "user", "text": "bob says hi"}], session_id="chat-1", user_id="bob")
    assert engine.clear_session("chat-1", user_id="alice") == 1
    assert [m.text for m in engine.get_messages("chat-1")] == ["bob says hi"]
    with pytest.raises(ValidationError):
        engine.clear_session("chat-1", user_id=5)


def test_langchain_history_bound_to_alice_never_touches_bob(engine):
    alice = lc.MemAdaptersChatMessageHistory("chat-1", engine=engine, user_id="alice")
    bob = lc.MemAdaptersChatMessageHistory("chat-1", engine=engine, user_id="bob")
    alice.add_messages([HumanMessage("alice secret"), AIMessage("noted, alice")])
    bob.add_messages([HumanMessage("bob secret")])
    assert [m.content for m in alice.messages] == ["alice secret", "noted, alice"]
    assert [m.content for m in bob.messages] == ["bob secret"]
    alice.clear()
    assert alice.messages == []
    assert [m.content for m in bob.messages] == ["bob secret"]  # Bob's turns survive Alice's clear
    assert {m.user_id for m in engine.get_messages("chat-1")} == {"bob"}


def test_langchain_retriever_bound_to_alice_cannot_be_widened(engine):
    engine.remember([{"role": "user", "text": "alice likes hiking"}], session_id="a", user_id="alice")
    engine.remember([{"role": "user", "text": "bob likes hiking"}], session_id="b", user_id="bob")
    retriever = lc.MemAdaptersRetriever(engine=engine, user_id="alice", k=5)
    docs = retriever.invoke("hiking")
    assert docs and {d.metadata["user_id"] for d in docs} == {"alice"}
    for widened in (None, "bob"):
        with pytest.raises(ValidationError) as info:
            retriever.invoke("hiking", user_id=widened)
        assert info.value.field == "user_id"
    assert {d.metadata["user_id"] for d in retriever.invoke("hiking", user_id="alice")} == {"alice"}
    unbound = lc.MemAdaptersRetriever(engine=engine, k=5)  # not bound: a call may choose the user
    assert {d.metadata["user_id"] for d in unbound.invoke("hiking", user_id="bob")} == {"bob"}


def test_llama_index_chat_store_filters_by_its_user(engine):
    li = pytest.importorskip("llama_index.memory.mem_adapters")
    from llama_index.core.base.llms.types import ChatMessage

    alice = li.MemAdaptersChatStore(engine, user_id="alice")
    bob = li.MemAdaptersChatStore(engine, user_id="bob")
    alice.add_message("chat-1", ChatMessage(role="user", content="alice secret"))
    bob.add_message("chat-1", ChatMessage(role="user", content="bob secret"))
    alice.add_message("chat-1", ChatMessage(role="assistant", content="noted, alice"))
    assert [m.content for m in alice.get_messages("chat-1")] == ["alice secret", "noted, alice"]
    assert [m.content for m in bob.get_messages("chat-1")] == ["bob secret"]
    assert alice.delete_last_message("chat-1").content == "noted, alice"
    assert [m.content for m in bob.get_messages("chat-1")] == ["bob secret"]
    deleted = alice.delete_messages("chat-1")
    assert [m.content for m in deleted] == ["alice secret"]
    assert [m.content for m in bob.get_messages("chat-1")] == ["bob secret"]
    assert alice.get_keys() == [] and bob.get_keys() == ["chat-1"]
    alice.set_messages("chat-1", [ChatMessage(role="user", content="alice again")])  # replaces only hers
    assert [m.content for m in bob.get_messages("chat-1")] == ["bob secret"]
    assert [m.content for m in alice.get_messages("chat-1")] == ["alice again"]
