"""Adapters' lifecycle: ClosedError after close (the adapter's or the engine's), ``with`` and
``async with`` blocks that leave the engine open."""

from __future__ import annotations

import pytest
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.schema import QueryBundle
from llama_index.memory.mem_adapters import (
    MemAdaptersAsyncChatStore,
    MemAdaptersChatStore,
    MemAdaptersMemory,
    MemAdaptersMemoryBlock,
    MemAdaptersRetriever,
    close_shared_engines,
)

from mem_adapters import ClosedError, MemoryEngine

HI = ChatMessage(role="user", content="I love hiking")


def _adapters(engine):  # type: ignore[no-untyped-def]
    return {
        "memory": MemAdaptersMemory(engine, session_id="s1", user_id="u1"),
        "chat_store": MemAdaptersChatStore(engine),
        "async_chat_store": MemAdaptersAsyncChatStore(engine),
        "block": MemAdaptersMemoryBlock(engine, user_id="u1", session_id="s1"),
        "retriever": MemAdaptersRetriever(engine, user_id="u1"),
    }


def _sync_calls(a):  # type: ignore[no-untyped-def]
    return [
        lambda: a["memory"].get(),
        lambda: a["memory"].put(HI),
        lambda: a["memory"].get_all(),
        lambda: a["chat_store"].get_messages("s1"),
        lambda: a["chat_store"].add_message("s1", HI),
        lambda: a["chat_store"].get_keys(),
        lambda: a["retriever"].retrieve("hiking"),
    ]


async def _async_calls(a):  # type: ignore[no-untyped-def]
    calls = [
        a["memory"].aget(),
        a["memory"].aput(HI),
        a["chat_store"].aget_messages("s1"),
        a["async_chat_store"].get_messages("s1"),
        a["async_chat_store"].add_messages("s1", [HI]),
        a["block"].aget([HI], session_id="s1"),
        a["retriever"].aretrieve(QueryBundle("hiking")),
    ]
    for call in calls:
        with pytest.raises(ClosedError):
            await call


def test_every_adapter_raises_closed_error_after_engine_close(tmp_path, embedder):
    engine = MemoryEngine(tmp_path / "s", embedder=embedder)
    adapters = _adapters(engine)
    adapters["memory"].put(HI)
    engine.close()
    for call in _sync_calls(adapters):
        with pytest.raises(ClosedError):
            call()


async def test_every_adapter_raises_closed_error_after_engine_close_async(tmp_path, embedder):
    engine = MemoryEngine(tmp_path / "s", embedder=embedder)
    adapters = _adapters(engine)
    await adapters["memory"].aput(HI)
    engine.close()
    await _async_calls(adapters)


async def test_closed_adapters_raise_closed_error_and_leave_the_engine_open(engine):
    adapters = _adapters(engine)
    for adapter in adapters.values():
        with adapter as same:
            assert same is adapter
        adapter.close()  # idempotent
        with pytest.raises(ClosedError, match=type(adapter).__name__), adapter:
            pass
    for call in _sync_calls(adapters):
        with pytest.raises(ClosedError):
            call()
    await _async_calls(adapters)
    assert not engine.closed
    fresh = MemAdaptersMemory(engine, session_id="s1")
    fresh.put(HI)
    assert fresh.get_all() == [HI]


async def test_async_with_blocks(engine):
    async with MemAdaptersMemory(engine, session_id="s1") as memory:
        await memory.aput(HI)
        assert await memory.aget_all() == [HI]
    with pytest.raises(ClosedError):
        await memory.aget_all()
    async with MemAdaptersAsyncChatStore(engine) as store:
        assert await store.get_messages("s1") == [HI]
    async with MemAdaptersRetriever(engine) as retriever:
        assert [n.node.get_content() for n in await retriever.aretrieve("hiking")] == ["I love hiking"]
    with pytest.raises(ClosedError):
        await retriever.aretrieve("hiking")
    assert not engine.closed


def test_adapters_on_closed_shared_engines_raise_closed_error(tmp_path):
    memory = MemAdaptersMemory.from_defaults(path=str(tmp_path / "shared"), session_id="s1")
    memory.put(HI)
    close_shared_engines()
    with pytest.raises(ClosedError):
        memory.get_all()
    # A new adapter on the same settings gets a new shared engine.
    assert MemAdaptersMemory.from_defaults(path=str(tmp_path / "shared"), session_id="s1").get_all() == [HI]
