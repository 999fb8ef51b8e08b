"""The open-file limit sets how many collections an embedded Chroma can serve from one process.

Chroma's local core keeps each HNSW index it opened in an LRU pool sized from the process's
soft ``RLIMIT_NOFILE`` (``limit // 5``: an index holds five files; ``chromadb/api/rust.py``),
fixed when the first client of a path starts. An index that falls out of that pool before
Chroma has written it to disk (it writes one every ``sync_threshold`` = 1,000 added records)
cannot be read again in that process: Chroma replays its log into an index once per collection
and process (``try_backfill_collection`` in ``rust/frontend/src/executor/local.rs``), so the
next read fails with "Error creating hnsw segment reader: Nothing found on disk" (chromadb
1.5.9). With the common default soft limit of 1,024 that is 204 indexes, about 100 tenants.

:func:`raise_open_file_limit` lifts the soft limit to the hard one (at most
:data:`CAP`) before the engine builds its embedded client, so a process serves as many tenants
as the machine allows; it warns when even that leaves fewer than :data:`WARN_BELOW` indexes.
``MEM_ADAPTERS_RAISE_OPEN_FILES=0`` leaves the limit alone. A client the caller built is
already sized: raise the limit before building it.
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)

ENV = "MEM_ADAPTERS_RAISE_OPEN_FILES"
CAP = 1 << 20  # when the hard limit is unlimited
FILES_PER_INDEX = 5  # Chroma's own divisor
WARN_BELOW = 2_000  # indexes: 1,000 tenants with a memory and an aux collection each

MACOS_OPEN_MAX = 10_240  # macOS refuses a soft limit above OPEN_MAX whatever the hard one says

_indexes: int | None = None
_done = False


def raise_open_file_limit() -> int | None:
    """Raise the soft open-file limit to the hard one, once per process.

    Returns:
        How many HNSW indexes Chroma will keep open (``None`` where there are no rlimits).

    Example:
        >>> n = raise_open_file_limit()
        >>> n is None or n > 0
        True
    """
    global _done, _indexes
    if _done:
        return _indexes
    _done = True
    try:
        import resource
    except ImportError:  # Windows: Chroma sizes its pool from _getmaxstdio instead
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if os.environ.get(ENV, "1").strip() != "0":
        target = CAP if hard == resource.RLIM_INFINITY else min(hard, CAP)
        for value in (target, min(target, MACOS_OPEN_MAX)):
            if soft == resource.RLIM_INFINITY or soft >= value:
                break
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (value, hard))
            except (ValueError, OSError) as e:
                logger.debug("open-file limit %d refused: %s", value, e)
                continue
            logger.debug("open-file limit raised from %d to %d", soft, value)
            soft = value
            break
    _indexes = (CAP if soft == resource.RLIM_INFINITY else soft) // FILES_PER_INDEX
    if _indexes < WARN_BELOW:
        logger.warning(
            "Chroma will keep at most %d HNSW indexes open in this process (open-file limit %d): "
            "a process that touches more collections can fail reads of evicted ones; raise the "
            "hard limit (ulimit -Hn) for many tenants",
            _indexes,
            soft,
        )
    return _indexes


__all__ = ["ENV", "raise_open_file_limit"]
