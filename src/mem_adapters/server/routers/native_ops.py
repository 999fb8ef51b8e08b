"""More ``/v1/engine/...`` routes: the engine operations the framework adapters use.

The LangChain and LlamaIndex adapters drive the engine's own methods; over the service they
go through :class:`~mem_adapters.client.MemoryClient`, which reaches these routes:
``get_many``, ``delete_many``, ``touch``, ``set_status``, ``clear_session``, ``count_turns``,
``add`` with every engine argument (``index``, ``agent_id``, ``session_id``), and the
service's embedder (``embed``, ``embed_query``). Each acts inside the credential's tenant; a
``tenant_id`` given must be that tenant (403 ``tenant_mismatch``).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from ... import records
from ...models import AddResult, MemoryItem
from ..deps import Caller, Engine
from ..errors import ERROR_RESPONSES
from .native import EngineMemoryItem

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/engine", tags=["engine"], responses=ERROR_RESPONSES)

MAX_IDS = 1000
"""Ids per call (the adapters send a page of ids at a time)."""
MAX_EMBED_TEXTS = 256
"""Texts per ``/v1/engine/embed`` call."""

IdList = list[str]


class _Tenant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: str | None = Field(default=None, description="Must be the credential's tenant if given.")


class IdsRequest(_Tenant):
    """Ids of memories (``get_many``, ``delete_many``)."""

    ids: IdList = Field(min_length=1, max_length=MAX_IDS)


class TouchRequest(IdsRequest):
    """Arguments of :meth:`~mem_adapters.MemoryEngine.touch`."""

    expiry_seconds: float = Field(gt=0, description="New expiry, seconds from now.")


class StatusRequest(IdsRequest):
    """Arguments of :meth:`~mem_adapters.MemoryEngine.set_status`."""

    status: Literal["active", "archived"]


class Pair(BaseModel):
    """One user/assistant exchange."""

    model_config = ConfigDict(extra="forbid")

    user: str = ""
    assistant: str = ""


class AddRequest(_Tenant):
    """Arguments of :meth:`~mem_adapters.MemoryEngine.add` (``raw_text`` or ``pairs``)."""

    raw_text: str | None = None
    pairs: list[Pair] | None = Field(default=None, max_length=1000)
    sub_tenant_id: str | None = None
    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    memory_id: str | None = None
    expiry_seconds: float | None = Field(default=None, gt=0)
    infer: bool = False
    custom_instructions: str | None = None
    user_name: str | None = None
    metadata: dict[str, Any] | None = None
    index: bool = True


class EmbedRequest(BaseModel):
    """Texts for the service's embedder."""

    model_config = ConfigDict(extra="forbid")

    texts: list[str] = Field(min_length=1, max_length=MAX_EMBED_TEXTS)


