"""How much of Chroma's write log a store keeps, and what reading one collection's part costs (issue #10).

    .venv/bin/python benchmarks/chroma_log_scan.py <store folder> [--out FILE]

Chroma 1.x keeps every write in one SQLite table (``embeddings_queue``) until each segment of the
collection has stored a mark past it; the HNSW segment stores its mark only when it saves the
index, every ``sync_threshold`` records (``data/hnsw_config.py``). A collection smaller than the
threshold never saves it, so its writes stay in the log for good. The table has no index on the
collection (``topic``): the first read of a collection in a process replays its log with a query
that walks every row after the collection's mark, so it costs the size of the whole log, not of
the collection. This script reads the store's SQLite file (read-only, Chroma not running on it),
counts the log rows and collections, and times that query for a few collections, as Chroma's
``SqliteLog`` writes it. No mem-adapters code is in the measured path.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import time
from pathlib import Path

QUERY = (
    "SELECT seq_id, id, operation, vector, encoding, metadata FROM embeddings_queue "
    "WHERE topic = ? AND seq_id > ? ORDER BY seq_id"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store", help="folder of an embedded store (holds chroma.sqlite3)")
    ap.add_argument("--samples", type=int, default=20, help="collections whose log is read")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    db = sqlite3.connect(f"file:{Path(args.store) / 'chroma.sqlite3'}?mode=ro", uri=True)
    rows = db.execute("SELECT COUNT(*) FROM embeddings_queue").fetchone()[0]
    topics = [t for (t,) in db.execute("SELECT DISTINCT topic FROM embeddings_queue ORDER BY topic")]
    plan = db.execute(f"EXPLAIN QUERY PLAN {QUERY}", ("x", 0)).fetchall()
    step = max(1, len(topics) // max(1, args.samples))
    times, sizes = [], []
    for topic in topics[::step][: args.samples]:
        t0 = time.perf_counter()
        got = db.execute(QUERY, (topic, 0)).fetchall()
        times.append((time.perf_counter() - t0) * 1000)
        sizes.append(len(got))
    report = {
        "log_rows": rows,
        "collections_in_log": len(topics),
        "query_plan": [str(p[-1]) for p in plan],
        "sampled": len(times),
        "rows_per_sampled_collection_p50": statistics.median(sizes) if sizes else 0,
        "read_one_collection_log_ms_p50": round(statistics.median(times), 2) if times else None,
    }
    print(json.dumps(report, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
