"""Connection settings, lazily created shared engines, and sync/async call plumbing.

Every adapter keeps its connection settings as plain pydantic fields (so LlamaIndex can
serialise it, e.g. inside ``Context.to_dict``) and its engine in a private attribute that is
created on first use. Every operation is one coroutine run on the engine's own event loop:
from async code without blocking the caller's loop, from sync code (any thread) by waiting
for it. Compound operations (read the transcript, then write) take a per-session
``asyncio.Lock`` living on that loop, which is what makes the sync chat store thread-safe.

``engine=`` also takes a service client (:class:`~mem_adapters.client.MemoryClient`: sync and
async methods; :class:`~mem_adapters.client.AsyncMemoryClient`: async methods): the
coroutines then run against its :func:`~mem_adapters.client.adapter_view.client_view` (the
async engine's method names over HTTP, on the view's own loop for a sync client). The
client's URL is kept in the ``service_url`` field, so a deserialised adapter reconnects to
the live client registered for that URL in this process (credentials are never serialised).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from llama_index.core.bridge.pydantic import BaseModel, Field, PrivateAttr

from mem_adapters import AsyncMemoryEngine, ClosedError, MemAdaptersError, MemoryEngine

logger = logging.getLogger(__name__)

T = TypeVar("T")

_SHARED: dict[tuple[str, ...], MemoryEngine] = {}
# Service URL -> the clients adapters were built with (weak: a dropped client goes away).
_CLIENTS: dict[str, weakref.WeakSet[Any]] = {}
_SHARED_LOCK = threading.Lock()
# Per async engine: {(tenant_id, session_id): asyncio.Lock}. Weak, so closed engines go away.
_LOCKS: weakref.WeakKeyDictionary[AsyncMemoryEngine, dict[tuple[str, str], asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _closed(engine: Any) -> bool:
    return bool(engine.closed)


def _client_view(obj: Any) -> Any:
    """The engine view of a service client, or ``None`` when ``obj`` is not one."""
    try:
        from mem_adapters.client.adapter_view import client_view, is_client
    except ImportError:  # the client needs httpx (the [server] extra)
        return None
    return client_view(obj) if is_client(obj) else None


def register_client(client: Any) -> None:
    """Remember ``client`` as one that adapters deserialised with its ``service_url`` may use."""
    with _SHARED_LOCK:
        _CLIENTS.setdefault(client.base_url, weakref.WeakSet()).add(client)


def shared_client(service_url: str) -> Any:
    """The one open client registered for ``service_url``.

    Raises:
        MemAdaptersError: none, or several (they may hold different tenants' credentials, and
            a token is never serialised): build the adapter with ``engine=`` a client.
    """
    with _SHARED_LOCK:
        live = [c for c in _CLIENTS.get(service_url.rstrip("/"), ()) if not _closed(c)]
    if len(live) != 1:
        what = "no open MemoryClient" if not live else f"{len(live)} open clients (maybe of several tenants)"
        raise MemAdaptersError(
            f"{what} for {service_url} in this process; build the adapter with "
            "engine=MemoryClient(...) (credentials are not serialised)"
        )
    return live[0]


def _key(path: str | os.PathLike[str] | None, host: str | None, port: int) -> tuple[str, ...]:
    if host is not None:
        return ("host", host, str(port))
    from mem_adapters.async_engine import DEFAULT_PATH, PATH_ENV

    return ("path", str(Path(path or os.environ.get(PATH_ENV) or DEFAULT_PATH).resolve()))


def shared_engine(
    path: str | os.PathLike[str] | None = None, host: str | None = None, port: int = 8000
) -> MemoryEngine:
    """The process-wide :class:`MemoryEngine` for these settings, created on first use.

    Sharing matters: adapters rebuilt from a serialised ``Context`` reconnect to the same
    engine instead of loading the embedding model and opening Chroma again.

    Args:
        path: Folder of an embedded Chroma store.
        host: Chroma server host (takes precedence over ``path``).
        port: Chroma server port.
    """
    key = _key(path, host, port)
    with _SHARED_LOCK:
        engine = _SHARED.get(key)
        if engine is None or _closed(engine):
            logger.debug("creating shared MemoryEngine for %s", key)
            engine = MemoryEngine(path, host=host, port=port) if host else MemoryEngine(path)
            _SHARED[key] = engine
        return engine


def register_engine(engine: MemoryEngine, host: str | None = None, port: int = 8000) -> None:
    """Make ``engine`` the shared engine for its settings unless a live one is registered."""
    if host is None and engine.path is None:
        return
    key = _key(engine.path, host, port)
    with _SHARED_LOCK:
        current = _SHARED.get(key)
        if current is None or _closed(current):
            _SHARED[key] = engine


def close_shared_engines() -> None:
    """Close every engine created by :func:`shared_engine` (for tests and shutdown)."""
    with _SHARED_LOCK:
        engines = list(_SHARED.values())
        _SHARED.clear()
    for engine in engines:
        if not _closed(engine):
            engine.close()


class EngineHandle:
    """Runs engine coroutines from sync or async callers.

    Args:
        engine: A :class:`MemoryEngine` or ``MemoryClient`` (sync and async use), or an
            :class:`AsyncMemoryEngine` or ``AsyncMemoryClient`` (async use only, in the loop
            that owns it).
    """

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.view = _client_view(engine)
        self.aengine: Any
        if isinstance(engine, MemoryEngine):
            self.aengine = engine.aengine
        elif isinstance(engine, AsyncMemoryEngine):
            self.aengine = engine
        elif self.view is not None:
            self.aengine = self.view
        else:
            raise MemAdaptersError(
                "engine must be a MemoryEngine, AsyncMemoryEngine, MemoryClient or AsyncMemoryClient, "
                f"got {type(engine)!r}"
            )

    async def call(self, fn: Callable[[AsyncMemoryEngine], Awaitable[T]]) -> T:
        """Await ``fn(aengine)`` on the engine's loop without blocking the caller's loop."""
        if self.view is not None:
            return await self.view.arun(_invoke(fn, self.aengine))
        if isinstance(self.engine, MemoryEngine):
            # MemoryEngine.arun awaits on the engine's own loop thread (or directly when
            # already there), so the caller's loop keeps running meanwhile.
            return await self.engine.arun(_invoke(fn, self.aengine))
        return await fn(self.aengine)

    def call_sync(self, fn: Callable[[AsyncMemoryEngine], Awaitable[T]]) -> T:
        """Run ``fn(aengine)`` on the engine's loop and wait for it (safe from any thread)."""
        if self.view is not None:
            return self.view.run(_invoke(fn, self.aengine))
        if not isinstance(self.engine, MemoryEngine):
            raise MemAdaptersError(
                "sync methods need a MemoryEngine; with an AsyncMemoryEngine use the async methods"
            )
        return self.engine.run(_invoke(fn, self.aengine))


