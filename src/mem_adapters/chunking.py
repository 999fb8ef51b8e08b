"""Split long text into overlapping chunks on sentence and paragraph boundaries."""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n{2,}")


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences (and paragraphs); empty pieces are dropped."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def chunk_text(text: str, max_chars: int = 1000, overlap_sentences: int = 1) -> list[str]:
    """Pack sentences into chunks of at most ``max_chars`` characters.

    Consecutive chunks share ``overlap_sentences`` sentences so a fact split across a boundary
    is still found. A single sentence longer than ``max_chars`` is cut on whitespace.

    Example:
        >>> chunk_text("One. Two. Three.", max_chars=9, overlap_sentences=0)
        ['One. Two.', 'Three.']
    """
    text = text.strip()
    if len(text) <= max_chars:
        return [text] if text else []
    pieces: list[str] = []
    for sentence in split_sentences(text):
        while len(sentence) > max_chars:
            cut = sentence.rfind(" ", 0, max_chars)
            cut = cut if cut > 0 else max_chars
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if sentence:
            pieces.append(sentence)
    chunks: list[str] = []
    current: list[str] = []
    for piece in pieces:
        if current and len(" ".join([*current, piece])) > max_chars:
            chunks.append(" ".join(current))
            kept = current[-overlap_sentences:] if overlap_sentences else []
            current = kept if len(" ".join([*kept, piece])) <= max_chars else []
        current.append(piece)
    if current:
        chunks.append(" ".join(current))
    return chunks
