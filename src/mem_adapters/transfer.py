"""Verbatim export and import of a store's records, and the store scans the CLI needs.

The public engine API returns memories as models; a faithful copy also needs what those
models leave out: exact ids, ``seq``, creation times, versions, supersession links, history
rows and unindexed records. This is the one module outside the engine that reads and writes
the engine's collections, through four touch-points only:

- ``await engine.collections(tenant_id, create=...)`` -> ``(mem, aux)`` facades, read with
  :func:`_read` (every ``get`` paged with ``limit``/``offset``; Chroma rejects larger gets);
- ``await engine.write_records(tenant_id, ids, texts, metas, embeddings)`` for memories, the
  engine's own write path (the enrichment worker's too), so derived indexes and the store
  generation stay in step;
- ``await aux.upsert(...)`` for history rows;
- ``await engine.embed(texts)`` for the vectors (they are not exported: re-embedding the
  text with the same embedder gives them back).

Export format ``mem-adapters/export/v1``, one JSON object per line (see :data:`FORMAT`):

- ``{"record": "header", "format": "mem-adapters/export/v1"}`` first;
- ``{"record": "memory", "tenant_id", "id", "kind", "text", "metadata", "fields"}`` for every
  live memory (turns, raw memories and their chunks, facts, episodes): ``metadata`` is the
  caller's metadata exactly as written (``null`` if the record has none), ``fields`` every
  engine field as stored (times in epoch seconds; ``expires_at`` 253402300799.0 means never;
  the store's own write revision, :data:`LOCAL_FIELDS`, is left out);
- ``{"record": "history", "tenant_id", "id", "text", "metadata", "fields"}`` for every
  history row (earlier versions and deletions).

Lines are sorted by tenant, kind (turn, raw, chunk, fact, episode, then any other kind),
``seq`` and id, history rows last (by memory id, version, id), and written with sorted keys,
so exporting the same records twice gives the same bytes. Importing skips every record whose
id is already stored, so a re-import, or the rerun of a killed import, writes each record once.
Expired records are not exported; enrichment jobs and bookkeeping rows are not records.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from . import records as rec
from .errors import ValidationError
from .filters import all_of

try:  # the data layer's home of the aux placeholder vector
    from .data import AUX_VECTOR
except ImportError:  # pragma: no cover - before the data layer
    from .store import AUX_VECTOR  # type: ignore[no-redef]

logger = logging.getLogger(__name__)

FORMAT = "mem-adapters/export/v1"
KIND_ORDER = ("turn", "raw", "chunk", "fact", "episode")
PAGE = 1000  # records per paged read (Chroma rejects gets of more than 32,766 records)
RECORD_TYPES = ("memory", "history")
LOCAL_FIELDS = frozenset({"rev"})
"""Fields a store stamps on each write for its own bookkeeping (the data layer's revision):
not exported; the importing store stamps its own."""


def header() -> dict[str, Any]:
    """The first line of an export."""
    return {"record": "header", "format": FORMAT}


def dumps(record: dict[str, Any]) -> str:
    """One export line (without the newline): compact JSON, sorted keys, UTF-8 text kept."""
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


# ---------------------------------------------------------------------- reading the store


async def _read(col: Any, where: dict[str, Any] | None, include: list[str]) -> list[tuple[str, Any, Any]]:
    """Every ``(id, document, metadata)`` matching ``where``, read in pages of :data:`PAGE`."""
    out: dict[str, tuple[str, Any, Any]] = {}
    offset = 0
    while True:
        kwargs: dict[str, Any] = {"include": include, "limit": PAGE, "offset": offset}
        if where is not None:
            kwargs["where"] = where
        got = await col.get(**kwargs)
        ids = list(got["ids"])
        docs = got.get("documents") or [None] * len(ids)
        metas = got.get("metadatas") or [None] * len(ids)
        for i, d, m in zip(ids, docs, metas, strict=True):
            out.setdefault(i, (i, d, m))  # a write between pages may shift one; ids stay unique
        if len(ids) < PAGE:
            return list(out.values())
        offset += len(ids)


async def _existing(col: Any, ids: list[str]) -> set[str]:
    """Which of ``ids`` the collection holds (one paged read per :data:`PAGE` ids)."""
    found: set[str] = set()
    for start in range(0, len(ids), PAGE):
        chunk = ids[start : start + PAGE]
        got = await col.get(ids=chunk, include=[], limit=len(chunk))
        found.update(got["ids"])
    return found


def _live(where: dict[str, Any] | None) -> dict[str, Any]:
    clause = all_of({"expires_at": {"$gt": time.time()}}, where)
    assert clause is not None
    return clause


def _split_meta(md: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Stored metadata -> (caller metadata or ``None``, engine fields).

    The filterable ``m.<key>`` copies are left out: import derives them from the caller
    metadata again, exactly as a write does.
    """
    caller = rec.caller_meta(md) if "meta" in md else None
    fields = {
        k: v
        for k, v in md.items()
        if k != "meta" and k not in LOCAL_FIELDS and not k.startswith(rec.CALLER_PREFIX)
    }
    return caller, fields


def _join_meta(caller: dict[str, Any] | None, fields: dict[str, Any], where: str) -> dict[str, Any]:
    """Inverse of :func:`_split_meta`."""
    md = dict(fields)
    if caller is not None:
        md.update(rec.encode_meta(caller, f"{where}.metadata"))
    return md


async def export_records(
    engine: Any, *, tenant_id: str, user_id: str | None = None
) -> AsyncIterator[dict[str, Any]]:
    """Every live memory and history row of a tenant (or of one user in it), in export order.

    Args:
        engine: An :class:`~mem_adapters.AsyncMemoryEngine` (``MemoryEngine.aengine``).
        tenant_id: The tenant exported.
        user_id: Only this user's records.

    Yields:
        ``memory`` records then ``history`` records (see the module docstring).
    """
    pair = await engine.collections(tenant_id, create=False)
    if pair is None:
        return
    mem, aux = pair
    user = {"user_id": user_id} if user_id is not None else None
    kind_clauses = [{"kind": k} for k in KIND_ORDER] + [{"kind": {"$nin": list(KIND_ORDER)}}]
    for clause in kind_clauses:
        rows = await _read(mem, _live(all_of(clause, user)), ["documents", "metadatas"])
        rows.sort(key=lambda r: (r[2].get("kind", ""), r[2].get("seq") or 0, r[0]))
        for id_, doc, md in rows:
            caller, fields = _split_meta(md)
            yield {
                "record": "memory",
                "tenant_id": tenant_id,
                "id": id_,
                "kind": md.get("kind", "raw"),
                "text": doc or "",
                "metadata": caller,
                "fields": fields,
            }
    rows = await _read(aux, all_of({"type": "history"}, user), ["documents", "metadatas"])
    rows.sort(key=lambda r: (str(r[2].get("memory_id", "")), int(r[2].get("version", 0)), r[0]))
    for id_, doc, md in rows:
        caller, fields = _split_meta(md)
        fields.pop("type", None)
        yield {
            "record": "history",
            "tenant_id": tenant_id,
            "id": id_,
            "text": doc or "",
            "metadata": caller,
            "fields": fields,
        }


# ---------------------------------------------------------------------- import


@dataclass
class ImportCounts:
    """What :func:`import_records` did."""

    memories: int = 0
    history: int = 0
    skipped: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def written(self) -> int:
        """Records newly written."""
        return self.memories + self.history


def validate_record(obj: Any, where: str) -> dict[str, Any] | None:
    """Check one parsed export line; ``None`` for the header.

    Raises:
        ValidationError: the line is not a record of this format (``where`` names it).
    """
    if not isinstance(obj, dict):
        raise ValidationError(where, f"must be a JSON object, got {type(obj).__name__}")
    kind = obj.get("record")
    if kind == "header":
        if obj.get("format") != FORMAT:
            raise ValidationError(f"{where}.format", f"unsupported export format {obj.get('format')!r}")
        return None
    if kind not in RECORD_TYPES:
        raise ValidationError(f"{where}.record", f"must be one of {', '.join(RECORD_TYPES)}, got {kind!r}")
    for name in ("tenant_id", "id"):
        if not isinstance(obj.get(name), str) or not obj[name]:
            raise ValidationError(f"{where}.{name}", "must be a non-empty string")
    if not isinstance(obj.get("text"), str):
        raise ValidationError(f"{where}.text", "must be a string")
    if not isinstance(obj.get("fields"), dict):
        raise ValidationError(f"{where}.fields", "must be an object")
    if obj.get("metadata") is not None and not isinstance(obj["metadata"], dict):
        raise ValidationError(f"{where}.metadata", "must be an object or null")
    bad = [k for k, v in obj["fields"].items() if not isinstance(v, str | int | float | bool)]
    if bad:
        raise ValidationError(f"{where}.fields.{bad[0]}", "must be a string, number or boolean")
    if kind == "memory" and obj["fields"].get("tenant_id", obj["tenant_id"]) != obj["tenant_id"]:
        raise ValidationError(f"{where}.fields.tenant_id", "differs from the record's tenant_id")
    return obj


async def _aiter(records: Iterable[Any] | AsyncIterable[Any]) -> AsyncIterator[Any]:
    if isinstance(records, AsyncIterable):
        async for r in records:
            yield r
    else:
        for r in records:
            yield r


async def import_records(
    engine: Any,
    records: Iterable[dict[str, Any]] | AsyncIterable[dict[str, Any]],
    *,
    batch_size: int = 200,
    progress: Callable[[int], None] | None = None,
) -> ImportCounts:
    """Write exported records back, verbatim; records whose id is already stored are skipped.

    Records are written in batches of ``batch_size`` in the order given (an export's order),
    so a killed import leaves a prefix behind and its rerun writes only the rest.

    Args:
        engine: An :class:`~mem_adapters.AsyncMemoryEngine` (``MemoryEngine.aengine``).
        records: Parsed export lines (the header is allowed and ignored).
        batch_size: Records per write.
        progress: Called with the number of records handled after each batch.

    Raises:
        ValidationError: a record is malformed (nothing after the previous batch is written).
    """
    counts = ImportCounts()
    episodes_in: set[str] = set()  # tenants that received episodes
    batch: list[dict[str, Any]] = []
    n = 0
    async for obj in _aiter(records):
        rec_ = validate_record(obj, f"records[{n}]")
        n += 1
        if rec_ is None:
            continue
        if batch and (rec_["tenant_id"], rec_["record"]) != (batch[0]["tenant_id"], batch[0]["record"]):
            await _write_batch(engine, batch, counts, progress, episodes_in)
            batch = []
        batch.append(rec_)
        if len(batch) >= batch_size:
            await _write_batch(engine, batch, counts, progress, episodes_in)
            batch = []
    if batch:
        await _write_batch(engine, batch, counts, progress, episodes_in)
    for tenant_id in sorted(episodes_in):
        # The file may come from a release whose episodes mixed the users of a shared session:
        # the store-format-4 repair rewrites such episodes per user (clean ones stay as they are).
        await engine._repair_upgraded(tenant_id)
    return counts


async def _write_batch(
    engine: Any,
    batch: list[dict[str, Any]],
    counts: ImportCounts,
    progress: Callable[[int], None] | None,
    episodes_in: set[str],
) -> None:
    """Write one batch of records of one tenant and one record type.

    ``episodes_in`` gains the tenant when the batch held episodes.
    """
    tenant_id, kind = batch[0]["tenant_id"], batch[0]["record"]
    pair = await engine.collections(tenant_id, create=True)
    mem, aux = pair
    fresh: dict[str, dict[str, Any]] = {}
    for r in batch:
        fresh.setdefault(r["id"], r)
    col = mem if kind == "memory" else aux
    stored = await _existing(col, list(fresh))
    todo = [r for i, r in fresh.items() if i not in stored]
    counts.skipped += len(batch) - len(todo)
    if todo:
        ids = [r["id"] for r in todo]
        texts = [r["text"] for r in todo]
        if kind == "memory":
            # A file exported by a format-2 store: mark its caller ids as the store migration does.
            metas = [
                rec.legacy_caller_id(r["id"], _join_meta(r["metadata"], r["fields"], f"record {r['id']!r}"))
                for r in todo
            ]
            await engine.write_records(tenant_id, ids, texts, metas, await _vectors(engine, texts, metas))
            counts.memories += len(todo)
            for m in metas:
                counts.by_kind[m.get("kind", "raw")] = counts.by_kind.get(m.get("kind", "raw"), 0) + 1
                if m.get("kind") == "episode":
                    episodes_in.add(tenant_id)
        else:
            metas = [{**r["fields"], "type": "history", "meta": _history_meta(r["metadata"])} for r in todo]
            await aux.upsert(ids, [AUX_VECTOR] * len(ids), texts, metas)
            counts.history += len(todo)
    logger.info("import: %d %s records of tenant %r handled (%d new)", len(batch), kind, tenant_id, len(todo))
    if progress is not None:
        progress(len(batch))


def _history_meta(caller: dict[str, Any] | None) -> str:
    return json.dumps(caller or {}, ensure_ascii=False, separators=(",", ":"))


async def _vectors(engine: Any, texts: list[str], metas: list[dict[str, Any]]) -> list[list[float]]:
    """Vectors of records: searched ones embedded as a write embeds them, others a placeholder."""
    dim = engine.embedder.dimension
    placeholder = [1.0] + [0.0] * (dim - 1)  # never searched (``indexed`` is false)
    todo = [i for i, m in enumerate(metas) if m.get("indexed", True)]
    got = await engine.embed([rec.embedding_text(texts[i], metas[i]) for i in todo])
    out = [placeholder] * len(texts)
    for i, v in zip(todo, got, strict=True):
        out[i] = list(map(float, v))
    return out


# ---------------------------------------------------------------------- scans for the CLI


@dataclass
class TenantStats:
    """Counts of one tenant's records (live memories, history rows, jobs)."""

    tenant_id: str
    kinds: dict[str, int] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: int = 0
    history: int = 0
    jobs: dict[str, int] = field(default_factory=dict)
    pending_enrichment: int = 0
    expired: int = 0
    collection: dict[str, Any] = field(default_factory=dict)

    @property
    def memories(self) -> int:
        """Live memories of every kind."""
        return sum(self.kinds.values())


async def tenant_stats(engine: Any, tenant_id: str) -> TenantStats | None:
    """Scan a tenant once (paged): kinds, users, sessions, history, jobs; ``None`` if absent.

    ``users`` maps each user id (``""`` for records without one) to ``{"turns", "memories",
    "sessions", "first", "last"}`` (``first``/``last`` are epoch seconds of its turns).
    """
    pair = await engine.collections(tenant_id, create=False)
    if pair is None:
        return None
    mem, aux = pair
    stats = TenantStats(tenant_id=tenant_id, collection=mem.metadata)
    now = time.time()
    sessions: dict[str, set[str]] = {}
    for _, _, md in await _read(mem, None, ["metadatas"]):
        if md.get("expires_at", rec.NEVER) <= now:
            stats.expired += 1
            continue
        kind = md.get("kind", "raw")
        stats.kinds[kind] = stats.kinds.get(kind, 0) + 1
        user = md.get("user_id") or ""
        u = stats.users.setdefault(
            user, {"turns": 0, "memories": 0, "sessions": 0, "first": None, "last": None}
        )
        u["memories"] += 1
        if kind == "turn":
            u["turns"] += 1
            sessions.setdefault(user, set()).add(md.get("session_id") or "")
            ts = md.get("ts")
            if ts is not None:
                u["first"] = ts if u["first"] is None else min(u["first"], ts)
                u["last"] = ts if u["last"] is None else max(u["last"], ts)
            if md.get("enrich") == "pending":
                stats.pending_enrichment += 1
    for user, ids in sessions.items():
        stats.users[user]["sessions"] = len(ids)
    stats.sessions = len({s for ids in sessions.values() for s in ids})
    for _, _, md in await _read(aux, None, ["metadatas"]):
        kind = md.get("type")
        if kind == "history":
            stats.history += 1
        elif kind == "job":
            status = str(md.get("status", "?"))
            stats.jobs[status] = stats.jobs.get(status, 0) + 1
    return stats


async def tenant_format(engine: Any, tenant_id: str) -> dict[str, Any] | None:
    """The stored format of a tenant's memory collection (``ma_schema``, ``ma_embedder``, ``ma_dim``).

    Raises:
        EmbedderMismatchError: the tenant was written with another embedder than the engine's.
    """
    pair = await engine.collections(tenant_id, create=False)
    return None if pair is None else pair[0].metadata


__all__ = [
    "FORMAT",
    "ImportCounts",
    "TenantStats",
    "dumps",
    "export_records",
    "header",
    "import_records",
    "tenant_format",
    "tenant_stats",
    "validate_record",
]
