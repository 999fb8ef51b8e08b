"""MemAdaptersChatMessageHistory: lossless, ordered, atomic, idempotent, searchable, enriched."""

from __future__ import annotations

import asyncio
import uuid
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core._api import LangChainDeprecationWarning
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    message_chunk_to_message,
)
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnableLambda
from langchain_core.runnables.history import RunnableWithMessageHistory
from langchain_mem_adapters import MemAdaptersChatMessageHistory
from langchain_mem_adapters.chat_history import MESSAGE_KEY, TYPE_KEY

from mem_adapters import MemAdaptersError, MemoryEngine, Turn, ValidationError


def every_kind_of_message() -> list[BaseMessage]:
    return [
        SystemMessage("You are terse.", id="sys-1"),
        HumanMessage("I love hiking in the Alps"),
        HumanMessage(
            content=[
                {"type": "text", "text": "what is in this picture?"},
                {"type": "image", "url": "https://example.com/a.png"},
                {"type": "image", "base64": "iVBORw0KGgo=", "mime_type": "image/png"},
                {"type": "file", "url": "https://example.com/report.pdf", "mime_type": "application/pdf"},
            ],
            name="alice",
            additional_kwargs={"client": {"v": [1, 2]}},
        ),
        AIMessage(
            content=[
                {"type": "reasoning", "reasoning": "need the weather"},
                {"type": "text", "text": "Checking."},
            ],
            tool_calls=[
                {"name": "get_weather", "args": {"city": "Paris"}, "id": "call-1", "type": "tool_call"}
            ],
            invalid_tool_calls=[
                {"name": "bad", "args": "{oops", "id": "call-2", "error": "json", "type": "invalid_tool_call"}
            ],
            usage_metadata={
                "input_tokens": 12,
                "output_tokens": 7,
                "total_tokens": 19,
                "input_token_details": {"cache_read": 3},
            },
            response_metadata={"model_name": "fake", "finish_reason": "tool_calls", "logprobs": [0.1, -2.5]},
            id="ai-1",
        ),
        AIMessage("", tool_calls=[{"name": "lookup", "args": {}, "id": "call-3", "type": "tool_call"}]),
        ToolMessage(
            "sunny, 24C", tool_call_id="call-1", artifact={"raw": [24, "C"], "ok": True}, status="success"
        ),
        ToolMessage("boom", tool_call_id="call-3", status="error", name="lookup"),
        ChatMessage(role="narrator", content="Meanwhile, in Paris..."),
        FunctionMessage(name="legacy_fn", content='{"result": 1}'),
        AIMessage("ok"),
        AIMessage("ok"),
    ]


def test_every_message_type_round_trips_exactly(engine):
    history = MemAdaptersChatMessageHistory("s-all", engine=engine)
    sent = every_kind_of_message()
    history.add_messages(sent)
    got = history.messages
    assert got == sent
    assert [type(m) for m in got] == [type(m) for m in sent]


def test_turns_carry_role_text_and_the_exact_message(engine):
    history = MemAdaptersChatMessageHistory("s-roles", engine=engine)
    sent = every_kind_of_message()
    history.add_messages(sent)
    items = engine.get_messages("s-roles")
    assert [i.role for i in items] == [
        "system", "user", "user", "assistant", "assistant", "tool", "tool", "narrator", "function",
        "assistant", "assistant",
    ]  # fmt: skip
    assert [i.metadata[TYPE_KEY] for i in items] == [m.type for m in sent]
    assert items[1].text == "I love hiking in the Alps"
    assert items[3].text == "Checking."
    # No text content: the searchable text describes the tool call instead.
    assert "lookup" in items[4].text and items[4].text.startswith("[assistant:")
    assert all(isinstance(i.metadata[MESSAGE_KEY], dict) for i in items)


def test_chunks_are_stored_as_messages(engine):
    history = MemAdaptersChatMessageHistory("s-chunk", engine=engine)
    chunk = AIMessageChunk(content="Hel", id="c-1") + AIMessageChunk(
        content="lo", tool_call_chunks=[{"name": "f", "args": '{"a": 1}', "id": "t1", "index": 0}]
    )
    history.add_messages([chunk])
    (got,) = history.messages
    assert type(got) is AIMessage
    assert got == message_chunk_to_message(chunk)
    assert got.tool_calls == [{"name": "f", "args": {"a": 1}, "id": "t1", "type": "tool_call"}]


