"""The per-engine background worker that turns new turns into facts and episodes.

Durability: all state lives in Chroma. Every turn is written with ``enrich="pending"``; a job
record (``type="job"`` in the tenant's aux collection) tracks each batch. The worker marks a
turn ``enrich="done"`` only after its facts and episode are written, and derived ids are
deterministic, so a crash at any point is repaired by re-running the job: nothing is
duplicated. On start the worker resumes unfinished job records and any pending turn no job
covers (a crash between writing turns and recording their job).

Order of writes in one job (each step idempotent):

1. new facts (with their ``supersedes`` links), 2. superseded predecessors
(``is_latest=False``), 3. episodes, 4. turns ``enrich="done"``, 5. the job record.
"""

from __future__ import annotations

import asyncio
import concurrent.futures.thread  # noqa: F401 - registers its exit hook before ours (run last-first)
import contextlib
import json
import logging
import math
import re
import threading
import time
import uuid
import weakref
from collections import Counter, OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydantic

from .. import records as rec
from ..data import AUX_VECTOR
from ..errors import ClosedError, JobError
from ..models import DEFAULT_TENANT, JobStatus, MemoryItem
from .leases import DEFAULT_SETTLE_S, DEFAULT_TTL_S, SessionLeases
from .rules import _NOT_ENTITY, _STOP, RuleExtractor
from .types import ACCUMULATING_PREDICATES, EpisodeSummary, ExtractedFact, ExtractionError, TurnInput

if TYPE_CHECKING:
    from ..data import DataLayer

logger = logging.getLogger(__name__)

SCOPE_FIELDS = ("tenant_id", "sub_tenant_id", "user_id", "agent_id", "session_id", "sub_session_id", "role")
_JOB_TENANTS_KEPT = 10_000  # job ids whose tenant is remembered (older ones are looked up)
_POSITIVE = {"likes", "loves", "enjoys", "prefers", "adores", "yes"}
_NEGATIVE = {"dislikes", "hates", "avoids", "no", "none"}


_exiting = threading.Event()
_PACKAGE_DIR = str(Path(__file__).resolve().parents[1])  # mem_adapters/
_LIVE: weakref.WeakSet[Enricher] = weakref.WeakSet()  # enrichers whose worker task was started


def _on_interpreter_exit() -> None:
    # Runs before concurrent.futures refuses new work (threading's exit hooks run last-first):
    # from then on a failing step is the interpreter shutting down, not a bad job, so a worker
    # stops quietly and leaves its job pending for the next engine opened on the store.
    _exiting.set()
    for enricher in list(_LIVE):
        task = enricher._task
        if task is None or task.done():
            continue
        loop = task.get_loop()
        if loop.is_running() and not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)
        # A worker whose loop was left without being closed (run_until_complete, then exit)
        # can no longer be cancelled; its work is durable, so the end of its tasks (the worker's
        # and those it started) needs no "Task was destroyed but it is pending!" warning.
        for pending in asyncio.all_tasks(loop):
            code = getattr(pending.get_coro(), "cr_code", None)
            if code is not None and code.co_filename.startswith(_PACKAGE_DIR):
                pending._log_destroy_pending = False  # type: ignore[attr-defined]


threading._register_atexit(_on_interpreter_exit)  # type: ignore[attr-defined]


def _norm(value: str) -> str:
    return re.sub(r"\s+", " ", value.strip().lower())


def change_type(old: str, new: str) -> str:
    """How a new value relates to the one it supersedes: contradiction, refinement or update.

    Example:
        >>> change_type("likes", "dislikes"), change_type("Berlin", "Berlin Mitte")
        ('contradiction', 'refinement')
    """
    o, n = _norm(old), _norm(new)
    if (o in _POSITIVE and n in _NEGATIVE) or (o in _NEGATIVE and n in _POSITIVE):
        return "contradiction"
    if o.startswith("not ") != n.startswith("not ") or o.startswith("no ") != n.startswith("no "):
        return "contradiction"
    if (o in _POSITIVE and n in _POSITIVE) or (o in _NEGATIVE and n in _NEGATIVE):
        return "refinement"
    if o and n and (o in n or n in o):
        return "refinement"
    return "update"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat()


