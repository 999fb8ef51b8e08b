"""``/v1/memories``: add (enriched inline), search (flat | context), list, get, patch, delete."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import APIRouter

from ...errors import JobError, ValidationError
from ...models import HistoryEntry
from ...models import MemoryItem as EngineItem
from ...ops.writes import PASSIVE_STATUS
from .. import adapters
from ..deps import Caller, Engine
from ..errors import ERROR_RESPONSES
from ..settings import DEFAULT_SESSION
from ..shapes import (
    FlushResult,
    MemoryAddRequest,
    MemoryAddResponse,
    MemoryDeleteResponse,
    MemoryItem,
    MemoryListRequest,
    MemoryListResponse,
    MemorySearchRequest,
    MemorySearchResponse,
    MemoryUpdateRequest,
)
from .ingestion import check_write_options

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/memories", tags=["memories"], responses=ERROR_RESPONSES)

ENRICH_TIMEOUT = 60.0
"""Seconds ``add`` waits for its enrichment job before answering with what is stored."""

_TYPES = {
    "fact": ["fact"],
    "episode": ["episode"],
    "artifact": ["raw", "chunk"],
    "raw": ["raw"],
    "chunk": ["chunk"],
    "turn": ["turn"],
    "message": ["turn"],
}
_SCOPE_KEYS = ("user_id", "agent_id", "conv_id", "session_id", "sub_tenant_id", "type", "kind")


def split_filters(
    filters: dict[str, Any] | None,
) -> tuple[dict[str, Any], list[str] | None, dict[str, Any] | None]:
    """Scope keys (``user_id``, ``agent_id``, ``conv_id``, ``type``...) out of an API filter.

    Returns ``(scope kwargs, kinds, remaining engine filter)``.

    Raises:
        ValidationError: a scope key with a non-string value or an unknown ``type``.
    """
    rest = dict(filters or {})
    scope: dict[str, Any] = {}
    kinds: list[str] | None = None
    for key in _SCOPE_KEYS:
        if key not in rest:
            continue
        value = rest.pop(key)
        if key in ("type", "kind"):
            values = value.get("$in") if isinstance(value, dict) else [value]
            if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
                raise ValidationError(f"filters.{key}", "must be a type name or {'$in': [names]}")
            unknown = [v for v in values if v not in _TYPES]
            if unknown:
                raise ValidationError(
                    f"filters.{key}", f"unknown type {unknown[0]!r}; one of {sorted(_TYPES)}"
                )
            kinds = sorted({k for v in values for k in _TYPES[v]})
            continue
        if not isinstance(value, str) or not value.strip():
            raise ValidationError(f"filters.{key}", "must be a non-empty string")
        scope["session_id" if key == "conv_id" else key] = value
    return scope, kinds, rest or None


async def _all(engine: Engine, **kwargs: Any) -> list[EngineItem]:
    out: list[EngineItem] = []
    page = 1
    while True:
        got = await engine.list(page=page, page_size=1000, **kwargs)
        out.extend(got.results)
        if got.next is None:
            return out
        page = got.next


async def _open_episodes(engine: Engine, tenant: str, session: str) -> set[str]:
    eps = await _all(engine, tenant_id=tenant, session_id=session, kinds=["episode"])
    return {e.id for e in eps if e.attributes.get("open")}


@router.post("/add/", response_model=MemoryAddResponse)
async def add(body: MemoryAddRequest, caller: Caller, engine: Engine) -> MemoryAddResponse:
    """Store messages and return what was extracted from them, inline.

    The call waits for the enrichment of its turns (``infer`` true, the default), so
    ``stored_facts``, ``superseded_fact_ids`` (``[old, new]``), ``consolidation_id_mapping``
    (a restated fact's would-be id -> the stored fact it was merged into) and
    ``flush_result.episodes`` (episodes this write closed, by the gap/size/topic rule or
    ``flush_hint="force"``) are complete. ``mode="import"`` is a backfill: the messages keep
    their own dates, supersession follows those dates whatever the write order, and no
    episode is closed except by ``flush_after`` / ``flush_hint="force"``.
    ``config_overrides`` may set ``write_active`` / ``write_passive`` (see
    ``POST /ingestion/memory``).
    """
    tenant = caller.tenant()
    overrides = body.config_overrides or {}
    write_active = overrides.get("write_active", True)
    write_passive = overrides.get("write_passive", True)
    check_write_options(write_active, write_passive, engine.enricher is not None, field="config_overrides")
    session = body.conv_id or caller.session_id or DEFAULT_SESSION
    user = body.user_id or caller.user_id
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    enriching = engine.enricher is not None and write_passive and body.infer
    before = await _open_episodes(engine, tenant, session) if enriching else set()
    turns = [
        {
            "role": msg.role,
            "text": msg.content,
            "timestamp": msg.date,
            "metadata": {"dia_id": msg.dia_id} if msg.dia_id else {},
        }
        for msg in body.messages
    ]
    res = await engine.remember(
        turns,
        session_id=session,
        user_id=user,
        agent_id=body.agent_id,
        tenant_id=tenant,
        metadata=body.metadata or {},
        mode=body.mode,
        write_active=write_active,
        write_passive=write_passive,
    )
    turn_ids = res.active_ids or res.passive_ids
    timings["write_ms"] = (time.perf_counter() - t0) * 1000
    status, message = "completed", f"stored {res.created} new turn(s), {res.duplicates} already stored"
    mapping: dict[str, str] = {}
    if res.passive_job_id and enriching:
        t1 = time.perf_counter()
        job = await engine.wait(res.passive_job_id, ENRICH_TIMEOUT, tenant_id=tenant)
        timings["enrich_ms"] = (time.perf_counter() - t1) * 1000
        mapping = job.consolidation_id_mapping
        if job.status == "failed":
            status, message = "partial", f"turns stored; enrichment failed: {job.error}"
        elif job.status != "done":
            status, message = "processing", f"turns stored; enrichment still running (job {job.job_id})"
    elif res.passive_job_id:
        status, message = (
            "accepted",
            f"turns stored; enrichment runs in the background (job {res.passive_job_id})",
        )
    elif not write_passive:
        message += "; not enriched (write_passive=false)"
    flushed: list[EngineItem] = []
    if enriching and status == "completed":
        if body.flush_after or body.flush_hint == "force":
            try:
                closed = await engine.end_session(session, tenant_id=tenant, user_id=user)
            except JobError:
                closed = None
            if closed is not None:
                flushed.append(closed)
        now_open = await _open_episodes(engine, tenant, session)
        gone = (before - now_open) - {e.id for e in flushed}
        if gone:
            flushed.extend(await engine.get_many(sorted(gone), tenant_id=tenant))
    facts = (
        await _all(engine, tenant_id=tenant, kinds=["fact"], filters={"parent_id": {"$in": turn_ids}})
        if turn_ids
        else []
    )
    superseded = [[f.supersedes, f.id] for f in facts if f.supersedes]
    if body.mode == "import" and facts:
        # An older fact imported late is superseded by a stored newer one: report that pair too.
        later = await _all(
            engine, tenant_id=tenant, kinds=["fact"], filters={"supersedes": {"$in": [f.id for f in facts]}}
        )
        superseded.extend([f.supersedes, f.id] for f in later if [f.supersedes, f.id] not in superseded)
    stored = await engine.get_many(turn_ids, tenant_id=tenant) if turn_ids else []
    roles = {t.id: t.role for t in stored}
    timings["total_ms"] = (time.perf_counter() - t0) * 1000
    return MemoryAddResponse(
        consolidation_id_mapping=mapping,
        flush_result=FlushResult(episodes=[adapters.episode(e) for e in flushed]) if flushed else None,
        message=message,
        mode=body.mode,
        results=[adapters.memory_item(i) for i in [*(stored if res.active_ids else []), *facts]],
        stage_timings=timings,
        status=status,
        stored_facts=[adapters.fact(f, source_role=roles.get(f.parent_id or "")) for f in facts],
        superseded_fact_ids=superseded,
    )


def _used_in_context(item: EngineItem, context: str) -> bool:
    probe = item.text.strip()[:80]
    return bool(probe) and probe in context


@router.post("/search/", response_model=MemorySearchResponse)
async def search(body: MemorySearchRequest, caller: Caller, engine: Engine) -> MemorySearchResponse:
    """Rank memories for ``query``; ``mode="context"`` also packs a ``char_budget`` string."""
    tenant = caller.tenant()
    scope, kinds, rest = split_filters(body.filters)
    if body.conv_id:
        scope["session_id"] = body.conv_id
    t0 = time.perf_counter()
    res = await engine.search(
        body.query,
        tenant_id=tenant,
        k=body.top_k,
        filters=rest,
        kinds=kinds,
        mode=body.mode,
        char_budget=body.char_budget,
        **scope,
    )
    excluded = set(body.exclude_artifact_ids or [])
    hits = [h for h in res.results if h.id not in excluded]
    if body.threshold is not None:
        hits = [
            h
            for h in hits
            if h.score_parts is None or h.score_parts.cosine is None or h.score_parts.cosine >= body.threshold
        ]
    retrieved = [h for h in hits if h.kind in adapters.ARTIFACT_KINDS]
    descriptors: dict[str, list[str]] = {}
    if retrieved:
        roots = sorted({h.parent_id if h.kind == "chunk" and h.parent_id else h.id for h in retrieved})
        for f in await _all(engine, tenant_id=tenant, kinds=["fact"], filters={"parent_id": {"$in": roots}}):
            descriptors.setdefault(f.parent_id or "", []).append(f.id)

    def art(h: EngineItem) -> Any:
        root = h.parent_id if h.kind == "chunk" and h.parent_id else h.id
        return adapters.artifact(h, descriptors.get(root))

    context = res.context or "" if body.mode == "context" else ""
    timings = dict(res.stage_timings)
    timings["total_ms"] = (time.perf_counter() - t0) * 1000
    return MemorySearchResponse(
        all_retrieved_artifacts=[art(h) for h in retrieved],
        artifacts=[art(h) for h in retrieved if _used_in_context(h, context)]
        if body.mode == "context"
        else [],
        context=context,
        episodes=[adapters.episode(e) for e in res.episodes] if body.mode == "context" else [],
        facts=[adapters.fact(f) for f in res.facts],
        mode=body.mode,
        results=[adapters.memory_item(h) for h in hits],
        stage_timings=timings,
    )


@router.post("/", response_model=MemoryListResponse)
async def list_memories(body: MemoryListRequest, caller: Caller, engine: Engine) -> MemoryListResponse:
    """Memories in write order, one page at a time (not turns stored with ``write_active=false``)."""
    tenant = caller.tenant()
    scope, kinds, rest = split_filters(body.filters)
    # Turns stored with write_active=false are enrichment input, not memories: never listed here.
    active = {"status": {"$ne": PASSIVE_STATUS}}
    filters = {"$and": [rest, active]} if rest else active
    page = await engine.list(filters, body.page, body.page_size, tenant_id=tenant, kinds=kinds, **scope)
    return MemoryListResponse(
        count=page.count,
        next=page.next,
        previous=page.previous,
        results=[adapters.memory_item(i) for i in page.results],
    )


@router.get("/{memory_id}/", response_model=MemoryItem)
async def get_memory(memory_id: str, caller: Caller, engine: Engine) -> MemoryItem:
    """One memory of the caller's tenant (another tenant's id is 404)."""
    return adapters.memory_item(await engine.get(memory_id, tenant_id=caller.tenant()))


@router.patch("/{memory_id}/", response_model=MemoryItem)
async def patch_memory(
    memory_id: str, body: MemoryUpdateRequest, caller: Caller, engine: Engine
) -> MemoryItem:
    """New text (re-embedded) and/or metadata (merged); the old version goes to history."""
    item = await engine.update(memory_id, text=body.text, metadata=body.metadata, tenant_id=caller.tenant())
    return adapters.memory_item(item)


@router.delete("/{memory_id}/", response_model=MemoryDeleteResponse)
async def delete_memory(memory_id: str, caller: Caller, engine: Engine) -> MemoryDeleteResponse:
    """Delete a memory and what was derived from it."""
    await engine.delete(memory_id, tenant_id=caller.tenant())
    return MemoryDeleteResponse(id=memory_id)


@router.get("/{memory_id}/history/", response_model=list[HistoryEntry])
async def memory_history(memory_id: str, caller: Caller, engine: Engine) -> list[HistoryEntry]:
    """Every version of a memory (ADD, UPDATE, SUPERSEDE, DELETE)."""
    tenant = caller.tenant()
    history = await engine.history(memory_id, tenant_id=tenant)
    if not history:
        await engine.get(memory_id, tenant_id=tenant)  # 404 for an id this tenant never had
    return history
