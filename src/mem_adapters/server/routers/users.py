"""Tenants (admin), users, sessions, transcripts, a user's facts and episodes, and erase."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Query

from ... import transfer
from ...models import EraseReceipt
from ...records import from_epoch
from .. import adapters
from ..deps import Caller, Engine, page_numbers
from ..errors import ERROR_RESPONSES
from ..shapes import (
    EpisodePage,
    FactPage,
    SessionPage,
    SessionSummary,
    TenantList,
    TranscriptPage,
    TranscriptTurn,
    UserPage,
    UserSummary,
)

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["users"], responses=ERROR_RESPONSES)

PageQ = Annotated[int, Query(ge=1, le=1_000_000)]
SizeQ = Annotated[int, Query(ge=1, le=1000)]


@router.get("/tenants", response_model=TenantList)
async def tenants(caller: Caller, engine: Engine) -> TenantList:
    """Every tenant of the store; needs ``role: admin``."""
    caller.require_admin()
    return TenantList(tenants=sorted(await engine.tenants()))


@router.get("/users", response_model=UserPage)
async def users(caller: Caller, engine: Engine, page: PageQ = 1, page_size: SizeQ = 50) -> UserPage:
    """Users of the caller's tenant with their counts (``user_id`` null: records without one)."""
    stats = await transfer.tenant_stats(engine, caller.tenant())
    rows = sorted((stats.users if stats else {}).items())
    chunk = rows[(page - 1) * page_size : page * page_size]
    nxt, prev = page_numbers(page, page_size, len(rows))
    return UserPage(
        count=len(rows),
        next=nxt,
        previous=prev,
        results=[
            UserSummary(
                user_id=u or None,
                turns=c["turns"],
                memories=c["memories"],
                sessions=c["sessions"],
                first_at=from_epoch(c["first"]),
                last_at=from_epoch(c["last"]),
            )
            for u, c in chunk
        ],
    )


async def _sessions(engine: Engine, tenant: str, user: str | None, page: int, size: int) -> SessionPage:
    ids = await engine.list_sessions(tenant_id=tenant, user_id=user)
    chunk = ids[(page - 1) * size : page * size]
    nxt, prev = page_numbers(page, size, len(ids))
    results = [
        SessionSummary(session_id=s, turns=await engine.count_turns(s, tenant_id=tenant)) for s in chunk
    ]
    return SessionPage(count=len(ids), next=nxt, previous=prev, results=results)


@router.get("/sessions", response_model=SessionPage)
async def all_sessions(caller: Caller, engine: Engine, page: PageQ = 1, page_size: SizeQ = 50) -> SessionPage:
    """Sessions of the caller's tenant, by their first turn."""
    return await _sessions(engine, caller.tenant(), None, page, page_size)


@router.get("/users/{user_id}/sessions", response_model=SessionPage)
async def user_sessions(
    user_id: str, caller: Caller, engine: Engine, page: PageQ = 1, page_size: SizeQ = 50
) -> SessionPage:
    """A user's sessions, by their first turn."""
    return await _sessions(engine, caller.tenant(), user_id, page, page_size)


@router.get("/sessions/{session_id}/messages", response_model=TranscriptPage)
async def transcript(
    session_id: str,
    caller: Caller,
    engine: Engine,
    user_id: str | None = None,
    page: PageQ = 1,
    page_size: SizeQ = 100,
) -> TranscriptPage:
    """A session's turns in exact order, with roles, timestamps and metadata."""
    tenant = caller.tenant()
    turns = await engine.get_messages(session_id, tenant_id=tenant, user_id=user_id)
    chunk = turns[(page - 1) * page_size : page * page_size]
    nxt, prev = page_numbers(page, page_size, len(turns))
    return TranscriptPage(
        session_id=session_id,
        count=len(turns),
        next=nxt,
        previous=prev,
        results=[
            TranscriptTurn(
                id=t.id,
                role=t.role,
                text=t.text,
                timestamp=t.timestamp,
                seq=t.seq,
                status=t.status,
                user_id=t.user_id,
                sub_session_id=t.sub_session_id,
                metadata=t.metadata,
            )
            for t in chunk
        ],
    )


@router.get("/users/{user_id}/facts", response_model=FactPage)
async def user_facts(
    user_id: str,
    caller: Caller,
    engine: Engine,
    latest_only: bool = False,
    page: PageQ = 1,
    page_size: SizeQ = 50,
) -> FactPage:
    """A user's facts in write order (``latest_only``: current ones only)."""
    filters = {"is_latest": True} if latest_only else None
    got = await engine.list(
        filters, page, page_size, tenant_id=caller.tenant(), user_id=user_id, kinds=["fact"]
    )
    return FactPage(
        count=got.count, next=got.next, previous=got.previous, results=[adapters.fact(f) for f in got.results]
    )


@router.get("/users/{user_id}/episodes", response_model=EpisodePage)
async def user_episodes(
    user_id: str, caller: Caller, engine: Engine, page: PageQ = 1, page_size: SizeQ = 50
) -> EpisodePage:
    """A user's episodes in write order."""
    got = await engine.list(
        None, page, page_size, tenant_id=caller.tenant(), user_id=user_id, kinds=["episode"]
    )
    return EpisodePage(
        count=got.count,
        next=got.next,
        previous=got.previous,
        results=[adapters.episode(e) for e in got.results],
    )


@router.delete("/users/{user_id}", response_model=EraseReceipt)
async def erase_user(user_id: str, caller: Caller, engine: Engine) -> EraseReceipt:
    """Erase everything of a user in the caller's tenant; answers with the receipt."""
    return await engine.erase(tenant_id=caller.tenant(), user_id=user_id)
