"""API keys: random secrets handed out once, kept only as SHA-256 hashes in a key file.

The key file is JSON: ``{"keys": [{"id", "sha256", "tenant_id", "user_id"?, "role"?}]}``.
A key is ``mak_<id>_<secret>`` with a 256-bit secret, so an unsalted SHA-256 is a safe
verifier (nothing to brute-force) and the file never holds a usable key.

Example:
    >>> path = Path(tempfile.mkdtemp()) / "keys.json"  # doctest: +SKIP
    >>> key = create_key(path, tenant_id="acme")  # doctest: +SKIP
    >>> load_keys(path).verify(key).tenant_id  # doctest: +SKIP
    'acme'
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from ..errors import ValidationError

logger = logging.getLogger(__name__)

KEY_PREFIX = "mak_"


@dataclass(frozen=True)
class KeyEntry:
    """One API key as the key file stores it (no secret)."""

    id: str
    sha256: str
    tenant_id: str
    user_id: str | None = None
    role: str | None = None


def hash_key(key: str) -> str:
    """The hex SHA-256 of a key, as stored."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeyFile:
    """The API keys of a key file, checked in constant time."""

    def __init__(self, entries: list[KeyEntry]) -> None:
        self.entries = entries

    def verify(self, key: str) -> KeyEntry | None:
        """The entry of ``key``, or ``None`` when it is not a key of this file."""
        if not key.startswith(KEY_PREFIX):
            return None
        digest = hash_key(key)
        found = None
        for entry in self.entries:  # compare against every entry: no early exit on a match
            if hmac.compare_digest(entry.sha256, digest):
                found = entry
        return found


def load_keys(path: Path) -> KeyFile:
    """Read a key file.

    Raises:
        ValidationError: unreadable file, bad JSON, or an entry without ``sha256``/``tenant_id``.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValidationError("--api-keys", f"cannot read key file {path}: {e}") from e
    entries = []
    for i, raw in enumerate(data.get("keys", []) if isinstance(data, dict) else []):
        if not isinstance(raw, dict) or not raw.get("sha256") or not raw.get("tenant_id"):
            raise ValidationError(f"keys[{i}]", "needs 'sha256' and 'tenant_id'")
        if "key" in raw or "secret" in raw:
            raise ValidationError(f"keys[{i}]", "a key file must not hold plaintext keys")
        entries.append(
            KeyEntry(
                id=str(raw.get("id", i)),
                sha256=str(raw["sha256"]).lower(),
                tenant_id=str(raw["tenant_id"]),
                user_id=raw.get("user_id"),
                role=raw.get("role"),
            )
        )
    return KeyFile(entries)


def create_key(path: Path, *, tenant_id: str, user_id: str | None = None, role: str | None = None) -> str:
    """Add a new key to the key file (created if absent) and return the key, shown only now.

    Raises:
        ValidationError: empty tenant, or an unreadable existing file.
    """
    if not tenant_id.strip():
        raise ValidationError("tenant_id", "must be a non-empty string")
    path = Path(path)
    data: dict = {"keys": []}
    if path.exists():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as e:
            raise ValidationError("--file", f"{path} is not JSON: {e}") from e
    key_id = secrets.token_hex(4)
    key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    entry = {"id": key_id, "sha256": hash_key(key), "tenant_id": tenant_id}
    if user_id:
        entry["user_id"] = user_id
    if role:
        entry["role"] = role
    data.setdefault("keys", []).append(entry)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return key
