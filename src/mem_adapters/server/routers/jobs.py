"""``/v1/jobs``: the enrichment jobs of the caller's tenant (a page of them, or one by id)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Query

from ...enrichment.job_list import JobPage, JobState
from ...errors import JobError
from ...models import JobStatus
from ..deps import Caller, Engine
from ..errors import ERROR_RESPONSES, ApiError

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=ERROR_RESPONSES)


@router.get("", response_model=JobPage)
async def list_jobs(
    caller: Caller,
    engine: Engine,
    status: Annotated[JobState | None, Query(description="Only jobs in this state.")] = None,
    user_id: Annotated[str | None, Query(min_length=1, description="Only jobs of this user.")] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> JobPage:
    """The tenant's enrichment jobs, newest first: status, error, timestamps, turn count.

    Read from the jobs' durable records, so a server started with ``--no-enrich`` still lists
    the jobs earlier runs recorded.
    """
    return await engine.list_jobs(page, page_size, tenant_id=caller.tenant(), status=status, user_id=user_id)


@router.get("/{job_id}", response_model=JobStatus)
async def job_status(job_id: str, caller: Caller, engine: Engine) -> JobStatus:
    """Pending, running, done or failed; another tenant's job is 404."""
    if engine.enricher is None:
        raise ApiError(404, "not_found", "enrichment is disabled on this server: there are no jobs")
    try:
        return await engine.job_status(job_id, tenant_id=caller.tenant())
    except JobError as e:
        raise ApiError(404, "not_found", str(e)) from e
