"""``mem-adapters bench scale``: how the engine holds up from 1k to 1M memories (issue #10).

Everything goes through the engine's public API (``MemoryEngine``: ``remember``, ``search``),
so the benchmark stays valid whatever the data layer underneath. Modules: :mod:`.data`
(memories derived from LoCoMo, vectors), :mod:`.build` (growing the stores), :mod:`.measure`
(ingest, latency summaries), :mod:`.probe` (fresh-process measurements), :mod:`.server`
(``chroma run`` and the probe processes), :mod:`.compare` (other memory layers),
:mod:`.scenarios` (many tenants; two processes on ``chroma run``),
:mod:`.targets` (the issue's targets, ``--check``), :mod:`.report` (tables, JSON, plot),
:mod:`.runner` (:func:`run_scale`) and :mod:`.command` (:func:`register`). How to rerun it and
what each figure means: ``benchmarks/SCALE.md``.
"""

from __future__ import annotations

from .command import register
from .runner import SCHEMA, run_scale
from .targets import TARGETS, check

__all__ = ["SCHEMA", "TARGETS", "check", "register", "run_scale"]
