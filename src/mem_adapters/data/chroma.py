"""The only module that talks to Chroma.

Every read is paged: no ``get`` leaves without a ``limit`` (Chroma rejects a ``get`` of more
than 32,766 records, "too many SQL variables"), and reads by id are chunked the same way.

Each tenant gets two collections of its own, so tenants are isolated structurally: ``mem``
(every memory, with its embedding) and ``aux`` (history rows, job records and bookkeeping,
with a 1-d placeholder vector). Sync clients (``PersistentClient``, ``HttpClient``) run in a
bounded executor; an ``AsyncHttpClient`` is awaited directly, so the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import inspect
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Executor
from functools import partial
from typing import Any

import httpx

from ..errors import EmbedderMismatchError, StoreError, TransportError
from ..limits import DEFAULT_LIMITS, Limits
from . import hnsw_config
from . import txn as txn_mod
from .chroma_sqlite import tune as tune_sqlite
from .clock import RevisionClock
from .heap import scrub_freed_memory

logger = logging.getLogger(__name__)

AUX_VECTOR = [1.0]  # aux records are never searched by vector; Chroma still needs one
_PREFIX = "ma-"
STAGING_SUFFIX = "-reembed"  # a tenant's copy while reembed() swaps its memory collection
REBUILD_SUFFIX = "-rebuild"  # a collection's fresh copy while an erase rebuilds it (data.erasure)
_EXCLUSIVE: contextvars.ContextVar[bool] = contextvars.ContextVar("mem_adapters_exclusive", default=False)
_IN_CALL: contextvars.ContextVar[bool] = contextvars.ContextVar("mem_adapters_in_call", default=False)
PAGE = 5000  # records per read: well under Chroma's 32,766 SQL-variable limit
MAX_OPEN_TENANTS = 256  # collection handles kept open, least recently used let go first
# Store format of new tenants (data.layer.FORMAT is this): 2, every record carries a revision
# ("rev") and deletes leave tombstones in aux; 3, caller ids are scoped per user and session;
# 4, episodes are per user.
SCHEMA = 4


def collection_names(tenant_id: str) -> tuple[str, str]:
    """Names of a tenant's memory and aux collections (Chroma names allow [a-zA-Z0-9._-])."""
    digest = hashlib.sha256(tenant_id.encode("utf-8")).hexdigest()[:24]
    return f"{_PREFIX}{digest}-mem", f"{_PREFIX}{digest}-aux"


# Idempotent writes, retried after a transport failure: upserts carry content-hash or caller
# ids, deletes and metadata updates set values, get_or_create opens the same collection.
RETRIED_CALLS = frozenset({"upsert", "update", "delete", "get_or_create_collection"})
WRITE_CALLS = frozenset({"add", "upsert", "update", "delete", "modify", "delete_collection"})
_SERVER_DOWN = ("could not connect", "are you sure it is running")


def is_transport_failure(e: BaseException) -> bool:
    """Whether ``e`` (or what it was raised from) is a server or transport failure.

    Connection refused/reset, timeouts, broken HTTP, a 5xx answer (Chroma's own errors with a
    5xx code, or the bare ``Exception`` its client raises for unknown error bodies), and
    chromadb's ``ValueError("Could not connect to a Chroma server...")``.
    """
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, httpx.TransportError | ConnectionError | TimeoutError | asyncio.TimeoutError):
            return True
        if isinstance(cur, OSError) and not isinstance(cur, FileNotFoundError | PermissionError):
            return True
        if isinstance(cur, ValueError) and any(m in str(cur).lower() for m in _SERVER_DOWN):
            return True
        code = getattr(cur, "code", None)
        if type(cur).__module__.startswith("chromadb") and callable(code):
            try:
                if int(code()) >= 500:
                    return True
            except Exception:
                pass
        if type(cur) is Exception and "trace ID" in str(cur):  # chromadb: unparsed 5xx body
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def _timeout(limits: Limits) -> httpx.Timeout:
    return httpx.Timeout(limits.read_timeout, connect=limits.connect_timeout)


