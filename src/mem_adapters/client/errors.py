"""Typed errors of the memory-service client (all :class:`~mem_adapters.errors.MemAdaptersError`)."""

from __future__ import annotations

from typing import Any

from .. import errors as base


class ServiceError(base.MemAdaptersError):
    """The service answered with an error; ``status``, ``code`` and ``body`` say which."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None, body: Any = None):
        super().__init__(message)
        self.status, self.code, self.body = status, code, body


class AuthenticationError(ServiceError):
    """401: the credential is missing, expired or invalid (or 403: it may not do this)."""


class PermissionDeniedError(AuthenticationError):
    """403: the credential's tenant or role may not do this (e.g. ``tenant_mismatch``)."""


class NotFoundError(base.NotFoundError):
    """404: no such id in the credential's tenant.

    A subclass of the engine's :class:`~mem_adapters.errors.NotFoundError`, so code written
    against the engine catches it unchanged.
    """

    def __init__(self, message: str, *, status: int = 404, code: str | None = "not_found", body: Any = None):
        super().__init__(message)
        self.status, self.code, self.body = status, code, body


class InvalidInputError(base.ValidationError):
    """422: the request was invalid; ``field`` names the input (a :class:`ValidationError`)."""

    def __init__(self, field: str, message: str, *, code: str | None = None, body: Any = None) -> None:
        super().__init__(field, message)
        self.status, self.code, self.body = 422, code, body


class NetworkError(base.TransportError):
    """The service could not be reached, or did not answer within the timeout."""


class ServerError(ServiceError):
    """5xx after every retry."""


def from_response(status: int, body: Any, text: str) -> base.MemAdaptersError:
    """The typed error of an error answer in the service's error shape."""
    err = body.get("error") if isinstance(body, dict) else None
    err = err if isinstance(err, dict) else {}
    code, message, field = err.get("code"), err.get("message") or text[:500], err.get("field")
    if status == 401:
        return AuthenticationError(message, status=status, code=code, body=body)
    if status == 403:
        return PermissionDeniedError(message, status=status, code=code, body=body)
    if status == 404:
        return NotFoundError(message, code=code, body=body)
    if status in (400, 409, 413, 422):
        if code == "job_error":
            return base.JobError(message)
        text_field = field or "request"
        prefix = f"{text_field}: "
        return InvalidInputError(
            text_field,
            message[len(prefix) :] if message.startswith(prefix) else message,
            code=code,
            body=body,
        )
    if status >= 500:
        return ServerError(message, status=status, code=code, body=body)
    return ServiceError(message, status=status, code=code, body=body)
