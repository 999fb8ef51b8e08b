"""What plain embedded Chroma costs by itself: the floors under two `bench scale` targets (issue #10).

    .venv/bin/python benchmarks/chroma_floors.py --records 10000 \
        --out benchmarks/results/chroma-floors.json

Two measurements, each of plain ``chromadb`` with no mem-adapters code in the measured path:

- **RSS a read costs.** A store of ``--records`` random 384-d vectors with metadata shaped like
  the engine's turns (21 keys) is built once; then a fresh process opens it and reads a single
  id (``get(limit=1, include=[])``). Chroma's local executor replays the collection's log
  into its HNSW index before the first read of a collection in a process
  (``try_backfill_collection``, ``rust/frontend/src/executor/local.rs``), which loads the
  whole index into memory. ``rss_kb_per_record`` = (RSS after - RSS before) / records, both
  after ``malloc_trim``; the ``rss_per_record_kb`` target is 3 KB for everything.
- **RSS a touched collection keeps.** ``--collections`` collections of 50 such records (one
  per tenant, as the engine's many-tenants shape); a fresh process reads one id of each, and
  ``rss_mb_per_collection`` = (RSS after - RSS before) / collections, after ``malloc_trim``. The
  ``tenants_rss_per_tenant_mb`` target is 0.5 MB per touched-then-idle tenant.
- **Per-call write.** One ``upsert`` of one record with a precomputed vector, median of
  ``--calls``: with one metadata key and with the 21 keys of a turn. Next to it the real
  embedder on one text at a time (``embed_documents([text])``, as the bench's per-turn
  reference). ``per_turn_ratio_bound`` = embed / (embed + upsert of 21 keys): the per-turn
  ingest ratio an engine reaches if it does nothing but embed and make that one Chroma call.
  The ``ingest_per_turn_ratio`` target is 0.6.
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

DIM = 384


def turn_meta(i: int) -> dict[str, object]:
    """Metadata of the shape the engine writes for a turn (same keys, similar values)."""
    ts = 1_700_000_000.0 + i
    return {
        "indexed": True, "sub_tenant_id": "", "expires_at": 253402300799.0, "sub_session_id": "",
        "updated_at": ts, "created_at": ts, "user_id": "u0000", "role": "Caroline",
        "session_id": f"u0000-s{i // 20}", "seq": 1_796_150_069_381_877_094 + i, "enrich": "pending",
        "status": "active", "meta": "{}", "is_latest": True, "version": 1, "caller_id": f"m{i}",
        "tenant_id": "bench", "kind": "turn", "rev": 1_796_150_069_382_759_509 + i, "ts": ts,
        "agent_id": "",
    }  # fmt: skip


def write_report(report: dict[str, object], out: str | None) -> None:
    """Print the report as JSON and write it to ``out`` if given (the benchmarks/ scripts)."""
    print(json.dumps(report, indent=1))
    if out:
        Path(out).write_text(json.dumps(report, indent=1) + "\n")


def unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random unit vectors of :data:`DIM` floats."""
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def build(path: str, records: int) -> None:
    import chromadb

    col = chromadb.PersistentClient(path=path).create_collection("floor-read", embedding_function=None)
    rng = np.random.default_rng(0)
    for start in range(0, records, 1000):
        n = min(1000, records - start)
        col.add(
            ids=[f"m{start + i}" for i in range(n)],
            embeddings=unit_vectors(rng, n).tolist(),
            documents=[f"turn {start + i}: we talked about the trip to the lake" for i in range(n)],
            metadatas=[turn_meta(start + i) for i in range(n)],
        )


def build_many(path: str, collections: int) -> None:
    import chromadb

    client = chromadb.PersistentClient(path=path)
    rng = np.random.default_rng(2)
    for c in range(collections):
        col = client.create_collection(f"floor-tenant-{c}", embedding_function=None)
        col.add(
            ids=[f"t{c}-m{i}" for i in range(50)],
            embeddings=unit_vectors(rng, 50).tolist(),
            documents=[f"turn {i} of tenant {c}: we talked about the lake" for i in range(50)],
            metadatas=[turn_meta(i) for i in range(50)],
        )


