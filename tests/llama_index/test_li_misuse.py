"""Misuse gets typed errors at construction or at the call: empty ids, bad counts, non-messages.
Scores are documented for what they are: fused ranking values, with the cosine in score_parts."""

from __future__ import annotations

import pytest
from llama_index.core.base.llms.types import ChatMessage
from llama_index.memory.mem_adapters import (
    MemAdaptersAsyncChatStore,
    MemAdaptersChatStore,
    MemAdaptersMemory,
    MemAdaptersMemoryBlock,
    MemAdaptersRetriever,
)

from mem_adapters import ValidationError

HI = ChatMessage(role="user", content="I love hiking")


@pytest.mark.parametrize("bad", ["", "   ", 0])
def test_empty_ids_are_typed_errors_at_construction(engine, bad):
    builds = {
        "session_id": [
            lambda: MemAdaptersMemory(engine, session_id=bad),
            lambda: MemAdaptersMemory.from_defaults(engine=engine, session_id=bad),  # not a fresh uuid
            lambda: MemAdaptersMemoryBlock(engine, session_id=bad),
            lambda: MemAdaptersRetriever(engine, session_id=bad),
        ],
        "user_id": [
            lambda: MemAdaptersMemory(engine, user_id=bad),
            lambda: MemAdaptersChatStore(engine, user_id=bad),
            lambda: MemAdaptersAsyncChatStore(engine, user_id=bad),
            lambda: MemAdaptersMemoryBlock(engine, user_id=bad),
            lambda: MemAdaptersRetriever(engine, user_id=bad),
        ],
        "tenant_id": [
            lambda: MemAdaptersMemory(engine, tenant_id=bad),
            lambda: MemAdaptersChatStore(engine, tenant_id=bad),
            lambda: MemAdaptersMemoryBlock(engine, tenant_id=bad),
            lambda: MemAdaptersRetriever(engine, tenant_id=bad),
        ],
    }
    for field, calls in builds.items():
        for build in calls:
            with pytest.raises(ValidationError) as err:
                build()
            assert err.value.field == field


def test_an_absent_session_id_still_picks_a_fresh_one(engine):
    a = MemAdaptersMemory.from_defaults(engine=engine)
    b = MemAdaptersMemory.from_defaults(engine=engine, session_id=None)
    assert a.session_id and b.session_id and a.session_id != b.session_id


@pytest.mark.parametrize("bad", [0, -1, True, False, 2.0, "3", None])
def test_counts_are_checked_at_construction(engine, bad):
    builds = [
        ("similarity_top_k", lambda: MemAdaptersRetriever(engine, similarity_top_k=bad)),
        ("similarity_top_k", lambda: MemAdaptersMemory(engine, similarity_top_k=bad)),
        ("similarity_top_k", lambda: MemAdaptersMemoryBlock(engine, similarity_top_k=bad)),
        ("retrieval_context_window", lambda: MemAdaptersMemoryBlock(engine, retrieval_context_window=bad)),
    ]
    for field, build in builds:
        with pytest.raises(ValidationError) as err:
            build()
        assert err.value.field == field


async def test_putting_a_non_message_is_a_typed_error_and_writes_nothing(engine):
    memory = MemAdaptersMemory(engine, session_id="s1")
    sync_calls = [
        lambda: memory.put("I love hiking"),  # type: ignore[arg-type]
        lambda: memory.put_messages("I love hiking"),  # type: ignore[arg-type]
        lambda: memory.put_messages(HI),  # type: ignore[arg-type]
        lambda: memory.put_messages([HI, "and biking"]),  # type: ignore[list-item]
        lambda: memory.set(["x"]),  # type: ignore[list-item]
        lambda: MemAdaptersChatStore(engine).add_message("s1", "x"),  # type: ignore[arg-type]
        lambda: MemAdaptersChatStore(engine).set_messages("s1", [{"role": "user", "content": "x"}]),  # type: ignore[list-item]
    ]
    for call in sync_calls:
        with pytest.raises(ValidationError):
            call()
    with pytest.raises(ValidationError):
        await memory.aput("I love hiking")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        await MemAdaptersAsyncChatStore(engine).add_messages("s1", ["x"])  # type: ignore[list-item]
    assert memory.get_all() == []


def test_sending_messages_again_appends_them_again(engine):
    # What the README says: appends are appends, as in LlamaIndex's own chat stores.
    memory = MemAdaptersMemory(engine, session_id="s1")
    memory.put_messages([HI])
    memory.put_messages([HI])
    assert memory.get_all() == [HI, HI]


def test_node_scores_are_fused_values_and_score_parts_carry_the_cosine(engine):
    engine.remember(
        [{"role": "user", "text": "I love hiking in the Alps"}, {"role": "user", "text": "My cat is Pixel"}],
        session_id="s1",
        user_id="u1",
    )
    nodes = MemAdaptersRetriever(engine, user_id="u1", similarity_top_k=2).retrieve("mountain walks")
    hits = engine.search("mountain walks", user_id="u1", k=2).results
    assert [n.node.node_id for n in nodes] == [h.id for h in hits]
    for node, hit in zip(nodes, hits, strict=True):
        parts = node.node.metadata["score_parts"]
        assert node.score == hit.score == parts["fused"]
        assert parts["cosine"] == hit.score_parts.cosine
        assert "score_parts" in node.node.excluded_llm_metadata_keys
