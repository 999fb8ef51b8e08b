"""What the engine adds to an embedded store's ``chroma.sqlite3``: two indexes and planner statistics.

Both only make Chroma's own queries faster; neither changes what they return. Chroma never names
them, its migrations (applied by version) do not look at them, and a table Chroma drops or
rebuilds takes them along (the next open adds them again). The engine uses its own ``sqlite3``
connection, as :mod:`.erasure` does.

**The log index.** Chroma 1.x keeps every write of every collection in one table
(``embeddings_queue``) until each segment of the collection has stored a mark past it, and reads
a collection's part on every write to it (to apply it) and on its first read in a process, with
``WHERE topic = ? AND seq_id > ?``. The table has no index on ``topic``, so SQLite walks every row
after the mark, of all collections. A collection smaller than its ``sync_threshold`` never saves
its HNSW index, so its mark stays at 0 and its writes stay in the log for good
(:mod:`.hnsw_config`): in a store of many small tenants the log is the whole store. With 2,000
tenants x 50 records, reading one tenant's 50 rows took 137.7 ms, and 0.21 ms with an index on
``(topic, seq_id)``. Building it is one pass over the log (1.4 s for 100,000 rows, once).

**The segment index.** Every Chroma call looks up its collection's segments
(``get_collection_with_segments``: a write three times, for the write, its backfill and its
log purge) with ``WHERE collection = ?`` on a table that has no index on ``collection``: each
call walks the segments of every collection. At 4,000 collections (2,000 tenants) a one-id
``get`` took 2.73 ms, and 0.94 ms with an index on ``segments (collection)``.

**Planner statistics.** Chroma never runs ``ANALYZE``, so SQLite plans a filtered ``get`` of a
large collection without knowing its size: ``where={"rev": {"$gt": ...}}`` (how a process catches
up with others) walks the collection's whole id index and tests each id against the matches,
19.7 ms at 100k records when nothing matched; with statistics SQLite looks up the few matches,
0.73 ms. A ``where={"user_id": ...}`` partition load of 100 records in a 100k tenant went from
52.9 to 22.6 ms (a user holding the whole collection loads slower, 400 to 545 ms a page; the
snapshot spares it). The statistics are sampled (``PRAGMA analysis_limit``: 40 ms at 100k) and
taken when a process opens a store whose record count moved by more than half since the last
ones (:func:`tune`), before Chroma opens the file: SQLite reads them when a connection loads
the schema. Figures: ``python benchmarks/chroma_sqlite.py <store>``
(``benchmarks/results/chroma-sqlite-*.json``).

On a ``chroma run`` server the engine cannot reach the file; the operator can run
``python -m mem_adapters.data.chroma_sqlite --path <the server's --path>`` while the server is
stopped (it reads the statistics when it starts).
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

DB_FILE = "chroma.sqlite3"
LOG_INDEX = "mem_adapters_embeddings_queue_topic_seq"
SEGMENT_INDEX = "mem_adapters_segments_collection"
INDEXES = {  # name: (table, columns); Chroma's own tables, indexes of ours
    LOG_INDEX: ("embeddings_queue", "topic, seq_id"),
    SEGMENT_INDEX: ("segments", "collection"),
}
BUSY_TIMEOUT_S = 120.0  # Chroma may be writing: wait for it rather than fail
ANALYZE_MIN_RECORDS = 1000  # below this SQLite's default guesses plan well enough
ANALYZE_SAMPLE = 1000  # PRAGMA analysis_limit: rows sampled per index
RESTAT_FACTOR = 1.5  # statistics are taken again when the record count moved by more than this


def connect(db_path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    """A connection of our own to Chroma's file, waiting up to :data:`BUSY_TIMEOUT_S` for its locks.

    A writable one autocommits (``isolation_level=None``): each statement is its own
    transaction unless the caller opens one, so no lock of ours outlives a statement by
    accident. A read-only one (``mode=ro``) only reads.
    """
    if read_only:
        con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
    else:
        con = sqlite3.connect(str(db_path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
    con.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    return con


def missing_indexes(db_path: Path) -> list[str]:
    """Names in :data:`INDEXES` that ``chroma.sqlite3`` at ``db_path`` does not hold."""
    con = connect(db_path, read_only=True)
    try:
        have = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    finally:
        con.close()
    return [name for name in INDEXES if name not in have]


def _records(con: sqlite3.Connection) -> int:
    """Rows of Chroma's ``embeddings`` table (every collection's records)."""
    row = con.execute("SELECT COUNT(*) FROM embeddings").fetchone()
    return int(row[0] or 0)


def _stat_records(con: sqlite3.Connection) -> int | None:
    """Rows of ``embeddings`` when statistics were last taken, or ``None`` if never."""
    try:
        row = con.execute(
            "SELECT stat FROM sqlite_stat1 WHERE tbl = 'embeddings' AND stat IS NOT NULL LIMIT 1"
        ).fetchone()
    except sqlite3.OperationalError:  # no sqlite_stat1: never analysed
        return None
    return int(str(row[0]).split()[0]) if row else None


def stats_stale(db_path: Path) -> bool:
    """Whether the store is large enough for statistics and has none, or none near its size."""
    con = connect(db_path, read_only=True)
    try:
        n = _records(con)
        if n < ANALYZE_MIN_RECORDS:
            return False
        had = _stat_records(con)
        return had is None or not (had / RESTAT_FACTOR <= n <= had * RESTAT_FACTOR)
    finally:
        con.close()


def ensure_indexes(db_path: Path) -> list[str]:
    """Add the indexes of :data:`INDEXES` that are missing; the names added."""
    missing = missing_indexes(db_path)
    if not missing:
        return []
    con = connect(db_path)
    try:
        for name in missing:
            table, columns = INDEXES[name]
            con.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns})")
    finally:
        con.close()
    logger.info("added the indexes %s to %s", ", ".join(missing), db_path)
    return missing


def analyze(db_path: Path) -> None:
    """Take sampled planner statistics of the whole file (``ANALYZE``)."""
    con = connect(db_path)
    try:
        con.execute(f"PRAGMA analysis_limit = {ANALYZE_SAMPLE}")
        con.execute("ANALYZE")
    finally:
        con.close()
    logger.info("took SQLite planner statistics of %s", db_path)


def tune(persist_directory: str | Path) -> bool:
    """Add what is missing or stale to an embedded store's file; nothing if there is no file.

    Only a speed-up: a file that cannot be changed (read-only, locked past the timeout, not
    Chroma's) is left as it is, with a warning.

    Returns:
        Whether there was a file to look at (tuned, or left alone with a warning); ``False``
        tells the caller to call again once Chroma has created it.
    """
    db_path = Path(persist_directory) / DB_FILE
    if not db_path.exists():
        return False
    try:
        ensure_indexes(db_path)
        if stats_stale(db_path):
            analyze(db_path)
    except sqlite3.Error:
        logger.warning("could not tune %s (a speed-up only)", db_path, exc_info=True)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mem_adapters.data.chroma_sqlite --path <persist folder>``: tune a store's file."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--path", required=True, help="a Chroma persist folder (holds chroma.sqlite3)")
    args = ap.parse_args(argv)
    db_path = Path(args.path) / DB_FILE
    if not db_path.exists():
        print(f"no {DB_FILE} in {args.path}", file=sys.stderr)
        return 2
    ensure_indexes(db_path)
    analyze(db_path)
    print(f"{db_path}: indexes present, statistics taken")
    return 0


if __name__ == "__main__":
    sys.exit(main())
