"""Presenting a ``bench scale`` report: rich tables, the JSON file and the PNG plot."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_SHAPE_LABEL = {"one_user": "one user", "many_users": "many users"}


def default_stem(sizes: list[int]) -> str:
    """``scale-1k-10k`` for sizes 1000 and 10000 (the committed files' names)."""

    def label(n: int) -> str:
        if n % 1_000_000 == 0:
            return f"{n // 1_000_000}m"
        if n % 1000 == 0:
            return f"{n // 1000}k"
        return str(n)

    return "scale-" + "-".join(label(n) for n in sizes)


def write_json(report: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write the report as indented JSON (creating the folder)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def tables(report: dict[str, Any]) -> list[Any]:
    """Rich tables of the main figures and of the checks."""
    from rich.table import Table

    out = []
    t = Table(title="search latency (ms) and memory, by shape and size")
    for col in (
        "shape",
        "N",
        "user p50",
        "user p95",
        "ctx p50",
        "tenant p50",
        "tenant p95",
        "chroma where p50",
        "chroma p50",
        "first (s)",
        "first cold (s)",
        "RSS user MB",
        "KB/rec user",
        "KB/rec tenant",
    ):
        t.add_column(col, justify="right")
    for shape, by_size in report.get("shapes", {}).items():
        for n, b in by_size.items():
            u, te, c = b["user"], b["tenant"], b["chroma"]
            t.add_row(
                _SHAPE_LABEL.get(shape, shape),
                f"{int(n):,}",
                f"{u['flat']['p50_ms']:.1f}",
                f"{u['flat']['p95_ms']:.1f}",
                f"{u['context']['p50_ms']:.1f}",
                f"{te['flat']['p50_ms']:.1f}",
                f"{te['flat']['p95_ms']:.1f}",
                f"{c['where_user']['p50_ms']:.1f}",
                f"{c['no_where']['p50_ms']:.1f}",
                f"{u['first_search_s']:.2f}",
                _num(u.get("first_search_cold_s")),
                f"{u['rss_mb']:.0f}",
                _num(u.get("rss_per_record_kb")),
                _num(te.get("rss_per_record_kb")),
            )
    out.append(t)
    ing = report.get("ingest")
    if ing:
        t = Table(title="ingest (turns/s) next to the raw embedder on the same texts")
        for col in ("mode", "engine", "embedder", "ratio"):
            t.add_column(col, justify="right")
        for mode in ("batched", "per_turn"):
            b = ing[mode]
            t.add_row(
                mode, f"{b['engine_turns_per_s']:.1f}", f"{b['embedder_turns_per_s']:.1f}", _num(b["ratio"])
            )
        out.append(t)
    srv = report.get("server")
    if srv and "idle" in srv:
        t = Table(
            title=f"two processes on chroma run ({srv['size']:,} memories, a write every "
            f"{srv['writer_interval_s'] * 1000:.0f} ms)"
        )
        for col in (
            "idle p50",
            "idle p95",
            "busy p50",
            "busy p95",
            "busy/idle p50",
            "seen in 1 search",
            "age p50 ms",
        ):
            t.add_column(col, justify="right")
        f = srv["freshness"]
        t.add_row(
            f"{srv['idle']['p50_ms']:.1f}",
            f"{srv['idle']['p95_ms']:.1f}",
            f"{srv['busy']['p50_ms']:.1f}",
            f"{srv['busy']['p95_ms']:.1f}",
            _num(srv["busy_idle_p50_ratio"]),
            _num(f["within_one_search"]),
            f"{f['age_ms']['p50_ms']:.0f}",
        )
        out.append(t)
    ten = report.get("tenants")
    if ten:
        t = Table(
            title=f"many tenants ({ten['tenants']:,} x {ten['turns_per_tenant']}, {ten['touched']} touched)"
        )
        for col in ("cold first p50", "cold first p95", "warm p50", "MB per idle tenant"):
            t.add_column(col, justify="right")
        t.add_row(
            f"{ten['cold_first_search']['p50_ms']:.1f}",
            f"{ten['cold_first_search']['p95_ms']:.1f}",
            f"{ten['warm_search']['p50_ms']:.1f}",
            _num(ten["rss_per_tenant_mb"]),
        )
        out.append(t)
    out.append(checks_table(report.get("checks", [])))
    return out


def checks_table(rows: list[dict[str, Any]]) -> Any:
    """A rich table of the targets: PASS / FAIL / SKIP."""
    from rich.table import Table

    t = Table(title="targets (issue #10)")
    for col in ("status", "target", "value", "bound", "measured at"):
        t.add_column(col)
    style = {"PASS": "green", "FAIL": "bold red", "SKIP": "yellow"}
    for r in rows:
        at = (
            f"{r['measured_at']:,}"
            if r.get("measured_at")
            else ("-" if r.get("target_size") is None else "none")
        )
        t.add_row(
            f"[{style[r['status']]}]{r['status']}[/]",
            r["description"],
            _num(r["value"]),
            f"{r['op']} {r['threshold']:g}",
            at,
        )
    return t


def _num(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v:.3g}" if abs(float(v)) < 1000 else f"{v:,.0f}"


def plot(report: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Save a 2x2 PNG: search p50, search p95, RSS and first search after open, against N."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    (ax_p50, ax_p95), (ax_rss, ax_first) = axes
    for shape, by_size in report.get("shapes", {}).items():
        ns = [int(n) for n in by_size]
        label = _SHAPE_LABEL.get(shape, shape)
        for scope, style in (("user", "-o"), ("tenant", "--s")):
            ax_p50.plot(
                ns,
                [b[scope]["flat"]["p50_ms"] for b in by_size.values()],
                style,
                label=f"engine {scope}, {label}",
            )
            ax_p95.plot(
                ns,
                [b[scope]["flat"]["p95_ms"] for b in by_size.values()],
                style,
                label=f"engine {scope}, {label}",
            )
            ax_rss.plot(
                ns,
                [b[scope]["rss_mb"] for b in by_size.values()],
                style,
                label=f"after {scope} search, {label}",
            )
        ax_first.plot(
            ns, [b["user"]["first_search_s"] for b in by_size.values()], "-o", label=f"user, {label}"
        )
        ax_first.plot(
            ns, [b["tenant"]["first_search_s"] for b in by_size.values()], "--s", label=f"tenant, {label}"
        )
        for ref, style in (("where_user", ":^"), ("no_where", ":v")):
            ax_p50.plot(
                ns,
                [b["chroma"][ref]["p50_ms"] for b in by_size.values()],
                style,
                alpha=0.6,
                label=f"plain Chroma {ref}, {label}",
            )
        for name in ("langchain_chroma", "llamaindex_memory", "mem0"):
            pts = [
                (int(n), b["compare"][name]["user"]["flat"]["p50_ms"])
                for n, b in by_size.items()
                if isinstance(b.get("compare", {}).get(name), dict) and "user" in b["compare"][name]
            ]
            if pts:
                ax_p50.plot(*zip(*pts, strict=True), "-.x", alpha=0.6, label=f"{name} user, {label}")
    for ax, title, unit in (
        (ax_p50, "search p50 (k=10)", "ms"),
        (ax_p95, "search p95 (k=10)", "ms"),
        (ax_rss, "RSS of a fresh process after searches", "MB"),
        (ax_first, "first search after open", "s"),
    ):
        ax.set_xscale("log")
        ax.set_xlabel("memories in the tenant")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    ing, srv = report.get("ingest", {}), report.get("server", {})
    bits = []
    if ing:
        bits.append(
            f"ingest/embedder: batched {ing['batched']['ratio']}, per turn {ing['per_turn']['ratio']}"
        )
    if srv.get("busy_idle_p50_ratio") is not None:
        bits.append(f"chroma run busy/idle p50 {srv['busy_idle_p50_ratio']} at {srv['size']:,}")
    fig.suptitle("mem-adapters bench scale" + (" — " + "; ".join(bits) if bits else ""), fontsize=10)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


__all__ = ["checks_table", "default_stem", "plot", "tables", "write_json"]