def _probe(host: str, port: int, limits: Limits, ssl: bool = False) -> None:
    """Fail fast and clearly when no Chroma server answers at ``host:port``."""
    url = f"{'https' if ssl else 'http'}://{host}:{port}/api/v2/heartbeat"
    try:
        httpx.get(url, timeout=_timeout(limits)).raise_for_status()
    except httpx.HTTPError as e:
        raise TransportError(
            f"no Chroma server answers at {host}:{port} ({type(e).__name__}: {e}); start one "
            "with `chroma run --path <folder>` or check host and port"
        ) from e


def http_client(host: str, port: int, limits: Limits | None = None) -> Any:
    """A ``chromadb.HttpClient`` with connect/read timeouts (Chroma's own has none).

    Raises:
        TransportError: no server answers (within ``limits.connect_timeout``).
    """
    import chromadb

    limits = limits or DEFAULT_LIMITS
    _probe(host, port, limits)
    try:
        client = chromadb.HttpClient(host=host, port=port)
    except Exception as e:
        if is_transport_failure(e):
            raise TransportError(f"Chroma server at {host}:{port}: {e}") from e
        raise
    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = _timeout(limits)
    return client


async def async_http_client(host: str, port: int, limits: Limits | None = None) -> Any:
    """An ``AsyncHttpClient`` with connect/read timeouts, failing clearly when the server is down.

    Raises:
        TransportError: no server answers, or it does not within the timeouts.
    """
    import chromadb

    limits = limits or DEFAULT_LIMITS
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, _probe, host, port, limits)
    timeout = _timeout(limits)
    try:
        client = await asyncio.wait_for(
            chromadb.AsyncHttpClient(host=host, port=port), limits.connect_timeout + limits.read_timeout
        )
    except Exception as e:
        if is_transport_failure(e):
            raise TransportError(f"Chroma server at {host}:{port}: {type(e).__name__}: {e}") from e
        raise
    server = getattr(client, "_server", None)
    make = getattr(server, "_get_client", None)
    if make is not None:

        def with_timeout() -> httpx.AsyncClient:
            http = make()
            http.timeout = timeout
            return http

        server._get_client = with_timeout  # chromadb builds one httpx client per event loop
        for http in getattr(server, "_clients", {}).values():
            http.timeout = timeout
    return client


