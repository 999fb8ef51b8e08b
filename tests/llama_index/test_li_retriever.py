"""MemAdaptersRetriever: BaseRetriever contract, metadata, scoping, query engine use."""

from __future__ import annotations

import pytest
from li_helpers import rich_messages
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from llama_index.memory.mem_adapters import MemAdaptersChatStore, MemAdaptersRetriever


def seed(engine) -> None:
    engine.remember(
        [{"role": "user", "text": "I adopted a greyhound named Comet", "metadata": {"topic": "pets"}},
         {"role": "user", "text": "My favourite food is ramen", "metadata": {"topic": "food"}}],
        session_id="s1", user_id="u1",
    )  # fmt: skip
    engine.remember([{"role": "user", "text": "I have a parrot called Kiwi"}], session_id="s2", user_id="u2")
    engine.add(raw_text="Comet the greyhound was adopted in 2023 from a shelter", user_id="u1")


def test_retrieve_returns_scored_nodes_with_metadata(engine):
    seed(engine)
    nodes = MemAdaptersRetriever(engine, user_id="u1", similarity_top_k=3).retrieve("what dog do I have?")
    assert nodes and all(isinstance(n, NodeWithScore) and isinstance(n.node, TextNode) for n in nodes)
    assert "greyhound" in nodes[0].node.get_content()
    scores = [n.score for n in nodes]
    assert scores == sorted(scores, reverse=True)
    turn = next(n for n in nodes if n.node.metadata["kind"] == "turn")
    md = turn.node.metadata
    assert md["user_id"] == "u1" and md["session_id"] == "s1" and md["role"] == "user"
    assert md["topic"] == "pets" and md["memory_id"] == turn.node.node_id and md["timestamp"]
    assert {n.node.metadata["kind"] for n in nodes} >= {"turn", "raw"}
    assert all(n.node.metadata["user_id"] == "u1" for n in nodes)  # u2's parrot never shows


async def test_aretrieve_matches_retrieve(engine):
    seed(engine)
    retriever = MemAdaptersRetriever(engine, user_id="u1", similarity_top_k=3)
    sync = [(n.node.node_id, n.score) for n in retriever.retrieve("favourite food")]
    got = [(n.node.node_id, n.score) for n in await retriever.aretrieve(QueryBundle("favourite food"))]
    assert got == sync and got


def test_filters_kinds_and_session_scope(engine):
    seed(engine)
    only_turns = MemAdaptersRetriever(engine, user_id="u1", kinds=["turn"]).retrieve("greyhound")
    assert {n.node.metadata["kind"] for n in only_turns} == {"turn"}
    food = MemAdaptersRetriever(engine, filters={"topic": "food"}).retrieve("animals")
    assert [n.node.get_content() for n in food] == ["My favourite food is ramen"]
    s2 = MemAdaptersRetriever(engine, session_id="s2").retrieve("pets")
    assert [n.node.get_content() for n in s2] == ["I have a parrot called Kiwi"]


def test_chat_store_messages_retrieve_without_the_stored_json(engine):
    MemAdaptersChatStore(engine=engine).add_message("c", rich_messages()[6])
    node = MemAdaptersRetriever(engine, session_id="c").retrieve("sunny weather")[0].node
    assert node.get_content() == "sunny, 21C"
    assert "li_message" not in node.metadata and "li_source" not in node.metadata


@pytest.mark.engine_only("builds an engine from the engine's folder")
def test_lazy_engine_from_path(engine):
    seed(engine)
    engine_path = str(engine.path)
    retriever = MemAdaptersRetriever(path=engine_path, user_id="u1")
    assert retriever.retrieve("ramen")[0].node.get_content() == "My favourite food is ramen"


async def test_in_a_retriever_query_engine(engine):
    seed(engine)
    query_engine = RetrieverQueryEngine.from_args(MemAdaptersRetriever(engine, user_id="u1"), llm=MockLLM())
    response = await query_engine.aquery("What is my dog called?")
    assert any("Comet" in n.node.get_content() for n in response.source_nodes)
    assert "Comet" in str(response)  # MockLLM echoes its prompt, which holds the retrieved context
