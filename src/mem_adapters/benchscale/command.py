"""The ``bench scale`` command (typer), added to the CLI's ``bench`` sub-app by :func:`register`."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

logger = logging.getLogger(__name__)

DEFAULT_DATA = "../shared/data/locomo/locomo-dev.json"


def _ints(text: str, name: str) -> list[int]:
    try:
        values = [int(x.replace("_", "")) for x in text.split(",") if x.strip()]
    except ValueError as e:
        raise typer.BadParameter(f"{name} takes comma-separated integers, got {text!r}") from e
    if not values or min(values) < 1:
        raise typer.BadParameter(f"{name} values must be >= 1")
    return values


def _overrides(items: list[str]) -> dict[str, float]:
    from .targets import TARGET_KEYS

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in TARGET_KEYS:
            raise typer.BadParameter(
                f"--target takes KEY=VALUE with KEY among: {', '.join(sorted(TARGET_KEYS))}"
            )
        try:
            out[key] = float(value)
        except ValueError as e:
            raise typer.BadParameter(f"--target {key}: {value!r} is not a number") from e
    return out


def scale(
    data: Annotated[Path, typer.Option(help="LoCoMo JSON file (the dev split)")] = Path(DEFAULT_DATA),
    sizes: Annotated[
        str, typer.Option(help="store sizes, comma-separated (up to 1,000,000)")
    ] = "1000,10000,100000",
    users: Annotated[int, typer.Option(help="users sharing the tenant in the many-users shape")] = 1000,
    tenants: Annotated[
        int, typer.Option(help="tenants of the many-tenants shape (0: skip; up to 10,000)")
    ] = 2000,
    tenant_turns: Annotated[int, typer.Option(help="memories per tenant there")] = 50,
    tenant_touch: Annotated[int, typer.Option(help="cold tenants searched there")] = 200,
    server: Annotated[bool, typer.Option(help="two processes on a real `chroma run`")] = True,
    server_size: Annotated[
        int | None, typer.Option(help="memories of the server tenant (default: largest size)")
    ] = None,
    server_seconds: Annotated[float, typer.Option(help="length of the busy phase, seconds")] = 30.0,
    compare: Annotated[bool, typer.Option(help="also run langchain-chroma, LlamaIndex Memory, mem0")] = False,
    compare_max: Annotated[int, typer.Option(help="largest size the other systems are built to")] = 10_000,
    queries: Annotated[int, typer.Option(help="searches per latency figure")] = 100,
    seed: Annotated[int, typer.Option(help="seed of the data variation")] = 0,
    workdir: Annotated[Path | None, typer.Option(help="folder for the stores (default: temporary)")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="cache of embedded vectors between runs")] = None,
    keep: Annotated[bool, typer.Option(help="keep --workdir's stores")] = False,
    out: Annotated[
        Path | None, typer.Option(help="JSON report (default benchmarks/results/scale-<sizes>.json)")
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="PNG plot (default benchmarks/scale-<sizes>.png)")] = None,
    check: Annotated[
        bool, typer.Option("--check", help="print PASS/FAIL per target; exit 1 on any FAIL")
    ] = False,
    target: Annotated[
        list[str] | None, typer.Option(help="override a target: KEY=VALUE (repeatable)")
    ] = None,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
    ingest_turns: Annotated[int, typer.Option(help="turns of the batched ingest run")] = 400,
    per_turn_turns: Annotated[int, typer.Option(help="turns of the per-turn ingest run")] = 200,
    from_report: Annotated[
        Path | None, typer.Option(help="present and --check a saved JSON report instead of running")
    ] = None,
) -> None:
    """Scale benchmark: 1k-1M memories, many users, many tenants, two processes on chroma run."""
    from rich.console import Console

    from .report import default_stem, tables, write_json
    from .report import plot as save_plot
    from .runner import run_scale
    from .targets import check as run_checks

    console = Console()
    size_list = sorted(set(_ints(sizes, "--sizes")))
    overrides = _overrides(target or [])
    if from_report is not None:
        report = json.loads(from_report.read_text(encoding="utf-8"))
        report["checks"] = run_checks(report, overrides)
        for table in tables(report)[:-1]:
            console.print(table)
        _finish(console, report, check)
        return
    if not data.is_file():
        raise typer.BadParameter(f"no such file: {data}", param_hint="--data")
    report = run_scale(
        data,
        sizes=size_list,
        users=users,
        tenants=tenants,
        tenant_turns=tenant_turns,
        tenant_touch=tenant_touch,
        server=server,
        server_size=server_size,
        server_seconds=server_seconds,
        compare=compare,
        compare_max=compare_max,
        queries=queries,
        seed=seed,
        workdir=workdir,
        cache_dir=cache_dir,
        keep=keep,
        progress=progress,
        targets=overrides,
    )
    stem = default_stem(size_list)
    out = out or Path("benchmarks/results") / f"{stem}.json"
    plot = plot or Path("benchmarks") / f"{stem}.png"
    write_json(report, out)
    for table in tables(report)[:-1]:
        console.print(table)
    try:
        save_plot(report, plot)
        console.print(f"report: {out}  plot: {plot}  ({report['elapsed_s']:.0f} s)")
    except ImportError:
        console.print(f"report: {out} (no plot: install the bench extra for matplotlib)")
    _finish(console, report, check)


def _finish(console: Any, report: dict[str, Any], check: bool) -> None:
    from .report import checks_table

    if check:
        console.print(checks_table(report["checks"]))
        if any(r["status"] == "FAIL" for r in report["checks"]):
            raise typer.Exit(code=1)


def register(bench_app: typer.Typer) -> None:
    """Add the ``scale`` command to the CLI's ``bench`` sub-app."""
    bench_app.command("scale")(scale)


__all__ = ["register", "scale"]
