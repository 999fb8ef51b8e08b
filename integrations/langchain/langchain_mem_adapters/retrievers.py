"""LangChain retriever over the mem-adapters engine's search."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, PrivateAttr

from mem_adapters import AsyncMemoryEngine, MemoryItem, SearchResult, ValidationError
from mem_adapters.filters import all_of
from mem_adapters.models import DEFAULT_TENANT

from ._runner import ClosableAdapter, EngineLike, EngineRunner, build_engine, check_count, check_id

logger = logging.getLogger(__name__)

# Invoke-time keyword arguments and the engine search argument each one feeds.
_INVOKE_KWARGS = frozenset(
    {"k", "filters", "kinds", "session_id", "user_id", "agent_id", "sub_tenant_id", "time_range"}
)
_BOUND = ("sub_tenant_id", "user_id", "agent_id", "session_id")  # scope levels a call cannot change
_HIDDEN_META = frozenset({"lc_message"})  # the stored message itself: page_content carries its text


def to_document(item: MemoryItem) -> Document:
    """A search hit as a LangChain ``Document``.

    ``metadata`` carries ``id``, ``score`` (the engine's fused ranking value: it orders the
    hits of one search and is not a similarity), ``score_parts`` (``fused``, ``cosine`` — the
    query/hit cosine similarity —, ``lexical``, ``boosts``; ``None`` if the engine gave none),
    ``timestamp`` (ISO-8601), ``role``, ``session_id``, ``kind``, the scope (``tenant_id``,
    ``user_id``, ``agent_id``) and the caller's own metadata under ``metadata``.
    """
    return Document(
        id=item.id,
        page_content=item.text,
        metadata={
            "id": item.id,
            "score": item.score,
            "score_parts": item.score_parts.model_dump() if item.score_parts is not None else None,
            "timestamp": item.timestamp.isoformat() if item.timestamp else None,
            "role": item.role,
            "session_id": item.session_id,
            "kind": item.kind,
            "tenant_id": item.tenant_id,
            "user_id": item.user_id,
            "agent_id": item.agent_id,
            "metadata": {k: v for k, v in item.metadata.items() if k not in _HIDDEN_META},
        },
    )


class MemAdaptersRetriever(ClosableAdapter, BaseRetriever):
    """Retrieve memories (turns, facts, episodes, raw texts) ranked by the engine.

    Configuration is pydantic fields; the engine lives in a private attribute. ``k`` and the
    scope/filter fields can be overridden per call: ``retriever.invoke(q, k=2, filters=...)``.
    Invoke-time ``filters`` are ANDed with the configured ones. A scope level set here
    (``user_id``, ``agent_id``, ``session_id``, ``sub_tenant_id``) binds the retriever: a call
    passing another value, or ``None``, is a ``ValidationError``. Usable as ``with``/``async
    with``; a closed retriever raises :class:`~mem_adapters.ClosedError`.

    Args:
        engine: A :class:`~mem_adapters.MemoryEngine` or service
            :class:`~mem_adapters.client.MemoryClient` (sync and async), or an
            :class:`~mem_adapters.AsyncMemoryEngine` / ``AsyncMemoryClient`` (async only).
            Built from ``path``/``client``/``engine_kwargs`` when absent (``client`` is a
            chromadb client there).
        path: Folder of an embedded store (when ``engine`` is absent).
        client: A chromadb client (when ``engine`` is absent).
        engine_kwargs: Further :class:`~mem_adapters.MemoryEngine` arguments.
        **data: The fields below.

    Raises:
        ValidationError: ``k`` is not an integer >= 1, or an id is empty.

    Example:
        >>> retriever = MemAdaptersRetriever(engine=engine, k=3, user_id="u1")  # doctest: +SKIP
        >>> retriever.invoke("outdoor hobbies")[0].page_content  # doctest: +SKIP
        'I love hiking'
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    k: int = Field(default=4, ge=1, description="Number of documents to return.")
    tenant_id: str = DEFAULT_TENANT
    sub_tenant_id: str | None = None
    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    filters: dict[str, Any] | None = Field(default=None, description="Engine filter (mem_adapters.filters).")
    kinds: list[Literal["turn", "fact", "episode", "raw", "chunk"]] | None = None
    time_range: tuple[datetime | str | None, datetime | str | None] | None = None

    _runner: EngineRunner = PrivateAttr()

    def __init__(
        self,
        *,
        engine: EngineLike | None = None,
        path: str | os.PathLike[str] | None = None,
        client: Any = None,
        engine_kwargs: dict[str, Any] | None = None,
        **data: Any,
    ) -> None:
        # Checked here so a bad value is the engine's typed error, not pydantic's (which would
        # also take True for 1 and 2.0 for 2).
        if "k" in data:
            check_count("k", data["k"])
        check_id("tenant_id", data.get("tenant_id", DEFAULT_TENANT))
        for field in ("sub_tenant_id", "user_id", "agent_id", "session_id"):
            check_id(field, data.get(field), optional=True)
        super().__init__(**data)
        built, owned = build_engine(engine, path=path, client=client, engine_kwargs=engine_kwargs)
        self._runner = EngineRunner(built, owned=owned, name=type(self).__name__)

    @property
    def engine(self) -> EngineLike:
        """The engine (or service client) searched."""
        return self._runner.engine

    def _search_args(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        kwargs.pop("verbose", None)  # BaseRetriever.invoke reads it but leaves it in kwargs
        unknown = set(kwargs) - _INVOKE_KWARGS
        if unknown:
            raise ValidationError(
                sorted(unknown)[0], f"unknown retriever argument; expected one of {sorted(_INVOKE_KWARGS)}"
            )
        if "k" in kwargs:
            check_count("k", kwargs["k"])  # here, not only in the engine: a service client sends JSON
        extra_filters = kwargs.pop("filters", None)
        args: dict[str, Any] = {
            "k": self.k, "tenant_id": self.tenant_id, "sub_tenant_id": self.sub_tenant_id,
            "user_id": self.user_id, "agent_id": self.agent_id, "session_id": self.session_id,
            "kinds": self.kinds, "time_range": self.time_range,
        }  # fmt: skip
        for field in _BOUND:
            # A scope set at construction binds the retriever: a call may repeat it, never
            # widen it (None) or move it to another user/agent/session.
            if field in kwargs and getattr(self, field) is not None and kwargs[field] != getattr(self, field):
                raise ValidationError(
                    field,
                    f"this retriever is bound to {field}={getattr(self, field)!r}; a call cannot change it",
                )
        args.update(kwargs)
        if extra_filters is not None and not isinstance(extra_filters, dict):
            raise ValidationError("filters", "must be a dict")
        args["filters"] = all_of(self.filters, extra_filters)
        return args

    @staticmethod
    def _documents(result: SearchResult) -> list[Document]:
        return [to_document(item) for item in result.results]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        args = self._search_args(kwargs)

        async def search(aengine: AsyncMemoryEngine) -> SearchResult:
            return await aengine.search(query, **args)

        return self._documents(self._runner.run(search))

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        args = self._search_args(kwargs)

        async def search(aengine: AsyncMemoryEngine) -> SearchResult:
            return await aengine.search(query, **args)

        return self._documents(await self._runner.arun(search))


def documents_text(docs: Sequence[Document]) -> str:
    """Join documents into a prompt context, one ``[role] text`` line each (for RAG chains)."""
    return "\n".join(f"[{d.metadata.get('role') or d.metadata.get('kind')}] {d.page_content}" for d in docs)


__all__ = ["MemAdaptersRetriever", "documents_text", "to_document"]
