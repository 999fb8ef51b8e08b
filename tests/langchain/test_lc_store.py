"""MemAdaptersStore: LangGraph BaseStore semantics (differential against InMemoryStore),
semantic search through the engine, scopes, history, and a real LangGraph graph."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from adapter_backends import in_tenant
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.embeddings import Embeddings
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langchain_mem_adapters import MemAdaptersStore
from langchain_mem_adapters.store import memory_id
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.store.base import BaseStore, GetOp, InvalidNamespaceError, PutOp, SearchOp
from langgraph.store.memory import InMemoryStore

from mem_adapters import MemAdaptersError, ValidationError

# ---------------------------------------------------------------- differential vs InMemoryStore

NAMESPACES = [("a",), ("a", "b"), ("a", "c"), ("x", "b")]
LEAVES = [("a", "b"), ("a", "c"), ("x", "b")]  # prefixes that match exactly one namespace
FILTERS = [None, {"kind": "note"}, {"n": {"$gte": 2}}, {"n": 1}, {"kind": "todo", "n": {"$ne": 0}}]

values = st.fixed_dictionaries(
    {"kind": st.sampled_from(["note", "todo"]), "n": st.integers(0, 3),
     "text": st.sampled_from(["buy milk", "call mom", "ship the release"])}
)  # fmt: skip
ns_st = st.sampled_from(NAMESPACES)
key_st = st.sampled_from(["k1", "k2", "k3"])
ops_st = st.lists(
    st.one_of(
        st.tuples(st.just("put"), ns_st, key_st, values),
        st.tuples(st.just("put"), ns_st, key_st, values),
        st.tuples(st.just("delete"), ns_st, key_st),
        st.tuples(st.just("get"), ns_st, key_st),
        st.tuples(
            st.just("search"),
            st.sampled_from([("a",), ("x",), (), *LEAVES]),
            st.sampled_from(FILTERS),
            st.integers(1, 4),
            st.integers(0, 2),
        ),
        st.tuples(
            st.just("ls"),
            st.sampled_from([None, ("a",), ("*", "b")]),
            st.sampled_from([None, ("b",)]),
            st.sampled_from([None, 1]),
        ),
    ),
    min_size=1,
    max_size=10,
)


def view(items: list[Any]) -> list[tuple[tuple[str, ...], str, dict]]:
    return [(tuple(i.namespace), i.key, i.value) for i in items]


def namespaces_of(store: BaseStore, **kw: Any) -> list[tuple[str, ...]]:
    # InMemoryStore keeps a namespace after its last item is deleted (or after a mere get);
    # MemAdaptersStore lists namespaces that hold items. Compare against an InMemoryStore
    # rebuilt from the items that exist.
    fresh = InMemoryStore()
    for item in store.search((), limit=10_000):
        fresh.put(item.namespace, item.key, item.value)
    return fresh.list_namespaces(**kw)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=ops_st)
def test_same_results_as_in_memory_store(engine, ops):
    with in_tenant(engine, f"t-{uuid.uuid4().hex[:12]}") as (backend, tenant):
        _same_results(MemAdaptersStore(backend, **tenant), ops)


def _same_results(ours: MemAdaptersStore, ops: list[Any]) -> None:
    ref = InMemoryStore()
    for op in ops:
        if op[0] == "put":
            ours.put(op[1], op[2], op[3])
            ref.put(op[1], op[2], op[3])
        elif op[0] == "delete":
            ours.delete(op[1], op[2])
            ref.delete(op[1], op[2])
        elif op[0] == "get":
            a, b = ours.get(op[1], op[2]), ref.get(op[1], op[2])
            assert (a and view([a])) == (b and view([b]))
        elif op[0] == "search":
            _, prefix, filt, limit, offset = op
            if prefix in LEAVES:  # one namespace: same order, same page
                got = ours.search(prefix, filter=filt, limit=limit, offset=offset)
                want = ref.search(prefix, filter=filt, limit=limit, offset=offset)
                assert view(got) == view(want)
            else:  # several namespaces: the stores order namespaces differently
                got = ours.search(prefix, filter=filt, limit=100)
                want = ref.search(prefix, filter=filt, limit=100)
                assert sorted(view(got)) == sorted(view(want))
        else:
            _, prefix, suffix, depth = op
            kw = {"prefix": prefix, "suffix": suffix, "max_depth": depth}
            assert ours.list_namespaces(**kw) == namespaces_of(ref, **kw)


def test_batch_reads_see_state_before_its_writes_and_last_put_wins(engine):
    store = MemAdaptersStore(engine)
    ref = InMemoryStore()
    ops = [
        PutOp(("b",), "k", {"v": 1}),
        GetOp(("b",), "k"),
        SearchOp(("b",)),
        PutOp(("b",), "k", {"v": 2}),
    ]
    ours, theirs = store.batch(ops), ref.batch(ops)
    assert ours[1] is None and theirs[1] is None
    assert ours[2] == [] and theirs[2] == []
    assert store.get(("b",), "k").value == ref.get(("b",), "k").value == {"v": 2}


def test_created_at_survives_a_reput_and_updated_at_moves(engine):
    store = MemAdaptersStore(engine)
    store.put(("t",), "k", {"v": 1})
    first = store.get(("t",), "k")
    assert first.created_at == first.updated_at
    store.put(("t",), "k", {"v": 2})
    second = store.get(("t",), "k")
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at
    assert second.value == {"v": 2}
    store.delete(("t",), "k")
    store.put(("t",), "k", {"v": 3})
    assert store.get(("t",), "k").created_at > first.created_at
    # The search results carry the same timestamps as get.
    (hit,) = store.search(("t",))
    assert (hit.created_at, hit.updated_at) == (store.get(("t",), "k").created_at, hit.updated_at)


def test_reput_keeps_engine_history(engine):
    store = MemAdaptersStore(engine)
    store.put(("h",), "k", {"text": "v1"})
    store.put(("h",), "k", {"text": "v2"})
    store.delete(("h",), "k")
    events = [(e.version, e.event) for e in engine.history(memory_id(("h",), "k"))]
    assert events == [(1, "ADD"), (2, "UPDATE"), (2, "DELETE")]


def test_validation(engine):
    store = MemAdaptersStore(engine)
    with pytest.raises(InvalidNamespaceError):
        store.put(("bad.label",), "k", {"v": 1})
    with pytest.raises(InvalidNamespaceError):
        store.put((), "k", {"v": 1})
    with pytest.raises(ValidationError):
        store.put(("v",), "k", {"when": object()})
    with pytest.raises(ValidationError):
        store.put(("v",), "k", {"v": 1}, ttl=0)
    with pytest.raises(ValidationError):
        MemAdaptersStore(engine, scopes={"tenant_id": 0})
    assert store.get(("v",), "k") is None  # nothing was written by the failed puts


# ---------------------------------------------------------------- TTL


def test_ttl_minutes_become_the_engine_expiry(engine):
    store = MemAdaptersStore(engine)
    assert store.supports_ttl
    before = time.time()
    store.put(("t",), "k", {"text": "short lived"}, ttl=10)
    after = time.time()
    expires = engine.get(memory_id(("t",), "k")).expires_at.timestamp()
    assert before + 600 <= expires <= after + 600
    assert store.get(("t",), "k").value == {"text": "short lived"}
    # A re-put without ttl makes the item permanent again.
    store.put(("t",), "k", {"text": "kept"}, ttl=None)
    assert engine.get(memory_id(("t",), "k")).expires_at is None


def test_expired_items_vanish_from_every_read(engine):
    store = MemAdaptersStore(engine)
    store.put(("t", "a"), "gone", {"text": "ephemeral note about tea"}, ttl=0.002)  # 0.12 s
    store.put(("t", "b"), "kept", {"text": "permanent note about tea"})
    deadline = time.monotonic() + 5
    # Poll without refreshing: a refreshing read would restart the TTL it is waiting out.
    while store.get(("t", "a"), "gone", refresh_ttl=False) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.get(("t", "a"), "gone") is None
    assert [i.key for i in store.search(("t",), query="tea note")] == ["kept"]
    assert [i.key for i in store.search(("t",))] == ["kept"]
    assert store.list_namespaces(prefix=("t",)) == [("t", "b")]


def test_reads_with_refresh_ttl_restart_the_ttl(engine):
    store = MemAdaptersStore(engine)
    mid = memory_id(("r",), "k")
    store.put(("r",), "k", {"text": "renewable note"}, ttl=10)
    first = engine.get(mid).expires_at
    time.sleep(0.05)
    assert store.get(("r",), "k", refresh_ttl=False) is not None
    assert engine.get(mid).expires_at == first  # not refreshed
    assert store.get(("r",), "k") is not None  # refresh_ttl defaults to true
    second = engine.get(mid).expires_at
    assert second > first and engine.get(mid).version == 1  # slid, no new version
    time.sleep(0.05)
    assert [i.key for i in store.search(("r",), query="renewable note")] == ["k"]
    assert engine.get(mid).expires_at > second
    no_refresh = MemAdaptersStore(engine, ttl_config={"refresh_on_read": False})
    third = engine.get(mid).expires_at
    assert no_refresh.get(("r",), "k") is not None
    assert engine.get(mid).expires_at == third


def test_ttl_config_default_ttl_applies_when_a_put_gives_none(engine):
    store = MemAdaptersStore(engine, ttl_config={"default_ttl": 5})
    store.put(("d",), "default", {"v": 1})
    store.put(("d",), "explicit", {"v": 2}, ttl=None)
    assert engine.get(memory_id(("d",), "default")).metadata["lg_ttl_min"] == 5
    assert "lg_ttl_min" not in engine.get(memory_id(("d",), "explicit")).metadata
    with pytest.raises(ValidationError):
        MemAdaptersStore(engine, ttl_config={"default_ttl": -1})


def test_bad_ttl_in_a_batch_writes_nothing(engine):
    store = MemAdaptersStore(engine)
    with pytest.raises(ValidationError):
        store.batch([PutOp(("b",), "ok", {"v": 1}), PutOp(("b",), "bad", {"v": 2}, ttl=-3)])
    assert store.search(("b",)) == []


# ---------------------------------------------------------------- semantic search


DOCS = {
    "py": {"text": "Python tutorial for beginners", "lang": "python"},
    "ts": {"text": "TypeScript guide to generics", "lang": "typescript"},
    "bread": {"text": "Baking sourdough bread at home", "lang": "none"},
}


def put_docs(store: MemAdaptersStore, ns: tuple[str, ...] = ("docs",)) -> None:
    for key, value in DOCS.items():
        store.put(ns, key, value)


def test_semantic_search_ranks_by_meaning(engine):
    store = MemAdaptersStore(engine)
    put_docs(store)
    hits = store.search(("docs",), query="learn python programming")
    assert hits[0].key == "py"
    assert sorted(h.key for h in hits) == ["bread", "py", "ts"]
    assert all(h.score is not None and -1.0 <= h.score <= 1.0 for h in hits)
    assert store.search(("docs",), query="how do I make bread?", limit=1)[0].key == "bread"


class _Embeddings(Embeddings):
    """The engine's embedder as LangChain ``Embeddings``, for InMemoryStore's index."""

    def __init__(self, embedder: Any) -> None:
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.embed_query(text)


def test_scores_are_cosine_similarities_comparable_with_in_memory_store(engine, embedder):
    ours = MemAdaptersStore(engine, index_fields=["text"])
    ref = InMemoryStore(index={"dims": 384, "embed": _Embeddings(embedder), "fields": ["text"]})
    for store in (ours, ref):
        put_docs(store)
        store.put(("docs",), "pasta", {"text": "Cooking fresh pasta with tomato sauce", "lang": "none"})
    for query in ("learn python programming", "what should I cook tonight?", "typed generics"):
        got = {h.key: h.score for h in ours.search(("docs",), query=query)}
        want = {h.key: h.score for h in ref.search(("docs",), query=query)}
        assert got.keys() == want.keys()
        for key, score in got.items():
            assert score == pytest.approx(want[key], abs=1e-4), (query, key)


def test_search_keeps_the_engines_order_and_scores_with_its_cosine(engine):
    with in_tenant(engine, "t-order") as (backend, tenant):
        store = MemAdaptersStore(backend, **tenant)
        put_docs(store)
        store.put(("docs",), "py2", {"text": "python python python snake", "lang": "python"})
        query = "python tutorial"
        hits = store.search(("docs",), query=query)
        ranked = backend.search(query, kinds=["raw", "chunk"], k=10, **tenant).results
    assert [memory_id(h.namespace, h.key) for h in hits] == [r.metadata["lg_id"] for r in ranked]
    assert all(r.score_parts is not None and r.score_parts.cosine is not None for r in ranked)
    assert [h.score for h in hits] == [r.score_parts.cosine for r in ranked]


def test_semantic_search_respects_prefix_filter_and_paging(engine):
    store = MemAdaptersStore(engine)
    put_docs(store, ("docs", "u1"))
    put_docs(store, ("docs", "u2"))
    hits = store.search(("docs", "u1"), query="python")
    assert {h.namespace for h in hits} == {("docs", "u1")}
    hits = store.search(("docs",), query="python", filter={"lang": "python"})
    assert sorted(h.namespace for h in hits) == [("docs", "u1"), ("docs", "u2")]
    assert all(h.key == "py" for h in hits)
    page1 = store.search(("docs", "u1"), query="python", limit=1)
    page2 = store.search(("docs", "u1"), query="python", limit=2, offset=1)
    assert [h.key for h in page1 + page2] == [h.key for h in store.search(("docs", "u1"), query="python")]


def test_index_false_items_are_kept_out_of_scoring_but_still_returned(engine):
    store = MemAdaptersStore(engine)
    put_docs(store)
    store.put(("docs",), "secret", {"text": "Python tutorial for beginners, advanced"}, index=False)
    hits = store.search(("docs",), query="python tutorial", limit=10)
    assert [h.key for h in hits][-1] == "secret" and hits[-1].score is None
    assert all(h.score is not None for h in hits[:-1])
    assert "secret" not in [h.key for h in store.search(("docs",), query="python tutorial", limit=3)]
    assert store.get(("docs",), "secret").value["text"].startswith("Python")
    assert "secret" in [h.key for h in store.search(("docs",))]
    # Stored by the engine with index=False: never among its own search results either.
    secret = memory_id(("docs",), "secret")
    assert secret not in [r.id for r in engine.search("python tutorial beginners", k=50).results]
    # Re-put with the default index: now it is embedded and scored like the others.
    store.put(("docs",), "secret", {"text": "Python tutorial for beginners, advanced"})
    hits = store.search(("docs",), query="python tutorial", limit=10)
    assert "secret" in [h.key for h in hits] and all(h.score is not None for h in hits)


def test_items_with_no_text_at_their_index_paths_are_unscored_fill(engine):
    store = MemAdaptersStore(engine, index_fields=["title"])
    store.put(("r",), "a", {"title": "Cooking pasta", "body": "Boil water, add salt."})
    store.put(("r",), "b", {"body": "Pasta recipes with tomato sauce."})  # no title to embed
    store.put(("r",), "c", {"body": "More pasta."}, index=False)
    hits = store.search(("r",), query="pasta", limit=5)
    assert [(h.key, h.score is None) for h in hits] == [("a", False), ("b", True), ("c", True)]
    assert [h.key for h in store.search(("r",), query="pasta", limit=2)] == ["a", "b"]
    assert [h.key for h in store.search(("r",), query="pasta", limit=5, filter={"body": "More pasta."})] == [
        "c"
    ]


def test_index_fields_choose_the_embedded_text(engine):
    store = MemAdaptersStore(engine, index_fields=["title"])
    store.put(("r",), "a", {"title": "Cooking pasta", "body": "Boil water, add salt."})
    store.put(("r",), "b", {"title": "Tax returns", "body": "File before April."}, index=["body"])
    assert engine.get(memory_id(("r",), "a")).text == "Cooking pasta"
    assert engine.get(memory_id(("r",), "b")).text == "File before April."


def test_long_values_are_chunked_and_found_once(engine):
    store = MemAdaptersStore(engine)
    filler = " ".join(f"Sentence number {i} talks about gardening and tomatoes." for i in range(60))
    store.put(("long",), "garden", {"text": filler + " The secret ingredient is smoked paprika."})
    store.put(("long",), "other", {"text": "Notes about car maintenance."})
    hits = store.search(("long",), query="smoked paprika secret ingredient", limit=5)
    assert [h.key for h in hits].count("garden") == 1
    assert hits[0].key == "garden" and hits[0].value["text"].endswith("smoked paprika.")


def test_scopes_map_namespace_levels_to_engine_scopes(engine):
    store = MemAdaptersStore(engine, scopes={"user_id": 1})
    store.put(("memories", "u1"), "food", {"text": "allergic to shellfish"})
    store.put(("memories", "u2"), "food", {"text": "loves shellfish"})
    (hit,) = engine.search("shellfish", user_id="u1", k=5).results
    assert hit.metadata["lg_id"] == memory_id(("memories", "u1"), "food")
    engine.erase(user_id="u1")
    assert store.get(("memories", "u1"), "food") is None
    assert store.get(("memories", "u2"), "food").value == {"text": "loves shellfish"}


async def test_async_api_with_an_async_engine(aengine):
    store = MemAdaptersStore(aengine)
    await store.aput(("docs",), "py", DOCS["py"])
    await store.aput(("docs",), "bread", DOCS["bread"])
    assert (await store.aget(("docs",), "py")).value == DOCS["py"]
    assert (await store.asearch(("docs",), query="sourdough"))[0].key == "bread"
    assert await store.alist_namespaces() == [("docs",)]
    await store.adelete(("docs",), "py")
    assert await store.aget(("docs",), "py") is None
    with pytest.raises(MemAdaptersError):
        store.get(("docs",), "bread")


async def test_async_api_with_a_sync_engine(engine):
    store = MemAdaptersStore(engine)
    await store.aput(("n",), "k", {"v": 1})
    assert store.get(("n",), "k").value == {"v": 1}
    assert (await store.aget(("n",), "k")).value == {"v": 1}


# ---------------------------------------------------------------- a real LangGraph graph


def build_graph(store: BaseStore, model: GenericFakeChatModel, prompts: list[list]):
    def call_model(state: MessagesState, config: RunnableConfig, *, store: BaseStore) -> dict:
        user = config["configurable"]["user_id"]
        ns = ("memories", user)
        last = state["messages"][-1].text
        if last.lower().startswith("remember"):
            store.put(ns, str(uuid.uuid4()), {"text": last.split(":", 1)[1].strip()})
        hits = store.search(ns, query=last, limit=3)
        system = SystemMessage("Known about the user:\n" + "\n".join(h.value["text"] for h in hits))
        prompts.append([system, *state["messages"]])
        return {"messages": [model.invoke([system, *state["messages"]])]}

    graph = StateGraph(MessagesState).add_node("call_model", call_model).add_edge(START, "call_model")
    return graph.compile(checkpointer=InMemorySaver(), store=store)


def test_langgraph_agent_uses_the_store_as_long_term_memory(engine):
    store = MemAdaptersStore(engine, scopes={"user_id": 1})
    prompts: list[list] = []
    model = GenericFakeChatModel(messages=iter(["Noted.", "Avoid shrimp.", "No idea."]))
    graph = build_graph(store, model, prompts)
    u1 = {"configurable": {"thread_id": "t1", "user_id": "u1"}}
    graph.invoke({"messages": [HumanMessage("Remember: I am allergic to shellfish")]}, u1)
    # A new thread: only long-term memory can carry the fact over.
    u1_new = {"configurable": {"thread_id": "t2", "user_id": "u1"}}
    out = graph.invoke({"messages": [HumanMessage("What should I avoid at a seafood place?")]}, u1_new)
    assert out["messages"][-1] == AIMessage("Avoid shrimp.", id=out["messages"][-1].id)
    assert "allergic to shellfish" in prompts[1][0].text
    assert len(out["messages"]) == 2  # thread t2 did not see thread t1's messages
    # Another user does not see u1's memories.
    graph.invoke({"messages": [HumanMessage("What do you know about me?")]},
                 {"configurable": {"thread_id": "t3", "user_id": "u2"}})  # fmt: skip
    assert "shellfish" not in prompts[2][0].text
    assert store.list_namespaces(prefix=("memories",)) == [("memories", "u1")]


async def test_langgraph_agent_async(engine):
    store = MemAdaptersStore(engine)

    async def call_model(state: MessagesState, config: RunnableConfig, *, store: BaseStore) -> dict:
        ns = ("memories", config["configurable"]["user_id"])
        await store.aput(ns, f"m{len(await store.asearch(ns))}", {"text": state["messages"][-1].text})
        hits = await store.asearch(ns, query=state["messages"][-1].text, limit=5)
        return {"messages": [AIMessage(f"I remember {len(hits)} things")]}

    graph = (
        StateGraph(MessagesState)
        .add_node("call_model", call_model)
        .add_edge(START, "call_model")
        .compile(store=store)
    )
    cfg = {"configurable": {"user_id": "u9"}}
    await graph.ainvoke({"messages": [HumanMessage("I like tea")]}, cfg)
    out = await graph.ainvoke({"messages": [HumanMessage("I like chess")]}, cfg)
    assert out["messages"][-1].text == "I remember 2 things"
    assert sorted(i.value["text"] for i in await store.asearch(("memories", "u9"))) == [
        "I like chess",
        "I like tea",
    ]
