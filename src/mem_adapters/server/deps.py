"""FastAPI dependencies: the engine, the authenticated caller and the tenant it acts on."""

from __future__ import annotations

import dataclasses
import logging
from typing import Annotated, Any

from fastapi import Depends, Query, Request

from .auth import Principal, principal
from .errors import ApiError

logger = logging.getLogger(__name__)

TENANT_QUERY_DOC = (
    "Tenant to act on. Honoured for a `role: admin` credential only (the admin then reads and "
    "changes that tenant as if it were its own); any other caller may name only its own tenant, "
    "else 403 `tenant_mismatch`. Left out: the credential's tenant."
)


def engine(request: Request) -> Any:
    """The service's :class:`~mem_adapters.AsyncMemoryEngine`.

    Raises:
        ApiError: 503 while the engine is not open (starting or stopping).
    """
    eng = getattr(request.app.state, "engine", None)
    if eng is None:
        raise ApiError(503, "not_ready", "the memory engine is not open")
    return eng


def caller(
    who: Annotated[Principal, Depends(principal)],
    tenant_id: Annotated[
        str | None, Query(min_length=1, max_length=512, description=TENANT_QUERY_DOC)
    ] = None,
) -> Principal:
    """The authenticated caller, re-scoped to ``?tenant_id=`` when an admin names one.

    Raises:
        ApiError: 403 ``tenant_mismatch`` when a non-admin names another tenant.
    """
    if tenant_id is None:
        return who
    if who.admin:
        return dataclasses.replace(who, tenant_id=tenant_id)
    who.tenant(tenant_id, "tenant_id")  # its own tenant is fine; another one is 403
    return who


Engine = Annotated[Any, Depends(engine)]
Caller = Annotated[Principal, Depends(caller)]


def page_numbers(page: int, page_size: int, count: int) -> tuple[int | None, int | None]:
    """``(next, previous)`` page numbers of a page."""
    return (page + 1 if page * page_size < count else None, page - 1 if page > 1 else None)
