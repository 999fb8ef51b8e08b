"""Derived snapshots of partitions on disk, so a new process searches at once.

A snapshot is a partition as it was after a catch-up: a header line (format version,
embedder identity, Chroma collection id, revision watermark, checksum of the payload) and
the pickled partition, its numpy arrays (the vectors: most of the file) stored out of band
after the pickle, each at an aligned offset. A new process maps the file copy-on-write and
the arrays are views of the mapping: nothing is copied, and the checksum is computed beside
the unpickling (zlib lets go of the GIL). At 100k records the file is 200 MB: copying the
vectors out of it and checksumming before unpickling took about 0.27 s of a first search
(``benchmarks/snapshot_load.py``). Nor are the vectors copied into numpy's own memory for
huge pages: the checksum has read every page of the mapping, so a copy held them twice (147 MB
more resident at 100k records, ``benchmarks/results/snapshot-rss-ab.json``), and a partition
large enough for huge pages to matter takes its dense candidates from Chroma's index instead of
scanning them (``DataLayer.nearest``). It is derived data: read only when every header field
matches and the checksum holds, otherwise ignored (and rewritten after the next full load). After
reading one, the data layer catches up by revision from its watermark, exactly as a
long-running process does; a snapshot older than half the tombstone TTL is not used (the
tombstones it would need may be gone).

Snapshots live in ``<store path>/.mem_adapters-derived/`` for an embedded store (or the
``snapshot_dir`` given); erasing a user or a tenant deletes theirs.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import mmap
import os
import pickle
import shutil
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .partition import Partition

logger = logging.getLogger(__name__)

FORMAT = 2  # 2: arrays out of band, mapped on load
ALIGN = 64  # byte alignment of the header's end and of each array in the file
MIN_RECORDS = 2000  # smaller partitions load from Chroma faster than a file is worth


_CRC = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mem-adapters-snapshot-crc")


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:24]


def _layout() -> str:
    """Fingerprint of the partition's fields.

    A snapshot pickled by a release whose :class:`Partition` had other fields is stale, even
    when nobody bumped :data:`FORMAT` (unpickling it would give a partition missing fields).
    """
    return _digest(",".join(sorted(vars(Partition(("", None), 1)))))


LAYOUT = _layout()


class SnapshotStore:
    """Reads and writes partition snapshots under one folder.

    Args:
        root: Folder of the snapshots (created on first write).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _tenant_dir(self, tenant_id: str) -> Path:
        return self.root / _digest(tenant_id)

    def path(self, tenant_id: str, user_id: str | None) -> Path:
        """File of a scope's snapshot."""
        name = "_tenant" if user_id is None else _digest(user_id)
        return self._tenant_dir(tenant_id) / f"{name}.snap"

    @staticmethod
    def dumps(
        part: Partition, *, embedder: str, collection_id: str
    ) -> tuple[tuple[str, str | None], list[bytes]]:
        """Serialise ``part`` into the file's pieces, in order.

        Runs on the thread that owns the partition: every piece is a copy, so writes to the
        partition after this returns do not reach the file.
        """
        # Derived per-search state settled once here, not again by every process that reads it.
        part.order_sessions()
        part.session_lengths()
        buffers: list[pickle.PickleBuffer] = []
        payload = pickle.dumps(part, protocol=5, buffer_callback=buffers.append)
        arrays = [bytes(b.raw()) for b in buffers]
        pieces, offsets, at = [payload], [], len(payload)
        for a in arrays:
            pad = -at % ALIGN
            pieces.append(b"\0" * pad)
            offsets.append(at + pad)
            pieces.append(a)
            at += pad + len(a)
        crc = 0
        for piece in pieces:
            crc = zlib.crc32(piece, crc)
        header = {
            "format": FORMAT,
            "layout": LAYOUT,
            "embedder": embedder,
            "collection": collection_id,
            "checked": part.checked,
            "watermark": part.watermark,
            "crc32": crc,
            "size": at,
            "pickle": len(payload),
            "buffers": [[o, len(a)] for o, a in zip(offsets, arrays, strict=True)],  # from the header's end
            "tenant": _digest(part.key[0]),
            "records": len(part),
        }
        line = json.dumps(header).encode()
        line += b" " * (-(len(line) + 1) % ALIGN) + b"\n"  # the arrays' offsets stay aligned in the file
        return part.key, [line, *pieces]

    def write(self, key: tuple[str, str | None], blob: bytes | list[bytes]) -> Path:
        """Write a serialised partition atomically (temp file, then rename); returns the file."""
        target = self.path(*key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                for piece in [blob] if isinstance(blob, bytes) else blob:
                    f.write(piece)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def read(
        self, tenant_id: str, user_id: str | None, *, embedder: str, collection_id: str
    ) -> Partition | None:
        """The snapshot of a scope if it is whole and matches; else ``None``."""
        found = self.load(tenant_id, user_id, embedder=embedder)
        if found is None or found[1] != collection_id:
            return None
        return found[0]

    def load(self, tenant_id: str, user_id: str | None, *, embedder: str) -> tuple[Partition, str] | None:
        """The snapshot of a scope and the collection id it was taken of, if whole; else ``None``.

        The caller compares the id with the collection's (see :meth:`read`): this way the file
        can be read while the collection is being opened.
        """
        path = self.path(tenant_id, user_id)
        try:
            with open(path, "rb") as f:
                header = json.loads(f.readline())
                if not isinstance(header, dict):
                    return None
                offset = f.tell()
                size = os.fstat(f.fileno()).st_size - offset
                if size <= 0:
                    return None
                # Copy-on-write: the arrays are writable views of the file's pages, which this
                # process alone sees changed. Windows cannot replace a mapped file (the next
                # snapshot's rename), so there the pages are copied out.
                mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
            view = memoryview(mm)[offset:]
            if os.name == "nt":
                view = memoryview(bytearray(view))
                mm.close()
            part = self._unpickle(path, header, view, embedder)
        except (OSError, ValueError, TypeError, KeyError):  # unreadable, or a damaged header
            return None
        if part is None or part.key != (tenant_id, user_id):
            return None
        collection = header.get("collection")
        return (part, collection) if isinstance(collection, str) else None

    @staticmethod
    def _unpickle(path: Path, header: dict[str, Any], payload: memoryview, embedder: str) -> Partition | None:
        if (
            header.get("format") != FORMAT
            or header.get("layout") != LAYOUT
            or header.get("embedder") != embedder
            or header.get("size") != len(payload)
        ):
            logger.info("ignoring stale snapshot %s", path)
            return None
        spans = header.get("buffers", [])
        pickled = payload[: int(header["pickle"])]
        arrays = [payload[int(o) : int(o) + int(n)] for o, n in spans]
        # Checksummed beside the unpickling: a damaged file is dropped after the fact (the
        # partition built from it is never returned).
        crc = _CRC.submit(zlib.crc32, payload)
        # The cyclic collector would walk the hundreds of thousands of objects being built
        # several times over (a 100k-record partition: 1.1 s with it, 0.3 s without).
        collecting = gc.isenabled()
        gc.disable()
        try:
            part = pickle.loads(pickled, buffers=arrays)
        except Exception:  # a damaged file is derived data: load from Chroma instead
            part = None
        finally:
            if collecting:
                gc.enable()
        if crc.result() != header.get("crc32"):
            logger.info("ignoring damaged snapshot %s", path)
            return None
        if part is None:
            logger.warning("unreadable snapshot %s", path)
        return part if isinstance(part, Partition) else None

    def drop(self, tenant_id: str, user_id: str | None = None) -> None:
        """Delete a user's snapshot and the tenant-wide one, or with no user, all of a tenant's."""
        if user_id is None:
            shutil.rmtree(self._tenant_dir(tenant_id), ignore_errors=True)
            return
        for path in (self.path(tenant_id, user_id), self.path(tenant_id, None)):
            path.unlink(missing_ok=True)

    def drop_all(self) -> None:
        """Delete every snapshot (the embedder changed)."""
        shutil.rmtree(self.root, ignore_errors=True)
