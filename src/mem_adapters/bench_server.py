"""``mem-adapters bench server``: the REST service next to the in-process engine, under concurrency.

One ``mem-adapters serve`` child process on a free loopback port (embedded store, no auth,
enrichment off unless asked) and one in-process :class:`~mem_adapters.AsyncMemoryEngine` on
its own store get the same seeded corpus, then the same calls: ingestion (``remember`` of one
new turn) and search (``search`` of a question, ``k=10``) with 1, 8 and 32 concurrent clients,
each level a bounded number of requests. Reported per backend, operation and level:
requests/s, p50/p95/max latency (ms) and errors; targets: at 1 client, HTTP search p50 <=
in-process p50 + 5 ms; at 32 clients, no HTTP errors.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import typer

from . import __version__

logger = logging.getLogger(__name__)

LEVELS = (1, 8, 32)
SEARCH_P50_MARGIN_MS = 5.0
TOPICS = [
    ("hiking", "I went hiking in the {p} mountains with {n} last weekend"),
    ("food", "{n} cooked a {p} curry for dinner and it was too spicy"),
    ("travel", "We are flying to {p} in March to visit {n}"),
    ("work", "My manager {n} moved the {p} project deadline to Friday"),
    ("pets", "{n} adopted a {p} puppy from the shelter"),
    ("music", "I bought tickets for the {p} concert with {n}"),
    ("health", "{n} told me to walk more after the {p} check-up"),
    ("books", "I am reading a {p} novel that {n} recommended"),
]
PLACES = ["Alpine", "Lisbon", "green", "Kyoto", "quarterly", "jazz", "annual", "Nordic", "Andes", "Thai"]
NAMES = ["Ana", "Ben", "Chloe", "Dev", "Eli", "Farah", "Gus", "Hana"]
QUESTIONS = [
    "where did I go hiking",
    "who cooked dinner",
    "when are we flying",
    "what happened to the project deadline",
    "who adopted a puppy",
    "which concert did I buy tickets for",
    "what did the doctor say",
    "which novel am I reading",
]


def corpus(n: int) -> list[dict[str, Any]]:
    """``n`` made-up user turns (deterministic), with a topic each."""
    out = []
    for i in range(n):
        topic, template = TOPICS[i % len(TOPICS)]
        text = template.format(p=PLACES[(i // len(TOPICS)) % len(PLACES)], n=NAMES[(i * 7) % len(NAMES)])
        out.append({"role": "user", "text": f"{text} (note {i})", "metadata": {"topic": topic}})
    return out


def summary(latencies_ms: list[float], errors: int, seconds: float) -> dict[str, Any]:
    """Requests/s, p50, p95 and max of one level."""
    ok = sorted(latencies_ms)
    q = statistics.quantiles(ok, n=100, method="inclusive") if len(ok) >= 2 else ok * 99
    return {
        "requests": len(ok) + errors,
        "errors": errors,
        "seconds": round(seconds, 3),
        "rps": round((len(ok) + errors) / seconds, 1) if seconds > 0 else None,
        "p50_ms": round(q[49], 2) if ok else None,
        "p95_ms": round(q[94], 2) if ok else None,
        "max_ms": round(ok[-1], 2) if ok else None,
    }


class _Level:
    """Latencies and errors of one (backend, op, clients) cell, gathered over several rounds."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.engine_ms: list[float] = []
        self.errors: list[str] = []
        self.seconds = 0.0


async def run_level(call: Callable[[int], Awaitable[Any]], ids: range, clients: int, into: _Level) -> None:
    """Calls ``call(i)`` for every ``i`` in ``ids`` with ``clients`` concurrent workers."""
    counter = iter(ids)

    async def worker() -> None:
        for i in counter:
            t0 = time.perf_counter()
            try:
                got = await call(i)
            except Exception as e:  # a failed request is counted, not fatal
                into.errors.append(f"{type(e).__name__}: {e}")
                continue
            into.latencies.append((time.perf_counter() - t0) * 1000)
            timings = getattr(got, "stage_timings", None) or {}
            if isinstance(timings.get("total_ms"), int | float):
                into.engine_ms.append(float(timings["total_ms"]))

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    into.seconds += time.perf_counter() - t0


