"""Measurements that need a fresh process: ``python -m mem_adapters.benchscale.probe ROLE``.

The parent writes a JSON spec to a file named on the command line; the probe prints one JSON
object on its last stdout line. Every probe opens the engine only through its public API
(``MemoryEngine(path)`` or
``MemoryEngine(client=chromadb.HttpClient(...))``) with the real embedder, warmed up first so
that "first search after open" times the engine, not onnxruntime's first run.

Roles:
    ``user``: first user-scoped search after open, the first search of each other user
    (``user_first_ms``: it loads that user's partition), then user-scoped flat and context
    latencies, probe hits, and VmRSS after them.
    ``tenant``: the same, tenant-wide (no ``user_id``).
    With ``first_only`` in the spec, either one stops after the first search (a reopen).
    ``tenants``: many tenants — the first search of each cold tenant, a warm search, and VmRSS
    per touched-then-idle tenant.
    ``writer``: remembers one new turn every ``interval`` seconds on a Chroma server and logs
    each acknowledgement (wall time) to a file.
    ``searcher``: user-scoped searches on the server, idle then while the writer runs; the
    freshness of the writer's newest acknowledged turn.
"""

from __future__ import annotations

import json
import logging
import random
import sys
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

CONTEXT_BUDGET = 2000


def rss_bytes() -> int:
    """This process's resident set size, from ``/proc/self/status`` (``VmRSS``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise OSError("VmRSS not found in /proc/self/status")


def _embedder(spec: dict[str, Any]) -> Any:
    import chromadb  # noqa: F401  (imported before the clock starts: "open" times the engine)

    from ..embeddings import OnnxMiniLMEmbedder

    emb = OnnxMiniLMEmbedder(spec.get("model_dir"))
    for _ in range(3):
        emb.embed_query("warm up the model")
    return emb


def _engine(spec: dict[str, Any], emb: Any) -> Any:
    from ..engine import MemoryEngine

    if spec.get("host"):
        import chromadb

        client = chromadb.HttpClient(host=spec["host"], port=int(spec["port"]))
        return MemoryEngine(client=client, embedder=emb)
    return MemoryEngine(spec["path"], embedder=emb)


def _timed(fn: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t0) * 1000.0, out


def _scoped(spec: dict[str, Any], user_scoped: bool) -> dict[str, Any]:
    emb = _embedder(spec)
    rss_model = rss_bytes()
    t0 = time.perf_counter()
    engine = _engine(spec, emb)
    open_ms = (time.perf_counter() - t0) * 1000.0
    tenant = spec["tenant"]
    users: list[str] = spec["users"]
    queries: list[str] = spec["queries"]

    def scope(j: int) -> dict[str, Any]:
        return {"tenant_id": tenant, **({"user_id": users[j % len(users)]} if user_scoped else {})}

    try:
        first_ms, _ = _timed(lambda: engine.search(queries[0], k=10, **scope(0)))
        if spec.get("first_only"):
            return {"open_ms": open_ms, "first_search_ms": first_ms}
        # The other users' first searches load their partitions: timed apart, as the first
        # user's is, so that flat and context time searches of loaded users in both shapes
        # (otherwise the share of loads in the flat figures is users / queries).
        others = range(1, len(users)) if user_scoped else range(0)
        user_first = [
            _timed(lambda j=j: engine.search(queries[j % len(queries)], k=10, **scope(j)))[0] for j in others
        ]
        flat = [_timed(lambda j=j, q=q: engine.search(q, k=10, **scope(j)))[0] for j, q in enumerate(queries)]
        context = [
            _timed(
                lambda j=j, q=q: engine.search(
                    q, k=10, mode="context", char_budget=CONTEXT_BUDGET, **scope(j)
                )
            )[0]
            for j, q in enumerate(queries)
        ]
        hits = 0
        for probe_id, probe_text, probe_user in spec.get("probes", []):
            where = {"user_id": probe_user} if user_scoped else {}
            found = engine.search(probe_text, k=10, tenant_id=tenant, **where)
            # The bench writes each memory with the caller id m<i>; stored ids are scoped hashes.
            hits += any(probe_id in (r.id, r.caller_id) for r in found.results)
        rss = rss_bytes()
    finally:
        engine.close()
    return {
        "open_ms": open_ms,
        "first_search_ms": first_ms,
        "user_first_ms": user_first,
        "flat_ms": flat,
        "context_ms": context,
        "probe_hits": hits,
        "probes": len(spec.get("probes", [])),
        "rss_bytes": rss,
        "rss_model_bytes": rss_model,
    }


def _tenants(spec: dict[str, Any]) -> dict[str, Any]:
    emb = _embedder(spec)
    engine = _engine(spec, emb)
    tenants: list[str] = spec["tenants"]
    queries: list[str] = spec["queries"]
    try:
        # Warm the code paths on a first tenant, then measure against that baseline.
        engine.search(queries[0], tenant_id=tenants[0], k=10)
        engine.search(queries[1 % len(queries)], tenant_id=tenants[0], k=10)
        rss0 = rss_bytes()
        cold, warm = [], []
        for j, tenant in enumerate(tenants[1:]):
            cold.append(
                _timed(lambda t=tenant, j=j: engine.search(queries[j % len(queries)], tenant_id=t, k=10))[0]
            )
            warm.append(
                _timed(
                    lambda t=tenant, j=j: engine.search(queries[(j + 1) % len(queries)], tenant_id=t, k=10)
                )[0]
            )
        time.sleep(float(spec.get("idle_s", 0.0)))
        rss1 = rss_bytes()
    finally:
        engine.close()
    return {
        "cold_ms": cold,
        "warm_ms": warm,
        "rss_before": rss0,
        "rss_after": rss1,
        "touched": len(tenants) - 1,
    }


def _writer(spec: dict[str, Any]) -> dict[str, Any]:
    emb = _embedder(spec)
    engine = _engine(spec, emb)
    log = Path(spec["ack_log"])
    texts: list[str] = spec["texts"]
    interval = float(spec["interval"])
    deadline = time.time() + float(spec["seconds"])
    writes = 0
    try:
        with log.open("a", encoding="utf-8") as fh:
            next_at = time.time()
            for j, text in enumerate(texts):
                if time.time() >= deadline:
                    break
                turn = {"id": f"live-{j}", "role": "user", "text": text}
                result = engine.remember(
                    [turn], session_id="live", user_id=spec["user"], tenant_id=spec["tenant"]
                )
                fh.write(json.dumps({"id": result.active_ids[0], "text": text, "ack": time.time()}) + "\n")
                fh.flush()
                writes += 1
                next_at += interval
                time.sleep(max(0.0, next_at - time.time()))
    finally:
        engine.close()
    return {"writes": writes}


def _read_acks(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line being written
            break
    return out


def _searcher(spec: dict[str, Any]) -> dict[str, Any]:
    emb = _embedder(spec)
    engine = _engine(spec, emb)
    tenant, user = spec["tenant"], spec["user"]
    idle_texts: list[str] = spec["idle_texts"]
    ack_log = Path(spec["ack_log"])
    go_file = Path(spec["go_file"])
    scope = {"tenant_id": tenant, "user_id": user, "k": 10}
    rng = random.Random(3)
    try:
        for text in idle_texts[:3]:
            engine.search(text, **scope)  # warm-up: open collections, first load
        idle = [_timed(lambda t=t: engine.search(t, **scope))[0] for t in idle_texts[3:]]
        data = engine.run(engine.aengine.data())
        go_file.write_text("go")  # tells the parent to start the writer
        wait_until = time.time() + float(spec.get("writer_start_timeout", 300.0))
        while not _read_acks(ack_log) and time.time() < wait_until:
            time.sleep(0.01)
        deadline = time.time() + float(spec["seconds"])  # the busy phase starts at the first write
        busy: list[float] = []
        seen: dict[str, dict[str, Any]] = {}
        tries: dict[str, int] = {}
        while time.time() < deadline:
            acks = _read_acks(ack_log)
            start = time.time()
            newest = acks[-1] if acks else None
            if newest is None or newest["id"] in seen:
                query = rng.choice(idle_texts)
                newest = None
            else:
                query = newest["text"]
            ms, result = _timed(lambda q=query: engine.search(q, **scope))
            busy.append(ms)
            if newest is not None:
                tries[newest["id"]] = tries.get(newest["id"], 0) + 1
                hit = any(r.id == newest["id"] for r in result.results)
                # Visible but ranked below k (LoCoMo has many near-identical short turns): the
                # partition the search just caught up holds it; freshness is about visibility.
                held = None if hit else data.cached_partition(tenant, user)
                if hit or (held is not None and newest["id"] in held):
                    seen[newest["id"]] = {
                        "age_ms": (time.time() - newest["ack"]) * 1000.0,
                        "searches": tries[newest["id"]],
                        "started_after_ack_ms": (start - newest["ack"]) * 1000.0,
                        "ranked_out": not hit,
                    }
        unseen = [i for i in tries if i not in seen]
    finally:
        engine.close()
    return {"idle_ms": idle, "busy_ms": busy, "seen": list(seen.values()), "unseen": len(unseen)}


ROLES = {
    "user": lambda s: _scoped(s, True),
    "tenant": lambda s: _scoped(s, False),
    "tenants": _tenants,
    "writer": _writer,
    "searcher": _searcher,
}


def main(argv: list[str] | None = None) -> int:
    """Run the role ``argv[0]`` with the JSON spec in file ``argv[1]``; print the result as JSON."""
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.WARNING)
    spec = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    result = ROLES[argv[0]](spec)
    sys.stdout.write("\n" + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
