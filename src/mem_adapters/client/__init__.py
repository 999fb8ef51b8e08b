"""A Python client of the memory service (``mem-adapters serve``), with the engine's names and models.

:class:`MemoryClient` (blocking) and :class:`AsyncMemoryClient` (asyncio) take ``api_key=`` or
``token=``, have default timeouts (5 s connect, 30 s read), retry idempotent calls with
backoff, and raise typed errors: :class:`AuthenticationError`, :class:`NetworkError` (a
:class:`~mem_adapters.errors.TransportError`), :class:`InvalidInputError` (a
:class:`~mem_adapters.errors.ValidationError`), :class:`NotFoundError` (the engine's). Writes
are made safe to retry before the first attempt: turns get their timestamps, memories their
ids and messages an ``Idempotency-Key``, so a retry after a lost answer writes nothing twice.
Needs ``httpx`` (the ``[server]`` extra).
"""

from __future__ import annotations

from .aio import AsyncMemoryClient
from .errors import (
    AuthenticationError,
    InvalidInputError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    ServerError,
    ServiceError,
)
from .sync import MemoryClient

__all__ = [
    "AsyncMemoryClient",
    "AuthenticationError",
    "InvalidInputError",
    "MemoryClient",
    "NetworkError",
    "NotFoundError",
    "PermissionDeniedError",
    "ServerError",
    "ServiceError",
]
