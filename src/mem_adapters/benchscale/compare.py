"""``--compare``: other memory layers on Chroma, same data and same embedder (``bench`` extra).

- ``langchain_chroma``: langchain-chroma's ``Chroma`` vector store; ``add_texts`` with a
  ``user_id`` metadata, ``similarity_search(k=10, filter={"user_id": ...})`` (tenant-wide: no
  filter).
- ``llamaindex_memory``: LlamaIndex ``Memory`` (one per user, ``session_id`` = user, one shared
  SQLAlchemy chat store) with a ``VectorMemoryBlock`` on ``ChromaVectorStore``; ``put_messages``
  then ``get(input=query)``. Messages reach the vector block when they are flushed out of the
  short-term queue, one node per flushed group (whose text is embedded by the real model:
  it is not one of the precomputed texts). It has no tenant-wide read: a Memory is a session.
- ``mem0``: mem0 OSS ``Memory`` with ``add(..., infer=False)`` on its Chroma vector store,
  configured offline through its ``langchain`` embedder and LLM providers (the LLM, a LangChain
  ``FakeListChatModel``, is never called with ``infer=False``); ``search(filters={"user_id":
  ...})``. It has no tenant-wide read: its search requires a user, agent or run id.

Each system is built through its own public API with the same precomputed vectors as the
engine (:class:`~mem_adapters.benchscale.data.LookupEmbedder`) up to ``compare_max`` memories,
and searched in this process (the engine's searches run in fresh processes). Ingest is
measured with the real embedder on the same texts as the engine's ingest run.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from .data import SESSION_TURNS, MemoryGenerator, owner
from .measure import summary

logger = logging.getLogger(__name__)

SYSTEMS = ("langchain_chroma", "llamaindex_memory", "mem0")
_PACKAGES = {
    "langchain_chroma": "langchain-chroma",
    "llamaindex_memory": "llama-index-vector-stores-chroma",
    "mem0": "mem0ai",
}


def _lc_embeddings(emb: Any) -> Any:
    from langchain_core.embeddings import Embeddings

    class _Emb(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return emb.embed_documents(texts)

        def embed_query(self, text: str) -> list[float]:
            return emb.embed_query(text)

    return _Emb()


def _li_embedding(emb: Any) -> Any:
    from llama_index.core.embeddings import BaseEmbedding

    class _Emb(BaseEmbedding):
        def _get_query_embedding(self, query: str) -> list[float]:
            return emb.embed_query(query)

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return emb.embed_query(query)

        def _get_text_embedding(self, text: str) -> list[float]:
            return emb.embed_documents([text])[0]

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return emb.embed_documents(texts)

    return _Emb(model_name="mem-adapters-bench", embed_batch_size=SESSION_TURNS)


class _LangChain:
    tenant_wide = True

    def __init__(self, path: Path, emb: Any) -> None:
        from langchain_chroma import Chroma

        self.store = Chroma(
            collection_name="langchain",
            embedding_function=_lc_embeddings(emb),
            persist_directory=str(path),
            collection_metadata={"hnsw:space": "cosine"},
        )

    def add(self, items: list[tuple[str, str, str]]) -> None:
        self.store.add_texts(
            [t for _, t, _ in items],
            metadatas=[{"user_id": u} for _, _, u in items],
            ids=[i for i, _, _ in items],
        )

    def search(self, query: str, user: str | None) -> Any:
        return self.store.similarity_search(query, k=10, **({"filter": {"user_id": user}} if user else {}))


class _LlamaIndex:
    tenant_wide = False

    def __init__(self, path: Path, emb: Any) -> None:
        import chromadb
        from llama_index.core.storage.chat_store.sql import SQLAlchemyChatStore
        from llama_index.vector_stores.chroma import ChromaVectorStore

        client = chromadb.PersistentClient(path=str(path))
        collection = client.get_or_create_collection(
            "llamaindex", configuration={"hnsw": {"space": "cosine"}}
        )
        self.vector_store = ChromaVectorStore(chroma_collection=collection)
        self.embed = _li_embedding(emb)
        self.chat_store = SQLAlchemyChatStore(table_name="bench_memory")
        self.memories: dict[str, Any] = {}
        self.loop = asyncio.new_event_loop()

    def _memory(self, user: str) -> Any:
        from llama_index.core.memory import Memory, VectorMemoryBlock

        if user not in self.memories:
            block = VectorMemoryBlock(
                name="vector", vector_store=self.vector_store, embed_model=self.embed, similarity_top_k=10
            )
            self.memories[user] = Memory.from_defaults(
                session_id=user,
                token_limit=400,
                token_flush_size=40,
                memory_blocks=[block],
                chat_store=self.chat_store,
            )
        return self.memories[user]

    def add(self, items: list[tuple[str, str, str]]) -> None:
        from llama_index.core.llms import ChatMessage

        by_user: dict[str, list[Any]] = {}
        for _, text, user in items:
            by_user.setdefault(user, []).append(ChatMessage(role="user", content=text))
        for user, msgs in by_user.items():
            self.loop.run_until_complete(self._memory(user).aput_messages(msgs))

    def search(self, query: str, user: str | None) -> Any:
        if user is None:
            raise NotImplementedError
        return self.loop.run_until_complete(self._memory(user).aget(input=query))


class _Mem0:
    tenant_wide = False

    def __init__(self, path: Path, emb: Any) -> None:
        os.environ.setdefault("MEM0_TELEMETRY", "False")
        from langchain_core.language_models.fake_chat_models import FakeListChatModel
        from mem0 import Memory

        self.memory = Memory.from_config(
            {
                "vector_store": {
                    "provider": "chroma",
                    "config": {"collection_name": "mem0", "path": str(path / "chroma")},
                },
                "embedder": {
                    "provider": "langchain",
                    "config": {"model": _lc_embeddings(emb), "embedding_dims": 384},
                },
                "llm": {"provider": "langchain", "config": {"model": FakeListChatModel(responses=["{}"])}},
                "history_db_path": str(path / "history.db"),
            }
        )

    def add(self, items: list[tuple[str, str, str]]) -> None:
        by_user: dict[str, list[dict[str, str]]] = {}
        for _, text, user in items:
            by_user.setdefault(user, []).append({"role": "user", "content": text})
        for user, msgs in by_user.items():
            self.memory.add(msgs, user_id=user, infer=False)

    def search(self, query: str, user: str | None) -> Any:
        if user is None:
            raise NotImplementedError
        return self.memory.search(query, filters={"user_id": user}, limit=10)


_FACTORIES: dict[str, Callable[[Path, Any], Any]] = {
    "langchain_chroma": _LangChain,
    "llamaindex_memory": _LlamaIndex,
    "mem0": _Mem0,
}


def _time(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000.0


class Comparer:
    """Builds and measures the other systems next to the engine (see the module docstring)."""

    def __init__(
        self,
        work: Path,
        real: Any,
        lookup: Any,
        texts: list[str],
        gen: MemoryGenerator,
        questions: list[str],
        compare_max: int,
    ) -> None:
        self.work = work / "compare"
        self.real, self.lookup, self.texts, self.questions = real, lookup, texts, questions
        self.compare_max = compare_max
        self.errors: dict[str, str] = {}
        self._stores: dict[tuple[str, str], Any] = {}
        self._built: dict[tuple[str, str], int] = {}

    def describe(self) -> dict[str, Any]:
        """Each system's package version, or why it could not run."""
        out = {}
        for name in SYSTEMS:
            try:
                ver: str | None = version(_PACKAGES[name])
            except PackageNotFoundError:
                ver = None
            out[name] = {"package": _PACKAGES[name], "version": ver, "error": self.errors.get(name)}
        return out

    def _open(self, name: str, path: Path, emb: Any) -> Any | None:
        if name in self.errors:
            return None
        try:
            return _FACTORIES[name](path, emb)
        except Exception as e:  # a missing package or an offline configuration that fails: say why
            self.errors[name] = f"{type(e).__name__}: {e}"
            logger.warning("compare: %s unavailable: %s", name, self.errors[name])
            return None

    def ingest(self, batched: Sequence[str], per_turn: Sequence[str]) -> dict[str, Any]:
        """Batched and per-turn ingest of every system with the real embedder, next to it."""
        batches = [list(batched[s : s + SESSION_TURNS]) for s in range(0, len(batched), SESSION_TURNS)]
        t0 = time.perf_counter()
        for b in batches:
            self.real.embed_documents(b)
        raw_b = len(batched) / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for x in per_turn:
            self.real.embed_documents([x])
        raw_s = len(per_turn) / (time.perf_counter() - t0)
        out: dict[str, Any] = {
            "embedder_batched_turns_per_s": round(raw_b, 2),
            "embedder_per_turn_turns_per_s": round(raw_s, 2),
        }
        for name in SYSTEMS:
            store = self._open(name, self.work / f"ingest-{name}", self.real)
            if store is None:
                out[name] = {"error": self.errors[name]}
                continue
            try:
                t0 = time.perf_counter()
                for j, b in enumerate(batches):
                    store.add([(f"b{j}-{k}", x, "ingest") for k, x in enumerate(b)])
                eng_b = len(batched) / (time.perf_counter() - t0)
                t0 = time.perf_counter()
                for j, x in enumerate(per_turn):
                    store.add([(f"s{j}", x, "ingest")])
                eng_s = len(per_turn) / (time.perf_counter() - t0)
            except Exception as e:
                out[name] = {"error": f"{type(e).__name__}: {e}"}
                continue
            out[name] = {
                "batched": {"turns_per_s": round(eng_b, 2), "ratio": round(eng_b / raw_b, 4)},
                "per_turn": {"turns_per_s": round(eng_s, 2), "ratio": round(eng_s / raw_s, 4)},
            }
        return out

    def measure(self, *, shape: str, n: int, n_users: int, user_ids: list[str]) -> dict[str, Any]:
        """Grow every system's store of ``shape`` to ``n`` memories and time its searches."""
        if n > self.compare_max:
            return {"skipped": f"size {n} > --compare-max {self.compare_max}"}
        out: dict[str, Any] = {}
        for name in SYSTEMS:
            key = (name, shape)
            if key not in self._stores:
                self._stores[key] = self._open(name, self.work / f"{shape}-{name}", self.lookup)
            store = self._stores[key]
            if store is None:
                out[name] = {"error": self.errors[name]}
                continue
            try:
                start = self._built.get(key, 0)
                t0 = time.perf_counter()
                for s in range(start, n, SESSION_TURNS * 10):
                    e = min(n, s + SESSION_TURNS * 10)
                    store.add([(f"m{i}", self.texts[i], owner(i, n_users)) for i in range(s, e)])
                self._built[key] = n
                block: dict[str, Any] = {"build_s": round(time.perf_counter() - t0, 2)}
                store.search(self.questions[0], user_ids[0])  # warm-up
                user = [
                    _time(lambda q=q, j=j, s=store: s.search(q, user_ids[j % len(user_ids)]))
                    for j, q in enumerate(self.questions)
                ]
                block["user"] = {"flat": summary(user)}
                if store.tenant_wide:
                    block["tenant"] = {
                        "flat": summary(
                            [_time(lambda q=q, s=store: s.search(q, None)) for q in self.questions]
                        )
                    }
                else:
                    block["tenant"] = {"unsupported": "no tenant-wide read in its public API"}
                out[name] = block
            except Exception as e:
                logger.warning("compare: %s failed at %s n=%d: %s", name, shape, n, e)
                out[name] = {"error": f"{type(e).__name__}: {e}"}
        return out


__all__ = ["SYSTEMS", "Comparer"]
