"""Pydantic models for every public input and output of the engine."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_TENANT = "default"

Kind = Literal["turn", "fact", "episode", "raw", "chunk", "observation"]
"""What a stored item is: a conversation turn, a derived fact/episode, raw text or a chunk of it."""

TurnStatus = Literal["active", "archived"]
WriteMode = Literal["chat", "import"]
"""``chat``: live conversation; ``import``: a backfill (supersession by event time, no auto episode close)."""


def to_utc(value: datetime | str, field: str = "timestamp") -> datetime:
    """Parse an ISO-8601 string or datetime into an aware UTC datetime (naive means UTC).

    Raises:
        ValueError: the value is not a datetime or an ISO-8601 string.
    """
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):  # Python 3.10's fromisoformat does not accept "Z".
            text = text[:-1] + "+00:00"
        try:
            value = datetime.fromisoformat(text)
        except ValueError as e:
            raise ValueError(f"{field} is not ISO-8601: {value!r}") from e
    if not isinstance(value, datetime):
        raise ValueError(f"{field} must be an ISO-8601 string or datetime, got {type(value)!r}")
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


class Scope(BaseModel):
    """Where a memory lives and which reads may see it.

    ``tenant_id`` is a hard isolation boundary (its own Chroma collections); the other levels
    are scoping filters inside a tenant. Vocabularies of hosted APIs map onto it: org/customer
    → ``tenant_id``; sub-tenant → ``sub_tenant_id``; conversation/session → ``session_id``.

    Example:
        >>> Scope(user_id="u1", session_id="s1").tenant_id
        'default'
    """

    model_config = ConfigDict(frozen=True)

    tenant_id: str = DEFAULT_TENANT
    sub_tenant_id: str | None = None
    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None


class Observation(BaseModel):
    """A pre-extracted observation about a turn, stored as a memory linked to it."""

    text: str
    metadata: dict[str, Any] = Field(default_factory=dict)


class Turn(BaseModel):
    """One conversation turn to write.

    ``role`` is free-form (``"user"``, ``"assistant"``, a speaker's name, ``"tool"``...).
    ``timestamp`` is ISO-8601; naive values are UTC and a missing one means "now" — such a
    turn is only idempotent through ``id``.

    Example:
        >>> Turn(role="user", text="hi", timestamp="2025-01-01T10:00:00").timestamp.isoformat()
        '2025-01-01T10:00:00+00:00'
    """

    model_config = ConfigDict(extra="forbid")

    role: str
    text: str
    timestamp: datetime | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    observations: list[Observation] = Field(default_factory=list)
    id: str | None = Field(default=None, description="Caller id / idempotency key.")

    @field_validator("role")
    @classmethod
    def _role_not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("role must not be empty")
        return v

    @field_validator("text")
    @classmethod
    def _text_not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("text must not be empty")
        return v

    @field_validator("timestamp", mode="before")
    @classmethod
    def _utc(cls, v: Any) -> datetime | None:
        return None if v is None else to_utc(v)

    @field_validator("observations", mode="before")
    @classmethod
    def _obs(cls, v: Any) -> Any:
        if v is None:
            return []
        return [{"text": o} if isinstance(o, str) else o for o in v]

    @field_validator("metadata", mode="before")
    @classmethod
    def _meta(cls, v: Any) -> Any:
        return {} if v is None else v


class Usage(BaseModel):
    """Token counts of a write, counted with the embedder's tokenizer.

    ``tokens_in`` counts every text received; ``tokens_out`` counts the texts newly embedded
    and stored (re-sent turns cost nothing).
    """

    tokens_in: int = 0
    tokens_out: int = 0


class WriteResult(BaseModel):
    """Outcome of :meth:`MemoryEngine.remember`.

    ``active_ids`` has one id per input turn, in input order; the turns are searchable as
    soon as the call returns. ``passive_job_id`` names the background enrichment job.
    """

    job_id: str
    active_ids: list[str]
    passive_job_id: str | None = None
    created: int = 0
    duplicates: int = 0
    usage: Usage = Field(default_factory=Usage)
    passive_ids: list[str] = Field(
        default_factory=list,
        description="With write_active=False: the ids of the turns stored for enrichment only "
        "(status 'passive', never searched); active_ids is then empty.",
    )
    mode: WriteMode = "chat"


class RecordResult(BaseModel):
    """Outcome of :meth:`MemoryEngine.record_message`."""

    message_id: str
    conversation_id: str
    session_id: str
    recorded_at: datetime


class AddResult(BaseModel):
    """Outcome of :meth:`MemoryEngine.add`.

    ``original_chunks`` counts the chunks of the original text, ``inferred_chunks`` the
    condensed memories stored by ``infer=True``; ``chunks_created`` is their sum.
    """

    memory_id: str
    source_id: str
    chunks_created: int
    original_chunks: int
    inferred_chunks: int = 0
    record_id: str | None = Field(
        default=None,
        description="The stored id (MemoryItem.id) of the memory; memory_id is the caller's "
        "id echoed back, or the generated id when none was given (then both are equal).",
    )


class ScoreParts(BaseModel):
    """Why a search hit ranked where it did; the same parts the REST API and the inspector show.

    Attributes:
        fused: The final ranking value (equals :attr:`MemoryItem.score`): weighted reciprocal-rank
            fusion of the dense and lexical lists, then the boosts below. It orders hits; it is
            not a similarity and is not comparable across queries.
        cosine: Cosine similarity of the query and the hit's embedding (``None`` if not computed).
        lexical: BM25 score of the hit for the query (``0.0`` when no query term matched).
        boosts: Named multiplicative lifts and additive shares applied after fusion
            (``speaker``, ``time``, ``window``, ``date``, ``session``, ``neighbour``, ``derived``...).
    """

    fused: float
    cosine: float | None = None
    lexical: float = 0.0
    boosts: dict[str, float] = Field(default_factory=dict)


class MemoryItem(BaseModel):
    """A stored memory of any kind, as returned by reads and searches."""

    id: str
    text: str
    kind: str
    tenant_id: str = DEFAULT_TENANT
    sub_tenant_id: str | None = None
    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    sub_session_id: str | None = None
    role: str | None = None
    timestamp: datetime | None = None
    seq: int | None = None
    status: str = "active"
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    expires_at: datetime | None = None
    version: int = 1
    is_latest: bool = True
    supersedes: str | None = None
    parent_id: str | None = None
    source_ids: list[str] = Field(default_factory=list)
    attributes: dict[str, Any] = Field(
        default_factory=dict, description="Kind-specific fields (fact subject/predicate...)."
    )
    caller_id: str | None = Field(
        default=None,
        description="The id the caller gave (a turn's Turn.id, a raw memory's memory_id); "
        "``id`` is the stored id, scoped so callers' ids never collide.",
    )
    score: float | None = Field(
        default=None, description="Search hits only: the fused ranking value (see ScoreParts.fused)."
    )
    score_parts: ScoreParts | None = Field(
        default=None, description="Search hits only: what the score is made of."
    )


class Page(BaseModel):
    """One page of :meth:`MemoryEngine.list`; ``next``/``previous`` are page numbers."""

    count: int
    next: int | None = None
    previous: int | None = None
    results: list[MemoryItem]


class HistoryEntry(BaseModel):
    """One version of a memory: ``event`` is ADD, UPDATE, SUPERSEDE or DELETE."""

    memory_id: str
    version: int
    event: str
    text: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    at: datetime


class EraseReceipt(BaseModel):
    """Counts of everything :meth:`MemoryEngine.erase` removed."""

    tenant_id: str
    user_id: str | None = None
    turns: int = 0
    chunks: int = 0
    memories: int = 0
    derived: int = 0
    history: int = 0
    jobs: int = 0
    verified_on_disk: bool | None = Field(
        default=None,
        description="Embedded store: whether the erase's own check of the persist folder found no "
        "residue (see residue_checks); None when not checked (a Chroma server: see note).",
    )
    residue_checks: list[str] = Field(
        default_factory=list, description="What the erase did to the files and what it checked, a line each."
    )
    bytes_reclaimed: int = Field(default=0, description="Bytes the SQLite VACUUM gave back.")
    note: str | None = Field(default=None, description="What is left to an operator (Chroma servers).")

    @property
    def total(self) -> int:
        """All removed records."""
        return self.turns + self.chunks + self.memories + self.derived + self.history + self.jobs


class SearchResult(BaseModel):
    """Outcome of :meth:`MemoryEngine.search`.

    ``results`` are ranked best first. In ``context`` mode, ``context`` is a prompt-ready
    string no longer than ``char_budget`` and ``facts``/``episodes`` are the derived memories
    it used.
    """

    query: str
    mode: Literal["flat", "context"] = "flat"
    results: list[MemoryItem]
    context: str | None = None
    facts: list[MemoryItem] = Field(default_factory=list)
    episodes: list[MemoryItem] = Field(default_factory=list)
    stage_timings: dict[str, float] = Field(default_factory=dict)


class JobStatus(BaseModel):
    """State of a background enrichment job."""

    job_id: str
    status: Literal["pending", "running", "done", "failed"]
    session_id: str | None = None
    turn_ids: list[str] = Field(default_factory=list)
    attempts: int = 0
    error: str | None = None
    created_at: datetime | None = None
    finished_at: datetime | None = None
    mode: WriteMode = "chat"
    consolidation_id_mapping: dict[str, str] = Field(
        default_factory=dict,
        description="Would-be new fact id -> id of the stored fact it was merged into (a restatement).",
    )
