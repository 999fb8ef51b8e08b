"""The engine's one implementation: :class:`AsyncMemoryEngine`.

:class:`mem_adapters.MemoryEngine` runs this same code on a private event loop, so sync and
async behave identically. Chroma calls go through :mod:`mem_adapters.store`; the embedder runs
in a small bounded executor so the event loop never blocks.

Ordering: every write gets ``seq`` from a hybrid logical clock (wall-clock nanoseconds, forced
strictly increasing inside the process). Within a process ``seq`` is write order; across
processes it is write-time order, ties broken by id. Re-sent turns keep their first ``seq``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import pydantic

from . import records as rec
from .chunking import chunk_text
from .data import AUX_VECTOR, STAGING_SUFFIX, ChromaStore, Collection, DataLayer, collection_names
from .data.snapshots import SnapshotStore
from .embeddings import as_embedder, count_tokens
from .enrichment import Enricher, aextract_for_add
from .errors import ClosedError, JobError, MemAdaptersError, NotFoundError, ValidationError
from .filters import all_of, translate
from .models import (
    DEFAULT_TENANT,
    AddResult,
    EraseReceipt,
    HistoryEntry,
    JobStatus,
    MemoryItem,
    Page,
    RecordResult,
    SearchResult,
    Turn,
    Usage,
    WriteResult,
    to_utc,
)
from .retrieval import Retriever

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


class AsyncMemoryEngine:
    """Conversational memory over Chroma, async API.

    Args:
        path: Folder of an embedded persistent Chroma (default ``$MEM_ADAPTERS_PATH`` or
            ``.mem_adapters/`` in the working directory). Ignored when ``client`` or ``host``
            is given.
        client: Any chromadb client: ``PersistentClient``, ``HttpClient``, or an
            ``AsyncClientAPI`` from ``await chromadb.AsyncHttpClient(...)``.
        host: Chroma server host; the engine then opens an ``AsyncHttpClient`` itself.
        port: Chroma server port (with ``host``).
        embedder: An :class:`~mem_adapters.embeddings.Embedder`, a LangChain ``Embeddings``,
            a LlamaIndex ``BaseEmbedding`` or a Chroma ``EmbeddingFunction``; default
            all-MiniLM-L6-v2 ONNX.
        model_dir: Folder of the default model's ONNX files (else ``$MEM_ADAPTERS_MODEL_DIR``,
            Chroma's cache, Chroma's downloader).
        max_workers: Size of the executor that runs a sync Chroma client's calls.
        enricher: Background enrichment (see :mod:`mem_adapters.enrichment`); ``None`` disables it.
        partition_budget_mb: Memory budget of the derived search partitions held by this
            process (default ``$MEM_ADAPTERS_PARTITION_BUDGET_MB`` or 1024); least recently
            used partitions are evicted past it and reloaded on their next search.
        snapshot_dir: Folder of derived partition snapshots, which let a new process search a
            large store at once (default: ``.mem_adapters-derived`` inside an embedded store's
            folder; none for a server unless given).

    Example:
        >>> import asyncio, tempfile
        >>> async def demo():
        ...     engine = AsyncMemoryEngine(tempfile.mkdtemp())
        ...     await engine.remember([{"role": "user", "text": "I love hiking"}], session_id="s1")
        ...     hits = await engine.search("outdoor hobbies", session_id="s1")
        ...     await engine.aclose()
        ...     return hits.results[0].text
        >>> asyncio.run(demo())  # doctest: +SKIP
        'I love hiking'
    """

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
    ) -> None:
        self.embedder = as_embedder(embedder, model_dir=model_dir)
        self._io = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="mem-adapters-io")
        self._cpu = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mem-adapters-embed")
        self._host, self._port = host, port
        if client is None and host is None:
            import chromadb

            self.path = Path(path or os.environ.get(PATH_ENV) or DEFAULT_PATH)
            client = chromadb.PersistentClient(path=str(self.path))
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
        self._last_seq = 0
        self._last_purge: dict[str, float] = {}
        self._closed = False
        self.retriever = Retriever(None, self.embed_query)
        if isinstance(enricher, str):
            if enricher != "default":
                raise ValidationError("enricher", "must be None, 'default' or an Enricher")
            enricher = Enricher()
        self.enricher = enricher
        if enricher is not None and hasattr(enricher, "bind"):
            enricher.bind(self)

    # ------------------------------------------------------------------ plumbing

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
                    if client is None:
                        import chromadb

                        client = await chromadb.AsyncHttpClient(host=self._host, port=self._port)
                        self._client = client
                    store = ChromaStore(client, self._io, self.embedder.identity, self.embedder.dimension)
                    self._data = DataLayer(
                        store,
                        self.embedder.dimension,
                        partition_budget_mb=self._partition_budget_mb,
                        snapshots=self._snapshots,
                    )
                    self.retriever.data = self._data
                    self._store = store
        return self._store

    async def data(self) -> DataLayer:
        """The data layer (Chroma and the derived partitions), opened on first use."""
        await self.store()
        assert self._data is not None
        return self._data

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

    async def _count_tokens(self, texts: Sequence[str]) -> int:
        if not texts:
            return 0
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._cpu, count_tokens, self.embedder, list(texts))

    def next_seq(self, n: int = 1) -> int:
        """Reserve ``n`` consecutive sequence numbers; returns the first."""
        base = max(time.time_ns(), self._last_seq + 1)
        self._last_seq = base + n - 1
        return base

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
        """Embed (unless given) and upsert records through the data layer."""
        if not ids:
            return
        if embeddings is None:
            embeddings = await self.embed(
                [rec.embedding_text(t, m) for t, m in zip(texts, metas, strict=True)]
            )
        await (await self.data()).write_records(tenant_id, ids, texts, metas, embeddings)

    async def delete_records(self, tenant_id: str, ids: list[str]) -> None:
        """Delete records (the data layer leaves tombstones for other processes)."""
        await (await self.data()).delete_records(tenant_id, ids)

    async def purge_expired(self, tenant_id: str, *, force: bool = False) -> int:
        """Delete expired records of a tenant (rate-limited unless ``force``); returns the count.

        The same sweep removes tombstones older than the data layer's TTL.
        """
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
        if not ids:
            return {}
        return await (await self.data()).fetch(tenant_id, ids)

    async def _require(self, tenant_id: str, memory_id: str) -> tuple[str, dict[str, Any]]:
        _require_str("id", memory_id)
        found = (await self._get_raw(tenant_id, [memory_id])).get(memory_id)
        if found is None:
            raise NotFoundError(f"no memory {memory_id!r} in tenant {tenant_id!r}")
        return found

    # ------------------------------------------------------------------ writes

    @staticmethod
    def _parse_turns(turns: Iterable[Turn | dict[str, Any]]) -> list[Turn]:
        if isinstance(turns, Turn | dict | str) or turns is None:
            raise ValidationError("turns", "must be a list of Turn or dict")
        parsed: list[Turn] = []
        for i, t in enumerate(turns):
            if isinstance(t, Turn):
                parsed.append(t)
                continue
            if not isinstance(t, dict):
                raise ValidationError(f"turns[{i}]", f"must be a Turn or dict, got {type(t).__name__}")
            try:
                parsed.append(Turn.model_validate(t))
            except pydantic.ValidationError as e:
                err = e.errors()[0]
                loc = ".".join(str(p) for p in err["loc"])
                raise ValidationError(f"turns[{i}].{loc}", err["msg"]) from e
        if not parsed:
            raise ValidationError("turns", "must not be empty")
        return parsed

    async def remember(
        self,
        turns: Sequence[Turn | dict[str, Any]],
        *,
        session_id: str,
        user_id: str | None = None,
        agent_id: str | None = None,
        tenant_id: str = DEFAULT_TENANT,
        sub_tenant_id: str | None = None,
        sub_session_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        status: Literal["active", "archived"] = "active",
    ) -> WriteResult:
        """Write a batch of turns; they are searchable when this returns.

        Re-sending any batch returns the same ids and writes nothing new. A turn's id is its
        ``id`` when given, else a hash of (scope, session, role, text, timestamp).

        Args:
            turns: :class:`Turn` models or dicts ``{role, text, timestamp?, metadata?,
                observations?, id?}``.
            session_id: The transcript the turns belong to.
            user_id: Owner of the memories.
            agent_id: Agent the conversation is with.
            tenant_id: Isolation boundary (default ``"default"``).
            sub_tenant_id: Scope level inside the tenant.
            sub_session_id: Optional sub-grouping inside the transcript.
            metadata: Applied to every turn (a turn's own metadata wins on key clashes).
            status: Status of the new turns, ``"active"`` or ``"archived"``.

        Raises:
            ValidationError: bad input, naming the field; nothing is written.
        """
        parsed = self._parse_turns(turns)
        _require_str("session_id", session_id)
        for name, value in (
            ("user_id", user_id),
            ("agent_id", agent_id),
            ("sub_tenant_id", sub_tenant_id),
            ("sub_session_id", sub_session_id),
        ):
            _require_str(name, value, optional=True)
        _require_str("tenant_id", tenant_id)
        if status not in ("active", "archived"):
            raise ValidationError("status", "must be 'active' or 'archived'")
        base_meta = metadata or {}
        rec.encode_meta(base_meta, "metadata")
        now = _now()
        scope = {
            "tenant_id": tenant_id,
            "sub_tenant_id": rec.opt(sub_tenant_id),
            "user_id": rec.opt(user_id),
            "agent_id": rec.opt(agent_id),
            "session_id": session_id,
            "sub_session_id": rec.opt(sub_session_id),
        }
        # Validate and encode everything before touching the store: nothing is half-written.
        rows: list[tuple[str, Turn, datetime, dict[str, Any]]] = []
        for i, t in enumerate(parsed):
            ts = t.timestamp or now
            if t.id is not None:
                _require_str(f"turns[{i}].id", t.id)
            tid = t.id or rec.stable_id(
                "t_",
                tenant_id,
                sub_tenant_id,
                user_id,
                agent_id,
                session_id,
                t.role,
                t.text,
                ts.isoformat(),
            )
            meta = rec.encode_meta({**base_meta, **t.metadata}, f"turns[{i}].metadata")
            for j, o in enumerate(t.observations):
                _require_str(f"turns[{i}].observations[{j}].text", o.text)
                rec.encode_meta(o.metadata, f"turns[{i}].observations[{j}].metadata")
            rows.append((tid, t, ts, meta))
        ids = [r[0] for r in rows]
        async with self._session_lock(tenant_id, session_id):
            found = await self._get_raw(tenant_id, list(dict.fromkeys(ids)))
            for i, (tid, t, _, _) in enumerate(rows):
                # A caller id is a tenant-wide key: re-sending the same turn is a no-op (even when a
                # retrying client stamps it anew), but reusing the id for a different turn would
                # silently lose it, so it is an error.
                if t.id is not None and tid in found:
                    text, md = found[tid]
                    if (md.get("session_id"), md.get("role"), text) != (session_id, t.role, t.text):
                        raise ValidationError(
                            f"turns[{i}].id", f"id {tid!r} is already used by a different turn"
                        )
            existing = set(found)
            fresh: dict[str, tuple[str, Turn, datetime, dict[str, Any]]] = {}
            for r in rows:  # first occurrence wins when a batch repeats an id
                if r[0] not in existing:
                    fresh.setdefault(r[0], r)
            seq = self.next_seq(max(1, sum(1 + len(r[1].observations) for r in fresh.values())))
            new_ids: list[str] = []
            texts: list[str] = []
            metas: list[dict[str, Any]] = []
            created_at = now.timestamp()
            for tid, t, ts, meta in fresh.values():
                new_ids.append(tid)
                texts.append(t.text)
                metas.append(
                    {
                        **scope,
                        **meta,
                        "kind": "turn",
                        "role": t.role,
                        "ts": ts.timestamp(),
                        "seq": seq,
                        "status": status,
                        "created_at": created_at,
                        "updated_at": created_at,
                        "expires_at": rec.NEVER,
                        "version": 1,
                        "is_latest": True,
                        "indexed": True,
                        "enrich": "pending",
                    }
                )
                seq += 1
                for j, o in enumerate(t.observations):
                    new_ids.append(rec.stable_id("o_", tid, j, o.text))
                    texts.append(o.text)
                    metas.append(
                        {
                            **scope,
                            **rec.encode_meta(o.metadata),
                            "kind": "fact",
                            "role": t.role,
                            "ts": ts.timestamp(),
                            "seq": seq,
                            "status": "active",
                            "created_at": created_at,
                            "updated_at": created_at,
                            "expires_at": rec.NEVER,
                            "version": 1,
                            "is_latest": True,
                            "indexed": True,
                            "parent_id": tid,
                            "source_ids": json.dumps([tid]),
                            "attrs": json.dumps(
                                {
                                    "origin": "observation",
                                    "fact_type": "observation",
                                    "confidence": 1.0,
                                }
                            ),
                            "enrich": "done",
                        }
                    )
                    seq += 1
            tokens_in = await self._count_tokens([r[1].text for r in rows])
            tokens_out = await self._count_tokens(texts)
            await self.write_records(tenant_id, new_ids, texts, metas)
        await self.purge_expired(tenant_id)
        passive = None
        turn_ids = list(fresh)
        if self.enricher is not None and turn_ids:
            passive = await self.enricher.submit(tenant_id, session_id, turn_ids)
        return WriteResult(
            job_id=uuid.uuid4().hex,
            active_ids=ids,
            passive_job_id=passive,
            created=len(turn_ids),
            duplicates=len(rows) - len(turn_ids),
            usage=Usage(tokens_in=tokens_in, tokens_out=tokens_out),
        )

    async def record_message(
        self,
        conversation_id: str,
        role: str,
        content: str,
        *,
        user_id: str,
        customer_id: str,
        session_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> RecordResult:
        """Record one user/assistant message (strict variant of :meth:`remember`).

        ``customer_id`` is the tenant and ``conversation_id`` the transcript; ``session_id``
        is an optional sub-grouping of the conversation, generated when absent.

        Raises:
            ValidationError: role is not "user"/"assistant", or an id/content is empty.
        """
        if role not in ("user", "assistant"):
            raise ValidationError("role", f"must be 'user' or 'assistant', got {role!r}")
        _require_str("conversation_id", conversation_id)
        _require_str("content", content)
        _require_str("user_id", user_id)
        _require_str("customer_id", customer_id)
        _require_str("session_id", session_id, optional=True)
        session_id = session_id or f"sess_{uuid.uuid4().hex}"
        message_id = f"msg_{uuid.uuid4().hex}"
        recorded_at = _now()
        await self.remember(
            [
                Turn(
                    id=message_id,
                    role=role,
                    text=content,
                    timestamp=recorded_at,
                    metadata=metadata or {},
                )
            ],
            session_id=conversation_id,
            user_id=user_id,
            tenant_id=customer_id,
            sub_session_id=session_id,
        )
        return RecordResult(
            message_id=message_id,
            conversation_id=conversation_id,
            session_id=session_id,
            recorded_at=recorded_at,
        )

    @staticmethod
    def _pairs_text(pairs: Any, user_name: str | None) -> str:
        if not isinstance(pairs, list | tuple) or not pairs:
            raise ValidationError("pairs", "must be a non-empty list of user/assistant pairs")
        lines = []
        for i, pair in enumerate(pairs):
            if isinstance(pair, dict):
                user, assistant = pair.get("user"), pair.get("assistant")
            elif isinstance(pair, list | tuple) and len(pair) == 2:
                user, assistant = pair
            else:
                raise ValidationError(f"pairs[{i}]", "must be {'user':..., 'assistant':...} or a 2-tuple")
            if (
                not isinstance(user, str)
                or not isinstance(assistant, str)
                or not (user.strip() or assistant.strip())
            ):
                raise ValidationError(f"pairs[{i}]", "user and assistant must be strings, not both empty")
            if user.strip():
                lines.append(f"{user_name or 'user'}: {user}")
            if assistant.strip():
                lines.append(f"assistant: {assistant}")
        return "\n".join(lines)

    async def add(
        self,
        *,
        raw_text: str | None = None,
        pairs: Sequence[Any] | None = None,
        tenant_id: str = DEFAULT_TENANT,
        sub_tenant_id: str | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        memory_id: str | None = None,
        expiry_seconds: float | None = None,
        infer: bool = False,
        custom_instructions: str | None = None,
        user_name: str | None = None,
        metadata: dict[str, Any] | None = None,
        index: bool = True,
    ) -> AddResult:
        """Store raw text, or user/assistant pairs, as a memory.

        Long text is chunked (each chunk searchable, linked to the memory). Writing with an
        existing ``memory_id`` replaces that memory; its history keeps the old version.

        Args:
            raw_text: Free text (exclusive with ``pairs``).
            pairs: ``[{"user": ..., "assistant": ...}]`` or ``[(user, assistant)]``.
            tenant_id: Isolation boundary.
            sub_tenant_id: Scope level inside the tenant.
            user_id: Owner.
            agent_id: Agent.
            session_id: Optional session the memory belongs to.
            memory_id: Caller id (keyed memory); generated when absent.
            expiry_seconds: Seconds until the memory (and its chunks) vanish.
            infer: Also store condensed memories extracted from the text.
            custom_instructions: Passed to the condenser/extractor.
            user_name: Speaker label for the user side of ``pairs``.
            metadata: Caller metadata (JSON-serialisable).
            index: ``False`` stores the memory for get/list only: it is neither embedded nor
                searched (nor chunked).

        Raises:
            ValidationError: both or neither of ``raw_text``/``pairs``, empty text, bad expiry.
        """
        if raw_text is not None and pairs is not None:
            raise ValidationError("raw_text", "give raw_text or pairs, not both")
        if raw_text is None and pairs is None:
            raise ValidationError("raw_text", "give raw_text or pairs")
        if raw_text is not None:
            if not isinstance(raw_text, str) or not raw_text.strip():
                raise ValidationError("raw_text", "must be a non-empty string")
            text = raw_text
        else:
            text = self._pairs_text(pairs, user_name)
        if expiry_seconds is not None and (
            isinstance(expiry_seconds, bool)
            or not isinstance(expiry_seconds, int | float)
            or expiry_seconds <= 0
        ):
            raise ValidationError("expiry_seconds", "must be a positive number of seconds")
        _require_str("memory_id", memory_id, optional=True)
        _require_str("tenant_id", tenant_id)
        meta = rec.encode_meta(metadata or {}, "metadata")
        memory_id = memory_id or f"mem_{uuid.uuid4().hex}"
        source_id = rec.stable_id("src_", text)
        now = time.time()
        expires_at = now + expiry_seconds if expiry_seconds else rec.NEVER
        chunks = chunk_text(text) if index else [text]
        inferred = (
            await aextract_for_add(text, custom_instructions=custom_instructions, enricher=self.enricher)
            if infer
            else []
        )
        scope = {
            "tenant_id": tenant_id,
            "sub_tenant_id": rec.opt(sub_tenant_id),
            "user_id": rec.opt(user_id),
            "agent_id": rec.opt(agent_id),
            "session_id": rec.opt(session_id),
            "sub_session_id": "",
            "role": "user" if pairs is not None else "",
        }
        async with self._session_lock(tenant_id, f"memory:{memory_id}"):
            old = (await self._get_raw(tenant_id, [memory_id])).get(memory_id)
            version = 1
            if old is not None:
                await self._append_history(tenant_id, memory_id, old[0], old[1])
                version = int(old[1].get("version", 1)) + 1
                await self.delete_records(tenant_id, await self._children(tenant_id, memory_id))
            seq = self.next_seq(1 + len(chunks) + len(inferred))
            common = {
                **scope,
                **meta,
                "ts": now,
                "status": "active",
                "created_at": now,
                "updated_at": now,
                "expires_at": expires_at,
                "is_latest": True,
                "enrich": "done",
            }
            ids = [memory_id]
            texts = [text]
            attrs = {"source_id": source_id, "last_event": "ADD" if old is None else "UPDATE"}
            metas = [
                {
                    **common,
                    "kind": "raw",
                    "seq": seq,
                    "version": version,
                    "indexed": index and len(chunks) == 1,
                    "attrs": json.dumps(attrs),
                }
            ]
            if len(chunks) > 1:
                for i, chunk in enumerate(chunks):
                    ids.append(f"{memory_id}#c{i}")
                    texts.append(chunk)
                    metas.append(
                        {
                            **common,
                            "kind": "chunk",
                            "seq": seq + 1 + i,
                            "version": 1,
                            "indexed": True,
                            "parent_id": memory_id,
                            "source_ids": json.dumps([memory_id]),
                            "attrs": json.dumps({"chunk_index": i, "source_id": source_id}),
                        }
                    )
            for i, fact in enumerate(inferred):
                ids.append(f"{memory_id}#f{i}")
                texts.append(fact)
                metas.append(
                    {
                        **common,
                        "kind": "fact",
                        "seq": seq + 1 + len(chunks) + i,
                        "version": 1,
                        "indexed": index,
                        "parent_id": memory_id,
                        "source_ids": json.dumps([memory_id]),
                        "attrs": json.dumps({"origin": "inferred", "source_id": source_id}),
                    }
                )
            if not index:
                # Chroma needs a vector; an unindexed memory is never searched, so any will do.
                embeddings = [[1.0] + [0.0] * (self.embedder.dimension - 1) for _ in texts]
            else:
                embeddings = await self.embed(texts[1:] if len(chunks) > 1 else texts)
            if index and len(chunks) > 1:
                # The long parent is not searched itself (its chunks are); reuse chunk 0's vector.
                embeddings = [embeddings[0], *embeddings]
            await self.write_records(tenant_id, ids, texts, metas, embeddings)
        return AddResult(
            memory_id=memory_id,
            source_id=source_id,
            chunks_created=len(chunks) + len(inferred),
            original_chunks=len(chunks),
            inferred_chunks=len(inferred),
        )

    # ------------------------------------------------------------------ history

    async def _children(self, tenant_id: str, memory_ids: str | Sequence[str]) -> list[str]:
        """Ids of records derived from the given memories (chunks, observations, facts)."""
        parents = [memory_ids] if isinstance(memory_ids, str) else list(memory_ids)
        if not parents:
            return []
        mem = await self._mem(tenant_id)
        got = await mem.get_all(where={"parent_id": {"$in": parents}}, include=[])
        return list(got["ids"])

    @staticmethod
    def _history_row(
        memory_id: str, text: str, md: dict[str, Any], event: str | None = None
    ) -> tuple[str, str, dict[str, Any]]:
        """The aux record holding the pre-image of one version of a memory."""
        version = int(md.get("version", 1))
        attrs = json.loads(md["attrs"]) if md.get("attrs") else {}
        row_event = event or attrs.get("last_event") or ("ADD" if version == 1 else "UPDATE")
        at = md.get("updated_at", md.get("created_at", time.time()))
        meta = {
            "type": "history",
            "memory_id": memory_id,
            "version": version,
            "event": row_event,
            "at": at,
            "user_id": md.get("user_id", ""),
            "meta": md.get("meta", "{}"),
        }
        return f"h:{memory_id}:{version}:{row_event}", text, meta

    async def _write_history(self, tenant_id: str, rows: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Upsert history rows in one call."""
        if not rows:
            return
        pair = await self.collections(tenant_id)
        assert pair is not None
        await pair[1].upsert(
            [r[0] for r in rows], [AUX_VECTOR] * len(rows), [r[1] for r in rows], [r[2] for r in rows]
        )

    async def _append_history(
        self,
        tenant_id: str,
        memory_id: str,
        text: str,
        md: dict[str, Any],
        event: str | None = None,
    ) -> None:
        """Store the pre-image of a memory as a history row (written lazily, on change)."""
        await self._write_history(tenant_id, [self._history_row(memory_id, text, md, event)])

    async def _own_history(
        self, tenant_id: str, memory_id: str
    ) -> tuple[list[HistoryEntry], dict[str, Any] | None]:
        """History rows of one id plus its current version; also returns its live metadata."""
        pair = await self.collections(tenant_id, create=False)
        if pair is None:
            return [], None
        got = await pair[1].get_all(
            where={"$and": [{"type": "history"}, {"memory_id": memory_id}]},
            include=["documents", "metadatas"],
        )
        entries = [
            HistoryEntry(
                memory_id=memory_id,
                version=int(m["version"]),
                event=m["event"],
                text=d or "",
                metadata=json.loads(m.get("meta") or "{}"),
                at=rec.from_epoch(m["at"]),
            )
            for d, m in zip(got["documents"], got["metadatas"], strict=True)
        ]
        current = (await self._get_raw(tenant_id, [memory_id])).get(memory_id)
        md = None
        if current is not None:
            text, md = current
            attrs = json.loads(md["attrs"]) if md.get("attrs") else {}
            version = int(md.get("version", 1))
            entries.append(
                HistoryEntry(
                    memory_id=memory_id,
                    version=version,
                    event=attrs.get("last_event") or ("ADD" if version == 1 else "UPDATE"),
                    text=text,
                    metadata=rec.caller_meta(md),
                    at=rec.from_epoch(md.get("updated_at")),
                )
            )
        order = {"DELETE": 1}
        entries.sort(key=lambda e: (e.version, order.get(e.event, 0), e.at))
        return entries, md

    async def history(self, memory_id: str, *, tenant_id: str = DEFAULT_TENANT) -> list[HistoryEntry]:
        """Every version of a memory, oldest first (the current one last; a DELETE row if deleted).

        For facts, the supersession chain is followed both ways (``supersedes`` and
        ``superseded_by``), so any fact of a chain shows the whole chain.

        Raises:
            NotFoundError: the id never existed in this tenant.
        """
        _require_str("id", memory_id)
        entries, md = await self._own_history(tenant_id, memory_id)
        if not entries:
            raise NotFoundError(f"no memory {memory_id!r} in tenant {tenant_id!r}")
        seen = {memory_id}
        for link, prepend in (("supersedes", True), ("superseded_by", False)):
            cursor = md
            while cursor is not None and rec.unopt(cursor.get(link)) and cursor[link] not in seen:
                other = cursor[link]
                seen.add(other)
                more, cursor = await self._own_history(tenant_id, other)
                entries = [*more, *entries] if prepend else [*entries, *more]
        return entries

    # ------------------------------------------------------------------ reads

    async def get(self, memory_id: str, *, tenant_id: str = DEFAULT_TENANT) -> MemoryItem:
        """One memory by id, looked up inside ``tenant_id`` only.

        Raises:
            NotFoundError: unknown (or expired) id in this tenant.
        """
        text, md = await self._require(tenant_id, memory_id)
        return rec.to_item(memory_id, text, md)

    async def get_many(self, ids: Sequence[str], *, tenant_id: str = DEFAULT_TENANT) -> list[MemoryItem]:
        """Memories by id, in the given order; unknown ids are skipped."""
        found = await self._get_raw(tenant_id, list(dict.fromkeys(ids)))
        return [rec.to_item(i, *found[i]) for i in ids if i in found]

    async def list(
        self,
        filters: dict[str, Any] | None = None,
        page: int = 1,
        page_size: int = 50,
        *,
        tenant_id: str = DEFAULT_TENANT,
        sub_tenant_id: str | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        kinds: Sequence[str] | None = None,
    ) -> Page:
        """List memories in write order, one page at a time.

        Raises:
            ValidationError: bad page numbers or filters.
        """
        if isinstance(page, bool) or not isinstance(page, int) or page < 1:
            raise ValidationError("page", "must be an integer >= 1")
        if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= 1000:
            raise ValidationError("page_size", "must be an integer in 1..1000")
        where = all_of(
            _scope_where(tenant_id, sub_tenant_id, user_id, agent_id, session_id),
            {"kind": {"$in": list(kinds)}} if kinds else None,
            translate(filters),
        )
        pair = await self.collections(tenant_id, create=False)
        if pair is None:
            return Page(count=0, results=[])
        got = await pair[0].get_all(where=self.live(where), include=["metadatas"])
        order = sorted(
            zip(got["ids"], got["metadatas"], strict=True), key=lambda x: (x[1].get("seq", 0), x[0])
        )
        count = len(order)
        start = (page - 1) * page_size
        page_ids = [i for i, _ in order[start : start + page_size]]
        return Page(
            count=count,
            next=page + 1 if start + page_size < count else None,
            previous=page - 1 if page > 1 else None,
            results=await self.get_many(page_ids, tenant_id=tenant_id),
        )

    async def get_messages(
        self,
        session_id: str,
        *,
        tenant_id: str = DEFAULT_TENANT,
        user_id: str | None = None,
        status: Literal["active", "archived"] | None = None,
        limit: int | None = None,
        last: bool = False,
    ) -> list[MemoryItem]:
        """A session's turns in exact write order (``seq``).

        Args:
            session_id: The transcript.
            tenant_id: Tenant.
            user_id: Restrict to one user's turns.
            status: Only ``"active"`` or ``"archived"`` turns; ``None`` for both.
            limit: At most this many turns (the first ones, or the last ones with ``last``).
            last: Take the last ``limit`` turns instead of the first.
        """
        _require_str("session_id", session_id)
        ordered = await self._turn_index(tenant_id, session_id, user_id=user_id, status=status)
        if limit is not None:
            ordered = ordered[-limit:] if last else ordered[:limit]
            if limit == 0:
                ordered = []
        return await self.get_many([i for i, _ in ordered], tenant_id=tenant_id)

    async def _turn_index(
        self,
        tenant_id: str,
        session_id: str,
        *,
        user_id: str | None = None,
        status: str | None = None,
    ) -> list[tuple[str, dict[str, Any]]]:
        """``(id, metadata)`` of a session's turns sorted by ``seq``."""
        pair = await self.collections(tenant_id, create=False)
        if pair is None:
            return []
        where = all_of(
            {"kind": "turn"},
            {"session_id": session_id},
            {"user_id": user_id} if user_id is not None else None,
            {"status": status} if status is not None else None,
        )
        got = await pair[0].get_all(where=self.live(where), include=["metadatas"])
        return sorted(zip(got["ids"], got["metadatas"], strict=True), key=lambda x: (x[1]["seq"], x[0]))

    async def count_turns(
        self, session_id: str, *, tenant_id: str = DEFAULT_TENANT, status: str | None = None
    ) -> int:
        """Number of turns in a session (optionally of one status)."""
        return len(await self._turn_index(tenant_id, session_id, status=status))

    async def archive_oldest(self, session_id: str, n: int, *, tenant_id: str = DEFAULT_TENANT) -> list[str]:
        """Archive the ``n`` oldest active turns of a session; returns their ids."""
        if n < 0:
            raise ValidationError("n", "must be >= 0")
        targets = (await self._turn_index(tenant_id, session_id, status="active"))[:n]
        return await self.set_status([i for i, _ in targets], "archived", tenant_id=tenant_id)

    async def delete_oldest(
        self, session_id: str, n: int, *, tenant_id: str = DEFAULT_TENANT, status: str | None = None
    ) -> list[str]:
        """Delete the ``n`` oldest turns of a session (optionally of one status); returns ids."""
        if n < 0:
            raise ValidationError("n", "must be >= 0")
        targets = [i for i, _ in (await self._turn_index(tenant_id, session_id, status=status))[:n]]
        return await self.delete_many(targets, tenant_id=tenant_id)

    async def tenants(self) -> list[str]:
        """Every tenant id that holds memories in this store."""
        return await (await self.store()).tenants()

    async def list_sessions(
        self, *, tenant_id: str = DEFAULT_TENANT, user_id: str | None = None
    ) -> list[str]:
        """Ids of the sessions that hold turns, ordered by their first turn's ``seq``."""
        pair = await self.collections(tenant_id, create=False)
        if pair is None:
            return []
        where = all_of({"kind": "turn"}, {"user_id": user_id} if user_id is not None else None)
        got = await pair[0].get_all(where=self.live(where), include=["metadatas"])
        first: dict[str, int] = {}
        for m in got["metadatas"]:
            sid = m["session_id"]
            first[sid] = min(first.get(sid, m["seq"]), m["seq"])
        return sorted(first, key=lambda s: (first[s], s))

    async def set_status(
        self,
        ids: Sequence[str],
        status: Literal["active", "archived"],
        *,
        tenant_id: str = DEFAULT_TENANT,
    ) -> list[str]:
        """Set the status of turns (``active``/``archived``); returns the ids changed."""
        if status not in ("active", "archived"):
            raise ValidationError("status", "must be 'active' or 'archived'")
        found = await self._get_raw(tenant_id, list(ids))
        changed = [i for i in ids if i in found and found[i][1].get("status") != status]
        if changed:
            await (await self.data()).set_metadata(
                tenant_id, changed, {"status": status, "updated_at": time.time()}
            )
        return changed

    # ------------------------------------------------------------------ changes

    async def update(
        self,
        memory_id: str,
        text: str | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        tenant_id: str = DEFAULT_TENANT,
    ) -> MemoryItem:
        """Patch a memory's text (re-embedded) and/or metadata (merged; ``None`` deletes a key).

        The previous version is kept in :meth:`history`.

        Raises:
            NotFoundError: unknown id in this tenant.
            ValidationError: empty text, or nothing to update.
        """
        if text is None and metadata is None:
            raise ValidationError("text", "give text and/or metadata to update")
        if text is not None and (not isinstance(text, str) or not text.strip()):
            raise ValidationError("text", "must be a non-empty string")
        if metadata is not None and not isinstance(metadata, dict):
            raise ValidationError("metadata", "must be a dict")
        old_text, md = await self._require(tenant_id, memory_id)
        merged = rec.caller_meta(md)
        for key, value in (metadata or {}).items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        encoded = rec.encode_meta(merged, "metadata")
        if md.get("kind") == "raw" and text is not None:
            # Raw memories are re-chunked: replace through add(), which keeps the history.
            await self.add(
                raw_text=text,
                tenant_id=tenant_id,
                sub_tenant_id=rec.unopt(md.get("sub_tenant_id")),
                user_id=rec.unopt(md.get("user_id")),
                agent_id=rec.unopt(md.get("agent_id")),
                session_id=rec.unopt(md.get("session_id")),
                memory_id=memory_id,
                expiry_seconds=None
                if md["expires_at"] >= rec.NEVER
                else max(md["expires_at"] - time.time(), 0.001),
                metadata=merged,
            )
            return await self.get(memory_id, tenant_id=tenant_id)
        await self._append_history(tenant_id, memory_id, old_text, md)
        new_md = {k: v for k, v in md.items() if not k.startswith(rec.CALLER_PREFIX)}
        attrs = json.loads(md["attrs"]) if md.get("attrs") else {}
        attrs["last_event"] = "UPDATE"
        new_md.update(encoded)
        new_md.update(version=int(md.get("version", 1)) + 1, updated_at=time.time(), attrs=json.dumps(attrs))
        new_text = old_text if text is None else text
        embeddings = None
        if text is None:
            mem = await self._mem(tenant_id)
            got = await mem.get(ids=[memory_id], include=["embeddings"])
            embeddings = [list(map(float, got["embeddings"][0]))]
        await self.write_records(tenant_id, [memory_id], [new_text], [new_md], embeddings)
        return rec.to_item(memory_id, new_text, new_md)

    async def touch(
        self, ids: Sequence[str], expiry_seconds: float, *, tenant_id: str = DEFAULT_TENANT
    ) -> list[str]:
        """Move the expiry of live memories (and their chunks) to ``expiry_seconds`` from now.

        A sliding TTL: no new version is written. Unknown or already expired ids are skipped;
        returns the ids touched.

        Raises:
            ValidationError: ``expiry_seconds`` is not a positive number.
        """
        if (
            isinstance(expiry_seconds, bool)
            or not isinstance(expiry_seconds, int | float)
            or expiry_seconds <= 0
        ):
            raise ValidationError("expiry_seconds", "must be a positive number of seconds")
        found = await self._get_raw(tenant_id, list(dict.fromkeys(ids)))
        if not found:
            return []
        targets = [*found, *await self._children(tenant_id, list(found))]
        expires_at = time.time() + expiry_seconds
        await (await self.data()).set_metadata(tenant_id, targets, {"expires_at": expires_at})
        return [i for i in dict.fromkeys(ids) if i in found]

    async def delete(self, memory_id: str, *, tenant_id: str = DEFAULT_TENANT) -> None:
        """Delete a memory and what was derived from it; its history records the deletion.

        Raises:
            NotFoundError: unknown id in this tenant.
        """
        await self._require(tenant_id, memory_id)
        await self.delete_many([memory_id], tenant_id=tenant_id)

    async def delete_many(self, ids: Sequence[str], *, tenant_id: str = DEFAULT_TENANT) -> list[str]:
        """Delete several memories (and what was derived from them) in one call.

        Unknown ids are skipped; returns the ids deleted. History records each deletion.
        """
        found = await self._get_raw(tenant_id, list(dict.fromkeys(ids)))
        if not found:
            return []
        now = time.time()
        rows = []
        for memory_id, (text, md) in found.items():
            rows.append(self._history_row(memory_id, text, md))
            rows.append(self._history_row(memory_id, text, {**md, "updated_at": now}, "DELETE"))
        await self._write_history(tenant_id, rows)
        await self.delete_records(tenant_id, [*found, *await self._children(tenant_id, list(found))])
        return [i for i in dict.fromkeys(ids) if i in found]

    async def clear_session(self, session_id: str, *, tenant_id: str = DEFAULT_TENANT) -> int:
        """Delete a session's turns, everything derived from them and their history; returns the count."""
        _require_str("session_id", session_id)
        pair = await self.collections(tenant_id, create=False)
        if pair is None:
            return 0
        got = await pair[0].get_all(where={"session_id": session_id}, include=[])
        ids = list(got["ids"])
        await self.delete_records(tenant_id, ids)
        # "Clear" means gone: old versions must not survive in the history either.
        await self._purge_history(tenant_id, ids)
        return len(ids)

    async def erase(self, *, tenant_id: str = DEFAULT_TENANT, user_id: str | None = None) -> EraseReceipt:
        """Erase a whole user (inside a tenant) or, with no ``user_id``, a whole tenant.

        Everything goes: turns, chunks, memories, derived facts/episodes, history rows, jobs.
        """
        _require_str("tenant_id", tenant_id)
        _require_str("user_id", user_id, optional=True)
        receipt = EraseReceipt(tenant_id=tenant_id, user_id=user_id)
        pair = await self.collections(tenant_id, create=False)
        if pair is None:
            return receipt
        mem, aux = pair
        user_where = {"user_id": user_id} if user_id is not None else None
        got = await mem.get_all(where=user_where, include=["metadatas"])
        for m in got["metadatas"]:
            kind = m.get("kind")
            if kind == "turn":
                receipt.turns += 1
            elif kind == "chunk":
                receipt.chunks += 1
            elif kind == "raw":
                receipt.memories += 1
            else:
                receipt.derived += 1
        aux_got = await aux.get_all(where=user_where, include=["metadatas"])
        aux_ids = [
            i
            for i, m in zip(aux_got["ids"], aux_got["metadatas"], strict=True)
            if m.get("type") != "tombstone"
        ]
        for m in aux_got["metadatas"]:
            if m.get("type") == "history":
                receipt.history += 1
            elif m.get("type") == "job":
                receipt.jobs += 1
        if user_id is None:
            store = await self.store()
            await store.drop_tenant(tenant_id)
            (await self.data()).drop_tenant(tenant_id)
        else:
            await self.delete_records(tenant_id, list(got["ids"]))
            await aux.delete(aux_ids)
            (await self.data()).drop_user(tenant_id, user_id)
        return receipt

    # ------------------------------------------------------------------ search

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
        if not isinstance(query, str) or not query.strip():
            raise ValidationError("query", "must be a non-empty string")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValidationError("k", "must be an integer >= 1")
        if mode not in ("flat", "context"):
            raise ValidationError("mode", "must be 'flat' or 'context'")
        if char_budget is not None and (not isinstance(char_budget, int) or char_budget < 1):
            raise ValidationError("char_budget", "must be a positive integer")
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
                    except ValueError as e:
                        raise ValidationError("time_range", str(e)) from e
        as_of_ts = None
        if as_of is not None:
            try:
                as_of_ts = to_utc(as_of, "as_of").timestamp()
            except ValueError as e:
                raise ValidationError("as_of", str(e)) from e
        pair = await self.collections(tenant_id, create=False)
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

    # ------------------------------------------------------------------ enrichment

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
        return await self._enrichment().job_status(job_id, tenant_id=tenant_id)

    async def wait(
        self, job_id: str, timeout: float | None = None, *, tenant_id: str | None = None
    ) -> JobStatus:
        """Wait until a job is done or failed (``timeout`` seconds at most).

        The tenant may be left out, as in :meth:`job_status`.
        """
        return await self._enrichment().wait(job_id, timeout, tenant_id=tenant_id)

    async def wait_all(self, timeout: float | None = None) -> None:
        """Wait until every queued enrichment job has finished."""
        await self._enrichment().wait_all(timeout)

    async def end_session(
        self, session_id: str, *, tenant_id: str = DEFAULT_TENANT, user_id: str | None = None
    ) -> MemoryItem | None:
        """Close the session's open episode and return it (``None`` if nothing to close)."""
        return await self._enrichment().end_session(session_id, tenant_id=tenant_id, user_id=user_id)

    # ------------------------------------------------------------------ migration

    async def reembed(self, embedder: Any = None, *, model_dir: str | os.PathLike[str] | None = None) -> int:
        """Re-embed every stored text of every tenant with a new embedder; returns the count.

        Each tenant is copied into a staging collection first, so its data is never only in
        memory; the engine then uses the new embedder.
        """
        new = as_embedder(embedder, model_dir=model_dir)
        store = await self.store()
        total = 0
        for tenant_id in await store.tenants():
            mem_name, _ = collection_names(tenant_id)
            store.forget(tenant_id)
            # Read whatever is stored, whichever embedder wrote it.
            got = await (await store.get_raw(mem_name)).get_all(include=["documents", "metadatas"])
            ids, docs, metas = list(got["ids"]), list(got["documents"]), list(got["metadatas"])
            loop = asyncio.get_running_loop()
            inputs = [rec.embedding_text(d or "", m) for d, m in zip(docs, metas, strict=True)]
            vectors = await loop.run_in_executor(self._cpu, new.embed_documents, inputs) if docs else []
            meta = {
                "ma_tenant": tenant_id,
                "ma_role": "mem",
                "ma_embedder": new.identity,
                "ma_dim": new.dimension,
                "ma_schema": 2,
            }
            # Staging first: if the process dies after the drop below, open() restores from it.
            staging = await store.create_raw(f"{mem_name}{STAGING_SUFFIX}", meta)
            if ids:
                await staging.upsert(ids, vectors, docs, metas)
            await store.delete_raw(mem_name)
            target = await store.create_raw(mem_name, meta)
            if ids:
                await target.upsert(ids, vectors, docs, metas)
            await store.delete_raw(f"{mem_name}{STAGING_SUFFIX}")
            total += len(ids)
        self.embedder = new
        store.embedder_identity, store.dimension = new.identity, new.dimension
        for tenant_id in list(store._cache):
            store.forget(tenant_id)
        (await self.data()).drop_all()
        return total

    # ------------------------------------------------------------------ lifecycle

    async def aclose(self) -> None:
        """Stop background work and release executors; later calls raise ``ClosedError``.

        Background enrichment is cancelled, not drained: its unfinished work stays pending in
        Chroma and the next engine opened on the store finishes it (``await wait_all()``
        first to drain). Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        try:
            if self.enricher is not None and hasattr(self.enricher, "aclose"):
                await self.enricher.aclose()
            if self._data is not None:
                await self._data.aclose()  # snapshots of changed large partitions
        finally:
            self._io.shutdown(wait=False)
            self._cpu.shutdown(wait=False)

    async def __aenter__(self) -> AsyncMemoryEngine:
        self._check_open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


__all__ = ["AsyncMemoryEngine", "MemAdaptersError"]
