"""How a memory is laid out in Chroma: engine fields, encoded caller metadata, ids.

Chroma stores flat scalar metadata only, so caller metadata is kept twice: exactly, as one
JSON string (``meta``), and, for filtering, each top-level scalar as ``m.<key>``. Engine fields
use fixed names that never start with ``m.``, so the two can never collide.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import datetime, timezone
from typing import Any

from .errors import LimitExceededError, ValidationError
from .limits import DEFAULT_LIMITS, Limits
from .models import MemoryItem

NEVER = 253402300799.0  # 9999-12-31T23:59:59Z: "no expiry", so expiry filters stay one range.
CALLER_PREFIX = "m."

ENGINE_FIELDS = frozenset(
    {
        "kind",
        "tenant_id",
        "sub_tenant_id",
        "user_id",
        "agent_id",
        "session_id",
        "sub_session_id",
        "role",
        "ts",
        "seq",
        "status",
        "created_at",
        "updated_at",
        "expires_at",
        "version",
        "is_latest",
        "supersedes",
        "parent_id",
        "source_ids",
        "indexed",
        "enrich",
        "attrs",
        "meta",
        "fact_key",
        "superseded_by",
        "superseded_at",
        "caller_id",
    }
)

GENERATED_TURN_ID = re.compile(r"t_[0-9a-f]{32}")  # a content hash: the turn had no caller id
GENERATED_RAW_ID = re.compile(r"mem_[0-9a-f]{32}")  # a raw memory added without a memory_id
SCOPED_RAW_ID = re.compile(r"r_[0-9a-f]{32}")  # format 3: a raw memory's scoped memory_id (raw_id)


def epoch(dt: datetime) -> float:
    """Seconds since the epoch of an aware datetime."""
    return dt.timestamp()


def from_epoch(value: float | None, *, sentinel: bool = True) -> datetime | None:
    """Aware UTC datetime of an epoch value (``None`` gives ``None``).

    With ``sentinel`` (expiry and bookkeeping times) the NEVER value also gives ``None``;
    without it (a turn's own timestamp) ``9999-12-31T23:59:59Z`` is a real time and reads back.
    """
    if value is None or (sentinel and value >= NEVER):
        return None
    return datetime.fromtimestamp(min(value, NEVER), tz=timezone.utc)


def stable_id(prefix: str, *parts: Any) -> str:
    """A deterministic id: ``prefix`` + 32 hex chars of sha256 over the JSON of ``parts``."""
    raw = json.dumps(parts, ensure_ascii=False, separators=(",", ":"), default=str)
    return prefix + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


def engine_made_id(record_id: str, kind: str | None) -> bool:
    """Whether a turn's or raw memory's stored id was made by the engine, not given by a caller.

    Format 2 stored a caller's ``Turn.id`` / ``memory_id`` as the stored id itself; the
    engine's own ids are ``t_`` + 32 hex (content hashes, caller-id hashes) and ``mem_`` +
    32 hex (anonymous raw memories), and a format-3 keyed raw memory is ``r_`` + 32 hex.
    """
    if kind == "turn":
        return GENERATED_TURN_ID.fullmatch(record_id) is not None
    return GENERATED_RAW_ID.fullmatch(record_id) is not None or SCOPED_RAW_ID.fullmatch(record_id) is not None


LEGACY_LANGCHAIN_MARK = "m.lc_type"  # indexed metadata key of every message LangChain's history wrote


def legacy_caller_of(record_id: str, md: dict[str, Any]) -> str:
    """The caller id a format-2 turn or raw memory stands for.

    Its stored id, except for a message of format 2's LangChain chat history: that stored
    ``lc:{session_id}:{message.id}``, and today's history sends ``message.id`` itself as the
    caller id (the engine scopes it), so the prefix is dropped. Such a turn is known by the
    ``lc_type`` metadata the history writes and by its own session in the prefix, so a
    session holding ``:`` splits where it was written.
    """
    session = md.get("session_id")
    if md.get("kind") == "turn" and LEGACY_LANGCHAIN_MARK in md and isinstance(session, str):
        prefix = f"lc:{session}:"
        if record_id.startswith(prefix) and len(record_id) > len(prefix):
            return record_id[len(prefix) :]
    return record_id


LEGACY_STORE_MARK = "m.lg_store"  # indexed metadata key of every item LangGraph's store wrote
LEGACY_STORE_USER = "m.lg_ns0"  # its namespace's first label


def legacy_store_user(md: dict[str, Any]) -> str | None:
    """The user a format-2 LangGraph store item (or chunk of one) without a user belongs to.

    Format 2's store kept items without a user unless ``scopes={"user_id": level}`` was
    given, so ``erase(user_id=...)`` could not reach them. Today's store gives every item a
    user, by default its namespace's first label: an old item gets that user, as a put with
    today's default would have given it. ``None`` when the record is not such an item.
    """
    if md.get(LEGACY_STORE_MARK) is not True or md.get("user_id") not in ("", None):
        return None
    user = md.get(LEGACY_STORE_USER)
    return user if isinstance(user, str) and user else None


def legacy_stored_ids(session_id: str, caller_id: str) -> list[str]:
    """Where a format-2 store may keep the turn a caller id names.

    The id itself, or the ``lc:{session}:{id}`` of format 2's LangChain history (see
    :func:`legacy_caller_of`).
    """
    return [caller_id, f"lc:{session_id}:{caller_id}"]


def legacy_caller_id(record_id: str, md: dict[str, Any]) -> dict[str, Any]:
    """``md`` with ``caller_id`` set for a format-2 turn/raw memory a caller named."""
    if (
        md.get("kind") in ("turn", "raw")
        and "caller_id" not in md
        and not engine_made_id(record_id, md["kind"])
    ):
        return {**md, "caller_id": legacy_caller_of(record_id, md)}
    return md


def turn_id(tenant_id: str, sub_tenant_id: Any, user_id: Any, session_id: str, caller_id: str) -> str:
    """The stored id of a turn the caller gave the id ``caller_id``.

    A caller id is scoped to (tenant, sub-tenant, user, session): the same caller id in two
    users' or sessions' turns names two turns. The parts are hashed as a JSON list (see
    :func:`stable_id`), so no delimiter inside an id can make two scopes meet (session
    ``"a:b"`` with id ``"c"`` and session ``"a"`` with id ``"b:c"`` stay apart). Absent scope
    levels may be given as ``None`` or ``""`` (both mean absent).
    """
    return stable_id("t_", tenant_id, unopt(sub_tenant_id), unopt(user_id), session_id, caller_id)


def raw_id(tenant_id: str, sub_tenant_id: Any, user_id: Any, memory_id: str) -> str:
    """The stored id of a raw memory the caller named ``memory_id`` (scoped per sub-tenant and user)."""
    return stable_id("r_", tenant_id, unopt(sub_tenant_id), unopt(user_id), memory_id)


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of a JSON-like value (a flat dict is 1), counted iteratively up to ``limit + 1``."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list | tuple):
            deepest = max(deepest, level)
            if deepest > limit:
                return deepest
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, level + 1) for child in children if isinstance(child, dict | list | tuple))
    return deepest


def encode_meta(
    meta: dict[str, Any], field: str = "metadata", limits: Limits | None = None
) -> dict[str, Any]:
    """Encode caller metadata into Chroma fields: exact JSON plus filterable scalars.

    Only the first ``limits.max_indexed_keys`` top-level keys (in the dict's order) are
    indexed as ``m.<key>``; every key is kept in the exact JSON copy, so reads return them all
    but filters see only the indexed ones.

    Raises:
        ValidationError: the metadata is not JSON-serialisable (or has non-string keys, or a
            string with a lone surrogate).
        LimitExceededError: deeper than ``limits.max_metadata_depth`` or larger serialized than
            ``limits.max_metadata_bytes``.
    """
    limits = limits or DEFAULT_LIMITS
    if not isinstance(meta, dict):
        raise ValidationError(field, f"must be a dict, got {type(meta).__name__}")
    if _depth(meta, limits.max_metadata_depth) > limits.max_metadata_depth:
        raise LimitExceededError(
            field, f"is nested deeper than {limits.max_metadata_depth} levels (see Limits)"
        )
    try:
        encoded = json.dumps(meta, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        if json.loads(encoded) != meta:  # e.g. tuples become lists, int keys become strings
            raise ValueError("does not survive a JSON round-trip unchanged")
    except (TypeError, ValueError, RecursionError) as e:
        raise ValidationError(field, f"must be JSON-serialisable: {e}") from e
    try:
        size = len(encoded.encode("utf-8"))
    except UnicodeEncodeError as e:
        raise ValidationError(
            field, f"holds a string that is not valid Unicode (lone surrogate): {e}"
        ) from None
    if size > limits.max_metadata_bytes:
        raise LimitExceededError(
            field, f"is {size} bytes as JSON, more than {limits.max_metadata_bytes} (see Limits)"
        )
    out: dict[str, Any] = {"meta": encoded}
    indexed = 0
    for key, value in meta.items():
        if indexed >= limits.max_indexed_keys:
            break  # stored (in the JSON copy), not indexed
        if isinstance(value, bool | int | str) or (isinstance(value, float) and math.isfinite(value)):
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
                continue  # outside Chroma's int64; still round-trips through the JSON copy
            out[CALLER_PREFIX + key] = value
            indexed += 1
    return out


def caller_meta(md: dict[str, Any]) -> dict[str, Any]:
    """The caller's metadata, exactly as written."""
    raw = md.get("meta")
    return json.loads(raw) if raw else {}


def opt(value: Any) -> Any:
    """Chroma has no nulls: absent scope levels are stored as empty strings."""
    return "" if value is None else value


def unopt(value: Any) -> Any:
    """Inverse of :func:`opt`."""
    return None if value in ("", None) else value


def embedding_text(text: str, md: dict[str, Any]) -> str:
    """What is embedded for a record: its exact text, whoever said it.

    Speakers are left out on purpose. Names are in nearly every turn (as its speaker or as
    the person addressed), so in a vector they swamp what the turn is about; search embeds
    the query without the speaker names it mentions and lifts the named speakers' turns
    itself (see :class:`mem_adapters.retrieval.RetrievalConfig`). On LoCoMo-dev this beat
    embedding ``"role: text"`` on session recall@5 (0.886 vs 0.879) at the same recall@10.
    ``md`` is accepted so the recipe can depend on the record without changing callers.
    """
    del md
    return text


def to_item(id_: str, text: str | None, md: dict[str, Any], score: float | None = None) -> MemoryItem:
    """Build a public :class:`MemoryItem` from a Chroma record."""
    return MemoryItem(
        id=id_,
        text=text or "",
        kind=md.get("kind", "raw"),
        tenant_id=md.get("tenant_id", "default"),
        sub_tenant_id=unopt(md.get("sub_tenant_id")),
        user_id=unopt(md.get("user_id")),
        agent_id=unopt(md.get("agent_id")),
        session_id=unopt(md.get("session_id")),
        sub_session_id=unopt(md.get("sub_session_id")),
        role=unopt(md.get("role")),
        timestamp=from_epoch(md.get("ts"), sentinel=False),
        seq=md.get("seq"),
        status=md.get("status", "active"),
        metadata=caller_meta(md),
        created_at=from_epoch(md.get("created_at")),
        updated_at=from_epoch(md.get("updated_at")),
        expires_at=from_epoch(md.get("expires_at")),
        version=int(md.get("version", 1)),
        is_latest=bool(md.get("is_latest", True)),
        supersedes=unopt(md.get("supersedes")),
        parent_id=unopt(md.get("parent_id")),
        source_ids=json.loads(md["source_ids"]) if md.get("source_ids") else [],
        attributes=json.loads(md["attrs"]) if md.get("attrs") else {},
        caller_id=unopt(md.get("caller_id")),
        score=score,
    )
