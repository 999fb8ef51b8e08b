"""``run_scale``: build the stores, run every measurement, return the report (a dict)."""

from __future__ import annotations

import logging
import os
import platform
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from . import build, scenarios
from .data import (
    EMBED_LIMIT,
    PERTURB_SIGMA,
    LookupEmbedder,
    MemoryGenerator,
    embed_cached,
    load_questions,
    load_turns,
    owner,
    perturbed,
)
from .measure import measure_ingest, summary
from .server import run_probe
from .targets import check

logger = logging.getLogger(__name__)

SCHEMA = "mem-adapters/bench-scale/v1"
SHAPES = ("one_user", "many_users")
SEARCH_USERS = 10
PROBE_QUERIES = 20
INGEST_OFFSET = 50_000_000


class _Progress:
    """A rich progress bar (on stderr), or nothing when disabled."""

    def __init__(self, enabled: bool) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=not enabled,
        )

    def __enter__(self) -> _Progress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def task(self, description: str, total: int) -> Callable[[int], None]:
        task_id = self.bar.add_task(description, total=total)
        return lambda n: self.bar.advance(task_id, n)

    def note(self, text: str) -> None:
        self.bar.console.log(text)


def _vectors(
    real: Any, texts: list[str], seed: int, cache_dir: Any, bar: _Progress
) -> tuple[np.ndarray, float]:
    n_embed = min(len(texts), EMBED_LIMIT)
    t0 = time.perf_counter()
    base = embed_cached(real, texts[:n_embed], cache_dir, bar.task(f"embed {n_embed:,} texts", n_embed))
    if len(texts) > n_embed:
        extra = np.stack([perturbed(base, i, seed) for i in range(n_embed, len(texts))])
        base = np.concatenate([base, extra])
    return base, time.perf_counter() - t0


def _rss_per(rss: dict[int, int], sizes: list[int], unit: float) -> dict[int, float | None]:
    base = sizes[0]
    return {n: (round((rss[n] - rss[base]) / (n - base) / unit, 3) if n > base else None) for n in sizes}


def _engine(path: Any = None, **kw: Any) -> Any:
    from ..engine import MemoryEngine

    return MemoryEngine(path, **kw)


