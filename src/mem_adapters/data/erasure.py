"""Erasure that leaves nothing on disk: what an erase does after Chroma has deleted the records.

Deleting through Chroma's API is not erasing. On an embedded store (``PersistentClient``,
chromadb 1.x) the deleted text and vectors stay in the persist folder:

- **HNSW files.** A deleted vector is only *marked* deleted in ``data_level0.bin`` (hnswlib),
  and ``index_metadata.pickle`` keeps its id; nothing rewrites them while the collection lives.
- **Unused HNSW slots.** A new index's ``malloc``'d buffer is written to disk whole, so slots
  no element uses hold freed memory of the process, erased vectors included (:mod:`.hnsw_files`
  zeroes them; :mod:`.heap` keeps freed memory from being handed out as it was).
- **Dropped collections' folders.** ``delete_collection`` removes the rows but leaves the
  segment folder (``<persist>/<segment uuid>/``) with every vector in it.
- **SQLite free pages.** ``chroma.sqlite3`` runs in rollback-journal mode without
  ``secure_delete``: deleted rows stay in free pages until a ``VACUUM``.
- **The FTS5 trigram index** (``embedding_fulltext_search``): a delete appends a delete marker;
  the original trigrams stay in older index segments (invisible to a plain grep, found by
  ``fts5vocab``) until the segments are merged (``'optimize'``).
- **Chroma's log** (``embeddings_queue``): Chroma purges what its compactor applied but keeps
  the newest row of each collection (its sequence counter); dropping the collection drops all.

So, after the records are gone from Chroma, :class:`Eraser` rebuilds the tenant's collections
(a fresh copy of the surviving records, then the old collection dropped, see
:meth:`ChromaStore.rebuild`; crash-safe), removes the folders of dropped collections, zeroes
every index's unused slots, merges
the FTS5 index, ``VACUUM`` s the database (our own ``sqlite3`` connection, beside Chroma's;
the engine's flock keeps other processes out, see :mod:`.lock`) and then checks its work: it
greps every file of the persist folder for a sample of the erased texts and vectors and
counts log rows of the erased ids still holding data. The receipt says what was checked.

On a Chroma server only the API is reachable: records are deleted (and tombstoned), nothing
on the server's disk can be scrubbed from here. The operator runs, with the server stopped::

    python -m mem_adapters.data.erasure --path <the server's --path>

which does the same rebuild, folder removal, FTS5 merge and ``VACUUM`` on every collection.
Tombstones (record ids and the user id, no text) stay in aux until the expiry sweep removes
them after ``TOMBSTONE_TTL_S``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import mmap
import os
import re
import shutil
import sqlite3
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .chroma import ChromaStore, collection_names
from .chroma_sqlite import connect
from .clock import RevisionClock
from .heap import freed_memory_note
from .hnsw_files import zero_unused_slots

logger = logging.getLogger(__name__)

SQLITE_NAME = "chroma.sqlite3"
HNSW_FILES = frozenset(
    {"header.bin", "data_level0.bin", "length.bin", "link_lists.bin", "index_metadata.pickle"}
)
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SAMPLE = 16  # erased records whose text and vector the check greps for
NEEDLE_MIN = 16  # shorter texts are too likely to occur in what survives: not grepped
NEEDLE_LEN = 48  # bytes of a text grepped (long texts span SQLite overflow pages)
VERIFY_MAX_BYTES = 2 * 1024**3  # larger persist folders are not grepped (the receipt says so)


@dataclass
class Needles:
    """What the residue check looks for: erased records' ids, and byte strings of their texts and vectors.

    ``pairs`` holds, per sampled record, its text's first bytes and its vector's float32 bytes
    (as given, and as a unit vector: cosine collections store those).
    """

    ids: list[str] = field(default_factory=list)
    pairs: list[tuple[bytes, list[bytes]]] = field(default_factory=list)

    @property
    def texts(self) -> list[bytes]:
        """The sampled texts' bytes."""
        return [t for t, _ in self.pairs]

    @property
    def vectors(self) -> list[bytes]:
        """The sampled vectors' bytes."""
        return [v for _, vs in self.pairs for v in vs]

    def __bool__(self) -> bool:
        return bool(self.pairs)


