"""The FastAPI application: :func:`create_app` (and :func:`app_from_env` for uvicorn workers)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from .. import __version__
from . import errors
from .auth import Authenticator
from .routers import ROUTERS
from .settings import ServerSettings

logger = logging.getLogger(__name__)

SETTINGS_ENV = "MEM_ADAPTERS_SERVER_SETTINGS"
"""JSON of the :class:`ServerSettings` that ``mem-adapters serve`` hands to its workers."""


def open_engine(settings: ServerSettings) -> Any:
    """An :class:`~mem_adapters.AsyncMemoryEngine` on the configured store."""
    from ..async_engine import AsyncMemoryEngine

    kwargs: dict[str, Any] = {"enricher": "default" if settings.enrich else None}
    if settings.model_dir is not None:
        kwargs["model_dir"] = settings.model_dir
    if settings.chroma_host:
        return AsyncMemoryEngine(host=settings.chroma_host, port=settings.chroma_port, **kwargs)
    return AsyncMemoryEngine(settings.path, **kwargs)


def create_app(settings: ServerSettings, engine: Any = None) -> FastAPI:
    """The memory service over ``engine`` (default: one opened from ``settings`` at startup).

    Raises:
        ValidationError: a key file or public key cannot be read.
    """
    auth = Authenticator(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = engine is None
        app.state.engine = open_engine(settings) if own else engine
        try:
            yield
        finally:
            eng, app.state.engine = app.state.engine, None
            if own:
                await eng.aclose()

    app = FastAPI(
        title="mem-adapters memory service",
        version=__version__,
        description=(
            "Conversational memory over Chroma in the hosted memory APIs' shapes. "
            "Authenticate with `Authorization: Bearer <JWT>` (tenant = `org_id` claim) or an API key; "
            "every error has the shape `{error: {code, message, status, field?, details?}}`."
        ),
        lifespan=lifespan,
        openapi_url="/openapi.json",
    )
    app.state.auth = auth
    app.state.settings = settings
    app.state.engine = None
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    return app


def settings_to_env(settings: ServerSettings) -> str:
    """JSON of ``settings`` for :data:`SETTINGS_ENV`."""
    return json.dumps(
        {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(settings).items()}
    )


def app_from_env() -> FastAPI:
    """Uvicorn factory: the app configured by :data:`SETTINGS_ENV` (one per worker process)."""
    raw = json.loads(os.environ.get(SETTINGS_ENV, "{}"))
    paths = {"path", "model_dir", "jwt_public_key", "jwks_file", "api_keys"}
    kwargs = {k: Path(v) if k in paths and v is not None else v for k, v in raw.items()}
    return create_app(ServerSettings(**kwargs))
