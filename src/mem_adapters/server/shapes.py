"""The service's contract: request and response bodies in the hosted APIs' own names.

Three families of routes, each with the names its API documents:

- ``POST /ingestion/memory``: ``scope {org_id, user_id, session_id}``, ``turns``, ``options``
  → ``{job_id, active_fragment_ids, passive_job_id, usage}``;
- ``POST /memories/add-memories`` (also ``/user_memory/add_user_memory``): ``tenant_id``,
  ``sub_tenant_id``, ``raw_text`` / ``user_assistant_pairs``, ``expiry_time``... →
  ``{success, user_memory_added, memory_id, source_id, chunks_created, ...}``;
- ``/v1/memories/...``: :class:`MemoryItem` (10 fields), :class:`Fact` (20),
  :class:`Artifact` (15), :class:`Episode` (8) and their envelopes.

Engine vocabulary maps onto them: ``org_id``/``tenant_id``/``customer_id`` → tenant,
``conv_id`` → ``session_id``, ``active_fragment_ids`` → ``WriteResult.active_ids``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from ..models import EraseReceipt, HistoryEntry, JobStatus, Usage

NonEmpty = Field(min_length=1, max_length=10_000)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _not_blank(v: str | None, field: str) -> str | None:
    if v is not None and not v.strip():
        raise ValueError(f"{field} must not be blank")
    return v


# ---------------------------------------------------------------------------------- ingestion


class IngestionScope(_Body):
    """Where the turns go; ``org_id`` must be the credential's tenant (it never overrides it)."""

    org_id: str | None = None
    user_id: str | None = Field(default=None, description="Default: the token's user.")
    session_id: str | None = Field(default=None, description="Default: the token's, else 'default-session'.")

    @field_validator("org_id", "user_id", "session_id")
    @classmethod
    def _nb(cls, v: str | None) -> str | None:
        return _not_blank(v, "scope ids")


class TypedObservation(BaseModel):
    """An observation about a turn: ``{"text"}``, or typed ``{"type", "predicate", "value"}``."""

    model_config = ConfigDict(extra="allow")

    text: str | None = None
    type: str | None = None
    predicate: str | None = None
    value: Any = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _some_content(self) -> TypedObservation:
        if not (self.text and self.text.strip()) and not (self.predicate and self.value not in (None, "")):
            raise ValueError("an observation needs 'text', or 'predicate' and 'value'")
        return self


