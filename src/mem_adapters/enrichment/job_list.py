"""A tenant's enrichment jobs, newest first, one page at a time (:class:`JobPage`).

Jobs are durable rows (``type="job"``) in the tenant's aux collection, written by the
:class:`~mem_adapters.enrichment.Enricher`. Listing them needs no running worker: it reads the
rows through the data layer's :class:`~mem_adapters.data.chroma.Collection` (metadata of every
matching job to order them, then the documents of one page only).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

from pydantic import BaseModel, Field

from .. import records as rec
from ..filters import all_of
from ..models import JobStatus

logger = logging.getLogger(__name__)

JobState = Literal["pending", "running", "done", "failed"]
JOB_STATES: tuple[str, ...] = ("pending", "running", "done", "failed")


class JobSummary(JobStatus):
    """One job of a listing: its :class:`~mem_adapters.models.JobStatus` plus who and how much."""

    user_id: str | None = None
    turn_count: int = 0
    retrying: bool = False


class JobPage(BaseModel):
    """One page of ``list_jobs``, newest first; ``next``/``previous`` are page numbers."""

    count: int
    next: int | None = None
    previous: int | None = None
    results: list[JobSummary] = Field(default_factory=list)


def summary(job_id: str, doc: str | None, md: dict[str, Any]) -> JobSummary:
    """A job row (its document and metadata as stored) as a :class:`JobSummary`."""
    turn_ids = json.loads(doc or "{}").get("turn_ids", [])
    return JobSummary(
        job_id=job_id,
        status=md["status"],
        session_id=md.get("session_id") or None,
        turn_ids=turn_ids,
        attempts=int(md.get("attempts", 0)),
        error=md.get("error") or None,
        created_at=rec.from_epoch(md.get("created_at")),
        finished_at=rec.from_epoch(md.get("finished_at")) if md.get("finished_at") else None,
        user_id=md.get("user_id") or None,
        turn_count=int(md.get("turn_count", len(turn_ids))),
        retrying=bool(md.get("retrying", False)),
    )


async def list_jobs(
    aux: Any,
    *,
    page: int,
    page_size: int,
    status: str | None = None,
    user_id: str | None = None,
) -> JobPage:
    """One page of the jobs in ``aux`` (a tenant's aux :class:`Collection`, ``None``: no tenant).

    Ordered by creation time, newest first (ties: job id, descending), so a page does not move
    while older jobs finish. Arguments are validated by the caller.
    """
    if aux is None:
        return JobPage(count=0)
    where = all_of(
        {"type": "job"},
        {"status": status} if status is not None else None,
        {"user_id": user_id} if user_id is not None else None,
    )
    got = await aux.get_all(where=where, include=["metadatas"])
    order = sorted(
        zip(got["ids"], got["metadatas"], strict=True),
        key=lambda r: (float(r[1].get("created_at") or 0.0), r[0]),
        reverse=True,
    )
    count = len(order)
    start = (page - 1) * page_size
    ids = [i for i, _ in order[start : start + page_size]]
    results: list[JobSummary] = []
    if ids:
        rows = await aux.get(ids=ids, include=["documents", "metadatas"])
        by_id = {i: (d, m) for i, d, m in zip(rows["ids"], rows["documents"], rows["metadatas"], strict=True)}
        # A job erased between the two reads is left out of the page (the count still has it).
        results = [summary(i, *by_id[i]) for i in ids if i in by_id and by_id[i][1].get("type") == "job"]
    return JobPage(
        count=count,
        next=page + 1 if start + page_size < count else None,
        previous=page - 1 if page > 1 else None,
        results=results,
    )