def test_order_is_exact_across_many_batches_and_writers(engine):
    sent: list[BaseMessage] = []
    for b in range(6):
        # A new history object per batch, as RunnableWithMessageHistory does.
        history = MemAdaptersChatMessageHistory("s-order", engine=engine)
        batch = [HumanMessage(f"question {b}"), AIMessage(f"answer {b}"), AIMessage("ok")]
        history.add_messages(batch)
        sent.extend(batch)
    assert MemAdaptersChatMessageHistory("s-order", engine=engine).messages == sent


def test_retry_of_messages_with_ids_does_not_duplicate(engine):
    history = MemAdaptersChatMessageHistory("s-retry", engine=engine)
    batch = [HumanMessage("hi", id="m1"), AIMessage("hello", id="m2")]
    history.add_messages(batch)
    history.add_messages(batch)
    history.add_messages([batch[1], AIMessage("more", id="m3")])
    assert history.messages == [*batch, AIMessage("more", id="m3")]


def test_identical_messages_at_different_positions_are_kept(engine):
    history = MemAdaptersChatMessageHistory("s-same", engine=engine)
    history.add_messages([AIMessage("ok"), AIMessage("ok")])
    history.add_messages([AIMessage("ok")])
    assert history.messages == [AIMessage("ok")] * 3
    assert engine.count_turns("s-same") == 3


def test_resending_an_id_less_batch_appends_it_again_ids_make_it_idempotent(engine):
    # As InMemoryChatMessageHistory: without ids a write is new messages (what the README says).
    history = MemAdaptersChatMessageHistory("s-resend", engine=engine)
    batch = [HumanMessage("I'm planning a trip"), AIMessage("Where to?")]
    history.add_messages(batch)
    history.add_messages(batch)
    assert history.messages == batch * 2
    with_ids = [HumanMessage("Lisbon", id="h1"), AIMessage("Lovely", id="a1")]
    history.add_messages(with_ids)
    MemAdaptersChatMessageHistory("s-resend", engine=engine).add_messages(with_ids)  # a retry
    assert history.messages == [*batch, *batch, *with_ids]


def test_batch_is_atomic_on_a_message_that_cannot_round_trip(engine):
    history = MemAdaptersChatMessageHistory("s-atomic", engine=engine)
    history.add_messages([HumanMessage("before")])
    bad = ToolMessage("x", tool_call_id="c", artifact=object())
    with pytest.raises(ValidationError) as err:
        history.add_messages([HumanMessage("one"), AIMessage("two"), bad])
    assert err.value.field == "messages[2]"
    # A tuple becomes a list in JSON: it would not read back equal, so it is refused too.
    with pytest.raises(ValidationError):
        history.add_messages([ToolMessage("y", tool_call_id="c", artifact={"t": (1, 2)})])
    assert history.messages == [HumanMessage("before")]


def test_rejects_non_messages(engine):
    history = MemAdaptersChatMessageHistory("s-bad", engine=engine)
    with pytest.raises(ValidationError):
        history.add_messages(["not a message"])  # type: ignore[list-item]
    with pytest.raises(ValidationError):
        history.add_messages(HumanMessage("one"))  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        MemAdaptersChatMessageHistory(" ", engine=engine)


def test_clear_removes_only_this_session(engine):
    a = MemAdaptersChatMessageHistory("s-a", engine=engine)
    b = MemAdaptersChatMessageHistory("s-b", engine=engine)
    a.add_messages([HumanMessage("a1")])
    b.add_messages([HumanMessage("b1")])
    a.clear()
    assert a.messages == []
    assert b.messages == [HumanMessage("b1")]
    a.add_messages([AIMessage("ok"), AIMessage("ok")])  # positions restart cleanly after a clear
    assert a.messages == [AIMessage("ok"), AIMessage("ok")]


def test_user_scoping_and_metadata(engine):
    mine = MemAdaptersChatMessageHistory("s-shared", engine=engine, user_id="u1", metadata={"app": "demo"})
    theirs = MemAdaptersChatMessageHistory("s-shared", engine=engine, user_id="u2")
    mine.add_messages([HumanMessage("mine")])
    theirs.add_messages([HumanMessage("theirs")])
    assert mine.messages == [HumanMessage("mine")]
    assert theirs.messages == [HumanMessage("theirs")]
    item = engine.search("mine", user_id="u1", k=1).results[0]
    assert item.user_id == "u1" and item.metadata["app"] == "demo"


