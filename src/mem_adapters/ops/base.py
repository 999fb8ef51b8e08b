"""Plumbing shared by every part of the engine: store, data layer, embedder executors, validation."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

from ..data import ChromaStore, Collection, DataLayer
from ..data.chroma import async_http_client
from ..data.chroma_sqlite import tune as tune_sqlite
from ..data.clock import SeqClock
from ..data.heap import scrub_freed_memory
from ..data.lock import StoreLock, count_write, folder_key
from ..data.open_files import raise_open_file_limit
from ..data.snapshots import SnapshotStore
from ..embeddings import as_embedder, count_tokens
from ..enrichment import Enricher
from ..errors import ClosedError, NotFoundError, ValidationError
from ..filters import all_of
from ..limits import DEFAULT_LIMITS, Limits
from ..retrieval import Retriever
from . import checks

logger = logging.getLogger(__name__)


PATH_ENV = "MEM_ADAPTERS_PATH"
DEFAULT_PATH = ".mem_adapters"
SNAPSHOT_DIR = ".mem_adapters-derived"
_PURGE_EVERY = 2.0  # seconds between expiry sweeps of one tenant


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _require_str(field: str, value: Any, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, "must be a non-empty string")
    checks.utf8_size(field, value)  # no lone surrogates


def _scope_where(
    tenant_id: str,
    sub_tenant_id: str | None = None,
    user_id: str | None = None,
    agent_id: str | None = None,
    session_id: str | None = None,
) -> dict[str, Any] | None:
    """Equality clauses for the given scope levels (the tenant is its own collection)."""
    clauses = [
        {field: value}
        for field, value in (
            ("sub_tenant_id", sub_tenant_id),
            ("user_id", user_id),
            ("agent_id", agent_id),
            ("session_id", session_id),
        )
        if value is not None
    ]
    return all_of(*clauses)


class EngineBase:
    """The engine's state and plumbing; see :class:`mem_adapters.AsyncMemoryEngine` for the arguments."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        client: Any = None,
        host: str | None = None,
        port: int = 8000,
        embedder: Any = None,
        model_dir: str | os.PathLike[str] | None = None,
        max_workers: int = 4,
        enricher: Any = None,
        partition_budget_mb: float | None = None,
        snapshot_dir: str | os.PathLike[str] | None = None,
        limits: Limits | None = None,
    ) -> None:
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ValidationError("max_workers", "must be an integer >= 1")
        if limits is not None and not isinstance(limits, Limits):
            raise ValidationError("limits", "must be a mem_adapters.limits.Limits")
        if isinstance(enricher, str) and enricher != "default":
            raise ValidationError("enricher", "must be None, 'default' or an Enricher")
        if not isinstance(partition_budget_mb, int | float | None) or isinstance(partition_budget_mb, bool):
            raise ValidationError("partition_budget_mb", "must be a number of megabytes or None")
        self.limits = limits or DEFAULT_LIMITS  # input sizes, timeouts, retries
        self.embedder = as_embedder(embedder, model_dir=model_dir)
        self._io = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="mem-adapters-io")
        self._cpu = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mem-adapters-embed")
        self._host, self._port = host, port
        self._lock: StoreLock | None = None
        self._tuned = False  # whether the SQLite file was tuned before Chroma opened it
        if client is None and host is None:
            import chromadb

            self.path = Path(path or os.environ.get(PATH_ENV) or DEFAULT_PATH)
            self._lock = StoreLock(self.path)  # one writer process per folder (StoreLockedError)
            scrub_freed_memory()  # before any record is read into this process (data/heap.py)
            raise_open_file_limit()  # Chroma sizes its index pool from it (data/open_files.py)
            self._tuned = tune_sqlite(self.path)  # before Chroma opens it: it reads statistics then
            try:
                client = chromadb.PersistentClient(path=str(self.path))
            except BaseException:
                self._lock.release()
                raise
        else:
            self.path = None
        self._client = client
        self._store: ChromaStore | None = None
        self._data: DataLayer | None = None
        self._partition_budget_mb = partition_budget_mb
        if snapshot_dir is None and self.path is not None:
            snapshot_dir = self.path / SNAPSHOT_DIR
        self._snapshots = SnapshotStore(snapshot_dir) if snapshot_dir is not None else None
        self._store_lock = asyncio.Lock()
        self._session_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._seq = SeqClock()
        self._last_purge: dict[str, float] = {}
        self._closed = False
        self.retriever = Retriever(None, self.embed_query)
        if isinstance(enricher, str):
            if enricher != "default":
                raise ValidationError("enricher", "must be None, 'default' or an Enricher")
            enricher = Enricher()
        self.enricher = enricher
        if enricher is not None and hasattr(enricher, "bind"):
            enricher.bind(self.data)

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("AsyncMemoryEngine is closed")

    async def store(self) -> ChromaStore:
        """The Chroma store, opening the server connection on first use.

        Raises:
            ClosedError: the engine is closed (every read and write comes through here).
        """
        self._check_open()
        if self._store is None:
            async with self._store_lock:
                if self._store is None:
                    client = self._client
                    if client is None:  # timeouts set, TransportError if the server is down
                        client = await async_http_client(self._host, self._port, self.limits)
                        self._client = client
                    folder = _local_folder(client)
                    store = ChromaStore(
                        client,
                        self._io,
                        self.embedder.identity,
                        self.embedder.dimension,
                        limits=self.limits,
                        on_write=partial(count_write, folder) if folder is not None else None,
                        tune_file=not self._tuned,
                    )
                    self._data = DataLayer(
                        store,
                        self.embedder.dimension,
                        partition_budget_mb=self._partition_budget_mb,
                        snapshots=self._snapshots,
                        embed=self.embed,
                        seq=self._seq,
                        exclusive=self._lock,
                        on_upgrade=self._repair_upgraded,
                    )
                    self.retriever.data = self._data
                    self._store = store
        return self._store

    async def data(self) -> DataLayer:
        """The data layer (Chroma and the derived partitions), opened on first use."""
        await self.store()
        assert self._data is not None
        return self._data

    async def _repair_upgraded(self, tenant_id: str) -> None:
        """What a tenant of an older store format still owes (``DataLayer.on_upgrade``).

        Episodes that mixed the users of a shared session are rewritten per user, with or
        without enrichment (a detached enricher does it when the engine has none).
        """
        enricher = self.enricher if isinstance(self.enricher, Enricher) else Enricher.detached(self.data)
        await enricher.repair_mixed_episodes(tenant_id)

    async def collections(
        self, tenant_id: str, *, create: bool = True
    ) -> tuple[Collection, Collection] | None:
        """The tenant's ``(mem, aux)`` collections (``None`` if absent and not ``create``)."""
        _require_str("tenant_id", tenant_id)
        return await (await self.data()).collections(tenant_id, create=create)

    async def _mem(self, tenant_id: str) -> Collection:
        return await (await self.data()).mem(tenant_id)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed documents in the embedder executor."""
        if not texts:
            return []
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._cpu, self.embedder.embed_documents, list(texts))

    async def embed_query(self, text: str) -> list[float]:
        """Embed a query in the embedder executor."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._cpu, self.embedder.embed_query, text)

    async def _count_tokens_pair(self, inputs: Sequence[str], outputs: Sequence[str]) -> tuple[int, int]:
        """Token counts of what a call was given and of what it stored, in one executor hop."""

        def both() -> tuple[int, int]:
            return (count_tokens(self.embedder, list(inputs)) if inputs else 0,
                    count_tokens(self.embedder, list(outputs)) if outputs else 0)  # fmt: skip

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._cpu, both)

    def next_seq(self, n: int = 1) -> int:
        """Reserve ``n`` consecutive sequence numbers; returns the first."""
        return self._seq.next(n)

    def _session_lock(self, tenant_id: str, session_id: str) -> asyncio.Lock:
        key = (tenant_id, session_id)
        lock = self._session_locks.get(key)
        if lock is None:
            lock = self._session_locks[key] = asyncio.Lock()
        return lock

    live = staticmethod(DataLayer.live)

    async def write_records(
        self,
        tenant_id: str,
        ids: list[str],
        texts: list[str],
        metas: list[dict[str, Any]],
        embeddings: list[list[float]] | None = None,
    ) -> None:
        """Upsert records through the data layer (which embeds them unless vectors are given)."""
        await (await self.data()).write_records(tenant_id, ids, texts, metas, embeddings)

    async def delete_records(self, tenant_id: str, ids: list[str]) -> None:
        """Delete records (the data layer leaves tombstones for other processes)."""
        await (await self.data()).delete_records(tenant_id, ids)

    async def purge_expired(self, tenant_id: str, *, force: bool = False) -> int:
        """Delete expired records of a tenant (rate-limited unless ``force``); returns the count.

        The same sweep removes tombstones older than the data layer's TTL.
        """
        _require_str("tenant_id", tenant_id)
        now = time.time()
        if not force and now - self._last_purge.get(tenant_id, 0.0) < _PURGE_EVERY:
            return 0
        self._last_purge[tenant_id] = now
        mem = await self._mem(tenant_id)
        got = await mem.get_all(where={"expires_at": {"$lte": now}}, include=[])
        await self.delete_records(tenant_id, got["ids"])
        if got["ids"]:
            await self._purge_history(tenant_id, list(got["ids"]))
        await (await self.data()).purge_tombstones(tenant_id)
        return len(got["ids"])

    async def _purge_history(self, tenant_id: str, ids: list[str]) -> None:
        """Delete the history rows of memories that are gone for good (cleared, expired)."""
        pair = await self.collections(tenant_id, create=False)
        if pair is None:
            return
        for start in range(0, len(ids), 500):
            rows = await pair[1].get_all(
                where={"$and": [{"type": "history"}, {"memory_id": {"$in": ids[start : start + 500]}}]},
                include=[],
            )
            await pair[1].delete(list(rows["ids"]))

    async def _get_raw(self, tenant_id: str, ids: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        """Live records by id: ``{id: (text, metadata)}``."""
        _require_str("tenant_id", tenant_id)
        if not ids:
            return {}
        return await (await self.data()).fetch(tenant_id, ids)

    async def _require(self, tenant_id: str, memory_id: str) -> tuple[str, dict[str, Any]]:
        _require_str("id", memory_id)
        found = (await self._get_raw(tenant_id, [memory_id])).get(memory_id)
        if found is None:
            raise NotFoundError(f"no memory {memory_id!r} in tenant {tenant_id!r}")
        return found


def _local_folder(client: Any) -> str | None:
    """The folder of an embedded ``PersistentClient`` (its writes are counted), else ``None``."""
    try:
        settings = client.get_settings()
    except Exception:  # a server or async client: nothing to count
        return None
    impl = str(getattr(settings, "chroma_api_impl", ""))
    if not ("rust" in impl or impl.endswith("segment.SegmentAPI")):
        return None  # an HTTP client: the server's folder is not ours to count
    if not getattr(settings, "is_persistent", False) or not getattr(settings, "persist_directory", None):
        return None
    return folder_key(settings.persist_directory)
