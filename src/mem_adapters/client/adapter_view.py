"""A client seen as an :class:`~mem_adapters.AsyncMemoryEngine`: what lets the adapters run over the service.

The LangChain and LlamaIndex adapters are written once, as coroutines calling the async
engine's methods. :func:`client_view` gives them the same methods over a
:class:`~mem_adapters.client.MemoryClient` (each call run in a worker thread, so no event loop
blocks on HTTP) or an :class:`~mem_adapters.client.AsyncMemoryClient` (awaited directly).

A view of a sync client owns a private event loop thread, like
:class:`~mem_adapters.MemoryEngine`: the adapters' sync methods run their coroutines there
(:meth:`ClientView.run`), their async methods await them there (:meth:`ClientView.arun`), so
the per-session locks the adapters take always live on one loop. ``MemoryClient.close()``
stops it.

Tenants: the adapters' default tenant (:data:`~mem_adapters.models.DEFAULT_TENANT`) is sent
as "no tenant": the client's own ``tenant_id`` if it was made with one, else the credential's.
Any other ``tenant_id`` is sent as is, with the body and as ``?tenant_id=``, so every call of
the adapter (reads by id and by session too) acts in it: an admin credential or
``--insecure-no-auth`` may name any tenant; any other credential gets 403
``tenant_mismatch`` (:class:`~mem_adapters.client.PermissionDeniedError`) unless it is its own.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ..errors import ClosedError, MemAdaptersError
from ..models import DEFAULT_TENANT
from .aio import AsyncMemoryClient
from .sync import MemoryClient

logger = logging.getLogger(__name__)

T = TypeVar("T")

ClientLike = MemoryClient | AsyncMemoryClient

MAX_SEARCH_K = 200
"""The service's largest search ``k`` (``/v1/engine/search``)."""

_VIEWS_LOCK = threading.Lock()


def is_client(obj: Any) -> bool:
    """Whether ``obj`` is a :class:`MemoryClient` or :class:`AsyncMemoryClient`."""
    return isinstance(obj, MemoryClient | AsyncMemoryClient)


class ClientView:
    """The async engine's method names over a client (see the module docstring).

    Attribute access returns a coroutine function for each client method: ``await
    view.search(q, tenant_id=...)``. Use :func:`client_view` (one view per client, so every
    adapter over a client shares its loop and session locks).

    Args:
        client: The service client.
    """

    max_search_k = MAX_SEARCH_K

    def __init__(self, client: ClientLike) -> None:
        self.client = client
        self.sync = isinstance(client, MemoryClient)
        self._loop: Any = None
        self._loop_lock = threading.Lock()

    @property
    def closed(self) -> bool:
        """Whether the client is closed."""
        return self.client.closed

    def __getattr__(self, name: str) -> Callable[..., Coroutine[Any, Any, Any]]:
        if name.startswith("_"):
            raise AttributeError(name)
        method = getattr(self.client, name)  # AttributeError: the service client has no such method
        if not callable(method):
            raise AttributeError(name)
        sync = self.sync

        async def call(*args: Any, **kwargs: Any) -> Any:
            if kwargs.get("tenant_id") == DEFAULT_TENANT:
                kwargs["tenant_id"] = None  # the credential's tenant
            if sync:
                return await asyncio.to_thread(method, *args, **kwargs)
            return await method(*args, **kwargs)

        call.__name__ = name
        return call

    def _loop_thread(self) -> Any:
        from ..engine import _LoopThread

        with self._loop_lock:
            if self._loop is None or self._loop.closed:
                self._loop = _LoopThread(f"adapters over {type(self.client).__name__}")
            return self._loop

    def _check(self, coro: Coroutine[Any, Any, Any]) -> None:
        if self.client.closed:
            coro.close()
            raise ClosedError(f"{type(self.client).__name__} of {self.client.base_url} is closed")

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run an adapter coroutine from sync code (sync client only).

        Raises:
            ClosedError: the client is closed.
            MemAdaptersError: an :class:`AsyncMemoryClient` (use the async methods), or a call
                from the view's own loop.
        """
        self._check(coro)
        if not self.sync:
            coro.close()
            raise MemAdaptersError(
                "sync methods need a MemoryEngine or MemoryClient; with an AsyncMemoryClient "
                "use the async methods"
            )
        loop = self._loop_thread()
        if threading.current_thread() is loop.thread:
            coro.close()
            raise MemAdaptersError("a sync adapter method was called from its client's event loop")
        return loop.submit(coro).result()

    async def arun(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await an adapter coroutine without blocking the caller's loop.

        Raises:
            ClosedError: the client is closed.
        """
        self._check(coro)
        if not self.sync:
            return await coro
        loop = self._loop_thread()
        if threading.current_thread() is loop.thread:
            return await coro
        return await asyncio.wrap_future(loop.submit(coro))

    def close(self) -> None:
        """Stop the view's loop thread (``MemoryClient.close`` calls it)."""
        with self._loop_lock:
            loop, self._loop = self._loop, None
        if loop is not None:
            loop.stop()


def client_view(client: ClientLike) -> ClientView:
    """The one :class:`ClientView` of ``client`` (made on first use).

    Raises:
        MemAdaptersError: ``client`` is not a service client.
    """
    if not is_client(client):
        raise MemAdaptersError(f"not a MemoryClient or AsyncMemoryClient: {type(client).__name__}")
    with _VIEWS_LOCK:
        view = client.__dict__.get("_adapter_view")
        if view is None:
            view = client.__dict__["_adapter_view"] = ClientView(client)
        return view


__all__ = ["MAX_SEARCH_K", "ClientLike", "ClientView", "client_view", "is_client"]
