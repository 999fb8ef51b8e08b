"""Adapters' lifecycle: typed ClosedError after close (theirs or the engine's), ``with`` and
``async with`` blocks, and an adapter-built engine closed with its adapter."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage
from langchain_mem_adapters import MemAdaptersChatMessageHistory, MemAdaptersRetriever, MemAdaptersStore
from langgraph.store.base import PutOp

from mem_adapters import AsyncMemoryEngine, ClosedError, MemoryEngine


def _adapters(engine):  # type: ignore[no-untyped-def]
    return (
        MemAdaptersStore(engine),
        MemAdaptersRetriever(engine=engine, k=2),
        MemAdaptersChatMessageHistory("s1", engine=engine),
    )


def test_every_adapter_raises_closed_error_after_engine_close(tmp_path, embedder):
    engine = MemoryEngine(tmp_path / "s", embedder=embedder)
    store, retriever, history = _adapters(engine)
    store.put(("m",), "k", {"text": "hello"})
    history.add_messages([HumanMessage("hi")])
    engine.close()
    calls = [
        lambda: store.put(("m",), "k2", {"text": "x"}),
        lambda: store.get(("m",), "k"),
        lambda: store.search(("m",), query="hello"),
        lambda: store.batch([PutOp(("m",), "k3", {"text": "y"})]),
        lambda: store.list_namespaces(),
        lambda: retriever.invoke("hello"),
        lambda: history.messages,
        lambda: history.add_messages([HumanMessage("again")]),
        lambda: history.clear(),
    ]
    for call in calls:
        with pytest.raises(ClosedError):
            call()


async def test_async_methods_raise_closed_error_after_engine_close(tmp_path, embedder):
    engine = MemoryEngine(tmp_path / "s", embedder=embedder)
    store, retriever, history = _adapters(engine)
    engine.close()
    with pytest.raises(ClosedError):
        await store.aput(("m",), "k", {"text": "x"})
    with pytest.raises(ClosedError):
        await store.asearch(("m",), query="x")
    with pytest.raises(ClosedError):
        await retriever.ainvoke("x")
    with pytest.raises(ClosedError):
        await history.aget_messages()


async def test_adapters_over_a_closed_async_engine_raise_closed_error(tmp_path, embedder):
    aengine = AsyncMemoryEngine(tmp_path / "s", embedder=embedder)
    store, retriever, history = _adapters(aengine)
    await store.aput(("m",), "k", {"text": "x"})
    await aengine.aclose()
    with pytest.raises(ClosedError):
        await store.aget(("m",), "k")
    with pytest.raises(ClosedError):
        await retriever.ainvoke("x")
    with pytest.raises(ClosedError):
        await history.aadd_messages([HumanMessage("x")])


def test_with_block_closes_the_adapter_but_not_an_injected_engine(engine):
    store, retriever, history = _adapters(engine)
    for adapter in (store, retriever, history):
        with adapter as same:
            assert same is adapter
        with pytest.raises(ClosedError, match=type(adapter).__name__), adapter:
            pass
        adapter.close()  # idempotent
    with pytest.raises(ClosedError):
        store.get(("m",), "k")
    with pytest.raises(ClosedError):
        retriever.invoke("x")
    with pytest.raises(ClosedError):
        history.add_messages([HumanMessage("x")])
    # The engine was passed in: it serves on, and so do new adapters over it.
    assert not engine.closed
    MemAdaptersStore(engine).put(("m",), "k", {"text": "still open"})


def test_with_block_closes_an_engine_the_adapter_built(tmp_path, embedder):
    kwargs = {"path": tmp_path / "own", "engine_kwargs": {"embedder": embedder}}
    with MemAdaptersStore(**kwargs) as store:
        store.put(("m",), "k", {"text": "kept"})
    assert store.engine.closed
    with MemAdaptersRetriever(**kwargs) as retriever:
        assert len(retriever.invoke("kept")) == 1
    assert retriever.engine.closed
    with MemAdaptersChatMessageHistory("s1", **kwargs) as history:
        history.add_messages([HumanMessage("hi")])
    assert history.engine.closed
    with pytest.raises(ClosedError):
        history.messages  # noqa: B018


async def test_async_with_blocks(tmp_path, embedder):
    kwargs = {"path": tmp_path / "own", "engine_kwargs": {"embedder": embedder}}
    async with MemAdaptersStore(**kwargs) as store:
        await store.aput(("m",), "k", {"text": "kept"})
        assert (await store.aget(("m",), "k")).value == {"text": "kept"}
    assert store.engine.closed
    with pytest.raises(ClosedError):
        await store.aget(("m",), "k")
    async with MemAdaptersChatMessageHistory("s1", **kwargs) as history:
        await history.aadd_messages([HumanMessage("hi")])
        assert await history.aget_messages() == [HumanMessage("hi")]
    async with MemAdaptersRetriever(**kwargs) as retriever:
        assert len(await retriever.ainvoke("hi")) == 2
    with pytest.raises(ClosedError):
        await retriever.ainvoke("hi")