async def _invoke(fn: Callable[[AsyncMemoryEngine], Awaitable[T]], aengine: AsyncMemoryEngine) -> T:
    return await fn(aengine)


def session_lock(aengine: AsyncMemoryEngine, tenant_id: str, session_id: str) -> asyncio.Lock:
    """The lock serialising this adapter family's compound operations on one session.

    Must be called from the loop the engine's coroutines run on (they all run there).
    """
    locks = _LOCKS.get(aengine)
    if locks is None:
        locks = _LOCKS[aengine] = {}
    lock = locks.get((tenant_id, session_id))
    if lock is None:
        lock = locks[(tenant_id, session_id)] = asyncio.Lock()
    return lock


class EngineConfig(BaseModel):
    """Plain, serialisable connection settings plus a lazily created engine.

    Give either an ``engine`` (kept private, never serialised; its store folder is copied
    into ``path`` so a deserialised copy reconnects to the same store; a service client's
    URL into ``service_url``) or ``path`` / ``host`` + ``port``.

    Every adapter built on it is a context manager (``with`` / ``async with``, or
    ``close()`` / ``aclose()``): once closed, its calls raise
    :class:`~mem_adapters.ClosedError`. The engine is not closed with it: an engine passed
    in belongs to the caller, and one created from the settings is shared by the process
    (:func:`close_shared_engines` closes those; at interpreter exit they close cleanly anyway).
    Calls on an adapter whose engine was closed raise ``ClosedError`` too.
    """

    path: str | None = Field(default=None, description="Folder of an embedded Chroma store.")
    host: str | None = Field(default=None, description="Chroma server host (wins over path).")
    port: int = Field(default=8000, description="Chroma server port.")
    tenant_id: str = Field(default="default", description="mem-adapters tenant (isolation boundary).")
    service_url: str | None = Field(
        default=None, description="URL of the memory service whose client this adapter uses."
    )

    _handle: EngineHandle | None = PrivateAttr(default=None)
    _closed: bool = PrivateAttr(default=False)
    _owner: str | None = PrivateAttr(default=None)  # name in errors when held by a non-pydantic adapter

    def _attach(self, engine: Any) -> None:
        """Use ``engine`` (or a service client) instead of creating one from the settings."""
        if engine is None:
            return
        self._handle = EngineHandle(engine)
        if self._handle.view is not None:
            self.service_url = engine.base_url
            register_client(engine)
        elif isinstance(engine, MemoryEngine):
            if self.host is None and self.path is None and engine.path is not None:
                self.path = str(engine.path)
            register_engine(engine, self.host, self.port)
        elif self.host is None and self.path is None and engine.path is not None:
            self.path = str(engine.path)

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"{self._owner or type(self).__name__} is closed")

    def close(self) -> None:
        """Close this adapter: later calls raise ``ClosedError`` (the engine stays open)."""
        self._closed = True

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        self.close()

    def __enter__(self) -> Any:
        self._check_open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Any:
        self._check_open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def handle(self) -> EngineHandle:
        """The engine handle, creating (or sharing) the engine on first use.

        Raises:
            ClosedError: this adapter was closed.
        """
        self._check_open()
        if self._handle is None:
            if self.service_url is not None:
                self._handle = EngineHandle(shared_client(self.service_url))
            else:
                self._handle = EngineHandle(shared_engine(self.path, self.host, self.port))
        return self._handle

    @property
    def engine(self) -> Any:
        """The engine (or service client) in use (created lazily from the settings)."""
        return self.handle.engine

    def _run(self, fn: Callable[[AsyncMemoryEngine], Awaitable[T]]) -> T:
        return self.handle.call_sync(fn)

    async def _arun(self, fn: Callable[[AsyncMemoryEngine], Awaitable[T]]) -> T:
        self._check_open()
        handle = self._handle
        if handle is None and self.service_url is not None:
            handle = self._handle = EngineHandle(shared_client(self.service_url))
        if handle is None:
            # First use from async code: building an engine loads the embedding model and
            # opens Chroma, which must not stall the caller's event loop.
            engine = await asyncio.to_thread(shared_engine, self.path, self.host, self.port)
            if self._handle is None:
                self._handle = EngineHandle(engine)
            handle = self._handle
        return await handle.call(fn)
