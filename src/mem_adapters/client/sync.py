"""The blocking client, :class:`MemoryClient`."""

from __future__ import annotations

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


class MemoryClient(ClientMethods):
    """The memory service with :class:`~mem_adapters.MemoryEngine`'s method names and models.

    Args:
        base_url: The service, e.g. ``"http://127.0.0.1:8080"``.
        api_key: An API key (``mak_...``), sent as ``X-API-Key``.
        token: A JWT, sent as ``Authorization: Bearer``.
        timeout: Seconds (or an :class:`httpx.Timeout`); default 5 s to connect, 30 s per read.
        max_retries: Retries of a failed attempt (idempotent calls after any transport failure
            or 502/503/504; every call when the connection was never made).
        backoff: Seconds before the first retry, doubled for each further one.
        transport: An httpx transport (e.g. ``httpx.HTTPTransport(uds=...)``).
        tenant_id: The tenant of every call that names none (sent as ``?tenant_id=``; honoured
            for an admin credential or ``--insecure-no-auth``, else it must be the
            credential's own). Default: the credential's tenant.

    Raises:
        AuthenticationError: 401/403. NotFoundError: 404. InvalidInputError: 422.
        NetworkError: unreachable or timed out after every retry.

    Example:
        >>> with MemoryClient("http://127.0.0.1:8080", api_key="mak_...") as mc:  # doctest: +SKIP
        ...     mc.remember([{"role": "user", "text": "I love hiking"}], session_id="s1")
        ...     mc.search("hobbies", session_id="s1").results[0].text
        'I love hiking'
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
        transport: httpx.BaseTransport | None = None,
        tenant_id: str | None = None,
    ) -> None:
        if tenant_id is not None and (not isinstance(tenant_id, str) or not tenant_id.strip()):
            raise ValidationError("tenant_id", "must be a non-empty string")
        self.base_url = base_url.rstrip("/")
        self.tenant_id = tenant_id
        self.max_retries = max(0, max_retries)
        self.backoff = backoff
        self._http = httpx.Client(
            base_url=self.base_url, headers=auth_headers(api_key, token), timeout=timeout, transport=transport
        )

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (later calls raise :class:`~mem_adapters.ClosedError`)."""
        return self._http.is_closed

    def _do(self, call: Call, parse: Parse) -> Any:
        if self._http.is_closed:
            raise ClosedError(f"MemoryClient of {self.base_url} is closed")
        content = json.dumps(call.json, default=json_default).encode() if call.json is not None else None
        headers = {**(call.headers or {}), **({"Content-Type": "application/json"} if content else {})}
        params = request_params(call, self.tenant_id)
        attempt = 0
        while True:
            attempt += 1
            try:
                r = self._http.request(
                    call.method, call.path, content=content, params=params, headers=headers
                )
            except httpx.TransportError as e:
                if attempt <= self.max_retries and should_retry(call, e, None):
                    logger.info("retrying %s %s after %s", call.method, call.path, type(e).__name__)
                    time.sleep(backoff(attempt, self.backoff))
                    continue
                raise NetworkError(
                    f"{call.method} {self.base_url}{call.path}: {type(e).__name__}: {e}"
                ) from e
            if attempt <= self.max_retries and should_retry(call, None, r.status_code):
                time.sleep(backoff(attempt, self.backoff))
                continue
            retried = Call(**{**call.__dict__, "missing_ok": call.missing_ok and attempt > 1})
            return parse(decode(r, retried))

    def initialize(self) -> None:
        """Check that the service is ready and accepts the credential.

        Raises:
            NetworkError: not reachable or not ready. AuthenticationError: bad credential.
        """
        ready = self._do(Call("GET", "/readyz"), lambda data: data)
        if not ready or ready.get("status") != "ready":
            raise NetworkError(f"{self.base_url} is not ready: {ready}")
        self._do(Call("GET", "/v1/engine/sessions", params={"user_id": "__initialize__"}), lambda data: data)

    def wait(
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
            status = self.job_status(job_id, tenant_id=tenant_id)
            if status.status in ("done", "failed") or (deadline is not None and time.monotonic() >= deadline):
                return status
            time.sleep(poll)

    def close(self) -> None:
        """Close the connection pool (and the event loop adapters over this client ran on)."""
        self._http.close()
        view = self.__dict__.pop("_adapter_view", None)
        if view is not None:
            view.close()

    def __enter__(self) -> MemoryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
