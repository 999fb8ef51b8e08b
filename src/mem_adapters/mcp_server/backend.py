"""What the MCP tools call: the in-process engine, or the REST service through the client.

Both have the engine's method names; the backend only adds the scope's tenant (local store)
or the credential (service), and opens lazily on the first call so a misconfigured store is
reported to the MCP host as a tool error instead of killing the server.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any

from .scope import McpConfig, Scope

logger = logging.getLogger(__name__)

MAX_CLIENTS = 64
"""Service clients kept open, one per forwarded credential (least recently used dropped)."""


class Backend:
    """Opens, hands out and closes what the tools call.

    Args:
        config: The server's configuration.
        engine: An already open :class:`~mem_adapters.AsyncMemoryEngine` to use (not closed here).
    """

    def __init__(self, config: McpConfig, engine: Any = None) -> None:
        self.config = config
        self._engine = engine
        self._own_engine = engine is None
        self._clients: OrderedDict[tuple[str, str] | None, Any] = OrderedDict()
        self._lock = asyncio.Lock()

    @property
    def remote(self) -> bool:
        """Whether calls go to the REST service."""
        return bool(self.config.service_url)

    async def target(self, scope: Scope) -> Any:
        """The engine, or the service client of the scope's credential."""
        async with self._lock:
            if self.remote:
                return await self._client(scope.credential)
            if self._engine is None:
                self._engine = await asyncio.to_thread(self._open_engine)
            return self._engine

    def _open_engine(self) -> Any:
        from ..async_engine import AsyncMemoryEngine

        c = self.config
        kwargs: dict[str, Any] = {"enricher": "default" if c.enrich else None}
        if c.model_dir is not None:
            kwargs["model_dir"] = c.model_dir
        if c.chroma_host:
            return AsyncMemoryEngine(host=c.chroma_host, port=c.chroma_port, **kwargs)
        return AsyncMemoryEngine(c.path, **kwargs)

    async def _client(self, credential: tuple[str, str] | None) -> Any:
        from ..client import AsyncMemoryClient

        if credential in self._clients:
            self._clients.move_to_end(credential)
            return self._clients[credential]
        kind, value = credential or (None, None)
        client = AsyncMemoryClient(
            self.config.service_url or "",
            token=value if kind == "token" else None,
            api_key=value if kind == "api_key" else None,
        )
        self._clients[credential] = client
        while len(self._clients) > MAX_CLIENTS:
            _, old = self._clients.popitem(last=False)
            await old.aclose()
        return client

    def tenant_kwargs(self, scope: Scope) -> dict[str, Any]:
        """``tenant_id=`` for the engine; nothing for the service (the credential names it)."""
        return {} if self.remote or scope.tenant_id is None else {"tenant_id": scope.tenant_id}

    async def aclose(self) -> None:
        """Close the engine (if opened here) and every service client."""
        async with self._lock:
            clients, self._clients = list(self._clients.values()), OrderedDict()
            for c in clients:
                await c.aclose()
            if self._engine is not None and self._own_engine:
                eng, self._engine = self._engine, None
                await eng.aclose()