def _cos(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


class Enricher:
    """Background enrichment for one engine: facts, supersession and episodes.

    Args:
        extractor: A :class:`~mem_adapters.enrichment.Extractor` (default :class:`RuleExtractor`),
            e.g. :class:`~mem_adapters.enrichment.LLMExtractor`.
        custom_instructions: Passed to the extractor on every job.
        max_attempts: Attempts per job before it stays ``failed``.
        backoff: Seconds before the first retry (doubled for each further retry).
        episode_gap: Seconds of silence that close an episode.
        episode_max_turns: Turns after which an episode is closed.
        topic_shift: A turn whose embedding has cosine similarity below this with the mean of
            the episode's recent turns starts a new episode (once the episode has
            ``min_episode_turns`` turns).
        min_episode_turns: Turns an episode has before a topic shift may close it.
        context_turns: Earlier turns of the session handed to extractors that want context.
        lease_seconds: Life of a session lease without renewal: with several processes on one
            store, a dead worker's session is taken over after this long (see ``.leases``).
        lease_settle: Seconds between claiming a lease and confirming it.

    Example:
        >>> from mem_adapters import MemoryEngine
        >>> engine = MemoryEngine("/tmp/mem", enricher=Enricher())  # doctest: +SKIP
        >>> turns = [{"role": "user", "text": "I moved to Berlin"}]
        >>> res = engine.remember(turns, session_id="s")  # doctest: +SKIP
        >>> engine.wait(res.passive_job_id, timeout=30).status  # doctest: +SKIP
        'done'
    """

    def __init__(
        self,
        extractor: Any = None,
        *,
        custom_instructions: str | None = None,
        max_attempts: int = 3,
        backoff: float = 0.5,
        episode_gap: float = 30 * 60,
        episode_max_turns: int = 24,
        topic_shift: float = 0.1,
        min_episode_turns: int = 6,
        context_turns: int = 6,
        lease_seconds: float = DEFAULT_TTL_S,
        lease_settle: float = DEFAULT_SETTLE_S,
    ) -> None:
        self.extractor = extractor if extractor is not None else RuleExtractor()
        self.custom_instructions = custom_instructions
        self.max_attempts = max(1, max_attempts)
        self.backoff = backoff
        self.episode_gap = episode_gap
        self.episode_max_turns = episode_max_turns
        self.topic_shift = topic_shift
        self.min_episode_turns = min_episode_turns
        self.context_turns = context_turns
        self._data_of: Callable[[], Awaitable[DataLayer]] | None = None
        self.lease_seconds = lease_seconds
        self.lease_settle = lease_settle
        self._leases: SessionLeases | None = None
        self._queue: deque[tuple[str, str, str]] = deque()  # (tenant, job id, session)
        self._queued: set[str] = set()
        self._current: tuple[str, str, str] | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._resumed = False
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._closed = False
        self._job_tenants: OrderedDict[str, str] = OrderedDict()  # job id -> tenant (recent jobs)

    # ------------------------------------------------------------------ lifecycle

    async def data(self) -> DataLayer:
        """The data layer of the store this worker enriches."""
        if self._data_of is None:
            raise JobError("Enricher is not bound to a store")
        return await self._data_of()

    def bind(self, data: Callable[[], Awaitable[DataLayer]]) -> None:
        """Attach to a store's data layer; starts the worker (and resumes pending work) if a loop runs.

        Args:
            data: Coroutine function returning the data layer (opened lazily by its owner;
                it raises ``ClosedError`` once the owner is closed).
        """
        if self._data_of is not None and self._data_of != data:
            raise JobError("an Enricher serves exactly one engine")
        self._data_of = data
        self._leases = SessionLeases(data, ttl=self.lease_seconds, settle=self.lease_settle)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # started lazily on first use
        self._ensure_worker()

    def _ensure_worker(self) -> None:
        if self._closed:
            raise JobError("the enrichment worker is closed")
        loop = asyncio.get_running_loop()
        if self._task is not None and not self._task.done() and self._loop is loop:
            return
        if self._loop is not loop:
            self._locks = {}  # asyncio locks belong to one loop
        self._loop = loop
        self._wake = asyncio.Event()
        self._resumed = False
        self._current = None
        self._task = loop.create_task(self._run(), name="mem-adapters-enrichment")
        _LIVE.add(self)

    async def aclose(self) -> None:
        """Stop the worker; unfinished jobs stay pending in Chroma and resume on next start.

        The running job is cancelled (its finished steps are kept: every step is idempotent).
        Idempotent; nothing is logged.
        """
        self._closed = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            if task.get_loop() is asyncio.get_running_loop():
                # Awaited, so the loop never holds a pending task ("Task was destroyed...").
                await asyncio.gather(task, return_exceptions=True)

    def _stopping(self) -> bool:
        """Whether a failure now is the worker being shut down rather than a bad job."""
        return self._closed or _exiting.is_set()

    def _lock(self, tenant_id: str, session_id: str) -> asyncio.Lock:
        key = (tenant_id, session_id)
        if key not in self._locks:
            self._locks[key] = asyncio.Lock()
        return self._locks[key]

    # ------------------------------------------------------------------ jobs

    async def submit(
        self, tenant_id: str, session_id: str, turn_ids: Sequence[str], *, mode: str = "chat"
    ) -> str:
        """Record a durable job for new turns and queue it; returns the job id.

        ``mode`` (``"chat"`` or ``"import"``, see ``remember``) is kept on the job record.
        """
        self._ensure_worker()
        mem, _ = await (await self.data()).collections(tenant_id)  # type: ignore[misc]
        got = await mem.get(ids=list(turn_ids)[:1], include=["metadatas"])
        user_id = got["metadatas"][0].get("user_id", "") if got["ids"] else ""
        job_id = await self._create_job(tenant_id, session_id, user_id, list(turn_ids), mode=mode)
        self._enqueue(tenant_id, job_id, session_id)
        return job_id

    async def _create_job(
        self, tenant_id: str, session_id: str, user_id: str, turn_ids: list[str], *, mode: str = "chat"
    ) -> str:
        job_id = f"job_{uuid.uuid4().hex}"
        self._remember_tenant(job_id, tenant_id)
        _, aux = await (await self.data()).collections(tenant_id)  # type: ignore[misc]
        now = time.time()
        await aux.upsert(
            [job_id], [AUX_VECTOR], [json.dumps({"turn_ids": turn_ids, "mode": mode})],
            [{"type": "job", "tenant_id": tenant_id, "user_id": user_id, "session_id": session_id,
              "status": "pending", "retrying": False, "attempts": 0, "error": "", "created_at": now,
              "finished_at": 0.0, "turn_count": len(turn_ids)}],
        )  # fmt: skip
        return job_id

    def _remember_tenant(self, job_id: str, tenant_id: str) -> None:
        self._job_tenants[job_id] = tenant_id
        self._job_tenants.move_to_end(job_id)
        while len(self._job_tenants) > _JOB_TENANTS_KEPT:
            self._job_tenants.popitem(last=False)

    async def _tenant_of(self, job_id: str, tenant_id: str | None) -> str:
        """The tenant to read a job from: the given one, else the one the job was issued in.

        A job this worker did not issue (an earlier process's) is looked up in every tenant;
        unknown everywhere, the default tenant (whose lookup then reports the job unknown).
        """
        if tenant_id is not None:
            return tenant_id
        known = self._job_tenants.get(job_id)
        if known is not None:
            return known
        if isinstance(job_id, str) and job_id:
            for tenant in await (await self.data()).tenants():
                if await self._job_row(tenant, job_id) is not None:
                    self._remember_tenant(job_id, tenant)
                    return tenant
        return DEFAULT_TENANT

    def _enqueue(self, tenant_id: str, job_id: str, session_id: str) -> None:
        self._remember_tenant(job_id, tenant_id)
        if job_id in self._queued:
            return
        self._queued.add(job_id)
        self._queue.append((tenant_id, job_id, session_id))
        if self._wake is not None:
            self._wake.set()

    async def _job_row(self, tenant_id: str, job_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        pair = await (await self.data()).collections(tenant_id, create=False)
        if pair is None:
            return None
        got = await pair[1].get(ids=[job_id], include=["documents", "metadatas"])
        if not got["ids"] or got["metadatas"][0].get("type") != "job":
            return None
        return json.loads(got["documents"][0] or "{}"), got["metadatas"][0]

    async def _set_job(self, tenant_id: str, job_id: str, **fields: Any) -> None:
        _, aux = await (await self.data()).collections(tenant_id)  # type: ignore[misc]
        await aux.update_metadata([job_id], [fields])

    async def job_status(self, job_id: str, *, tenant_id: str | None = None) -> JobStatus:
        """State of a job, read from its durable record.

        Args:
            job_id: A ``passive_job_id`` returned by ``remember``.
            tenant_id: The job's tenant; ``None`` (the default) finds it (see ``_tenant_of``).

        Raises:
            JobError: no such job (in this tenant, when one is given).
        """
        self._ensure_worker()
        given = tenant_id
        tenant_id = await self._tenant_of(job_id, tenant_id)
        row = await self._job_row(tenant_id, job_id)
        if row is None:
            where = f" in tenant {tenant_id!r}" if given is not None else ""
            raise JobError(f"unknown enrichment job {job_id!r}{where}")
        doc, md = row
        return JobStatus(
            job_id=job_id,
            status=md["status"],
            session_id=md.get("session_id") or None,
            turn_ids=doc.get("turn_ids", []),
            attempts=int(md.get("attempts", 0)),
            error=md.get("error") or None,
            created_at=rec.from_epoch(md.get("created_at")),
            finished_at=rec.from_epoch(md.get("finished_at")) if md.get("finished_at") else None,
            mode="import" if doc.get("mode") == "import" else "chat",
            consolidation_id_mapping=json.loads(md.get("consolidations") or "{}"),
        )

    async def wait(
        self, job_id: str, timeout: float | None = None, *, tenant_id: str | None = None
    ) -> JobStatus:
        """Wait until the job is ``done`` or finally ``failed``; returns its status.

        A job that is ``failed`` but still being retried is waited for. On timeout the current
        (unfinished) status is returned.

        Raises:
            JobError: unknown job.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        tenant_id = await self._tenant_of(job_id, tenant_id)
        while True:
            status = await self.job_status(job_id, tenant_id=tenant_id)
            final = status.status == "done" or (
                status.status == "failed" and status.attempts >= self.max_attempts
            )
            if final or (deadline is not None and time.monotonic() >= deadline):
                return status
            self._raise_if_dead()
            await asyncio.sleep(0.02)

    async def wait_all(self, timeout: float | None = None) -> None:
        """Wait until the queue is empty and pending work found at start-up is processed.

        Raises:
            JobError: the timeout passed first, or the worker died.
        """
        self._ensure_worker()
        deadline = None if timeout is None else time.monotonic() + timeout
        while not (self._resumed and not self._queue and self._current is None):
            self._raise_if_dead()
            if deadline is not None and time.monotonic() >= deadline:
                raise JobError(f"enrichment not finished after {timeout}s ({len(self._queue)} jobs queued)")
            await asyncio.sleep(0.02)

    def _raise_if_dead(self) -> None:
        task = self._task
        if task is not None and task.done() and not task.cancelled() and task.exception() is not None:
            raise JobError(f"enrichment worker died: {task.exception()!r}")

    # ------------------------------------------------------------------ worker

    async def _run(self) -> None:
        try:
            await self._resume()
        except Exception:
            if self._stopping():
                return
            logger.exception("resuming pending enrichment failed")
        self._resumed = True
        assert self._wake is not None
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            self._current = item = self._queue.popleft()
            tenant_id, job_id, _ = item
            try:
                await self._run_job(tenant_id, job_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                if self._stopping():
                    return  # the job stays pending in Chroma; the next start resumes it
                logger.exception("enrichment job %s crashed", job_id)
            finally:
                self._queued.discard(job_id)
                self._current = None

    async def _resume(self) -> None:
        """Queue unfinished jobs and pending turns no job covers, for every tenant."""
        for tenant_id in await (await self.data()).tenants():
            pair = await (await self.data()).collections(tenant_id, create=False)
            if pair is None:
                continue
            mem, aux = pair
            jobs = await aux.get_all(
                where={"$and": [{"type": "job"}, {"$or": [
                    {"status": {"$in": ["pending", "running"]}}, {"retrying": True}]}]},
                include=["documents", "metadatas"],
            )  # fmt: skip
            covered: set[str] = set()
            rows = sorted(zip(jobs["ids"], jobs["documents"], jobs["metadatas"], strict=True),
                          key=lambda r: r[2].get("created_at", 0))  # fmt: skip
            for job_id, doc, md in rows:
                covered.update(json.loads(doc or "{}").get("turn_ids", []))
                self._enqueue(tenant_id, job_id, md.get("session_id", ""))
            pending = await mem.get_all(
                where={"$and": [{"kind": "turn"}, {"enrich": "pending"}]}, include=["metadatas"]
            )
            orphans: dict[tuple[str, str, str], list[tuple[int, str]]] = {}
            for tid, md in zip(pending["ids"], pending["metadatas"], strict=True):
                if tid not in covered:
                    mode = json.loads(md.get("attrs") or "{}").get("mode", "chat")  # see remember(mode=)
                    orphans.setdefault((md.get("session_id", ""), md.get("user_id", ""), mode), []).append(
                        (md["seq"], tid)
                    )
            for (session_id, user_id, mode), items in orphans.items():
                job_id = await self._create_job(
                    tenant_id, session_id, user_id, [t for _, t in sorted(items)], mode=mode
                )
                self._enqueue(tenant_id, job_id, session_id)
            if rows or orphans:
                logger.info("resuming %d enrichment jobs in tenant %r", len(rows) + len(orphans), tenant_id)

    async def _run_job(self, tenant_id: str, job_id: str) -> None:
        row = await self._job_row(tenant_id, job_id)
        if row is None or row[1]["status"] == "done":
            return
        doc, md = row
        attempts = int(md.get("attempts", 0))
        if md["status"] == "running" and attempts > 0:
            attempts -= 1  # interrupted by a shutdown or a crash, not failed: not an attempt used
        while attempts < self.max_attempts:
            attempts += 1
            await self._set_job(tenant_id, job_id, status="running", attempts=attempts)
            try:
                session = md.get("session_id", "")
                assert self._leases is not None
                # The lock orders this worker's jobs; the lease keeps other processes' workers
                # off the session meanwhile (see .leases), so each turn is enriched once.
                async with (
                    self._lock(tenant_id, session),
                    self._leases.hold(tenant_id, session, self._stopping),
                ):
                    merged = await self._process(
                        tenant_id, session, doc.get("turn_ids", []), mode=doc.get("mode", "chat")
                    )
            except asyncio.CancelledError:
                raise
            except Exception as e:
                if self._stopping() or isinstance(e, ClosedError):
                    raise  # shutting down: leave the job as it is (resumed on the next start)
                error = f"{type(e).__name__}: {e}"[:2000]
                retrying = attempts < self.max_attempts
                logger.warning("enrichment job %s attempt %d failed: %s", job_id, attempts, error)
                await self._set_job(tenant_id, job_id, status="failed", error=error, retrying=retrying,
                                    finished_at=0.0 if retrying else time.time())  # fmt: skip
                if retrying:
                    await asyncio.sleep(self.backoff * 2 ** (attempts - 1))
                    continue
                await self._mark_turns(tenant_id, doc.get("turn_ids", []), "failed")
                return
            await self._set_job(tenant_id, job_id, status="done", retrying=False, finished_at=time.time(),
                                consolidations=json.dumps(merged or {}))  # fmt: skip
            return

    async def _mark_turns(self, tenant_id: str, turn_ids: list[str], state: str) -> None:
        mem, _ = await (await self.data()).collections(tenant_id)  # type: ignore[misc]
        got = await mem.get(ids=turn_ids, include=["metadatas"])
        ids = [i for i, m in zip(got["ids"], got["metadatas"], strict=True) if m.get("enrich") == "pending"]
        if ids:
            await mem.update_metadata(ids, [{"enrich": state} for _ in ids])

    async def retry(self, job_id: str, *, tenant_id: str | None = None) -> None:
        """Re-queue a finally failed job (its turns go back to ``enrich="pending"``).

        Raises:
            JobError: unknown job.
        """
        tenant_id = await self._tenant_of(job_id, tenant_id)
        row = await self._job_row(tenant_id, job_id)
        if row is None:
            raise JobError(f"unknown enrichment job {job_id!r} in tenant {tenant_id!r}")
        mem, _ = await (await self.data()).collections(tenant_id)  # type: ignore[misc]
        ids = row[0].get("turn_ids", [])
        got = await mem.get(ids=ids, include=["metadatas"])
        failed = [i for i, m in zip(got["ids"], got["metadatas"], strict=True) if m.get("enrich") == "failed"]
        if failed:
            await mem.update_metadata(failed, [{"enrich": "pending"} for _ in failed])
        await self._set_job(tenant_id, job_id, status="pending", attempts=0, retrying=False, error="")
        self._ensure_worker()
        self._enqueue(tenant_id, job_id, row[1].get("session_id", ""))

    # ------------------------------------------------------------------ extraction

    async def _extract(self, turns: list[TurnInput], context: list[TurnInput]) -> list[ExtractedFact]:
        ex = self.extractor
        kwargs = {"context": context, "custom_instructions": self.custom_instructions}
        if hasattr(ex, "aextract"):
            raw = await ex.aextract(turns, **kwargs)
        else:
            raw = await asyncio.to_thread(ex.extract, turns, **kwargs)
        if not isinstance(raw, list):
            raise ExtractionError(f"extractor returned {type(raw).__name__}, expected a list of facts")
        facts: list[ExtractedFact] = []
        known = {t.id for t in turns}
        for i, item in enumerate(raw):
            try:
                fact = item if isinstance(item, ExtractedFact) else ExtractedFact.model_validate(item)
            except pydantic.ValidationError as e:
                raise ExtractionError(f"fact {i} is malformed: {e.errors()[0]['msg']} at "
                                      f"{'.'.join(map(str, e.errors()[0]['loc']))}") from e  # fmt: skip
            if not fact.source_turn_ids and len(turns) == 1:
                fact.source_turn_ids = [turns[0].id]
            unknown = [s for s in fact.source_turn_ids if s not in known]
            if not fact.source_turn_ids or unknown:
                raise ExtractionError(f"fact {i} cites unknown source turns {unknown or '[]'}")
            fact.subject = _norm(fact.subject)
            fact.predicate = _norm(fact.predicate)
            facts.append(fact)
        return _merge_same_text(facts)

    # ------------------------------------------------------------------ the job

    async def _process(
        self, tenant_id: str, session_id: str, turn_ids: list[str], *, mode: str = "chat"
    ) -> dict[str, str]:
        """Enrich a job's pending turns; returns its consolidations (would-be fact id -> stored id)."""
        mem, _ = await (await self.data()).collections(tenant_id)  # type: ignore[misc]
        got = await mem.get(ids=turn_ids, include=["documents", "metadatas", "embeddings"])
        turns = sorted(
            [(i, d or "", m, list(map(float, e)))
             for i, d, m, e in zip(got["ids"], got["documents"], got["metadatas"], got["embeddings"],
                                   strict=True)
             if m.get("kind") == "turn" and m.get("enrich") == "pending"],
            key=lambda t: (t[2].get("seq", 0), t[0]),
        )  # fmt: skip
        if not turns:
            return {}  # already done (a re-run after a crash) or deleted meanwhile
        by_id = {t[0]: t for t in turns}
        # Users never mix: each user's turns are extracted on their own, with a context of that
        # user's earlier turns only, so no other user's text can reach their facts.
        facts: list[ExtractedFact] = []
        for user_id, mine in _by_user(turns).items():
            inputs = [TurnInput(id=i, role=m.get("role") or "user", text=d,
                                timestamp=rec.from_epoch(m.get("ts"))) for i, d, m, _ in mine]  # fmt: skip
            context = await self._context(tenant_id, session_id, user_id, mine[0][2].get("seq", 0))
            # Everything that can fail on bad extractor output happens before the first write.
            facts.extend(await self._extract(inputs, context))
        await self._use_names(mem, facts, by_id)
        observations = await self._observation_facts(mem, by_id)
        merged: dict[str, str] = {}
        fact_ids_by_turn = await self._write_facts(
            tenant_id, mem, by_id, facts, observations, by_event_time=mode == "import", merged=merged
        )
        with self._no_auto_close() if mode == "import" else contextlib.nullcontext():
            await self._update_episodes(tenant_id, mem, session_id, turns, fact_ids_by_turn)
        await self._link_episodes(tenant_id, mem, session_id, fact_ids_by_turn)
        await mem.update_metadata([t[0] for t in turns], [{"enrich": "done"} for _ in turns])
        return merged

    @contextlib.contextmanager
    def _no_auto_close(self) -> Iterator[None]:
        """Episode rules off while an import job's turns join episodes (only ``end_session`` closes).

        Jobs run one at a time on the worker task, and only episode updates read these rules.
        """
        saved = (self.episode_gap, self.episode_max_turns, self.min_episode_turns)
        self.episode_gap, self.episode_max_turns, self.min_episode_turns = math.inf, math.inf, math.inf  # type: ignore[assignment]
        try:
            yield
        finally:
            self.episode_gap, self.episode_max_turns, self.min_episode_turns = saved

    async def _link_episodes(
        self, tenant_id: str, mem: Any, session_id: str, fact_ids_by_turn: dict[str, list[str]]
    ) -> None:
        """Store on each fact of this job the id of the episode that holds it (``attrs.episode_id``)."""
        fact_ids = {f for ids in fact_ids_by_turn.values() for f in ids}
        if not fact_ids:
            return
        got = await mem.get_all(
            where={"$and": [{"kind": "episode"}, {"session_id": session_id}]}, include=["metadatas"]
        )
        episode_of: dict[str, str] = {}
        for eid, md in zip(got["ids"], got["metadatas"], strict=True):
            for f in json.loads(md.get("attrs") or "{}").get("fact_ids", []):
                if f in fact_ids:
                    episode_of[f] = eid
        if not episode_of:
            return
        facts = await mem.get(ids=sorted(episode_of), include=["metadatas"])
        updates = {}
        for fid, md in zip(facts["ids"], facts["metadatas"], strict=True):
            attrs = json.loads(md.get("attrs") or "{}")
            if not attrs.get("episode_id"):  # the episode the fact was first stated in
                updates[fid] = {"attrs": json.dumps({**attrs, "episode_id": episode_of[fid]})}
        if updates:
            await self._patch(tenant_id, mem, updates)

    async def _context(
        self, tenant_id: str, session_id: str, user_id: str, first_seq: int
    ) -> list[TurnInput]:
        """Up to ``context_turns`` of the user's turns in the session before ``first_seq``.

        Only turns stored under ``user_id`` (theirs and the assistant's replies to them) are
        context: another user's turns in a shared session never are.
        """
        if not self.context_turns or not getattr(self.extractor, "wants_context", False):
            return []
        data = await self.data()
        index = await data.session_turns(tenant_id, session_id, user_id=user_id)
        prior = [i for i, m in index if m.get("seq", 0) < first_seq][-self.context_turns :]
        return [TurnInput(id=x.id, role=x.role or "user", text=x.text, timestamp=x.timestamp)
                for x in await data.items(tenant_id, prior)]  # fmt: skip

    async def _observation_facts(
        self, mem: Any, by_id: dict[str, Any]
    ) -> list[tuple[str, str, dict[str, Any], ExtractedFact | None]]:
        """Observations stored on these turns, with subject/predicate/value parsed by rules."""
        got = await mem.get_all(
            where={"$and": [{"kind": "fact"}, {"parent_id": {"$in": list(by_id)}}]},
            include=["documents", "metadatas"],
        )
        rules = self.extractor if isinstance(self.extractor, RuleExtractor) else RuleExtractor()
        out = []
        for oid, doc, md in zip(got["ids"], got["documents"], got["metadatas"], strict=True):
            attrs = json.loads(md.get("attrs") or "{}")
            if attrs.get("origin") != "observation" or attrs.get("predicate"):
                continue  # not an observation, or already processed
            turn = by_id[md["parent_id"]]
            tin = TurnInput(id=turn[0], role=turn[2].get("role") or "user", text=doc or "",
                            timestamp=rec.from_epoch(turn[2].get("ts")))  # fmt: skip
            parsed = sorted(rules.extract_sentence(doc or "", tin), key=lambda f: -f.confidence)
            out.append((oid, doc or "", md, parsed[0] if parsed else None))
        return out

    async def _known_name(self, mem: Any, user_id: str) -> str | None:
        """The name the generic user of ``user_id`` gave (their latest ``name`` fact), if any."""
        key = rec.stable_id("k_", user_id, "user", "name")
        got = await mem.get_all(
            where={"$and": [{"kind": "fact"}, {"fact_key": key}, {"is_latest": True}]}, include=["metadatas"]
        )
        for md in got["metadatas"]:
            value = json.loads(md.get("attrs") or "{}").get("value")
            if value:
                return str(value)
        return None

    async def _use_names(self, mem: Any, facts: list[ExtractedFact], by_id: dict[str, Any]) -> None:
        """Once a user has said their name, their later facts say "Dana" instead of "The user".

        The name comes from the user's stored ``name`` fact or from a ``name`` fact earlier in
        this batch (the same turn counts: "I'm Dana. I moved to Lisbon.").
        """
        names: dict[str, str | None] = {}
        order = {tid: (t[2].get("seq", 0), tid) for tid, t in by_id.items()}
        ranked = sorted(
            enumerate(facts),
            key=lambda p: (order.get(p[1].source_turn_ids[0], (0, "")), p[1].predicate != "name", p[0]),
        )
        for _, fact in ranked:
            if fact.subject != "user":
                continue
            user_id = str(by_id[fact.source_turn_ids[0]][2].get("user_id", ""))
            if fact.predicate == "name":
                names[user_id] = fact.value
                continue
            if user_id not in names:
                names[user_id] = await self._known_name(mem, user_id)
            name = names[user_id]
            if name:
                fact.text = _with_name(fact.text, name)

    def _key(self, user_id: str, fact: ExtractedFact) -> str:
        if (
            fact.predicate in ACCUMULATING_PREDICATES
            or fact.predicate.split(":")[0] in ACCUMULATING_PREDICATES
        ):
            return rec.stable_id("k_", user_id, fact.subject, fact.predicate, _norm(fact.value))
        return rec.stable_id("k_", user_id, fact.subject, fact.predicate)

    async def _write_facts(
        self,
        tenant_id: str,
        mem: Any,
        by_id: dict[str, Any],
        facts: list[ExtractedFact],
        observations: list[tuple[str, str, dict[str, Any], ExtractedFact | None]],
        *,
        by_event_time: bool = False,
        merged: dict[str, str] | None = None,
    ) -> dict[str, list[str]]:
        """Write facts with supersession; returns fact ids per source turn.

        A fact never replaces one stated later: it goes to history. With ``by_event_time``
        (``mode="import"``) it is also linked into the key's chain where its time puts it
        (between the facts stated before and after it). A restatement of a stored value is
        merged into the stored fact (a new source), and recorded in ``merged``
        (would-be id -> stored id).
        """
        now = time.time()
        merged = {} if merged is None else merged
        # (id, text, fact, source turn metadata, existing observation metadata or None)
        planned: list[tuple[str, str, ExtractedFact, dict[str, Any], dict[str, Any] | None]] = []
        for fact in facts:
            src = fact.source_turn_ids[0]
            fid = rec.stable_id("f_", tenant_id, src, fact.subject, fact.predicate, _norm(fact.value))
            planned.append((fid, fact.text, fact, by_id[src][2], None))
        fact_ids_by_turn: dict[str, list[str]] = {}
        for oid, doc, md, parsed in observations:
            fact_ids_by_turn.setdefault(md["parent_id"], []).append(oid)
            if parsed is None:
                continue
            parsed.source_turn_ids = [md["parent_id"]]
            planned.append((oid, doc, parsed, by_id[md["parent_id"]][2], md))
        # Observations first within a turn: extracted restatements of them then merge into them.
        planned.sort(key=lambda p: (p[3].get("seq", 0), p[4] is None, p[0]))
        new_ids = [p[0] for p in planned if p[4] is None]
        existing: dict[str, dict[str, Any]] = {}
        if new_ids:  # Chroma rejects an empty id list
            got = await mem.get(ids=new_ids, include=["metadatas"])
            existing = dict(zip(got["ids"], got["metadatas"], strict=True))

        writes: dict[str, tuple[str, dict[str, Any]]] = {}  # id -> (text, metadata) of new facts
        updates: dict[str, dict[str, Any]] = {}  # id -> metadata patch of stored facts
        latest: dict[str, tuple[str, dict[str, Any]]] = {}  # key -> (id, metadata) as of this job
        repairs: list[tuple[str, str, float]] = []  # (old id, new id, superseded_at)
        stored: dict[str, dict[str, Any] | None] = {}  # facts read while walking a chain

        def apply(rid: str, patch: dict[str, Any], base: dict[str, Any]) -> None:
            """Patch fact ``rid`` (metadata ``base``): a new one in place, a stored one in ``updates``."""
            if rid in writes:
                writes[rid] = (writes[rid][0], {**writes[rid][1], **patch})
            else:
                stored.setdefault(rid, base)
                updates.setdefault(rid, {}).update(patch)
            for k, (lid, _) in list(latest.items()):
                if lid == rid:
                    latest[k] = (rid, view_now(rid) or {})

        def view_now(rid: str) -> dict[str, Any] | None:
            if rid in writes:
                return writes[rid][1]
            base = stored.get(rid)
            return None if base is None else {**base, **updates.get(rid, {})}

        async def view(rid: str) -> dict[str, Any] | None:
            """A fact's metadata as this job leaves it so far (``None``: not stored)."""
            if rid not in writes and rid not in stored:
                got = await mem.get(ids=[rid], include=["metadatas"])
                stored[rid] = got["metadatas"][0] if got["ids"] else None
            return view_now(rid)

        async def consolidate(fid: str, src: str, pid: str, pmd: dict[str, Any]) -> None:
            """Merge a restatement (would-be fact ``fid`` of turn ``src``) into stored fact ``pid``."""
            srcs = json.loads(pmd.get("source_ids") or "[]")
            if src not in srcs:
                pattrs = json.loads(pmd.get("attrs") or "{}")
                apply(pid, {"source_ids": json.dumps([*srcs, src]),
                            "attrs": json.dumps({**pattrs, "consolidated_at": now})}, pmd)  # fmt: skip
            merged[fid] = pid
            fact_ids_by_turn[src].remove(fid)
            if pid not in fact_ids_by_turn[src]:
                fact_ids_by_turn[src].append(pid)

        async def insert_in_chain(
            fid: str, src: str, fact: ExtractedFact, md: dict[str, Any], attrs: dict[str, Any],
            pid: str, pmd: dict[str, Any], can_merge: bool,
        ) -> bool:  # fmt: skip
            """Link an older fact between the chain's facts stated before and after it (import).

            Returns True when it restates one of them instead (then merged into that one, if
            ``can_merge``: an observation is a fact of its own).
            """
            stated_at = float(md["created_at"])
            nxt_id, nxt_md = pid, pmd
            pred: tuple[str, dict[str, Any]] | None = None
            for _ in range(10_000):  # a chain is finite; the bound only guards a corrupt cycle
                back = rec.unopt(nxt_md.get("supersedes"))
                bmd = await view(back) if back else None
                if back is None or bmd is None:
                    break
                if float(bmd.get("created_at", 0)) <= stated_at:
                    pred = (back, bmd)
                    break
                nxt_id, nxt_md = back, bmd
            value = _norm(fact.value)
            for rid, rmd in ((nxt_id, nxt_md), *([pred] if pred else [])):
                if can_merge and _norm(str(json.loads(rmd.get("attrs") or "{}").get("value", ""))) == value:
                    await consolidate(fid, src, rid, rmd)
                    return True
            nattrs = json.loads(nxt_md.get("attrs") or "{}")
            md.update(superseded_by=nxt_id, superseded_at=float(nxt_md.get("created_at", stated_at)))
            reason = change_type(fact.value, str(nattrs.get("value", "")))
            nattrs.update(change_type=reason, change_reason=reason, consolidated_at=now)
            apply(nxt_id, {"supersedes": fid, "updated_at": now, "attrs": json.dumps(nattrs)}, nxt_md)
            if pred is not None:
                pred_id, pred_md = pred
                pattrs = json.loads(pred_md.get("attrs") or "{}")
                attrs["change_type"] = change_type(str(pattrs.get("value", "")), fact.value)
                attrs["change_reason"] = attrs["change_type"]
                attrs["last_event"] = "SUPERSEDE"
                md.update(supersedes=pred_id, version=int(pred_md.get("version", 1)) + 1)
                pattrs["consolidated_at"] = now
                apply(pred_id, {"superseded_by": fid, "superseded_at": stated_at, "updated_at": now,
                                "attrs": json.dumps(pattrs)}, pred_md)  # fmt: skip
            attrs["consolidated_at"] = now
            return False

        seq = (await self.data()).seq.next(len(planned) or 1)
        for n, (fid, text, fact, turn_md, obs_md) in enumerate(planned):
            src = fact.source_turn_ids[0]
            fact_ids_by_turn.setdefault(src, [])
            if fid not in fact_ids_by_turn[src]:
                fact_ids_by_turn[src].append(fid)
            user_id = turn_md.get("user_id", "")
            key = self._key(user_id, fact)
            if fid in existing:  # written by an earlier, interrupted run of this job
                md = existing[fid]
                if md.get("is_latest"):
                    latest[key] = (fid, md)
                    if rec.unopt(md.get("supersedes")):
                        repairs.append((md["supersedes"], fid, float(md.get("created_at", now))))
                continue
            if key not in latest:
                got = await mem.get_all(
                    where={"$and": [{"kind": "fact"}, {"fact_key": key}, {"is_latest": True}]},
                    include=["metadatas"],
                )
                cands = sorted(
                    zip(got["ids"], got["metadatas"], strict=True), key=lambda x: x[1].get("created_at", 0)
                )
                if cands:
                    latest[key] = cands[-1]
            prev = latest.get(key)
            stated_at = float(turn_md.get("ts") or now)
            fact_ts = stated_at
            if fact.event_date and re.fullmatch(r"\d{4}-\d{2}-\d{2}", fact.event_date):
                fact_ts = datetime.fromisoformat(fact.event_date).replace(tzinfo=timezone.utc).timestamp()
            attrs = {
                "fact_type": fact.fact_type, "subject": fact.subject, "predicate": fact.predicate,
                "value": fact.value, "event_date": fact.event_date, "confidence": fact.confidence,
                "change_type": None, "origin": "observation" if obs_md is not None else "extracted",
                "entities": fact.entities, "last_event": "ADD",
                # The service's Fact fields, stored (not reconstructed on read):
                "change_reason": None, "consolidated_at": None, "episode_id": None,
                "source_role": rec.unopt(turn_md.get("role")), "root_artifact_id": None,
            }  # fmt: skip
            md = {f: turn_md.get(f, "") for f in SCOPE_FIELDS}
            md.update({k: v for k, v in turn_md.items() if k == "meta" or k.startswith(rec.CALLER_PREFIX)})
            if obs_md is not None:
                md.update({k: v for k, v in obs_md.items() if k == "meta" or k.startswith(rec.CALLER_PREFIX)})
            md.update(
                kind="fact", ts=fact_ts, seq=obs_md["seq"] if obs_md else seq + n, status="active",
                created_at=stated_at, updated_at=now, expires_at=turn_md.get("expires_at", rec.NEVER),
                version=1, is_latest=True, indexed=True, supersedes="", superseded_by="",
                superseded_at=rec.NEVER, source_ids=json.dumps(fact.source_turn_ids), parent_id=src,
                enrich="done", fact_key=key,
            )  # fmt: skip
            if prev is not None:
                pid, pmd = prev
                pattrs = json.loads(pmd.get("attrs") or "{}")
                same = _norm(str(pattrs.get("value", ""))) == _norm(fact.value)
                if same and obs_md is None:
                    # A restatement: the stored fact gains a source instead of a duplicate appearing.
                    await consolidate(fid, src, pid, pmd)
                    continue
                if float(pmd.get("created_at", 0)) > stated_at:
                    # Stated before the current latest (an out-of-order import): history only.
                    md.update(status="superseded", is_latest=False, superseded_by=pid,
                              superseded_at=float(pmd["created_at"]))  # fmt: skip
                    if by_event_time and await insert_in_chain(
                        fid, src, fact, md, attrs, pid, pmd, can_merge=obs_md is None
                    ):
                        continue  # a restatement of a fact of the chain, merged into it
                else:
                    # A caller's observation restating a fact replaces it (it is the better source).
                    attrs["change_type"] = (
                        "refinement" if same else change_type(str(pattrs.get("value", "")), fact.value)
                    )
                    attrs["change_reason"] = attrs["change_type"]
                    attrs["consolidated_at"] = now
                    attrs["last_event"] = "SUPERSEDE"
                    md.update(supersedes=pid, version=int(pmd.get("version", 1)) + 1)
                    patch = {"status": "superseded", "is_latest": False, "superseded_by": fid,
                             "superseded_at": stated_at, "updated_at": now,
                             "attrs": json.dumps({**pattrs, "consolidated_at": now})}  # fmt: skip
                    apply(pid, patch, pmd)
            md["attrs"] = json.dumps(attrs)
            writes[fid] = (text, md)
            if md["is_latest"]:
                latest[key] = (fid, md)
        if writes:
            ids = list(writes)
            await (await self.data()).write_records(
                tenant_id, ids, [writes[i][0] for i in ids], [writes[i][1] for i in ids]
            )
        for old_id, new_id, at in repairs:  # finish a supersession an interrupted run began
            got = await mem.get(ids=[old_id], include=["metadatas"])
            if got["ids"] and got["metadatas"][0].get("is_latest"):
                updates.setdefault(old_id, {}).update(
                    status="superseded",
                    is_latest=False,
                    superseded_by=new_id,
                    superseded_at=at,
                    updated_at=now,
                )
        if updates:
            await self._patch(tenant_id, mem, updates)
        return fact_ids_by_turn

    async def _patch(self, tenant_id: str, mem: Any, updates: dict[str, dict[str, Any]]) -> None:
        """Merge metadata into stored records through the data layer (keeps derived indexes in step)."""
        ids = list(updates)
        got = await mem.get(ids=ids, include=["documents", "metadatas", "embeddings"])
        metas = [{**m, **updates[i]} for i, m in zip(got["ids"], got["metadatas"], strict=True)]
        await (await self.data()).write_records(
            tenant_id, list(got["ids"]), [d or "" for d in got["documents"]], metas,
            [list(map(float, e)) for e in got["embeddings"]],
        )  # fmt: skip

    # ------------------------------------------------------------------ episodes

    async def _session_episodes(
        self, mem: Any, session_id: str, user_id: str | None = None
    ) -> list[tuple[str, str, dict[str, Any]]]:
        """``(id, text, metadata)`` of the session's episodes; only ``user_id``'s when given."""
        clauses: list[dict[str, Any]] = [{"kind": "episode"}, {"session_id": session_id}]
        if user_id is not None:
            clauses.append({"user_id": user_id})
        got = await mem.get_all(where={"$and": clauses}, include=["documents", "metadatas"])
        return list(zip(got["ids"], got["documents"], got["metadatas"], strict=True))

    async def _update_episodes(
        self,
        tenant_id: str,
        mem: Any,
        session_id: str,
        turns: list[tuple[str, str, dict[str, Any], list[float]]],
        fact_ids_by_turn: dict[str, list[str]],
    ) -> None:
        """Append turns to their user's open episode, closing it on a gap, size or topic shift.

        Episodes are kept per session *and* user: in a session shared by several users each
        user's turns, with the assistant turns stored under that user (the replies addressed to
        them), form that user's own episodes, so an episode's turns, facts, title and summary
        come from one user only. A session with one user has one chain of episodes, as before.
        """
        touched: dict[str, dict[str, Any]] = {}
        for user_id, mine in _by_user(turns).items():
            changed = await self._user_episodes(tenant_id, mem, session_id, user_id, mine, fact_ids_by_turn)
            touched.update(changed)
        if touched:
            await self._write_episodes(tenant_id, mem, list(touched.values()))

    async def _user_episodes(
        self,
        tenant_id: str,
        mem: Any,
        session_id: str,
        user_id: str,
        turns: list[tuple[str, str, dict[str, Any], list[float]]],
        fact_ids_by_turn: dict[str, list[str]],
    ) -> dict[str, dict[str, Any]]:
        """One user's turns added to their episodes of the session; returns the episodes changed."""
        open_ep: dict[str, Any] | None = None
        for eid, _doc, md in await self._session_episodes(mem, session_id, user_id):
            attrs = json.loads(md.get("attrs") or "{}")
            if attrs.get("open") and (open_ep is None or attrs["ended_ts"] > open_ep["attrs"]["ended_ts"]):
                open_ep = {"id": eid, "md": md, "attrs": attrs}
        recent: list[list[float]] = []
        if open_ep is not None:
            tail = open_ep["attrs"]["turn_ids"][-6:]
            got = await mem.get(ids=tail, include=["embeddings"])
            recent = [list(map(float, e)) for e in got["embeddings"]]
        touched: dict[str, dict[str, Any]] = {}
        for tid, _doc, md, emb in turns:
            ts = float(md.get("ts", time.time()))
            if open_ep is not None and tid in open_ep["attrs"]["turn_ids"]:
                continue  # added by an interrupted earlier run
            start_new = open_ep is None
            if open_ep is not None:
                a = open_ep["attrs"]
                n = len(a["turn_ids"])
                if ts - a["ended_ts"] > self.episode_gap or n >= self.episode_max_turns:
                    start_new = True
                elif n >= self.min_episode_turns and recent:
                    centroid = [sum(col) / len(recent) for col in zip(*recent, strict=True)]
                    start_new = _cos(emb, centroid) < self.topic_shift
            if start_new:
                if open_ep is not None:
                    open_ep["attrs"]["open"] = False
                    touched[open_ep["id"]] = open_ep
                eid = rec.stable_id("e_", tenant_id, session_id, tid)
                scope = {f: md.get(f, "") for f in SCOPE_FIELDS}
                scope["role"] = ""
                open_ep = {"id": eid, "md": scope, "attrs": {
                    "title": "", "summary": "", "started_at": _iso(ts), "ended_at": _iso(ts),
                    "started_ts": ts, "ended_ts": ts, "fact_ids": [], "turn_ids": [],
                    "open": True}}  # fmt: skip
                recent = []
            a = open_ep["attrs"]
            a["turn_ids"].append(tid)
            a["ended_ts"] = max(a["ended_ts"], ts)
            a["ended_at"] = _iso(a["ended_ts"])
            for f in fact_ids_by_turn.get(tid, []):
                if f not in a["fact_ids"]:
                    a["fact_ids"].append(f)
            recent = [*recent, emb][-6:]
            touched[open_ep["id"]] = open_ep
        return touched

    async def _write_episodes(self, tenant_id: str, mem: Any, episodes: list[dict[str, Any]]) -> None:
        """Summarize and store episodes (each limited to its own user's turns and facts)."""
        now = time.time()
        ids, texts, metas = [], [], []
        for ep in episodes:
            a = ep["attrs"]
            summary = await self._summarize(
                mem, a, final=not a["open"], owner=str(ep["md"].get("user_id") or "")
            )
            a["title"], a["summary"] = summary.title, summary.summary
            md = {f: ep["md"].get(f, "") for f in SCOPE_FIELDS}
            md.update(
                kind="episode", ts=a["started_ts"], seq=ep["md"].get("seq") or (await self.data()).seq.next(),
                status="active", created_at=a["started_ts"], updated_at=now, expires_at=rec.NEVER, version=1,
                is_latest=True, indexed=True, supersedes="", superseded_by="", superseded_at=rec.NEVER,
                source_ids=json.dumps(a["turn_ids"]), parent_id="", enrich="done", attrs=json.dumps(a),
            )  # fmt: skip
            ids.append(ep["id"])
            texts.append(f"{a['title']}: {a['summary']}")
            metas.append(md)
        await (await self.data()).write_records(tenant_id, ids, texts, metas)

    async def _own_only(self, mem: Any, ep: dict[str, Any]) -> bool:
        """Drop from an episode the turns and facts stored under another user than the episode's.

        Episodes written before episodes were per user could hold every user of a shared
        session; :meth:`_summarize` cleans such an episode the same way each time it is
        written. Ids no longer stored are left as they are. Returns whether any was dropped.
        """
        a = ep["attrs"]
        owner = str(ep["md"].get("user_id") or "")
        ids = [*a["turn_ids"], *a["fact_ids"]]
        if not ids:
            return False
        got = await mem.get(ids=ids, include=["metadatas"])
        foreign = {i for i, m in zip(got["ids"], got["metadatas"], strict=True)
                   if str(m.get("user_id") or "") != owner}  # fmt: skip
        if foreign:
            logger.info("episode %s: dropped %d records of other users", ep["id"], len(foreign))
            a["turn_ids"] = [t for t in a["turn_ids"] if t not in foreign]
            a["fact_ids"] = [f for f in a["fact_ids"] if f not in foreign]
        return bool(foreign)

    async def _summarize(
        self, mem: Any, attrs: dict[str, Any], *, final: bool, owner: str | None = None
    ) -> EpisodeSummary:
        """Title and summary: the extractor's ``asummarize`` for closed episodes if it has one.

        With ``owner`` (the episode's user), turns and facts stored under another user are
        first dropped from ``attrs`` (see :meth:`_own_only`), so they neither feed the summary
        nor stay in the episode's lists.
        """
        empty: dict[str, list[Any]] = {"ids": [], "documents": [], "metadatas": []}
        got = (
            await mem.get(ids=attrs["turn_ids"], include=["documents", "metadatas"])
            if attrs["turn_ids"]
            else empty
        )
        facts = (
            await mem.get(ids=attrs["fact_ids"], include=["documents", "metadatas"])
            if attrs["fact_ids"]
            else empty
        )
        if owner is not None:
            foreign = {
                i
                for g in (got, facts)
                for i, m in zip(g["ids"], g["metadatas"], strict=True)
                if str(m.get("user_id") or "") != owner
            }
            if foreign:
                logger.info("episode of %r: dropped %d records of other users", owner, len(foreign))
                attrs["turn_ids"] = [t for t in attrs["turn_ids"] if t not in foreign]
                attrs["fact_ids"] = [f for f in attrs["fact_ids"] if f not in foreign]
        order = {t: i for i, t in enumerate(attrs["turn_ids"])}
        rows = sorted(
            (
                (i, d, m)
                for i, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
                if i in order
            ),
            key=lambda r: order[r[0]],
        )
        turns = [TurnInput(id=i, role=m.get("role") or "user", text=d or "") for i, d, m in rows]
        if final and hasattr(self.extractor, "asummarize"):
            try:
                return await self.extractor.asummarize(turns)
            except Exception as e:  # a summary is not worth failing the job: fall back to rules
                logger.warning("episode summarizer failed, using rules: %s", e)
        kept = set(attrs["fact_ids"])
        pairs = [
            (d, m)
            for i, d, m in zip(facts["ids"], facts["documents"], facts["metadatas"], strict=True)
            if i in kept
        ]
        name = None
        user_id = next((m.get("user_id") for _, _, m in rows if m.get("user_id")), None)
        if any((m.get("role") or "user").lower() in _USER_ROLES for _, _, m in rows):
            name = await self._known_name(mem, user_id or "")
        return summarize_rules(turns, pairs, name=name)

    async def end_session(
        self, session_id: str, *, tenant_id: str = DEFAULT_TENANT, user_id: str | None = None
    ) -> MemoryItem | None:
        """Finish the session's queued work, close its open episodes and return the last one closed.

        Episodes are per user (see :meth:`_update_episodes`): ``user_id`` closes only that
        user's open episode; ``None`` closes every user's open episode of the session.
        """
        self._ensure_worker()
        mine = (tenant_id, session_id)
        while not self._resumed or any(
            (t, s) == mine for t, _, s in [*self._queue, *filter(None, [self._current])]
        ):
            self._raise_if_dead()
            await asyncio.sleep(0.02)
        pair = await (await self.data()).collections(tenant_id, create=False)
        if pair is None:
            return None
        mem = pair[0]
        async with self._lock(tenant_id, session_id):
            closed = None
            for eid, _doc, md in await self._session_episodes(mem, session_id, user_id):
                attrs = json.loads(md.get("attrs") or "{}")
                if not attrs.get("open"):
                    continue
                attrs["open"] = False
                ep = {"id": eid, "md": md, "attrs": attrs}
                await self._write_episodes(tenant_id, mem, [ep])
                closed = eid
        if closed is None:
            return None
        found = await (await self.data()).items(tenant_id, [closed])
        return found[0] if found else None

    # ------------------------------------------------------------------ erasure

    @classmethod
    def detached(cls, data: Callable[[], Awaitable[DataLayer]]) -> Enricher:
        """An enricher on ``data`` whose worker never starts: for :meth:`forget_sources` only.

        An engine without enrichment may hold episodes an earlier, enriching engine wrote.
        """
        helper = cls()
        helper._data_of = data
        return helper

    async def forget_sources(self, tenant_id: str, erased: Sequence[str], session_ids: Sequence[str]) -> int:
        """Regenerate or delete other users' derived records fed by records just erased.

        Called by ``erase(user_id=...)`` after the user's own records are gone. Episodes and
        facts of the sessions the erased user spoke in that still cite an erased id (in
        ``source_ids`` or an episode's turn/fact lists) are records that mixed users, e.g.
        written before episodes were per user: a fact is deleted; an episode loses the erased
        (and any other foreign) turns and facts and is summarized again from what remains, or
        deleted when none of its own turns remain. Their history rows (pre-images, possibly
        holding the erased text) are deleted too.

        Args:
            tenant_id: The tenant erased from.
            erased: Ids of every record erased.
            session_ids: Sessions of those records.

        Returns:
            How many records were regenerated or deleted.
        """
        gone = set(erased)
        sessions = sorted(set(session_ids))
        if not gone or not sessions:
            return 0
        data = await self.data()
        pair = await data.collections(tenant_id, create=False)
        if pair is None:
            return 0
        mem, aux = pair
        affected = {md.get("session_id", "") for _, md in await self._fed_by(mem, sessions, gone)}
        changed = 0
        for session in sorted(affected):
            async with self._lock(tenant_id, session):  # not while a job writes this session
                doomed, redo = [], []
                for rid, md in await self._fed_by(mem, [session], gone):
                    if md.get("kind") != "episode":
                        doomed.append(rid)
                        continue
                    ep = self._episode(rid, md, gone)
                    await self._own_only(mem, ep)  # and any other foreign turns and facts
                    await self._triage(mem, ep, doomed, redo)
                changed += await self._rewrite(tenant_id, mem, aux, doomed, redo)
        if changed:
            logger.info("erase: %d derived records of other users regenerated or deleted", changed)
        return changed

    async def repair_mixed_episodes(self, tenant_id: str) -> int:
        """Rewrite the tenant's episodes that hold other users' turns or facts; returns how many.

        Before store format 4 an episode of a shared session held every user's turns and facts
        (and its summary their words). The data layer flags such a tenant when it is upgraded
        and asks the engine to run this once (``DataLayer.on_upgrade``): each episode keeps only
        its own user's records and is summarized again from them (deleted when none of its own
        turns remain), and its history rows (pre-images, which may quote the other users) go.
        Episodes that hold only their user's records are left untouched.
        """
        data = await self.data()
        pair = await data.collections(tenant_id, create=False)
        if pair is None:
            return 0
        mem, aux = pair
        got = await mem.get_all(where={"kind": "episode"}, include=["metadatas"])
        by_session: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for rid, md in zip(got["ids"], got["metadatas"], strict=True):
            by_session.setdefault(str(md.get("session_id") or ""), []).append((rid, md))
        changed = 0
        for session, episodes in sorted(by_session.items()):
            async with self._lock(tenant_id, session):
                doomed, redo = [], []
                for rid, md in episodes:
                    ep = self._episode(rid, md, set())
                    if await self._own_only(mem, ep):  # else: its own user's records only
                        await self._triage(mem, ep, doomed, redo)
                changed += await self._rewrite(tenant_id, mem, aux, doomed, redo)
        if changed:
            logger.info("tenant %r: %d episodes mixing users rewritten (store format 4)", tenant_id, changed)
        return changed

    @staticmethod
    def _episode(rid: str, md: dict[str, Any], gone: set[str]) -> dict[str, Any]:
        """A stored episode as the rewrite works on it, without the ids in ``gone``."""
        attrs = json.loads(md.get("attrs") or "{}")
        attrs["turn_ids"] = [t for t in attrs.get("turn_ids", []) if t not in gone]
        attrs["fact_ids"] = [f for f in attrs.get("fact_ids", []) if f not in gone]
        return {"id": rid, "md": md, "attrs": attrs}

    @staticmethod
    async def _triage(mem: Any, ep: dict[str, Any], doomed: list[str], redo: list[dict[str, Any]]) -> None:
        """Queue a cleaned episode for its rewrite.

        To ``redo`` with its time span recomputed from its turns, or to ``doomed`` when none of
        its own turns is stored any more.
        """
        attrs = ep["attrs"]
        turns = await mem.get(ids=attrs["turn_ids"], include=["metadatas"]) if attrs["turn_ids"] else None
        stamps = [float(m["ts"]) for m in turns["metadatas"] if m.get("ts") is not None] if turns else []
        if not stamps:
            doomed.append(ep["id"])
            return
        attrs.update(started_ts=min(stamps), ended_ts=max(stamps))
        attrs.update(started_at=_iso(attrs["started_ts"]), ended_at=_iso(attrs["ended_ts"]))
        redo.append(ep)

    async def _rewrite(
        self, tenant_id: str, mem: Any, aux: Any, doomed: list[str], redo: list[dict[str, Any]]
    ) -> int:
        """Delete ``doomed``, summarize and store ``redo`` again, and drop both's history rows."""
        ids = doomed + [ep["id"] for ep in redo]
        if not ids:
            return 0
        history = await aux.get_all(
            where={"$and": [{"type": "history"}, {"memory_id": {"$in": ids}}]}, include=[]
        )
        if history["ids"]:
            await aux.delete(list(history["ids"]))
        await (await self.data()).delete_records(tenant_id, doomed)
        if redo:
            await self._write_episodes(tenant_id, mem, redo)
        return len(ids)

    @staticmethod
    async def _fed_by(mem: Any, sessions: list[str], gone: set[str]) -> list[tuple[str, dict[str, Any]]]:
        """``(id, metadata)`` of the sessions' live facts and episodes citing an id in ``gone``."""
        got = await mem.get_all(
            where={"$and": [{"kind": {"$in": ["fact", "episode"]}}, {"session_id": {"$in": sessions}}]},
            include=["metadatas"],
        )
        out = []
        for rid, md in zip(got["ids"], got["metadatas"], strict=True):
            if rid in gone:
                continue
            cited = set(json.loads(md.get("source_ids") or "[]"))
            if md.get("kind") == "episode":
                attrs = json.loads(md.get("attrs") or "{}")
                cited.update(attrs.get("turn_ids", []), attrs.get("fact_ids", []))
            if cited & gone:
                out.append((rid, md))
        return out


def _by_user(turns: list[tuple[str, str, dict[str, Any], list[float]]]) -> dict[str, list[Any]]:
    """Turns grouped by their ``user_id`` (``""`` when none), each group in the given order."""
    groups: dict[str, list[Any]] = {}
    for t in turns:
        groups.setdefault(str(t[2].get("user_id") or ""), []).append(t)
    return groups


def _with_name(text: str, name: str) -> str:
    """``text`` with the generic "The user" replaced by the user's name."""
    return re.sub(r"\b[Tt]he user\b", name, text)


def _merge_same_text(facts: list[ExtractedFact]) -> list[ExtractedFact]:
    """One fact per (source turn, text): extra facts that read the same add nothing to search.

    The most confident one is kept and gains the others' entities. (The rule extractor states
    each aspect of a sentence in its own words, so this only trims other extractors' output.)
    """
    kept: dict[tuple[str, str], ExtractedFact] = {}
    for fact in sorted(facts, key=lambda f: -f.confidence):
        k = (fact.source_turn_ids[0], _norm(fact.text).rstrip("."))
        if k in kept:
            ents = kept[k].entities
            ents.extend(e for e in fact.entities if e not in ents)
            logger.debug("dropped fact %r/%r: same text as %r", fact.predicate, fact.value, kept[k].predicate)
            continue
        kept[k] = fact
    return [f for f in facts if any(f is k for k in kept.values())]


_USER_ROLES = frozenset({"user", "human", "me"})
_NON_SPEAKERS = frozenset({"assistant", "ai", "system", "tool", "function", "bot", "model"})
_TITLE_STOP = frozenset(
    [
        "just",
        "moved",
        "move",
        "moving",
        "start",
        "starting",
        "started",
        "work",
        "working",
        "worked",
        "going",
        "goes",
        "live",
        "lives",
        "lived",
        "tricky",
        "places",
        "place",
        "things",
        "want",
        "wants",
        "need",
        "needs",
        "make",
        "makes",
        "made",
        "take",
        "takes",
        "took",
        "keep",
        "come",
        "came",
        "welcome",
        "suggestions",
        "suggestion",
        "good",
        "know",
        "really",
        "also",
        "back",
        "time",
        "times",
        "days",
        "something",
        "anything",
        "always",
        "never",
        "maybe",
        "sounds",
        "sound",
        "hear",
        "heard",
        "tell",
        "told",
        "said",
        "says",
        "getting",
        "trying",
        "looking",
    ]
)


def summarize_rules(
    turns: list[TurnInput],
    facts: list[tuple[str, dict[str, Any]]],
    *,
    name: str | None = None,
    max_facts: int = 5,
    max_chars: int = 600,
) -> EpisodeSummary:
    """LLM-free episode title and summary.

    The title names who spoke (the user's name when known) and the episode's top topics:
    names and words that recur across turns and its facts ("Dana: Lisbon, shellfish, nurse").
    The summary is the most confident facts, each stated once, in the order they were said,
    cut at a sentence boundary within ``max_chars``.

    Args:
        turns: The episode's turns, in order.
        facts: ``(text, metadata)`` of the facts extracted from those turns.
        name: The user's name, if they gave it.
        max_facts: Facts in the summary at most.
        max_chars: Length bound of the summary.
    """
    metas = [json.loads(m.get("attrs") or "{}") for _, m in facts]
    name = name or next(
        (str(a["value"]) for a in metas if a.get("predicate") == "name" and a.get("subject") == "user"), None
    )
    speakers: list[str] = []
    for t in turns:
        role = t.role.strip()
        if role.lower() in _NON_SPEAKERS:
            continue
        label = (name or "User") if role.lower() in _USER_ROLES else role
        if label not in speakers:
            speakers.append(label)
    who = " & ".join(speakers[:3]) or "Conversation"
    title = f"{who}: {', '.join(_topics(turns, facts, exclude={s.lower() for s in speakers}))}"
    title = title.rstrip(": ")

    # Distinct facts, most confident first; a fact whose text another one contains adds nothing.
    order = {t.id: i for i, t in enumerate(turns)}
    ranked = sorted(
        ((d.strip(), m, a) for (d, m), a in zip(facts, metas, strict=True) if d and d.strip()),
        key=lambda f: (-float(f[2].get("confidence", 0.5)), order.get(f[1].get("parent_id", ""), 0)),
    )
    chosen: list[tuple[str, dict[str, Any]]] = []
    for text, md, attrs in ranked:
        if attrs.get("predicate") == "name" and name and name in title:
            continue  # the title already says who this is
        words = _words(text)
        if any(words <= _words(c) or _words(c) <= words for c, _ in chosen):
            continue  # restates part of a chosen fact ("partner is Sam" after "with partner Sam")
        chosen.append((text, md))
        if len(chosen) >= max_facts:
            break
    chosen.sort(key=lambda c: (order.get(c[1].get("parent_id", ""), 0), float(c[1].get("seq", 0))))
    lines = [c for c, _ in chosen]
    if not lines:
        longest = sorted((t for t in turns if t.text.strip()), key=lambda t: -len(t.text))[:3]
        lines = [f"{t.role}: {t.text.strip().split('. ')[0][:200]}" for t in longest]
    summary = ""
    for line in lines:
        line = line if line.endswith((".", "!", "?")) else line + "."
        if summary and len(summary) + 1 + len(line) > max_chars:
            break
        summary = f"{summary} {line}".strip()
    if len(summary) > max_chars:  # a single over-long line: cut at a word boundary
        summary = summary[: max_chars - 1].rsplit(" ", 1)[0] + "…"
    return EpisodeSummary(title=title, summary=summary)


def _words(text: str) -> set[str]:
    return {w.removesuffix("'s") for w in re.findall(r"[a-z0-9']+", text.lower()) if w not in _STOP}


def _topics(
    turns: list[TurnInput], facts: list[tuple[str, dict[str, Any]]], *, exclude: set[str]
) -> list[str]:
    """Up to three topic words: names and content words that recur, favouring what facts mention."""
    score: Counter[str] = Counter()
    shown: dict[str, str] = {}
    first: dict[str, int] = {}
    fact_text = " ".join(d for d, _ in facts).lower()
    for i, t in enumerate(turns):
        for m in re.finditer(r"[A-Za-z][A-Za-z'-]{2,}", t.text):
            w = m.group(0)
            low = w.lower().removesuffix("'s")
            if low in _STOP or low in _TITLE_STOP or low in exclude or low == "user" or w in _NOT_ENTITY:
                continue
            # A capitalised word that does not start a sentence is a name: shown capitalised.
            start = m.start() == 0 or t.text[: m.start()].rstrip()[-1:] in ".!?"
            if len(low) < 4 and (start or not w[0].isupper()):
                continue  # short common words; short names ("Sam") stay
            if w[0].isupper() and not start:
                shown[low] = w.removesuffix("'s")
            shown.setdefault(low, low)
            first.setdefault(low, i)
            score[low] += 1
    for low in score:
        if re.search(rf"\b{re.escape(low)}\b", fact_text):
            score[low] += 2
        if shown[low][0].isupper():
            score[low] += 1
    best = sorted(score, key=lambda w: (-score[w], first[w]))[:3]
    return [shown[w] for w in best]
