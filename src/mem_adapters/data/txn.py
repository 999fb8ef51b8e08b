"""Batches larger than one Chroma call, written atomically: staged invisibly, then committed.

One Chroma ``upsert`` is one SQLite transaction, so a batch that fits in one call (Chroma's
max batch: 5,461 records on chromadb 1.x) is atomic as it is, and is written as it always
was. A larger batch (up to :attr:`mem_adapters.limits.Limits.max_batch_turns`, 50,000 turns
by default) needs several calls; a crash between two used to leave part of it visible and,
worse, counted as "already stored" when the batch was re-sent (writes dedup on existence).
So a larger batch is a transaction (:func:`write_batch`):

1. **Stage.** Pick a transaction id ``T`` (a random positive 62-bit int) and write every
   record, one Chroma call per chunk, with the metadata fields ``txn = T`` (the staging
   mark) and ``batch = T`` (permanent), all with the same revision.
2. **Commit.** Write ONE aux row ``txn:T`` (``type: "txn"``, with a revision). That single
   upsert is the commit point: before it no record of ``T`` is visible, after it all are.
3. **Finalize.** Strip ``txn`` from the records (chunked metadata updates; the revision is
   kept, nothing a partition holds changes). Interrupted, this is harmless (the marker says
   committed) and the next open of the tenant finishes it (:func:`settle`). The marker
   stays :data:`MARKER_TTL_S` and is then deleted by the open sweep.

**Reads.** Every read of a tenant's memory collection goes through the
:class:`~mem_adapters.data.chroma.Collection` facade (``get``, ``get_all``, ``pages``,
``query``), which hands its answer to :meth:`TxnView.visible`: a record whose ``txn`` has
no marker is dropped, so staged records are invisible to searches, lists, reads by id and
the existence check of ``remember`` (a batch re-sent after a crash is written again, whole).
A read that asked for ids only is sent with metadata (the facade removes it again). The
fields are removed from what callers get. Marker lookups are cheap: a read with no staged
record costs nothing more, a committed ``T`` is cached for the life of the process, and an
unknown one costs one aux read by id per Chroma read.

**Other processes.** A process holding a partition catches up by revision (see
:mod:`.layer`): staged records it reads there are dropped like any other read. The commit
marker carries a revision, so the next catch-up after the commit sees it in the aux change
feed and then reads the whole batch (``batch == T``, stripped or not) and applies it at
once. A catch-up whose change read sees the batch committed before its feed shows the
marker reads all of it or none of it: every record of a batch has the same revision, so
they are all above the catch-up's horizon or all below. A reader never holds part of a batch.

**Rollback and grace.** A staged batch whose writer died never gets a marker. When a tenant
is opened by a process (:func:`settle`, called by ``ChromaStore.open``), staged records
without a marker whose newest revision is older than the *grace period* are deleted;
committed but unstripped ones are finalized. The grace (``$MEM_ADAPTERS_TXN_GRACE_S``,
default :data:`DEFAULT_GRACE_S` = 15 minutes; tests set 0) protects a live writer in another
process: a writer still staging after half the grace does not commit, it rolls its records
back and raises :class:`BatchAbortedError` (nothing is written; re-send the batch). So a
rolled-back batch can never be committed, provided the machines' clocks agree within half
the grace. Until the sweep runs, leftovers are invisible, not gone.

**Limits.** Chroma keeps no old version of a record: a staged record that replaces an
existing id hides that id until the commit, and a rollback deletes it (``remember`` only
stages ids it does not hold, so this concerns callers of ``write_records`` that overwrite).
``Collection.count()`` counts staged records too. A reader may see fewer than ``n_results``
answers from a vector ``query`` while a batch is staged (the staged hits are dropped).

**Test hooks** (read only here): ``$MEM_ADAPTERS_TEST_FAIL_AFTER_CHUNK=k`` SIGKILLs the
process after staging chunk ``k`` (``commit``: after the commit, before the strip);
``$MEM_ADAPTERS_TEST_TXN_STEP_DIR=<dir>`` makes the writer touch ``<dir>/<step>`` at each
step (``staged-1``, ``staged-2``..., ``committed``, ``finalized``) and wait until
``<dir>/<step>.go`` exists, so a test can read in lockstep with the writer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import StoreError
from .clock import RevisionClock

if TYPE_CHECKING:
    from .chroma import Collection

logger = logging.getLogger(__name__)

TXN_FIELD = "txn"  # metadata field of a staged record: its transaction id (stripped when final)
BATCH_FIELD = "batch"  # metadata field of every record of a large batch: its transaction id
MARKER_PREFIX = "txn:"  # aux id of a transaction's commit marker
MARKER_TYPE = "txn"  # ``type`` of a commit marker in aux
GRACE_ENV = "MEM_ADAPTERS_TXN_GRACE_S"
DEFAULT_GRACE_S = 900.0
MARKER_TTL_S = 24 * 3600.0  # as long as tombstones: a partition that old is reloaded anyway
FAIL_ENV = "MEM_ADAPTERS_TEST_FAIL_AFTER_CHUNK"
STEP_DIR_ENV = "MEM_ADAPTERS_TEST_TXN_STEP_DIR"
STEP_WAIT_S = 600.0  # a lockstep test that never says "go" does not hang a writer forever
_MARKER_VECTOR = [1.0]  # aux rows are never searched by vector (chroma.AUX_VECTOR)
_CACHE_MAX = 65536  # committed transaction ids remembered per tenant
_PARALLEL = ("ids", "documents", "metadatas", "embeddings", "uris", "data", "distances")


class BatchAbortedError(StoreError):
    """A large batch took longer than half the grace period to stage: rolled back, nothing written."""


def marker_id(txn: int) -> str:
    """The aux id of a transaction's commit marker."""
    return f"{MARKER_PREFIX}{txn}"


