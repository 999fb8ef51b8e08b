"""Chat store conformance: the same call sequences against LlamaIndex's own stores and ours.

``MemAdaptersChatStore`` is compared with ``SimpleChatStore`` (the reference ``BaseChatStore``)
and ``MemAdaptersAsyncChatStore`` with ``SQLAlchemyChatStore`` on sqlite+aiosqlite (the
reference ``AsyncDBChatStore``, the default store of ``Memory``).
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from adapter_backends import in_tenant
from li_helpers import PDF, PNG, rich_messages
from llama_index.core.base.llms.types import ChatMessage, DocumentBlock, ImageBlock
from llama_index.core.storage.chat_store import SimpleChatStore
from llama_index.core.storage.chat_store.base_db import MessageStatus
from llama_index.core.storage.chat_store.sql import SQLAlchemyChatStore
from llama_index.memory.mem_adapters import MemAdaptersAsyncChatStore, MemAdaptersChatStore

ACTIVE, ARCHIVED = MessageStatus.ACTIVE, MessageStatus.ARCHIVED


def msg(text: str, role: str = "user") -> ChatMessage:
    return ChatMessage(role=role, content=text)


def dump(value: Any) -> Any:
    """Comparable form of a store result (messages as JSON, lists recursively)."""
    if isinstance(value, ChatMessage):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [dump(v) for v in value]
    return value


# ---------------------------------------------------------------- BaseChatStore


def sync_sequence(store: Any) -> list[Any]:
    """Every BaseChatStore method, including the absent-key and out-of-range cases."""
    out: list[Any] = []
    add = lambda v: out.append(dump(v))  # dump now: SimpleChatStore returns live lists  # noqa: E731
    store.set_messages("k1", [msg("a"), msg("b", "assistant"), msg("c")])
    add(store.get_messages("k1"))
    store.add_message("k1", msg("d", "assistant"))
    store.add_message("k1", msg("d", "assistant"))  # duplicates are kept
    add(store.get_messages("k1"))
    add(store.delete_message("k1", 1))
    add(store.delete_message("k1", 99))
    add(store.get_messages("k1"))
    add(store.delete_last_message("k1"))
    add(store.get_messages("k1"))
    store.add_message("k2", msg("e"))
    add(sorted(store.get_keys()))
    add(store.delete_messages("k2"))
    add(store.delete_messages("k2"))
    add(sorted(store.get_keys()))
    add(store.get_messages("missing"))
    add(store.delete_message("missing", 0))
    add(store.delete_last_message("missing"))
    store.set_messages("k1", [msg("z")])
    add(store.get_messages("k1"))
    return out


async def async_sequence(store: Any) -> list[Any]:
    """The same sequence through the async methods (``async_add_message`` etc.)."""
    out: list[Any] = []
    add = lambda v: out.append(dump(v))  # dump now: SimpleChatStore returns live lists  # noqa: E731
    await store.aset_messages("k1", [msg("a"), msg("b", "assistant"), msg("c")])
    add(await store.aget_messages("k1"))
    await store.async_add_message("k1", msg("d", "assistant"))
    await store.async_add_message("k1", msg("d", "assistant"))
    add(await store.aget_messages("k1"))
    add(await store.adelete_message("k1", 1))
    add(await store.adelete_message("k1", 99))
    add(await store.aget_messages("k1"))
    add(await store.adelete_last_message("k1"))
    add(await store.aget_messages("k1"))
    await store.async_add_message("k2", msg("e"))
    add(sorted(await store.aget_keys()))
    add(await store.adelete_messages("k2"))
    add(await store.adelete_messages("k2"))
    add(sorted(await store.aget_keys()))
    add(await store.aget_messages("missing"))
    add(await store.adelete_message("missing", 0))
    add(await store.adelete_last_message("missing"))
    await store.aset_messages("k1", [msg("z")])
    add(await store.aget_messages("k1"))
    return out


def test_sync_chat_store_matches_simple_chat_store(engine):
    expected = sync_sequence(SimpleChatStore())
    assert sync_sequence(MemAdaptersChatStore(engine=engine)) == expected


async def test_async_methods_match_simple_chat_store(engine):
    expected = await async_sequence(SimpleChatStore())
    with in_tenant(engine, "async") as (backend, tenant):
        assert await async_sequence(MemAdaptersChatStore(engine=backend, **tenant)) == expected


@pytest.mark.engine_only("reopens the store from the engine's folder")
def test_sync_chat_store_persists_across_instances(engine):
    MemAdaptersChatStore(engine=engine).set_messages("k", [msg("kept")])
    assert dump(MemAdaptersChatStore(path=str(engine.path)).get_messages("k")) == dump([msg("kept")])


def test_sync_chat_store_is_thread_safe(engine):
    store = MemAdaptersChatStore(engine=engine)
    barrier = threading.Barrier(6)

    def writer(w: int) -> None:
        barrier.wait()
        for i in range(5):
            store.add_message("shared", msg(f"w{w}-{i}"))

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(writer, range(6)))
    texts = [m.content for m in store.get_messages("shared")]
    assert sorted(texts) == sorted(f"w{w}-{i}" for w in range(6) for i in range(5))
    for w in range(6):  # each writer's own order survives interleaving
        mine = [t for t in texts if t.startswith(f"w{w}-")]
        assert mine == [f"w{w}-{i}" for i in range(5)]


async def test_sync_methods_from_worker_threads_do_not_block_each_other(engine):
    # BaseMemory's default async methods call sync ones via asyncio.to_thread.
    store = MemAdaptersChatStore(engine=engine)
    await asyncio.gather(*(asyncio.to_thread(store.add_message, "t", msg(str(i))) for i in range(8)))
    assert sorted(m.content for m in store.get_messages("t")) == sorted(str(i) for i in range(8))


# ---------------------------------------------------------------- AsyncDBChatStore


async def db_sequence(store: Any) -> list[Any]:
    """Every AsyncDBChatStore method with the FIFO queue semantics Memory relies on."""
    out: list[Any] = []
    add = lambda v: out.append(dump(v))  # dump now: SimpleChatStore returns live lists  # noqa: E731
    await store.add_message("k", msg("m1"))
    await store.add_messages("k", [msg("m2", "assistant"), msg("m3"), msg("m3")])
    add(await store.count_messages("k"))
    add(await store.get_messages("k"))
    add(await store.get_messages("k", limit=2, offset=1))
    add(await store.get_messages("k", offset=3))
    add(await store.archive_oldest_messages("k", 2))
    add([await store.count_messages("k", status=s) for s in (ACTIVE, ARCHIVED, None)])
    add(await store.get_messages("k", status=ARCHIVED))
    add(await store.get_messages("k", status=None))
    await store.add_message("k", msg("m5"), status=ARCHIVED)
    add(await store.get_messages("k", status=ARCHIVED))
    add(await store.get_messages("k", status=None, limit=3))
    add(await store.delete_oldest_messages("k", 1))  # active ones only
    add(await store.get_messages("k", status=None))
    add(await store.archive_oldest_messages("k", 10))
    add(await store.archive_oldest_messages("k", 10))
    add(await store.delete_oldest_messages("k", 3))
    await store.add_messages("k", [msg("m6")])
    await store.delete_messages("k", status=ARCHIVED)
    add(await store.get_messages("k", status=None))
    await store.add_messages("other", [msg("o1")])
    add(sorted(await store.get_keys()))
    await store.set_messages("k", [msg("s1"), msg("s2", "assistant")])
    add(await store.get_messages("k", status=None))
    await store.set_messages("k", [msg("s3")], status=ARCHIVED)
    add([await store.count_messages("k", status=s) for s in (ACTIVE, ARCHIVED)])
    await store.delete_messages("k")
    add(await store.count_messages("k", status=None))
    add(sorted(await store.get_keys()))
    add(await store.get_messages("missing", status=None))
    add(await store.count_messages("missing"))
    return out


async def test_async_db_chat_store_matches_sqlalchemy_chat_store(engine):
    expected = await db_sequence(SQLAlchemyChatStore(table_name="conformance"))
    assert await db_sequence(MemAdaptersAsyncChatStore(engine=engine)) == expected


async def test_async_db_chat_store_with_an_async_engine(aengine):
    expected = await db_sequence(SQLAlchemyChatStore(table_name="conformance_async"))
    assert await db_sequence(MemAdaptersAsyncChatStore(engine=aengine)) == expected


async def test_delete_message_takes_a_transcript_position(engine):
    # SQLAlchemyChatStore takes a row id; ours follows SimpleChatStore's positions.
    ours, ref = MemAdaptersAsyncChatStore(engine=engine), SimpleChatStore()
    for store_set in (ours.set_messages("k", [msg("a"), msg("b"), msg("c")]),):
        await store_set
    ref.set_messages("k", [msg("a"), msg("b"), msg("c")])
    assert dump(await ours.delete_message("k", 1)) == dump(ref.delete_message("k", 1))
    assert await ours.delete_message("k", 5) is None
    assert dump(await ours.get_messages("k", status=None)) == dump(ref.get_messages("k"))


# ---------------------------------------------------------------- lossless messages


@pytest.mark.parametrize("kind", ["sync", "async_db"])
async def test_every_block_type_round_trips_exactly(engine, kind):
    messages = rich_messages()
    if kind == "sync":
        store = MemAdaptersChatStore(engine=engine)
        for m in messages:
            await store.async_add_message("rt", m)
        got = store.get_messages("rt")
    else:
        db = MemAdaptersAsyncChatStore(engine=engine)
        await db.add_messages("rt", messages[:4])
        for m in messages[4:]:
            await db.add_message("rt", m)
        got = await db.get_messages("rt")
    assert got == messages
    assert dump(got) == dump(messages)
    image = next(b for m in got for b in m.blocks if isinstance(b, ImageBlock) and b.url is None)
    assert image.resolve_image().read() == PNG  # the raw bytes, not just equal models
    doc = next(b for m in got for b in m.blocks if isinstance(b, DocumentBlock))
    assert doc.resolve_document().read() == PDF
    assert got[5].additional_kwargs["tool_calls"][0]["id"] == "call_1"
    assert got[6].additional_kwargs["tool_call_id"] == "call_1"


def test_messages_are_searchable_by_text_content(engine):
    store = MemAdaptersChatStore(engine=engine, user_id="u1")
    store.set_messages("s", rich_messages())
    hits = engine.search("weather tool call for Paris", session_id="s", k=3).results
    assert any(h.metadata["li_message"]["role"] == "assistant" and "weather" in h.text for h in hits)
    assert all(h.user_id == "u1" for h in hits)


def test_turns_written_by_the_engine_read_as_messages(engine):
    engine.remember(
        [{"role": "user", "text": "plain turn"}, {"role": "Caroline", "text": "named speaker"}],
        session_id="e",
    )
    got = MemAdaptersChatStore(engine=engine).get_messages("e")
    assert [(m.role.value, m.content) for m in got] == [("user", "plain turn"), ("user", "named speaker")]
    assert got[1].additional_kwargs == {"speaker": "Caroline"}


@pytest.mark.server
async def test_async_db_chat_store_against_a_chroma_server(chroma_server):
    # Only host/port are given: the store creates (and shares) its engine lazily.
    host, port = chroma_server
    expected = await db_sequence(SQLAlchemyChatStore(table_name="conformance_server"))
    store = MemAdaptersAsyncChatStore(host=host, port=port, tenant_id="li-server")
    assert store._handle is None
    assert await db_sequence(store) == expected
    assert store.model_dump() == {
        "path": None, "host": host, "port": port, "tenant_id": "li-server", "user_id": None,
        "service_url": None,
    }  # fmt: skip
