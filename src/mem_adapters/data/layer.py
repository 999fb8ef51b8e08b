"""The data layer: Chroma (the source of truth) and every index derived from it, kept in step.

Writes go through :meth:`DataLayer.write_records`, :meth:`DataLayer.set_metadata` and
:meth:`DataLayer.delete_records`. Each stamps a revision (:mod:`.clock`) on what it writes;
a delete also leaves a *tombstone* (``type: tombstone``, the deleted id, its user and the
revision; no text) in the tenant's aux collection. A process that holds a partition
(:mod:`.partition`) applies its own writes to it directly and, before each search, reads
only what other processes changed since its watermark: records whose ``rev`` is newer, and
newer tombstones. Nothing is rebuilt because someone else wrote, and a write acknowledged
by one process is in every other process's next search (within the clock-skew window).

A batch larger than one Chroma call is atomic (:mod:`.txn`): staged invisibly, then committed
by one marker row in aux; every read of the memory collection hides uncommitted records, and
a catch-up that sees a commit marker applies the whole batch at once.

Partitions are loaded lazily, one per searched scope (a user of a tenant, or the whole
tenant), with paged reads, and evicted least-recently-used when their total size passes
``partition_budget_mb`` (``$MEM_ADAPTERS_PARTITION_BUDGET_MB``, default 1024).
Tombstones older than ``TOMBSTONE_TTL_S`` are removed by the expiry sweep; a partition
that has not caught up for that long is reloaded instead.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import os
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np

from .. import records as rec
from ..filters import all_of
from ..models import MemoryItem
from . import chroma as chroma_mod
from . import txn as txn_mod
from .chroma import AUX_VECTOR, SCHEMA, ChromaStore, Collection
from .clock import RevisionClock, SeqClock
from .erasure import SAMPLE, Eraser, ErasureReport, Needles, needles_from
from .lock import StoreLock
from .partition import Partition
from .snapshots import MIN_RECORDS, SnapshotStore

logger = logging.getLogger(__name__)

BUDGET_ENV = "MEM_ADAPTERS_PARTITION_BUDGET_MB"
DEFAULT_BUDGET_MB = 1024
TOMBSTONE_TTL_S = 24 * 3600.0
TOMBSTONE_PREFIX = "x:"
LOAD_PAGE = 1000  # records per page when a partition is loaded (bounds the transient memory)
# A user's partition of a tenant holding at most this many records is read whole and kept to
# the user here: Chroma answers ``where={"user_id": u}`` by first listing every record of
# ``u`` in the whole store (its metadata index is not per collection), which costs the store's
# size when many tenants share user ids (2,000 tenants x 50 with one user id: 139 ms against
# 12 ms for the collection's 50 records; ``benchmarks/chroma_sqlite.py``).
WHOLE_READ_MAX = 256
# A catch-up asks for up to this many changed records whole (texts and vectors) in its first
# read: the usual catch-up (a few writes since the last search) is then one read, not two.
# More than that reads metadata first and fetches only the scope's records.
INLINE_CHANGES = 64
# A scope's dense candidates come from Chroma's vector index (:meth:`DataLayer.nearest`) with
# this many times the candidates wanted, scaled by tenant size / rows in scope, and at most
# ANN_MAX_FETCH of them: past that a scope is a small share of its tenant, scored exactly.
ANN_OVERFETCH = 2.0
ANN_MAX_FETCH = 2000

PartitionKey = tuple[str, str | None]

FORMAT = SCHEMA
"""Store format of a tenant (``ma_schema`` of its memory collection): 2 stamped revisions on
every record; 3 scopes caller ids per user and session (see ``_migrate_caller_ids``); 4 has
episodes per user (an older tenant is flagged with :data:`REPAIR_KEY` until repaired)."""
# A tenant written before format 4 may hold closed episodes mixing the users of a shared
# session; it carries this flag until the engine's repair (``on_upgrade``) has rewritten them.
REPAIR_KEY = "ma_repair_episodes"
REPAIR_RETRY_S = 60.0
_IN_REPAIR: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "mem_adapters_in_repair", default=None
)


def _generated(record_id: str, meta: dict[str, Any]) -> bool:
    """Whether a format-2 record's id was made by the engine (not a caller's id)."""
    return rec.engine_made_id(record_id, meta.get("kind"))


def _whole(got: dict[str, Any]) -> dict[str, tuple[str | None, dict[str, Any], Any]]:
    """``{id: (text, metadata, vector)}`` of a read that asked for texts and vectors, else ``{}``."""
    docs, embs = got.get("documents"), got.get("embeddings")
    if docs is None or embs is None or not got["ids"]:
        return {}
    return {i: (docs[n], got["metadatas"][n] or {}, embs[n]) for n, i in enumerate(got["ids"])}


def user_of(meta: dict[str, Any]) -> str:
    """The partition a record belongs to: its ``user_id`` as stored (``""`` for none)."""
    u = meta.get("user_id")
    return u if isinstance(u, str) else ""


class DataLayer:
    """Owns the Chroma store and the derived partitions of every tenant.

    Args:
        store: The per-tenant Chroma collections.
        dimension: Embedding dimension (partitions hold unit vectors of this size).
        clock: Revision clock (tests pass one with an offset).
        partition_budget_mb: Memory budget of the partition cache.
        snapshots: Where derived snapshots of large partitions are kept (``None``: nowhere).
        embed: Coroutine function embedding record texts (used when a write brings no vectors).
        seq: The process's write-order clock.
        exclusive: The store folder's lock when this process holds it (embedded store): no
            other process writes then, so a partition caught up since this process's last
            write (:func:`mem_adapters.data.lock.write_generation`) skips the catch-up read.
    """

    def __init__(
        self,
        store: ChromaStore,
        dimension: int,
        *,
        clock: RevisionClock | None = None,
        partition_budget_mb: float | None = None,
        snapshots: SnapshotStore | None = None,
        embed: Callable[[list[str]], Awaitable[list[list[float]]]] | None = None,
        seq: SeqClock | None = None,
        exclusive: StoreLock | None = None,
        on_upgrade: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.store = store
        # Derived-record repair an upgraded tenant still owes (REPAIR_KEY): run by the engine,
        # which has the enrichment code; the data layer only says when.
        self.on_upgrade = on_upgrade
        self._repairs: dict[str, asyncio.Future[None]] = {}  # tenant -> its repair, running
        self._repair_failed: dict[str, float] = {}  # tenant -> monotonic time its repair last failed
        self._exclusive = exclusive
        # Partition -> this process's write count when its last catch-up read started.
        self._current_at: weakref.WeakKeyDictionary[Partition, int] = weakref.WeakKeyDictionary()
        self._embed = embed
        self.seq = seq or SeqClock()
        self.snapshots = snapshots
        self._snapped: dict[PartitionKey, int] = {}  # partition version last written to disk
        self.dimension = dimension
        self.clock = clock or RevisionClock()
        if partition_budget_mb is None:
            partition_budget_mb = float(os.environ.get(BUDGET_ENV) or DEFAULT_BUDGET_MB)
        self.budget_bytes = int(partition_budget_mb * 1024 * 1024)
        self._parts: OrderedDict[PartitionKey, Partition] = OrderedDict()
        self._locks: dict[PartitionKey, asyncio.Lock] = {}
        self.reads = 0  # records read from Chroma for partitions (loads and catch-ups)
        self.ann_queries = 0  # dense candidate queries sent to Chroma's vector index (nearest)
        # Records of each tenant's memory collection when last counted, for WHOLE_READ_MAX.
        # Chroma's count costs the collection's size (15 ms at 100k): a large tenant is counted
        # once per process (only an erase shrinks it, and a filtered load is right for any
        # size), a small one again at each load (cheap, and it may have grown).
        self._sizes: dict[str, int] = {}

    # ------------------------------------------------------------------ collections

    async def collections(
        self, tenant_id: str, *, create: bool = True
    ) -> tuple[Collection, Collection] | None:
        """The tenant's ``(mem, aux)`` collections (``None`` if absent and not ``create``).

        A tenant of an older store format (``ma_schema`` of its memory collection, see
        :data:`FORMAT`) is migrated on its first open, in place.
        """
        pair = await self.store.open(tenant_id, create=create)
        if pair is not None and pair[0].metadata.get("ma_schema", 1) < FORMAT:
            schema = pair[0].metadata.get("ma_schema", 1)
            if schema < 2:
                await self._migrate_revisions(tenant_id, pair)
            if schema < 3:
                await self._migrate_caller_ids(
                    tenant_id, (await self.store.open(tenant_id, create=False)) or pair
                )
            await self._stamp(tenant_id, {"ma_schema": FORMAT, REPAIR_KEY: True})  # format 4
            pair = await self.store.open(tenant_id, create=False)  # handles with the new format
        if (
            pair is not None
            and pair[0].metadata.get(REPAIR_KEY)
            and self.on_upgrade is not None
            and _IN_REPAIR.get() != tenant_id  # the repair itself reads and writes the tenant
            and time.monotonic() - self._repair_failed.get(tenant_id, -REPAIR_RETRY_S) >= REPAIR_RETRY_S
        ):
            # Every other caller waits for the one repair: none may read what it is rewriting.
            repair = self._repairs.get(tenant_id)
            if repair is None:
                repair = self._repairs[tenant_id] = asyncio.ensure_future(self._repair(tenant_id))
            await asyncio.shield(repair)
            pair = await self.store.open(tenant_id, create=False)
        return pair

    async def _repair(self, tenant_id: str) -> None:
        assert self.on_upgrade is not None
        _IN_REPAIR.set(tenant_id)  # this task's context only
        try:
            await self.on_upgrade(tenant_id)
            await self._stamp(tenant_id, {REPAIR_KEY: False})  # only once it is done: a crash reruns it
        except Exception:
            # A repair that fails (a summarizer's LLM down, say) must not make the tenant
            # unreadable: the flag stays, and a read after REPAIR_RETRY_S tries again.
            self._repair_failed[tenant_id] = time.monotonic()
            logger.exception(
                "repairing tenant %r after its upgrade failed; retried in %d s", tenant_id, REPAIR_RETRY_S
            )
        finally:
            self._repairs.pop(tenant_id, None)

    async def _stamp(self, tenant_id: str, fields: dict[str, Any]) -> None:
        """Merge ``fields`` into the metadata of the tenant's memory collection."""
        pair = await self.store.open(tenant_id, create=False)
        if pair is None:
            return
        await pair[0].modify_metadata({**pair[0].metadata, **fields})
        self.store.forget(tenant_id)  # cached handles carry the old metadata

    async def mem(self, tenant_id: str) -> Collection:
        """The tenant's memory collection (created if absent)."""
        pair = await self.collections(tenant_id)
        assert pair is not None
        return pair[0]

    async def _migrate_revisions(self, tenant_id: str, pair: tuple[Collection, Collection]) -> None:
        """Stamp a revision on every record of a store written before revisions existed."""
        mem, aux = pair
        got = await mem.get_all(include=["metadatas"])
        rev = self.clock.next(max(1, len(got["ids"])))
        ids = list(got["ids"])
        await mem.update_metadata(ids, [{"rev": rev + n} for n in range(len(ids))])
        await mem.modify_metadata({**mem.metadata, "ma_schema": 2})
        await aux.delete(["__generation__"])  # the old whole-tenant staleness token
        self.store.forget(tenant_id)
        logger.info("stamped revisions on %d records of tenant %r (store format 2)", len(ids), tenant_id)

    async def _migrate_caller_ids(self, tenant_id: str, pair: tuple[Collection, Collection]) -> None:
        """Store format 3: mark the caller ids kept by a format-2 store.

        Format 2 stored a turn given a ``Turn.id`` (a raw memory given a ``memory_id``) under
        that id itself, tenant-wide; format 3 stores it under an id scoped to its user and
        session (:func:`mem_adapters.records.turn_id`, :func:`~mem_adapters.records.raw_id`)
        and keeps the caller's id as ``caller_id``. Old records keep their stored ids (an id
        map, so nothing that points at them changes: observations, facts' sources, history,
        jobs); each gets ``caller_id`` = its id when that id is not one the engine makes
        (``t_`` + 32 hex content hashes, ``mem_`` + 32 hex), without the ``lc:{session}:``
        prefix format 2's LangChain history put on message ids
        (:func:`mem_adapters.records.legacy_caller_of`). Writes resolve a caller id to
        such a record when its scope matches (see ``ops.writes``), so a re-sent old turn is
        still a no-op.

        Crash-safe and idempotent: the marks are written in place (no copy held only in
        memory), records already marked are skipped, and the format is stamped last, so a
        process killed midway migrates the rest on its next open.
        """
        mem, _ = pair
        got = await mem.get_all(where={"kind": {"$in": ["turn", "raw"]}}, include=["metadatas"])
        marks = {
            i: rec.legacy_caller_of(i, m)
            for i, m in zip(got["ids"], got["metadatas"], strict=True)
            if "caller_id" not in m and not _generated(i, m)
        }
        ids = list(marks)
        if ids:
            rev = self.clock.next(len(ids))
            await mem.update_metadata(
                ids, [{"caller_id": marks[i], "rev": rev + n} for n, i in enumerate(ids)]
            )
        owned = await self._assign_store_users(mem, pair[1])
        if owned and self.snapshots is not None:
            self.snapshots.drop(tenant_id)  # records changed partitions
        await mem.modify_metadata({**mem.metadata, "ma_schema": 3})
        self.store.forget(tenant_id)
        if ids or owned:
            logger.info(
                "marked %d caller ids and gave %d LangGraph items their user in tenant %r (store format 3)",
                len(ids), owned, tenant_id,
            )  # fmt: skip

    async def _assign_store_users(self, mem: Collection, aux: Collection) -> int:
        """Give format-2 LangGraph items (and their chunks and history rows) their user.

        See :func:`mem_adapters.records.legacy_store_user`. Idempotent: an item given its user
        is not picked again, so a rerun after a crash finishes the rest.
        """
        got = await mem.get_all(where={rec.LEGACY_STORE_MARK: True}, include=["metadatas"])
        users = {
            i: u for i, m in zip(got["ids"], got["metadatas"], strict=True) if (u := rec.legacy_store_user(m))
        }
        if not users:
            return 0
        raws = [
            i
            for i, m in zip(got["ids"], got["metadatas"], strict=True)
            if i in users and m.get("kind") == "raw"
        ]
        history: dict[str, str] = {}
        for start in range(0, len(raws), LOAD_PAGE):
            part = raws[start : start + LOAD_PAGE]
            rows = await aux.get_all(
                where={"$and": [{"type": "history"}, {"memory_id": {"$in": part}}]}, include=["metadatas"]
            )
            for hid, hm in zip(rows["ids"], rows["metadatas"], strict=True):
                history[hid] = users[hm["memory_id"]]
        if history:  # history first: a rerun finds the items again until they are done
            await aux.update_metadata(list(history), [{"user_id": u} for u in history.values()])
        ids = list(users)
        rev = self.clock.next(len(ids))
        await mem.update_metadata(ids, [{"user_id": users[i], "rev": rev + n} for n, i in enumerate(ids)])
        return len(raws)

    # ------------------------------------------------------------------ writes

    @staticmethod
    def live(where: dict[str, Any] | None = None) -> dict[str, Any]:
        """``where`` ANDed with "not expired" (expiry is invisible to every read at once)."""
        clause = all_of({"expires_at": {"$gt": time.time()}}, where)
        assert clause is not None
        return clause

    async def write_records(
        self,
        tenant_id: str,
        ids: list[str],
        texts: list[str],
        metas: list[dict[str, Any]],
        embeddings: list[list[float]] | None = None,
    ) -> None:
        """Upsert records atomically, each stamped with a new revision.

        A batch within Chroma's max batch is one Chroma call (one SQLite transaction); a larger
        one is staged and committed (:func:`.txn.write_batch`): nothing of it is visible, in
        any process, until all of it is. Without ``embeddings`` the texts are embedded (their
        exact text, see :func:`mem_adapters.records.embedding_text`).

        Raises:
            BatchAbortedError: a large batch took too long to stage (rolled back).
        """
        if not ids:
            return
        if embeddings is None:
            if self._embed is None:
                raise ValueError("this data layer has no embedder: pass embeddings")
            embeddings = await self._embed(
                [rec.embedding_text(t, m) for t, m in zip(texts, metas, strict=True)]
            )
        rev = self.clock.next(len(ids))
        # ``txn: None`` clears the staging mark of a crashed large batch a write replaces
        # (Chroma merges metadata on upsert: the mark would otherwise hide the new record).
        stamped = [{**m, "rev": rev + n, txn_mod.TXN_FIELD: None} for n, m in enumerate(metas)]
        mem, aux = await self._pair(tenant_id)
        if len(ids) <= mem.max_batch:
            await mem.upsert(ids, embeddings, texts, stamped)
        else:
            stamped = await txn_mod.write_batch(
                mem, aux, ids, embeddings, texts, stamped, clock=self.clock, grace_s=self.store.txn_grace_s
            )
        for key, part in self._held(tenant_id):
            for i, t, m, e in zip(ids, texts, stamped, embeddings, strict=True):
                if key[1] is None or key[1] == user_of(m):
                    part.upsert(i, t, m, e)

    async def set_metadata(self, tenant_id: str, ids: list[str], changes: dict[str, Any]) -> int:
        """Merge ``changes`` into the metadata of existing records (a new revision each).

        Returns how many of ``ids`` existed. Documents and embeddings are kept as they are.
        """
        mem = await self.mem(tenant_id)
        got = await mem.get(ids=ids, include=["documents", "metadatas", "embeddings"])
        if not got["ids"]:
            return 0
        rev = self.clock.next(len(got["ids"]))
        revs = [{**changes, "rev": rev + n} for n in range(len(got["ids"]))]
        await mem.update_metadata(list(got["ids"]), revs)
        held = self._held(tenant_id)
        for n, (i, d, m) in enumerate(zip(got["ids"], got["documents"], got["metadatas"], strict=True)):
            meta = {**m, **revs[n]}
            for key, part in held:
                if key[1] is None or key[1] == user_of(meta):
                    part.upsert(i, d or "", meta, got["embeddings"][n])
        return len(got["ids"])

    async def delete_records(self, tenant_id: str, ids: list[str]) -> None:
        """Delete records, leaving a tombstone (id, user, revision; no text) for each."""
        if not ids:
            return
        mem, aux = await self._pair(tenant_id)
        got = await mem.get(ids=ids, include=["metadatas"])
        if not got["ids"]:
            return
        await mem.delete(list(got["ids"]))
        # After the delete: a crash in between leaves a ghost in other processes' partitions,
        # which search drops when it reads the hit back from Chroma (see fetch()).
        rev = self.clock.next(len(got["ids"]))
        metas = [{"type": "tombstone", "target": i, "user_id": user_of(m), "rev": rev + n}
                 for n, (i, m) in enumerate(zip(got["ids"], got["metadatas"], strict=True))]  # fmt: skip
        await aux.upsert([TOMBSTONE_PREFIX + i for i in got["ids"]], [AUX_VECTOR] * len(metas),
                         [""] * len(metas), metas)  # fmt: skip
        for _, part in self._held(tenant_id):
            for i in got["ids"]:
                part.remove(i)

    async def _pair(self, tenant_id: str) -> tuple[Collection, Collection]:
        pair = await self.collections(tenant_id)
        assert pair is not None
        return pair

    async def purge_tombstones(self, tenant_id: str) -> int:
        """Remove tombstones older than the TTL; returns the count."""
        pair = await self.collections(tenant_id, create=False)
        if pair is None:
            return 0
        horizon = self.clock.now() - int(TOMBSTONE_TTL_S * 1e9)
        got = await pair[1].get_all(
            where={"$and": [{"type": "tombstone"}, {"rev": {"$lt": horizon}}]}, include=[]
        )
        await pair[1].delete(list(got["ids"]))
        return len(got["ids"])

    def drop_tenant(self, tenant_id: str) -> None:
        """Forget every partition and snapshot of a tenant (after an erase or a migration)."""
        for key in [k for k in self._parts if k[0] == tenant_id]:
            del self._parts[key]
        self._sizes.pop(tenant_id, None)
        if self.snapshots is not None:
            self.snapshots.drop(tenant_id)

    def drop_all(self) -> None:
        """Forget every partition and snapshot (the embedder changed)."""
        self._parts.clear()
        if self.snapshots is not None:
            self.snapshots.drop_all()

    def drop_user(self, tenant_id: str, user_id: str) -> None:
        """Forget a user's partition and the tenant-wide one, and their snapshots (user erased)."""
        for key in [(tenant_id, user_id), (tenant_id, None)]:
            self._parts.pop(key, None)
        if self.snapshots is not None:
            self.snapshots.drop(tenant_id, user_id)

    # ------------------------------------------------------------------ erasure

    async def erasure_needles(
        self, tenant_id: str, mem_ids: Sequence[str], aux_ids: Sequence[str]
    ) -> Needles:
        """A sample of the records about to be erased, as the bytes the residue check greps for."""
        pair = await self.collections(tenant_id, create=False)
        if pair is None:
            return Needles()
        mem_sample, aux_sample = list(mem_ids)[:SAMPLE], list(aux_ids)[: SAMPLE // 2]
        got = await pair[0].get(ids=mem_sample, include=["documents", "embeddings"]) if mem_sample else None
        needles = needles_from(got["ids"], got["documents"], got["embeddings"]) if got else Needles()
        if aux_sample:  # history rows hold earlier texts (no vectors)
            more = await pair[1].get(ids=aux_sample, include=["documents"])
            extra = needles_from(more["ids"], more["documents"], None)
            needles.ids += extra.ids
            needles.pairs += extra.pairs
        return needles

    async def scrub_after_user_erase(self, tenant_id: str, needles: Needles) -> ErasureReport:
        """After a user's records were deleted: leave nothing of them on disk.

        :class:`~.erasure.Eraser` rebuilds the tenant's collections from the surviving records
        and scrubs the embedded store's files, then greps them for ``needles`` (from
        :meth:`erasure_needles`, read before the delete). On a server the report's ``note``
        says what the operator must run. Tombstones of the deleted records (ids only) tell
        other processes to drop them. A rerun after a crash finishes the job.
        """
        report = await Eraser(self.store, self.clock).after_user_erase(tenant_id, needles)
        if self.snapshots is not None and report.records_rebuilt:
            self.snapshots.drop(tenant_id)  # the rebuild gave the collections new ids: all stale
        return report

    async def erase_tenant(self, tenant_id: str, mem_ids: list[str], aux_ids: list[str]) -> ErasureReport:
        """Drop a tenant's collections, partitions and snapshots, leave nothing on disk (embedded)."""
        needles = await self.erasure_needles(tenant_id, mem_ids, aux_ids)
        self.drop_tenant(tenant_id)
        report = await Eraser(self.store).drop_tenant(tenant_id, needles)
        self.drop_tenant(tenant_id)  # a search meanwhile may have loaded or snapshotted it again
        return report

    # ------------------------------------------------------------------ reads

    async def fetch(self, tenant_id: str, ids: Sequence[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        """Live records by id from Chroma: ``{id: (text, metadata)}``."""
        pair = await self.collections(tenant_id, create=False) if ids else None
        if pair is None:  # reads never create a tenant
            return {}
        got = await pair[0].get(ids=list(dict.fromkeys(ids)), include=["documents", "metadatas"])
        now = time.time()
        return {
            i: (d or "", m)
            for i, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
            if m.get("expires_at", rec.NEVER) > now
        }

    async def items(self, tenant_id: str, ids: Sequence[str]) -> list[MemoryItem]:
        """Live records by id as public items, in the given order (unknown ids skipped)."""
        found = await self.fetch(tenant_id, ids)
        return [rec.to_item(i, *found[i]) for i in ids if i in found]

    async def session_turns(
        self, tenant_id: str, session_id: str, *, user_id: str | None = None, status: str | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        """``(id, metadata)`` of a session's live turns in write order (``seq``, then id)."""
        pair = await self.collections(tenant_id, create=False)
        if pair is None:
            return []
        # Chroma is asked for the session alone, the rest is checked here: it answers each
        # clause of an $and by listing every record the clause matches in the whole store, and
        # "kind", "user_id", "status" and expiry match nearly all (a session of a 100k-record
        # tenant: 572 ms ANDed, 5.7 ms by session; benchmarks/chroma_sqlite.py).
        got = await pair[0].get_all(where={"session_id": session_id}, include=["metadatas"])
        now = time.time()
        rows = [
            (i, m)
            for i, m in zip(got["ids"], got["metadatas"], strict=True)
            if m.get("kind") == "turn"
            and (user_id is None or m.get("user_id") == user_id)
            and (status is None or m.get("status") == status)
            and isinstance(m.get("expires_at"), int | float)
            and m["expires_at"] > now
        ]
        return sorted(rows, key=lambda x: (x[1]["seq"], x[0]))

    async def tenants(self) -> list[str]:
        """Every tenant id that holds memories in this store."""
        return await self.store.tenants()

    def _held(self, tenant_id: str) -> list[tuple[PartitionKey, Partition]]:
        return [(k, p) for k, p in self._parts.items() if k[0] == tenant_id]

    def speakers_among(self, tenant_id: str, words: set[str]) -> set[str]:
        """Which of ``words`` are speakers (first words of roles) in any partition held of a tenant.

        A guess for a scope not held yet: users of one tenant mostly talk with the same agents.
        """
        held = [p.role_first for _, p in self._held(tenant_id)]
        return {w for w in words if any(w in roles for roles in held)}

    def cached_partition(self, tenant_id: str, user_id: str | None) -> Partition | None:
        """The partition held for a scope, as it is (no catch-up)."""
        return self._parts.get((tenant_id, user_id))

    async def partition(self, tenant_id: str, user_id: str | None) -> Partition:
        """The partition of a scope, loaded if absent and caught up with other processes."""
        key = (tenant_id, user_id)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            part = self._parts.get(key)
            if part is None and self.snapshots is not None:
                part = await self._from_snapshot(key)
            # Not caught up for half the tombstone TTL: deletes it missed may be unrecorded.
            stale = part is not None and self.clock.now() - part.checked > TOMBSTONE_TTL_S * 1e9 / 2
            dead = part is not None and part.n > 64 and len(part) < part.n / 2  # compact by reloading
            if part is None or stale or dead:
                part = await self._load(key)
                self._parts[key] = part
                await self._snapshot(part)
            else:
                self._parts[key] = part
                await self._catch_up(part)
            self._parts.move_to_end(key)
            self._evict(keep=key)
            return part

    async def preload(self, tenant_id: str, user_id: str | None) -> None:
        """Read a user's partition from its snapshot, if it has one and none is held.

        For the caller to run while it opens the tenant: a new process's first read of a large
        collection waits for Chroma to load its HNSW index, and reading the snapshot overlaps
        it. The partition is caught up by the search that follows (:meth:`partition`), under
        the same lock. Tenant-wide scopes are left alone (a large tenant is searched by
        Chroma's index, not held whole).
        """
        key = (tenant_id, user_id)
        if user_id is None or self.snapshots is None or key in self._parts:
            return
        if not self.snapshots.path(tenant_id, user_id).exists():
            return
        async with self._locks.setdefault(key, asyncio.Lock()):
            if key in self._parts:
                return
            part = await self._from_snapshot(key)
            if part is not None:
                self._parts[key] = part
                self._evict(keep=key)

    async def search_view(
        self, tenant_id: str, user_id: str | None, where: dict[str, Any]
    ) -> tuple[Partition, np.ndarray]:
        """The caught-up partition of a scope and the mask of its rows passing ``where``.

        The columns answer filters on engine fields; a filter on caller metadata is sent to
        Chroma (paged, ids only) and its answer turned into the mask.
        """
        part = await self.partition(tenant_id, user_id)
        mask = part.mask(where)
        if mask is None:
            mem = await self.mem(tenant_id)
            # Unfiltered: the mask only marks rows the partition holds, which are all visible.
            got = await mem.raw.get_all(where=where, include=[])
            mask = np.zeros(part.n, dtype=np.bool_)
            for i in got["ids"]:
                r = part.row_of.get(i)
                if r is not None:
                    mask[r] = True
        return part, mask

    async def tenant_size(self, tenant_id: str) -> int:
        """Number of records in a tenant's memory collection (0 if absent)."""
        pair = await self.collections(tenant_id, create=False)
        return 0 if pair is None else await pair[0].count()

    async def candidates(
        self, tenant_id: str, vector: list[float], n: int, where: dict[str, Any]
    ) -> tuple[Partition, np.ndarray]:
        """A partition of the ``n`` nearest records by Chroma's vector index, *without* a where.

        For tenant-wide searches of tenants too large to hold: Chroma filters a local
        ``where`` query by brute force, so the query goes unfiltered, over-fetched, and the
        candidates are filtered here (columns, or Chroma by id for caller metadata).
        """
        mem = await self.mem(tenant_id)
        got = await mem.query(query_embeddings=[vector], n_results=n,
                              include=["documents", "metadatas", "embeddings"])  # fmt: skip
        part = Partition((tenant_id, None), self.dimension)
        embs = got["embeddings"][0] if got.get("embeddings") is not None else None
        for j, (i, d, m) in enumerate(
            zip(got["ids"][0], got["documents"][0], got["metadatas"][0], strict=True)
        ):
            part.upsert(i, d or "", m or {}, embs[j] if embs is not None else None)
        self.reads += len(part)
        mask = part.mask(where)
        if mask is None:
            ok = await mem.raw.get(ids=list(part.row_of), where=where, include=[])  # visible ids
            mask = np.zeros(part.n, dtype=np.bool_)
            for i in ok["ids"]:
                mask[part.row_of[i]] = True
        return part, mask

    async def nearest(
        self, tenant_id: str, part: Partition, vector: list[float], n: int, mask: np.ndarray
    ) -> np.ndarray | None:
        """Rows of ``part`` passing ``mask`` among the nearest by Chroma's vector index, or ``None``.

        For a large partition an exact pass over its vectors costs more than Chroma's HNSW
        search (16 ms for 100k vectors here, bound by memory bandwidth), so the candidates of
        the dense list come from Chroma's index instead: one query *without* a ``where`` (a
        filtered one is brute force), over-fetched by the share of the tenant the scope holds
        (:data:`ANN_OVERFETCH`), ids only; the caller scores the rows exactly with its own
        vectors. ``None`` (score every row) when the over-fetch would exceed
        :data:`ANN_MAX_FETCH` (a small share of a large tenant) or the tenant's size, or when
        fewer than ``n`` rows in scope come back while the scope holds more (a narrow filter,
        a tenant that grew).
        """
        ok, _ = part.matrix()
        m = min(len(ok), len(mask))
        in_scope = int(np.count_nonzero(ok[:m] & mask[:m]))
        if in_scope <= n:
            return None
        size = self._sizes.get(tenant_id)
        if size is None or size < part.n:
            size = self._sizes[tenant_id] = await self.tenant_size(tenant_id)
        fetch = math.ceil(ANN_OVERFETCH * n * size / in_scope)
        if fetch > ANN_MAX_FETCH or fetch >= size:  # asking for the whole tenant gains nothing
            return None
        mem = await self.mem(tenant_id)
        # Raw: staged records of an open batch are not in the partition, so they drop out below.
        got = await mem.raw.query(query_embeddings=[vector], n_results=fetch, include=[])
        self.ann_queries += 1
        rows = np.fromiter((part.row_of.get(i, -1) for i in got["ids"][0]), dtype=np.int64)
        rows = rows[(rows >= 0) & (rows < m)]
        rows = rows[ok[rows] & mask[rows]]
        if len(rows) < n:
            return None
        return rows

    def _scope_where(self, user_id: str | None, extra: dict[str, Any] | None = None) -> dict[str, Any] | None:
        return all_of({"user_id": user_id} if user_id is not None else None, extra)

    async def _load(self, key: PartitionKey) -> Partition:
        tenant_id, user_id = key
        mem, aux = await self._pair(tenant_id)
        where, keep = self._scope_where(user_id), None
        if user_id is not None and await self._small(tenant_id, mem):
            where, keep = None, user_id  # read whole, keep the user's (see WHOLE_READ_MAX)
        for attempt in range(3):
            start = self.clock.now()
            part = Partition(key, self.dimension)
            part.loaded_at = part.checked = start
            # Page by page, each turned into columns at once: the read is never held whole.
            async for got in mem.pages(where=where, page=LOAD_PAGE,
                                       include=["documents", "metadatas", "embeddings"]):  # fmt: skip
                self.reads += len(got["ids"])
                embs = got["embeddings"]
                for n, (i, d, m) in enumerate(
                    zip(got["ids"], got["documents"], got["metadatas"], strict=True)
                ):
                    if keep is not None and (m or {}).get("user_id") != keep:
                        continue
                    part.upsert(i, d or "", m or {}, embs[n] if embs is not None else None)
                del got, embs
            self.clock.observe(part.watermark)
            # Pages are read by offset: a delete meanwhile can shift a record past a page
            # boundary. Records written meanwhile are caught up by revision; deletes force
            # one more read.
            since = self.clock.since(start)
            got_tombs = await aux.get_all(where={"rev": {"$gt": since}}, include=["metadatas"])
            tombs = [m for m in got_tombs["metadatas"] if m.get("type") == "tombstone"
                     and (user_id is None or user_of(m) == user_id)]  # fmt: skip
            if not tombs or attempt == 2:
                break
            logger.debug("deletes during the load of %r; reading it again", key)
        await self._catch_up(part)
        logger.debug("loaded partition %r: %d records", key, len(part))
        return part

    async def _small(self, tenant_id: str, mem: Collection) -> bool:
        """Whether the tenant's memory collection holds at most :data:`WHOLE_READ_MAX` records."""
        size = self._sizes.get(tenant_id)
        if size is None or size <= WHOLE_READ_MAX:
            size = self._sizes[tenant_id] = await mem.count()
        return size <= WHOLE_READ_MAX

    @staticmethod
    async def _changes(
        mem: Collection, aux: Collection, since: int
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Records and tombstones of the whole tenant with a revision above ``since``.

        Filtered by revision alone: Chroma answers a clause that matches few records fast,
        while ANDing the partition's user (which matches all of its records) would make every
        catch-up cost the size of the partition. The caller keeps its own user's.

        Up to :data:`INLINE_CHANGES` changed records come with their texts and vectors
        (``documents`` and ``embeddings`` present in the answer); more are read as metadata.

        Large batches committed since (a commit marker in the aux feed, see :mod:`.txn`) are
        read whole: their records may carry a revision at or below ``since`` (staged before
        an earlier catch-up, which could not see them), so they are read by batch id.
        """
        where = {"rev": {"$gt": since}}
        # Read as Chroma holds it: whether more than the inline limit changed is known before
        # uncommitted staged records are taken out (see .txn), which could hide the excess.
        whole, most = ["documents", "metadatas", "embeddings"], min(INLINE_CHANGES, chroma_mod.PAGE - 1)
        changed, rows = await asyncio.gather(
            mem.raw.get(where=where, include=whole, limit=most + 1),
            aux.get_all(where=where, include=["metadatas"]),
        )
        if len(changed["ids"]) > most:
            changed = await mem.get_all(where=where, include=["metadatas"])
        elif mem.txns is not None:
            changed = await mem.txns.visible(changed)
        markers = [m for m in rows["metadatas"] if m.get("type") == txn_mod.MARKER_TYPE]
        commits = {int(m[txn_mod.TXN_FIELD]) for m in markers}
        if commits:
            if mem.txns is not None:
                mem.txns.learn(commits)
            batches = await mem.get_all(
                where={txn_mod.BATCH_FIELD: {"$in": sorted(commits)}}, include=["metadatas"]
            )
            merged = dict(zip(batches["ids"], batches["metadatas"], strict=True))
            merged.update(zip(changed["ids"], changed["metadatas"], strict=True))
            records = _whole(changed)
            changed = {"ids": list(merged), "metadatas": list(merged.values())}
            if records:  # the batches' records come as metadata; the inline ones keep theirs
                changed["inline"] = records
        elif records := _whole(changed):
            changed["inline"] = records
        return changed, [m for m in rows["metadatas"] if m.get("type") == "tombstone"]

    async def _catch_up(self, part: Partition) -> None:
        """Apply what other processes changed in the partition's scope since its watermark."""
        lock = self._exclusive
        generation = None
        if lock is not None and lock.exclusive:
            # Read before the catch-up read: a write counted later forces the next one.
            generation = lock.generation
            if self._current_at.get(part) == generation:
                return  # nothing was written to the folder since this partition was current
        await self._catch_up_read(part)
        if generation is not None:
            self._current_at[part] = generation

    async def _catch_up_read(self, part: Partition) -> None:
        """Read what changed since the partition's watermark from Chroma and apply it."""
        tenant_id, user_id = part.key
        pair = await self.collections(tenant_id, create=False)
        if pair is None:
            return
        mem, aux = pair
        # Whatever committed before the previous read started was seen by it; a write committed
        # later carries a revision above that start minus the skew window (see .clock).
        start = self.clock.now()
        since = self.clock.since(max(part.watermark, part.checked))
        changed, tombs = await self._changes(mem, aux, since)
        self.reads += len(changed["ids"]) + len(tombs)
        for m in tombs:
            if user_id is not None and user_of(m) != user_id:
                continue
            held = part.rev_of(m["target"])
            if held is not None and int(m["rev"]) > held:
                part.remove(m["target"])
            part.watermark = max(part.watermark, int(m["rev"]))
        need = [
            i
            for i, m in zip(changed["ids"], changed["metadatas"], strict=True)
            if (user_id is None or user_of(m) == user_id) and part.rev_of(i) != int(m.get("rev", 0))
        ]
        inline: dict[str, tuple[str | None, dict[str, Any], Any]] = changed.get("inline", {})
        for i in [i for i in need if i in inline]:
            d, m, e = inline[i]
            part.upsert(i, d or "", m or {}, e)
        need = [i for i in need if i not in inline]
        if need:
            got = await mem.get(ids=need, include=["documents", "metadatas", "embeddings"])
            self.reads += len(got["ids"])
            for n, (i, d, m) in enumerate(zip(got["ids"], got["documents"], got["metadatas"], strict=True)):
                part.upsert(i, d or "", m or {}, got["embeddings"][n])
        self.clock.observe(part.watermark)
        part.checked = start

    async def _from_snapshot(self, key: PartitionKey) -> Partition | None:
        assert self.snapshots is not None
        snaps, ident = self.snapshots, self.store.embedder_identity
        loop = asyncio.get_running_loop()
        # The file is read while the tenant is opened: a new process's first read of a large
        # collection waits for Chroma to load its HNSW index, and the two overlap.
        reading = loop.run_in_executor(None, lambda: snaps.load(key[0], key[1], embedder=ident))
        try:
            pair = await self.collections(key[0], create=False)
        finally:
            found = await reading
        if pair is None or found is None or found[1] != pair[0].id:
            return None
        part = found[0]
        self._snapped[key] = part.version
        logger.debug("partition %r from its snapshot: %d records", key, len(part))
        return part

    async def _snapshot(self, part: Partition) -> None:
        """Write a large partition's snapshot if it changed since the last one."""
        if self.snapshots is None or len(part) < MIN_RECORDS or self._snapped.get(part.key) == part.version:
            return
        pair = await self.collections(part.key[0], create=False)
        if pair is None:
            return
        key, blob = self.snapshots.dumps(
            part, embedder=self.store.embedder_identity, collection_id=pair[0].id
        )
        self._snapped[part.key] = part.version
        snaps = self.snapshots
        await asyncio.get_running_loop().run_in_executor(None, snaps.write, key, blob)

    async def aclose(self) -> None:
        """Write the snapshots of held partitions that changed since theirs."""
        for part in list(self._parts.values()):
            try:
                await self._snapshot(part)
            except OSError:  # derived data: a failed write costs the next process a load
                logger.warning("could not write the snapshot of %r", part.key, exc_info=True)

    def _evict(self, keep: PartitionKey) -> None:
        total = sum(p.nbytes() for p in self._parts.values())
        for key in list(self._parts):
            if total <= self.budget_bytes:
                break
            if key == keep:
                continue
            total -= self._parts.pop(key).nbytes()
            lock = self._locks.get(key)
            if lock is not None and not lock.locked():
                del self._locks[key]  # one lock per scope ever searched would otherwise pile up
            logger.debug("evicted partition %r (budget %d bytes)", key, self.budget_bytes)

    def held_partitions(self) -> list[PartitionKey]:
        """Keys of the partitions held, least recently used first."""
        return list(self._parts)
