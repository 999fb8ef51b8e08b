"""An experiment (issue #10, RSS per idle tenant): memory a touched collection keeps, by HNSW cache size.

    .venv/bin/python benchmarks/hnsw_cache.py --collections 300 --sizes 0,2,8,32 \
        --out benchmarks/results/hnsw-cache.json

Chroma's local core keeps every HNSW index it opened in an LRU cache sized from the open-file
limit (``RLIMIT_NOFILE // 5``: 4,000 indexes on this machine). This builds one embedded store
of ``--collections`` collections of 50 random 384-d vectors, then, for each cache size, a fresh
process opens it with ``RustBindingsAPI.hnsw_cache_size`` set to that size before Chroma
starts (0: Chroma's own), runs one query and one ``get`` per collection, calls
``malloc_trim`` and reports (RSS after - RSS before) / collections, median of ``--runs``.

Result (``benchmarks/results/hnsw-cache.json``): 2.68 MB per collection with Chroma's cache,
0.61 MB with 8, 0.60 MB with 32. The engine does NOT use a smaller cache: with 32 indexes,
reads of collections whose index was evicted before Chroma had written it to disk failed
("Error creating hnsw segment reader: Nothing found on disk"; chromadb 1.5.9; in both of two
runs of ``tests/test_bench_scale.py tests/test_shared_sessions.py`` in one process, while the
same run with Chroma's own size passed). Bounding it needs those indexes persisted first.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BUILD = """
import sys, numpy as np
import chromadb
path, n = sys.argv[1], int(sys.argv[2])
client = chromadb.PersistentClient(path=path)
rng = np.random.default_rng(0)
for t in range(n):
    col = client.create_collection(f"bench-{t}", embedding_function=None)
    col.add(ids=[f"{t}-{i}" for i in range(50)], embeddings=rng.random((50, 384)).tolist(),
            documents=[f"document {i} of collection {t} " * 5 for i in range(50)],
            metadatas=[{"user_id": f"u{i % 5}", "kind": "turn"} for i in range(50)])
"""

TOUCH = """
import ctypes, json, os, sys, numpy as np
import chromadb
from chromadb.api.rust import RustBindingsAPI
size = int(os.environ["CACHE"])
if size > 0:
    start = RustBindingsAPI.start
    def bounded(self):
        self.hnsw_cache_size = size
        start(self)
    RustBindingsAPI.start = bounded
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
path, n = sys.argv[1], int(sys.argv[2])
client = chromadb.PersistentClient(path=path)
rng = np.random.default_rng(1)
before = rss()
for t in range(n):
    col = client.get_collection(f"bench-{t}")
    col.query(query_embeddings=[rng.random(384).tolist()], n_results=10)
    col.get(limit=50, include=["metadatas", "documents"])
ctypes.CDLL(None).malloc_trim(0)
print(json.dumps({"held": client._server.hnsw_cache_size, "mb_per_collection": (rss() - before) / n}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--collections", type=int, default=300)
    ap.add_argument("--sizes", default="0,2,8,32")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    with tempfile.TemporaryDirectory() as tmp:
        store = str(Path(tmp) / "store")
        subprocess.run([sys.executable, "-c", BUILD, store, str(args.collections)], env=env, check=True)
        rows = []
        for size in [int(s) for s in args.sizes.split(",")]:
            runs = []
            for _ in range(args.runs):
                out = subprocess.run(
                    [sys.executable, "-c", TOUCH, store, str(args.collections)],
                    env={**env, "CACHE": str(size)},
                    check=True, capture_output=True, text=True,
                )  # fmt: skip
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            row = {
                "cache_setting": size,
                "indexes_held": runs[0]["held"],
                "mb_per_collection_median": statistics.median(r["mb_per_collection"] for r in runs),
                "runs": [r["mb_per_collection"] for r in runs],
            }
            rows.append(row)
            print(json.dumps(row))
    report = {"collections": args.collections, "load_avg": os.getloadavg(), "rows": rows}
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
