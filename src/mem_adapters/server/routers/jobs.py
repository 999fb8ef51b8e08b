"""``GET /v1/jobs/{job_id}``: state of an enrichment job of the caller's tenant."""

from __future__ import annotations

from fastapi import APIRouter

from ...errors import JobError
from ...models import JobStatus
from ..deps import Caller, Engine
from ..errors import ERROR_RESPONSES, ApiError

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=ERROR_RESPONSES)


@router.get("/{job_id}", response_model=JobStatus)
async def job_status(job_id: str, caller: Caller, engine: Engine) -> JobStatus:
    """Pending, running, done or failed; another tenant's job is 404."""
    if engine.enricher is None:
        raise ApiError(404, "not_found", "enrichment is disabled on this server: there are no jobs")
    try:
        return await engine.job_status(job_id, tenant_id=caller.tenant())
    except JobError as e:
        raise ApiError(404, "not_found", str(e)) from e