class EmbedQueryRequest(BaseModel):
    """A query for the service's embedder."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=10_000)


class Cleared(BaseModel):
    """How many records :meth:`~mem_adapters.MemoryEngine.clear_session` deleted."""

    deleted: int


@router.post("/memories/get-many", response_model=list[EngineMemoryItem])
async def get_many(body: IdsRequest, caller: Caller, engine: Engine) -> list[MemoryItem]:
    """Memories by id, in the given order; unknown ids are skipped."""
    return await engine.get_many(body.ids, tenant_id=caller.tenant(body.tenant_id))


@router.post("/memories/delete-many", response_model=list[str])
async def delete_many(body: IdsRequest, caller: Caller, engine: Engine) -> list[str]:
    """Delete memories and what was derived from them; unknown ids are skipped; returns the ids deleted."""
    return await engine.delete_many(body.ids, tenant_id=caller.tenant(body.tenant_id))


@router.post("/memories/touch", response_model=list[str])
async def touch(body: TouchRequest, caller: Caller, engine: Engine) -> list[str]:
    """Move the expiry of live memories to ``expiry_seconds`` from now; returns the ids touched."""
    return await engine.touch(body.ids, body.expiry_seconds, tenant_id=caller.tenant(body.tenant_id))


@router.post("/memories/status", response_model=list[str])
async def set_status(body: StatusRequest, caller: Caller, engine: Engine) -> list[str]:
    """Set the status of turns; returns the ids changed."""
    return await engine.set_status(body.ids, body.status, tenant_id=caller.tenant(body.tenant_id))


@router.post("/add", response_model=AddResult)
async def add(body: AddRequest, caller: Caller, engine: Engine) -> AddResult:
    """Store raw text or pairs with every engine argument.

    An identical retry (same ``memory_id``, text, metadata and scope) writes nothing and
    answers as the first call did.

    Raises:
        ValidationError: both or neither of ``raw_text``/``pairs`` (422).
    """
    tenant = caller.tenant(body.tenant_id)
    user = body.user_id or caller.user_id
    pairs = [p.model_dump() for p in body.pairs] if body.pairs is not None else None
    if body.memory_id is not None and body.raw_text is not None:
        same = await _unchanged(engine, tenant, body, user)
        if same is not None:
            return same
    return await engine.add(
        raw_text=body.raw_text,
        pairs=pairs,
        tenant_id=tenant,
        sub_tenant_id=body.sub_tenant_id,
        user_id=user,
        agent_id=body.agent_id,
        session_id=body.session_id,
        memory_id=body.memory_id,
        expiry_seconds=body.expiry_seconds,
        infer=body.infer,
        custom_instructions=body.custom_instructions,
        user_name=body.user_name,
        metadata=body.metadata,
        index=body.index,
    )


async def _unchanged(engine: Engine, tenant: str, body: AddRequest, user: str | None) -> AddResult | None:
    """The result of the earlier write when ``memory_id`` already holds exactly this memory."""
    assert body.memory_id is not None
    # A caller's memory_id may be stored under an id scoped to its user (records.raw_id).
    scoped = getattr(records, "raw_id", None)
    ids = [scoped(tenant, body.sub_tenant_id, user, body.memory_id)] if scoped is not None else []
    found = await engine.get_many([*ids, body.memory_id], tenant_id=tenant)
    if not found:
        return None
    old = found[0]
    stored = (old.kind, old.text, old.metadata, old.user_id, old.agent_id, old.session_id, old.sub_tenant_id)
    wanted = (
        "raw",
        body.raw_text,
        body.metadata or {},
        user,
        body.agent_id,
        body.session_id,
        body.sub_tenant_id,
    )
    if stored != wanted:
        return None
    children = await engine.list(
        tenant_id=tenant, filters={"parent_id": old.id}, page_size=1000, kinds=["chunk", "fact"]
    )
    chunks = sum(1 for c in children.results if c.kind == "chunk") or 1
    inferred = sum(1 for c in children.results if c.kind == "fact")
    return AddResult(
        memory_id=body.memory_id,
        record_id=old.id,
        source_id=str(old.attributes.get("source_id", "")),
        chunks_created=chunks + inferred,
        original_chunks=chunks,
        inferred_chunks=inferred,
    )


@router.delete("/sessions/{session_id}", response_model=Cleared)
async def clear_session(
    session_id: str, caller: Caller, engine: Engine, user_id: str | None = None, tenant_id: str | None = None
) -> Cleared:
    """Delete a session's turns (with ``user_id``: only that user's), what they fed, and their history."""
    deleted = await engine.clear_session(session_id, tenant_id=caller.tenant(tenant_id), user_id=user_id)
    return Cleared(deleted=deleted)


@router.get("/sessions/{session_id}/count", response_model=int)
async def count_turns(
    session_id: str,
    caller: Caller,
    engine: Engine,
    status: Literal["active", "archived"] | None = None,
    tenant_id: str | None = None,
) -> int:
    """Number of turns in a session (optionally of one status)."""
    return await engine.count_turns(session_id, tenant_id=caller.tenant(tenant_id), status=status)


@router.post("/embed", response_model=list[list[float]])
async def embed(body: EmbedRequest, caller: Caller, engine: Engine) -> list[list[float]]:
    """The service embedder's document vectors (what the store's search compares)."""
    caller.tenant()
    return await engine.embed(body.texts)


@router.post("/embed-query", response_model=list[float])
async def embed_query(body: EmbedQueryRequest, caller: Caller, engine: Engine) -> list[float]:
    """The service embedder's query vector."""
    caller.tenant()
    return await engine.embed_query(body.text)
