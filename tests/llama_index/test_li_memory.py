"""MemAdaptersMemory: BaseMemory contract (vs ChatMemoryBuffer), recall injection, serialisation."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from li_helpers import rich_messages
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.memory import ChatMemoryBuffer
from llama_index.memory.mem_adapters import MemAdaptersMemory, is_memory_message


def msg(text: str, role: str = "user") -> ChatMessage:
    return ChatMessage(role=role, content=text)


def dump(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    return [m.model_dump(mode="json") for m in messages]


def sync_sequence(memory: Any) -> list[Any]:
    out: list[Any] = []
    add = lambda v: out.append(dump(v))  # noqa: E731
    add(memory.get_all())
    add(memory.get())
    memory.put(msg("hi"))
    memory.put(msg("hi"))
    memory.put_messages([msg("hello", "assistant"), msg("how are you?")])
    add(memory.get_all())
    add(memory.get())
    memory.set([msg("reset history"), msg("ok", "assistant")])
    add(memory.get_all())
    memory.reset()
    add(memory.get_all())
    return out


async def async_sequence(memory: Any) -> list[Any]:
    out: list[Any] = []
    add = lambda v: out.append(dump(v))  # noqa: E731
    add(await memory.aget_all())
    memory_msgs = rich_messages()
    await memory.aput(memory_msgs[1])
    await memory.aput_messages(memory_msgs[2:])
    add(await memory.aget_all())
    add(await memory.aget())
    await memory.aset([msg("reset history"), msg("ok", "assistant")])
    add(await memory.aget_all())
    await memory.areset()
    add(await memory.aget_all())
    return out


def test_sync_methods_match_chat_memory_buffer(engine):
    expected = sync_sequence(ChatMemoryBuffer.from_defaults(token_limit=100_000))
    assert sync_sequence(MemAdaptersMemory.from_defaults(engine=engine, token_limit=100_000)) == expected


async def test_async_methods_match_chat_memory_buffer(engine):
    expected = await async_sequence(ChatMemoryBuffer.from_defaults(token_limit=100_000))
    got = await async_sequence(MemAdaptersMemory.from_defaults(engine=engine, token_limit=100_000))
    assert got == expected


async def test_async_methods_with_an_async_engine(aengine):
    expected = await async_sequence(ChatMemoryBuffer.from_defaults(token_limit=100_000))
    assert await async_sequence(MemAdaptersMemory(engine=aengine, token_limit=100_000)) == expected


def test_token_limit_trims_like_chat_memory_buffer(engine):
    history = [msg("one two three four five"), msg("six seven eight", "assistant"), msg("nine ten"),
               msg("eleven twelve thirteen", "assistant"), msg("fourteen")]  # fmt: skip
    for limit in (1, 4, 8, 12, 100):
        ref = ChatMemoryBuffer.from_defaults(chat_history=history, token_limit=limit)
        ours = MemAdaptersMemory.from_defaults(engine=engine, chat_history=history, token_limit=limit)
        assert dump(ours.get()) == dump(ref.get()), limit


async def test_initial_token_count_counts_like_chat_memory_buffer(engine):
    history = [msg("one two three four five"), msg("six seven eight", "assistant"), msg("nine ten"),
               msg("eleven twelve thirteen", "assistant"), msg("fourteen")]  # fmt: skip
    ours = MemAdaptersMemory.from_defaults(engine=engine, chat_history=history, token_limit=12)
    ref = ChatMemoryBuffer.from_defaults(chat_history=history, token_limit=12)
    for initial in (0, 3, 6, 9, 12):
        assert dump(ours.get(initial_token_count=initial)) == dump(ref.get(initial_token_count=initial))
        assert dump(await ours.aget(initial_token_count=initial)) == dump(
            ref.get(initial_token_count=initial)
        )
    with pytest.raises(ValueError, match="Initial token count exceeds token limit"):
        ref.get(initial_token_count=13)
    with pytest.raises(ValueError, match="Initial token count exceeds token limit"):
        ours.get(initial_token_count=13)
    with pytest.raises(ValueError, match="Initial token count exceeds token limit"):
        await ours.aget(initial_token_count=13)


async def test_first_async_use_builds_the_engine_off_the_callers_loop(tmp_path, monkeypatch):
    import llama_index.memory.mem_adapters._engine as engine_module

    real = engine_module.shared_engine
    built_in: list[threading.Thread] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        built_in.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(engine_module, "shared_engine", spy)
    memory = MemAdaptersMemory(path=str(tmp_path / "lazy"), session_id="s")
    await memory.aput(msg("hello"))
    assert [m.content for m in await memory.aget_all()] == ["hello"]
    # Loading the model and opening Chroma happened in a worker thread, not on this loop.
    assert len(built_in) == 1 and built_in[0] is not threading.current_thread()


def test_chat_history_in_from_defaults(engine):
    memory = MemAdaptersMemory.from_defaults(engine=engine, session_id="s", chat_history=[msg("a"), msg("b")])
    assert [m.content for m in memory.get_all()] == ["a", "b"]
    assert [m.content for m in MemAdaptersMemory(engine=engine, session_id="s").get_all()] == ["a", "b"]


def test_empty_memory_is_truthy(engine):
    memory = MemAdaptersMemory.from_defaults(engine=engine)
    assert memory.get_all() == []
    assert bool(memory) is True
    assert (memory or "default") is memory


def seed_other_session(engine) -> None:
    old = MemAdaptersMemory.from_defaults(engine=engine, user_id="alice", session_id="old")
    old.put_messages([msg("I am severely allergic to peanuts"), msg("Noted, no peanuts.", "assistant")])
    other_user = MemAdaptersMemory.from_defaults(engine=engine, user_id="bob", session_id="bob-1")
    other_user.put(msg("I am allergic to shellfish"))


def test_recalled_memories_are_injected_as_a_system_message(engine):
    seed_other_session(engine)
    memory = MemAdaptersMemory.from_defaults(engine=engine, user_id="alice", session_id="new")
    memory.put(msg("What snack should I buy?"))
    got = memory.get()
    assert is_memory_message(got[0]) and got[0].role == MessageRole.SYSTEM
    assert "allergic to peanuts" in got[0].content
    assert "shellfish" not in got[0].content  # another user's memory never leaks
    assert "What snack" not in got[0].content  # this session's turns are the history, not recall
    assert dump(got[1:]) == dump(memory.get_all())


def test_recall_respects_the_memory_token_limit(engine):
    seed_other_session(engine)
    memory = MemAdaptersMemory.from_defaults(engine=engine, user_id="alice", session_id="new")
    generous = memory.get("peanuts")[0].content
    assert generous.count("\n[") == 2  # both turns of the old session
    budget = len(memory.tokenizer_fn(generous)) - 3
    tight = MemAdaptersMemory.from_defaults(
        engine=engine, user_id="alice", session_id="new", memory_token_limit=budget
    ).get("peanuts")
    assert len(memory.tokenizer_fn(tight[0].content)) <= budget
    assert tight[0].content.count("\n[") == 1
    assert (
        MemAdaptersMemory(engine=engine, user_id="alice", session_id="new", memory_token_limit=5).get(
            "peanuts"
        )
        == []
    )


def test_no_recall_without_user_id(engine):
    seed_other_session(engine)
    memory = MemAdaptersMemory.from_defaults(engine=engine, session_id="anon")
    assert memory.get("peanuts") == []


async def test_injected_message_is_never_written_back(engine):
    seed_other_session(engine)
    memory = MemAdaptersMemory.from_defaults(engine=engine, user_id="alice", session_id="new")
    await memory.aput(msg("peanut butter?"))
    shown = await memory.aget()
    assert is_memory_message(shown[0])
    await memory.aset(shown)
    memory.set(shown)
    await memory.aput(shown[0])
    memory.put_messages(shown)
    stored = await memory.aget_all()
    assert not any(is_memory_message(m) for m in stored)
    assert [m.content for m in stored] == ["peanut butter?", "peanut butter?"]


@pytest.mark.engine_only("reconnects by the engine's folder; client: test_adapters_over_client.py")
def test_to_dict_from_dict_reconnects_lazily(engine):
    memory = MemAdaptersMemory.from_defaults(engine=engine, user_id="u", session_id="s", token_limit=123)
    memory.put(msg("persisted"))
    data = memory.to_dict()
    assert data["path"] == str(engine.path) and data["session_id"] == "s" and "tokenizer_fn" not in data
    restored = MemAdaptersMemory.from_dict(data)
    assert restored._handle is None  # nothing connects before first use
    assert restored.token_limit == 123 and restored.user_id == "u"
    assert [m.content for m in restored.get_all()] == ["persisted"]


async def test_user_insert_method_prepends_to_latest_user_message(engine):
    seed_other_session(engine)
    memory = MemAdaptersMemory.from_defaults(
        engine=engine, user_id="alice", session_id="new", insert_method="user"
    )
    await memory.aput_messages([msg("earlier q"), msg("earlier a", "assistant"), msg("peanut snacks?")])
    shown = await memory.aget()
    assert [m.role.value for m in shown] == ["user", "assistant", "user"]
    assert is_memory_message(shown[2]) and not is_memory_message(shown[0])
    assert "allergic to peanuts" in shown[2].content and shown[2].content.endswith("peanut snacks?")
    await memory.aset(shown)  # written back: the memories are stripped, the question kept
    assert dump(await memory.aget_all()) == dump(
        [msg("earlier q"), msg("earlier a", "assistant"), msg("peanut snacks?")]
    )
