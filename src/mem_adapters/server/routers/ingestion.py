"""``POST /ingestion/memory``: a batch of turns, searchable when the call returns."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter

from ..adapters import turn_observations
from ..deps import Caller, Engine
from ..errors import ERROR_RESPONSES, ApiError
from ..settings import DEFAULT_SESSION
from ..shapes import IngestionRequest, IngestionResponse

logger = logging.getLogger(__name__)

router = APIRouter(tags=["ingestion"], responses=ERROR_RESPONSES)


def check_write_options(
    write_active: Any, write_passive: Any, enriching: bool, *, field: str = "options"
) -> None:
    """Refuse option combinations the engine cannot honour (never silently ignore one).

    ``write_passive=False`` stores without enriching; ``write_active=False`` stores the turns
    for enrichment only (never searched or listed, see ``remember``).

    Raises:
        ApiError: 422 when an option is not a boolean, when both are false, or when
            ``write_active=false`` is asked of a server that does not enrich (``--no-enrich``:
            the turns would be stored for nothing).
    """
    for name, value in (("write_active", write_active), ("write_passive", write_passive)):
        if not isinstance(value, bool):
            raise ApiError(422, "validation_error", f"{name} must be true or false", field=f"{field}.{name}")
    if not write_active and not write_passive:
        raise ApiError(
            422,
            "validation_error",
            "write_active and write_passive are both false: nothing to do",
            field=field,
        )
    if not write_active and not enriching:
        raise ApiError(
            422,
            "unsupported_option",
            "write_active=false needs enrichment, and this server does not enrich (--no-enrich)",
            field=f"{field}.write_active",
        )


@router.post("/ingestion/memory", status_code=202, response_model=IngestionResponse)
async def ingest(body: IngestionRequest, caller: Caller, engine: Engine) -> IngestionResponse:
    """Store turns (active) and queue their enrichment (passive).

    User and session default from the token, else ``"default-session"``. Re-sent turns
    return the same ids and cost nothing (``usage.tokens_out`` 0). ``options.write_passive
    = false`` stores the turns without enrichment (``passive_job_id`` null);
    ``options.write_active = false`` only enriches them: ``active_fragment_ids`` is empty and
    the turns are never searched or listed (their facts are, once the job is done).
    """
    tenant = caller.tenant(body.scope.org_id, "scope.org_id")
    opts = body.options
    check_write_options(opts.write_active, opts.write_passive, engine.enricher is not None)
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
        write_active=opts.write_active,
        write_passive=opts.write_passive,
    )
    return IngestionResponse(
        job_id=result.job_id,
        active_fragment_ids=result.active_ids,
        passive_job_id=result.passive_job_id,
        usage=result.usage,
    )