def grace_from_env() -> float:
    """The grace period in seconds: ``$MEM_ADAPTERS_TXN_GRACE_S``, else :data:`DEFAULT_GRACE_S`.

    Raises:
        ValueError: the variable is not a number >= 0.
    """
    raw = os.environ.get(GRACE_ENV)
    if not raw:
        return DEFAULT_GRACE_S
    value = float(raw)
    if not value >= 0:  # also NaN
        raise ValueError(f"${GRACE_ENV} must be a number of seconds >= 0, got {raw!r}")
    return value


def new_txn_id() -> int:
    """A random positive transaction id (62 bits: an int64 Chroma stores exactly)."""
    return secrets.randbits(62) + 1


def _take(value: Any, keep: list[int]) -> Any:
    if isinstance(value, np.ndarray):
        return value[np.asarray(keep, dtype=np.intp)]
    return [value[j] for j in keep]


class TxnView:
    """Which staged transactions of one tenant are committed, and the filter reads go through.

    Args:
        aux: The tenant's aux collection (where commit markers live).
    """

    def __init__(self, aux: Collection) -> None:
        self._aux = aux
        self._committed: set[int] = set()
        self.lookups = 0  # aux reads for markers (tests check the cache works)

    def learn(self, txns: Iterable[int]) -> None:
        """Record transactions known to be committed (a commit marker was read or written)."""
        if len(self._committed) > _CACHE_MAX:
            self._committed.clear()
        self._committed.update(txns)

    async def committed(self, txns: set[int]) -> set[int]:
        """The subset of ``txns`` that is committed (unknown ones are looked up in aux)."""
        unknown = [t for t in txns if t not in self._committed]
        if unknown:
            self.lookups += 1
            got = await self._aux.get(ids=[marker_id(t) for t in unknown], include=[])
            self.learn(int(i[len(MARKER_PREFIX) :]) for i in got["ids"])
        return {t for t in txns if t in self._committed}

    async def visible(self, got: dict[str, Any], *, nested: bool = False) -> dict[str, Any]:
        """``got`` (a Chroma get or query answer, with metadatas) without uncommitted records.

        ``nested`` is a query answer (one list per query embedding). The ``txn`` field is
        removed from the records kept.
        """
        metas = got.get("metadatas")
        if metas is None:
            return got
        groups = metas if nested else [metas]
        txns: set[int] = set()
        marked = False
        for group in groups:
            for m in group:
                if m and BATCH_FIELD in m:  # a staged record carries both fields
                    marked = True
                    if m.get(TXN_FIELD) is not None:
                        txns.add(m[TXN_FIELD])
        if not marked:
            return got
        ok = await self.committed(txns) if txns else set()
        for q, group in enumerate(groups):
            keep = [j for j, m in enumerate(group) if not m or m.get(TXN_FIELD) is None or m[TXN_FIELD] in ok]
            for j in keep:
                if group[j]:
                    group[j].pop(TXN_FIELD, None)
                    group[j].pop(BATCH_FIELD, None)
            if len(keep) == len(group):
                continue
            for key in _PARALLEL:
                value = got.get(key)
                if value is None:
                    continue
                if nested:
                    value = list(value)
                    value[q] = _take(value[q], keep)
                    got[key] = value
                else:
                    got[key] = _take(value, keep)
        return got


async def _step(step: str, chunk: int | None = None) -> None:
    """The test hooks (see the module docstring); nothing happens unless their variables are set."""
    fail = os.environ.get(FAIL_ENV)
    if fail and (fail == step or (step == "committed" and fail == "commit") or fail == str(chunk)):
        logger.warning("test hook %s: killing the process after %s", FAIL_ENV, step)
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
        await asyncio.sleep(60)  # the signal is delivered before this returns
    folder = os.environ.get(STEP_DIR_ENV)
    if not folder:
        return
    here = Path(folder)
    (here / step).touch()
    go = here / f"{step}.go"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STEP_WAIT_S
    while not go.exists() and loop.time() < deadline:
        await asyncio.sleep(0.05)


