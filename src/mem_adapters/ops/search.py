"""The search façade (validation and scope, then :mod:`mem_adapters.retrieval`) and enrichment jobs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from ..enrichment import job_list
from ..enrichment.job_list import JobPage
from ..errors import JobError, ValidationError
from ..filters import all_of, translate
from ..models import (
    DEFAULT_TENANT,
    JobStatus,
    MemoryItem,
    SearchResult,
    to_utc,
)
from . import checks
from .base import (
    EngineBase,
    _require_str,
    _scope_where,
)

logger = logging.getLogger(__name__)


class SearchMixin(EngineBase):
    """Search and enrichment jobs."""

    async def search(
        self,
        query: str,
        *,
        tenant_id: str = DEFAULT_TENANT,
        sub_tenant_id: str | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        k: int = 10,
        filters: dict[str, Any] | None = None,
        kinds: Sequence[str] | None = None,
        time_range: tuple[datetime | str | None, datetime | str | None] | None = None,
        mode: Literal["flat", "context"] = "flat",
        char_budget: int | None = None,
        as_of: datetime | str | None = None,
    ) -> SearchResult:
        """Rank memories for ``query`` inside the given scope (see :mod:`mem_adapters.retrieval`).

        Args:
            query: Natural-language query.
            tenant_id: Tenant searched (never any other).
            sub_tenant_id: Restrict to a sub-tenant.
            user_id: Restrict to a user.
            agent_id: Restrict to an agent.
            session_id: Restrict to a session.
            k: Number of results.
            filters: Metadata/engine-field filter (validated; ANDed with the scope).
            kinds: Only these kinds (``turn``, ``fact``, ``episode``, ``raw``, ``chunk``).
            time_range: ``(start, end)`` on the items' own timestamps; either side may be None.
            mode: ``"flat"`` ranked items, or ``"context"`` which also packs a prompt string.
            char_budget: Maximum length of the context string (context mode).
            as_of: Answer with facts that were latest at this time.

        Raises:
            ValidationError: empty query, bad k, filters, kinds, time range or mode.
        """
        checks.text("query", query, self.limits.max_query_bytes)
        checks.ids(self.limits, tenant_id=tenant_id, sub_tenant_id=sub_tenant_id, user_id=user_id,
                   agent_id=agent_id, session_id=session_id)  # fmt: skip
        _require_str("tenant_id", tenant_id)
        checks.kinds(kinds)
        checks.mapping("filters", filters)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValidationError("k", "must be an integer >= 1")
        if not isinstance(mode, str) or mode not in ("flat", "context"):
            raise ValidationError("mode", "must be 'flat' or 'context'")
        checks.integer("char_budget", char_budget, minimum=1, optional=True)
        valid_kinds = {"turn", "fact", "episode", "raw", "chunk"}
        if kinds is not None and (not kinds or not set(kinds) <= valid_kinds):
            raise ValidationError("kinds", f"must be a non-empty subset of {sorted(valid_kinds)}")
        clauses: list[dict[str, Any] | None] = [
            _scope_where(tenant_id, sub_tenant_id, user_id, agent_id, session_id),
            translate(filters),
            {"indexed": True},
            {"kind": {"$in": list(kinds)}} if kinds else None,
        ]
        if time_range is not None:
            if not isinstance(time_range, list | tuple) or len(time_range) != 2:
                raise ValidationError("time_range", "must be (start, end)")
            for op, bound in zip(("$gte", "$lte"), time_range, strict=True):
                if bound is not None:
                    try:
                        clauses.append({"ts": {op: to_utc(bound, "time_range").timestamp()}})
                    except (ValueError, OverflowError) as e:
                        raise ValidationError("time_range", str(e)) from e
        as_of_ts = None
        if as_of is not None:
            try:
                as_of_ts = to_utc(as_of, "as_of").timestamp()
            except (ValueError, OverflowError) as e:
                raise ValidationError("as_of", str(e)) from e
        # A new process's first search: its snapshot is read while the tenant is opened.
        data = await self.data()
        pair, _ = await asyncio.gather(
            self.collections(tenant_id, create=False), data.preload(tenant_id, user_id)
        )
        if pair is None:
            return SearchResult(query=query, mode=mode, results=[], context="" if mode == "context" else None)
        await self.purge_expired(tenant_id)
        return await self.retriever.search(
            tenant_id,
            query,
            k=k,
            where=all_of(*clauses),
            mode=mode,
            char_budget=char_budget,
            as_of=as_of_ts,
            user_id=user_id,
        )

    def _enrichment(self) -> Any:
        self._check_open()
        if self.enricher is None:
            raise JobError("enrichment is disabled on this engine (enricher=None)")
        return self.enricher

    async def job_status(self, job_id: str, *, tenant_id: str | None = None) -> JobStatus:
        """State of a background enrichment job.

        ``tenant_id`` may be left out: the engine knows the tenant of every job it issued (and
        looks a job of an earlier process up in every tenant).

        Raises:
            JobError: unknown job, or enrichment disabled.
        """
        _require_str("job_id", job_id)
        _require_str("tenant_id", tenant_id, optional=True)
        return await self._enrichment().job_status(job_id, tenant_id=tenant_id)

    async def list_jobs(
        self,
        page: int = 1,
        page_size: int = 50,
        *,
        tenant_id: str = DEFAULT_TENANT,
        status: str | None = None,
        user_id: str | None = None,
    ) -> JobPage:
        """A tenant's enrichment jobs, newest first, one page at a time.

        Read from the jobs' durable records, so it works without a running worker (an engine
        with ``enricher=None`` lists what earlier processes recorded).

        Args:
            page: Page number, from 1.
            page_size: Jobs per page (1..1000).
            tenant_id: Tenant whose jobs are listed (never any other).
            status: Only jobs in this state (``pending``, ``running``, ``done``, ``failed``).
            user_id: Only jobs of this user's turns.

        Raises:
            ValidationError: bad page numbers, status or ids.
        """
        if isinstance(page, bool) or not isinstance(page, int) or page < 1:
            raise ValidationError("page", "must be an integer >= 1")
        if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= 1000:
            raise ValidationError("page_size", "must be an integer in 1..1000")
        _require_str("tenant_id", tenant_id)
        checks.ids(self.limits, tenant_id=tenant_id, user_id=user_id)
        if status is not None and status not in job_list.JOB_STATES:
            raise ValidationError("status", f"must be one of {', '.join(job_list.JOB_STATES)}")
        pair = await self.collections(tenant_id, create=False)
        aux = pair[1] if pair is not None else None
        return await job_list.list_jobs(aux, page=page, page_size=page_size, status=status, user_id=user_id)

    async def wait(
        self, job_id: str, timeout: float | None = None, *, tenant_id: str | None = None
    ) -> JobStatus:
        """Wait until a job is done or failed (``timeout`` seconds at most).

        The tenant may be left out, as in :meth:`job_status`.
        """
        _require_str("job_id", job_id)
        _require_str("tenant_id", tenant_id, optional=True)
        checks.seconds("timeout", timeout, optional=True, allow_zero=True)
        return await self._enrichment().wait(job_id, timeout, tenant_id=tenant_id)

    async def wait_all(self, timeout: float | None = None) -> None:
        """Wait until every queued enrichment job has finished."""
        checks.seconds("timeout", timeout, optional=True, allow_zero=True)
        await self._enrichment().wait_all(timeout)

    async def end_session(
        self, session_id: str, *, tenant_id: str = DEFAULT_TENANT, user_id: str | None = None
    ) -> MemoryItem | None:
        """Close the session's open episode and return it (``None`` if nothing to close)."""
        _require_str("session_id", session_id)
        _require_str("tenant_id", tenant_id)
        _require_str("user_id", user_id, optional=True)
        return await self._enrichment().end_session(session_id, tenant_id=tenant_id, user_id=user_id)
