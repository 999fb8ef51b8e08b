"""Writes: batches of turns (``remember``), single messages, raw memories and pairs (``add``)."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Literal

import pydantic

from .. import records as rec
from ..chunking import chunk_text
from ..enrichment import aextract_for_add
from ..errors import LimitExceededError, ValidationError
from ..limits import Limits
from ..models import (
    DEFAULT_TENANT,
    AddResult,
    RecordResult,
    Turn,
    Usage,
    WriteMode,
    WriteResult,
)
from . import checks
from .base import (
    EngineBase,
    _now,
    _require_str,
)

logger = logging.getLogger(__name__)


_Row = tuple[str, Turn, datetime, dict[str, Any]]

PASSIVE_STATUS = "passive"
"""Status of a turn stored with ``write_active=False``: enrichment input, never searched."""


def _apply_write_options(
    metas: list[dict[str, Any]], *, write_active: bool, write_passive: bool, mode: str = "chat"
) -> None:
    """Mark new turn records for ``remember``'s per-call ``mode``, ``write_active``, ``write_passive``.

    Only the turns change (their observations are facts, written as they are). An import
    turn carries ``attrs.mode = "import"``, so a worker that finds it pending without a job
    (a crash between the two writes) still enriches it as an import.
    """
    for md in metas:
        if md.get("kind") != "turn":
            continue
        if mode == "import":
            md["attrs"] = json.dumps({**json.loads(md.get("attrs") or "{}"), "mode": "import"})
        if not write_active:
            md.update(status=PASSIVE_STATUS, indexed=False)
        if not write_passive:
            md["enrich"] = "skipped"


def _is_legacy_turn(md: dict[str, Any], caller_id: str, scope: dict[str, Any]) -> bool:
    """Whether a format-2 record (see ``rec.legacy_stored_ids``) is the turn ``caller_id`` names here."""
    return (
        md.get("kind") == "turn"
        and md.get("caller_id", caller_id) == caller_id
        and all(md.get(k, "") == scope[k] for k in ("sub_tenant_id", "user_id", "session_id"))
    )


def _is_legacy_raw(md: dict[str, Any], scope: dict[str, Any]) -> bool:
    """Whether a record found under a given memory id is a raw memory of this scope."""
    return md.get("kind") == "raw" and all(md.get(k, "") == scope[k] for k in ("sub_tenant_id", "user_id"))


class WritesMixin(EngineBase):
    """Write paths of the engine."""

    @staticmethod
    def _parse_turns(turns: Iterable[Turn | dict[str, Any]]) -> list[Turn]:
        if isinstance(turns, Turn | dict | str) or turns is None:
            raise ValidationError("turns", "must be a list of Turn or dict")
        parsed: list[Turn] = []
        for i, t in enumerate(turns):
            if isinstance(t, Turn):
                parsed.append(t)
                continue
            if not isinstance(t, dict):
                raise ValidationError(f"turns[{i}]", f"must be a Turn or dict, got {type(t).__name__}")
            try:
                parsed.append(Turn.model_validate(t))
            except OverflowError as e:  # e.g. 9999-12-31T23:00:00-05:00 is past year 9999 in UTC
                raise ValidationError(f"turns[{i}].timestamp", f"out of range: {e}") from e
            except pydantic.ValidationError as e:
                err = e.errors()[0]
                loc = ".".join(str(p) for p in err["loc"])
                raise ValidationError(f"turns[{i}].{loc}", err["msg"]) from e
        if not parsed:
            raise ValidationError("turns", "must not be empty")
        return parsed

    async def remember(
        self,
        turns: Sequence[Turn | dict[str, Any]],
        *,
        session_id: str,
        user_id: str | None = None,
        agent_id: str | None = None,
        tenant_id: str = DEFAULT_TENANT,
        sub_tenant_id: str | None = None,
        sub_session_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        status: Literal["active", "archived"] = "active",
        mode: WriteMode = "chat",
        write_active: bool = True,
        write_passive: bool = True,
    ) -> WriteResult:
        """Write a batch of turns; they are searchable when this returns.

        Re-sending any batch returns the same ids and writes nothing new. A turn's stored id
        is a hash of (tenant, sub-tenant, user, session, its ``id``) when the caller gives an
        ``id`` (kept as :attr:`MemoryItem.caller_id`: the same caller id in two users' or
        sessions' turns names two turns), else a hash of (scope, session, role, text,
        timestamp). Two turns of one batch with the same caller id are an error; identical
        turns without ids are one turn.

        Args:
            turns: :class:`Turn` models or dicts ``{role, text, timestamp?, metadata?,
                observations?, id?}``.
            session_id: The transcript the turns belong to.
            user_id: Owner of the memories.
            agent_id: Agent the conversation is with.
            tenant_id: Isolation boundary (default ``"default"``).
            sub_tenant_id: Scope level inside the tenant.
            sub_session_id: Optional sub-grouping inside the transcript.
            metadata: Applied to every turn (a turn's own metadata wins on key clashes).
            status: Status of the new turns, ``"active"`` or ``"archived"``.
            mode: ``"chat"`` (live conversation) or ``"import"`` (a backfill of history): the
                turns keep their own timestamps in both; in ``import`` supersession follows
                event time (a fact stated earlier never replaces one stated later, whatever
                the write order, and is linked into the chain where its time puts it) and
                enrichment never closes an episode by itself (gap, size, topic): close it with
                ``end_session``.
            write_active: Store the turns as active memories (searchable, listed). ``False``
                (with ``write_passive``) stores them for enrichment only: status
                ``"passive"``, never searched nor put in a context, kept for their facts'
                sources, history and erase; their ids are in ``WriteResult.passive_ids``.
            write_passive: Enrich the turns (facts, episodes). ``False`` stores them without
                an enrichment job (their ``enrich`` state is ``"skipped"``, never resumed).

        Raises:
            ValidationError: bad input, naming the field (also ``mode`` not chat/import, or
                both ``write_active`` and ``write_passive`` false); nothing is written.
        """
        checks.flag("write_active", write_active)
        checks.flag("write_passive", write_passive)
        if not write_active and not write_passive:
            raise ValidationError("write_active", "write_active and write_passive are both false")
        if not isinstance(mode, str) or mode not in ("chat", "import"):
            raise ValidationError("mode", f"must be 'chat' or 'import', got {mode!r}")
        parsed = self._parse_turns(turns)
        self._check_turns(parsed)
        _require_str("session_id", session_id)
        _require_str("tenant_id", tenant_id)
        checks.ids(
            self.limits,
            session_id=session_id,
            user_id=user_id,
            agent_id=agent_id,
            tenant_id=tenant_id,
            sub_tenant_id=sub_tenant_id,
            sub_session_id=sub_session_id,
        )
        checks.status(status)
        checks.mapping("metadata", metadata)
        base_meta = metadata or {}
        rec.encode_meta(base_meta, "metadata", self.limits)
        now = _now()
        scope = {
            "tenant_id": tenant_id,
            "sub_tenant_id": rec.opt(sub_tenant_id),
            "user_id": rec.opt(user_id),
            "agent_id": rec.opt(agent_id),
            "session_id": session_id,
            "sub_session_id": rec.opt(sub_session_id),
        }
        # Validate and encode everything before touching the store: nothing is half-written.
        rows = self._turn_rows(parsed, scope, base_meta, now, self.limits)
        ids = [r[0] for r in rows]
        async with self._session_lock(tenant_id, session_id):
            legacy = self._legacy_ids(rows, session_id)
            found = await self._get_raw(tenant_id, list(dict.fromkeys(ids + legacy)))
            rows = self._check_caller_ids(rows, found, scope)
            ids = [r[0] for r in rows]
            fresh: dict[str, _Row] = {}
            for r in rows:  # first occurrence wins when a batch repeats an id
                if r[0] not in found:
                    fresh.setdefault(r[0], r)
            new_ids, texts, metas = self._turn_records(list(fresh.values()), scope, status, now)
            _apply_write_options(metas, write_active=write_active, write_passive=write_passive, mode=mode)
            tokens_in, tokens_out = await self._count_tokens_pair([r[1].text for r in rows], texts)
            await self.write_records(tenant_id, new_ids, texts, metas)
        await self.purge_expired(tenant_id)
        passive = None
        turn_ids = list(fresh)
        if self.enricher is not None and turn_ids and write_passive:
            passive = await self.enricher.submit(tenant_id, session_id, turn_ids, mode=mode)
        return WriteResult(
            job_id=uuid.uuid4().hex,
            active_ids=ids if write_active else [],
            passive_ids=[] if write_active else ids,
            mode=mode,
            passive_job_id=passive,
            created=len(turn_ids),
            duplicates=len(rows) - len(turn_ids),
            usage=Usage(tokens_in=tokens_in, tokens_out=tokens_out),
        )

    def _check_turns(self, parsed: list[Turn]) -> None:
        """Sizes and text of every turn against :attr:`limits` (before anything is written)."""
        lim = self.limits
        if len(parsed) > lim.max_batch_turns:
            raise LimitExceededError("turns", f"holds {len(parsed)} turns, more than {lim.max_batch_turns}")
        for i, t in enumerate(parsed):
            checks.text(f"turns[{i}].text", t.text, lim.max_turn_bytes)
            checks.text(f"turns[{i}].role", t.role, lim.max_id_bytes)
            checks.text(f"turns[{i}].id", t.id, lim.max_id_bytes, optional=True)
            for j, o in enumerate(t.observations):
                checks.text(f"turns[{i}].observations[{j}].text", o.text, lim.max_turn_bytes)

    @staticmethod
    def _turn_rows(
        parsed: list[Turn],
        scope: dict[str, Any],
        base_meta: dict[str, Any],
        now: datetime,
        limits: Limits | None = None,
    ) -> list[_Row]:
        """Validate and encode each turn: ``(id, turn, timestamp, encoded metadata)``.

        Raises:
            ValidationError: bad metadata or observations, or two turns with the same caller
                id (the error names both positions).
        """
        rows: list[_Row] = []
        by_caller: dict[str, int] = {}
        for i, t in enumerate(parsed):
            ts = t.timestamp or now
            if t.id is not None:
                _require_str(f"turns[{i}].id", t.id)
                if t.id in by_caller:
                    raise ValidationError(
                        f"turns[{i}].id",
                        f"turns[{by_caller[t.id]}] and turns[{i}] have the same id {t.id!r}; "
                        "ids must be unique within a batch",
                    )
                by_caller[t.id] = i
            if t.id is not None:
                tid = rec.turn_id(
                    scope["tenant_id"], scope["sub_tenant_id"], scope["user_id"], scope["session_id"], t.id
                )
            else:  # the content hash of format 2, unchanged: re-sent old turns stay no-ops
                tid = rec.stable_id(
                    "t_",
                    scope["tenant_id"],
                    rec.unopt(scope["sub_tenant_id"]),
                    rec.unopt(scope["user_id"]),
                    rec.unopt(scope["agent_id"]),
                    scope["session_id"],
                    t.role,
                    t.text,
                    ts.isoformat(),
                )
            meta = rec.encode_meta({**base_meta, **t.metadata}, f"turns[{i}].metadata", limits)
            for j, o in enumerate(t.observations):
                _require_str(f"turns[{i}].observations[{j}].text", o.text)
                rec.encode_meta(o.metadata, f"turns[{i}].observations[{j}].metadata", limits)
            rows.append((tid, t, ts, meta))
        return rows

    @staticmethod
    def _legacy_ids(rows: list[_Row], session_id: str) -> list[str]:
        """Stored ids a format-2 store may hold a caller id's turn under (see :meth:`_check_caller_ids`)."""
        return [i for _, t, _, _ in rows if t.id is not None for i in rec.legacy_stored_ids(session_id, t.id)]

    @staticmethod
    def _check_caller_ids(
        rows: list[_Row], found: dict[str, tuple[str, dict[str, Any]]], scope: dict[str, Any]
    ) -> list[_Row]:
        """Resolve caller ids to stored turns; reject a caller id used by a different turn.

        A caller id is scoped to (tenant, sub-tenant, user, session): re-sending the same turn
        is a no-op (even when a retrying client stamps it anew), but reusing the id in the
        same scope for a different turn would silently lose it, so it is an error. A turn
        written by a format-2 store (whose stored id *is* the caller id, or the
        ``lc:{session}:{id}`` of its LangChain history, see
        :meth:`mem_adapters.data.DataLayer._migrate_caller_ids`) is the same turn when its
        scope and migrated ``caller_id`` match; the row then takes that stored id.

        Returns:
            The rows, each with the stored id it resolves to.
        """
        out: list[_Row] = []
        for i, (tid, t, ts, meta) in enumerate(rows):
            if t.id is not None:
                hit = found.get(tid)
                for old_id in rec.legacy_stored_ids(scope["session_id"], t.id) if hit is None else ():
                    legacy = found.get(old_id)
                    if legacy is not None and _is_legacy_turn(legacy[1], t.id, scope):
                        tid, hit = old_id, legacy
                        break
                if hit is not None:
                    text, md = hit
                    if (md.get("role"), text) != (t.role, t.text):
                        raise ValidationError(
                            f"turns[{i}].id", f"id {t.id!r} is already used by a different turn"
                        )
            out.append((tid, t, ts, meta))
        return out

    def _turn_records(
        self, fresh: list[_Row], scope: dict[str, Any], status: str, now: datetime
    ) -> tuple[list[str], list[str], list[dict[str, Any]]]:
        """Ids, texts and metadata of new turns and their observations, in write order (``seq``)."""
        seq = self.next_seq(max(1, sum(1 + len(r[1].observations) for r in fresh)))
        new_ids: list[str] = []
        texts: list[str] = []
        metas: list[dict[str, Any]] = []
        created_at = now.timestamp()
        common = {"created_at": created_at, "updated_at": created_at, "expires_at": rec.NEVER,
                  "version": 1, "is_latest": True, "indexed": True}  # fmt: skip
        for tid, t, ts, meta in fresh:
            new_ids.append(tid)
            texts.append(t.text)
            metas.append({**scope, **meta, **common, "kind": "turn", "role": t.role, "ts": ts.timestamp(),
                          "seq": seq, "status": status, "enrich": "pending"})  # fmt: skip
            if t.id is not None:
                metas[-1]["caller_id"] = t.id
            seq += 1
            for j, o in enumerate(t.observations):
                new_ids.append(rec.stable_id("o_", tid, j, o.text))
                texts.append(o.text)
                attrs = {"origin": "observation", "fact_type": "observation", "confidence": 1.0}
                o_meta = rec.encode_meta(o.metadata, limits=self.limits)
                metas.append({**scope, **o_meta, **common, "kind": "fact",
                              "role": t.role, "ts": ts.timestamp(), "seq": seq, "status": "active",
                              "parent_id": tid, "source_ids": json.dumps([tid]), "attrs": json.dumps(attrs),
                              "enrich": "done"})  # fmt: skip
                seq += 1
        return new_ids, texts, metas

    async def record_message(
        self,
        conversation_id: str,
        role: str,
        content: str,
        *,
        user_id: str,
        customer_id: str,
        session_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> RecordResult:
        """Record one user/assistant message (strict variant of :meth:`remember`).

        ``customer_id`` is the tenant and ``conversation_id`` the transcript; ``session_id``
        is an optional sub-grouping of the conversation, generated when absent.

        Raises:
            ValidationError: role is not "user"/"assistant", or an id/content is empty.
        """
        if not isinstance(role, str) or role not in ("user", "assistant"):
            raise ValidationError("role", f"must be 'user' or 'assistant', got {role!r}")
        _require_str("conversation_id", conversation_id)
        _require_str("content", content)
        checks.text("content", content, self.limits.max_turn_bytes)
        checks.ids(self.limits, conversation_id=conversation_id, user_id=user_id, customer_id=customer_id,
                   session_id=session_id)  # fmt: skip
        checks.mapping("metadata", metadata)
        _require_str("user_id", user_id)
        _require_str("customer_id", customer_id)
        _require_str("session_id", session_id, optional=True)
        session_id = session_id or f"sess_{uuid.uuid4().hex}"
        message_id = f"msg_{uuid.uuid4().hex}"
        recorded_at = _now()
        await self.remember(
            [
                Turn(
                    id=message_id,
                    role=role,
                    text=content,
                    timestamp=recorded_at,
                    metadata=metadata or {},
                )
            ],
            session_id=conversation_id,
            user_id=user_id,
            tenant_id=customer_id,
            sub_session_id=session_id,
        )
        return RecordResult(
            message_id=message_id,  # the turn's caller id (MemoryItem.caller_id); get() accepts it
            conversation_id=conversation_id,
            session_id=session_id,
            recorded_at=recorded_at,
        )

    async def _raw_target(
        self, tenant_id: str, scope: dict[str, Any], memory_id: str | None, generated: str
    ) -> tuple[str, str | None]:
        """The stored id an :meth:`add` creates or replaces, and the caller id it keeps.

        A caller's ``memory_id`` is scoped per (tenant, sub-tenant, user): its stored id is
        :func:`mem_adapters.records.raw_id`. ``memory_id`` may also be the stored id of a raw
        memory of the same scope (``update`` re-adds a memory by its stored id; a format-2
        store kept a caller's ``memory_id`` as the stored id): that memory is replaced.
        """
        if memory_id is None:
            return generated, None
        scoped = rec.raw_id(tenant_id, scope["sub_tenant_id"], scope["user_id"], memory_id)
        found = await self._get_raw(tenant_id, [scoped, memory_id])
        if scoped in found:
            return scoped, memory_id
        hit = found.get(memory_id)
        if hit is not None and _is_legacy_raw(hit[1], scope):
            kept = rec.unopt(hit[1].get("caller_id"))
            if kept is None and not rec.GENERATED_RAW_ID.fullmatch(memory_id):
                kept = memory_id  # a format-2 keyed memory not yet marked
            return memory_id, kept
        return scoped, memory_id

    @staticmethod
    def _pairs_text(pairs: Any, user_name: str | None) -> str:
        if not isinstance(pairs, list | tuple) or not pairs:
            raise ValidationError("pairs", "must be a non-empty list of user/assistant pairs")
        lines = []
        for i, pair in enumerate(pairs):
            if isinstance(pair, dict):
                user, assistant = pair.get("user"), pair.get("assistant")
            elif isinstance(pair, list | tuple) and len(pair) == 2:
                user, assistant = pair
            else:
                raise ValidationError(f"pairs[{i}]", "must be {'user':..., 'assistant':...} or a 2-tuple")
            if (
                not isinstance(user, str)
                or not isinstance(assistant, str)
                or not (user.strip() or assistant.strip())
            ):
                raise ValidationError(f"pairs[{i}]", "user and assistant must be strings, not both empty")
            if user.strip():
                lines.append(f"{user_name or 'user'}: {user}")
            if assistant.strip():
                lines.append(f"assistant: {assistant}")
        return "\n".join(lines)

    async def add(
        self,
        *,
        raw_text: str | None = None,
        pairs: Sequence[Any] | None = None,
        tenant_id: str = DEFAULT_TENANT,
        sub_tenant_id: str | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        memory_id: str | None = None,
        expiry_seconds: float | None = None,
        infer: bool = False,
        custom_instructions: str | None = None,
        user_name: str | None = None,
        metadata: dict[str, Any] | None = None,
        index: bool = True,
    ) -> AddResult:
        """Store raw text, or user/assistant pairs, as a memory.

        Long text is chunked (each chunk searchable, linked to the memory). Writing with an
        existing ``memory_id`` replaces that memory; its history keeps the old version.

        Args:
            raw_text: Free text (exclusive with ``pairs``).
            pairs: ``[{"user": ..., "assistant": ...}]`` or ``[(user, assistant)]``.
            tenant_id: Isolation boundary.
            sub_tenant_id: Scope level inside the tenant.
            user_id: Owner.
            agent_id: Agent.
            session_id: Optional session the memory belongs to.
            memory_id: Caller id (keyed memory), scoped per (sub-tenant, user): the same
                ``memory_id`` of two users names two memories. Echoed back unchanged in
                :attr:`AddResult.memory_id` (the stored id is :attr:`AddResult.record_id`);
                ``get``/``update``/``delete``/``history`` accept either. Generated when absent.
            expiry_seconds: Seconds until the memory (and its chunks) vanish.
            infer: Also store condensed memories extracted from the text.
            custom_instructions: Passed to the condenser/extractor.
            user_name: Speaker label for the user side of ``pairs``.
            metadata: Caller metadata (JSON-serialisable).
            index: ``False`` stores the memory for get/list only: it is neither embedded nor
                searched (nor chunked).

        Raises:
            ValidationError: both or neither of ``raw_text``/``pairs``, empty text, bad expiry.
        """
        lim = self.limits
        checks.ids(lim, tenant_id=tenant_id, sub_tenant_id=sub_tenant_id, user_id=user_id, agent_id=agent_id,
                   session_id=session_id, memory_id=memory_id, user_name=user_name)  # fmt: skip
        checks.text("custom_instructions", custom_instructions, lim.max_raw_bytes, optional=True)
        checks.flag("infer", infer)
        checks.flag("index", index)
        checks.mapping("metadata", metadata)
        checks.seconds("expiry_seconds", expiry_seconds, optional=True)
        if raw_text is not None and pairs is not None:
            raise ValidationError("raw_text", "give raw_text or pairs, not both")
        if raw_text is None and pairs is None:
            raise ValidationError("raw_text", "give raw_text or pairs")
        if raw_text is not None:
            if not isinstance(raw_text, str) or not raw_text.strip():
                raise ValidationError("raw_text", "must be a non-empty string")
            text = raw_text
        else:
            text = self._pairs_text(pairs, user_name)
        checks.text("pairs" if raw_text is None else "raw_text", text, lim.max_raw_bytes)
        if expiry_seconds is not None and (
            isinstance(expiry_seconds, bool)
            or not isinstance(expiry_seconds, int | float)
            or expiry_seconds <= 0
        ):
            raise ValidationError("expiry_seconds", "must be a positive number of seconds")
        _require_str("memory_id", memory_id, optional=True)
        _require_str("tenant_id", tenant_id)
        meta = rec.encode_meta(metadata or {}, "metadata", lim)
        echo = memory_id or f"mem_{uuid.uuid4().hex}"
        source_id = rec.stable_id("src_", text)
        now = time.time()
        expires_at = min(now + expiry_seconds, rec.NEVER) if expiry_seconds else rec.NEVER
        chunks = chunk_text(text) if index else [text]
        inferred = (
            await aextract_for_add(text, custom_instructions=custom_instructions, enricher=self.enricher)
            if infer
            else []
        )
        scope = {
            "tenant_id": tenant_id,
            "sub_tenant_id": rec.opt(sub_tenant_id),
            "user_id": rec.opt(user_id),
            "agent_id": rec.opt(agent_id),
            "session_id": rec.opt(session_id),
            "sub_session_id": "",
            "role": "user" if pairs is not None else "",
        }
        memory_id, caller_id = await self._raw_target(tenant_id, scope, memory_id, echo)
        async with self._session_lock(tenant_id, f"memory:{memory_id}"):
            old = (await self._get_raw(tenant_id, [memory_id])).get(memory_id)
            version = 1
            if old is not None:
                caller_id = rec.unopt(old[1].get("caller_id")) or caller_id
                await self._append_history(tenant_id, memory_id, old[0], old[1])
                version = int(old[1].get("version", 1)) + 1
                await self.delete_records(tenant_id, await self._children(tenant_id, memory_id))
            seq = self.next_seq(1 + len(chunks) + len(inferred))
            common = {
                **scope,
                **meta,
                "ts": now,
                "status": "active",
                "created_at": now,
                "updated_at": now,
                "expires_at": expires_at,
                "is_latest": True,
                "enrich": "done",
            }
            ids = [memory_id]
            texts = [text]
            attrs = {"source_id": source_id, "last_event": "ADD" if old is None else "UPDATE"}
            metas = [
                {
                    **common,
                    "kind": "raw",
                    "seq": seq,
                    "version": version,
                    "indexed": index and len(chunks) == 1,
                    "attrs": json.dumps(attrs),
                    **({"caller_id": caller_id} if caller_id is not None else {}),
                }
            ]
            if len(chunks) > 1:
                for i, chunk in enumerate(chunks):
                    ids.append(f"{memory_id}#c{i}")
                    texts.append(chunk)
                    metas.append(
                        {
                            **common,
                            "kind": "chunk",
                            "seq": seq + 1 + i,
                            "version": 1,
                            "indexed": True,
                            "parent_id": memory_id,
                            "source_ids": json.dumps([memory_id]),
                            "attrs": json.dumps({"chunk_index": i, "source_id": source_id}),
                        }
                    )
            for i, fact in enumerate(inferred):
                ids.append(f"{memory_id}#f{i}")
                texts.append(fact)
                metas.append(
                    {
                        **common,
                        "kind": "fact",
                        "seq": seq + 1 + len(chunks) + i,
                        "version": 1,
                        "indexed": index,
                        "parent_id": memory_id,
                        "source_ids": json.dumps([memory_id]),
                        "attrs": json.dumps({"origin": "inferred", "source_id": source_id}),
                    }
                )
            if not index:
                # Chroma needs a vector; an unindexed memory is never searched, so any will do.
                embeddings = [[1.0] + [0.0] * (self.embedder.dimension - 1) for _ in texts]
            else:
                embeddings = await self.embed(texts[1:] if len(chunks) > 1 else texts)
            if index and len(chunks) > 1:
                # The long parent is not searched itself (its chunks are); reuse chunk 0's vector.
                embeddings = [embeddings[0], *embeddings]
            await self.write_records(tenant_id, ids, texts, metas, embeddings)
        return AddResult(
            memory_id=echo,
            record_id=memory_id,
            source_id=source_id,
            chunks_created=len(chunks) + len(inferred),
            original_chunks=len(chunks),
            inferred_chunks=len(inferred),
        )
