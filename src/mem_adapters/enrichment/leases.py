"""Session leases: with several processes enriching one store, each turn is enriched once.

A worker holds a session's lease while it enriches that session's pending turns. The lease
is a row in the tenant's aux collection (``type: lease``: holder, expiry; no text). Chroma
has no compare-and-swap, so taking a lease is write-then-confirm: the taker writes itself as
holder, waits ``settle`` seconds, and reads the row back; only the holder it then finds
goes on (two takers racing both write, and both read the later write). The settle wait is
far longer than one read-decide-write, which is what makes the race window close in
practice. A holder renews its lease while it works; a dead holder's lease expires after
``ttl`` seconds and the next worker takes over (the turns it left are still ``pending``).
Leases are taken on Chroma servers only: an embedded store has one process by design.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING

from ..data import AUX_VECTOR

if TYPE_CHECKING:
    from ..data import DataLayer

logger = logging.getLogger(__name__)

DEFAULT_TTL_S = 30.0
DEFAULT_SETTLE_S = 0.25


def lease_id(session_id: str) -> str:
    """Aux row id of a session's lease."""
    return "lease:" + hashlib.sha256(session_id.encode("utf-8")).hexdigest()[:32]


class SessionLeases:
    """Takes, renews and releases session leases for one worker.

    Args:
        data: Coroutine function returning the data layer.
        ttl: Seconds a lease lives without renewal (a dead holder's work waits this long).
        settle: Seconds between writing a claim and confirming it.
    """

    def __init__(
        self,
        data: Callable[[], Awaitable[DataLayer]],
        *,
        ttl: float = DEFAULT_TTL_S,
        settle: float = DEFAULT_SETTLE_S,
    ) -> None:
        self._data = data
        self.ttl = ttl
        self.settle = settle
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"

    async def _row(self, tenant_id: str, session_id: str) -> dict | None:
        _, aux = await (await self._data()).collections(tenant_id)  # type: ignore[misc]
        got = await aux.get(ids=[lease_id(session_id)], include=["metadatas"])
        return got["metadatas"][0] if got["ids"] else None

    async def _write(self, tenant_id: str, session_id: str, until: float) -> None:
        _, aux = await (await self._data()).collections(tenant_id)  # type: ignore[misc]
        meta = {"type": "lease", "holder": self.holder, "until": until, "session_id": session_id}
        await aux.upsert([lease_id(session_id)], [AUX_VECTOR], [""], [meta])

    async def try_take(self, tenant_id: str, session_id: str) -> float:
        """Take the lease if it is free; returns 0 when taken, else seconds until it expires."""
        row = await self._row(tenant_id, session_id)
        now = time.time()
        if row is not None and row.get("holder") != self.holder and float(row.get("until", 0)) > now:
            return float(row["until"]) - now
        await self._write(tenant_id, session_id, now + self.ttl)
        await asyncio.sleep(self.settle)
        row = await self._row(tenant_id, session_id)
        if row is not None and row.get("holder") == self.holder:
            return 0.0
        return max(self.settle, float((row or {}).get("until", now)) - time.time())

    async def release(self, tenant_id: str, session_id: str) -> None:
        """Give the lease up (only if still held by this worker)."""
        row = await self._row(tenant_id, session_id)
        if row is not None and row.get("holder") == self.holder:
            _, aux = await (await self._data()).collections(tenant_id)  # type: ignore[misc]
            await aux.delete([lease_id(session_id)])

    @asynccontextmanager
    async def hold(
        self, tenant_id: str, session_id: str, stopping: Callable[[], bool]
    ) -> AsyncIterator[None]:
        """Wait for the session's lease, hold it (renewed) for the block, then release it.

        A store Chroma runs inside this process (embedded) has one process by design (use a
        Chroma server for several), so no lease is taken there.
        """
        if (await self._data()).store.local:
            yield
            return
        while True:
            wait = await self.try_take(tenant_id, session_id)
            if not wait:
                break
            if stopping():
                raise asyncio.CancelledError
            logger.debug("session %r of %r is leased by another worker; waiting %.1f s", session_id,
                         tenant_id, wait)  # fmt: skip
            await asyncio.sleep(min(wait, self.ttl / 3) + 0.05)

        async def renew() -> None:
            while True:
                await asyncio.sleep(self.ttl / 3)
                await self._write(tenant_id, session_id, time.time() + self.ttl)

        renewer = asyncio.create_task(renew())
        try:
            yield
        finally:
            renewer.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await renewer
            try:
                await self.release(tenant_id, session_id)
            except Exception:  # the lease expires on its own
                logger.debug("could not release the lease of %r", session_id, exc_info=True)
