"""What is particular to the adapters over the service client (the adapter suites themselves run
over a client too: tests/adapter_backends.py). A real `mem-adapters serve` on loopback, no mocks."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("langchain_mem_adapters")
pytest.importorskip("llama_index.memory.mem_adapters")

from adapter_backends import adapter_service, client_for, new_tenant, token
from langchain_core.messages import AIMessage, HumanMessage
from langchain_mem_adapters import MemAdaptersChatMessageHistory, MemAdaptersRetriever, MemAdaptersStore
from llama_index.core.base.llms.types import ChatMessage
from llama_index.memory.mem_adapters import (
    MemAdaptersChatStore,
    MemAdaptersMemory,
)
from llama_index.memory.mem_adapters import (
    MemAdaptersRetriever as LiRetriever,
)

from mem_adapters import ClosedError, MemAdaptersError
from mem_adapters.client import AsyncMemoryClient, MemoryClient, PermissionDeniedError

__all__ = ["adapter_service"]


@pytest.fixture
def client(adapter_service):
    with client_for(adapter_service) as c:
        yield c


def test_an_app_points_its_adapters_at_the_service_with_engine_equals_client(client):
    history = MemAdaptersChatMessageHistory("chat-1", engine=client, user_id="dana")
    history.add_messages([HumanMessage("I'm allergic to shellfish."), AIMessage("Noted.")])
    assert [m.content for m in MemAdaptersChatMessageHistory("chat-1", engine=client).messages] == [
        "I'm allergic to shellfish.",
        "Noted.",
    ]
    docs = MemAdaptersRetriever(engine=client, user_id="dana", k=1).invoke("what food to avoid?")
    assert docs[0].page_content == "I'm allergic to shellfish."
    memory = MemAdaptersMemory(engine=client, session_id="chat-2", user_id="dana")
    memory.put(ChatMessage(role="user", content="Book me a flight"))
    assert "shellfish" in memory.get("dinner ideas?")[0].content  # recalled from chat-1
    # The writes went to the service: the same tenant seen through another client.
    with MemoryClient(client.base_url, token=client._http.headers["Authorization"][7:]) as other:
        assert other.count_turns("chat-1") == 2 and other.count_turns("chat-2") == 1


def test_adapters_over_a_closed_client_raise_closed_error(adapter_service):
    client = client_for(adapter_service)
    history = MemAdaptersChatMessageHistory("s", engine=client)
    store = MemAdaptersStore(client)
    chat_store = MemAdaptersChatStore(engine=client)
    history.add_messages([HumanMessage("hi")])
    client.close()
    with pytest.raises(ClosedError):
        _ = history.messages
    with pytest.raises(ClosedError):
        store.get(("u1",), "k")
    with pytest.raises(ClosedError):
        chat_store.get_messages("s")
    with pytest.raises(ClosedError):
        client.get_messages("s")


async def test_an_async_client_serves_async_methods_only(adapter_service):
    async with AsyncMemoryClient(adapter_service.url, token=token(new_tenant())) as ac:
        history = MemAdaptersChatMessageHistory("s", engine=ac)
        await history.aadd_messages([HumanMessage("hello from async")])
        assert [m.content for m in await history.aget_messages()] == ["hello from async"]
        with pytest.raises(MemAdaptersError, match="async"):
            history.add_messages([HumanMessage("sync")])
        store = MemAdaptersStore(ac)
        await store.aput(("u1", "notes"), "k", {"text": "async store"})
        assert (await store.aget(("u1", "notes"), "k")).value == {"text": "async store"}
        chat = MemAdaptersChatStore(engine=ac)
        assert [m.content for m in await chat.aget_messages("s")] == ["hello from async"]


def test_the_tenant_is_the_credentials(adapter_service):
    tenant = new_tenant()
    with client_for(adapter_service, tenant) as client:
        # Naming the credential's own tenant works; another tenant is refused by the service.
        mine = MemAdaptersChatMessageHistory("s", engine=client, tenant_id=tenant)
        mine.add_messages([HumanMessage("in my tenant")])
        assert [m.content for m in MemAdaptersChatMessageHistory("s", engine=client).messages] == [
            "in my tenant"
        ]
        with pytest.raises(PermissionDeniedError):
            MemAdaptersChatMessageHistory("s", engine=client, tenant_id="someone-else").add_messages(
                [HumanMessage("x")]
            )
        with pytest.raises(PermissionDeniedError):
            MemAdaptersStore(client, tenant_id="someone-else").put(("u",), "k", {"text": "x"})
    with client_for(adapter_service) as stranger:  # another tenant sees none of it
        assert MemAdaptersChatMessageHistory("s", engine=stranger).messages == []


def test_llama_index_adapters_serialise_the_service_url_and_reconnect(client, adapter_service):
    memory = MemAdaptersMemory.from_defaults(engine=client, user_id="u", session_id="s")
    memory.put(ChatMessage(role="user", content="remember me"))
    data = memory.to_dict()
    assert data["service_url"] == client.base_url and data["path"] is None
    secret = client._http.headers["Authorization"].removeprefix("Bearer ")
    assert secret not in str(data) and "Bearer" not in str(data)  # credentials are never serialised
    restored = MemAdaptersMemory.from_dict(data)
    assert [m.content for m in restored.get_all()] == ["remember me"]
    assert restored.engine is client
    # A second open client of the same service (perhaps another tenant's): which credential
    # to use is ambiguous, so a deserialised adapter refuses rather than guess.
    with client_for(adapter_service) as other:
        MemAdaptersChatStore(engine=other)
        with pytest.raises(MemAdaptersError, match="2 open clients"):
            MemAdaptersMemory.from_dict(data).get_all()
    client.close()
    with pytest.raises(MemAdaptersError, match="no open MemoryClient"):
        MemAdaptersMemory.from_dict(data).get_all()


def test_the_store_pages_past_the_services_search_limit(client):
    store = MemAdaptersStore(client)
    for i in range(6):
        store.put(("u1", "docs"), f"k{i}", {"text": f"note number {i} about gardening"})
    hits = store.search(("u1",), query="gardening", limit=500)  # the service's k is at most 200
    assert sorted(h.key for h in hits) == [f"k{i}" for i in range(6)]


def test_an_identical_retry_of_an_engine_add_writes_nothing(client):
    first = client.add(raw_text="kept once", memory_id="m1", user_id="u1", index=False, metadata={"a": 1})
    again = client.add(raw_text="kept once", memory_id="m1", user_id="u1", index=False, metadata={"a": 1})
    assert again.memory_id == first.memory_id == "m1"
    stored = first.record_id or first.memory_id
    assert [h.event for h in client.history(stored)] == ["ADD"]
    changed = client.add(raw_text="kept twice", memory_id="m1", user_id="u1", index=False)
    assert [h.event for h in client.history(changed.record_id or changed.memory_id)] == ["ADD", "UPDATE"]


def test_client_engine_methods_the_adapters_use(client):
    res = client.remember(
        [{"role": "user", "text": "one"}, {"role": "user", "text": "two"}], session_id="s", user_id="u1"
    )
    client.remember([{"role": "user", "text": "bob's"}], session_id="s", user_id="u2")
    ids = res.active_ids
    assert [i.text for i in client.get_many([ids[1], "nope", ids[0]])] == ["two", "one"]
    assert client.get_many([]) == []
    assert client.set_status([ids[0]], "archived") == [ids[0]]
    assert client.count_turns("s") == 3 and client.count_turns("s", status="archived") == 1
    assert client.touch([ids[1]], 3600) == [ids[1]]
    assert client.clear_session("s", user_id="u1") == 2
    assert [t.text for t in client.get_messages("s")] == ["bob's"]
    assert client.delete_many(["nope"]) == []
    vectors = client.embed(["a", "b"])
    assert len(vectors) == 2 and len(vectors[0]) == len(client.embed_query("a")) == 384


def test_a_non_engine_is_refused(client):
    with pytest.raises(MemAdaptersError, match="MemoryClient"):
        MemAdaptersChatMessageHistory("s", engine=object())  # type: ignore[arg-type]
    with pytest.raises(MemAdaptersError, match="MemoryClient"):
        LiRetriever(object())  # type: ignore[arg-type]
