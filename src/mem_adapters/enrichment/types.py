"""Data types shared by extractors and the enrichment worker."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..errors import JobError

FACT_TYPES = (
    "preference",
    "profile",
    "event",
    "plan",
    "relationship",
    "location",
    "work",
    "observation",
    "other",
)
"""Fact types the built-in extractors produce (LLM extractors may use others)."""

ACCUMULATING_PREDICATES = frozenset(
    {"did", "plans", "feels", "has", "experienced", "said", "owns", "observed"}
)
"""Predicates whose values add up instead of replacing each other (never superseded)."""


class ExtractionError(JobError):
    """An extractor returned output that is not a valid list of facts (the job is retried)."""


class TurnInput(BaseModel):
    """One turn handed to an extractor.

    Args:
        id: The turn's memory id (facts cite it in ``source_turn_ids``).
        role: Speaker (``"user"``, ``"assistant"``, a person's name...).
        text: What was said.
        timestamp: When it was said (resolves relative dates such as "yesterday").
    """

    id: str
    role: str
    text: str
    timestamp: datetime | None = None


class ExtractedFact(BaseModel):
    """A short standalone statement about a subject, as produced by an extractor.

    ``subject`` + ``predicate`` is the supersession key: a later fact with the same key and a
    different ``value`` supersedes this one, unless the predicate accumulates (see
    :data:`ACCUMULATING_PREDICATES`).
    """

    model_config = ConfigDict(extra="ignore")

    text: str
    fact_type: str = "other"
    subject: str
    predicate: str
    value: str
    event_date: str | None = None
    confidence: float = Field(default=0.7, ge=0.0, le=1.0)
    source_turn_ids: list[str] = Field(default_factory=list)
    entities: list[str] = Field(default_factory=list)

    @field_validator("text", "subject", "predicate", "value")
    @classmethod
    def _not_empty(cls, v: str) -> str:
        if not isinstance(v, str) or not v.strip():
            raise ValueError("must be a non-empty string")
        return v.strip()

    @field_validator("fact_type", mode="before")
    @classmethod
    def _type(cls, v: Any) -> str:
        return str(v or "other").strip().lower() or "other"

    @field_validator("event_date", mode="before")
    @classmethod
    def _date(cls, v: Any) -> str | None:
        if v in (None, "", "null", "None"):
            return None
        return str(v)


class EpisodeSummary(BaseModel):
    """Title and summary of an episode."""

    title: str
    summary: str


@runtime_checkable
class Extractor(Protocol):
    """Anything that turns conversation turns into facts.

    Implement ``extract`` (sync; run in a worker thread) or ``aextract`` (async; preferred when
    present). Raise :class:`ExtractionError` on malformed output: the job fails and is retried,
    and nothing is written.
    """

    def extract(
        self,
        turns: Sequence[TurnInput],
        *,
        context: Sequence[TurnInput] = (),
        custom_instructions: str | None = None,
    ) -> list[ExtractedFact]:
        """Facts stated in ``turns`` (``context`` is earlier conversation, for reference only)."""
        ...
