"""The one error shape of every 4xx/5xx answer, and the handlers that produce it.

Every error is ``{"error": {"code", "message", "status", "field"?, "details"?}}``. Codes:
``validation_error`` (422), ``unauthorized`` / ``invalid_token`` (401), ``forbidden`` /
``tenant_mismatch`` (403), ``not_found`` (404), ``method_not_allowed`` (405),
``job_error`` (409), ``store_unavailable`` (503), ``internal_error`` (500).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import ClosedError, JobError, NotFoundError, StoreError, ValidationError

logger = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    """What went wrong."""

    code: str = Field(description="Stable machine-readable code, e.g. 'tenant_mismatch'.")
    message: str
    status: int
    field: str | None = Field(default=None, description="Dotted path of the offending input.")
    details: list[dict[str, Any]] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    """The body of every error answer."""

    error: ErrorDetail


class ApiError(Exception):
    """An error answer raised by a route or a dependency."""

    def __init__(
        self, status: int, code: str, message: str, *, field: str | None = None, headers: dict | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers = headers


def error_json(
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    details: list[dict[str, Any]] | None = None,
    headers: dict | None = None,
) -> JSONResponse:
    """A JSON response in the documented error shape."""
    body = ErrorResponse(
        error=ErrorDetail(code=code, message=message, status=status, field=field, details=details or [])
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


_HTTP_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": desc}
    for code, desc in (
        (400, "The body is not parseable JSON."),
        (401, "Missing or invalid credential."),
        (403, "The credential may not act on this tenant or resource."),
        (404, "Unknown id in the credential's tenant."),
        (422, "Invalid input; `field` names it."),
    )
}
"""OpenAPI ``responses`` shared by every route."""


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into the error shape."""

    @app.exception_handler(ApiError)
    async def _api(_: Request, e: ApiError) -> JSONResponse:
        return error_json(e.status, e.code, e.message, field=e.field, headers=e.headers)

    @app.exception_handler(RequestValidationError)
    async def _request(_: Request, e: RequestValidationError) -> JSONResponse:
        errors = e.errors()
        details = [
            {
                "field": _loc(tuple(err.get("loc", ()))),
                "message": str(err.get("msg", "")),
                "type": err.get("type"),
            }
            for err in errors
        ]
        first = details[0] if details else {"field": None, "message": "invalid request"}
        return error_json(
            422,
            "validation_error",
            f"{first['field']}: {first['message']}",
            field=first["field"] or None,
            details=details,
        )

    @app.exception_handler(ValidationError)
    async def _validation(_: Request, e: ValidationError) -> JSONResponse:
        return error_json(422, "validation_error", str(e), field=e.field)

    @app.exception_handler(NotFoundError)
    async def _not_found(_: Request, e: NotFoundError) -> JSONResponse:
        return error_json(404, "not_found", str(e))

    @app.exception_handler(JobError)
    async def _job(_: Request, e: JobError) -> JSONResponse:
        message = str(e)
        if "unknown" in message.lower() or "no job" in message.lower():
            return error_json(404, "not_found", message)
        return error_json(409, "job_error", message)

    @app.exception_handler(ClosedError)
    async def _closed(_: Request, e: ClosedError) -> JSONResponse:
        return error_json(503, "shutting_down", str(e))

    @app.exception_handler(StoreError)
    async def _store(_: Request, e: StoreError) -> JSONResponse:
        logger.warning("store error: %s", e)
        return error_json(503, "store_unavailable", str(e))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, e: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(e.status_code, "http_error")
        return error_json(e.status_code, code, str(e.detail), headers=getattr(e, "headers", None))

    @app.exception_handler(Exception)
    async def _internal(_: Request, e: Exception) -> JSONResponse:
        logger.exception("unhandled error")
        return error_json(500, "internal_error", "internal error")