def read_rss(path: str) -> dict[str, float]:
    import ctypes

    import chromadb

    def rss_mb() -> float:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    trim = ctypes.CDLL(None).malloc_trim
    client = chromadb.PersistentClient(path=path)
    # The first read of a process starts Chroma's executor: a tiny collection takes it, uncounted.
    cols = sorted(client.list_collections(), key=lambda c: (c.name != "floor-tenant-0", c.name))
    cols[0].get(limit=1, include=[])
    cols = cols[1:]
    trim(0)
    before = rss_mb()
    for col in cols:
        col.get(limit=1, include=[])
    trim(0)
    after = rss_mb()
    return {"rss_before_mb": round(before, 1), "rss_after_mb": round(after, 1), "collections": len(cols)}


def write_floor(calls: int, model_dir: str | None) -> dict[str, float | None]:
    import chromadb

    col = chromadb.PersistentClient(path=tempfile.mkdtemp()).create_collection(
        "floor-write", embedding_function=None
    )
    rng = np.random.default_rng(1)
    vecs = unit_vectors(rng, 2 * calls + 1).tolist()
    col.upsert(ids=["warm"], embeddings=[vecs[-1]], documents=["warm"], metadatas=[{"a": 1}])
    out: dict[str, float | None] = {}
    for name, meta in (("upsert_1_key_ms", lambda i: {"kind": "turn"}), ("upsert_21_keys_ms", turn_meta)):
        times = []
        for i in range(calls):
            j = i if name.startswith("upsert_1") else calls + i
            t0 = time.perf_counter()
            col.upsert(ids=[f"{name}-{i}"], embeddings=[vecs[j]], documents=[f"text {i}"],
                       metadatas=[meta(i)])  # fmt: skip
            times.append((time.perf_counter() - t0) * 1000)
        out[name] = round(statistics.median(times), 3)
    out["embed_one_text_ms"] = None
    if model_dir is not None:
        from mem_adapters.embeddings import OnnxMiniLMEmbedder

        emb = OnnxMiniLMEmbedder(model_dir)
        texts = [f"I went to the lake with my sister on day {i} and we saw herons" for i in range(calls)]
        emb.embed_documents(texts[:5])
        times = []
        for x in texts:
            t0 = time.perf_counter()
            emb.embed_documents([x])
            times.append((time.perf_counter() - t0) * 1000)
        out["embed_one_text_ms"] = round(statistics.median(times), 3)
        total = out["embed_one_text_ms"] + out["upsert_21_keys_ms"]  # type: ignore[operator]
        out["per_turn_ratio_bound"] = round(out["embed_one_text_ms"] / total, 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--collections", type=int, default=200)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3, help="fresh reading processes")
    ap.add_argument("--model-dir", default=os.environ.get("MEM_ADAPTERS_MODEL_DIR"))
    ap.add_argument("--out", default=None)
    ap.add_argument("--_read", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._read:
        print(json.dumps(read_rss(args._read)))
        return
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    report: dict[str, object] = {"records": args.records, "load_avg_start": os.getloadavg()}

    def fresh_reads(store: str) -> list[dict[str, float]]:
        runs = []
        for _ in range(args.runs):
            cmd = [sys.executable, __file__, "--_read", store]
            res = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
            runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
        return runs

    with tempfile.TemporaryDirectory() as tmp:
        store = str(Path(tmp) / "one")
        build_many(store, 1)
        build(store, args.records)
        runs = fresh_reads(store)
        per = [(r["rss_after_mb"] - r["rss_before_mb"]) * 1024 / args.records for r in runs]
        report["read"] = {"runs": runs, "rss_kb_per_record": round(statistics.median(per), 3)}
        store = str(Path(tmp) / "many")
        build_many(store, args.collections + 1)
        runs = fresh_reads(store)
        per = [(r["rss_after_mb"] - r["rss_before_mb"]) / r["collections"] for r in runs]
        report["tenants"] = {"runs": runs, "rss_mb_per_collection": round(statistics.median(per), 3)}
    report["write"] = write_floor(args.calls, args.model_dir)
    import chromadb

    report["chromadb"] = chromadb.__version__
    report["load_avg_end"] = os.getloadavg()
    write_report(report, args.out)


if __name__ == "__main__":
    main()
