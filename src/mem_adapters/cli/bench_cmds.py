"""``mem-adapters bench``: the retrieval benchmarks (``locomo``; ``scale`` when installed)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from .. import bench_server
from .app import app
from .output import progress

logger = logging.getLogger(__name__)

bench_app = typer.Typer(
    name="bench", help="Retrieval benchmarks.", no_args_is_help=True, rich_markup_mode="markdown"
)
app.add_typer(bench_app, name="bench", rich_help_panel="Tools")

EXIT_BAD_INPUT = 2


def _ks(text: str) -> list[int]:
    try:
        ks = [int(x) for x in text.split(",") if x.strip()]
    except ValueError as e:
        raise typer.BadParameter(f"needs comma-separated integers, got {text!r}", param_hint="--k") from e
    if not ks or min(ks) < 1:
        raise typer.BadParameter("values must be >= 1", param_hint="--k")
    return ks


def _baselines(values: list[str] | None) -> list[str]:
    from ..bench import BASELINES

    names = [x.strip() for v in values or [] for x in v.split(",") if x.strip()]
    bad = [n for n in names if n not in BASELINES]
    if bad or (values and not names):
        raise typer.BadParameter(f"must be among {', '.join(BASELINES)}", param_hint="--baseline")
    return list(dict.fromkeys(names))


@bench_app.command("locomo")
def locomo(
    data: Annotated[str, typer.Option("--data", help="LoCoMo JSON file (e.g. locomo-dev.json).")],
    k: Annotated[str, typer.Option("--k", help="Cut-offs, e.g. 1,5,10,20.")] = "1,5,10,20",
    out: Annotated[str | None, typer.Option("--out", help="Write the JSON report here.")] = None,
    plot: Annotated[
        str | None, typer.Option("--plot", help="Write a recall@k PNG here (needs matplotlib).")
    ] = None,
    baseline: Annotated[
        list[str] | None,
        typer.Option(
            "--baseline",
            help="Reference retrievers to run alongside: dense, bm25, hybrid (repeatable or a comma list).",
        ),
    ] = None,
    enrich: Annotated[
        bool, typer.Option("--enrich", help="Enable background enrichment and wait for it.")
    ] = False,
    store: Annotated[
        str | None, typer.Option("--store", help="Chroma folder (default: a temporary one, deleted after).")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Only the first N conversations.")
    ] = None,
) -> None:
    """LoCoMo evidence recall, session recall and latency, next to plain reference retrievers.

    Ingests each conversation through remember, asks every question of categories 1 to 4
    through search, and prints recall@k per category (see benchmarks/README.md).
    """
    from .. import bench

    ks = _ks(k)
    baselines = _baselines(baseline)
    if not Path(data).is_file():
        typer.echo(f"error: no such file: {data}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)
    tasks: dict[str, Any] = {}
    labels = {"ingest": "ingesting turns", "search": "asking questions"}
    with progress() as bar:

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(labels.get(stage, stage), total=total)
            bar.update(tasks[stage], completed=done, total=total)

        report = asyncio.run(
            bench.run_locomo(
                data,
                ks=ks,
                baselines=baselines,
                enrich=enrich,
                store=store,
                limit=limit,
                progress=on_progress,
            )
        )
    typer.echo(bench.format_table(report))
    ing = report["ingest"]
    typer.echo(
        f"\ningest: {ing['turns']} turns in {ing['seconds']} s ({ing['turns_per_s']} turns/s); "
        f"evidence: {report['dataset']['evidence']['dropped']} dropped, "
        f"{report['dataset']['evidence']['repaired_ids']} repaired"
    )
    if out:
        Path(out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        typer.echo(f"report written to {out}")
    if plot:
        bench.plot_recall(report, plot)
        typer.echo(f"plot written to {plot}")


def _register_optional(target: typer.Typer = bench_app) -> None:
    """Add ``bench scale`` when its module is installed (it registers itself on ``target``)."""
    try:
        from .. import bench_scale
    except ImportError as e:
        logger.debug("bench scale is not available: %s", e)
        return
    bench_scale.register(target)


_register_optional()
bench_server.register(bench_app)

__all__ = ["bench_app", "locomo"]
