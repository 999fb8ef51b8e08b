"""Freed memory is overwritten: so no file Chroma writes later can carry an erased record.

Chroma's hnswlib writes a new index's ``malloc``'d buffer to disk whole (see
:mod:`.hnsw_files`). On glibc, ``malloc`` hands out freed memory as it was, so an index
created at any later time in the process (a new tenant, a rebuild) could write the bytes of
vectors an erase deleted, if they sat in freed heap memory. Zeroing the files' unused slots at
erase time covers what exists then; this covers what is created afterwards.

:func:`scrub_freed_memory` turns on glibc's ``M_PERTURB`` (``mallopt``): every ``free`` fills
the block with one byte value and every ``malloc`` hands out the complement, never old data.
It is process-wide and applies to Chroma's Rust core too (it links glibc's allocator).

Cost (``benchmarks/freed_memory.py``, ``benchmarks/results/freed-memory.json``, medians of 3
interleaved runs): CPU time of writing 200 LoCoMo turns and 80 searches 1.02x; the RSS of a
process holding a 10k-record store after user-scoped searches 1.06x (9.8 MB, about 1 KB per
record), because every new block is filled at once. The cheaper switch, a fixed
``M_MMAP_THRESHOLD`` (large blocks as fresh zero pages), does not hold: once the embedder has
freed large blocks into the heap, later large allocations are carved from them, old bytes and
all (seen with ``tests/test_hnsw_slack.py``'s probe), so it is not used.

``MEM_ADAPTERS_SCRUB_FREED_MEMORY=0`` leaves the allocator alone (an erase receipt then says
so). Elsewhere than glibc (musl, macOS) there is no such switch: the receipt says that too.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys

logger = logging.getLogger(__name__)

M_PERTURB = -6  # glibc malloc.h
PERTURB_BYTE = 0xA5
ENV = "MEM_ADAPTERS_SCRUB_FREED_MEMORY"

_state: bool | None = None  # None: not tried yet


def scrub_freed_memory() -> bool:
    """Turn on glibc's ``M_PERTURB`` once per process; returns whether freed memory is overwritten."""
    global _state
    if _state is not None:
        return _state
    if os.environ.get(ENV, "1").strip() == "0":
        _state = False
        return _state
    if os.environ.get("MALLOC_PERTURB_", "").strip() not in ("", "0"):
        _state = True  # the process was started with glibc's own switch
        return _state
    _state = False
    if sys.platform.startswith("linux"):
        try:
            mallopt = ctypes.CDLL(None).mallopt
        except (OSError, AttributeError):  # not glibc (musl has no mallopt symbol)
            mallopt = None
        if mallopt is not None:
            mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            mallopt.restype = ctypes.c_int
            _state = bool(mallopt(M_PERTURB, PERTURB_BYTE))
    if not _state:
        logger.info("freed memory is not overwritten on this platform (no glibc M_PERTURB)")
    return _state


def freed_memory_note() -> str:
    """One receipt line: whether a later index can carry freed memory of this process."""
    if _state:
        return "heap: freed memory is overwritten (glibc M_PERTURB): no later file can carry it"
    return (
        "heap: freed memory is NOT overwritten on this platform or by setting "
        f"({ENV}=0): a collection created later in this process may carry erased vectors "
        "in unused HNSW slots until the next erase zeroes them"
    )
