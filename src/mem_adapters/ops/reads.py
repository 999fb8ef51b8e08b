"""Reads: memories by id, pages in write order, transcripts, sessions and tenants."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

from .. import records as rec
from ..errors import NotFoundError, ValidationError
from ..filters import all_of, translate
from ..models import (
    DEFAULT_TENANT,
    MemoryItem,
    Page,
)
from . import checks
from .base import (
    EngineBase,
    _require_str,
    _scope_where,
)
from .writes import PASSIVE_STATUS

logger = logging.getLogger(__name__)


def _names_status(where: Any) -> bool:
    """Whether a translated ``where`` clause constrains the ``status`` field anywhere."""
    if isinstance(where, dict):
        return any(k == "status" or _names_status(v) for k, v in where.items())
    if isinstance(where, list):
        return any(_names_status(w) for w in where)
    return False


def _not_passive(rows: Sequence[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """Rows without the turns stored with ``write_active=False`` (status ``"passive"``)."""
    return [r for r in rows if r[1].get("status") != PASSIVE_STATUS]


def _in_scope(md: dict[str, Any], scope: dict[str, str | None]) -> bool:
    """Whether a stored record matches every given (not ``None``) scope level."""
    return all(md.get(k, "") == v for k, v in scope.items() if v is not None)


class ReadsMixin(EngineBase):
    """Read paths of the engine."""

    async def get(
        self,
        memory_id: str,
        *,
        tenant_id: str = DEFAULT_TENANT,
        user_id: str | None = None,
        sub_tenant_id: str | None = None,
        session_id: str | None = None,
    ) -> MemoryItem:
        """One memory by id, looked up inside ``tenant_id`` only.

        ``memory_id`` is a stored id (:attr:`MemoryItem.id`) or a caller id (a turn's
        ``Turn.id``, a raw memory's ``memory_id``; see :meth:`_resolve_id`). The optional
        scope narrows the lookup: with ``user_id`` a memory of another user is not found.

        A turn stored with ``remember(write_active=False)`` (status ``"passive"``) is found
        by its id, like any record (its facts cite it as their source), although
        :meth:`list`, :meth:`get_messages` and search never return it.

        Raises:
            NotFoundError: unknown (or expired) id in this tenant (or scope).
            ValidationError: a caller id used in several scopes and no scope to choose one.
        """
        checks.ids(self.limits, memory_id=memory_id, tenant_id=tenant_id, user_id=user_id,
                   sub_tenant_id=sub_tenant_id, session_id=session_id)  # fmt: skip
        _require_str("tenant_id", tenant_id)
        scope = {"user_id": user_id, "sub_tenant_id": sub_tenant_id, "session_id": session_id}
        stored = await self._resolve_id(tenant_id, memory_id, **scope)
        text, md = await self._require(tenant_id, stored)
        if not _in_scope(md, scope):
            raise NotFoundError(f"no memory {memory_id!r} in tenant {tenant_id!r} for that scope")
        return rec.to_item(stored, text, md)

    async def _resolve_id(
        self,
        tenant_id: str,
        memory_id: str,
        *,
        user_id: str | None = None,
        sub_tenant_id: str | None = None,
        session_id: str | None = None,
    ) -> str:
        """The stored id a caller's id names (``memory_id`` itself when nothing matches).

        How an id resolves: a live record stored under ``memory_id`` (inside the given scope)
        is that record; otherwise the live records whose caller id is ``memory_id`` (a turn's
        ``Turn.id``, a raw memory's ``memory_id``), narrowed by the given scope levels. One
        match is the answer; none leaves ``memory_id`` as it is (the caller then reports it
        unknown).

        Raises:
            ValidationError: several memories (of different users, sub-tenants or sessions)
                carry this caller id and the scope given does not pick one.
        """
        _require_str("id", memory_id)
        scope = {"user_id": user_id, "sub_tenant_id": sub_tenant_id, "session_id": session_id}
        direct = (await self._get_raw(tenant_id, [memory_id])).get(memory_id)
        if direct is not None and _in_scope(direct[1], scope):
            return memory_id
        pair = await self.collections(tenant_id, create=False)
        if pair is None:
            return memory_id
        where = all_of({"caller_id": memory_id}, *({k: v} for k, v in scope.items() if v is not None))
        assert where is not None
        got = await pair[0].get_all(where=self.live(where), include=["metadatas"])
        matches = sorted(got["ids"])
        if len(matches) > 1:
            raise ValidationError(
                "id",
                f"{memory_id!r} is the caller id of {len(matches)} memories (of different users, "
                "sub-tenants or sessions): pass user_id (and session_id) or use a stored id",
            )
        return matches[0] if matches else memory_id

    async def get_many(self, ids: Sequence[str], *, tenant_id: str = DEFAULT_TENANT) -> list[MemoryItem]:
        """Memories by id, in the given order; unknown ids are skipped (passive turns are found).

        Raises:
            ValidationError: ``ids`` is not a list of non-empty strings (a bare string is refused).
        """
        ids = checks.id_list("ids", ids, self.limits)
        _require_str("tenant_id", tenant_id)
        found = await self._get_raw(tenant_id, list(dict.fromkeys(ids)))
        return [rec.to_item(i, *found[i]) for i in ids if i in found]

    async def list(
        self,
        filters: dict[str, Any] | None = None,
        page: int = 1,
        page_size: int = 50,
        *,
        tenant_id: str = DEFAULT_TENANT,
        sub_tenant_id: str | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        kinds: Sequence[str] | None = None,
    ) -> Page:
        """List memories in write order, one page at a time.

        Turns stored with ``remember(write_active=False)`` (status ``"passive"``: enrichment
        input, not memories) are left out unless ``filters`` names ``status`` (then the filter
        decides: ``{"status": "passive"}`` lists only them); :meth:`get` still finds one by id.

        Raises:
            ValidationError: bad page numbers or filters.
        """
        if isinstance(page, bool) or not isinstance(page, int) or page < 1:
            raise ValidationError("page", "must be an integer >= 1")
        if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= 1000:
            raise ValidationError("page_size", "must be an integer in 1..1000")
        _require_str("tenant_id", tenant_id)
        checks.ids(self.limits, tenant_id=tenant_id, sub_tenant_id=sub_tenant_id, user_id=user_id,
                   agent_id=agent_id, session_id=session_id)  # fmt: skip
        checks.kinds(kinds)
        where = all_of(
            _scope_where(tenant_id, sub_tenant_id, user_id, agent_id, session_id),
            {"kind": {"$in": list(kinds)}} if kinds else None,
            translate(filters),
        )
        pair = await self.collections(tenant_id, create=False)
        if pair is None:
            return Page(count=0, results=[])
        got = await pair[0].get_all(where=self.live(where), include=["metadatas"])
        order = sorted(
            zip(got["ids"], got["metadatas"], strict=True), key=lambda x: (x[1].get("seq", 0), x[0])
        )
        if not _names_status(translate(filters)):
            order = _not_passive(order)
        count = len(order)
        start = (page - 1) * page_size
        page_ids = [i for i, _ in order[start : start + page_size]]
        return Page(
            count=count,
            next=page + 1 if start + page_size < count else None,
            previous=page - 1 if page > 1 else None,
            results=await self.get_many(page_ids, tenant_id=tenant_id),
        )

    async def get_messages(
        self,
        session_id: str,
        *,
        tenant_id: str = DEFAULT_TENANT,
        user_id: str | None = None,
        status: Literal["active", "archived"] | None = None,
        limit: int | None = None,
        last: bool = False,
    ) -> list[MemoryItem]:
        """A session's turns in exact write order (``seq``).

        Turns stored with ``remember(write_active=False)`` (status ``"passive"``) are never
        part of a transcript (nor of :meth:`count_turns`).

        Args:
            session_id: The transcript.
            tenant_id: Tenant.
            user_id: Restrict to one user's turns.
            status: Only ``"active"`` or ``"archived"`` turns; ``None`` for both.
            limit: At most this many turns (the first ones, or the last ones with ``last``).
            last: Take the last ``limit`` turns instead of the first.

        Raises:
            ValidationError: bad ids, ``status`` not active/archived/None, ``limit`` not an
                integer >= 0, ``last`` not a bool.
        """
        _require_str("session_id", session_id)
        _require_str("tenant_id", tenant_id)
        checks.ids(self.limits, session_id=session_id, tenant_id=tenant_id, user_id=user_id)
        checks.status(status, optional=True)
        checks.integer("limit", limit, optional=True)
        checks.flag("last", last)
        ordered = await self._turn_index(tenant_id, session_id, user_id=user_id, status=status)
        if limit is not None:
            ordered = ordered[-limit:] if last else ordered[:limit]
            if limit == 0:
                ordered = []
        return await self.get_many([i for i, _ in ordered], tenant_id=tenant_id)

    async def _turn_index(
        self,
        tenant_id: str,
        session_id: str,
        *,
        user_id: str | None = None,
        status: str | None = None,
    ) -> list[tuple[str, dict[str, Any]]]:
        """``(id, metadata)`` of a session's transcript turns sorted by ``seq`` (never passive ones)."""
        _require_str("tenant_id", tenant_id)
        rows = await (await self.data()).session_turns(tenant_id, session_id, user_id=user_id, status=status)
        return rows if status is not None else _not_passive(rows)

    async def count_turns(
        self, session_id: str, *, tenant_id: str = DEFAULT_TENANT, status: str | None = None
    ) -> int:
        """Number of turns in a session (optionally of one status)."""
        _require_str("session_id", session_id)
        checks.ids(self.limits, session_id=session_id, tenant_id=tenant_id)
        checks.status(status, optional=True)
        return len(await self._turn_index(tenant_id, session_id, status=status))

    async def tenants(self) -> list[str]:
        """Every tenant id that holds memories in this store."""
        return await (await self.store()).tenants()

    async def list_sessions(
        self, *, tenant_id: str = DEFAULT_TENANT, user_id: str | None = None
    ) -> list[str]:
        """Ids of the sessions that hold (non-passive) turns, ordered by their first turn's ``seq``."""
        _require_str("tenant_id", tenant_id)
        checks.ids(self.limits, tenant_id=tenant_id, user_id=user_id)
        pair = await self.collections(tenant_id, create=False)
        if pair is None:
            return []
        where = all_of({"kind": "turn"}, {"user_id": user_id} if user_id is not None else None)
        got = await pair[0].get_all(where=self.live(where), include=["metadatas"])
        first: dict[str, int] = {}
        for m in got["metadatas"]:
            if m.get("status") == PASSIVE_STATUS:
                continue
            sid = m["session_id"]
            first[sid] = min(first.get(sid, m["seq"]), m["seq"])
        return sorted(first, key=lambda s: (first[s], s))
