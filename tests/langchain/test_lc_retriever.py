"""MemAdaptersRetriever: LangChain standard tests, metadata, invoke-time k/filters, async."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from langchain_mem_adapters import MemAdaptersRetriever, documents_text
from langchain_tests.integration_tests import RetrieversIntegrationTests

from mem_adapters import MemAdaptersError, Turn, ValidationError

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc)

TURNS = [
    ("user", "I adopted a golden retriever puppy named Biscuit"),
    ("assistant", "Congratulations on Biscuit! Puppies need lots of walks."),
    ("user", "My favourite food is ramen with extra chili"),
    ("assistant", "Spicy ramen is a great choice."),
    ("user", "I work as a nurse on night shifts"),
]


def seed(engine, session_id: str = "s1", user_id: str = "u1") -> list[str]:
    turns = [Turn(role=r, text=t, timestamp=T0.replace(minute=i)) for i, (r, t) in enumerate(TURNS)]
    return engine.remember(turns, session_id=session_id, user_id=user_id).active_ids


class TestMemAdaptersRetrieverStandard(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _engine(self, engine):
        seed(engine)
        self._eng = engine

    @property
    def retriever_constructor(self) -> type[MemAdaptersRetriever]:
        return MemAdaptersRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"engine": self._eng}

    @property
    def retriever_query_example(self) -> str:
        return "what pet does the user have?"


def test_documents_carry_engine_metadata(engine):
    ids = seed(engine)
    retriever = MemAdaptersRetriever(engine=engine, k=1)
    (doc,) = retriever.invoke("what is the name of my dog?")
    assert doc.page_content == TURNS[0][1]
    assert doc.id == doc.metadata["id"] == ids[0]
    assert doc.metadata["role"] == "user"
    assert doc.metadata["session_id"] == "s1"
    assert doc.metadata["kind"] == "turn"
    assert doc.metadata["user_id"] == "u1"
    assert doc.metadata["timestamp"] == T0.isoformat()
    assert isinstance(doc.metadata["score"], float) and doc.metadata["score"] > 0


def test_k_and_filters_at_invoke_time(engine):
    seed(engine)
    seed(engine, session_id="s2", user_id="u2")
    retriever = MemAdaptersRetriever(engine=engine, k=4, user_id="u1")
    docs = retriever.invoke("food and pets", k=2, filters={"role": "assistant"})
    assert len(docs) == 2
    assert {d.metadata["role"] for d in docs} == {"assistant"}
    assert {d.metadata["user_id"] for d in retriever.invoke("food and pets")} == {"u1"}
    # Invoke-time scope overrides the configured one; configured filters still apply.
    scoped = MemAdaptersRetriever(engine=engine, k=5, filters={"role": "user"})
    docs = scoped.invoke("anything about work", user_id="u2", session_id="s2")
    assert len(docs) == 3
    assert all(d.metadata["role"] == "user" and d.metadata["user_id"] == "u2" for d in docs)


def test_unknown_invoke_argument_is_an_error(engine):
    seed(engine)
    retriever = MemAdaptersRetriever(engine=engine)
    with pytest.raises(ValidationError):
        retriever.invoke("x", top_k=3)
    with pytest.raises(ValidationError):
        retriever.invoke("x", filters={"role": {"$regex": "u"}})


def test_config_is_pydantic_and_engine_is_private(engine):
    retriever = MemAdaptersRetriever(engine=engine, k=2, kinds=["turn"], session_id="s1")
    dumped = retriever.model_dump()
    assert dumped["k"] == 2 and dumped["kinds"] == ["turn"] and dumped["session_id"] == "s1"
    assert "engine" not in dumped and "_runner" not in dumped
    assert retriever.engine is engine
    with pytest.raises(ValueError):
        MemAdaptersRetriever(engine=engine, k=0)


async def test_real_async_with_an_async_engine(aengine):
    await aengine.remember([{"role": "user", "text": t} for _, t in TURNS], session_id="s1")
    retriever = MemAdaptersRetriever(engine=aengine, k=2)
    docs = await retriever.ainvoke("what job do I have?")
    assert docs[0].page_content == "I work as a nurse on night shifts"
    assert len(await retriever.ainvoke("job", k=1)) == 1
    with pytest.raises(MemAdaptersError):
        retriever.invoke("sync needs a MemoryEngine")


async def test_ainvoke_with_a_sync_engine(engine):
    seed(engine)
    docs = await MemAdaptersRetriever(engine=engine, k=1).ainvoke("what is my favourite food?")
    assert docs[0].page_content == TURNS[2][1]


def test_inside_an_lcel_rag_chain(engine):
    seed(engine)
    retriever = MemAdaptersRetriever(engine=engine, k=2)
    prompts: list[str] = []
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer from memory:\n{context}"), ("human", "{question}")]
    )

    def record(value):
        prompts.append(value.to_string())
        return value

    chain = (
        {"context": retriever | RunnableLambda(documents_text), "question": RunnablePassthrough()}
        | prompt
        | RunnableLambda(record)
        | GenericFakeChatModel(messages=iter(["Biscuit."]))
        | StrOutputParser()
    )
    assert chain.invoke("What is my dog called?") == "Biscuit."
    assert "golden retriever puppy named Biscuit" in prompts[0]


def test_documents_text_formats_roles():
    docs = [Document("hi", metadata={"role": "user"}), Document("fact", metadata={"kind": "fact"})]
    assert documents_text(docs) == "[user] hi\n[fact] fact"