class IngestionTurn(_Body):
    """One turn: ``role`` and ``text`` (``content`` is accepted as a synonym)."""

    role: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=200_000, validation_alias=AliasChoices("text", "content"))
    timestamp: datetime | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    observations: list[str | TypedObservation] = Field(default_factory=list)
    id: str | None = Field(default=None, min_length=1, max_length=500)

    @field_validator("role", "text")
    @classmethod
    def _nb(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v


class IngestionOptions(_Body):
    """``write_active``: store the turns, searchable at once; ``write_passive``: enrich them."""

    write_active: bool = True
    write_passive: bool = True


class IngestionRequest(_Body):
    """``POST /ingestion/memory``."""

    scope: IngestionScope = Field(default_factory=IngestionScope)
    turns: list[IngestionTurn] = Field(min_length=1, max_length=1000)
    options: IngestionOptions = Field(default_factory=IngestionOptions)
    metadata: dict[str, Any] = Field(default_factory=dict)


class IngestionResponse(BaseModel):
    """202 answer of ``POST /ingestion/memory``: ``active_fragment_ids`` in input order."""

    job_id: str
    active_fragment_ids: list[str]
    passive_job_id: str | None = None
    usage: Usage


# ---------------------------------------------------------------------------- add-memories


class UserAssistantPair(_Body):
    """One exchange of ``user_assistant_pairs``."""

    user: str = ""
    assistant: str = ""


class AddMemoriesRequest(_Body):
    """``POST /memories/add-memories`` and ``POST /user_memory/add_user_memory``.

    ``expiry_time`` is seconds; 0 or null means the memory never expires. When both
    ``raw_text`` and ``user_assistant_pairs`` are given, ``raw_text`` is stored.
    """

    tenant_id: str | None = None
    sub_tenant_id: str | None = None
    raw_text: str | None = Field(default=None, max_length=2_000_000)
    user_assistant_pairs: list[UserAssistantPair] | None = Field(default=None, max_length=10_000)
    expiry_time: float | None = Field(default=None, ge=0)
    infer: bool = False
    custom_instructions: str | None = None
    user_name: str | None = None
    memory_id: str | None = Field(default=None, min_length=1, max_length=500)
    user_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("tenant_id", "sub_tenant_id", "memory_id", "user_id")
    @classmethod
    def _nb(cls, v: str | None) -> str | None:
        return _not_blank(v, "ids")

    @model_validator(mode="after")
    def _content(self) -> AddMemoriesRequest:
        has_text = self.raw_text is not None and self.raw_text.strip() != ""
        has_pairs = bool(self.user_assistant_pairs) and any(
            p.user.strip() or p.assistant.strip() for p in self.user_assistant_pairs or []
        )
        if not has_text and not has_pairs:
            raise ValueError("give raw_text or user_assistant_pairs")
        return self


class AddMemoriesResponse(BaseModel):
    """Answer of ``add-memories``."""

    success: bool = True
    user_memory_added: bool = True
    memory_id: str
    source_id: str
    chunks_created: int
    original_chunks: int
    inferred_chunks: int = 0


# -------------------------------------------------------------------------------- /v1 models


class MemoryItem(BaseModel):
    """A memory in the flat-list shape of search, list and add results (10 fields)."""

    id: str
    memory: str
    agent_id: str | None = None
    categories: list[str] = Field(default_factory=list)
    conv_id: str | None = None
    created_at: datetime | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    score: float | None = None
    updated_at: datetime | None = None
    user_id: str | None = None


class Fact(BaseModel):
    """A derived fact with its supersession chain (20 fields)."""

    fact_id: str
    text: str
    change_reason: str | None = None
    consolidated_at: datetime | None = None
    conv_id: str | None = None
    created_at: datetime | None = None
    episode_id: str | None = None
    fact_type: str | None = None
    is_latest: bool = True
    predicate: str | None = None
    root_artifact_id: str | None = None
    score: float | None = None
    source_role: str | None = None
    source_turn_ids: list[str] = Field(default_factory=list)
    status: str = "active"
    subject: str | None = None
    supersedes: str | None = None
    updated_at: datetime | None = None
    user_id: str | None = None
    version: int = 1


class Artifact(BaseModel):
    """A raw memory, or a chunk of one, as a versioned artifact (15 fields)."""

    artifact_id: str
    artifact_type: str | None = None
    content: str | None = None
    conv_id: str | None = None
    created_at: datetime | None = None
    descriptor_fact_ids: list[str] = Field(default_factory=list)
    episode_id: str | None = None
    is_latest: bool | None = None
    name: str | None = None
    parent_artifact_id: str | None = None
    rationale: str | None = None
    root_artifact_id: str | None = None
    score: float | None = None
    summary: str | None = None
    version: int | None = None


class Episode(BaseModel):
    """A stretch of a session, summarised (8 fields)."""

    episode_id: str
    artifact_ids: list[str] = Field(default_factory=list)
    conv_id: str | None = None
    ended_at: datetime | None = None
    fact_ids: list[str] = Field(default_factory=list)
    started_at: datetime | None = None
    summary: str | None = None
    title: str | None = None


class Message(_Body):
    """One message of ``POST /v1/memories/add/``."""

    role: str = Field(min_length=1, max_length=200)
    content: str = Field(min_length=1, max_length=200_000)
    date: datetime | None = None
    dia_id: str | None = None

    @field_validator("role", "content")
    @classmethod
    def _nb(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v


class MemoryAddRequest(_Body):
    """``POST /v1/memories/add/``; the user defaults to the token's, ``conv_id`` to 'default-session'."""

    messages: list[Message] = Field(min_length=1, max_length=1000)
    user_id: str | None = None
    agent_id: str | None = None
    conv_id: str | None = None
    metadata: dict[str, Any] | None = None
    mode: Literal["chat", "import"] = "chat"
    config_overrides: dict[str, Any] | None = None
    custom_instructions: str | None = None
    infer: bool = True
    flush_after: bool = False
    flush_hint: Literal["force"] | None = None

    @field_validator("user_id", "agent_id", "conv_id")
    @classmethod
    def _nb(cls, v: str | None) -> str | None:
        return _not_blank(v, "ids")


class FlushResult(BaseModel):
    """The episodes a write closed."""

    episodes: list[Episode] = Field(default_factory=list)
    stage_timings: dict[str, float] = Field(default_factory=dict)


class MemoryAddResponse(BaseModel):
    """Answer of ``POST /v1/memories/add/``: the full extracted set, inline."""

    consolidation_id_mapping: dict[str, str] = Field(default_factory=dict)
    flush_result: FlushResult | None = None
    message: str = ""
    mode: Literal["chat", "import"] = "chat"
    results: list[MemoryItem] = Field(default_factory=list)
    stage_timings: dict[str, float] = Field(default_factory=dict)
    status: str = "completed"
    stored_artifacts: list[Artifact] = Field(default_factory=list)
    stored_facts: list[Fact] = Field(default_factory=list)
    superseded_fact_ids: list[list[str]] = Field(
        default_factory=list, description="Pairs [old fact id, new fact id]."
    )


class MemorySearchRequest(_Body):
    """``POST /v1/memories/search/``; ``filters`` may name ``user_id``, ``agent_id``, ``conv_id``, ``type``.

    ``rerank`` is accepted and has no effect (the engine's ranking is already fused).
    """

    query: str = Field(min_length=1, max_length=10_000)
    filters: dict[str, Any] | None = None
    char_budget: int | None = Field(default=None, ge=1, le=1_000_000)
    conv_history: list[dict[str, Any]] | None = None
    conv_id: str | None = None
    exclude_artifact_ids: list[str] | None = None
    mode: Literal["flat", "context"] = "flat"
    rerank: bool = False
    threshold: float | None = Field(default=None, ge=-1.0, le=1.0)
    top_k: int = Field(default=10, ge=1, le=200)

    @field_validator("query")
    @classmethod
    def _nb(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v


class MemorySearchResponse(BaseModel):
    """Answer of search: in ``flat`` mode ``context``, ``artifacts`` and ``episodes`` are empty."""

    all_retrieved_artifacts: list[Artifact] = Field(default_factory=list)
    artifacts: list[Artifact] = Field(default_factory=list)
    context: str = ""
    episodes: list[Episode] = Field(default_factory=list)
    facts: list[Fact] = Field(default_factory=list)
    mode: Literal["flat", "context"] = "flat"
    results: list[MemoryItem] = Field(default_factory=list)
    stage_timings: dict[str, float] = Field(default_factory=dict)


class MemoryListRequest(_Body):
    """``POST /v1/memories/``."""

    filters: dict[str, Any] | None = None
    page: int = Field(default=1, ge=1, le=1_000_000)
    page_size: int = Field(default=50, ge=1, le=1000)


class MemoryListResponse(BaseModel):
    """One page; ``next``/``previous`` are page numbers."""

    count: int
    next: int | None = None
    previous: int | None = None
    results: list[MemoryItem]


class MemoryUpdateRequest(_Body):
    """``PATCH /v1/memories/{id}/``: new text and/or metadata."""

    text: str | None = Field(default=None, min_length=1, max_length=200_000)
    metadata: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _something(self) -> MemoryUpdateRequest:
        if self.text is None and self.metadata is None:
            raise ValueError("give text or metadata")
        if self.text is not None and not self.text.strip():
            raise ValueError("text must not be blank")
        return self


class MemoryDeleteResponse(BaseModel):
    """Answer of ``DELETE /v1/memories/{id}/``."""

    id: str
    deleted: bool = True


# ------------------------------------------------------------------- conversations, jobs, users


class ConversationMessageRequest(_Body):
    """``POST /v1/conversations/{conversation_id}/messages``."""

    role: Literal["user", "assistant"]
    content: str = Field(min_length=1, max_length=200_000)
    user_id: str | None = None
    customer_id: str | None = None
    session_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("content")
    @classmethod
    def _nb(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v


class ConversationMessageResponse(BaseModel):
    """The recorded message."""

    message_id: str
    conversation_id: str
    session_id: str
    recorded_at: datetime


class UserSummary(BaseModel):
    """A user of a tenant with counts."""

    user_id: str | None
    turns: int = 0
    memories: int = 0
    sessions: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None


class PageOf(BaseModel):
    """A page of a read route: ``next``/``previous`` are page numbers."""

    count: int
    next: int | None = None
    previous: int | None = None


class UserPage(PageOf):
    """Users of the caller's tenant."""

    results: list[UserSummary]


class SessionSummary(BaseModel):
    """A session with its turn count."""

    session_id: str
    turns: int


class SessionPage(PageOf):
    """Sessions of a user (or of the tenant)."""

    results: list[SessionSummary]


class TranscriptTurn(BaseModel):
    """One turn of a transcript, exactly as stored."""

    id: str
    role: str | None
    text: str
    timestamp: datetime | None = None
    seq: int | None = None
    status: str = "active"
    user_id: str | None = None
    sub_session_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class TranscriptPage(PageOf):
    """A session's turns in exact order."""

    session_id: str
    results: list[TranscriptTurn]


class FactPage(PageOf):
    """A user's facts, latest first versions included on request."""

    results: list[Fact]


class EpisodePage(PageOf):
    """A user's episodes."""

    results: list[Episode]


class TenantList(BaseModel):
    """Every tenant of the store (admin only)."""

    tenants: list[str]


class Health(BaseModel):
    """Liveness / readiness."""

    status: str
    detail: str | None = None
    worker: int | None = Field(default=None, description="Process id of the worker that answered.")


__all__ = [
    "AddMemoriesRequest",
    "AddMemoriesResponse",
    "Artifact",
    "ConversationMessageRequest",
    "ConversationMessageResponse",
    "Episode",
    "EpisodePage",
    "EraseReceipt",
    "Fact",
    "FactPage",
    "FlushResult",
    "Health",
    "HistoryEntry",
    "IngestionRequest",
    "IngestionResponse",
    "JobStatus",
    "MemoryAddRequest",
    "MemoryAddResponse",
    "MemoryDeleteResponse",
    "MemoryItem",
    "MemoryListRequest",
    "MemoryListResponse",
    "MemorySearchRequest",
    "MemorySearchResponse",
    "MemoryUpdateRequest",
    "SessionPage",
    "TenantList",
    "TranscriptPage",
    "UserPage",
]
