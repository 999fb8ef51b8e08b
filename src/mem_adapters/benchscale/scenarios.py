"""The scenarios beside the size sweep: many tenants, and two processes on ``chroma run``.

Many tenants: one store, each tenant its own collections; a fresh process times the first
search of each cold tenant and the RSS each touched-then-idle tenant leaves. Two processes: a
real ``chroma run``, a writer process remembering a turn every 100 ms and a searcher process;
busy against idle latency, and how fresh the searcher's view of the newest write is.
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import Any

from . import build
from .data import LookupEmbedder, MemoryGenerator, owner
from .measure import summary
from .server import BenchError, ChromaServer, finish_probe, run_probe, start_probe

logger = logging.getLogger(__name__)

LIVE_OFFSET = 60_000_000


def _engine(path: Any = None, **kw: Any) -> Any:
    from ..engine import MemoryEngine

    return MemoryEngine(path, **kw)


def measure_tenants(
    tenants: int,
    per_tenant: int,
    touch: int,
    *,
    gen: MemoryGenerator,
    texts: list[str],
    lookup: LookupEmbedder,
    questions: list[str],
    workdir: Path,
    spec_base: dict[str, Any],
    bar: Any,
    timeout: float,
    idle_s: float,
) -> dict[str, Any]:
    """Build the many-tenants store and probe it in a fresh process (see the module docstring)."""
    path = workdir / "tenants"
    engine = _engine(path, embedder=lookup)
    try:
        build_s = build.grow_tenants(
            engine,
            gen,
            texts,
            tenants,
            per_tenant,
            bar.task(f"build {tenants:,} tenants x {per_tenant}", tenants * per_tenant),
        )
    finally:
        engine.close()
    names = [build.tenant_name(t) for t in range(min(tenants, touch + 1))]
    bar.note(f"many tenants: first search of {len(names) - 1} cold tenants in a fresh process")
    res = run_probe(
        "tenants",
        {**spec_base, "path": str(path), "tenants": names, "queries": questions, "idle_s": idle_s},
        timeout,
    )
    touched = max(1, res["touched"])
    return {
        "tenants": tenants,
        "turns_per_tenant": per_tenant,
        "touched": res["touched"],
        "idle_s": idle_s,
        "cold_first_search": summary(res["cold_ms"]),
        "warm_search": summary(res["warm_ms"]),
        "rss_before_mb": round(res["rss_before"] / 2**20, 1),
        "rss_after_mb": round(res["rss_after"] / 2**20, 1),
        "rss_per_tenant_mb": round((res["rss_after"] - res["rss_before"]) / touched / 2**20, 4),
        "build_s": round(build_s, 2),
    }


def measure_server(
    size: int,
    seconds: float,
    interval: float,
    *,
    gen: MemoryGenerator,
    texts: list[str],
    lookup: LookupEmbedder,
    turns_src: Any,
    seed: int,
    workdir: Path,
    spec_base: dict[str, Any],
    bar: Any,
    queries: int,
) -> dict[str, Any]:
    """Start ``chroma run``, fill one tenant, run the searcher and the writer processes; stop all."""
    import chromadb

    live = MemoryGenerator(turns_src, seed, offset=LIVE_OFFSET).texts(int(seconds / interval) + 200)
    ack_log, go_file = workdir / "server-acks.jsonl", workdir / "server-go"
    for f in (ack_log, go_file):
        f.unlink(missing_ok=True)
    rng = random.Random(f"server:{size}")
    idle_texts = [texts[i] for i in rng.sample(range(size), min(size, queries + 3))]
    procs = []
    with ChromaServer(workdir / "server-db") as server:
        remote = {"host": server.host, "port": server.port}
        engine = _engine(client=chromadb.HttpClient(**remote), embedder=lookup)
        try:
            build_s = build.grow_engine(
                engine,
                gen,
                texts,
                0,
                size,
                users=1,
                tenant="server",
                advance=bar.task(f"build {size:,} on chroma run", size),
            )
        finally:
            engine.close()
        bar.note(
            f"chroma run: idle searches, then {seconds:.0f} s with a writer every {interval * 1000:.0f} ms"
        )
        spec = {**spec_base, **remote, "tenant": "server", "user": owner(0, 1)}
        try:
            searcher = start_probe(
                "searcher",
                {
                    **spec,
                    "idle_texts": idle_texts,
                    "ack_log": str(ack_log),
                    "go_file": str(go_file),
                    "seconds": seconds,
                },
            )
            procs.append(searcher)
            deadline = time.monotonic() + 600
            while not go_file.exists():
                if searcher.poll() is not None or time.monotonic() > deadline:
                    return {"error": str(_probe_error(searcher, "searcher"))}
                time.sleep(0.05)
            writer = start_probe(
                "writer",
                {
                    **spec,
                    "texts": live,
                    "ack_log": str(ack_log),
                    "interval": interval,
                    "seconds": seconds + 5.0,
                },
            )
            procs.append(writer)
            res = finish_probe(searcher, "searcher", timeout=seconds + 600)
            wres = finish_probe(writer, "writer", timeout=seconds + 120)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait(timeout=10)
    idle, busy = summary(res["idle_ms"]), summary(res["busy_ms"])
    seen = res["seen"]
    probed = len(seen) + res["unseen"]
    ages = [s["age_ms"] for s in seen]
    return {
        "size": size,
        "writer_interval_s": interval,
        "busy_seconds": seconds,
        "writes": wres["writes"],
        "idle": idle,
        "busy": busy,
        "busy_idle_p50_ratio": round(busy["p50_ms"] / idle["p50_ms"], 3) if idle["n"] and busy["n"] else None,
        "busy_idle_p95_ratio": round(busy["p95_ms"] / idle["p95_ms"], 3) if idle["n"] and busy["n"] else None,
        "freshness": {
            "probed_writes": probed,
            "seen": len(seen),
            "within_one_search": round(sum(1 for s in seen if s["searches"] == 1) / probed, 4)
            if probed
            else None,
            "searches_to_see_max": max((s["searches"] for s in seen), default=None),
            # seen: in the results, or held by the partition the search used but ranked below k
            "ranked_out": sum(1 for s in seen if s.get("ranked_out")),
            "age_ms": summary(ages),
        },
        "build_s": round(build_s, 2),
    }


def _probe_error(proc: Any, role: str) -> BenchError:
    try:
        finish_probe(proc, role, timeout=10)
    except BenchError as e:
        return e
    return BenchError(f"probe {role!r} ended before it was ready")


__all__ = ["LIVE_OFFSET", "measure_server", "measure_tenants"]
