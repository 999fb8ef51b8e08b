"""The unused slots of Chroma's HNSW files, and zeroing them.

Chroma's hnswlib fork allocates an index's element buffer with ``malloc`` (not ``calloc``) for
``max_elements`` slots and, when it creates a persistent index, writes the *whole* buffer to
``data_level0.bin`` (and the lengths buffer to ``length.bin``) — slots no element uses yet
included (``initPersistentIndex`` in chroma-core/hnswlib). Those slots hold whatever the
process's heap held before: freed memory, which may be the vectors of records an erase just
deleted (a dropped collection's index, a read's buffers). An element added later is written
over its slot after a ``memset`` (``addPoint``), so only the slots past the header's
``cur_element_count`` can hold such garbage.

:func:`zero_unused_slots` overwrites those slots with zero bytes. Chroma reads them only as
room to grow (a reopen reads the header's count of elements), and writes a slot only when it
adds an element there, so zeroing them while the collection lives changes nothing it reads.
The caller must hold the store's exclusive section: no Chroma call may run meanwhile.

Header layout (``HEADER_FIELDS`` of hnswalg.h, persistence version 1, little-endian):
``int32 version, size_t offsetLevel0, size_t max_elements, size_t cur_element_count,
size_t size_data_per_element, ...`` (100 bytes in all).
"""

from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

HEADER = "header.bin"
LEVEL0 = "data_level0.bin"
LENGTHS = "length.bin"
PERSISTENCE_VERSION = 1
_HEAD = struct.Struct("<iQQQQ")  # version, offsetLevel0, max_elements, cur_element_count, size/element
_LENGTH_BYTES = 4  # one float per slot in length.bin
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Header:
    """What the zeroing needs of an index's header."""

    max_elements: int
    count: int
    element_bytes: int


def read_header(folder: Path) -> Header | None:
    """The header of the index in ``folder``, or ``None`` (no index, or a format we do not know)."""
    try:
        raw = (folder / HEADER).read_bytes()[: _HEAD.size]
    except OSError:
        return None
    if len(raw) < _HEAD.size:
        return None
    version, _offset, max_elements, count, element_bytes = _HEAD.unpack(raw)
    if version != PERSISTENCE_VERSION or not 0 <= count <= max_elements or element_bytes <= 0:
        logger.warning("not zeroing %s: an HNSW header this code does not know", folder)
        return None
    return Header(max_elements=max_elements, count=count, element_bytes=element_bytes)


def _zero_from(path: Path, start: int) -> int:
    """Overwrite ``path`` from byte ``start`` to its end with zeros; returns how many were not zero."""
    try:
        size = path.stat().st_size
    except OSError:
        return 0
    if size <= start:
        return 0
    dirty = 0
    zeros = bytes(_CHUNK)
    with path.open("r+b") as f:
        pos = start
        while pos < size:
            n = min(_CHUNK, size - pos)
            f.seek(pos)
            block = f.read(n)
            if block.count(0) != len(block):  # only rewrite what is not zero already
                dirty += len(block) - block.count(0)
                f.seek(pos)
                f.write(zeros[:n])
            pos += n
        f.flush()
        os.fsync(f.fileno())
    return dirty


def zero_unused_slots(folder: Path) -> int:
    """Zero the slots past the element count in ``folder``'s HNSW files; returns the bytes changed."""
    head = read_header(folder)
    if head is None:
        return 0
    return _zero_from(folder / LEVEL0, head.count * head.element_bytes) + _zero_from(
        folder / LENGTHS, head.count * _LENGTH_BYTES
    )