async def _staged_ids(mem: Collection, txn: int) -> list[str]:
    got = await mem.raw.get_all(where={TXN_FIELD: txn}, include=[])
    return list(got["ids"])


async def rollback(mem: Collection, txn: int) -> int:
    """Delete every record still staged by ``txn``; returns how many."""
    ids = await _staged_ids(mem, txn)
    await mem.raw.delete(ids)
    return len(ids)


async def finalize(mem: Collection, txn: int) -> int:
    """Strip the staging mark from a committed transaction's records; returns how many.

    Only records that still carry ``txn = T`` are touched (one re-staged by a later
    transaction keeps its own mark). Revisions are kept: the records do not change.
    """
    ids = await _staged_ids(mem, txn)
    await mem.raw.update_metadata(ids, [{TXN_FIELD: None} for _ in ids])
    return len(ids)


async def write_batch(
    mem: Collection,
    aux: Collection,
    ids: list[str],
    embeddings: list[list[float]],
    texts: list[str],
    metas: list[dict[str, Any]],
    *,
    clock: RevisionClock,
    grace_s: float,
) -> list[dict[str, Any]]:
    """Write a batch larger than one Chroma call atomically (stage, commit, finalize).

    ``metas`` carry revisions (``rev``); every record is written with the first one, so a
    catch-up by revision reads all of the batch or none of it. Returns the records' metadata
    as written (that revision, no staging fields), for the writer's partitions.

    Raises:
        BatchAbortedError: staging took longer than half ``grace_s``; rolled back.
        StoreError: Chroma failed while staging; what was staged is invisible (and rolled
            back when possible, else swept at the next open after the grace).
    """
    txn = new_txn_id()
    started = clock.now()
    size = mem.max_batch
    rev = int(metas[0]["rev"])
    final = [{**m, "rev": rev} for m in metas]
    try:
        for k, i in enumerate(range(0, len(ids), size), start=1):
            j = i + size
            staged = [{**m, TXN_FIELD: txn, BATCH_FIELD: txn} for m in final[i:j]]
            await mem.upsert(ids[i:j], embeddings[i:j], texts[i:j], staged)
            await _step(f"staged-{k}", k)
        took = (clock.now() - started) / 1e9
        if took > grace_s / 2:
            raise BatchAbortedError(
                f"staging {len(ids)} records took {took:.0f} s, more than half the transaction grace "
                f"({grace_s:.0f} s, ${GRACE_ENV}): rolled back, nothing written; re-send the batch"
            )
    except Exception:
        try:
            await rollback(mem, txn)
        except Exception:  # invisible anyway; the open sweep deletes it after the grace
            logger.warning("could not roll back staged batch %d", txn, exc_info=True)
        raise
    marker = {"type": MARKER_TYPE, TXN_FIELD: txn, "rev": clock.next(), "n": len(ids)}
    await aux.upsert([marker_id(txn)], [_MARKER_VECTOR], [""], [marker])  # the commit point
    if mem.txns is not None:
        mem.txns.learn([txn])
    logger.debug("committed batch %d: %d records", txn, len(ids))
    await _step("committed")
    try:
        await finalize(mem, txn)
    except StoreError:  # committed: the next open of the tenant finishes the strip
        logger.warning("batch %d committed; stripping its staging mark failed", txn, exc_info=True)
    await _step("finalized")
    return final


async def settle(
    mem: Collection, aux: Collection, *, clock: RevisionClock, grace_s: float
) -> tuple[int, int]:
    """Clean up after crashed transactions when a tenant is opened.

    Staged records without a commit marker whose newest revision is older than ``grace_s``
    are deleted; committed ones still carrying ``txn`` are finalized; markers older than
    :data:`MARKER_TTL_S` are deleted. Returns ``(records rolled back, records finalized)``.
    """
    staged = await mem.raw.get_all(where={TXN_FIELD: {"$gt": 0}}, include=["metadatas"])
    newest: dict[int, int] = {}
    for m in staged["metadatas"] or []:
        t = (m or {}).get(TXN_FIELD)
        if isinstance(t, int):
            newest[t] = max(newest.get(t, 0), int(m.get("rev", 0)))
    rolled = finalized = 0
    if newest:
        view = mem.txns if mem.txns is not None else TxnView(aux)
        ok = await view.committed(set(newest))
        horizon = clock.now() - int(grace_s * 1e9)
        for t, rev in newest.items():
            if t in ok:
                finalized += await finalize(mem, t)
            elif rev < horizon:
                rolled += await rollback(mem, t)
    old = await aux.get_all(
        where={"$and": [{"type": MARKER_TYPE}, {"rev": {"$lt": clock.now() - int(MARKER_TTL_S * 1e9)}}]},
        include=[],
    )
    await aux.delete(list(old["ids"]))
    if rolled or finalized:
        logger.info("crashed batches: %d staged records rolled back, %d finalized", rolled, finalized)
    return rolled, finalized