class Collection:
    """An async facade over one Chroma collection, sync or async.

    A tenant's memory collection carries a :class:`~.txn.TxnView` (``txns``): every read
    through ``get``, ``get_all``, ``pages`` and ``query`` then leaves out records of batches
    staged but not committed (see :mod:`.txn`); :attr:`raw` reads what Chroma holds.
    """

    def __init__(self, inner: Any, run: Callable[..., Awaitable[Any]], max_batch: int) -> None:
        self.inner = inner
        self._run = run
        self._max_batch = max_batch
        self.txns: txn_mod.TxnView | None = None

    @property
    def max_batch(self) -> int:
        """Chroma's largest batch: records in one write call (one SQLite transaction)."""
        return self._max_batch

    @property
    def raw(self) -> Collection:
        """The same collection without the staged-batch filter."""
        return Collection(self.inner, self._run, self._max_batch)

    async def _visible(self, read: Callable[..., Awaitable[Any]], kwargs: dict[str, Any], *,
                       nested: bool = False) -> dict[str, Any]:  # fmt: skip
        """``read(**kwargs)`` without uncommitted staged records (metadata read to know them)."""
        ask, ids_only = _with_metadatas(kwargs)
        return await self._filtered(await read(**ask), ids_only, nested=nested)

    async def _filtered(self, got: dict[str, Any], ids_only: bool, *, nested: bool = False) -> dict[str, Any]:
        assert self.txns is not None
        got = await self.txns.visible(got, nested=nested)
        if ids_only:
            got["metadatas"] = None
        return got

    @property
    def id(self) -> str:
        """Chroma's id of the collection (a dropped and recreated tenant gets a new one)."""
        return str(getattr(self.inner, "id", ""))

    @property
    def metadata(self) -> dict[str, Any]:
        """The collection's metadata as Chroma returned it when opened."""
        return dict(self.inner.metadata or {})

    async def get(self, **kwargs: Any) -> dict[str, Any]:
        """``collection.get`` of at most one page; results keep Chroma's shape.

        Reads by ``ids`` are chunked into pages and merged; any other read must carry a
        ``limit`` of at most :data:`PAGE` (use :meth:`get_all` to read everything).
        """
        if self.txns is not None:
            return await self._visible(self.raw.get, kwargs)
        ids = kwargs.get("ids")
        if ids is not None:
            ids = list(ids)
            if len(ids) <= PAGE:
                return await self._run(self.inner.get, **{**kwargs, "ids": ids})
            merged: dict[str, Any] = {}
            for i in range(0, len(ids), PAGE):
                part = await self._run(self.inner.get, **{**kwargs, "ids": ids[i : i + PAGE]})
                _extend(merged, part)
            return merged
        limit = kwargs.get("limit")
        if limit is None or limit > PAGE:
            raise ValueError("every get carries a limit <= PAGE; use get_all() to read everything")
        return await self._run(self.inner.get, **kwargs)

    async def pages(self, *, page: int | None = None, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
        """Every record matching ``where``, one page at a time (what ``get_all`` merges).

        A caller that turns each page into something smaller (a partition) never holds the
        whole read at once.
        """
        if self.txns is not None:
            ask, ids_only = _with_metadatas(kwargs)
            async for part in self.raw.pages(page=page, **ask):
                yield await self._filtered(part, ids_only)
            return
        page = page or PAGE
        offset = 0
        while True:
            part = await self._run(self.inner.get, **kwargs, limit=page, offset=offset)
            yield part
            got = len(part["ids"])
            if got < page:
                return
            offset += got

    async def get_all(self, *, page: int | None = None, **kwargs: Any) -> dict[str, Any]:
        """Every record matching ``where`` (and ``where_document``), read page by page.

        Pages are taken by offset; a caller that must see a consistent snapshot under
        concurrent deletes checks the change feed afterwards (see ``mem_adapters.data``).
        """
        if self.txns is not None:
            return await self._visible(partial(self.raw.get_all, page=page), kwargs)
        page = page or PAGE
        merged: dict[str, Any] = {}
        offset = 0
        while True:
            part = await self._run(self.inner.get, **kwargs, limit=page, offset=offset)
            _extend(merged, part)
            got = len(part["ids"])
            if got < page:
                break
            offset += got
        if not merged:
            merged = {"ids": [], "documents": [], "metadatas": [], "embeddings": []}
        return merged

    async def query(self, **kwargs: Any) -> dict[str, Any]:
        """``collection.query``."""
        if self.txns is not None:
            return await self._visible(self.raw.query, kwargs, nested=True)
        return await self._run(self.inner.query, **kwargs)

    async def count(self) -> int:
        """Number of records."""
        return int(await self._run(self.inner.count))

    async def upsert(
        self,
        ids: list[str],
        embeddings: list[list[float]],
        documents: list[str],
        metadatas: list[dict[str, Any]],
    ) -> None:
        """Upsert in as few calls as Chroma's batch limit allows (one for normal batches)."""
        for i in range(0, len(ids), self._max_batch):
            j = i + self._max_batch
            await self._run(
                self.inner.upsert,
                ids=ids[i:j],
                embeddings=embeddings[i:j],
                documents=documents[i:j],
                metadatas=metadatas[i:j],
            )

    async def update_metadata(self, ids: list[str], metadatas: list[dict[str, Any]]) -> None:
        """Merge keys into the metadata of existing records, keeping documents and embeddings."""
        for i in range(0, len(ids), self._max_batch):
            j = i + self._max_batch
            await self._run(self.inner.update, ids=ids[i:j], metadatas=metadatas[i:j])

    async def delete(self, ids: list[str]) -> None:
        """Delete records by id (missing ids are ignored)."""
        for i in range(0, len(ids), self._max_batch):
            await self._run(self.inner.delete, ids=ids[i : i + self._max_batch])

    async def modify_metadata(self, metadata: dict[str, Any]) -> None:
        """Replace the collection's metadata."""
        await self._run(self.inner.modify, metadata=metadata)


def _with_metadatas(kwargs: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """``kwargs`` of a read made to include metadatas, and whether the caller asked for none."""
    include = kwargs.get("include")
    if include is None or "metadatas" in include:
        return kwargs, False
    return {**kwargs, "include": [*include, "metadatas"]}, True


async def _sync_copy(src: Collection, dst: Collection, since_rev: int | None) -> None:
    """Make ``dst`` hold what ``src`` holds now (after a copy, writes may have come meanwhile)."""
    src_ids = set((await src.get_all(include=[]))["ids"])
    dst_ids = set((await dst.get_all(include=[]))["ids"])
    missing = sorted(src_ids - dst_ids)
    if since_rev is not None:  # updated in place meanwhile: the same id, a newer revision
        changed = await src.get_all(where={"rev": {"$gt": since_rev}}, include=[])
        missing = sorted(set(missing) | set(changed["ids"]))
    await dst.delete(sorted(dst_ids - src_ids))
    for i in range(0, len(missing), PAGE):
        got = await src.get(ids=missing[i : i + PAGE], include=["documents", "metadatas", "embeddings"])
        if got["ids"]:
            vectors = [list(map(float, v)) for v in got["embeddings"]]
            docs = [d if d is not None else "" for d in got["documents"]]
            await dst.upsert(list(got["ids"]), vectors, docs, list(got["metadatas"]))


def _collection_gone(fn: Callable[..., Any], e: Exception) -> bool:
    """Whether ``e`` says the collection ``fn`` is a method of no longer exists."""
    col = getattr(fn, "__self__", None)
    if col is None or not hasattr(col, "id") or not hasattr(col, "name") or not hasattr(col, "modify"):
        return False  # a client call, not a collection's
    kind = type(e).__name__
    return kind in ("NotFoundError", "InvalidCollectionException") or (
        type(e).__module__.startswith("chromadb") and "does not exist" in str(e)
    )


def _empty_result(name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """What a ``get`` or ``query`` of an empty collection returns, in Chroma's shape."""
    include = list(kwargs.get("include") or ["metadatas", "documents"])
    keys = ("documents", "metadatas", "embeddings", "distances", "uris", "data")
    if name == "get":
        return {"ids": [], "included": include, **{k: ([] if k in include else None) for k in keys}}
    n = len(kwargs.get("query_embeddings") or [[]])
    return {"ids": [[] for _ in range(n)], "included": include,
            **{k: ([[] for _ in range(n)] if k in include else None) for k in keys}}  # fmt: skip


def _is_local(client: Any) -> bool:
    """Whether the client runs Chroma inside this process (embedded or ephemeral), not a server."""
    try:
        impl = str(client.get_settings().chroma_api_impl)
    except Exception:  # an async client or an unknown one: treat it as shared
        return False
    return "rust" in impl or impl.endswith("segment.SegmentAPI")


def _extend(merged: dict[str, Any], part: dict[str, Any]) -> None:
    """Append one page of a ``get`` result to ``merged`` (same keys, lists concatenated)."""
    for key in ("ids", "documents", "metadatas", "embeddings"):
        value = part.get(key)
        if value is None:
            merged.setdefault(key, None)
            continue
        have = merged.get(key)
        merged[key] = [*have, *value] if have is not None else list(value)


class ChromaStore:
    """Opens per-tenant collections on any chromadb client and checks the embedder.

    Args:
        client: A chromadb ``ClientAPI`` (``PersistentClient``, ``HttpClient``...) or an
            ``AsyncClientAPI`` (``await chromadb.AsyncHttpClient(...)``).
        executor: Bounded executor that runs a sync client's calls off the event loop.
        embedder_identity: Identity stored with each memory collection.
        dimension: Vector length stored with each memory collection.
        limits: Retry settings (``write_retries``, ``retry_backoff``); default
            :data:`mem_adapters.limits.DEFAULT_LIMITS`.
        on_write: Called after every write call (done or failed: a failed one may have
            written part); the data layer counts its process's writes with it.
        hnsw_sync_threshold: Records between two saves of a collection's HNSW index (see
            :mod:`.hnsw_config`); default ``$MEM_ADAPTERS_HNSW_SYNC_THRESHOLD`` or
            :data:`~.hnsw_config.DEFAULT_SYNC_THRESHOLD`.
        tune_file: Tune an embedded client's SQLite file (:func:`.chroma_sqlite.tune`).
            ``False`` when the caller already did, before the client opened it: a second pass
            would count the file's records again.
    """

    def __init__(
        self,
        client: Any,
        executor: Executor,
        embedder_identity: str,
        dimension: int,
        *,
        limits: Limits | None = None,
        on_write: Callable[[], None] | None = None,
        hnsw_sync_threshold: int | None = None,
        tune_file: bool = True,
    ) -> None:
        self.client = client
        self.sync_threshold = hnsw_sync_threshold or hnsw_config.sync_threshold_from_env()
        self.on_write = on_write
        self.limits = limits or DEFAULT_LIMITS
        self.is_async = inspect.iscoroutinefunction(getattr(client, "get_or_create_collection", None))
        self.local = _is_local(client)
        self._executor = executor
        self.embedder_identity = embedder_identity
        self.dimension = dimension
        self._cache: OrderedDict[str, tuple[Collection, Collection]] = OrderedDict()
        self._open_lock = asyncio.Lock()
        self._max_batch: int | None = None
        self._gate: asyncio.Event | None = None  # set while a task holds the store (exclusive())
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.txn_grace_s = txn_mod.grace_from_env()  # staged leftovers younger than this stay (.txn)
        persist = self.persist_path()
        if persist is not None:
            scrub_freed_memory()  # what an erase deletes must not come back in a later file (.heap)
            if tune_file:  # indexes and planner statistics Chroma lacks (.chroma_sqlite)
                tune_sqlite(persist)

    async def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one Chroma call (see :meth:`_call`); held back while a task holds :meth:`exclusive`."""
        if _EXCLUSIVE.get() or _IN_CALL.get():  # the holder, or a call made inside a call
            return await self._call(fn, *args, **kwargs)
        while self._gate is not None:
            await self._gate.wait()
        self._inflight += 1
        self._idle.clear()
        token = _IN_CALL.set(True)
        try:
            return await self._call(fn, *args, **kwargs)
        finally:
            _IN_CALL.reset(token)
            self._inflight -= 1
            if self._inflight == 0:
                self._idle.set()

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """Hold back every other task's Chroma calls of this store; calls in flight finish first.

        An erase's swap (last sync of a copy, drop, rename) runs inside, so no write of this
        process lands in a collection about to be dropped. Keep it short.
        """
        if _EXCLUSIVE.get():  # re-entrant: the holder's own nested use
            yield
            return
        token = _EXCLUSIVE.set(True)
        while self._gate is not None:  # one holder at a time
            await self._gate.wait()
        gate = self._gate = asyncio.Event()
        try:
            await self._idle.wait()
            yield
        finally:
            self._gate = None
            gate.set()
            _EXCLUSIVE.reset(token)

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one Chroma call; failures become typed errors, idempotent writes are retried.

        A transport failure (connection refused or reset, timeout, a server's 5xx) of a
        server client is a :class:`TransportError`; any other Chroma failure a
        :class:`StoreError`, the original exception chained. Writes in :data:`RETRIED_CALLS`
        are idempotent (ids are content hashes or caller keys; deletes and metadata updates
        set values), so a transport failure is retried ``limits.write_retries`` times with
        doubling backoff; reads are not retried (the caller sees the error at once).
        """
        name = getattr(fn, "__name__", str(fn))
        retries = self.limits.write_retries if name in RETRIED_CALLS else 0
        delay = self.limits.retry_backoff
        for attempt in range(retries + 1):
            try:
                if self.is_async:
                    out = await fn(*args, **kwargs)
                else:
                    loop = asyncio.get_running_loop()
                    out = await loop.run_in_executor(self._executor, partial(fn, *args, **kwargs))
                if name in WRITE_CALLS and self.on_write is not None:
                    self.on_write()
                return out
            except Exception as e:
                if name in WRITE_CALLS and self.on_write is not None:
                    self.on_write()
                if _collection_gone(fn, e):
                    return await self._after_gone(fn, name, args, kwargs, e)
                error = self._typed(name, e)
                if error is None:
                    raise
                if isinstance(error, TransportError) and attempt < retries:
                    logger.warning("Chroma %s failed (%s); retry %d of %d", name, e, attempt + 1, retries)
                    await asyncio.sleep(delay)
                    delay *= 2
                    continue
                raise error from e
        raise AssertionError("unreachable")  # pragma: no cover

    async def _after_gone(
        self, fn: Callable[..., Any], name: str, args: tuple[Any, ...], kwargs: dict[str, Any], e: Exception
    ) -> Any:
        """A call on a collection that was dropped meanwhile (an erase here or in another process).

        Cached handles of it are let go. If a collection of that name exists again (an erase
        rebuilt it, or the tenant was written again) the call is made on it; if not, the tenant
        was erased: a read finds nothing, a write raises (the next one creates the tenant).

        Raises:
            StoreError: a write to a collection that no longer exists.
        """
        col = fn.__self__  # type: ignore[attr-defined]
        gone_id = str(col.id)
        for tenant_id, pair in list(self._cache.items()):
            if gone_id in (pair[0].id, pair[1].id):
                del self._cache[tenant_id]
        fresh = await self._find(col.name)
        for _ in range(200):  # an erase is between dropping the old and renaming the copy
            if fresh is not None or await self._find(f"{col.name}{REBUILD_SUFFIX}") is None:
                break
            await asyncio.sleep(0.05)
            fresh = await self._find(col.name)
        if fresh is not None and str(fresh.id) != gone_id:
            logger.debug("collection %s was replaced; %s made on the new one", col.name, name)
            return await self._run(getattr(fresh, name), *args, **kwargs)
        if name == "count":
            return 0
        if name in ("get", "query"):
            return _empty_result(name, kwargs)
        raise StoreError(
            f"Chroma call {name} failed: collection {col.name} was dropped meanwhile: {e}"
        ) from e

    def _typed(self, name: str, e: Exception) -> StoreError | None:
        """The typed error for a failed call, or ``None`` to let ``e`` through unchanged."""
        if not self.local and is_transport_failure(e):
            return TransportError(f"Chroma server call {name} failed: {type(e).__name__}: {e}")
        if isinstance(e, ValueError | TypeError):
            return None  # argument errors are ours to surface unchanged
        if type(e).__module__.startswith("chromadb") or isinstance(e, OSError | ConnectionError):
            return StoreError(f"Chroma call {name} failed: {e}")
        return None

    async def _batch_limit(self) -> int:
        if self._max_batch is None:
            try:
                self._max_batch = int(await self._run(self.client.get_max_batch_size))
            except Exception:  # older servers: stay well under every known limit
                self._max_batch = 1000
        return self._max_batch

    def _memory_metadata(self, tenant_id: str) -> dict[str, Any]:
        return {
            "ma_tenant": tenant_id,
            "ma_role": "mem",
            "ma_embedder": self.embedder_identity,
            "ma_dim": self.dimension,
            "ma_schema": SCHEMA,
        }

    def check_embedder(self, tenant_id: str, metadata: dict[str, Any]) -> None:
        """Raise if a memory collection was written with another embedder.

        Raises:
            EmbedderMismatchError: identity or dimension differ; the message says how to migrate.
        """
        identity, dim = metadata.get("ma_embedder"), metadata.get("ma_dim")
        if identity != self.embedder_identity or dim != self.dimension:
            raise EmbedderMismatchError(
                f"tenant {tenant_id!r} was written with embedder {identity!r} (dim {dim}); the "
                f"engine now uses {self.embedder_identity!r} (dim {self.dimension}). Open it with "
                "the original embedder, or call engine.reembed() to migrate the stored texts."
            )

    async def open(self, tenant_id: str, *, create: bool = True) -> tuple[Collection, Collection] | None:
        """The tenant's ``(mem, aux)`` collections; ``None`` if absent and ``create`` is false."""
        hit = self._cache.get(tenant_id)
        if hit is not None:
            self._cache.move_to_end(tenant_id)
            return hit
        async with self._open_lock:
            hit = self._cache.get(tenant_id)
            if hit is not None:
                return hit
            mem_name, aux_name = collection_names(tenant_id)
            # One lookup by name: listing every collection would cost O(tenants) per open.
            mem = await self._find(mem_name)
            if mem is None:
                mem = await self._recover_rebuild(mem_name)
            if mem is None:
                # By name again, never by listing: a new tenant must not cost O(tenants).
                if await self._find(f"{mem_name}{STAGING_SUFFIX}") is not None:
                    await self._recover_staging(mem_name)
                elif not create:
                    return None
                mem = await self._run(
                    self.client.get_or_create_collection,
                    mem_name,
                    metadata=self._memory_metadata(tenant_id),
                    configuration=hnsw_config.configuration(self.sync_threshold, cosine=True),
                    embedding_function=None,
                )
            self.check_embedder(tenant_id, dict(mem.metadata or {}))
            if await self._find(aux_name) is None:  # an erase died mid-swap of the aux collection
                await self._recover_rebuild(aux_name)
            aux = await self._run(
                self.client.get_or_create_collection,
                aux_name,
                metadata={"ma_tenant": tenant_id, "ma_role": "aux", "ma_schema": SCHEMA},
                configuration=hnsw_config.configuration(self.sync_threshold, cosine=False),
                embedding_function=None,
            )
            for col, memory in ((mem, True), (aux, False)):  # stores made before the settings
                await self._align_hnsw(col, memory=memory)
            limit = await self._batch_limit()
            pair = (Collection(mem, self._run, limit), Collection(aux, self._run, limit))
            pair[0].txns = txn_mod.TxnView(pair[1])
            await self._settle_txns(tenant_id, pair)
            self._cache[tenant_id] = pair
            while len(self._cache) > MAX_OPEN_TENANTS:  # idle tenants' handles are let go
                self._cache.popitem(last=False)
            return pair

    async def _align_hnsw(self, col: Any, *, memory: bool) -> None:
        """Set :attr:`sync_threshold` (and a memory collection's ``ef_search``) where they differ.

        Only settings of how often Chroma saves and how wide it searches (:mod:`.hnsw_config`):
        a client or server that refuses them leaves the collection as it was, with a warning.
        """
        changes = hnsw_config.updates(col, self.sync_threshold, memory=memory)
        if not changes:
            return
        try:
            await self._run(col.modify, configuration={"hnsw": changes})
        except Exception:
            logger.warning("could not set %s on collection %s", changes, col.name, exc_info=True)

    async def _settle_txns(self, tenant_id: str, pair: tuple[Collection, Collection]) -> None:
        """At open: roll back crashed staged batches past the grace, finish committed ones (.txn)."""
        try:
            await txn_mod.settle(*pair, clock=RevisionClock(), grace_s=self.txn_grace_s)
        except StoreError:  # leftovers stay invisible; the next open tries again
            logger.warning("could not settle staged batches of tenant %r", tenant_id, exc_info=True)

    async def _find(self, name: str) -> Any:
        """An existing collection by name, or ``None``."""
        try:
            return await self._run(self.client.get_collection, name, embedding_function=None)
        except StoreError as e:
            if type(e.__cause__).__name__ in ("NotFoundError", "InvalidCollectionException"):
                return None
            raise
        except ValueError:  # older chromadb: "Collection ... does not exist"
            return None

    async def _recover_staging(self, mem_name: str) -> None:
        """Finish a migration that died after dropping the old collection: the staging copy is whole."""
        staging = await self.get_raw(f"{mem_name}{STAGING_SUFFIX}")
        logger.warning("recovering %s from its re-embedding staging copy", mem_name)
        got = await staging.get_all(include=["embeddings", "documents", "metadatas"])
        target = await self.create_raw(mem_name, staging.metadata)
        if got["ids"]:
            vectors = [list(map(float, v)) for v in got["embeddings"]]
            await target.upsert(list(got["ids"]), vectors, list(got["documents"]), list(got["metadatas"]))
        await self.delete_raw(f"{mem_name}{STAGING_SUFFIX}")

    async def _recover_rebuild(self, name: str) -> Any:
        """Finish a rebuild that died after dropping ``name``: its fresh copy is whole; rename it.

        Returns the renamed collection, or ``None`` when there is no copy to recover.
        """
        copy = await self._find(f"{name}{REBUILD_SUFFIX}")
        if copy is None:
            return None
        logger.warning("recovering %s from the copy an interrupted erase left (%s)", name, copy.name)
        await self._run(copy.modify, name=name)
        return await self._find(name)

    def persist_path(self) -> str | None:
        """The folder of an embedded (``PersistentClient``) store; ``None`` for a server or in-memory."""
        if not self.local:
            return None
        try:
            settings = self.client.get_settings()
        except Exception:
            return None
        if not getattr(settings, "is_persistent", False):
            return None
        return str(settings.persist_directory)

    async def collection_id(self, name: str) -> str | None:
        """Chroma's id of the collection named ``name``, or ``None`` if there is none."""
        col = await self._find(name)
        return None if col is None else str(col.id)

    async def rebuild(self, name: str, *, since_rev: int | None = None) -> tuple[str | None, int]:
        """Copy a collection into a fresh one and swap it in; returns ``(old id, records copied)``.

        Chroma never rewrites what it once wrote for a collection: deleted records stay in its
        HNSW files (vectors marked deleted) until the collection is dropped. The copy holds only
        the live records, read page by page with their embeddings and written to
        ``<name>-rebuild``; once its count matches, the old collection is dropped and the copy
        renamed. A crash before the drop leaves the old collection whole (the next rebuild
        drops the stale copy first); a crash after it is finished by :meth:`open`, which
        renames the copy. Writes of this process during the copy are carried over before the
        drop (ids compared; records stamped with a revision above ``since_rev`` copied again);
        other processes must stay out (embedded stores: one process, see :mod:`.lock`).

        Raises:
            StoreError: the copy does not hold every record (nothing is dropped then).
        """
        tmp_name = f"{name}{REBUILD_SUFFIX}"
        old = await self._find(name)
        if old is None:
            await self._recover_rebuild(name)
            return None, 0
        await self.delete_raw(tmp_name)  # a copy left by an erase killed before its swap
        limit = await self._batch_limit()
        meta = dict(old.metadata or {})
        config = hnsw_config.configuration(self.sync_threshold, cosine=meta.get("ma_role") != "aux")
        created = await self._run(
            self.client.get_or_create_collection,
            tmp_name,
            metadata=meta or None,
            configuration=config,
            embedding_function=None,
        )
        src, dst = Collection(old, self._run, limit), Collection(created, self._run, limit)
        copied = 0
        async for got in src.pages(include=["documents", "metadatas", "embeddings"]):
            ids = list(got["ids"])
            if not ids:
                continue
            vectors = [list(map(float, v)) for v in got["embeddings"]]
            docs = [d if d is not None else "" for d in got["documents"]]
            await dst.upsert(ids, vectors, docs, list(got["metadatas"]))
            copied += len(ids)
        await _sync_copy(src, dst, since_rev)  # most of what was written meanwhile, unhindered
        async with self.exclusive():  # then no other call of this process until the swap is done
            await _sync_copy(src, dst, since_rev)
            have, want = await dst.count(), await src.count()
            if have != want:
                raise StoreError(
                    f"rebuilding {name}: the copy holds {have} of {want} records; nothing dropped"
                )
            self._cache.clear()  # handles of the old collection must not be used again
            await self._run(self.client.delete_collection, name)
            await self._run(created.modify, name=name)
        return str(old.id), copied

    async def get_raw(self, name: str) -> Collection:
        """Open an existing collection by name without the embedder check (migrations)."""
        col = await self._run(self.client.get_collection, name, embedding_function=None)
        return Collection(col, self._run, await self._batch_limit())

    async def list_collection_names(self) -> list[str]:
        """Names of every collection of this client's database."""
        cols = await self._run(self.client.list_collections)
        return [c if isinstance(c, str) else c.name for c in cols]

    async def tenants(self) -> list[str]:
        """Every tenant id that has a memory collection."""
        out = []
        for name in await self.list_collection_names():
            if name.startswith(_PREFIX) and name.endswith("-mem"):
                col = await self._run(self.client.get_collection, name)
                tenant = (col.metadata or {}).get("ma_tenant")
                if tenant is not None:
                    out.append(tenant)
        return sorted(out)

    async def drop_tenant(self, tenant_id: str) -> None:
        """Delete both collections of a tenant."""
        self._cache.pop(tenant_id, None)
        for name in collection_names(tenant_id):
            await self.delete_raw(name)

    async def create_raw(self, name: str, metadata: dict[str, Any]) -> Collection:
        """Create (or open) a collection by name; used by migrations."""
        col = await self._run(
            self.client.get_or_create_collection,
            name,
            metadata=metadata,
            configuration=hnsw_config.configuration(
                self.sync_threshold, cosine=(metadata or {}).get("ma_role") != "aux"
            ),
            embedding_function=None,
        )
        return Collection(col, self._run, await self._batch_limit())

    async def delete_raw(self, name: str) -> None:
        """Delete a collection by name if it exists (looked up by name: O(1) in the tenants)."""
        if await self._find(name) is not None:
            await self._run(self.client.delete_collection, name)

    def forget(self, tenant_id: str) -> None:
        """Drop cached handles of a tenant (after a migration)."""
        self._cache.pop(tenant_id, None)

    async def heartbeat(self) -> Any:
        """Ping the client (used to fail fast on a wrong server address)."""
        return await self._run(self.client.heartbeat)