def test_turns_written_without_langchain_are_readable(engine):
    engine.remember(
        [Turn(role="user", text="hello", id="x1"), Turn(role="assistant", text="hi", id="x2"),
         Turn(role="Caroline", text="hey", id="x3")],
        session_id="s-foreign",
    )  # fmt: skip
    got = MemAdaptersChatMessageHistory("s-foreign", engine=engine).messages
    assert got == [HumanMessage("hello", id="x1"), AIMessage("hi", id="x2"),
                   ChatMessage(role="Caroline", content="hey", id="x3")]  # fmt: skip


def test_writes_land_in_engine_memory_and_are_searchable(engine):
    history = MemAdaptersChatMessageHistory("s-search", engine=engine, user_id="u1")
    history.add_messages(
        [HumanMessage("I am allergic to shellfish"), AIMessage("Noted, no shrimp for you."),
         HumanMessage("My sister lives in Lisbon")]
    )  # fmt: skip
    hits = engine.search("what am I allergic to?", user_id="u1", k=1).results
    assert hits[0].text == "I am allergic to shellfish"
    assert hits[0].session_id == "s-search" and hits[0].kind == "turn" and hits[0].role == "user"


class RecordingEnricher:
    """Stands in for the LLM-free enrichment pipeline: records what the engine submits."""

    def __init__(self) -> None:
        self.jobs: list[tuple[str, str, list[str]]] = []

    def bind(self, engine) -> None:
        self.engine = engine

    async def submit(self, tenant_id: str, session_id: str, turn_ids: list[str], **_: object) -> str:
        self.jobs.append((tenant_id, session_id, list(turn_ids)))
        return f"job-{len(self.jobs)}"


def test_each_batch_is_one_enrichment_job(tmp_path, embedder):
    enricher = RecordingEnricher()
    with MemoryEngine(tmp_path / "enrich", embedder=embedder, enricher=enricher) as eng:
        history = MemAdaptersChatMessageHistory("s-enrich", engine=eng)
        history.add_messages([HumanMessage("I moved to Berlin", id="h1"), AIMessage("Nice!", id="a1")])
        history.add_messages([HumanMessage("I moved to Berlin", id="h1")])  # a retry: nothing new
        turn_ids = [i.id for i in eng.get_messages("s-enrich")]
    assert enricher.jobs == [("default", "s-enrich", turn_ids)]


def test_no_deprecation_warning_when_instantiated(engine):
    with warnings.catch_warnings():
        warnings.simplefilter("error", LangChainDeprecationWarning)
        history = MemAdaptersChatMessageHistory("s-warn", engine=engine)
        history.add_messages([HumanMessage("x")])


def test_builds_and_closes_its_own_engine(tmp_path, embedder):
    history = MemAdaptersChatMessageHistory(
        "s-own", path=tmp_path / "own", engine_kwargs={"embedder": embedder}
    )
    history.add_messages([HumanMessage("persisted")])
    history.close()
    with MemoryEngine(tmp_path / "own", embedder=embedder) as eng:
        assert MemAdaptersChatMessageHistory("s-own", engine=eng).messages == [HumanMessage("persisted")]
    with pytest.raises(MemAdaptersError):
        MemAdaptersChatMessageHistory("s", engine=eng, path=tmp_path / "other")


# ---------------------------------------------------------------- async


async def test_async_methods_with_a_sync_engine(engine):
    history = MemAdaptersChatMessageHistory("s-async", engine=engine)
    sent = every_kind_of_message()
    await history.aadd_messages(sent[:4])
    await history.aadd_messages(sent[4:])
    assert await history.aget_messages() == sent
    await history.aclear()
    assert await history.aget_messages() == []


async def test_async_write_does_not_block_the_callers_loop(engine):
    history = MemAdaptersChatMessageHistory("s-loop", engine=engine)
    done = False
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while not done:
            ticks += 1
            await asyncio.sleep(0)

    async def write() -> None:
        nonlocal done
        try:
            await history.aadd_messages([HumanMessage(f"message {i}") for i in range(20)])
        finally:
            done = True

    await asyncio.gather(write(), ticker())
    # The write ran elsewhere while this loop kept scheduling the ticker.
    assert ticks > 0
    assert len(await history.aget_messages()) == 20


@pytest.mark.engine_only("submits to the engine's own loop")
def test_sync_call_from_the_engines_own_loop_is_refused(engine):
    history = MemAdaptersChatMessageHistory("s-own-loop", engine=engine)
    history.add_messages([HumanMessage("hi")])  # the runner has learnt the engine's thread

    async def sync_call_inside_the_engine() -> list[BaseMessage]:
        return history.messages

    # Without the guard this would wait on itself forever; the timeout only bounds a failure.
    with pytest.raises(MemAdaptersError, match="own event loop"):
        engine.submit(sync_call_inside_the_engine()).result(timeout=60)
    assert history.messages == [HumanMessage("hi")]


