"""LangChain message ids are caller ids: scoped per user and session by the engine."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_mem_adapters import MemAdaptersChatMessageHistory

from mem_adapters import ValidationError


def test_same_message_id_from_two_users_and_two_sessions_is_stored_for_each(engine):
    histories = {
        (user, session): MemAdaptersChatMessageHistory(session, engine=engine, user_id=user)
        for user in ("alice", "bob")
        for session in ("chat-1", "chat-2")
    }
    for (user, session), history in histories.items():
        history.add_messages([HumanMessage(f"{user} in {session}", id="msg-1")])
    for (user, session), history in histories.items():
        (message,) = history.messages
        assert (message.content, message.id) == (f"{user} in {session}", "msg-1")
    (turn,) = engine.get_messages("chat-1", user_id="alice")
    assert turn.caller_id == "msg-1" and turn.id != "msg-1"


def test_session_and_id_delimiters_do_not_collide(engine):
    # Format 2 stored "lc:{session}:{id}": session "a:b" + id "c" met session "a" + id "b:c".
    MemAdaptersChatMessageHistory("a:b", engine=engine).add_messages([HumanMessage("first", id="c")])
    MemAdaptersChatMessageHistory("a", engine=engine).add_messages([HumanMessage("second", id="b:c")])
    assert [m.content for m in MemAdaptersChatMessageHistory("a:b", engine=engine).messages] == ["first"]
    assert [m.content for m in MemAdaptersChatMessageHistory("a", engine=engine).messages] == ["second"]


def test_resent_and_repeated_messages_are_stored_once_but_a_reused_id_is_refused(engine):
    history = MemAdaptersChatMessageHistory("chat", engine=engine, user_id="u")
    hi = HumanMessage("hi", id="m1")
    history.add_messages([hi, hi, AIMessage("hello", id="m2")])
    history.add_messages([hi])
    assert [(m.content, m.id) for m in history.messages] == [("hi", "m1"), ("hello", "m2")]
    with pytest.raises(ValidationError):
        history.add_messages([HumanMessage("something else", id="m1")])
    with pytest.raises(ValidationError):  # two different messages under one id in one batch
        history.add_messages([HumanMessage("x", id="m3"), HumanMessage("y", id="m3")])
    assert len(history.messages) == 2
