"""``MemAdaptersRetriever``: a LlamaIndex ``BaseRetriever`` over mem-adapters search."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from mem_adapters import AsyncMemoryEngine, MemoryEngine, MemoryItem

from ._checks import check_count, check_id
from ._engine import EngineConfig
from ._transcript import MESSAGE_KEY, SOURCE_KEY

logger = logging.getLogger(__name__)

# Bookkeeping keys: useful to code, noise to an LLM or embedding model.
_HIDDEN = [
    "memory_id", "seq", "status", "score", "score_parts", "tenant_id", "parent_id", "source_ids", "version",
]  # fmt: skip


def item_to_node(item: MemoryItem) -> NodeWithScore:
    """A search hit as a ``NodeWithScore`` (engine fields and caller metadata as node metadata).

    The score is the engine's fused ranking value (it orders one search's hits; it is not a
    similarity); ``metadata["score_parts"]`` holds its parts, ``cosine`` among them (the cosine
    similarity of the query and the hit), or ``None``.
    """
    metadata: dict[str, Any] = {k: v for k, v in item.metadata.items() if k not in (MESSAGE_KEY, SOURCE_KEY)}
    metadata.update({
        "memory_id": item.id, "kind": item.kind, "role": item.role, "session_id": item.session_id,
        "user_id": item.user_id, "timestamp": item.timestamp.isoformat() if item.timestamp else None,
        "seq": item.seq, "status": item.status, "tenant_id": item.tenant_id,
        "parent_id": item.parent_id, "source_ids": list(item.source_ids), "version": item.version,
        "score": item.score,
        "score_parts": item.score_parts.model_dump() if item.score_parts is not None else None,
    })  # fmt: skip
    node = TextNode(
        id_=item.id,
        text=item.text,
        metadata=metadata,
        excluded_llm_metadata_keys=list(_HIDDEN),
        excluded_embed_metadata_keys=list(_HIDDEN),
    )
    return NodeWithScore(node=node, score=item.score)


class MemAdaptersRetriever(BaseRetriever):
    """Retrieve memories (turns, facts, raw texts...) as ``NodeWithScore``.

    Usable anywhere LlamaIndex takes a retriever, e.g. ``RetrieverQueryEngine``. Scores are
    the engine's fused ranking values (see :func:`item_to_node`). A context manager
    (``with``/``async with``); once closed, it raises :class:`~mem_adapters.ClosedError`.

    Args:
        engine: An existing engine or service client (``MemoryClient``); otherwise one is created
            lazily from ``path``/``host``/``port``.
        path: Folder of an embedded Chroma store.
        host: Chroma server host.
        port: Chroma server port.
        tenant_id: Tenant searched.
        user_id: Restrict to a user.
        session_id: Restrict to a session.
        agent_id: Restrict to an agent.
        similarity_top_k: Number of results.
        filters: mem-adapters filter (see ``mem_adapters.filters``).
        kinds: Only these kinds (``turn``, ``fact``, ``episode``, ``raw``, ``chunk``).
        callback_manager: LlamaIndex callbacks.
        verbose: LlamaIndex verbosity.

    Raises:
        ValidationError: ``similarity_top_k`` is not an integer >= 1, or an id is empty.

    Example:
        >>> retriever = MemAdaptersRetriever(path="./memories", user_id="u1")  # doctest: +SKIP
        >>> engine = RetrieverQueryEngine.from_args(retriever, llm=llm)  # doctest: +SKIP
    """

    def __init__(
        self,
        engine: MemoryEngine | AsyncMemoryEngine | None = None,
        *,
        path: str | None = None,
        host: str | None = None,
        port: int = 8000,
        tenant_id: str = "default",
        user_id: str | None = None,
        session_id: str | None = None,
        agent_id: str | None = None,
        similarity_top_k: int = 5,
        filters: dict[str, Any] | None = None,
        kinds: Sequence[str] | None = None,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        check_count("similarity_top_k", similarity_top_k)
        check_id("tenant_id", tenant_id)
        for field, value in (("user_id", user_id), ("session_id", session_id), ("agent_id", agent_id)):
            check_id(field, value, optional=True)
        self._config = EngineConfig(path=path, host=host, port=port, tenant_id=tenant_id)
        self._config._attach(engine)
        self._config._owner = type(self).__name__
        self.user_id = user_id
        self.session_id = session_id
        self.agent_id = agent_id
        self.similarity_top_k = similarity_top_k
        self.filters = filters
        self.kinds = list(kinds) if kinds is not None else None
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    @property
    def engine(self) -> MemoryEngine | AsyncMemoryEngine:
        """The engine in use (created lazily from the settings)."""
        return self._config.engine

    async def _search(self, aengine: AsyncMemoryEngine, query: str) -> list[NodeWithScore]:
        if not query.strip():
            return []
        found = await aengine.search(
            query, tenant_id=self._config.tenant_id, user_id=self.user_id, session_id=self.session_id,
            agent_id=self.agent_id, k=self.similarity_top_k, filters=self.filters, kinds=self.kinds,
        )  # fmt: skip
        return [item_to_node(i) for i in found.results]

    def close(self) -> None:
        """Close the retriever: later calls raise ``ClosedError`` (the engine stays open)."""
        self._config.close()

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        self._config.close()

    def __enter__(self) -> MemAdaptersRetriever:
        self._config._check_open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> MemAdaptersRetriever:
        self._config._check_open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return self._config._run(lambda e: self._search(e, query_bundle.query_str))

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return await self._config._arun(lambda e: self._search(e, query_bundle.query_str))
