"""Ranking memories for a query: dense search in Chroma, shaped into results or a context.

This module holds the engine's retrieval; derived indexes (if any) are kept in step through
the ``on_*`` hooks the engine calls on every write, delete and generation change.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal

from . import records as rec
from .models import MemoryItem, SearchResult

if TYPE_CHECKING:
    from .async_engine import AsyncMemoryEngine


def format_item(item: MemoryItem) -> str:
    """One line of a context string: date, speaker and text."""
    date = item.timestamp.strftime("%Y-%m-%d %H:%M") if item.timestamp else "undated"
    who = item.role or item.kind
    return f"[{date}] {who}: {item.text}"


def pack_context(items: list[MemoryItem], char_budget: int | None) -> tuple[str, list[MemoryItem]]:
    """Pack items best-first into a string of at most ``char_budget`` characters.

    An item is never cut mid-way unless it alone exceeds the budget and nothing fits yet.
    """
    lines: list[str] = []
    used: list[MemoryItem] = []
    size = 0
    for item in items:
        line = format_item(item)
        extra = len(line) + (1 if lines else 0)
        if char_budget is not None and size + extra > char_budget:
            if not lines and char_budget > 0:
                lines.append(line[:char_budget])
                used.append(item)
                size = char_budget
            continue
        lines.append(line)
        used.append(item)
        size += extra
    return "\n".join(lines), used


class Retriever:
    """Dense retrieval over a tenant's memory collection."""

    def __init__(self, engine: AsyncMemoryEngine) -> None:
        self.engine = engine

    # Hooks the engine calls to keep derived indexes in step (dense search needs none).
    def on_upsert(self, tenant_id: str, ids: list[str], texts: list[str], metas: list[dict[str, Any]]) -> None:
        """Records were written."""

    def on_delete(self, tenant_id: str, ids: list[str]) -> None:
        """Records were deleted."""

    def on_generation(self, tenant_id: str, token: str) -> None:
        """This process wrote a new store generation."""

    def on_drop(self, tenant_id: str) -> None:
        """A tenant was erased."""

    def on_reembed(self) -> None:
        """The embedder changed."""

    async def search(
        self,
        tenant_id: str,
        query: str,
        *,
        k: int,
        where: dict[str, Any] | None,
        mode: Literal["flat", "context"],
        char_budget: int | None,
        as_of: float | None,
    ) -> SearchResult:
        """Rank the live records matching ``where`` for ``query``."""
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        vector = await self.engine.embed_query(query)
        timings["embed_ms"] = (time.perf_counter() - t0) * 1000
        t1 = time.perf_counter()
        mem = await self.engine._mem(tenant_id)
        got = await mem.query(
            query_embeddings=[vector],
            n_results=k,
            where=self.engine.live(where),
            include=["documents", "metadatas", "distances"],
        )
        timings["dense_ms"] = (time.perf_counter() - t1) * 1000
        items = [
            rec.to_item(i, d, m, score=1.0 - dist)
            for i, d, m, dist in zip(
                got["ids"][0], got["documents"][0], got["metadatas"][0], got["distances"][0], strict=True
            )
        ]
        result = SearchResult(query=query, mode=mode, results=items, stage_timings=timings)
        if mode == "context":
            result.context, used = pack_context(items, char_budget)
            result.facts = [i for i in used if i.kind == "fact"]
            result.episodes = [i for i in used if i.kind == "episode"]
        timings["total_ms"] = (time.perf_counter() - t0) * 1000
        return result
