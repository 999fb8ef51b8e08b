"""Printing for the command line: rich tables on stdout, progress on stderr, JSON on request."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..models import MemoryItem

logger = logging.getLogger(__name__)


def out() -> Console:
    """A console on the current stdout (looked up at each call, so test runners capture it)."""
    return Console(file=sys.stdout, highlight=False, soft_wrap=True)


def err() -> Console:
    """A console on the current stderr (progress bars, notes)."""
    return Console(file=sys.stderr, highlight=False)


def print_json(data: Any) -> None:
    """Print JSON on stdout (UTF-8 text kept, two-space indent)."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def when(dt: datetime | float | None) -> str:
    """``YYYY-MM-DD HH:MM`` in UTC, or ``-``."""
    if dt is None:
        return "-"
    if not isinstance(dt, datetime):
        dt = datetime.fromtimestamp(float(dt), tz=timezone.utc)
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M")


def short_id(memory_id: str, width: int = 14) -> str:
    """A memory id cut to ``width`` characters (ids are long hashes)."""
    return memory_id if len(memory_id) <= width else memory_id[: width - 1] + "…"


def who(item: MemoryItem) -> str:
    """The speaker of a turn, else the item's kind."""
    return item.role or item.kind


def score_text(item: MemoryItem) -> str:
    """A hit's fused score, with its cosine similarity when the engine reports it."""
    if item.score is None:
        return "-"
    parts = item.score_parts
    if parts is not None and parts.cosine is not None:
        return f"{item.score:.3f} (cos {parts.cosine:.2f})"
    return f"{item.score:.3f}"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``"1 turn"``, ``"2 turns"`` (``many`` for irregular plurals)."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def plain(text: str) -> str:
    """Text safe to print through rich (square brackets are not markup)."""
    return escape(text)


def progress() -> Progress:
    """A rich progress display on stderr with bars, counts and times (add tasks to it).

    Without a terminal (pipes, CI) rich draws nothing while it runs and prints the final
    state once, so logs stay readable.
    """
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err(),
    )


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Any]:
    """One rich progress bar on stderr (see :func:`progress`); yields ``advance(n)``.

    ``total=None`` shows a count instead of a bar.
    """
    columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}")]
    if total is not None:
        columns += [BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn()]
    else:
        columns += [TextColumn("{task.completed} done"), TimeElapsedColumn()]
    with Progress(*columns, console=err(), transient=False) as bar:
        task = bar.add_task(description, total=total)

        def advance(n: int = 1) -> None:
            bar.advance(task, n)

        yield advance
