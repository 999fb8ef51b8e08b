"""What one-record writes cost in plain Chroma against the HNSW ``sync_threshold`` (issue #10).

    .venv/bin/python benchmarks/hnsw_sync.py --sizes 1000,100000 --thresholds 50,100,200,1000 \
        --out benchmarks/results/hnsw-sync.json

Chroma 1.x appends each write to its log and then applies the log to the collection's segments
(``push_logs`` sends a ``BackfillMessage``: ``rust/log/src/sqlite_log.rs``). The backfill reads the
log from the *older* of two marks, the metadata segment's (moved on every write) and the HNSW
segment's, which is stored only when the index is written to disk, every ``sync_threshold``
records (``rust/segment/src/local_hnsw.rs``, default 1,000; ``local_compaction_manager.rs``). So
every write reads back all records written since the last save, embeddings included: a one-record
upsert grows slower with each write until the next save. Saving costs more as the collection
grows (the whole id map is pickled again), which is what a lower threshold trades in.

For each size a collection of random unit vectors with turn-shaped metadata (21 keys, a document
each) is built once. Then for each threshold a fresh process sets ``sync_threshold`` (before its
first write: Chroma reads the setting when it builds the segment writer) and times ``--calls``
one-record upserts, new ids each: ``mean_ms`` is the figure that counts for a chat app, since it
covers whole save cycles. No mem-adapters code is in the measured path.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chroma_floors import turn_meta, unit_vectors, write_report

NAME = "sync-bench"


def build(path: str, records: int) -> None:
    """A collection of ``records`` turn-shaped records, written in batches of 1,000."""
    import chromadb

    col = chromadb.PersistentClient(path=path).create_collection(
        NAME, configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
    )
    rng = np.random.default_rng(0)
    for start in range(0, records, 1000):
        n = min(1000, records - start)
        col.add(
            ids=[f"m{start + i}" for i in range(n)],
            embeddings=unit_vectors(rng, n),
            documents=[f"stored text {start + i}" for i in range(n)],
            metadatas=[turn_meta(start + i) for i in range(n)],
        )


def time_writes(path: str, threshold: int, calls: int, tag: str) -> dict[str, float]:
    """In this (fresh) process: set the threshold, then time ``calls`` one-record upserts."""
    import chromadb

    col = chromadb.PersistentClient(path=path).get_collection(NAME, embedding_function=None)
    col.modify(configuration={"hnsw": {"sync_threshold": threshold}})
    rng = np.random.default_rng(threshold)
    vecs = unit_vectors(rng, calls)
    times = []
    for i in range(calls):
        meta = turn_meta(10_000_000 + i)
        t0 = time.perf_counter()
        col.upsert(
            ids=[f"{tag}-{i}"], embeddings=vecs[i : i + 1], documents=[f"new text {i}"], metadatas=[meta]
        )
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {
        "sync_threshold": threshold,
        "calls": calls,
        "mean_ms": round(statistics.fmean(times), 3),
        "p50_ms": round(statistics.median(times), 3),
        "p99_ms": round(times[int(0.99 * (len(times) - 1))], 3),
        "max_ms": round(times[-1], 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,100000")
    ap.add_argument("--thresholds", default="50,100,200,1000")
    ap.add_argument(
        "--calls", type=int, default=1000, help="one-record upserts per run (cover a default save cycle)"
    )
    ap.add_argument("--out", default=None)
    ap.add_argument("--_time", nargs=3, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._time:
        path, threshold, tag = args._time
        print(json.dumps(time_writes(path, int(threshold), args.calls, tag)))
        return
    import chromadb

    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    report: dict[str, object] = {"chromadb": chromadb.__version__, "load_avg_start": os.getloadavg()}
    sizes: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            store = str(Path(tmp) / f"s{size}")
            t0 = time.perf_counter()
            build(store, size)
            build_s = round(time.perf_counter() - t0, 1)
            runs = []
            for th in (int(t) for t in args.thresholds.split(",")):
                cmd = [
                    sys.executable,
                    __file__,
                    "--calls",
                    str(args.calls),
                    "--_time",
                    store,
                    str(th),
                    f"t{th}",
                ]
                res = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
                runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
                print(size, runs[-1], flush=True)
            sizes[str(size)] = {"build_s": build_s, "runs": runs}
    report["sizes"] = sizes
    report["load_avg_end"] = os.getloadavg()
    write_report(report, args.out)


if __name__ == "__main__":
    main()