async def seed_target(target: Any, seed: int) -> float:
    """Store the corpus in ``target`` (engine or client) and warm its first search; seconds taken."""
    turns = corpus(seed)
    t0 = time.perf_counter()
    for start in range(0, len(turns), 50):
        await target.remember(turns[start : start + 50], session_id=f"seed-{start // 50}", user_id="bench")
    await target.search("warm up", user_id="bench", k=10)  # first-search index build, outside timings
    return time.perf_counter() - t0


async def bench_targets(
    targets: dict[str, Any], *, ingest: int, searches: int, levels: tuple[int, ...], rounds: int = 4
) -> list[dict[str, Any]]:
    """Ingestion and search at every level on every target.

    Each cell's requests are split in ``rounds`` slices run alternately on the targets, so
    a change in the machine's load during the run affects both alike.
    """
    rows = []
    for clients in levels:
        for op, total in (("ingest", ingest), ("search", searches)):
            cells = {name: _Level() for name in targets}
            step = max(1, -(-total // rounds))
            for start in range(0, total, step):
                ids = range(start, min(total, start + step))
                for name, target in targets.items():

                    async def call(i: int, target: Any = target, op: str = op, clients: int = clients) -> Any:
                        if op == "search":
                            return await target.search(QUESTIONS[i % len(QUESTIONS)], user_id="bench", k=10)
                        text = f"level {clients} new note {i}: {corpus(i + 1)[-1]['text']}"
                        turn = {"role": "user", "text": text}
                        return await target.remember(
                            [turn], session_id=f"ingest-{clients}-{i % 16}", user_id="bench"
                        )

                    await run_level(call, ids, clients, cells[name])
            for name, cell in cells.items():
                row = {"backend": name, "op": op, "clients": clients}
                row.update(summary(cell.latencies, len(cell.errors), cell.seconds))
                if cell.engine_ms:  # the engine's own search time (in the server for http)
                    row["engine_total_p50_ms"] = round(statistics.median(cell.engine_ms), 2)
                if cell.errors:
                    row["first_errors"] = cell.errors[:3]
                rows.append(row)
            logger.info("%s at %d clients done", op, clients)
    return rows


def checks(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets, PASS/FAIL with their figures."""

    def row(backend: str, op: str, clients: int) -> dict[str, Any] | None:
        return next(
            (r for r in rows if (r["backend"], r["op"], r["clients"]) == (backend, op, clients)), None
        )

    out = []
    h, e = row("http", "search", 1), row("engine", "search", 1)
    if h and e and h["p50_ms"] is not None and e["p50_ms"] is not None:
        ok = h["p50_ms"] <= e["p50_ms"] + SEARCH_P50_MARGIN_MS
        out.append(
            {
                "target": f"1 client: HTTP search p50 <= in-process p50 + {SEARCH_P50_MARGIN_MS:g} ms",
                "value": f"{h['p50_ms']} ms vs {e['p50_ms']} ms (+{round(h['p50_ms'] - e['p50_ms'], 2)} ms)",
                "status": "PASS" if ok else "FAIL",
            }
        )
    top = max(r["clients"] for r in rows)
    errs = sum(r["errors"] for r in rows if r["backend"] == "http" and r["clients"] == top)
    out.append(
        {
            "target": f"{top} clients: no HTTP errors",
            "value": f"{errs} errors",
            "status": "PASS" if errs == 0 else "FAIL",
        }
    )
    return out


async def run_server_bench(
    *,
    seed: int = 400,
    ingest: int = 96,
    searches: int = 192,
    levels: tuple[int, ...] = LEVELS,
    enrich: bool = False,
    model_dir: Path | None = None,
) -> dict[str, Any]:
    """The whole benchmark; returns the report (see the module docstring)."""
    from .async_engine import AsyncMemoryEngine
    from .client import AsyncMemoryClient
    from .server.process import ServerProcess

    with tempfile.TemporaryDirectory(prefix="mem-bench-server-") as tmp:
        args = ["--insecure-no-auth", "--path", str(Path(tmp) / "http")]
        args += [] if enrich else ["--no-enrich"]
        args += ["--model-dir", str(model_dir)] if model_dir else []
        kwargs: dict[str, Any] = {"enricher": "default" if enrich else None}
        if model_dir:
            kwargs["model_dir"] = model_dir
        engine = AsyncMemoryEngine(Path(tmp) / "engine", **kwargs)
        try:
            with ServerProcess(args, ready_timeout=180) as srv:
                async with AsyncMemoryClient(srv.url, max_retries=0) as client:
                    seeded = {
                        "engine": await seed_target(engine, seed),
                        "http": await seed_target(client, seed),
                    }
                    rows = await bench_targets(
                        {"engine": engine, "http": client}, ingest=ingest, searches=searches, levels=levels
                    )
        finally:
            await engine.aclose()
    rows.sort(key=lambda r: (r["op"], r["clients"], r["backend"]))
    return {
        "benchmark": "server",
        "version": __version__,
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "config": {
            "seed_turns": seed,
            "ingest_requests_per_level": ingest,
            "search_requests_per_level": searches,
            "levels": list(levels),
            "enrich": enrich,
            "http": "mem-adapters serve on 127.0.0.1 (1 worker, embedded store, --insecure-no-auth), "
            "AsyncMemoryClient (httpx), /v1/engine/remember and /v1/engine/search",
            "engine": "AsyncMemoryEngine in this process, same calls",
            "order": "each cell's requests in 4 slices, alternating engine and http",
        },
        "seed_seconds": {k: round(v, 2) for k, v in seeded.items()},
        "rows": rows,
        "checks": checks(rows),
    }


def format_table(report: dict[str, Any]) -> str:
    """The rows and checks as plain text."""
    head = f"{'op':7} {'clients':>7} {'backend':8} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'errors':>6}"
    lines = [head + f" {'engine p50 ms':>14}"]
    for r in report["rows"]:
        lines.append(
            f"{r['op']:7} {r['clients']:>7} {r['backend']:8} {r['rps']!s:>8} {r['p50_ms']!s:>8} "
            f"{r['p95_ms']!s:>8} {r['errors']:>6} {r.get('engine_total_p50_ms', '')!s:>14}"
        )
    lines.append("")
    lines += [f"{c['status']}  {c['target']}: {c['value']}" for c in report["checks"]]
    return "\n".join(lines)


def server(
    out: str | None = typer.Option(None, "--out", help="Write the JSON report here."),
    seed: int = typer.Option(400, "--seed", min=1, max=20_000, help="Turns stored before timing."),
    ingest: int = typer.Option(96, "--ingest", min=1, max=10_000, help="Ingestion requests per level."),
    searches: int = typer.Option(192, "--searches", min=1, max=10_000, help="Search requests per level."),
    enrich: bool = typer.Option(False, "--enrich", help="Run enrichment in both backends."),
    check: bool = typer.Option(False, "--check", help="Exit 1 when a target fails."),
) -> None:
    """REST service vs in-process engine: ingest and search req/s, p50/p95 at 1, 8, 32 clients."""
    import json

    report = asyncio.run(run_server_bench(seed=seed, ingest=ingest, searches=searches, enrich=enrich))
    typer.echo(format_table(report))
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        typer.echo(f"report written to {out}")
    if check and any(c["status"] == "FAIL" for c in report["checks"]):
        raise typer.Exit(code=1)


def register(bench_app: typer.Typer) -> None:
    """Add the ``server`` command to the CLI's ``bench`` sub-app."""
    bench_app.command("server")(server)


__all__ = ["bench_targets", "checks", "corpus", "register", "run_server_bench", "seed_target", "summary"]
