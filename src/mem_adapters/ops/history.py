"""History: the pre-image of every version of a memory, and supersession chains."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from .. import records as rec
from ..data import AUX_VECTOR
from ..errors import NotFoundError, ValidationError
from ..models import (
    DEFAULT_TENANT,
    HistoryEntry,
)
from . import checks
from .base import (
    EngineBase,
    _require_str,
)

logger = logging.getLogger(__name__)


class HistoryMixin(EngineBase):
    """History rows and reads of the engine."""

    async def _children(self, tenant_id: str, memory_ids: str | Sequence[str]) -> list[str]:
        """Ids of records derived from the given memories (chunks, observations, facts)."""
        parents = [memory_ids] if isinstance(memory_ids, str) else list(memory_ids)
        if not parents:
            return []
        mem = await self._mem(tenant_id)
        got = await mem.get_all(where={"parent_id": {"$in": parents}}, include=[])
        return list(got["ids"])

    @staticmethod
    def _history_row(
        memory_id: str, text: str, md: dict[str, Any], event: str | None = None
    ) -> tuple[str, str, dict[str, Any]]:
        """The aux record holding the pre-image of one version of a memory."""
        version = int(md.get("version", 1))
        attrs = json.loads(md["attrs"]) if md.get("attrs") else {}
        row_event = event or attrs.get("last_event") or ("ADD" if version == 1 else "UPDATE")
        at = md.get("updated_at", md.get("created_at", time.time()))
        meta = {
            "type": "history",
            "memory_id": memory_id,
            "version": version,
            "event": row_event,
            "at": at,
            "user_id": md.get("user_id", ""),
            "meta": md.get("meta", "{}"),
        }
        for key in ("caller_id", "sub_tenant_id", "session_id"):  # history by a caller's id
            if md.get(key):
                meta[key] = md[key]
        return f"h:{memory_id}:{version}:{row_event}", text, meta

    async def _write_history(self, tenant_id: str, rows: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Upsert history rows in one call."""
        if not rows:
            return
        pair = await self.collections(tenant_id)
        assert pair is not None
        await pair[1].upsert(
            [r[0] for r in rows], [AUX_VECTOR] * len(rows), [r[1] for r in rows], [r[2] for r in rows]
        )

    async def _append_history(
        self,
        tenant_id: str,
        memory_id: str,
        text: str,
        md: dict[str, Any],
        event: str | None = None,
    ) -> None:
        """Store the pre-image of a memory as a history row (written lazily, on change)."""
        await self._write_history(tenant_id, [self._history_row(memory_id, text, md, event)])

    async def _history_id(self, tenant_id: str, memory_id: str, scope: dict[str, str | None]) -> str:
        """The stored id whose history ``memory_id`` asks for (live, then deleted memories)."""
        stored = await self._resolve_id(tenant_id, memory_id, **scope)  # type: ignore[attr-defined]
        if stored != memory_id:
            return stored
        pair = await self.collections(tenant_id, create=False)
        if pair is None:
            return memory_id
        own = await pair[1].get(
            where={"$and": [{"type": "history"}, {"memory_id": memory_id}]}, include=[], limit=1
        )
        if own["ids"]:
            return memory_id
        clauses = [{"type": "history"}, {"caller_id": memory_id}]
        clauses += [{k: rec.opt(v)} for k, v in scope.items() if v is not None]
        got = await pair[1].get_all(where={"$and": clauses}, include=["metadatas"])
        owners = sorted({m["memory_id"] for m in got["metadatas"]})
        if len(owners) > 1:
            raise ValidationError(
                "id", f"{memory_id!r} is the caller id of {len(owners)} memories: pass user_id or a stored id"
            )
        return owners[0] if owners else memory_id

    async def _own_history(
        self, tenant_id: str, memory_id: str
    ) -> tuple[list[HistoryEntry], dict[str, Any] | None]:
        """History rows of one id plus its current version; also returns its live metadata."""
        pair = await self.collections(tenant_id, create=False)
        if pair is None:
            return [], None
        got = await pair[1].get_all(
            where={"$and": [{"type": "history"}, {"memory_id": memory_id}]},
            include=["documents", "metadatas"],
        )
        entries = [
            HistoryEntry(
                memory_id=memory_id,
                version=int(m["version"]),
                event=m["event"],
                text=d or "",
                metadata=json.loads(m.get("meta") or "{}"),
                at=rec.from_epoch(m["at"]),
            )
            for d, m in zip(got["documents"], got["metadatas"], strict=True)
        ]
        current = (await self._get_raw(tenant_id, [memory_id])).get(memory_id)
        md = None
        if current is not None:
            text, md = current
            attrs = json.loads(md["attrs"]) if md.get("attrs") else {}
            version = int(md.get("version", 1))
            entries.append(
                HistoryEntry(
                    memory_id=memory_id,
                    version=version,
                    event=attrs.get("last_event") or ("ADD" if version == 1 else "UPDATE"),
                    text=text,
                    metadata=rec.caller_meta(md),
                    at=rec.from_epoch(md.get("updated_at")),
                )
            )
        order = {"DELETE": 1}
        entries.sort(key=lambda e: (e.version, order.get(e.event, 0), e.at))
        return entries, md

    async def history(
        self,
        memory_id: str,
        *,
        tenant_id: str = DEFAULT_TENANT,
        user_id: str | None = None,
        sub_tenant_id: str | None = None,
        session_id: str | None = None,
    ) -> list[HistoryEntry]:
        """Every version of a memory, oldest first (the current one last; a DELETE row if deleted).

        For facts, the supersession chain is followed both ways (``supersedes`` and
        ``superseded_by``), so any fact of a chain shows the whole chain. ``memory_id`` is a
        stored id or a caller id, resolved as :meth:`get` does; a deleted memory is found by
        its caller id too (its history rows keep it). Entries carry the stored id.

        Raises:
            NotFoundError: the id never existed in this tenant.
            ValidationError: a caller id used in several scopes and no scope to choose one.
        """
        _require_str("id", memory_id)
        checks.ids(self.limits, id=memory_id, tenant_id=tenant_id, user_id=user_id,
                   sub_tenant_id=sub_tenant_id, session_id=session_id)  # fmt: skip
        scope = {"user_id": user_id, "sub_tenant_id": sub_tenant_id, "session_id": session_id}
        memory_id = await self._history_id(tenant_id, memory_id, scope)
        entries, md = await self._own_history(tenant_id, memory_id)
        if not entries:
            raise NotFoundError(f"no memory {memory_id!r} in tenant {tenant_id!r}")
        seen = {memory_id}
        for link, prepend in (("supersedes", True), ("superseded_by", False)):
            cursor = md
            while cursor is not None and rec.unopt(cursor.get(link)) and cursor[link] not in seen:
                other = cursor[link]
                seen.add(other)
                more, cursor = await self._own_history(tenant_id, other)
                entries = [*more, *entries] if prepend else [*entries, *more]
        return entries
