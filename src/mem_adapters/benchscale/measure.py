"""In-process measurements: ingest next to the raw embedder, and latency summaries."""

from __future__ import annotations

import logging
import statistics
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from .data import SESSION_TURNS

logger = logging.getLogger(__name__)


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (``q`` in 0..1) of ``values``; 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summary(ms: list[float]) -> dict[str, Any]:
    """``{n, p50_ms, p95_ms, mean_ms, max_ms}`` of latencies in milliseconds."""
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 0.5), 3),
        "p95_ms": round(percentile(ms, 0.95), 3),
        "mean_ms": round(statistics.fmean(ms), 3) if ms else 0.0,
        "max_ms": round(max(ms), 3) if ms else 0.0,
    }


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else 0.0


def _time_raw(embedder: Any, batches: list[list[str]]) -> float:
    t0 = time.perf_counter()
    for b in batches:
        embedder.embed_documents(b)
    return time.perf_counter() - t0


def measure_ingest(engine: Any, embedder: Any, batched: list[str], per_turn: list[str]) -> dict[str, Any]:
    """Ingest throughput of ``remember`` next to the raw embedder on the same texts.

    Batched: ``remember`` of :data:`~mem_adapters.benchscale.data.SESSION_TURNS` turns per call
    against ``embed_documents`` of the same batches. Per turn: one ``remember`` call per turn
    (what a chat app does) against ``embed_documents([text])`` one text at a time. The raw
    embedder runs before and after the engine and the ratio uses the mean of both, so a change
    of machine load during the run weighs on both sides.

    Args:
        engine: A fresh :class:`~mem_adapters.engine.MemoryEngine` using ``embedder``.
        embedder: The real embedder.
        batched: Texts of the batched run (in no store).
        per_turn: Texts of the per-turn run (in no store, distinct from ``batched``).
    """
    t0 = datetime(2024, 6, 1, tzinfo=timezone.utc)
    engine.remember([{"role": "user", "text": "warm-up turn", "timestamp": t0}], session_id="warm")
    embedder.embed_documents(["warm-up text", "another warm-up text"])
    batches = [batched[s : s + SESSION_TURNS] for s in range(0, len(batched), SESSION_TURNS)]
    singles = [[t] for t in per_turn]

    raw_b1 = _time_raw(embedder, batches)
    t = time.perf_counter()
    for j, b in enumerate(batches):
        turns = [
            {"role": "user", "text": x, "timestamp": t0 + timedelta(seconds=j * 100 + k)}
            for k, x in enumerate(b)
        ]
        engine.remember(turns, session_id=f"batch-{j}", user_id="ingest")
    eng_b = time.perf_counter() - t
    raw_s1 = _time_raw(embedder, singles)
    t = time.perf_counter()
    for j, x in enumerate(per_turn):
        ts = t0 + timedelta(days=1, seconds=j)
        engine.remember([{"role": "user", "text": x, "timestamp": ts}], session_id="chat", user_id="ingest")
    eng_s = time.perf_counter() - t
    raw_b2 = _time_raw(embedder, batches)
    raw_s2 = _time_raw(embedder, singles)

    def block(n: int, eng: float, raw1: float, raw2: float) -> dict[str, Any]:
        raw_rate = (_rate(n, raw1) + _rate(n, raw2)) / 2
        return {
            "turns": n,
            "engine_turns_per_s": round(_rate(n, eng), 2),
            "embedder_turns_per_s": round(raw_rate, 2),
            "embedder_runs_turns_per_s": [round(_rate(n, raw1), 2), round(_rate(n, raw2), 2)],
            "ratio": round(_rate(n, eng) / raw_rate, 4) if raw_rate else None,
        }

    return {
        "batched": {**block(len(batched), eng_b, raw_b1, raw_b2), "turns_per_call": SESSION_TURNS},
        "per_turn": {**block(len(per_turn), eng_s, raw_s1, raw_s2), "turns_per_call": 1},
    }


__all__ = ["measure_ingest", "percentile", "summary"]
