"""Who an MCP tool call acts for: the configuration (stdio, loopback HTTP) or the caller's token."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ValidationError
from ..models import DEFAULT_TENANT

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class McpConfig:
    """How ``mem-adapters mcp`` is configured.

    Attributes:
        path: Folder of the embedded store.
        chroma_host: Chroma server host (instead of an embedded store).
        chroma_port: Chroma server port.
        model_dir: Folder of the all-MiniLM-L6-v2 ONNX files.
        tenant: Tenant of every call (ignored when a token names one).
        user: User of every call; when set, tools may not name another user.
        session: Default session of writes and searches.
        agent: Agent id stamped on writes.
        service_url: Use the REST service at this URL instead of a local store.
        token: JWT sent to the service (``service_url`` only).
        api_key: API key sent to the service (``service_url`` only).
        auth: Server settings verifying HTTP callers' tokens (local store over HTTP).
        enrich: Run background enrichment on the local store.
    """

    path: Path | None = None
    chroma_host: str | None = None
    chroma_port: int = 8000
    model_dir: Path | None = None
    tenant: str | None = None
    user: str | None = None
    session: str | None = None
    agent: str | None = None
    service_url: str | None = None
    token: str | None = None
    api_key: str | None = None
    auth: Any = None
    enrich: bool = True


@dataclass(frozen=True)
class Scope:
    """The tenant, user and session one tool call acts on.

    Attributes:
        tenant_id: Tenant (``None``: the service takes it from the credential).
        user_id: Default user.
        session_id: Default session.
        agent_id: Agent stamped on writes.
        user_fixed: The user was fixed by configuration: no tool may name another.
        credential: ``("token"|"api_key", value)`` to forward to the service, if any.
    """

    tenant_id: str | None
    user_id: str | None = None
    session_id: str | None = None
    agent_id: str | None = None
    user_fixed: bool = False
    credential: tuple[str, str] | None = field(default=None, repr=False)

    def user(self, asked: str | None) -> str | None:
        """The user a call acts on.

        Raises:
            ValidationError: ``asked`` names another user than the configured one.
        """
        if asked is not None and not asked.strip():
            raise ValidationError("user_id", "must be a non-empty string")
        if self.user_fixed and asked is not None and asked != self.user_id:
            raise ValidationError("user_id", f"this MCP server is scoped to user {self.user_id!r}")
        return asked or self.user_id


class _Headers:
    """The bit of a request :meth:`mem_adapters.server.Authenticator.authenticate` reads."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self.headers = {k.lower(): v for k, v in headers.items()}


def resolve(config: McpConfig, headers: Mapping[str, str] | None, authenticator: Any = None) -> Scope:
    """The scope of a call from the configuration and, over HTTP, the request's credential.

    * Service backend: the request's ``Authorization`` / ``X-API-Key`` is forwarded when
      present, else the configured token or key; the service decides the tenant.
    * Local store with ``authenticator``: the token's tenant and default user.
    * Otherwise (stdio, unauthenticated loopback HTTP): the configured tenant and user.

    Raises:
        MemAdaptersError: the request's credential is missing or invalid (local store with auth).
    """
    fixed = config.user is not None
    if config.service_url:
        cred: tuple[str, str] | None = None
        lower = {k.lower(): v for k, v in (headers or {}).items()}
        auth = lower.get("authorization", "")
        if auth.lower().startswith("bearer ") and auth[7:].strip():
            cred = ("token", auth[7:].strip())
        elif lower.get("x-api-key"):
            cred = ("api_key", lower["x-api-key"])
        elif config.token:
            cred = ("token", config.token)
        elif config.api_key:
            cred = ("api_key", config.api_key)
        return Scope(None, config.user, config.session, config.agent, fixed, cred)
    if authenticator is not None and headers is not None:
        from ..server.errors import ApiError

        try:
            p = authenticator.authenticate(_Headers(headers))
        except ApiError as e:
            from ..client.errors import AuthenticationError

            raise AuthenticationError(e.message) from e
        user = config.user or p.user_id
        return Scope(
            p.tenant_id or config.tenant or DEFAULT_TENANT,
            user,
            config.session or p.session_id,
            config.agent,
            fixed,
        )
    return Scope(config.tenant or DEFAULT_TENANT, config.user, config.session, config.agent, fixed)
