"""``POST /memories/add-memories`` (and ``/user_memory/add_user_memory``): raw text or pairs."""

from __future__ import annotations

import logging

from fastapi import APIRouter

from ...errors import NotFoundError
from ..deps import Caller, Engine
from ..errors import ERROR_RESPONSES
from ..shapes import AddMemoriesRequest, AddMemoriesResponse

logger = logging.getLogger(__name__)

router = APIRouter(tags=["user memory"], responses=ERROR_RESPONSES)


async def add_memory(body: AddMemoriesRequest, caller: Caller, engine: Engine) -> AddMemoriesResponse:
    """Store one memory; ``raw_text`` wins over pairs; ``expiry_time`` 0/null never expires.

    Sub-tenants need no set-up: they exist once written, inside the credential's tenant.
    Re-sending a request with the same ``memory_id`` and content writes nothing new.
    """
    tenant = caller.tenant(body.tenant_id, "tenant_id")
    use_text = body.raw_text is not None and body.raw_text.strip() != ""
    pairs = None if use_text else [p.model_dump() for p in body.user_assistant_pairs or []]
    pairs = [p for p in pairs or [] if p["user"].strip() or p["assistant"].strip()] or None
    user = body.user_id or caller.user_id
    if body.memory_id is not None:  # an identical retry is a no-op, not a new version
        same = await _unchanged(
            engine,
            tenant,
            body,
            user,
            body.raw_text if use_text else _pairs_text(pairs or [], body.user_name),
        )
        if same is not None:
            return same
    result = await engine.add(
        raw_text=body.raw_text if use_text else None,
        pairs=pairs,
        tenant_id=tenant,
        sub_tenant_id=body.sub_tenant_id,
        user_id=user,
        memory_id=body.memory_id,
        expiry_seconds=body.expiry_time or None,
        infer=body.infer,
        custom_instructions=body.custom_instructions,
        user_name=body.user_name,
        metadata=body.metadata,
    )
    return AddMemoriesResponse(
        memory_id=result.memory_id,
        source_id=result.source_id,
        chunks_created=result.chunks_created,
        original_chunks=result.original_chunks,
        inferred_chunks=result.inferred_chunks,
    )


def _pairs_text(pairs: list[dict[str, str]], user_name: str | None) -> str:
    """The text the engine stores for pairs (one ``speaker: text`` line per non-empty side)."""
    lines = []
    for p in pairs:
        if p["user"].strip():
            lines.append(f"{user_name or 'user'}: {p['user']}")
        if p["assistant"].strip():
            lines.append(f"assistant: {p['assistant']}")
    return "\n".join(lines)


async def _unchanged(
    engine: Engine, tenant: str, body: AddMemoriesRequest, user: str | None, text: str
) -> AddMemoriesResponse | None:
    """The stored result when ``memory_id`` already holds exactly this memory, else ``None``."""
    try:
        old = await engine.get(
            body.memory_id, tenant_id=tenant, user_id=user, sub_tenant_id=body.sub_tenant_id
        )
    except NotFoundError:
        return None
    if (old.kind, old.text, old.metadata, old.user_id, old.sub_tenant_id) != (
        "raw",
        text,
        body.metadata,
        user,
        body.sub_tenant_id,
    ):
        return None
    children = await engine.list(
        tenant_id=tenant, filters={"parent_id": old.id}, page_size=1000, kinds=["chunk", "fact"]
    )
    chunks = sum(1 for c in children.results if c.kind == "chunk") or 1
    inferred = sum(1 for c in children.results if c.kind == "fact")
    return AddMemoriesResponse(
        memory_id=body.memory_id,  # the caller's id, as the first answer gave it
        source_id=str(old.attributes.get("source_id", "")),
        chunks_created=chunks + inferred,
        original_chunks=chunks,
        inferred_chunks=inferred,
    )


router.add_api_route(
    "/memories/add-memories", add_memory, methods=["POST"], response_model=AddMemoriesResponse
)
router.add_api_route(
    "/user_memory/add_user_memory",
    add_memory,
    methods=["POST"],
    response_model=AddMemoriesResponse,
    operation_id="add_user_memory",
)