def _measure_shape(
    shape: str,
    n_users: int,
    sizes: list[int],
    *,
    gen: MemoryGenerator,
    texts: list[str],
    vectors: np.ndarray,
    lookup: LookupEmbedder,
    real: Any,
    questions: list[str],
    workdir: Path,
    spec_base: dict[str, Any],
    bar: _Progress,
    timeout: float,
    compare_hook: Callable[..., dict[str, Any]] | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    path, plain_path = workdir / shape, workdir / f"{shape}-plain"
    tenant = "bench"
    rng = random.Random(f"{shape}:users")
    users = sorted(rng.sample(range(n_users), min(SEARCH_USERS, n_users)))
    user_ids = [owner(u, n_users) for u in users]
    plain = build.plain_collection(str(plain_path))
    advance = bar.task(f"build {shape} ({n_users:,} users)", sizes[-1])
    out: dict[str, Any] = {}
    build_s = {"engine_s": 0.0, "plain_chroma_s": 0.0}
    prev = 0
    for n in sizes:
        engine = _engine(path, embedder=lookup)
        try:
            build_s["engine_s"] += build.grow_engine(
                engine, gen, texts, prev, n, users=n_users, tenant=tenant, advance=advance
            )
        finally:
            engine.close()
        build_s["plain_chroma_s"] += build.grow_plain(
            plain, texts, lambda s, e: vectors[s:e], prev, n, users=n_users
        )
        prev = n
        probe_rng = random.Random(f"{shape}:{n}:probes")
        probes = []
        if n <= EMBED_LIMIT:
            for i in probe_rng.sample(range(n), min(PROBE_QUERIES, n)):
                words = texts[i].split()
                probes.append(
                    [f"m{i}", " ".join(words[1:-1]) if len(words) >= 5 else texts[i], owner(i, n_users)]
                )
        spec = {
            **spec_base,
            "path": str(path),
            "tenant": tenant,
            "users": user_ids,
            "queries": questions,
            "probes": probes,
        }
        bar.note(f"{shape} n={n:,}: probing user-scoped and tenant-wide search in fresh processes")
        # The first process to search the store finds no derived snapshot (the bench builds
        # without searching): its first search is the cold figure. Closing, it leaves snapshots
        # of its large partitions, as any process that searched would; the measured probes
        # after it open the store as a restarted app does.
        cold = run_probe("user", {**spec, "first_only": True}, timeout)
        user = run_probe("user", spec, timeout)
        ten = run_probe("tenant", spec, timeout)
        where = build.time_plain_queries(plain, real, questions, user_ids)
        no_where = build.time_plain_queries(plain, real, questions, None)
        block: dict[str, Any] = {}
        for name, res in (("user", user), ("tenant", ten)):
            block[name] = {
                "flat": summary(res["flat_ms"]),
                "context": summary(res["context_ms"]),
                "first_search_s": round(res["first_search_ms"] / 1000.0, 4),
                "open_s": round(res["open_ms"] / 1000.0, 4),
                "rss_mb": round(res["rss_bytes"] / 2**20, 1),
                "rss_model_only_mb": round(res["rss_model_bytes"] / 2**20, 1),
                "probe_hit@10": round(res["probe_hits"] / res["probes"], 3) if res["probes"] else None,
                "_rss": res["rss_bytes"],
            }
        if user.get("user_first_ms"):
            block["user"]["first_search_other_users"] = summary(user["user_first_ms"])
        block["user"]["first_search_cold_s"] = round(cold["first_search_ms"] / 1000.0, 4)
        block["user"]["cold_open_s"] = round(cold["open_ms"] / 1000.0, 4)
        block["chroma"] = {"where_user": summary(where), "no_where": summary(no_where)}
        block["ratios"] = {
            "user_p50_vs_chroma_where": round(
                block["user"]["flat"]["p50_ms"] / block["chroma"]["where_user"]["p50_ms"], 3
            ),
            "tenant_p50_vs_chroma_no_where": round(
                block["tenant"]["flat"]["p50_ms"] / block["chroma"]["no_where"]["p50_ms"], 3
            ),
        }
        if compare_hook is not None:
            block["compare"] = compare_hook(shape=shape, n=n, n_users=n_users, user_ids=user_ids)
        out[str(n)] = block
    for name in ("user", "tenant"):
        rss = {n: out[str(n)][name].pop("_rss") for n in sizes}
        for n, v in _rss_per(rss, sizes, 1024.0).items():
            out[str(n)][name]["rss_per_record_kb"] = v
            out[str(n)][name]["rss_baseline_size"] = sizes[0]
    return out, {k: round(v, 2) for k, v in build_s.items()}


def _engine_identity() -> dict[str, Any]:
    """The engine measured: package version, source folder and its git commit when it has one."""
    import subprocess

    import mem_adapters

    folder = Path(mem_adapters.__file__).resolve().parent
    commit = None
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        commit = done.stdout.strip() or None
    except OSError:
        pass
    return {
        "version": getattr(mem_adapters, "__version__", None),
        "source": str(folder),
        "git_commit": commit,
        "commit_override": os.environ.get("MEM_ADAPTERS_BENCH_COMMIT"),
    }


def run_scale(
    data: str | os.PathLike[str],
    *,
    sizes: Sequence[int] = (1000, 10_000, 100_000),
    users: int = 1000,
    tenants: int = 2000,
    tenant_turns: int = 50,
    tenant_touch: int = 200,
    tenant_idle_s: float = 1.0,
    server: bool = True,
    server_size: int | None = None,
    server_seconds: float = 30.0,
    server_interval: float = 0.1,
    compare: bool = False,
    compare_max: int = 10_000,
    queries: int = 100,
    ingest_turns: int = 400,
    per_turn_turns: int = 200,
    seed: int = 0,
    workdir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    keep: bool = False,
    progress: bool = True,
    model_dir: str | os.PathLike[str] | None = None,
    probe_timeout: float = 3600.0,
    targets: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Run ``bench scale`` and return its report (schema ``mem-adapters/bench-scale/v1``).

    Args:
        data: LoCoMo JSON file (the dev split).
        sizes: Store sizes (memories in one tenant), ascending after sorting; the smallest is
            the baseline of RSS per record.
        users: Users sharing the tenant in the ``many_users`` shape.
        tenants: Tenants of the many-tenants shape (0 skips it).
        tenant_turns: Memories per tenant there.
        tenant_touch: Cold tenants searched there (the first search of each is timed).
        tenant_idle_s: Seconds idle after touching them, before reading RSS.
        server: Run the two-process probe on a real ``chroma run``.
        server_size: Memories of the server tenant (default: the largest size).
        server_seconds: Length of the busy phase.
        server_interval: Seconds between the writer's turns.
        compare: Also run the other memory systems (see :mod:`~mem_adapters.benchscale.compare`).
        compare_max: Largest size the other systems are built to.
        queries: Searches per latency figure (LoCoMo questions).
        ingest_turns: Turns of the batched ingest run.
        per_turn_turns: Turns of the per-turn ingest run.
        seed: Seed of the data variation.
        workdir: Folder for the stores (default: a temporary one, removed after unless ``keep``).
        cache_dir: Folder caching the embedded vectors between runs (``None``: no cache).
        keep: Keep ``workdir``.
        progress: Show rich progress bars on stderr.
        model_dir: all-MiniLM-L6-v2 folder (default: the usual lookup).
        probe_timeout: Seconds after which a probe subprocess is killed.
        targets: Threshold overrides ``{target key: value}`` for the report's ``checks``.

    Raises:
        BenchError: a probe or the server failed.
    """
    from ..embeddings import OnnxMiniLMEmbedder

    sizes = sorted({int(n) for n in sizes})
    if not sizes or sizes[0] < 1:
        raise ValueError("sizes must be positive integers")
    started = time.perf_counter()
    tmp = None
    if workdir is None:
        tmp = tempfile.mkdtemp(prefix="mem-adapters-scale-")
        workdir = tmp
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    src = load_turns(data)
    questions = load_questions(data, queries)
    real = OnnxMiniLMEmbedder(model_dir)
    server_size = server_size or sizes[-1]
    n_total = max(sizes[-1], tenants * tenant_turns, server_size if server else 0)
    spec_base = {"model_dir": str(real.model_dir)}
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "sizes": sizes,
        "users": users,
        "seed": seed,
        "queries": len(questions),
        "data": {"file": Path(data).name, "source_turns": len(src), "memories_generated": n_total},
        "vectors": {
            "embedded": min(n_total, EMBED_LIMIT),
            "perturbed": max(0, n_total - EMBED_LIMIT),
            "perturb_sigma": PERTURB_SIGMA,
            "embed_limit": EMBED_LIMIT,
        },
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "embedder": real.identity,
        "engine": _engine_identity(),
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        with _Progress(progress) as bar:
            gen = MemoryGenerator(src, seed)
            texts = gen.texts(n_total)
            vectors, embed_s = _vectors(real, texts, seed, cache_dir, bar)
            lookup = LookupEmbedder(real)
            lookup.add(texts, vectors)
            report["build"] = {"embed_s": round(embed_s, 2)}
            bar.note("ingest: engine next to the raw embedder on the same texts")
            fresh = MemoryGenerator(src, seed, offset=INGEST_OFFSET).texts(ingest_turns + per_turn_turns)
            ingest_engine = _engine(work / "ingest", embedder=real)
            try:
                report["ingest"] = measure_ingest(
                    ingest_engine, real, fresh[:ingest_turns], fresh[ingest_turns:]
                )
            finally:
                ingest_engine.close()
            hook = None
            if compare:
                from .compare import Comparer

                comparer = Comparer(work, real, lookup, texts, gen, questions, compare_max)
                report["compare"] = {
                    "ingest": comparer.ingest(fresh[:ingest_turns], fresh[ingest_turns:]),
                    "systems": comparer.describe(),
                }
                hook = comparer.measure
            report["shapes"] = {}
            for shape, n_users in (("one_user", 1), ("many_users", users)):
                block, build_s = _measure_shape(
                    shape,
                    n_users,
                    sizes,
                    gen=gen,
                    texts=texts,
                    vectors=vectors,
                    lookup=lookup,
                    real=real,
                    questions=questions,
                    workdir=work,
                    spec_base=spec_base,
                    bar=bar,
                    timeout=probe_timeout,
                    compare_hook=hook,
                )
                report["shapes"][shape] = block
                report["build"][shape] = build_s
            if tenants > 0:
                report["tenants"] = scenarios.measure_tenants(
                    tenants,
                    tenant_turns,
                    tenant_touch,
                    gen=gen,
                    texts=texts,
                    lookup=lookup,
                    questions=questions,
                    workdir=work,
                    spec_base=spec_base,
                    bar=bar,
                    timeout=probe_timeout,
                    idle_s=tenant_idle_s,
                )
                report["build"]["tenants_s"] = report["tenants"]["build_s"]
            if server:
                report["server"] = scenarios.measure_server(
                    server_size,
                    server_seconds,
                    server_interval,
                    gen=gen,
                    texts=texts,
                    lookup=lookup,
                    turns_src=src,
                    seed=seed,
                    workdir=work,
                    spec_base=spec_base,
                    bar=bar,
                    queries=min(queries, 60),
                )
                report["build"]["server_s"] = report["server"].get("build_s")
    finally:
        if tmp is not None and not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    report["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    report["checks"] = check(report, targets)
    return report


__all__ = ["SCHEMA", "SHAPES", "run_scale"]
