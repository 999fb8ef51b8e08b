"""``/v1/engine/...``: the engine's own models over HTTP (what the Python client and the inspector use).

The hosted APIs' shapes drop fields the engine has (``kind``, ``role``, ``timestamp``,
``score_parts``...). These routes take the engine's arguments and answer with its models
(:class:`~mem_adapters.models.WriteResult`, :class:`~mem_adapters.models.SearchResult`,
:class:`~mem_adapters.models.Page`, :class:`~mem_adapters.models.MemoryItem`), always inside
the credential's tenant.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from ...models import MemoryItem, Page, SearchResult, Turn, WriteMode, WriteResult
from ..deps import Caller, Engine
from ..errors import ERROR_RESPONSES, ApiError
from ..settings import DEFAULT_SESSION

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/engine", tags=["engine"], responses=ERROR_RESPONSES)

KindName = Literal["turn", "fact", "episode", "raw", "chunk"]


class EngineMemoryItem(MemoryItem):
    """:class:`mem_adapters.models.MemoryItem`, every engine field (not the API's ``MemoryItem``)."""


class EnginePage(Page):
    """:class:`mem_adapters.models.Page`."""

    results: list[EngineMemoryItem]


class EngineSearchResult(SearchResult):
    """:class:`mem_adapters.models.SearchResult`, with score parts."""

    results: list[EngineMemoryItem]
    facts: list[EngineMemoryItem] = Field(default_factory=list)
    episodes: list[EngineMemoryItem] = Field(default_factory=list)


class _Scoped(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: str | None = Field(default=None, description="Must be the credential's tenant if given.")
    sub_tenant_id: str | None = None
    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None


class RememberRequest(_Scoped):
    """Arguments of :meth:`~mem_adapters.MemoryEngine.remember`."""

    turns: list[Turn] = Field(min_length=1, max_length=1000)
    sub_session_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    status: Literal["active", "archived"] = "active"
    mode: WriteMode = Field(
        default="chat", description="import: a backfill (supersession by event time, no auto episode close)."
    )
    write_active: StrictBool = Field(
        default=True, description="false: enrichment input only (status passive, never listed or searched)."
    )
    write_passive: StrictBool = Field(default=True, description="false: stored, never enriched.")


class SearchRequest(_Scoped):
    """Arguments of :meth:`~mem_adapters.MemoryEngine.search`."""

    query: str = Field(min_length=1, max_length=10_000)
    k: int = Field(default=10, ge=1, le=200)
    filters: dict[str, Any] | None = None
    kinds: list[KindName] | None = Field(default=None, min_length=1)
    time_range: tuple[datetime | None, datetime | None] | None = None
    mode: Literal["flat", "context"] = "flat"
    char_budget: int | None = Field(default=None, ge=1, le=1_000_000)
    as_of: datetime | None = None


class ListRequest(_Scoped):
    """Arguments of :meth:`~mem_adapters.MemoryEngine.list`."""

    filters: dict[str, Any] | None = None
    page: int = Field(default=1, ge=1, le=1_000_000)
    page_size: int = Field(default=50, ge=1, le=1000)
    kinds: list[KindName] | None = Field(default=None, min_length=1)


class UpdateRequest(BaseModel):
    """Arguments of :meth:`~mem_adapters.MemoryEngine.update`."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, min_length=1, max_length=200_000)
    metadata: dict[str, Any] | None = None


def _scope(body: _Scoped) -> dict[str, Any]:
    return {k: getattr(body, k) for k in ("sub_tenant_id", "user_id", "agent_id", "session_id")}


@router.post("/remember", response_model=WriteResult)
async def remember(body: RememberRequest, caller: Caller, engine: Engine) -> WriteResult:
    """Write turns (the session defaults to the token's, else ``"default-session"``).

    ``mode``, ``write_active`` and ``write_passive`` are the engine's (see ``remember``): both
    write options false is a 422, and so is ``write_active=false`` on a server that does not
    enrich (``--no-enrich``: the turns would be stored for nothing), as on ``/ingestion/memory``.
    """
    if not body.write_active and body.write_passive and engine.enricher is None:
        raise ApiError(
            422,
            "unsupported_option",
            "write_active=false needs enrichment, and this server does not enrich (--no-enrich)",
            field="write_active",
        )
    tenant = caller.tenant(body.tenant_id)
    scope = _scope(body)
    scope["session_id"] = scope["session_id"] or caller.session_id or DEFAULT_SESSION
    scope["user_id"] = scope["user_id"] or caller.user_id
    return await engine.remember(
        body.turns,
        tenant_id=tenant,
        sub_session_id=body.sub_session_id,
        metadata=body.metadata,
        status=body.status,
        mode=body.mode,
        write_active=body.write_active,
        write_passive=body.write_passive,
        **scope,
    )


@router.post("/search", response_model=EngineSearchResult)
async def search(body: SearchRequest, caller: Caller, engine: Engine) -> Response:
    """Ranked memories with their score parts (and the context string in context mode).

    The hot path: the engine's result is serialised once, as it is (the declared
    ``response_model`` documents it; FastAPI's re-validation of it is skipped).
    """
    result = await engine.search(
        body.query,
        tenant_id=caller.tenant(body.tenant_id),
        k=body.k,
        filters=body.filters,
        kinds=body.kinds,
        time_range=body.time_range,
        mode=body.mode,
        char_budget=body.char_budget,
        as_of=body.as_of,
        **_scope(body),
    )
    return Response(result.model_dump_json(), media_type="application/json")


@router.post("/list", response_model=EnginePage)
async def list_memories(body: ListRequest, caller: Caller, engine: Engine) -> Page:
    """One page of memories in write order."""
    return await engine.list(
        body.filters,
        body.page,
        body.page_size,
        tenant_id=caller.tenant(body.tenant_id),
        kinds=body.kinds,
        **_scope(body),
    )


@router.get("/memories/{memory_id}", response_model=EngineMemoryItem)
async def get_memory(memory_id: str, caller: Caller, engine: Engine) -> MemoryItem:
    """One memory with every engine field."""
    return await engine.get(memory_id, tenant_id=caller.tenant())


@router.patch("/memories/{memory_id}", response_model=EngineMemoryItem)
async def update_memory(memory_id: str, body: UpdateRequest, caller: Caller, engine: Engine) -> MemoryItem:
    """New text and/or merged metadata."""
    return await engine.update(memory_id, text=body.text, metadata=body.metadata, tenant_id=caller.tenant())


@router.get("/sessions/{session_id}/messages", response_model=list[EngineMemoryItem])
async def get_messages(
    session_id: str,
    caller: Caller,
    engine: Engine,
    user_id: str | None = None,
    status: Literal["active", "archived"] | None = None,
    limit: int | None = None,
    last: bool = False,
) -> list[MemoryItem]:
    """A session's turns in exact order."""
    if limit is not None and limit < 0:
        limit = 0
    return await engine.get_messages(
        session_id, tenant_id=caller.tenant(), user_id=user_id, status=status, limit=limit, last=last
    )


@router.get("/sessions", response_model=list[str])
async def list_sessions(caller: Caller, engine: Engine, user_id: str | None = None) -> list[str]:
    """Session ids by their first turn."""
    return await engine.list_sessions(tenant_id=caller.tenant(), user_id=user_id)
