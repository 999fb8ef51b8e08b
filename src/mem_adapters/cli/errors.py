"""How the command line reports failures: one line and the remedy, exit code 1.

``--debug`` (or ``MEM_ADAPTERS_DEBUG=1``) lets the exception through, traceback and all.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

import typer
from typer.core import TyperGroup

from ..errors import (
    EmbedderMismatchError,
    MemAdaptersError,
    ModelNotFoundError,
    StoreError,
    ValidationError,
)

logger = logging.getLogger(__name__)

DEBUG_KEY = "mem_adapters.debug"
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130

# Typer raises click's exceptions (or, from Typer 0.2x on, those of its vendored click): take
# them from the module Typer's own BadParameter lives in, so both kinds are recognised.
_click_exceptions = importlib.import_module(typer.BadParameter.__module__)
UsageProblem: type[Exception] = _click_exceptions.ClickException
ABORTS: tuple[type[BaseException], ...] = tuple(
    {typer.Abort, getattr(_click_exceptions, "Abort", typer.Abort)}
)
PASS_THROUGH: tuple[type[BaseException], ...] = (
    *{typer.Exit, getattr(_click_exceptions, "Exit", typer.Exit)},
    *ABORTS,
    UsageProblem,
    BrokenPipeError,  # output piped into head & co: Typer quiets it
)


def one_line(text: str) -> str:
    """Collapse a message onto one line."""
    return " ".join(str(text).split())


def describe(exc: BaseException) -> str:
    """The one line printed for an error, remedy included."""
    if isinstance(exc, ModelNotFoundError | EmbedderMismatchError):
        return one_line(str(exc))  # these messages already name their remedies
    if isinstance(exc, StoreError):
        return f"error: {one_line(str(exc))} (check the store with: mem-adapters doctor)"
    if isinstance(exc, ValidationError):
        return f"error: {one_line(str(exc))}"
    if isinstance(exc, MemAdaptersError):
        return f"error: {one_line(str(exc))}"
    if isinstance(exc, OSError):
        name = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        return f"error: {exc.strerror or exc}{name}"
    return f"error: unexpected {type(exc).__name__}: {one_line(str(exc))} (--debug shows the traceback)"


def report(exc: BaseException) -> None:
    """Print :func:`describe` of ``exc`` on stderr."""
    typer.echo(describe(exc), err=True)


class ErrorReportingGroup(TyperGroup):
    """The top-level command group: turns any error of a command into one line and exit code 1."""

    def invoke(self, ctx: Any) -> Any:
        """Run the command; report errors unless debugging."""
        try:
            return super().invoke(ctx)
        except PASS_THROUGH:
            raise
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:
            if ctx.meta.get(DEBUG_KEY):
                raise
            logger.debug("command failed", exc_info=True)
            report(exc)
            raise typer.Exit(EXIT_ERROR) from None
