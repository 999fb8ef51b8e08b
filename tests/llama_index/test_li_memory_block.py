"""MemAdaptersMemoryBlock inside LlamaIndex's ``Memory`` (with our chat store and with SQL)."""

from __future__ import annotations

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.memory import Memory
from llama_index.core.storage.chat_store.base_db import MessageStatus
from llama_index.memory.mem_adapters import MemAdaptersAsyncChatStore, MemAdaptersMemoryBlock

FACTS = [
    "My sister Lena lives in Lisbon",
    "I work as a marine biologist",
    "I am training for the Berlin marathon",
    "My cat is called Pixel",
]


def turns() -> list[ChatMessage]:
    out = []
    for fact in FACTS:
        out += [ChatMessage(role="user", content=fact), ChatMessage(role="assistant", content="Got it.")]
    return out


def small_memory(block: MemAdaptersMemoryBlock, **kw) -> Memory:
    # Tiny budgets so that a few messages overflow the short-term queue into the block.
    return Memory.from_defaults(
        session_id="s1", token_limit=60, chat_history_token_ratio=0.5, token_flush_size=10,
        memory_blocks=[block], **kw,
    )  # fmt: skip


async def test_block_with_mem_adapters_chat_store_records_once_and_recalls(engine):
    store = MemAdaptersAsyncChatStore(engine=engine, user_id="u1")
    block = MemAdaptersMemoryBlock(engine=engine, user_id="u1")
    memory = small_memory(block, chat_store=store)
    for m in turns():
        await memory.aput(m)
    archived = await store.count_messages("s1", status=MessageStatus.ARCHIVED)
    assert archived > 0  # the queue overflowed
    # The block saw the flushed messages already archived by the store: no second copy.
    assert engine.count_turns("s1") == len(turns())
    shown = await memory.aget(input="Where does my sister live?")
    assert shown[0].role.value == "system"
    assert "Lisbon" in shown[0].content and "<mem_adapters_memories>" in shown[0].content
    # Recall holds only flushed (archived) turns: the active queue is already in the history.
    active = [m.content for m in await store.get_messages("s1") if m.role.value == "user"]
    assert not any(f in shown[0].content for f in active)


async def test_block_with_sql_chat_store_records_flushed_messages(engine):
    block = MemAdaptersMemoryBlock(engine=engine, user_id="u1")
    memory = small_memory(block)  # Memory's default SQLAlchemyChatStore
    for m in turns():
        await memory.aput(m)
    archived = engine.get_messages("s1", status="archived")
    assert archived and all(a.user_id == "u1" for a in archived)
    assert [a.text for a in archived] == [m.content for m in turns()[: len(archived)]]
    # The session tag BaseMemoryBlock.aput adds is not stored.
    assert all("session_id" not in a.metadata["li_message"]["additional_kwargs"] for a in archived)
    found = await block.aget(
        [ChatMessage(role="user", content="Where does my sister live?")], session_id="s1"
    )
    assert found.split("\n")[0].endswith("My sister Lena lives in Lisbon")


async def test_aget_excludes_the_active_queue_and_other_users(engine):
    engine.remember(
        [{"role": "user", "text": "My sister Lena lives in Lisbon"}], session_id="x", user_id="u2"
    )
    store = MemAdaptersAsyncChatStore(engine=engine, user_id="u1")
    await store.add_messages("s1", [ChatMessage(role="user", content="My sister lives in Porto")])
    block = MemAdaptersMemoryBlock(engine=engine, user_id="u1")
    assert await block.aget([ChatMessage(role="user", content="sister city")], session_id="s1") == ""
    await store.archive_oldest_messages("s1", 1)
    got = await block.aget([ChatMessage(role="user", content="sister city")], session_id="s1")
    assert "Porto" in got and "Lisbon" not in got


async def test_atruncate_drops_least_relevant_lines(engine):
    block = MemAdaptersMemoryBlock(engine=engine, user_id="u1")
    content = "best memory\nsecond memory\nworst memory"
    assert await block.atruncate(content, 1) == "best memory\nsecond memory"
    assert await block.atruncate(content, 4) == "best memory"
    assert await block.atruncate(content, 1000) is None
    assert await block.atruncate(content, 0) == content


async def test_priority_controls_truncation_in_memory(engine):
    engine.remember([{"role": "user", "text": f} for f in FACTS], session_id="old", user_id="u1")
    query = [ChatMessage(role="user", content="Tell me about my family, job, sport and pet " * 3)]

    async def shown(priority: int) -> str:
        block = MemAdaptersMemoryBlock(engine=engine, user_id="u1", priority=priority, similarity_top_k=4)
        memory = Memory.from_defaults(session_id=f"p{priority}", token_limit=70, memory_blocks=[block])
        await memory.aset(query)
        got = await memory.aget()
        return got[0].content if got[0].role.value == "system" else ""

    untouched, trimmed = await shown(0), await shown(1)
    assert all(f in untouched for f in FACTS)  # priority 0: never truncated
    kept = [f for f in FACTS if f in trimmed]
    assert 0 < len(kept) < len(FACTS)
