"""``mem-adapters mcp``: the memory as an MCP server (stdio for local hosts, streamable HTTP)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from ..errors import ValidationError
from .app import StoreOptions, app, store_command

logger = logging.getLogger(__name__)

PANEL = "MCP"


@app.command()
@store_command
def mcp(
    store: StoreOptions,
    transport: Annotated[
        str,
        typer.Option(
            "--transport",
            help="stdio (for a local MCP host) or http (streamable HTTP).",
            rich_help_panel=PANEL,
        ),
    ] = "stdio",
    host: Annotated[str, typer.Option("--host", help="Address to bind (http).", rich_help_panel=PANEL)] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option("--port", help="Port to bind (http).", rich_help_panel=PANEL)] = 8765,
    mcp_path: Annotated[
        str, typer.Option("--mcp-path", help="HTTP path of the endpoint.", rich_help_panel=PANEL)
    ] = "/mcp",
    agent: Annotated[
        str | None, typer.Option("--agent", help="Agent id stamped on writes.", rich_help_panel=PANEL)
    ] = None,
    service: Annotated[
        str | None,
        typer.Option(
            "--service",
            help="Use the memory service at this URL instead of a local store.",
            rich_help_panel=PANEL,
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="MEM_ADAPTERS_TOKEN",
            help="JWT sent to --service.",
            rich_help_panel=PANEL,
            show_default=False,
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="MEM_ADAPTERS_API_KEY",
            help="API key sent to --service.",
            rich_help_panel=PANEL,
            show_default=False,
        ),
    ] = None,
    jwt_secret: Annotated[
        str | None,
        typer.Option(
            "--jwt-secret",
            envvar="MEM_ADAPTERS_JWT_SECRET",
            show_default=False,
            help="http on a local store: verify each request's HS256 token (tenant = org_id).",
            rich_help_panel=PANEL,
        ),
    ] = None,
    api_keys: Annotated[
        Path | None,
        typer.Option(
            "--api-keys",
            help="http on a local store: accept these hashed API keys.",
            rich_help_panel=PANEL,
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    no_enrich: Annotated[bool, typer.Option("--no-enrich", help="No background enrichment.")] = False,
) -> None:
    """Serve memory tools over MCP: remember, search, list_memories, get_memory, delete_memory, erase_user.

    The scope is --tenant/--user/--session (a configured --user cannot be overridden by a tool
    call), or, over http, each request's token.
    """
    try:
        from ..mcp_server.run import run
        from ..mcp_server.scope import McpConfig
    except ImportError as e:
        raise ValidationError(
            "mcp", f"needs the [server] extra: pip install 'mem-adapters[server]' ({e})"
        ) from e
    if transport not in ("stdio", "http"):
        raise typer.BadParameter("must be stdio or http", param_hint="--transport")
    auth = None
    if jwt_secret or api_keys:
        from ..server.settings import ServerSettings

        auth = ServerSettings(jwt_secret=jwt_secret, api_keys=api_keys)
    config = McpConfig(
        path=store.path,
        chroma_host=store.chroma_host,
        chroma_port=store.chroma_port,
        model_dir=store.model_dir,
        tenant=store.tenant,
        user=store.user,
        session=store.session,
        agent=agent,
        service_url=service,
        token=token,
        api_key=api_key,
        auth=auth,
        enrich=not no_enrich,
    )
    run(config, transport, host=host, port=port, path=mcp_path)  # type: ignore[arg-type]
