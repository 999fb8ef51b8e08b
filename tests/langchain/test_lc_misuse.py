"""Misuse gets typed errors: a str namespace, empty ids, bad k, at the call or construction."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage
from langchain_mem_adapters import MemAdaptersChatMessageHistory, MemAdaptersRetriever, MemAdaptersStore
from langgraph.store.base import GetOp, PutOp, SearchOp
from langgraph.store.base import InvalidNamespaceError as LangGraphNamespaceError

from mem_adapters import InvalidNamespaceError, ValidationError


def test_a_str_namespace_is_an_invalid_namespace_error_everywhere(engine):
    store = MemAdaptersStore(engine)
    calls = [
        lambda: store.put("memories", "k", {"text": "x"}),
        lambda: store.get("memories", "k"),
        lambda: store.delete("memories", "k"),
        lambda: store.search("memories", query="x"),
        lambda: store.search("memories"),
        lambda: store.list_namespaces(prefix="memories"),
        lambda: store.list_namespaces(suffix="memories"),
        lambda: store.batch([PutOp("memories", "k", {"text": "x"})]),  # type: ignore[arg-type]
        lambda: store.batch([GetOp("memories", "k")]),  # type: ignore[arg-type]
        lambda: store.batch([SearchOp("memories")]),  # type: ignore[arg-type]
        lambda: store.put(("a", 1), "k", {"text": "x"}),  # type: ignore[arg-type]
    ]
    for call in calls:
        with pytest.raises(InvalidNamespaceError) as err:
            call()
        assert err.value.field == "namespace" or "namespace" in str(err.value)
        assert isinstance(err.value, LangGraphNamespaceError)  # LangGraph's own class too
        assert isinstance(err.value, ValidationError)
    assert store.search(()) == []  # nothing was stored under ('m', 'e', 'm', ...)
    with pytest.raises(InvalidNamespaceError, match=r"did you mean \('memories',\)"):
        calls[0]()


async def test_a_str_namespace_is_refused_by_the_async_methods_too(engine):
    store = MemAdaptersStore(engine)
    with pytest.raises(InvalidNamespaceError):
        await store.aput("memories", "k", {"text": "x"})
    with pytest.raises(InvalidNamespaceError):
        await store.asearch("memories", query="x")
    with pytest.raises(InvalidNamespaceError):
        await store.alist_namespaces(prefix="memories")
    assert await store.asearch(()) == []


def test_a_list_namespace_still_works(engine):
    store = MemAdaptersStore(engine)
    store.put(["memories", "u1"], "k", {"text": "x"})  # type: ignore[arg-type]
    assert store.get(("memories", "u1"), "k").value == {"text": "x"}


@pytest.mark.parametrize("bad", ["", "  ", 0, None])
def test_empty_ids_are_typed_errors_at_construction(engine, bad):
    with pytest.raises(ValidationError, match="tenant_id"):
        MemAdaptersStore(engine, tenant_id=bad)
    with pytest.raises(ValidationError, match="tenant_id"):
        MemAdaptersRetriever(engine=engine, tenant_id=bad)
    with pytest.raises(ValidationError, match="session_id"):
        MemAdaptersChatMessageHistory(bad, engine=engine)
    if bad is not None:  # None means "no such scope" for the optional ids
        with pytest.raises(ValidationError, match="user_id"):
            MemAdaptersRetriever(engine=engine, user_id=bad)
        with pytest.raises(ValidationError, match="session_id"):
            MemAdaptersRetriever(engine=engine, session_id=bad)
        with pytest.raises(ValidationError, match="user_id"):
            MemAdaptersChatMessageHistory("s1", engine=engine, user_id=bad)
        with pytest.raises(ValidationError, match="agent_id"):
            MemAdaptersChatMessageHistory("s1", engine=engine, agent_id=bad)


@pytest.mark.parametrize("bad", [0, -1, True, False, 2.0, "3", None])
def test_retriever_k_is_checked_at_construction(engine, bad):
    with pytest.raises(ValidationError) as err:
        MemAdaptersRetriever(engine=engine, k=bad)
    assert err.value.field == "k"


def test_retriever_invoke_time_k_is_checked(engine):
    engine.remember([{"role": "user", "text": "hello"}], session_id="s1")
    retriever = MemAdaptersRetriever(engine=engine, k=3)
    for bad in (0, True, "2"):
        with pytest.raises(ValidationError):
            retriever.invoke("hello", k=bad)
    assert [d.page_content for d in retriever.invoke("hello", k=1)] == ["hello"]


def test_history_put_of_a_non_message_is_a_typed_error(engine):
    history = MemAdaptersChatMessageHistory("s1", engine=engine)
    for bad in ("hello", [HumanMessage("ok"), "hello"], [{"role": "user", "content": "x"}]):
        with pytest.raises(ValidationError):
            history.add_messages(bad)  # type: ignore[arg-type]
    assert history.messages == []
