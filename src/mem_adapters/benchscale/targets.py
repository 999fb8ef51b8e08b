"""The targets of issue #10 in one table, and ``--check`` against a report.

Each target names a metric of the report (a path into its JSON), a comparison and a threshold,
and the store size it is defined at. A target is checked at the largest size the run measured
that does not exceed its own size (``measured_at`` says which), so a 1k/10k run checks the
100k targets at 10k; the 1M target is checked only when the run went above 100k, otherwise it
is ``SKIP``. Ratios (ingest against the raw embedder, busy against idle) are measured in the
same run against their references.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_OPS: dict[str, Callable[[float, float], bool]] = {"<=": operator.le, ">=": operator.ge}


@dataclass(frozen=True)
class Target:
    """One target: ``metric op threshold`` at ``size`` memories (``None``: size-independent)."""

    key: str
    description: str
    metric: tuple[str, ...]
    op: str
    threshold: float
    size: int | None = 100_000
    min_size: int = 0


def _shape_targets(shape: str, label: str) -> list[Target]:
    return [
        Target(
            f"user_p50_ms_{shape}",
            f"user-scoped search p50 ({label}), ms",
            (shape, "user", "flat", "p50_ms"),
            "<=",
            15.0,
        ),
        Target(
            f"user_p95_ms_{shape}",
            f"user-scoped search p95 ({label}), ms",
            (shape, "user", "flat", "p95_ms"),
            "<=",
            40.0,
        ),
        Target(
            f"tenant_p50_ms_{shape}",
            f"tenant-wide search p50 ({label}), ms",
            (shape, "tenant", "flat", "p50_ms"),
            "<=",
            60.0,
        ),
        Target(
            f"first_search_s_{shape}",
            f"first user-scoped search after reopening a searched store ({label}), s",
            (shape, "user", "first_search_s"),
            "<=",
            0.5,
        ),
        Target(
            f"rss_per_record_kb_{shape}",
            f"RSS per record after user-scoped searches ({label}), KB",
            (shape, "user", "rss_per_record_kb"),
            "<=",
            3.0,
        ),
    ]


TARGETS: list[Target] = [
    *_shape_targets("one_user", "one user"),
    *_shape_targets("many_users", "1,000 users"),
    Target(
        "user_p50_ms_1m",
        "user-scoped search p50 at 1M (one user), ms",
        ("one_user", "user", "flat", "p50_ms"),
        "<=",
        25.0,
        size=1_000_000,
        min_size=100_001,
    ),
    Target(
        "ingest_per_turn_ratio",
        "per-turn ingest / raw embedder (same texts)",
        ("ingest", "per_turn", "ratio"),
        ">=",
        0.6,
        size=None,
    ),
    Target(
        "ingest_batched_ratio",
        "batched ingest / raw embedder (same batches)",
        ("ingest", "batched", "ratio"),
        ">=",
        0.9,
        size=None,
    ),
    Target(
        "server_busy_idle_p50_ratio",
        "two processes on chroma run: busy / idle search p50",
        ("server", "busy_idle_p50_ratio"),
        "<=",
        1.5,
        size=None,
    ),
    Target(
        "server_fresh_within_one_search",
        "share of the writer's newest turns seen by the first search after",
        ("server", "freshness", "within_one_search"),
        ">=",
        1.0,
        size=None,
    ),
    Target(
        "tenants_cold_first_p50_ms",
        "many tenants: first search of a cold tenant, p50 ms",
        ("tenants", "cold_first_search", "p50_ms"),
        "<=",
        100.0,
        size=None,
    ),
    Target(
        "tenants_rss_per_tenant_mb",
        "many tenants: RSS per touched-then-idle tenant, MB",
        ("tenants", "rss_per_tenant_mb"),
        "<=",
        0.5,
        size=None,
    ),
]
TARGET_KEYS = {t.key for t in TARGETS}


def _dig(obj: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


def _pick_size(sizes: list[int], target: Target) -> int | None:
    eligible = [n for n in sizes if n >= target.min_size and (target.size is None or n <= target.size)]
    return max(eligible) if eligible else None


def check(report: dict[str, Any], overrides: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """Evaluate every target against a report.

    Args:
        report: What :func:`~mem_adapters.benchscale.runner.run_scale` returned.
        overrides: ``{target key: threshold}`` replacing the issue's thresholds.

    Returns:
        One row per target: ``key``, ``description``, ``op``, ``threshold``, ``value``,
        ``measured_at`` (size or ``None``) and ``status`` (``PASS``, ``FAIL`` or ``SKIP``, with
        ``reason`` when skipped).

    Raises:
        KeyError: an override names no target.
    """
    overrides = dict(overrides or {})
    unknown = set(overrides) - TARGET_KEYS
    if unknown:
        raise KeyError(
            f"unknown target(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(TARGET_KEYS))}"
        )
    sizes = sorted(int(n) for n in report.get("sizes", []))
    rows = []
    for t in TARGETS:
        threshold = float(overrides.get(t.key, t.threshold))
        row: dict[str, Any] = {
            "key": t.key,
            "description": t.description,
            "op": t.op,
            "threshold": threshold,
            "target_size": t.size,
            "value": None,
            "measured_at": None,
        }
        if t.size is None:
            value = _dig(report, t.metric)
        else:
            at = _pick_size(sizes, t)
            row["measured_at"] = at
            shape_block = _dig(report, ("shapes", t.metric[0], str(at))) if at is not None else None
            value = _dig(shape_block, t.metric[1:]) if shape_block is not None else None
        if value is None:
            row["status"] = "SKIP"
            row["reason"] = "not measured in this run"
        else:
            row["value"] = float(value)
            row["status"] = "PASS" if _OPS[t.op](float(value), threshold) else "FAIL"
        rows.append(row)
    return rows


__all__ = ["TARGETS", "TARGET_KEYS", "Target", "check"]
