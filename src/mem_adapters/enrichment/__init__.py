"""Background enrichment: turns become facts, supersession chains and episodes.

See :class:`Enricher` (the per-engine background worker), :class:`RuleExtractor` (the default,
LLM-free extractor) and :class:`LLMExtractor` (any LangChain chat model or LlamaIndex LLM).
"""

from __future__ import annotations

from .dates import ResolvedDate, resolve_date
from .inference import aextract_for_add, extract_for_add
from .llm import FactList, LLMExtractor, parse_json
from .rules import RuleExtractor, entities, to_third_person
from .types import (
    ACCUMULATING_PREDICATES,
    EpisodeSummary,
    ExtractedFact,
    ExtractionError,
    Extractor,
    TurnInput,
)
from .worker import Enricher, change_type, summarize_rules

__all__ = [
    "ACCUMULATING_PREDICATES",
    "Enricher",
    "EpisodeSummary",
    "ExtractedFact",
    "ExtractionError",
    "Extractor",
    "FactList",
    "LLMExtractor",
    "ResolvedDate",
    "RuleExtractor",
    "TurnInput",
    "aextract_for_add",
    "change_type",
    "entities",
    "extract_for_add",
    "parse_json",
    "resolve_date",
    "summarize_rules",
    "to_third_person",
]
