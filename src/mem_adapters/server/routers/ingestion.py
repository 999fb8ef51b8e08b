"""``POST /ingestion/memory``: a batch of turns, searchable when the call returns."""

from __future__ import annotations

import logging

from fastapi import APIRouter

from ..adapters import turn_observations
from ..deps import Caller, Engine
from ..errors import ERROR_RESPONSES, ApiError
from ..settings import DEFAULT_SESSION
from ..shapes import IngestionRequest, IngestionResponse

logger = logging.getLogger(__name__)

router = APIRouter(tags=["ingestion"], responses=ERROR_RESPONSES)


def check_write_options(write_active: bool, write_passive: bool, enriching: bool) -> None:
    """Refuse option combinations the engine cannot honour (never silently ignore one).

    Raises:
        ApiError: 422 when both are false, or when only one half is asked for (the engine
            writes and enriches in one call).
    """
    if not write_active and not write_passive:
        raise ApiError(
            422,
            "validation_error",
            "write_active and write_passive are both false: nothing to do",
            field="options",
        )
    if not write_active:
        raise ApiError(
            422,
            "unsupported_option",
            "write_active=false (enrich without storing) is not supported",
            field="options.write_active",
        )
    if not write_passive and enriching:
        raise ApiError(
            422,
            "unsupported_option",
            "write_passive=false is not supported while the server enriches (start it with --no-enrich)",
            field="options.write_passive",
        )


@router.post("/ingestion/memory", status_code=202, response_model=IngestionResponse)
async def ingest(body: IngestionRequest, caller: Caller, engine: Engine) -> IngestionResponse:
    """Store turns (active) and queue their enrichment (passive).

    User and session default from the token, else ``"default-session"``. Re-sent turns
    return the same ids and cost nothing (``usage.tokens_out`` 0).
    """
    tenant = caller.tenant(body.scope.org_id, "scope.org_id")
    check_write_options(body.options.write_active, body.options.write_passive, engine.enricher is not None)
    turns = [
        {
            "role": t.role,
            "text": t.text,
            "timestamp": t.timestamp,
            "metadata": t.metadata,
            "observations": turn_observations(t.observations),
            "id": t.id,
        }
        for t in body.turns
    ]
    result = await engine.remember(
        turns,
        session_id=body.scope.session_id or caller.session_id or DEFAULT_SESSION,
        user_id=body.scope.user_id or caller.user_id,
        tenant_id=tenant,
        metadata=body.metadata,
    )
    return IngestionResponse(
        job_id=result.job_id,
        active_fragment_ids=result.active_ids,
        passive_job_id=result.passive_job_id,
        usage=result.usage,
    )
