"""FastAPI dependencies: the engine and the authenticated caller."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from .auth import Principal, principal
from .errors import ApiError


def engine(request: Request) -> Any:
    """The service's :class:`~mem_adapters.AsyncMemoryEngine`.

    Raises:
        ApiError: 503 while the engine is not open (starting or stopping).
    """
    eng = getattr(request.app.state, "engine", None)
    if eng is None:
        raise ApiError(503, "not_ready", "the memory engine is not open")
    return eng


Engine = Annotated[Any, Depends(engine)]
Caller = Annotated[Principal, Depends(principal)]


def page_numbers(page: int, page_size: int, count: int) -> tuple[int | None, int | None]:
    """``(next, previous)`` page numbers of a page."""
    return (page + 1 if page * page_size < count else None, page - 1 if page > 1 else None)
