"""How a memory service is configured: store, auth, enrichment."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from ..errors import ValidationError

JWT_SECRET_ENV = "MEM_ADAPTERS_JWT_SECRET"
DEFAULT_SESSION = "default-session"
"""The session a write lands in when neither the body nor the token names one."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServerSettings:
    """Everything :func:`mem_adapters.server.create_app` needs.

    Attributes:
        path: Folder of the embedded store (ignored with ``chroma_host``).
        chroma_host: Chroma server host (shared store; needed for several workers).
        chroma_port: Chroma server port.
        model_dir: Folder of the all-MiniLM-L6-v2 ONNX files.
        jwt_secret: HS256 secret for Bearer tokens.
        jwt_public_key: PEM file of an RS256/ES256 public key.
        jwks_file: JSON Web Key Set file (keys chosen by the token's ``kid``).
        jwt_audience: Required ``aud`` claim, if set.
        jwt_issuer: Required ``iss`` claim, if set.
        api_keys: Key file of hashed API keys (see :mod:`mem_adapters.server.keys`).
        insecure_no_auth: Serve without any credential (loopback only).
        enrich: Run background enrichment (facts, supersession, episodes).
    """

    path: Path | None = None
    chroma_host: str | None = None
    chroma_port: int = 8000
    model_dir: Path | None = None
    jwt_secret: str | None = None
    jwt_public_key: Path | None = None
    jwks_file: Path | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    api_keys: Path | None = None
    insecure_no_auth: bool = False
    enrich: bool = True

    @property
    def has_credentials(self) -> bool:
        """Whether any way of authenticating is configured."""
        return bool(self.jwt_secret or self.jwt_public_key or self.jwks_file or self.api_keys)

    def check(self, host: str, workers: int = 1) -> None:
        """Refuse unsafe or impossible combinations before anything starts.

        Raises:
            ValidationError: no credential and no ``insecure_no_auth``; ``insecure_no_auth``
                on a non-loopback host; several workers on an embedded store.
        """
        if self.insecure_no_auth:
            if not is_loopback(host):
                raise ValidationError(
                    "--insecure-no-auth", f"serves without auth only on loopback, not on {host!r}"
                )
        elif not self.has_credentials:
            raise ValidationError(
                "--jwt-secret",
                "give --jwt-secret, --jwt-public-key, --jwks or --api-keys "
                "(or --insecure-no-auth on loopback)",
            )
        if workers < 1:
            raise ValidationError("--workers", "must be >= 1")
        if workers > 1 and not self.chroma_host:
            raise ValidationError(
                "--workers", "more than one worker needs --chroma-host (an embedded store has one writer)"
            )
