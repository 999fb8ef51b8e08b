"""``mem-adapters ui``: the memory inspector on a local store, on loopback, without auth."""

from __future__ import annotations

import logging
import os
import threading
import webbrowser
from typing import Annotated

import typer

from ..errors import ValidationError
from .app import StoreOptions, app, store_command
from .serve_cmd import _need_server_extra

logger = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "::1", "localhost")


@app.command()
@store_command
def ui(
    store: StoreOptions,
    host: Annotated[str, typer.Option("--host", help="Loopback address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to bind.")] = 8765,
    no_open: Annotated[bool, typer.Option("--no-open", help="Do not open a browser.")] = False,
    no_enrich: Annotated[bool, typer.Option("--no-enrich", help="No background enrichment.")] = False,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "warning",
) -> None:
    """Open the memory inspector (at /ui) on a local store: loopback only, no auth."""
    _need_server_extra()
    if host not in LOOPBACK:
        raise ValidationError("--host", f"without auth the inspector binds loopback only: {LOOPBACK}")
    import uvicorn

    from ..server.app import SETTINGS_ENV, settings_to_env
    from ..server.settings import ServerSettings

    settings = ServerSettings(
        path=store.path,
        chroma_host=store.chroma_host,
        chroma_port=store.chroma_port,
        model_dir=store.model_dir,
        insecure_no_auth=True,
        enrich=not no_enrich,
    )
    settings.check(host, 1)
    os.environ[SETTINGS_ENV] = settings_to_env(settings)
    url = f"http://{'[::1]' if host == '::1' else host}:{port}/ui/"
    typer.echo(f"inspector of {store.location} at {url} (no auth, loopback only; Ctrl-C stops it)", err=True)
    if not no_open:
        threading.Timer(1.5, webbrowser.open, args=(url,)).start()
    uvicorn.run(
        "mem_adapters.server.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
