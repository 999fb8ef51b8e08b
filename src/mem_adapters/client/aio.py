"""The asyncio client, :class:`AsyncMemoryClient`."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import httpx

from ..errors import ClosedError, ValidationError
from ..models import JobStatus
from ._core import (
    DEFAULT_TIMEOUT,
    Call,
    auth_headers,
    backoff,
    decode,
    json_default,
    request_params,
    should_retry,
)
from ._methods import ClientMethods, Parse
from .errors import NetworkError

logger = logging.getLogger(__name__)


class AsyncMemoryClient(ClientMethods):
    """The memory service with :class:`~mem_adapters.AsyncMemoryEngine`'s method names and models.

    Every method of :class:`~mem_adapters.client.MemoryClient`, awaited; same arguments
    (``tenant_id=`` too), timeouts, retries and errors.

    Example:
        >>> async with AsyncMemoryClient("http://127.0.0.1:8080", token=jwt) as mc:  # doctest: +SKIP
        ...     await mc.remember([{"role": "user", "text": "I love hiking"}], session_id="s1")
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        token: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = 3,
        backoff: float = 0.2,
        transport: httpx.AsyncBaseTransport | None = None,
        tenant_id: str | None = None,
    ) -> None:
        if tenant_id is not None and (not isinstance(tenant_id, str) or not tenant_id.strip()):
            raise ValidationError("tenant_id", "must be a non-empty string")
        self.base_url = base_url.rstrip("/")
        self.tenant_id = tenant_id
        self.max_retries = max(0, max_retries)
        self.backoff = backoff
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=auth_headers(api_key, token), timeout=timeout, transport=transport
        )

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called (later calls raise :class:`~mem_adapters.ClosedError`)."""
        return self._http.is_closed

    async def _value(self, value: Any) -> Any:  # type: ignore[override]
        return value

    async def _do(self, call: Call, parse: Parse) -> Any:  # type: ignore[override]
        if self._http.is_closed:
            raise ClosedError(f"AsyncMemoryClient of {self.base_url} is closed")
        content = json.dumps(call.json, default=json_default).encode() if call.json is not None else None
        headers = {**(call.headers or {}), **({"Content-Type": "application/json"} if content else {})}
        params = request_params(call, self.tenant_id)
        attempt = 0
        while True:
            attempt += 1
            try:
                r = await self._http.request(
                    call.method, call.path, content=content, params=params, headers=headers
                )
            except httpx.TransportError as e:
                if attempt <= self.max_retries and should_retry(call, e, None):
                    logger.info("retrying %s %s after %s", call.method, call.path, type(e).__name__)
                    await asyncio.sleep(backoff(attempt, self.backoff))
                    continue
                raise NetworkError(
                    f"{call.method} {self.base_url}{call.path}: {type(e).__name__}: {e}"
                ) from e
            if attempt <= self.max_retries and should_retry(call, None, r.status_code):
                await asyncio.sleep(backoff(attempt, self.backoff))
                continue
            retried = Call(**{**call.__dict__, "missing_ok": call.missing_ok and attempt > 1})
            return parse(decode(r, retried))

    async def initialize(self) -> None:
        """Check that the service is ready and accepts the credential.

        Raises:
            NetworkError: not reachable or not ready. AuthenticationError: bad credential.
        """
        ready = await self._do(Call("GET", "/readyz"), lambda data: data)
        if not ready or ready.get("status") != "ready":
            raise NetworkError(f"{self.base_url} is not ready: {ready}")
        await self._do(
            Call("GET", "/v1/engine/sessions", params={"user_id": "__initialize__"}), lambda data: data
        )

    async def wait(
        self,
        job_id: str,
        timeout: float | None = None,
        *,
        poll: float = 0.2,
        tenant_id: str | None = None,
        **_: Any,
    ) -> JobStatus:
        """Poll a job until it is done or failed (``timeout`` seconds at most)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = await self.job_status(job_id, tenant_id=tenant_id)
            if status.status in ("done", "failed") or (deadline is not None and time.monotonic() >= deadline):
                return status
            await asyncio.sleep(poll)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncMemoryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
