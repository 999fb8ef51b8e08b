"""Run engine coroutines from sync or async callers without blocking anyone's event loop.

Every adapter in this package is written once, as coroutines against an
:class:`~mem_adapters.AsyncMemoryEngine`. A sync :class:`~mem_adapters.MemoryEngine` owns a
private event loop thread where its async engine lives; coroutines are submitted to that loop
with :meth:`MemoryEngine.submit` / :meth:`MemoryEngine.arun` (never run on the caller's loop,
because the async engine's locks and executors belong to it).

``engine=`` also takes a service client (:class:`~mem_adapters.client.MemoryClient` for sync
and async methods, :class:`~mem_adapters.client.AsyncMemoryClient` for async methods): the
coroutines then run against its :func:`~mem_adapters.client.adapter_view.client_view`, the
async engine's method names over HTTP, on the view's own loop thread for a sync client.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from mem_adapters import AsyncMemoryEngine, ClosedError, MemAdaptersError, MemoryEngine
from mem_adapters.validation import check_count, check_id

logger = logging.getLogger(__name__)

T = TypeVar("T")

EngineLike = Any
"""A :class:`MemoryEngine`, an :class:`AsyncMemoryEngine`, a ``MemoryClient`` or an ``AsyncMemoryClient``."""


def _client_view(obj: Any) -> Any:
    """The engine view of a service client, or ``None`` when ``obj`` is not one."""
    try:
        from mem_adapters.client.adapter_view import client_view, is_client
    except ImportError:  # the client needs httpx (the [server] extra)
        return None
    return client_view(obj) if is_client(obj) else None


def build_engine(
    engine: EngineLike | None,
    *,
    path: str | os.PathLike[str] | None = None,
    client: Any = None,
    engine_kwargs: dict[str, Any] | None = None,
) -> tuple[EngineLike, bool]:
    """Return ``(engine, owned)``: the injected engine, or a new :class:`MemoryEngine`.

    Args:
        engine: An existing engine (preferred: share one per process), or a service client
            (``MemoryClient`` / ``AsyncMemoryClient``).
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
        if not isinstance(engine, MemoryEngine | AsyncMemoryEngine) and _client_view(engine) is None:
            raise MemAdaptersError(
                "engine must be a MemoryEngine, AsyncMemoryEngine, MemoryClient or AsyncMemoryClient, "
                f"got {type(engine).__name__}"
            )
        return engine, False
    kwargs = dict(engine_kwargs or {})
    if client is not None:
        kwargs["client"] = client
    return MemoryEngine(path, **kwargs), True


class EngineRunner:
    """Runs coroutines of an engine's :class:`AsyncMemoryEngine` from sync and async code.

    Args:
        engine: A :class:`MemoryEngine` or ``MemoryClient`` (sync and async callers both
            work), or an :class:`AsyncMemoryEngine` or ``AsyncMemoryClient`` (async callers
            only, on the loop it is used from).
        owned: Whether the adapter built the engine (then closing the adapter closes it).
        name: The adapter's class name, for error messages.
    """

    def __init__(self, engine: EngineLike, *, owned: bool = False, name: str = "adapter") -> None:
        self.engine = engine
        self.view = _client_view(engine)
        self.aengine: Any = (
            engine.aengine
            if isinstance(engine, MemoryEngine)
            else self.view
            if self.view is not None
            else engine
        )
        self.owned = owned
        self.name = name
        # The service caps a search's k; the engine does not.
        self.max_search_k: int | None = self.view.max_search_k if self.view is not None else None
        self.closed = False

    def check_open(self) -> None:
        """Raise :class:`~mem_adapters.ClosedError` if the adapter was closed."""
        if self.closed:
            raise ClosedError(f"{self.name} is closed")

    def run(self, factory: Callable[[AsyncMemoryEngine], Coroutine[Any, Any, T]]) -> T:
        """Run ``factory(aengine)`` to completion from sync code.

        Raises:
            ClosedError: the adapter or its engine is closed.
            MemAdaptersError: the engine is an :class:`AsyncMemoryEngine` (use the async
                methods), or this is called from the engine's own loop.
        """
        self.check_open()
        if self.view is not None:
            return self.view.run(factory(self.aengine))
        if not isinstance(self.engine, MemoryEngine):
            raise MemAdaptersError(
                "sync methods need a MemoryEngine; with an AsyncMemoryEngine use the async "
                "methods (aget_messages, aadd_messages, ainvoke, abatch...)"
            )
        # MemoryEngine.run refuses (rather than deadlocks) a call from the engine's own loop.
        return self.engine.run(factory(self.aengine))

    async def arun(self, factory: Callable[[AsyncMemoryEngine], Coroutine[Any, Any, T]]) -> T:
        """Await ``factory(aengine)`` without blocking the caller's event loop.

        Raises:
            ClosedError: the adapter or its engine is closed.
        """
        self.check_open()
        if self.view is not None:
            return await self.view.arun(factory(self.aengine))
        if not isinstance(self.engine, MemoryEngine):
            return await factory(self.aengine)
        return await self.engine.arun(factory(self.aengine))

    def close(self) -> None:
        """Refuse further calls and close the engine if the adapter built it; idempotent."""
        self.closed = True
        if self.owned and isinstance(self.engine, MemoryEngine):  # adapters only build sync engines
            self.engine.close()

    async def aclose(self) -> None:
        """:meth:`close` without blocking the caller's event loop."""
        self.closed = True
        if self.owned and isinstance(self.engine, MemoryEngine):
            await asyncio.to_thread(self.engine.close)


class ClosableAdapter:
    """``close``/``aclose`` and ``with``/``async with`` for an adapter holding ``self._runner``.

    Closing an adapter makes its later calls raise :class:`~mem_adapters.ClosedError`; an
    engine it built itself (from ``path=``/``client=``/``engine_kwargs=``) is closed with it,
    an engine passed as ``engine=`` is left open for its other users.
    """

    if TYPE_CHECKING:  # set by each adapter (a pydantic private attribute on the retriever)
        _runner: EngineRunner

    def close(self) -> None:
        """Close the adapter (and the engine, if the adapter built it)."""
        self._runner.close()

    async def aclose(self) -> None:
        """Close the adapter (and the engine, if the adapter built it) from async code."""
        await self._runner.aclose()

    def __enter__(self) -> Any:
        self._runner.check_open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Any:
        self._runner.check_open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


__all__ = ["ClosableAdapter", "EngineLike", "EngineRunner", "build_engine", "check_count", "check_id"]
