"""Changes to stored memories: status, text/metadata updates, expiry, deletes, clearing a session."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import Any, Literal

from .. import records as rec
from ..errors import ValidationError
from ..models import (
    DEFAULT_TENANT,
    MemoryItem,
)
from . import checks
from .base import (
    EngineBase,
    _require_str,
)

logger = logging.getLogger(__name__)


class ChangesMixin(EngineBase):
    """Mutations of stored memories."""

    async def set_status(
        self,
        ids: Sequence[str],
        status: Literal["active", "archived"],
        *,
        tenant_id: str = DEFAULT_TENANT,
    ) -> list[str]:
        """Set the status of turns (``active``/``archived``); returns the ids changed."""
        ids = checks.id_list("ids", ids, self.limits)
        checks.status(status)
        _require_str("tenant_id", tenant_id)
        found = await self._get_raw(tenant_id, list(ids))
        changed = [i for i in ids if i in found and found[i][1].get("status") != status]
        if changed:
            await (await self.data()).set_metadata(
                tenant_id, changed, {"status": status, "updated_at": time.time()}
            )
        return changed

    async def archive_oldest(self, session_id: str, n: int, *, tenant_id: str = DEFAULT_TENANT) -> list[str]:
        """Archive the ``n`` oldest active turns of a session; returns their ids."""
        _require_str("session_id", session_id)
        _require_str("tenant_id", tenant_id)
        checks.integer("n", n)
        targets = (await self._turn_index(tenant_id, session_id, status="active"))[:n]
        return await self.set_status([i for i, _ in targets], "archived", tenant_id=tenant_id)

    async def delete_oldest(
        self, session_id: str, n: int, *, tenant_id: str = DEFAULT_TENANT, status: str | None = None
    ) -> list[str]:
        """Delete the ``n`` oldest turns of a session (optionally of one status); returns ids."""
        _require_str("session_id", session_id)
        _require_str("tenant_id", tenant_id)
        checks.integer("n", n)
        checks.status(status, optional=True)
        targets = [i for i, _ in (await self._turn_index(tenant_id, session_id, status=status))[:n]]
        return await self.delete_many(targets, tenant_id=tenant_id)

    async def update(
        self,
        memory_id: str,
        text: str | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        tenant_id: str = DEFAULT_TENANT,
    ) -> MemoryItem:
        """Patch a memory's text (re-embedded) and/or metadata (merged; ``None`` deletes a key).

        The previous version is kept in :meth:`history`.

        Raises:
            NotFoundError: unknown id in this tenant.
            ValidationError: empty text, or nothing to update.
        """
        if text is None and metadata is None:
            raise ValidationError("text", "give text and/or metadata to update")
        _require_str("id", memory_id)
        _require_str("tenant_id", tenant_id)
        checks.ids(self.limits, id=memory_id, tenant_id=tenant_id)
        checks.text("text", text, self.limits.max_raw_bytes, optional=True)
        checks.mapping("metadata", metadata)
        if metadata:  # the patch alone must already be encodable (the merge is checked below)
            rec.encode_meta({k: v for k, v in metadata.items() if v is not None}, "metadata", self.limits)
        memory_id = await self._resolve_id(tenant_id, memory_id)  # type: ignore[attr-defined]
        old_text, md = await self._require(tenant_id, memory_id)
        merged = rec.caller_meta(md)
        for key, value in (metadata or {}).items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        encoded = rec.encode_meta(merged, "metadata", self.limits)
        if md.get("kind") != "raw" and text is not None:
            checks.text("text", text, self.limits.max_turn_bytes)
        if md.get("kind") == "raw" and text is not None:
            # Raw memories are re-chunked: replace through add(), which keeps the history.
            await self.add(
                raw_text=text,
                tenant_id=tenant_id,
                sub_tenant_id=rec.unopt(md.get("sub_tenant_id")),
                user_id=rec.unopt(md.get("user_id")),
                agent_id=rec.unopt(md.get("agent_id")),
                session_id=rec.unopt(md.get("session_id")),
                memory_id=memory_id,
                expiry_seconds=None
                if md["expires_at"] >= rec.NEVER
                else max(md["expires_at"] - time.time(), 0.001),
                metadata=merged,
            )
            return await self.get(memory_id, tenant_id=tenant_id)
        await self._append_history(tenant_id, memory_id, old_text, md)
        new_md = {k: v for k, v in md.items() if not k.startswith(rec.CALLER_PREFIX)}
        attrs = json.loads(md["attrs"]) if md.get("attrs") else {}
        attrs["last_event"] = "UPDATE"
        new_md.update(encoded)
        new_md.update(version=int(md.get("version", 1)) + 1, updated_at=time.time(), attrs=json.dumps(attrs))
        new_text = old_text if text is None else text
        embeddings = None
        if text is None:
            mem = await self._mem(tenant_id)
            got = await mem.get(ids=[memory_id], include=["embeddings"])
            embeddings = [list(map(float, got["embeddings"][0]))]
        await self.write_records(tenant_id, [memory_id], [new_text], [new_md], embeddings)
        return rec.to_item(memory_id, new_text, new_md)

    async def touch(
        self, ids: Sequence[str], expiry_seconds: float, *, tenant_id: str = DEFAULT_TENANT
    ) -> list[str]:
        """Move the expiry of live memories (and their chunks) to ``expiry_seconds`` from now.

        A sliding TTL: no new version is written. Unknown or already expired ids are skipped;
        returns the ids touched.

        Raises:
            ValidationError: ``expiry_seconds`` is not a positive number.
        """
        ids = checks.id_list("ids", ids, self.limits)
        checks.seconds("expiry_seconds", expiry_seconds)
        _require_str("tenant_id", tenant_id)
        found = await self._get_raw(tenant_id, list(dict.fromkeys(ids)))
        if not found:
            return []
        targets = [*found, *await self._children(tenant_id, list(found))]
        expires_at = min(time.time() + expiry_seconds, rec.NEVER)
        await (await self.data()).set_metadata(tenant_id, targets, {"expires_at": expires_at})
        return [i for i in dict.fromkeys(ids) if i in found]

    async def delete(self, memory_id: str, *, tenant_id: str = DEFAULT_TENANT) -> None:
        """Delete a memory and what was derived from it; its history records the deletion.

        Raises:
            NotFoundError: unknown id in this tenant.
        """
        memory_id = await self._resolve_id(tenant_id, memory_id)  # type: ignore[attr-defined]
        await self._require(tenant_id, memory_id)
        await self.delete_many([memory_id], tenant_id=tenant_id)

    async def delete_many(self, ids: Sequence[str], *, tenant_id: str = DEFAULT_TENANT) -> list[str]:
        """Delete several memories (and what was derived from them) in one call.

        Unknown ids are skipped; returns the ids deleted. History records each deletion.
        """
        ids = checks.id_list("ids", ids, self.limits)
        _require_str("tenant_id", tenant_id)
        found = await self._get_raw(tenant_id, list(dict.fromkeys(ids)))
        if not found:
            return []
        now = time.time()
        rows = []
        for memory_id, (text, md) in found.items():
            rows.append(self._history_row(memory_id, text, md))
            rows.append(self._history_row(memory_id, text, {**md, "updated_at": now}, "DELETE"))
        await self._write_history(tenant_id, rows)
        await self.delete_records(tenant_id, [*found, *await self._children(tenant_id, list(found))])
        return [i for i in dict.fromkeys(ids) if i in found]

    async def clear_session(
        self, session_id: str, *, tenant_id: str = DEFAULT_TENANT, user_id: str | None = None
    ) -> int:
        """Delete a session's turns, everything derived from them and their history; returns the count.

        With ``user_id`` only that user's records of the session go (other users' turns in a
        shared session stay).
        """
        _require_str("session_id", session_id)
        _require_str("tenant_id", tenant_id)
        _require_str("user_id", user_id, optional=True)
        pair = await self.collections(tenant_id, create=False)
        if pair is None:
            return 0
        where: dict[str, Any] = {"session_id": session_id}
        if user_id is not None:
            where = {"$and": [where, {"user_id": user_id}]}
        got = await pair[0].get_all(where=where, include=[])
        ids = list(got["ids"])
        await self.delete_records(tenant_id, ids)
        # "Clear" means gone: old versions must not survive in the history either.
        await self._purge_history(tenant_id, ids)
        return len(ids)