@dataclass
class ErasureReport:
    """What the on-disk part of an erase did and verified (copied into the receipt)."""

    verified_on_disk: bool | None = None
    residue_checks: list[str] = field(default_factory=list)
    bytes_reclaimed: int = 0
    note: str | None = None
    records_rebuilt: int = 0
    folders_removed: int = 0


def needles_from(ids: Sequence[str], docs: Sequence[str | None], embeddings: Any) -> Needles:
    """Needles of erased records; records with a text under :data:`NEEDLE_MIN` bytes are left out.

    A short text ("ok") may well be said by someone who stays, and so may its vector.
    """
    out = Needles(ids=list(ids))
    for n, doc in enumerate(docs):
        raw = (doc or "").encode("utf-8")
        if len(raw) < NEEDLE_MIN:
            continue
        vectors: list[bytes] = []
        v = None if embeddings is None or n >= len(embeddings) else embeddings[n]
        if v is not None and np.asarray(v).size >= 8:  # aux placeholders ([1.0]) say nothing
            vec = np.asarray(v, dtype=np.float32)
            vectors.append(vec[:16].tobytes())
            norm = float(np.linalg.norm(vec))
            if norm > 0 and abs(norm - 1.0) > 1e-6:
                vectors.append((vec / norm).astype(np.float32)[:16].tobytes())
        out.pairs.append((raw[:NEEDLE_LEN], vectors))
    return out


