"""Translations between the engine's models and the service's shapes (:mod:`.shapes`).

Everything the hosted APIs name but the engine does not (``categories``, the Fact / Artifact
/ Episode views, typed observations, the default session) is derived here, from public
:class:`mem_adapters.models.MemoryItem` fields only.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from .. import models as m
from .. import records as rec
from ..models import to_utc
from . import shapes as s

ARTIFACT_KINDS = frozenset({"raw", "chunk"})


def _dt(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return to_utc(value)
    except ValueError:
        return None


def categories(item: m.MemoryItem) -> list[str]:
    """Category labels: a fact's type and predicate, an observation's type, caller categories."""
    out: list[str] = []
    attrs = item.attributes
    if item.kind == "fact":
        for key in ("fact_type", "predicate"):
            value = attrs.get(key)
            if isinstance(value, str) and value and value not in out:
                out.append(value)
    extra = item.metadata.get("categories")
    if isinstance(extra, list):
        out.extend(c for c in extra if isinstance(c, str) and c not in out)
    elif isinstance(item.metadata.get("type"), str) and item.metadata["type"] not in out:
        out.append(item.metadata["type"])
    return out


def memory_item(item: m.MemoryItem) -> s.MemoryItem:
    """The flat-list shape: ``memory`` is the text, ``conv_id`` the session."""
    return s.MemoryItem(
        id=item.id,
        memory=item.text,
        agent_id=item.agent_id,
        categories=categories(item),
        conv_id=item.session_id,
        created_at=item.created_at or item.timestamp,
        metadata=item.metadata,
        score=item.score,
        updated_at=item.updated_at,
        user_id=item.user_id,
    )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def fact(item: m.MemoryItem, *, episode_id: str | None = None, source_role: str | None = None) -> s.Fact:
    """The Fact view of a derived fact.

    ``change_reason``, ``consolidated_at``, ``episode_id``, ``source_role`` and
    ``root_artifact_id`` are read from the fact's stored attributes (the enrichment worker
    writes them). Facts stored before it did (and observations or inferred facts, which the
    worker does not write) fall back to what the record implies: the change type, the last
    update of a fact that superseded or was superseded, the source turn's role, the raw
    memory an inferred fact came from.
    """
    a = item.attributes
    origin = a.get("origin")
    status = item.status if item.status != "active" or item.is_latest else "superseded"
    if "consolidated_at" in a:
        stamp = a["consolidated_at"]
        consolidated = rec.from_epoch(float(stamp)) if isinstance(stamp, int | float) else _dt(stamp)
    else:
        consolidated = item.updated_at if item.version > 1 or not item.is_latest else None
    return s.Fact(
        fact_id=item.id,
        text=item.text,
        change_reason=_str(a.get("change_reason")) or _str(a.get("change_type")),
        consolidated_at=consolidated,
        conv_id=item.session_id,
        created_at=item.created_at,
        episode_id=episode_id or _str(a.get("episode_id")),
        fact_type=a.get("fact_type") if isinstance(a.get("fact_type"), str) else origin,
        is_latest=item.is_latest,
        predicate=a.get("predicate") if isinstance(a.get("predicate"), str) else None,
        root_artifact_id=_str(a.get("root_artifact_id"))
        or (item.parent_id if origin == "inferred" else None),
        score=item.score,
        source_role=source_role or _str(a.get("source_role")) or item.role,
        source_turn_ids=list(item.source_ids),
        status=status,
        subject=a.get("subject") if isinstance(a.get("subject"), str) else None,
        supersedes=item.supersedes,
        updated_at=item.updated_at,
        user_id=item.user_id,
        version=item.version,
    )


def episode(item: m.MemoryItem) -> s.Episode:
    """The Episode view: its turns' facts; ``artifact_ids`` are the raw memories it links."""
    a = item.attributes
    return s.Episode(
        episode_id=item.id,
        artifact_ids=[i for i in a.get("artifact_ids", []) if isinstance(i, str)],
        conv_id=item.session_id,
        ended_at=_dt(a.get("ended_at")),
        fact_ids=[i for i in a.get("fact_ids", []) if isinstance(i, str)],
        started_at=_dt(a.get("started_at")) or item.timestamp,
        summary=a.get("summary") if isinstance(a.get("summary"), str) else None,
        title=a.get("title") if isinstance(a.get("title"), str) else None,
    )


def artifact(item: m.MemoryItem, descriptor_fact_ids: list[str] | None = None) -> s.Artifact:
    """The Artifact view of a raw memory (``raw``) or one of its chunks (``chunk``)."""
    root = item.parent_id if item.kind == "chunk" and item.parent_id else item.id
    name = item.metadata.get("name") or item.metadata.get("title")
    return s.Artifact(
        artifact_id=item.id,
        artifact_type=item.kind,
        content=item.text,
        conv_id=item.session_id,
        created_at=item.created_at,
        descriptor_fact_ids=list(descriptor_fact_ids or []),
        episode_id=None,
        is_latest=item.is_latest,
        name=name if isinstance(name, str) else None,
        parent_artifact_id=item.parent_id if item.kind == "chunk" else None,
        rationale=None,
        root_artifact_id=root,
        score=item.score,
        summary=item.text[:200],
        version=item.version,
    )


def turn_observations(raw: list[str | s.TypedObservation]) -> list[dict[str, Any]]:
    """Engine observations from ``"text"`` or typed ``{"type", "predicate", "value"}`` forms.

    A typed observation becomes the text ``"<predicate> <value>"`` with its fields kept in
    the observation's metadata, so ``{"type": "preference", "predicate": "avoids",
    "value": "shellfish"}`` is stored, searchable, as "avoids shellfish".
    """
    out: list[dict[str, Any]] = []
    for o in raw:
        if isinstance(o, str):
            out.append({"text": o})
            continue
        meta = dict(o.metadata)
        typed = {
            k: v
            for k, v in (("type", o.type), ("predicate", o.predicate), ("value", o.value))
            if v is not None
        }
        meta.update(typed)
        meta.update({k: v for k, v in (o.model_extra or {}).items() if k not in meta})
        text = o.text
        if not text or not text.strip():
            value = o.value if isinstance(o.value, str) else json.dumps(o.value, ensure_ascii=False)
            text = f"{o.predicate} {value}"
        out.append({"text": text, "metadata": meta})
    return out
