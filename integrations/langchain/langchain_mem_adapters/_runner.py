"""Run engine coroutines from sync or async callers without blocking anyone's event loop.

Every adapter in this package is written once, as coroutines against an
:class:`~mem_adapters.AsyncMemoryEngine`. A sync :class:`~mem_adapters.MemoryEngine` owns a
private event loop thread where its async engine lives; coroutines are submitted to that loop
with :meth:`MemoryEngine.submit` / :meth:`MemoryEngine.arun` (never run on the caller's loop,
because the async engine's locks and executors belong to it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from mem_adapters import AsyncMemoryEngine, MemAdaptersError, MemoryEngine

logger = logging.getLogger(__name__)

T = TypeVar("T")

EngineLike = MemoryEngine | AsyncMemoryEngine


def build_engine(
    engine: EngineLike | None,
    *,
    path: str | os.PathLike[str] | None = None,
    client: Any = None,
    engine_kwargs: dict[str, Any] | None = None,
) -> tuple[EngineLike, bool]:
    """Return ``(engine, owned)``: the injected engine, or a new :class:`MemoryEngine`.

    Args:
        engine: An existing engine (preferred: share one per process).
        path: Folder of an embedded store, used when ``engine`` is ``None``.
        client: A chromadb client, used when ``engine`` is ``None``.
        engine_kwargs: Further :class:`MemoryEngine` arguments (``host``, ``embedder``...).

    Raises:
        MemAdaptersError: both an engine and construction arguments were given, or the
            engine is not a mem-adapters engine.
    """
    if engine is not None:
        if path is not None or client is not None or engine_kwargs:
            raise MemAdaptersError("give either engine= or path=/client=/engine_kwargs=, not both")
        if not isinstance(engine, MemoryEngine | AsyncMemoryEngine):
            raise MemAdaptersError(
                f"engine must be a MemoryEngine or AsyncMemoryEngine, got {type(engine).__name__}"
            )
        return engine, False
    kwargs = dict(engine_kwargs or {})
    if client is not None:
        kwargs["client"] = client
    return MemoryEngine(path, **kwargs), True


class EngineRunner:
    """Runs coroutines of an engine's :class:`AsyncMemoryEngine` from sync and async code.

    Args:
        engine: A :class:`MemoryEngine` (sync and async callers both work) or an
            :class:`AsyncMemoryEngine` (async callers only, on the loop it is used from).
    """

    def __init__(self, engine: EngineLike) -> None:
        self.engine = engine
        self.aengine: AsyncMemoryEngine = engine.aengine if isinstance(engine, MemoryEngine) else engine

    def run(self, factory: Callable[[AsyncMemoryEngine], Coroutine[Any, Any, T]]) -> T:
        """Run ``factory(aengine)`` to completion from sync code.

        Raises:
            MemAdaptersError: the engine is an :class:`AsyncMemoryEngine` (use the async
                methods), or this is called from the engine's own loop.
        """
        if not isinstance(self.engine, MemoryEngine):
            raise MemAdaptersError(
                "sync methods need a MemoryEngine; with an AsyncMemoryEngine use the async "
                "methods (aget_messages, aadd_messages, ainvoke, abatch...)"
            )
        # MemoryEngine.run refuses (rather than deadlocks) a call from the engine's own loop.
        return self.engine.run(factory(self.aengine))

    async def arun(self, factory: Callable[[AsyncMemoryEngine], Coroutine[Any, Any, T]]) -> T:
        """Await ``factory(aengine)`` without blocking the caller's event loop."""
        if not isinstance(self.engine, MemoryEngine):
            return await factory(self.aengine)
        return await self.engine.arun(factory(self.aengine))

    def close(self) -> None:
        """Close the engine (only call this for an engine the adapter built itself)."""
        if isinstance(self.engine, MemoryEngine):
            self.engine.close()
        else:  # pragma: no cover - adapters only build sync engines
            raise MemAdaptersError("close an AsyncMemoryEngine with `await engine.aclose()`")


__all__ = ["EngineLike", "EngineRunner", "build_engine"]
