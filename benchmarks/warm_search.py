"""Warm user-scoped search and one-turn writes of whatever engine is importable, for A/B runs (issue #10).

    .venv/bin/python benchmarks/warm_search.py --store <folder> [--tenant T --user U] [--out FILE]
    # another commit's engine on the same store, e.g. from a worktree:
    PYTHONPATH=<worktree>/src .venv/bin/python benchmarks/warm_search.py --store <copy of the folder>

The scale bench's figures move from run to run with the machine; two commits compared in
turns on the same store and the same minute say whether a change moved them. Reports the p50 /
p95 of ``--queries`` user-scoped searches (LoCoMo questions, after 5 warm-up ones), the median
of each of the search's ``stage_timings``, the Chroma calls a warm search makes, and the mean
time of ``--per-turn`` one-turn ``remember`` calls into a fresh store in a temporary folder
(the real embedder; ``0`` skips it). ``--ann N`` searches N times more, each query with dense
candidates from Chroma's index and scored exactly in turns (a partition of ``ann_min_rows``
rows or more), and reports how many of the exact top 10 the index's way keeps; ``--ef-search``
and ``--overfetch`` set how wide Chroma searches and how many candidates are asked for (the
first is set on the store when the engine opens it).
``--first-users N`` adds, in a new process, the first search of N other users (each loads its
partition; for the 1,000-users store). ``engine`` names the source tree that ran.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import functools
import json
import statistics
import subprocess
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import chromadb.api.models.Collection as chroma_collection

import mem_adapters
import mem_adapters.data.layer as layer
from mem_adapters.benchscale.data import MemoryGenerator, load_questions, load_turns
from mem_adapters.data import hnsw_config
from mem_adapters.embeddings import OnnxMiniLMEmbedder
from mem_adapters.engine import MemoryEngine

CALLS: collections.Counter[str] = collections.Counter()


def _count_chroma_calls() -> None:
    for name in ("get", "query", "count"):
        method = getattr(chroma_collection.Collection, name)

        def counted(*args: Any, _method: Any = method, _name: str = name, **kwargs: Any) -> Any:
            CALLS[_name] += 1
            return _method(*args, **kwargs)

        setattr(chroma_collection.Collection, name, functools.wraps(method)(counted))


def _source() -> str:
    src = Path(mem_adapters.__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        )
        return f"{src} ({out.stdout.strip() or 'no git'})"
    except OSError:
        return str(src)


def searches(store: str, tenant: str, user: str, data: str, queries: int, emb: Any) -> dict[str, Any]:
    """Warm user-scoped search figures on ``store``."""
    qs = load_questions(data, queries + 5)
    eng = MemoryEngine(store, embedder=emb)
    try:
        for q in qs[:5]:
            eng.search(q, user_id=user, tenant_id=tenant)
        CALLS.clear()
        ms, stages = [], collections.defaultdict(list)
        for q in qs[5 : 5 + queries]:
            t0 = time.perf_counter()
            res = eng.search(q, user_id=user, tenant_id=tenant)
            ms.append((time.perf_counter() - t0) * 1000)
            for k, v in (res.stage_timings or {}).items():
                stages[k].append(v)
    finally:
        eng.close()
    ms.sort()
    return {
        "queries": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 2),
        "stage_p50_ms": {k: round(statistics.median(v), 2) for k, v in stages.items()},
        "chroma_calls_per_search": {k: round(v / len(ms), 3) for k, v in CALLS.items()},
    }


def ann_agreement(store: str, tenant: str, user: str, data: str, queries: int, emb: Any) -> dict[str, Any]:
    """The same user-scoped searches with dense candidates from Chroma's index and scored exactly.

    For a partition of at least ``RetrievalConfig.ann_min_rows`` rows: each query is searched
    both ways, in turns; reports each way's p50 and how many of the exact top 10 the other
    way also returns.
    """
    qs = load_questions(data, queries + 5)
    eng = MemoryEngine(store, embedder=emb)
    cfg = eng.aengine.retriever.config
    ways = {"ann": cfg, "exact": dataclasses.replace(cfg, ann_min_rows=10**12)}
    try:
        for q in qs[:5]:
            for c in ways.values():
                eng.aengine.retriever.config = c
                eng.search(q, user_id=user, tenant_id=tenant)
        ms: dict[str, list[float]] = {w: [] for w in ways}
        kept: list[float] = []
        for q in qs[5 : 5 + queries]:
            ids = {}
            for w, c in ways.items():
                eng.aengine.retriever.config = c
                t0 = time.perf_counter()
                res = eng.search(q, user_id=user, tenant_id=tenant, k=10)
                ms[w].append((time.perf_counter() - t0) * 1000)
                ids[w] = [r.id for r in res.results]
            if ids["exact"]:
                kept.append(len(set(ids["ann"]) & set(ids["exact"])) / len(ids["exact"]))
        ann_queries = eng.aengine.retriever.data.ann_queries
    finally:
        eng.close()
    return {
        "queries": len(kept),
        "p50_ms": {w: round(statistics.median(v), 2) for w, v in ms.items()},
        "top10_kept_mean": round(statistics.mean(kept), 4),
        "top10_identical": sum(k == 1.0 for k in kept),
        "ann_queries": ann_queries,
    }


def first_of_users(store: str, tenant: str, user: str, data: str, n: int, emb: Any) -> dict[str, Any]:
    """The first search of ``n`` other users (``u0100`` on) after ``user``'s, in one process.

    Each loads that user's partition (the 1,000-users store of the scale bench); the queries
    are LoCoMo questions, which mostly name a speaker.
    """
    qs = load_questions(data, n + 1)
    eng = MemoryEngine(store, embedder=emb)
    try:
        eng.search(qs[0], user_id=user, tenant_id=tenant)
        ms = []
        for j, q in enumerate(qs[1 : n + 1]):
            t0 = time.perf_counter()
            eng.search(q, user_id=f"u{100 + j:04d}", tenant_id=tenant)
            ms.append((time.perf_counter() - t0) * 1000)
    finally:
        eng.close()
    ms.sort()
    return {"users": len(ms), "p50_ms": round(statistics.median(ms), 2),
            "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 2)}  # fmt: skip


def per_turn(data: str, n: int, emb: Any) -> dict[str, Any]:
    """Mean time of ``n`` one-turn ``remember`` calls into a fresh store."""
    texts = MemoryGenerator(load_turns(data), 0, offset=10_000_000).texts(n)
    t0 = datetime(2024, 6, 1, tzinfo=timezone.utc)
    with tempfile.TemporaryDirectory() as tmp:
        eng = MemoryEngine(Path(tmp) / "s", embedder=emb)
        try:
            eng.remember([{"role": "user", "text": "warm", "timestamp": t0}], session_id="w", user_id="u")
            start = time.perf_counter()
            for j, text in enumerate(texts):
                turn = {"role": "user", "text": text, "timestamp": t0 + timedelta(days=1, seconds=j)}
                eng.remember([turn], session_id="chat", user_id="u")
            took = time.perf_counter() - start
        finally:
            eng.close()
    return {"turns": n, "mean_ms": round(took / n * 1000, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--store", required=True, help="an engine store folder (searched, not written)")
    ap.add_argument("--tenant", default="bench")
    ap.add_argument("--user", default="u0000")
    ap.add_argument("--data", default="../shared/data/locomo/locomo-dev.json")
    ap.add_argument("--queries", type=int, default=60)
    ap.add_argument("--per-turn", type=int, default=200, help="one-turn writes timed (0: none)")
    ap.add_argument(
        "--first-users", type=int, default=0, help="time the first search of this many other users (0: none)"
    )
    ap.add_argument(
        "--ann", type=int, default=0, help="this many searches with and without Chroma's index (0: none)"
    )
    ap.add_argument("--ef-search", type=int, default=None,
                    help="memory collections' ef_search for this run (hnsw_config.MEMORY_EF_SEARCH; the "
                         "engine sets it on the store when it opens it)")  # fmt: skip
    ap.add_argument("--overfetch", type=float, default=None, help="data.layer.ANN_OVERFETCH for this run")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.ef_search is not None:
        hnsw_config.MEMORY_EF_SEARCH = args.ef_search
    if args.overfetch is not None:
        layer.ANN_OVERFETCH = args.overfetch
    _count_chroma_calls()
    emb = OnnxMiniLMEmbedder()
    report = {
        "engine": _source(),
        "ef_search": hnsw_config.MEMORY_EF_SEARCH,
        "overfetch": layer.ANN_OVERFETCH,
        "store": args.store,
        "search": searches(args.store, args.tenant, args.user, args.data, args.queries, emb),
        "per_turn": per_turn(args.data, args.per_turn, emb) if args.per_turn else None,
    }
    if args.first_users:
        report["first_of_other_users"] = first_of_users(
            args.store, args.tenant, args.user, args.data, args.first_users, emb
        )
    if args.ann:
        report["ann_against_exact"] = ann_agreement(
            args.store, args.tenant, args.user, args.data, args.ann, emb
        )
    print(json.dumps(report, indent=1))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
