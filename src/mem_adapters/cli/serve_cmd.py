"""``mem-adapters serve`` (the memory service on uvicorn) and ``mem-adapters api-key`` (new keys)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from ..errors import ValidationError
from .app import StoreOptions, app, store_command

logger = logging.getLogger(__name__)

AUTH_PANEL = "Auth"


def _need_server_extra() -> None:
    try:
        import fastapi  # noqa: F401
        import jwt  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise ValidationError(
            "serve", f"needs the [server] extra: pip install 'mem-adapters[server]' ({e})"
        ) from e


@app.command()
@store_command
def serve(
    store: StoreOptions,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to bind (0: any free port).")] = 8080,
    workers: Annotated[
        int, typer.Option("--workers", help="uvicorn worker processes (more than 1 needs --chroma-host).")
    ] = 1,
    jwt_secret: Annotated[
        str | None,
        typer.Option(
            "--jwt-secret",
            envvar="MEM_ADAPTERS_JWT_SECRET",
            help="HS256 secret of Bearer tokens.",
            rich_help_panel=AUTH_PANEL,
            show_default=False,
        ),
    ] = None,
    jwt_public_key: Annotated[
        Path | None,
        typer.Option(
            "--jwt-public-key",
            help="PEM file of the RS256/ES256 public key of Bearer tokens.",
            rich_help_panel=AUTH_PANEL,
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    jwks: Annotated[
        Path | None,
        typer.Option(
            "--jwks",
            help="JWKS file (keys chosen by the token's kid).",
            rich_help_panel=AUTH_PANEL,
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    jwt_audience: Annotated[
        str | None, typer.Option("--jwt-audience", help="Required aud claim.", rich_help_panel=AUTH_PANEL)
    ] = None,
    jwt_issuer: Annotated[
        str | None, typer.Option("--jwt-issuer", help="Required iss claim.", rich_help_panel=AUTH_PANEL)
    ] = None,
    api_keys: Annotated[
        Path | None,
        typer.Option(
            "--api-keys",
            help="Key file of hashed API keys (see: mem-adapters api-key).",
            rich_help_panel=AUTH_PANEL,
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    insecure_no_auth: Annotated[
        bool,
        typer.Option(
            "--insecure-no-auth",
            help="Serve without auth (loopback addresses only).",
            rich_help_panel=AUTH_PANEL,
        ),
    ] = False,
    no_enrich: Annotated[bool, typer.Option("--no-enrich", help="No background enrichment.")] = False,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
) -> None:
    """Serve the memory REST API (OpenAPI at /openapi.json) on uvicorn."""
    _need_server_extra()
    import uvicorn

    from ..server.app import SETTINGS_ENV, settings_to_env
    from ..server.auth import Authenticator
    from ..server.settings import ServerSettings

    settings = ServerSettings(
        path=store.path,
        chroma_host=store.chroma_host,
        chroma_port=store.chroma_port,
        model_dir=store.model_dir,
        jwt_secret=jwt_secret,
        jwt_public_key=jwt_public_key,
        jwks_file=jwks,
        jwt_audience=jwt_audience,
        jwt_issuer=jwt_issuer,
        api_keys=api_keys,
        insecure_no_auth=insecure_no_auth,
        enrich=not no_enrich,
    )
    settings.check(host, workers)
    Authenticator(settings)  # fail here, not in every worker, on an unreadable key
    if insecure_no_auth:
        typer.echo(f"warning: serving WITHOUT auth on {host} (loopback only)", err=True)
    os.environ[SETTINGS_ENV] = settings_to_env(settings)
    uvicorn.run(
        "mem_adapters.server.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


@app.command("api-key")
def api_key(
    file: Annotated[Path, typer.Argument(help="Key file to add the key to (created if absent).")],
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant the key is bound to.")],
    user: Annotated[str | None, typer.Option("--user", help="Default user of the key.")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="The key may list tenants.")] = False,
) -> None:
    """Create an API key: prints it once; the key file keeps only its SHA-256."""
    from ..server.keys import create_key

    typer.echo(create_key(file, tenant_id=tenant, user_id=user, role="admin" if admin else None))
