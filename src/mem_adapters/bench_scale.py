"""``mem-adapters bench scale``: the entry points, implemented in :mod:`mem_adapters.benchscale`.

The CLI calls :func:`register` with its ``bench`` typer sub-app; tests call :func:`run_scale`.
"""

from __future__ import annotations

from .benchscale import SCHEMA, TARGETS, check, register, run_scale

__all__ = ["SCHEMA", "TARGETS", "check", "register", "run_scale"]
