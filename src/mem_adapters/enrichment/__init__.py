"""Background enrichment: turns become facts, supersession chains and episodes.

See :class:`Enricher` (the per-engine background worker), :class:`RuleExtractor` (the default,
LLM-free extractor) and :class:`LLMExtractor` (any LangChain chat model or LlamaIndex LLM).
"""

from __future__ import annotations

from .dates import ResolvedDate, resolve_date
from .rules import RuleExtractor, entities, to_third_person
from .types import (
    ACCUMULATING_PREDICATES,
    EpisodeSummary,
    ExtractedFact,
    ExtractionError,
    Extractor,
    TurnInput,
)

__all__ = [
    "ACCUMULATING_PREDICATES",
    "EpisodeSummary",
    "ExtractedFact",
    "ExtractionError",
    "Extractor",
    "ResolvedDate",
    "RuleExtractor",
    "TurnInput",
    "entities",
    "resolve_date",
    "to_third_person",
]