async def test_async_engine_serves_async_methods_only(aengine):
    history = MemAdaptersChatMessageHistory("s-aengine", engine=aengine)
    sent = [HumanMessage("hi", id="1"), AIMessage("hello", id="2")]
    await history.aadd_messages(sent)
    await history.aadd_messages(sent)
    assert await history.aget_messages() == sent
    with pytest.raises(MemAdaptersError):
        _ = history.messages


async def test_concurrent_async_writers_keep_every_message(engine):
    histories = [MemAdaptersChatMessageHistory("s-race", engine=engine) for _ in range(4)]
    await asyncio.gather(*(h.aadd_messages([AIMessage("ok")]) for h in histories))
    assert await histories[0].aget_messages() == [AIMessage("ok")] * 4


# ---------------------------------------------------------------- RunnableWithMessageHistory


def _chain(engine, seen: list[list[BaseMessage]], replies: list[str]):
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Be brief."), MessagesPlaceholder("history"), ("human", "{question}")]
    )

    def record(value):
        seen.append(value.to_messages())
        return value

    model = GenericFakeChatModel(messages=iter(replies))
    return RunnableWithMessageHistory(
        prompt | RunnableLambda(record) | model,
        lambda session_id: MemAdaptersChatMessageHistory(session_id, engine=engine),
        input_messages_key="question",
        history_messages_key="history",
    )


# RunnableWithMessageHistory is itself deprecated (langchain-core 1.x) yet still in wide use.
rwmh_deprecated = pytest.mark.filterwarnings("ignore:RunnableWithMessageHistory:DeprecationWarning")


@rwmh_deprecated
def test_runnable_with_message_history_sync(engine):
    seen: list[list[BaseMessage]] = []
    chain = _chain(engine, seen, ["Hello Ana.", "You are Ana."])
    config = {"configurable": {"session_id": "rwmh"}}
    first = chain.invoke({"question": "I am Ana"}, config=config)
    second = chain.invoke({"question": "Who am I?"}, config=config)
    # The second call saw the first exchange, read back from the engine.
    assert seen[1][1:3] == [HumanMessage("I am Ana"), first]
    stored = MemAdaptersChatMessageHistory("rwmh", engine=engine).messages
    assert stored == [HumanMessage("I am Ana"), first, HumanMessage("Who am I?"), second]
    assert engine.search("what is my name", session_id="rwmh", k=4).results


@rwmh_deprecated
async def test_runnable_with_message_history_async(engine):
    seen: list[list[BaseMessage]] = []
    chain = _chain(engine, seen, ["Hi Bo.", "Bo."])
    config = {"configurable": {"session_id": "rwmh-async"}}
    first = await chain.ainvoke({"question": "I am Bo"}, config=config)
    second = await chain.ainvoke({"question": "Name?"}, config=config)
    assert seen[1][1:3] == [HumanMessage("I am Bo"), first]
    history = MemAdaptersChatMessageHistory("rwmh-async", engine=engine)
    assert await history.aget_messages() == [HumanMessage("I am Bo"), first, HumanMessage("Name?"), second]


# ---------------------------------------------------------------- property


texts = st.sampled_from(["ok", "yes", "hello there", "ok"])
# An id names one message: a reused id always comes with the same content (the engine rejects
# an id reused for different content, see test_core_api).
message = st.builds(
    lambda kind, text, mid: (HumanMessage if kind else AIMessage)(
        text, id=None if mid is None else f"{mid}-{kind}-{text}"
    ),
    st.booleans(),
    texts,
    st.one_of(st.none(), st.sampled_from(["a", "b", "c"])),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batches=st.lists(st.lists(message, min_size=1, max_size=4), min_size=1, max_size=4),
    retry=st.booleans(),
)
def test_history_matches_a_list_model(engine, batches, retry):
    session = f"p-{uuid.uuid4().hex}"
    history = MemAdaptersChatMessageHistory(session, engine=engine)
    expected: list[BaseMessage] = []
    ids: set[str] = set()
    for batch in batches:
        writes = [batch, batch] if retry else [batch]
        for write in writes:
            history.add_messages(write)
            for m in write:
                if m.id is None:
                    expected.append(m)
                elif m.id not in ids:
                    ids.add(m.id)
                    expected.append(m)
    assert history.messages == expected
