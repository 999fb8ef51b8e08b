"""Who is calling: Bearer JWTs (HS256 secret, RS256/ES256 key or JWKS) and API keys.

The credential names the tenant: a JWT's ``org_id`` claim (its user: ``user_id``, else
``sub``; its session: ``session_id``), or the tenant an API key is bound to. A token with
``role: admin`` may list tenants. Without auth (``--insecure-no-auth``, loopback only) the
caller acts as an admin of whatever tenant a body names, else the default tenant.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from fastapi import Request

from ..errors import ValidationError
from ..models import DEFAULT_TENANT
from .errors import ApiError
from .keys import KEY_PREFIX, KeyFile, load_keys
from .settings import ServerSettings

logger = logging.getLogger(__name__)

_ASYMMETRIC = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"]
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True)
class Principal:
    """The caller, as its credential says.

    Attributes:
        tenant_id: The only tenant the caller may read or change (``None``: no auth, any).
        user_id: Default user of writes and reads.
        session_id: Default session of writes.
        admin: May list tenants.
    """

    tenant_id: str | None
    user_id: str | None = None
    session_id: str | None = None
    admin: bool = False

    def tenant(self, claimed: str | None = None, field: str = "tenant_id") -> str:
        """The tenant to act on; a body's tenant field must equal the credential's.

        Raises:
            ApiError: 403 ``tenant_mismatch`` when ``claimed`` names another tenant.
        """
        if self.tenant_id is None:
            return claimed or DEFAULT_TENANT
        if claimed is not None and claimed != self.tenant_id:
            raise ApiError(
                403, "tenant_mismatch", f"{field} does not match the credential's tenant", field=field
            )
        return self.tenant_id

    def require_admin(self) -> None:
        """Check that the caller may act on every tenant.

        Raises:
            ApiError: 403 ``forbidden`` unless the caller is an admin.
        """
        if not self.admin:
            raise ApiError(403, "forbidden", "needs a token with role 'admin'")


class Authenticator:
    """Verifies the credentials configured in :class:`ServerSettings`.

    Raises:
        ValidationError: a key or key file cannot be read.
    """

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.insecure = settings.insecure_no_auth
        self._secret = settings.jwt_secret
        self._public_key: Any = None
        self._jwks: jwt.PyJWKSet | None = None
        self._keys: KeyFile | None = None
        if settings.jwt_public_key is not None:
            try:
                pem = Path(settings.jwt_public_key).read_bytes()
                self._public_key = (
                    jwt.PyJWK.from_dict(_pem_to_jwk(pem)).key
                    if pem.lstrip().startswith(b"{")
                    else _load_pem(pem)
                )
            except (OSError, ValueError) as e:
                raise ValidationError(
                    "--jwt-public-key", f"cannot read {settings.jwt_public_key}: {e}"
                ) from e
        if settings.jwks_file is not None:
            try:
                self._jwks = jwt.PyJWKSet.from_json(Path(settings.jwks_file).read_text(encoding="utf-8"))
            except (OSError, ValueError, jwt.PyJWKSetError) as e:
                raise ValidationError("--jwks", f"cannot read {settings.jwks_file}: {e}") from e
        if settings.api_keys is not None:
            self._keys = load_keys(settings.api_keys)

    def _jwt_key(self, token: str) -> tuple[Any, list[str]]:
        header = jwt.get_unverified_header(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg.lower() == "none":
            raise jwt.InvalidTokenError("unsigned tokens are not accepted")
        if alg == "HS256":
            if not self._secret:
                raise jwt.InvalidTokenError("HS256 tokens are not accepted by this server")
            return self._secret, ["HS256"]
        if alg not in _ASYMMETRIC:
            raise jwt.InvalidTokenError(f"algorithm {alg} is not accepted")
        if self._jwks is not None:
            kid = header.get("kid")
            keys = self._jwks.keys
            match = [k for k in keys if k.key_id == kid] if kid else (keys if len(keys) == 1 else [])
            if match:
                return match[0].key, [alg]
            if self._public_key is None:
                raise jwt.InvalidTokenError(f"no key with kid {kid!r} in the JWKS")
        if self._public_key is None:
            raise jwt.InvalidTokenError(f"{alg} tokens are not accepted by this server")
        return self._public_key, [alg]

    def verify_jwt(self, token: str) -> Principal:
        """The principal of a signed token.

        Raises:
            ApiError: 401 ``invalid_token`` for a bad signature, algorithm, ``exp``/``nbf``,
                ``aud``/``iss`` or a token without ``org_id``.
        """
        try:
            key, algorithms = self._jwt_key(token)
            options: dict[str, Any] = {"require": []}
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                options=options,
                leeway=0,
            )
        except (jwt.PyJWTError, TypeError, ValueError) as e:  # a key of the wrong family is a TypeError
            raise ApiError(401, "invalid_token", f"invalid token: {e}", headers=_CHALLENGE) from e
        org = claims.get("org_id")
        if not isinstance(org, str) or not org.strip():
            raise ApiError(401, "invalid_token", "the token has no org_id claim", headers=_CHALLENGE)
        user = claims.get("user_id") or claims.get("sub")
        session = claims.get("session_id")
        return Principal(
            tenant_id=org,
            user_id=user if isinstance(user, str) and user else None,
            session_id=session if isinstance(session, str) and session else None,
            admin=claims.get("role") == "admin",
        )

    def authenticate(self, request: Request) -> Principal:
        """The caller of ``request``.

        Raises:
            ApiError: 401 when the credential is missing or invalid.
        """
        header = request.headers.get("authorization")
        api_key = request.headers.get("x-api-key")
        token = None
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise ApiError(
                    401, "unauthorized", "Authorization must be 'Bearer <token>'", headers=_CHALLENGE
                )
            token = value.strip()
            if token.startswith(KEY_PREFIX):
                api_key, token = token, None
        if api_key is not None:
            entry = self._keys.verify(api_key) if self._keys is not None else None
            if entry is None:
                raise ApiError(401, "invalid_token", "unknown API key", headers=_CHALLENGE)
            return Principal(tenant_id=entry.tenant_id, user_id=entry.user_id, admin=entry.role == "admin")
        if token is not None:
            if not (self._secret or self._public_key is not None or self._jwks is not None):
                raise ApiError(401, "invalid_token", "this server does not accept JWTs", headers=_CHALLENGE)
            return self.verify_jwt(token)
        if self.insecure:
            return Principal(tenant_id=None, admin=True)
        raise ApiError(
            401,
            "unauthorized",
            "missing credential: send 'Authorization: Bearer <token>'",
            headers=_CHALLENGE,
        )


def _load_pem(pem: bytes) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    return load_pem_public_key(pem)


def _pem_to_jwk(raw: bytes) -> dict[str, Any]:
    """A single JWK given as the public key file."""
    return json.loads(raw)


async def principal(request: Request) -> Principal:
    """FastAPI dependency: the authenticated caller."""
    auth: Authenticator = request.app.state.auth
    return auth.authenticate(request)
