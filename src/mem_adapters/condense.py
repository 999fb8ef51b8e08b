"""LLM-free condensation of raw text into short standalone memories (``add(infer=True)``)."""

from __future__ import annotations

import re

from .chunking import split_sentences

# Sentences that state something durable about a person: identity, preferences, plans, facts.
_SIGNAL = re.compile(
    r"\b(i|i'm|i am|my|we|we're|our|i've|i'll|i'd)\b.*\b("
    r"am|is|are|was|were|have|has|had|like|love|enjoy|prefer|hate|dislike|want|need|plan|"
    r"going|moved|live|work|study|allergic|married|born|favorite|favourite|started|bought|"
    r"visited|joined|use|own"
    r")\b",
    re.IGNORECASE,
)
_LABEL = re.compile(r"^\s*[\w .'-]{1,40}:\s+")


def condense(
    text: str, *, custom_instructions: str | None = None, max_items: int = 20
) -> list[str]:
    """Pick the sentences of ``text`` that state durable personal facts, deduplicated.

    ``custom_instructions`` is accepted for parity with LLM condensers; words it lists after
    ``"focus on"`` are treated as extra signal terms.

    Example:
        >>> condense("user: Hi there! I'm allergic to peanuts. What's up?")
        ["I'm allergic to peanuts."]
    """
    extra: list[str] = []
    if custom_instructions:
        m = re.search(r"focus on (.+)", custom_instructions, re.IGNORECASE)
        if m:
            extra = [w.lower() for w in re.findall(r"[a-zA-Z]{3,}", m.group(1))]
    out: list[str] = []
    seen: set[str] = set()
    for line in text.splitlines():
        for sentence in split_sentences(_LABEL.sub("", line)):
            if sentence.endswith("?") or len(sentence) > 300:
                continue
            lowered = sentence.lower()
            if _SIGNAL.search(sentence) or any(w in lowered for w in extra):
                key = re.sub(r"\W+", " ", lowered).strip()
                if key not in seen:
                    seen.add(key)
                    out.append(sentence)
    return out[:max_items]
