"""Derived snapshots of partitions on disk, so a new process searches at once.

A snapshot is a partition as it was after a catch-up: a header line (format version,
embedder identity, Chroma collection id, revision watermark, checksum of the payload) and
the pickled partition. It is derived data: read only when every header field matches and
the checksum holds, otherwise ignored (and rewritten after the next full load). After
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
from pathlib import Path
from typing import Any

from .partition import Partition

logger = logging.getLogger(__name__)

FORMAT = 1
MIN_RECORDS = 2000  # smaller partitions load from Chroma faster than a file is worth


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
    def dumps(part: Partition, *, embedder: str, collection_id: str) -> tuple[tuple[str, str | None], bytes]:
        """Serialise ``part`` (on the thread that owns it, so the copy is consistent)."""
        # Derived per-search state settled once here, not again by every process that reads it.
        part.order_sessions()
        part.session_lengths()
        payload = pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL)
        header = {
            "format": FORMAT,
            "layout": LAYOUT,
            "embedder": embedder,
            "collection": collection_id,
            "checked": part.checked,
            "watermark": part.watermark,
            "crc32": zlib.crc32(payload),
            "size": len(payload),
            "tenant": _digest(part.key[0]),
            "records": len(part),
        }
        return part.key, json.dumps(header).encode() + b"\n" + payload

    def write(self, key: tuple[str, str | None], blob: bytes) -> Path:
        """Write a serialised partition atomically (temp file, then rename); returns the file."""
        target = self.path(*key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
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
                # Mapped, not read into one more copy of the file (hundreds of MB at 100k).
                with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                    view = memoryview(mm)[offset:]
                    try:
                        part = self._unpickle(path, header, view, embedder)
                    finally:
                        view.release()
        except (OSError, ValueError):
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
            or header.get("crc32") != zlib.crc32(payload)
        ):
            logger.info("ignoring stale or damaged snapshot %s", path)
            return None
        # The cyclic collector would walk the hundreds of thousands of objects being built
        # several times over (a 100k-record partition: 1.1 s with it, 0.3 s without).
        collecting = gc.isenabled()
        gc.disable()
        try:
            part = pickle.loads(payload)
        except Exception:  # a damaged file is derived data: load from Chroma instead
            logger.warning("unreadable snapshot %s", path, exc_info=True)
            return None
        finally:
            if collecting:
                gc.enable()
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
