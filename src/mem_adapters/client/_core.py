"""What the sync and async clients share: request building, idempotency, retries, decoding."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import httpx

from ..errors import ValidationError
from ..models import Turn, to_utc
from .errors import from_response

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
"""Connect within 5 s; each read/write within 30 s."""
RETRY_STATUSES = frozenset({502, 503, 504})
RETRY_EXCEPTIONS = (httpx.TransportError,)
SAFE_BEFORE_SEND = (httpx.ConnectError, httpx.ConnectTimeout)
"""Failures that happen before the request reached the server: any call may be retried."""


@dataclass(frozen=True)
class Call:
    """One HTTP call; ``idempotent`` calls are retried after any transport failure.

    ``tenant_id``, when not ``None``, is sent as the ``?tenant_id=`` query parameter, so the
    whole call (body and path alike) acts in that tenant.
    """

    method: str
    path: str
    json: Any = None
    params: dict[str, Any] | None = None
    headers: dict[str, str] | None = None
    idempotent: bool = True
    missing_ok: bool = False
    tenant_id: str | None = None


def request_params(call: Call, default_tenant: str | None = None) -> dict[str, Any] | None:
    """The query parameters of ``call``: its own, plus ``tenant_id`` when a tenant is named.

    The call's tenant wins over ``default_tenant`` (the client's); neither named: the
    credential's tenant, as before (no ``tenant_id`` parameter).
    """
    tenant = call.tenant_id if call.tenant_id is not None else default_tenant
    if tenant is None:
        return call.params
    return {**(call.params or {}), "tenant_id": tenant}


def auth_headers(api_key: str | None, token: str | None) -> dict[str, str]:
    """The credential header of every request."""
    if api_key and token:
        raise ValueError("give api_key or token, not both")
    if token:
        return {"Authorization": f"Bearer {token}"}
    if api_key:
        return {"X-API-Key": api_key}
    return {}


def backoff(attempt: int, base: float) -> float:
    """Seconds before retry ``attempt`` (1-based): ``base * 2**(attempt-1)``, at most 5 s."""
    return float(min(5.0, base * 2 ** (attempt - 1)))


def should_retry(call: Call, exc: BaseException | None, status: int | None) -> bool:
    """Whether a failed attempt may be repeated without writing anything twice."""
    if exc is not None:
        return isinstance(exc, SAFE_BEFORE_SEND) or (call.idempotent and isinstance(exc, RETRY_EXCEPTIONS))
    return call.idempotent and status in RETRY_STATUSES


def decode(response: httpx.Response, call: Call) -> Any:
    """The JSON of a 2xx answer, else the typed error (a retried delete that finds nothing succeeded).

    Raises:
        MemAdaptersError: the typed error of the answer.
    """
    if response.status_code < 300:
        return response.json() if response.content else None
    if response.status_code == 404 and call.missing_ok:
        return None
    try:
        body = response.json()
    except ValueError:
        body = None
    raise from_response(response.status_code, body, response.text)


def fixed_turns(turns: Sequence[Turn | dict[str, Any]]) -> list[dict[str, Any]]:
    """Turns as JSON with a timestamp each, fixed once, so every retry sends the same turns."""
    now = datetime.now(timezone.utc)
    out = []
    for t in turns:
        data = t.model_dump(mode="json", exclude_none=True) if isinstance(t, Turn) else dict(t)
        if data.get("timestamp") is None:
            data["timestamp"] = now.isoformat()
        elif isinstance(data["timestamp"], datetime):
            data["timestamp"] = to_utc(data["timestamp"]).isoformat()
        out.append(data)
    return out


def new_memory_id() -> str:
    """A memory id fixed by the client before the first attempt."""
    return f"mem_{uuid.uuid4().hex}"


def new_idempotency_key() -> str:
    """An ``Idempotency-Key`` for a call that the server makes idempotent."""
    return uuid.uuid4().hex


def json_default(value: Any) -> Any:
    """JSON of datetimes (ISO-8601)."""
    if isinstance(value, datetime):
        return to_utc(value).isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def drop_none(d: dict[str, Any]) -> dict[str, Any]:
    """``d`` without ``None`` values."""
    return {k: v for k, v in d.items() if v is not None}


def quote_id(value: str) -> str:
    """An id as one URL path segment (a blank or non-string id is a ``ValidationError``)."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("id", "must be a non-empty string")
    return quote(value, safe="")
