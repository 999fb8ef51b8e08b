"""Building the stores of ``bench scale`` through the engine's public ``remember``, and plain Chroma.

Stores grow: the store of 10k is the store of 1k plus memories 1,000-9,999, so each shape is
built once up to the largest size and measured at every size on the way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .data import SESSION_TURNS, MemoryGenerator, owner, session_of, timestamp

logger = logging.getLogger(__name__)

PLAIN_COLLECTION = "plain"
_CHROMA_BATCH = 2000


def turn(gen: MemoryGenerator, i: int, texts: list[str]) -> dict[str, Any]:
    """The ``remember`` dict of memory ``i`` (caller id ``m<i>``, so rebuilding is a no-op)."""
    return {"id": f"m{i}", "role": gen.speaker(i), "text": texts[i], "timestamp": timestamp(i)}


def grow_engine(
    engine: Any,
    gen: MemoryGenerator,
    texts: list[str],
    start: int,
    end: int,
    *,
    users: int,
    tenant: str,
    advance: Callable[[int], None] | None = None,
) -> float:
    """Remember memories ``start..end-1`` (one call per session chunk); returns seconds taken."""
    buckets: dict[str, list[int]] = {}
    for i in range(start, end):
        buckets.setdefault(session_of(i, users), []).append(i)
    t0 = time.perf_counter()
    for session, idx in buckets.items():
        for s in range(0, len(idx), SESSION_TURNS):
            part = idx[s : s + SESSION_TURNS]
            engine.remember(
                [turn(gen, i, texts) for i in part],
                session_id=session,
                user_id=owner(part[0], users),
                tenant_id=tenant,
            )
            if advance:
                advance(len(part))
    return time.perf_counter() - t0


def grow_tenants(
    engine: Any,
    gen: MemoryGenerator,
    texts: list[str],
    tenants: int,
    per_tenant: int,
    advance: Callable[[int], None] | None = None,
) -> float:
    """``tenants`` tenants of ``per_tenant`` memories each, one user per tenant; returns seconds."""
    t0 = time.perf_counter()
    for t in range(tenants):
        base = t * per_tenant
        for s in range(0, per_tenant, SESSION_TURNS):
            idx = range(base + s, base + min(per_tenant, s + SESSION_TURNS))
            engine.remember(
                [turn(gen, i, texts) for i in idx],
                session_id=f"t{t}-s{s // SESSION_TURNS}",
                user_id="u0000",
                tenant_id=tenant_name(t),
            )
            if advance:
                advance(len(idx))
    return time.perf_counter() - t0


def tenant_name(t: int) -> str:
    """Name of the ``t``-th tenant of the many-tenants shape."""
    return f"tenant-{t:05d}"


def plain_collection(path: str) -> Any:
    """The reference collection: plain Chroma, cosine space, in this process."""
    import chromadb

    client = chromadb.PersistentClient(path=path)
    return client.get_or_create_collection(PLAIN_COLLECTION, configuration={"hnsw": {"space": "cosine"}})


def grow_plain(
    collection: Any,
    texts: list[str],
    vectors: Callable[[int, int], np.ndarray],
    start: int,
    end: int,
    *,
    users: int,
) -> float:
    """Add memories ``start..end-1`` with the same vectors and a ``user_id``; returns seconds."""
    t0 = time.perf_counter()
    for s in range(start, end, _CHROMA_BATCH):
        e = min(end, s + _CHROMA_BATCH)
        collection.add(
            ids=[f"m{i}" for i in range(s, e)],
            documents=texts[s:e],
            embeddings=vectors(s, e),
            metadatas=[{"user_id": owner(i, users)} for i in range(s, e)],
        )
    return time.perf_counter() - t0


def time_plain_queries(
    collection: Any, embedder: Any, queries: list[str], users: list[str] | None
) -> list[float]:
    """Milliseconds per plain Chroma query (query embedding included, as in the engine's search).

    With ``users`` each query has ``where={"user_id": ...}`` (round-robin over ``users``).
    """
    out = []
    for q in queries[:2]:  # warm-up: load the collection's index
        collection.query(query_embeddings=[embedder.embed_query(q)], n_results=10)
    for j, q in enumerate(queries):
        t0 = time.perf_counter()
        qv = embedder.embed_query(q)
        kwargs: dict[str, Any] = {"where": {"user_id": users[j % len(users)]}} if users else {}
        collection.query(query_embeddings=[qv], n_results=10, **kwargs)
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


__all__ = [
    "PLAIN_COLLECTION",
    "grow_engine",
    "grow_plain",
    "grow_tenants",
    "plain_collection",
    "tenant_name",
    "time_plain_queries",
    "turn",
]
