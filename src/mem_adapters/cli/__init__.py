"""The ``mem-adapters`` command line (Typer + rich).

Modules: :mod:`.app` (the Typer app, global options, the store options every store command
shares), :mod:`.errors` (one-line errors), :mod:`.output` (tables, progress, JSON),
:mod:`.demo_cmd`, :mod:`.store_cmds` (search, users, sessions, show, facts, erase, stats),
:mod:`.transfer_cmds` (import, export), :mod:`.formats` (conversation file layouts),
:mod:`.doctor_cmd` and :mod:`.bench_cmds`.

Example:
    >>> from mem_adapters.cli import main
    >>> main(["--version"])  # doctest: +SKIP
    mem-adapters 0.1.0 (chromadb 1.5.9, Python 3.12.3)
    0
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import typer

# Commands register themselves on import; the order below is their order in --help.
# isort: off
from . import demo_cmd, transfer_cmds, store_cmds, doctor_cmd, bench_cmds, serve_cmd, mcp_cmd
from . import ui_cmd  # noqa: F401  (registers `mem-adapters ui`)

# isort: on
from .app import StoreOptions, app, store_command
from .demo_cmd import DEMO_QUESTIONS, DEMO_TURNS
from .errors import ABORTS, UsageProblem

logger = logging.getLogger(__name__)

PROG = "mem-adapters"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (usage errors: 2, failures: 1).

    Args:
        argv: Arguments without the program name (default ``sys.argv[1:]``).
    """
    command = typer.main.get_command(app)
    try:
        code = command.main(
            args=list(argv) if argv is not None else sys.argv[1:], prog_name=PROG, standalone_mode=False
        )
    except UsageProblem as e:
        e.show()  # type: ignore[attr-defined]
        return int(e.exit_code)  # type: ignore[attr-defined]
    except ABORTS:
        typer.echo("aborted", err=True)
        return 1
    return code if isinstance(code, int) else 0


__all__ = [
    "DEMO_QUESTIONS",
    "DEMO_TURNS",
    "StoreOptions",
    "app",
    "bench_cmds",
    "demo_cmd",
    "doctor_cmd",
    "main",
    "mcp_cmd",
    "serve_cmd",
    "store_cmds",
    "store_command",
    "transfer_cmds",
]
