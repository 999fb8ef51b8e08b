"""What the indexes and statistics of ``mem_adapters.data.chroma_sqlite`` save Chroma (issue #10).

    .venv/bin/python benchmarks/chroma_sqlite.py <store folder> [--out FILE] [--user ID]

Copies the store twice into a temporary folder: one copy stays as Chroma left it, the other
gets what the engine adds when it opens a store (``chroma_sqlite.tune``: two indexes, sampled
planner statistics). Then, for each copy, a fresh ``chromadb.PersistentClient`` (only
chromadb in the measured path) times, over up to ``--samples`` memory collections:

- ``log_read_ms``: Chroma's own query for one collection's log, run by ``sqlite3`` (what its
  backfill on a write or a first read costs);
- ``get_one_id_ms``: ``get(ids=[one id])``, the fixed cost of a call;
- ``rev_filter_ms``: ``get(where={"rev": {"$gt": <max>}})`` (how a process catches up; nothing
  matches);
- ``user_filter_ms``: ``get(where={"user_id": <user>})`` with documents, metadatas and
  embeddings (how a user's partition is loaded), and ``whole_read_ms``: the same collection
  read without the filter (what the engine does for a tenant of at most ``WHOLE_READ_MAX``);
- ``session_filter_ms``: the live turns of one session of that user with their metadata
  (``kind``, ``session_id``, ``user_id`` and ``status`` ANDed: how ``get_messages`` used to
  read), and ``session_only_ms``: by ``session_id`` alone (how it reads now).

Each figure is the median over the sampled collections of the median of ``--calls`` calls,
after one read of the collection (Chroma loads its index then).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import chromadb

from mem_adapters.data import chroma_sqlite
from mem_adapters.data.layer import WHOLE_READ_MAX

LOG_QUERY = (
    "SELECT seq_id, id, operation, vector, encoding, metadata FROM embeddings_queue "
    "WHERE topic = ? AND seq_id > ? ORDER BY seq_id"
)


def _median_ms(fn: Callable[[], Any], calls: int) -> float:
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _collection(
    col: Any, db: sqlite3.Connection, topic: str | None, user: str | None, calls: int
) -> dict[str, float]:
    """The figures of one collection (see the module's docstring)."""
    col.get(ids=["-"])  # Chroma replays the log and loads the index on the first read
    out = {}
    if topic is not None:
        out["log_read_ms"] = _median_ms(lambda: db.execute(LOG_QUERY, (topic, 0)).fetchall(), calls)
    out["get_one_id_ms"] = _median_ms(lambda: col.get(ids=["-"], include=[]), calls)
    where_rev = {"rev": {"$gt": 2**62}}
    out["rev_filter_ms"] = _median_ms(
        lambda: col.get(where=where_rev, include=["metadatas"], limit=1000), calls
    )
    first = (col.get(limit=1, include=["metadatas"])["metadatas"] or [{}])[0]
    who = user or first.get("user_id")
    inc = ["documents", "metadatas", "embeddings"]
    if who is not None:
        out["user_filter_ms"] = _median_ms(
            lambda: col.get(where={"user_id": who}, include=inc, limit=1000), calls
        )
        one = col.get(where={"user_id": who}, limit=1, include=["metadatas"])["metadatas"]
        session = (one or [{}])[0].get("session_id")
        if session is not None:
            clauses = [{"kind": "turn"}, {"session_id": session}, {"user_id": who}, {"status": "active"}]
            out["session_filter_ms"] = _median_ms(
                lambda: col.get(where={"$and": clauses}, include=["metadatas"], limit=1000), calls
            )
            out["session_only_ms"] = _median_ms(
                lambda: col.get(where={"session_id": session}, include=["metadatas"], limit=1000), calls
            )
    out["records"] = size = col.count()
    if size <= WHOLE_READ_MAX:
        out["whole_read_ms"] = _median_ms(lambda: col.get(include=inc, limit=1000), calls)
    return out


def measure(path: Path, *, samples: int, calls: int, user: str | None) -> dict[str, Any]:
    """Medians over up to ``samples`` memory collections of the store at ``path``."""
    db = sqlite3.connect(f"file:{path / chroma_sqlite.DB_FILE}?mode=ro", uri=True)
    topics = [t for (t,) in db.execute("SELECT DISTINCT topic FROM embeddings_queue")]
    client = chromadb.PersistentClient(path=str(path))
    names = sorted(c.name for c in client.list_collections() if c.name.endswith("-mem"))
    picked = names[:: max(1, len(names) // max(1, samples))][:samples]
    per: list[dict[str, float]] = []
    for name in picked:
        col = client.get_collection(name, embedding_function=None)
        topic = next((t for t in topics if t.endswith(str(col.id))), None)
        per.append(_collection(col, db, topic, user, calls))
    db.close()
    keys = (
        "log_read_ms",
        "get_one_id_ms",
        "rev_filter_ms",
        "user_filter_ms",
        "session_filter_ms",
        "session_only_ms",
        "whole_read_ms",
        "records",
    )
    out: dict[str, Any] = {}
    for key in keys:
        values = [p[key] for p in per if key in p]
        out[key] = round(statistics.median(values), 2) if values else None
    out["sampled_collections"] = len(per)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("store", type=Path, help="folder of an embedded store (holds chroma.sqlite3)")
    ap.add_argument("--samples", type=int, default=10, help="memory collections measured")
    ap.add_argument("--calls", type=int, default=7, help="calls per figure and collection")
    ap.add_argument("--user", default=None, help="user id of the user filter (default: a record's)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.store.parent) as tmp:
        plain, tuned = Path(tmp) / "plain", Path(tmp) / "tuned"
        shutil.copytree(args.store, plain)
        con = sqlite3.connect(plain / chroma_sqlite.DB_FILE, isolation_level=None)
        for name in chroma_sqlite.INDEXES:  # a store the engine opened holds them already
            con.execute(f"DROP INDEX IF EXISTS {name}")
        con.execute("DROP TABLE IF EXISTS sqlite_stat1")
        con.close()
        shutil.copytree(plain, tuned)
        t0 = time.perf_counter()
        chroma_sqlite.ensure_indexes(tuned / chroma_sqlite.DB_FILE)
        index_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        chroma_sqlite.analyze(tuned / chroma_sqlite.DB_FILE)
        analyze_s = time.perf_counter() - t0
        con = sqlite3.connect(plain / chroma_sqlite.DB_FILE)
        shape = {
            "records": con.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0],
            "collections": con.execute("SELECT COUNT(*) FROM collections").fetchone()[0],
            "log_rows": con.execute("SELECT COUNT(*) FROM embeddings_queue").fetchone()[0],
        }
        con.close()
        report = {
            "store": str(args.store),
            "chromadb": chromadb.__version__,
            **shape,
            "build_indexes_s": round(index_s, 3),
            "analyze_s": round(analyze_s, 3),
            "as_chroma_left_it": measure(plain, samples=args.samples, calls=args.calls, user=args.user),
            "tuned": measure(tuned, samples=args.samples, calls=args.calls, user=args.user),
        }
    print(json.dumps(report, indent=1))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
