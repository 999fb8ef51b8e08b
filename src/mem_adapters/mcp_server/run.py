"""Run the MCP server over stdio or streamable HTTP, closing the backend when it stops."""

from __future__ import annotations

import logging
from typing import Any, Literal

import anyio

from ..errors import ValidationError
from ..server.settings import is_loopback
from .backend import Backend
from .scope import McpConfig
from .tools import build_server

logger = logging.getLogger(__name__)

Transport = Literal["stdio", "http"]


def check(config: McpConfig, transport: Transport, host: str) -> None:
    """Refuse an MCP server anyone on the network could use without a credential.

    Over HTTP on a non-loopback host the caller's token must decide the scope: a local store
    needs ``auth`` (``--jwt-secret``...), a service needs no configured credential (each
    request forwards its own).

    Raises:
        ValidationError: an unsafe or incomplete combination.
    """
    if config.service_url and config.token and config.api_key:
        raise ValidationError("--token", "give --token or --api-key, not both")
    if (config.token or config.api_key) and not config.service_url:
        raise ValidationError("--token", "--token/--api-key are sent to a --service; a local store has none")
    if transport != "http" or is_loopback(host):
        return
    if config.service_url and not (config.token or config.api_key):
        return
    if not config.service_url and config.auth is not None:
        return
    raise ValidationError(
        "--host",
        f"serving MCP on {host!r} needs per-request credentials: --jwt-secret/--api-keys for a local "
        "store, or --service without --token/--api-key",
    )


def _authenticator(config: McpConfig) -> Any:
    if config.auth is None or config.service_url:
        return None
    from ..server.auth import Authenticator

    return Authenticator(config.auth)


def run(
    config: McpConfig,
    transport: Transport = "stdio",
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    path: str = "/mcp",
    log_level: str = "warning",
) -> None:
    """Serve until stopped (stdin closed, or SIGINT/SIGTERM for HTTP).

    Raises:
        ValidationError: see :func:`check`.
    """
    check(config, transport, host)
    auth = _authenticator(config) if transport == "http" else None
    backend = Backend(config)
    server = build_server(backend, authenticator=auth)

    async def main() -> None:
        try:
            if transport == "stdio":
                await server.run_stdio_async()
            else:
                import uvicorn

                app = server.streamable_http_app(streamable_http_path=path, host=host)
                cfg = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False)
                await uvicorn.Server(cfg).serve()
        finally:
            with anyio.CancelScope(shield=True):
                await backend.aclose()

    anyio.run(main)
