"""The embedded Chroma client an engine opens on a folder: Chroma's own, with fewer HNSW indexes held.

Chroma's local core keeps every HNSW index it has opened in an LRU cache sized from the
process's open-file limit (``RLIMIT_NOFILE // 5``: about 200 indexes at a 1,024 limit, 200k at
a container's usual 1M), and an index stays in memory until the cache evicts it. With many
tenants that is most of the memory a touched-then-idle tenant keeps: on 300 collections of
50 vectors, one query and one ``get`` each, 2.70 MB per collection stayed with Chroma's cache
(4,000 indexes at this machine's limit), 0.64 MB with a cache of 2, 8 or 32
(``benchmarks/hnsw_cache.py``, ``benchmarks/results/hnsw-cache.json``). What stays then is
Chroma's per-collection state outside the HNSW cache.

The engine reads user- and session-scoped searches from its own partitions, never from
Chroma's HNSW; only tenant-wide search and Chroma's log apply use an index. So a small cache
costs a reload of a tenant's index when a tenant-wide search comes back to it after others.
``MEM_ADAPTERS_HNSW_CACHE`` sets how many indexes are held (default 32; ``0`` keeps Chroma's
own size). The size is given to Chroma's ``RustBindingsAPI`` while this process's client for
the folder is created; a client made before for the same folder keeps what it had.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

logger = logging.getLogger(__name__)

HNSW_CACHE_ENV = "MEM_ADAPTERS_HNSW_CACHE"
DEFAULT_HNSW_CACHE = 32
_creating = threading.Lock()  # the size is handed over on a class attribute: one creation at a time


def hnsw_cache_size() -> int | None:
    """The HNSW cache size to ask for (``None``: Chroma's own)."""
    raw = os.environ.get(HNSW_CACHE_ENV, "").strip()
    if not raw:
        return DEFAULT_HNSW_CACHE
    try:
        size = int(raw)
    except ValueError:
        logger.warning("%s=%r is not an integer: using %d", HNSW_CACHE_ENV, raw, DEFAULT_HNSW_CACHE)
        return DEFAULT_HNSW_CACHE
    return None if size <= 0 else max(2, size)  # a tenant's two collections at least


def open_persistent(path: str) -> Any:
    """``chromadb.PersistentClient(path)`` holding at most :func:`hnsw_cache_size` indexes."""
    import chromadb
    from chromadb.api.rust import RustBindingsAPI  # chromadb >= 1.0 (the floor is 1.0.9)

    size = hnsw_cache_size()
    if size is None:
        return chromadb.PersistentClient(path=path)
    with _creating:
        start = RustBindingsAPI.start

        def bounded_start(self: Any) -> None:
            self.hnsw_cache_size = min(int(getattr(self, "hnsw_cache_size", size)), size)
            start(self)

        RustBindingsAPI.start = bounded_start  # type: ignore[method-assign]
        try:
            return chromadb.PersistentClient(path=path)
        finally:
            RustBindingsAPI.start = start  # type: ignore[method-assign]
