"""``add(infer=True)``: condensed memories from free text, with the enrichment extractor."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

from .rules import RuleExtractor
from .types import ExtractedFact, TurnInput


def _turns(text: str) -> list[TurnInput]:
    """One input turn per line; ``"name: text"`` lines keep their speaker."""
    now = datetime.now(timezone.utc)
    out = []
    for i, line in enumerate(text.splitlines()):
        if not line.strip():
            continue
        role, sep, rest = line.partition(": ")
        if sep and 0 < len(role) <= 40 and len(role.split()) <= 3:
            out.append(TurnInput(id=f"line{i}", role=role.strip(), text=rest, timestamp=now))
        else:
            out.append(TurnInput(id=f"line{i}", role="user", text=line, timestamp=now))
    return out


def _texts(facts: list[ExtractedFact], max_items: int) -> list[str]:
    out: list[str] = []
    for f in facts:
        if f.text not in out:
            out.append(f.text)
    return out[:max_items]


def extract_for_add(
    text: str, *, custom_instructions: str | None = None, extractor: Any = None, max_items: int = 20
) -> list[str]:
    """Standalone fact statements found in ``text`` (sync; the default extractor is LLM-free).

    Example:
        >>> extract_for_add("user: Hi! I'm allergic to peanuts. What's up?")
        ['The user is allergic to peanuts.']
    """
    ex = extractor if extractor is not None else RuleExtractor()
    return _texts(ex.extract(_turns(text), custom_instructions=custom_instructions), max_items)


async def aextract_for_add(
    text: str, *, custom_instructions: str | None = None, enricher: Any = None, max_items: int = 20
) -> list[str]:
    """Async :func:`extract_for_add` using ``enricher.extractor`` when an enricher is given.

    An extractor with ``aextract`` (the LLM extractor) is awaited; a sync one runs in a thread.
    """
    ex = getattr(enricher, "extractor", None) or RuleExtractor()
    turns = _turns(text)
    if hasattr(ex, "aextract"):
        facts = await ex.aextract(turns, custom_instructions=custom_instructions)
    else:
        facts = await asyncio.to_thread(ex.extract, turns, custom_instructions=custom_instructions)
    return _texts(
        [f if isinstance(f, ExtractedFact) else ExtractedFact.model_validate(f) for f in facts], max_items
    )