def _dir_bytes(root: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(root):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.path.getsize(os.path.join(dirpath, f))
    return total


def grep_files(root: str | os.PathLike[str], needles: Sequence[bytes]) -> dict[str, int]:
    """Occurrences of any of ``needles`` in the raw bytes of every file under ``root``: ``{file: hits}``."""
    hits: dict[str, int] = {}
    if not needles:
        return hits
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            try:
                with open(path, "rb") as f:
                    if os.fstat(f.fileno()).st_size == 0:
                        continue
                    with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                        n = sum(m.find(needle) >= 0 for needle in needles)
            except (OSError, ValueError):
                continue
            if n:
                hits[os.path.relpath(path, root)] = n
    return hits


def segment_ids(db_path: Path, collection_ids: Sequence[str]) -> list[str]:
    """Ids (folder names) of the segments of the given collections."""
    if not collection_ids:
        return []
    con = connect(db_path)
    try:
        marks = ",".join("?" * len(collection_ids))
        rows = con.execute(f"SELECT id FROM segments WHERE collection IN ({marks})", list(collection_ids))
        return [str(r[0]) for r in rows]
    finally:
        con.close()


def _orphans(persist: Path, db_path: Path, dropped: Sequence[str] = ()) -> list[Path]:
    """Segment folders whose segment no row of Chroma's ``segments`` table holds any more."""
    con = connect(db_path)
    try:
        live = {str(r[0]) for r in con.execute("SELECT id FROM segments")}
    finally:
        con.close()
    out = []
    for entry in persist.iterdir():
        if not entry.is_dir() or not _UUID.match(entry.name) or entry.name in live:
            continue
        files = {p.name for p in entry.iterdir()}
        if entry.name not in dropped and not files <= HNSW_FILES:
            logger.warning("leaving %s: not a segment folder of a dropped collection", entry)
            continue
        out.append(entry)
    return out


def remove_dropped_folders(persist: Path, db_path: Path, dropped: Sequence[str] = ()) -> int:
    """Delete segment folders Chroma left behind; returns how many went.

    A folder goes if it is one of ``dropped`` (segments of collections this erase dropped) or,
    left by an earlier erase that died, is named like a segment id that no row of Chroma's
    ``segments`` table holds any more (its collection was dropped) and holds only HNSW files.
    """
    removed = 0
    for entry in _orphans(persist, db_path, dropped):
        shutil.rmtree(entry, ignore_errors=True)
        removed += not entry.exists()
    return removed


def zero_index_slack(persist: Path) -> tuple[int, int]:
    """Zero the unused slots of every index folder in ``persist`` (see :mod:`.hnsw_files`).

    Chroma writes a new index's whole ``malloc``'d buffer to disk, so a collection created
    after (or during) an erase may carry freed memory holding erased vectors in slots no
    element uses. Returns (folders changed, bytes zeroed).
    """
    folders = zeroed = 0
    for entry in persist.iterdir():
        if entry.is_dir() and _UUID.match(entry.name):
            n = zero_unused_slots(entry)
            folders += n > 0
            zeroed += n
    return folders, zeroed


def scrub_sqlite(db_path: Path) -> tuple[int, list[str]]:
    """Merge the FTS5 index, ``VACUUM``, leave no journal; returns ``(bytes reclaimed, what ran)``."""
    before = db_path.stat().st_size
    done: list[str] = []
    con = connect(db_path)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "embedding_fulltext_search" in tables:
            # Deleted entries live on in older FTS5 segments until they are merged into one.
            con.execute("INSERT INTO embedding_fulltext_search(embedding_fulltext_search) VALUES('optimize')")
            done.append("fts5: index segments merged ('optimize'): deleted entries dropped")
        con.execute("PRAGMA secure_delete = ON")
        con.execute("VACUUM")  # rewrites the file: no free page keeps a deleted row
        if "maintenance_log" in tables:
            con.execute(
                "INSERT INTO maintenance_log (operation, timestamp) VALUES ('vacuum', CURRENT_TIMESTAMP)"
            )
        mode = str(con.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        if mode == "wal":
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        done.append(f"sqlite: VACUUM (journal mode {mode})")
    finally:
        con.close()
    return max(0, before - db_path.stat().st_size), done


def not_held_by_survivors(db_path: Path, needles: Needles) -> tuple[Needles, int]:
    """``needles`` minus the records whose text a surviving document (any tenant) holds too.

    Two users may say the same thing; what survives legitimately is not residue, nor is the
    vector the same text embeds to. Asked of Chroma's FTS5 index (live documents only, after
    the merge). Returns the kept needles and how many were left out.
    """
    con = connect(db_path)
    kept = Needles(ids=needles.ids)
    try:
        for text, vectors in needles.pairs:
            phrase = '"' + text.decode("utf-8", "ignore").replace('"', '""') + '"'
            row = con.execute(
                "SELECT 1 FROM embedding_fulltext_search WHERE embedding_fulltext_search MATCH ? LIMIT 1",
                (phrase,),
            ).fetchone()
            if row is None:
                kept.pairs.append((text, vectors))
    except sqlite3.OperationalError:  # no FTS5 table (an empty store): nothing survives
        return needles, 0
    finally:
        con.close()
    return kept, len(needles.pairs) - len(kept.pairs)


def log_rows_with_data(db_path: Path, ids: Sequence[str], collection_ids: Sequence[str]) -> int:
    """Rows of Chroma's log (``embeddings_queue``) of these ids that still carry a vector or metadata.

    Only the rows of ``collection_ids`` count: another tenant may hold a record of the same id.
    """
    if not ids or not collection_ids:
        return 0
    con = connect(db_path)
    try:
        marks = ",".join("?" * len(ids))
        topics = " OR ".join("topic LIKE ?" for _ in collection_ids)
        row = con.execute(
            f"SELECT count(*) FROM embeddings_queue WHERE id IN ({marks}) AND ({topics}) "
            "AND (vector IS NOT NULL OR metadata IS NOT NULL)",
            [*ids, *(f"%/{c}" for c in collection_ids)],
        ).fetchone()
        return int(row[0])
    finally:
        con.close()


class Eraser:
    """The on-disk part of an erase, on one :class:`ChromaStore`.

    Args:
        store: The store whose records were just deleted.
        clock: The data layer's revision clock: writes stamped during a rebuild are carried over.
    """

    def __init__(self, store: ChromaStore, clock: RevisionClock | None = None) -> None:
        self.store = store
        self.clock = clock
        persist = store.persist_path()
        self.persist = Path(persist) if persist else None
        self.db_path = self.persist / SQLITE_NAME if self.persist else None

    @property
    def on_disk(self) -> bool:
        """Whether the store's files are local (embedded), so they can be scrubbed and checked."""
        return self.db_path is not None and self.db_path.exists()

    async def _thread(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def after_user_erase(self, tenant_id: str, needles: Needles) -> ErasureReport:
        """Rebuild the tenant's collections without the erased records, then scrub and check."""
        if not self.on_disk:
            return self._server_report()
        assert self.persist is not None and self.db_path is not None
        report = ErasureReport()
        dropped: list[str] = []
        collections: list[str] = []
        start = time.monotonic()
        for name in collection_names(tenant_id):
            dropped.extend(await self._segments_of(name))
            since = self.clock.since(self.clock.now()) if self.clock is not None else None
            old_id, copied = await self.store.rebuild(name, since_rev=since)
            report.records_rebuilt += copied
            collections += [i for i in (old_id, await self.store.collection_id(name)) if i]
        report.residue_checks.append(
            f"hnsw: mem and aux collections rebuilt from {report.records_rebuilt} surviving records "
            f"({time.monotonic() - start:.2f} s)"
        )
        await self._finish(report, dropped, needles, collections)
        return report

    async def _segments_of(self, name: str) -> list[str]:
        """Segment ids (folder names) of a collection, read before it is dropped."""
        cid = await self.store.collection_id(name)
        if cid is None:
            return []
        async with self.store.exclusive():  # see _finish: no Chroma call while our SQLite reads
            return await self._thread(segment_ids, self.db_path, [cid])

    async def drop_tenant(self, tenant_id: str, needles: Needles) -> ErasureReport:
        """Drop a tenant's collections, their folders too, then scrub and check."""
        if not self.on_disk:
            await self.store.drop_tenant(tenant_id)
            return self._server_report()
        assert self.db_path is not None
        ids = [i for i in [await self.store.collection_id(n) for n in collection_names(tenant_id)] if i]
        async with self.store.exclusive():
            orphans = await self._thread(_orphans, self.persist, self.db_path)
            segments = await self._thread(segment_ids, self.db_path, ids)
        if not ids and not orphans:
            # Nothing stored, nothing left by an erase that died: no VACUUM of the whole store.
            return ErasureReport(residue_checks=["collections: none, no folder of a dropped one left"])
        await self.store.drop_tenant(tenant_id)
        report = ErasureReport()
        report.residue_checks.append(f"collections: {len(ids)} dropped")
        await self._finish(report, segments, needles, ids)
        return report

    async def _finish(
        self, report: ErasureReport, dropped: list[str], needles: Needles, collections: Sequence[str] = ()
    ) -> None:
        """Scrub SQLite, remove dropped folders, then check the files (into ``report``).

        Chroma's Rust core links its own SQLite: two SQLite libraries in one process do not see
        each other's POSIX locks, so our connection must never be open while Chroma runs a
        call. The whole scrub and check therefore hold :meth:`ChromaStore.exclusive` (other
        tasks' Chroma calls wait; those in flight finish first).
        """
        async with self.store.exclusive():
            await self._scrub_and_check(report, dropped, needles, collections)

    async def _scrub_and_check(
        self, report: ErasureReport, dropped: list[str], needles: Needles, collections: Sequence[str]
    ) -> None:
        assert self.persist is not None and self.db_path is not None
        start = time.monotonic()
        # VACUUM before the folders: a crash in between leaves folders, which a rerun notices.
        reclaimed, done = await self._thread(scrub_sqlite, self.db_path)
        report.bytes_reclaimed = reclaimed
        done[-1] += f" ({time.monotonic() - start:.2f} s with the merge)"
        report.residue_checks.extend(done)
        report.folders_removed = await self._thread(
            remove_dropped_folders, self.persist, self.db_path, dropped
        )
        report.residue_checks.append(f"folders: {report.folders_removed} of dropped collections removed")
        folders, zeroed = await self._thread(zero_index_slack, self.persist)
        report.residue_checks.append(
            f"hnsw: {zeroed} bytes of unused index slots zeroed in {folders} folders"
        )
        report.residue_checks.append(freed_memory_note())
        leftovers = [p.name for p in self.persist.iterdir() if p.name.startswith(SQLITE_NAME + "-")]
        report.residue_checks.append(f"sqlite: journal/WAL files left: {len(leftovers)}")
        log_rows = await self._thread(log_rows_with_data, self.db_path, needles.ids, list(collections))
        report.residue_checks.append(
            f"log: rows of {len(needles.ids)} sampled erased ids with data: {log_rows}"
        )
        needles, shared = await self._thread(not_held_by_survivors, self.db_path, needles)
        if shared:
            report.residue_checks.append(
                f"grep: {shared} sampled texts left out: surviving records hold them too"
            )
        size = await self._thread(_dir_bytes, self.persist)
        grep_ok: bool | None = None
        if not needles:
            report.residue_checks.append("grep: nothing to grep for (no erased text of 16+ bytes or vector)")
            grep_ok = True
        elif size > VERIFY_MAX_BYTES:
            report.residue_checks.append(
                f"grep: skipped, the store holds {size} bytes (> {VERIFY_MAX_BYTES})"
            )
        else:
            t = time.monotonic()
            hits = await self._thread(grep_files, self.persist, [*needles.texts, *needles.vectors])
            late = [h for h in hits if _UUID.match(h.split(os.sep)[0])]
            if late and await self._thread(remove_dropped_folders, self.persist, self.db_path, dropped):
                # Chroma flushed a dropped collection's cached index after the removal above.
                report.residue_checks.append("folders: a dropped collection's folder came back; removed")
                hits = await self._thread(grep_files, self.persist, [*needles.texts, *needles.vectors])
            report.residue_checks.append(
                f"grep: {len(needles.texts)} erased texts and {len(needles.vectors)} vectors in every file "
                f"({size} bytes, {time.monotonic() - t:.2f} s): {sum(hits.values())} hits"
                + (f" in {sorted(hits)}" if hits else "")
            )
            grep_ok = not hits
        report.verified_on_disk = None if grep_ok is None else grep_ok and log_rows == 0 and not leftovers
        logger.info("erase scrubbed the store in %.2f s: %s", time.monotonic() - start, report.residue_checks)

    @staticmethod
    def _server_report() -> ErasureReport:
        return ErasureReport(
            verified_on_disk=None,
            residue_checks=["api: records deleted and tombstoned (ids only)"],
            note=(
                "Chroma server: its files (HNSW segments, SQLite free pages, FTS5 index, log) keep "
                "residue of deleted records until the operator stops the server and runs "
                "`python -m mem_adapters.data.erasure --path <server path>` (see docs/ERASE.md)"
            ),
        )


async def scrub_store(path: str | os.PathLike[str]) -> ErasureReport:
    """Scrub a stopped Chroma server's folder (or any embedded store): rebuild every collection.

    Every mem-adapters collection is rebuilt from its live records, the folders of dropped
    collections are removed, the FTS5 index merged and the database vacuumed.
    """
    import chromadb

    from .lock import StoreLock

    lock = StoreLock(path)  # no engine may hold the folder meanwhile
    pool = ThreadPoolExecutor(max_workers=2)
    try:
        client = chromadb.PersistentClient(path=str(path))
        store = ChromaStore(client, pool, "", 0)
        eraser = Eraser(store)
        assert eraser.db_path is not None
        report = ErasureReport()
        dropped: list[str] = []
        for name in sorted(await store.list_collection_names()):
            if not name.startswith("ma-"):
                continue
            dropped.extend(await eraser._segments_of(name))
            _, copied = await store.rebuild(name)
            report.records_rebuilt += copied
        report.residue_checks.append(f"hnsw: every collection rebuilt ({report.records_rebuilt} records)")
        await eraser._finish(report, dropped, Needles())
        # Chroma may flush a dropped collection's cached index when its system stops: stop it,
        # then remove what came back.
        from chromadb.api.client import SharedSystemClient

        SharedSystemClient.clear_system_cache()
        late = remove_dropped_folders(eraser.persist, eraser.db_path, dropped) if eraser.persist else 0
        report.residue_checks.append(f"folders: {late} written back after Chroma stopped, removed")
        if eraser.persist:
            _, zeroed = zero_index_slack(eraser.persist)
            report.residue_checks.append(f"hnsw: {zeroed} bytes of unused slots zeroed after Chroma stopped")
        return report
    finally:
        pool.shutdown(wait=True)
        lock.release()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mem_adapters.data.erasure --path DIR``: scrub a stopped server's folder."""
    parser = argparse.ArgumentParser(prog="python -m mem_adapters.data.erasure", description=main.__doc__)
    parser.add_argument(
        "--path", required=True, help="the Chroma folder (chroma run --path ...), server stopped"
    )
    args = parser.parse_args(argv)
    if not (Path(args.path) / SQLITE_NAME).exists():
        print(f"{args.path} holds no {SQLITE_NAME}", file=sys.stderr)
        return 2
    report = asyncio.run(scrub_store(args.path))
    for line in report.residue_checks:
        print(line)
    print(f"bytes reclaimed: {report.bytes_reclaimed}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
