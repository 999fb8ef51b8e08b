"""How often Chroma saves a collection's HNSW index, and why the engine saves it more often.

Chroma 1.x appends every write to its log and then applies the log to the collection's
segments. It reads the log from the older of two marks: the metadata segment's mark moves on
every write, but the HNSW segment's mark is stored only when the index is saved to disk, every
``sync_threshold`` records (Chroma's default: 1,000). So each write reads back every record
written since the last save, embeddings included, and a one-turn write (what a chat app makes)
gets slower with each write until the next save. A save costs more as a collection grows
(Chroma pickles its whole id map again), so the threshold trades one cost for the other. Mean
one-record upsert over 1,000 of them (``benchmarks/hnsw_sync.py``, chromadb 1.5.9, turn-shaped
metadata, ``benchmarks/results/hnsw-sync.json``): 32.9 ms at Chroma's 1,000 against 13.3 ms at
100 in a collection of 1k records, 37.2 against 17.1 ms at 100k; 50 and 200 measured worse
at 100k.

**How wide Chroma searches.** A large partition takes its dense candidates from Chroma's
index (``DataLayer.nearest``; 240 of them at 100k records). At Chroma's ``ef_search`` of 100,
hnswlib searches as wide as the 240 asked for, and the exact top 10 of 60 LoCoMo questions on
the 100k one-user store kept 96.3% of its items (46 of 60 lists identical); at
:data:`MEMORY_EF_SEARCH` (400) 99.2% (56 of 60), the query taking 6.7 ms instead of 4.8, and at
800, 99.3% in 8.7 ms (``benchmarks/warm_search.py --ann --ef-search``,
``benchmarks/results/ann-ef-search.json``). Memory
collections are created with it and existing ones take it when opened; the aux collection is
never searched by vector.

The engine creates its collections with :data:`DEFAULT_SYNC_THRESHOLD`
(``$MEM_ADAPTERS_HNSW_SYNC_THRESHOLD`` overrides it) and sets it on existing collections
when it opens them. Chroma reads the setting when it first writes to a collection in a process,
so an embedded store takes it at once; a ``chroma run`` server already holding the collection
takes it when it restarts.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from ..errors import ValidationError

logger = logging.getLogger(__name__)

ENV = "MEM_ADAPTERS_HNSW_SYNC_THRESHOLD"
DEFAULT_SYNC_THRESHOLD = 100
MEMORY_EF_SEARCH = 400


def sync_threshold_from_env() -> int:
    """``$MEM_ADAPTERS_HNSW_SYNC_THRESHOLD``, else :data:`DEFAULT_SYNC_THRESHOLD`.

    Raises:
        ValidationError: the variable is set but not a whole number of at least 1.
    """
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return DEFAULT_SYNC_THRESHOLD
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValidationError(ENV, f"must be a whole number of at least 1, got {raw!r}")
    return value


def configuration(threshold: int, *, cosine: bool) -> dict[str, Any]:
    """The ``configuration`` a collection is created with (memory collections: cosine, wider search)."""
    hnsw: dict[str, Any] = {"sync_threshold": threshold}
    if cosine:
        hnsw["space"] = "cosine"
        hnsw["ef_search"] = MEMORY_EF_SEARCH
    return {"hnsw": hnsw}


def _hnsw_setting(collection: Any, key: str) -> int | None:
    # The raw JSON: ``collection.configuration`` parses it again and warns about the legacy
    # embedding-function entry of collections made with ``embedding_function=None``.
    config = getattr(collection, "configuration_json", None)
    hnsw = config.get("hnsw") if isinstance(config, dict) else None
    value = hnsw.get(key) if isinstance(hnsw, dict) else None
    return value if isinstance(value, int) else None


def current(collection: Any) -> int | None:
    """The collection's ``sync_threshold``, or ``None`` if its client does not say."""
    return _hnsw_setting(collection, "sync_threshold")


def ef_search(collection: Any) -> int | None:
    """The collection's ``ef_search``, or ``None`` if its client does not say."""
    return _hnsw_setting(collection, "ef_search")


def needs_update(collection: Any, threshold: int) -> bool:
    """Whether an existing collection saves its index less or more often than ``threshold``."""
    value = current(collection)
    return value is not None and value != threshold


def updates(collection: Any, threshold: int, *, memory: bool) -> dict[str, int]:
    """The HNSW settings an existing collection lacks (``sync_threshold``; ``ef_search`` if ``memory``)."""
    out: dict[str, int] = {}
    if needs_update(collection, threshold):
        out["sync_threshold"] = threshold
    value = ef_search(collection)
    if memory and value is not None and value != MEMORY_EF_SEARCH:
        out["ef_search"] = MEMORY_EF_SEARCH
    return out


__all__ = [
    "DEFAULT_SYNC_THRESHOLD",
    "ENV",
    "MEMORY_EF_SEARCH",
    "configuration",
    "current",
    "ef_search",
    "needs_update",
    "sync_threshold_from_env",
    "updates",
]
