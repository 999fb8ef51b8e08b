"""Engine-named client methods the framework adapters need beyond the basics.

``get_many``, ``delete_many``, ``touch``, ``set_status``, ``clear_session``, ``count_turns``,
``embed`` and ``embed_query``, each over a ``/v1/engine/...`` route
(:mod:`mem_adapters.server.routers.native_ops`), with the engine's arguments and results.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from ..errors import ValidationError
from ..models import MemoryItem
from ._core import Call, drop_none, quote_id

MAX_IDS = 1000
"""Ids per request (the route's limit); longer lists are sent in several requests."""


def _ids(ids: Sequence[str]) -> list[str]:
    if isinstance(ids, str | bytes) or not isinstance(ids, Sequence):
        raise ValidationError("ids", "must be a list of ids, not one string")
    return list(ids)


_q = quote_id


class AdapterMethods:
    """Engine-named methods over the service used by the LangChain and LlamaIndex adapters."""

    def _do(self, call: Call, parse: Any) -> Any:  # pragma: no cover - provided by the clients
        raise NotImplementedError

    def _value(self, value: Any) -> Any:
        """``value`` as a method's result without a request (the async client wraps it in a coroutine)."""
        return value

    def get_many(self, ids: Sequence[str], *, tenant_id: str | None = None) -> list[MemoryItem]:
        """Memories by id, in the given order; unknown ids are skipped (at most 1000 ids)."""
        ids = _ids(ids)
        if not ids:
            return self._value([])  # the engine answers [] too; the route needs at least one id
        body = drop_none({"ids": ids, "tenant_id": tenant_id})
        return self._do(
            Call("POST", "/v1/engine/memories/get-many", json=body, tenant_id=tenant_id),
            lambda data: [MemoryItem.model_validate(m) for m in data],
        )

    def delete_many(self, ids: Sequence[str], *, tenant_id: str | None = None) -> list[str]:
        """Delete memories and what was derived from them; unknown ids are skipped (safe to retry)."""
        ids = _ids(ids)
        if not ids:
            return self._value([])
        body = drop_none({"ids": ids, "tenant_id": tenant_id})
        return self._do(Call("POST", "/v1/engine/memories/delete-many", json=body, tenant_id=tenant_id), list)

    def touch(self, ids: Sequence[str], expiry_seconds: float, *, tenant_id: str | None = None) -> list[str]:
        """Move the expiry of live memories to ``expiry_seconds`` from now (a sliding TTL)."""
        ids = _ids(ids)
        if not ids:
            return self._value([])
        body = drop_none({"ids": ids, "expiry_seconds": expiry_seconds, "tenant_id": tenant_id})
        return self._do(Call("POST", "/v1/engine/memories/touch", json=body, tenant_id=tenant_id), list)

    def set_status(
        self, ids: Sequence[str], status: Literal["active", "archived"], *, tenant_id: str | None = None
    ) -> list[str]:
        """Set the status of turns; returns the ids changed."""
        ids = _ids(ids)
        if not ids:
            return self._value([])
        body = drop_none({"ids": ids, "status": status, "tenant_id": tenant_id})
        return self._do(Call("POST", "/v1/engine/memories/status", json=body, tenant_id=tenant_id), list)

    def clear_session(
        self, session_id: str, *, tenant_id: str | None = None, user_id: str | None = None
    ) -> int:
        """Delete a session's turns (only ``user_id``'s when given); returns how many went."""
        params = drop_none({"user_id": user_id})
        return self._do(
            Call("DELETE", f"/v1/engine/sessions/{_q(session_id)}", params=params, tenant_id=tenant_id),
            lambda data: int(data["deleted"]),
        )

    def count_turns(self, session_id: str, *, tenant_id: str | None = None, status: str | None = None) -> int:
        """Number of turns in a session (optionally of one status)."""
        params = drop_none({"status": status})
        call = Call("GET", f"/v1/engine/sessions/{_q(session_id)}/count", params=params, tenant_id=tenant_id)
        return self._do(call, int)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Document vectors from the service's embedder."""
        texts = list(texts)
        if not texts:
            return self._value([])
        return self._do(Call("POST", "/v1/engine/embed", json={"texts": texts}), lambda data: list(data))

    def embed_query(self, text: str) -> list[float]:
        """A query vector from the service's embedder."""
        return self._do(Call("POST", "/v1/engine/embed-query", json={"text": text}), lambda data: list(data))
