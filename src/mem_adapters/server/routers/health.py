"""``/healthz`` (the process answers) and ``/readyz`` (the store answers)."""

from __future__ import annotations

import logging
import os

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..shapes import Health

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up (no store call)."""
    return Health(status="ok", worker=os.getpid())


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
async def readyz(request: Request) -> Health | JSONResponse:
    """The engine is open and its store answers."""
    eng = getattr(request.app.state, "engine", None)
    if eng is None:
        return JSONResponse(Health(status="starting").model_dump(), status_code=503)
    try:
        await eng.tenants()
    except Exception as e:  # any store failure means "not ready", with the reason
        logger.warning("readiness check failed: %s", e)
        return JSONResponse(Health(status="unavailable", detail=str(e)).model_dump(), status_code=503)
    return Health(status="ready", worker=os.getpid())
