"""Data of ``bench scale``: varied memories derived from the LoCoMo dev turns, and their vectors.

Memory ``i`` is a pure function of ``(seed, i)`` and the turns of the LoCoMo file, so a store of
10k holds the 1k store's memories plus 9k more, and every run builds the same data. The first
pass over the corpus keeps each real turn as it is; later passes recombine two turns (the head
of one, the tail of another) and substitute a few content words with words drawn from the
corpus' own vocabulary (seeded), until the text is new. No text of the file is stored in the
repository: everything is derived at run time from the file given with ``--data``.

Vectors: up to :data:`EMBED_LIMIT` memories every text is embedded with the real model (once
per run, cached on disk by content hash) and the stores are built through
:class:`LookupEmbedder`, which returns exactly those vectors. Above it, memory ``i`` reuses the
vector of memory ``i % EMBED_LIMIT`` with a seeded Gaussian perturbation (re-normalised), so a
1M store does not need 1M model runs; recall is not scored there.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

EMBED_LIMIT = 100_000
PERTURB_SIGMA = 0.02
SESSION_TURNS = 20
_WORD = re.compile(r"[A-Za-z][a-z]{3,}")
_STOP_WORDS = (
    "that this with have what been from your they about just really would there their will "
    "when were also like know think some more them much very than into could those over make "
    "made doing going being thing things sure yeah thanks great good well awesome"
)
_STOP = frozenset(_STOP_WORDS.split())
_EPOCH = datetime(2023, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class SourceTurn:
    """One LoCoMo turn: speaker and text (image caption kept, as ``bench locomo`` does)."""

    speaker: str
    text: str


def load_turns(path: str | os.PathLike[str]) -> list[SourceTurn]:
    """Every turn of every session of a LoCoMo JSON file, in file order."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    out: list[SourceTurn] = []
    for sample in data:
        conv = sample["conversation"]
        keys = sorted(
            (k for k in conv if re.fullmatch(r"session_\d+", k) and isinstance(conv[k], list)),
            key=lambda k: int(k.split("_")[1]),
        )
        for key in keys:
            for t in conv[key]:
                text = str(t.get("text") or "").strip()
                if t.get("blip_caption"):
                    text = f"{text} [shares {t['blip_caption']}]".strip()
                if text:
                    out.append(SourceTurn(str(t.get("speaker") or "user"), text))
    return out


def load_questions(path: str | os.PathLike[str], limit: int = 200) -> list[str]:
    """LoCoMo questions (categories 1-4): realistic search queries for the latency runs."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    qs = [str(qa["question"]) for s in data for qa in s["qa"] if qa.get("category") in (1, 2, 3, 4)]
    random.Random(7).shuffle(qs)
    return qs[:limit]


class MemoryGenerator:
    """Deterministic, duplicate-free memory texts derived from LoCoMo turns.

    Args:
        turns: The source turns (:func:`load_turns`).
        seed: Seed of every random choice.
        offset: Index of the first memory (a second generator with another offset gives texts
            for the ingest runs that are in no store).
    """

    def __init__(self, turns: Sequence[SourceTurn], seed: int = 0, offset: int = 0) -> None:
        if not turns:
            raise ValueError("no turns to derive memories from")
        self.turns = list(turns)
        self.seed = seed
        self._seen: set[str] = set()
        self._texts: list[str] = []
        self._speakers: list[str] = []
        self._offset = offset
        vocab = sorted({w.lower() for t in self.turns for w in _WORD.findall(t.text)} - _STOP)
        self._vocab = vocab or ["memory"]

    def _variant(self, i: int, attempt: int) -> tuple[str, str]:
        n = len(self.turns)
        base = self.turns[i % n]
        if i < n and attempt == 0:
            return base.speaker, base.text
        rng = random.Random(f"{self.seed}:{i}:{attempt}")
        words = base.text.split()
        if rng.random() < 0.5 and len(words) > 3:
            other = self.turns[rng.randrange(n)].text.split()
            cut_a = rng.randint(len(words) // 3, max(len(words) // 3, 2 * len(words) // 3))
            cut_b = rng.randint(0, max(0, len(other) // 2))
            words = words[:cut_a] + other[cut_b:]
        content = [
            j for j, w in enumerate(words) if _WORD.fullmatch(w.strip(".,!?")) and w.lower() not in _STOP
        ]
        for j in rng.sample(content, min(len(content), 1 + rng.randrange(3) + attempt)):
            word = words[j]
            tail = word[len(word.rstrip(".,!?")) :]
            repl = rng.choice(self._vocab)
            words[j] = (repl.capitalize() if word[0].isupper() else repl) + tail
        if not content:
            words.append(rng.choice(self._vocab))
        return base.speaker, " ".join(words)

    def _extend(self, upto: int) -> None:
        while len(self._texts) < upto:
            i = self._offset + len(self._texts)
            for attempt in range(50):
                speaker, text = self._variant(i, attempt)
                if text not in self._seen:
                    break
            else:  # pragma: no cover - 50 distinct substitutions all collided
                text = f"{text} ({i})"
            self._seen.add(text)
            self._texts.append(text)
            self._speakers.append(speaker)

    def texts(self, n: int) -> list[str]:
        """The first ``n`` memory texts (``n`` distinct strings)."""
        self._extend(n)
        return self._texts[:n]

    def speaker(self, i: int) -> str:
        """Speaker (used as the turn's role) of memory ``i`` (after :meth:`texts` covered it)."""
        return self._speakers[i]


def timestamp(i: int) -> datetime:
    """Timestamp of memory ``i``: one minute apart, from 2023-01-01."""
    return _EPOCH + timedelta(minutes=i)


def owner(i: int, users: int) -> str:
    """User of memory ``i`` in a shape with ``users`` users (round-robin)."""
    return f"u{i % users:04d}"


def session_of(i: int, users: int) -> str:
    """Session of memory ``i``: each user's turns in sessions of :data:`SESSION_TURNS`."""
    return f"{owner(i, users)}-s{(i // users) // SESSION_TURNS}"


# ---------------------------------------------------------------------- vectors


def _digest(texts: Sequence[str], identity: str) -> str:
    h = hashlib.sha256(identity.encode())
    for t in texts:
        h.update(t.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def embed_cached(
    embedder: Any,
    texts: Sequence[str],
    cache_dir: str | os.PathLike[str] | None,
    progress: Callable[[int], None] | None = None,
    chunk: int = 256,
) -> np.ndarray:
    """Embed ``texts`` with the real model, reusing a ``.npy`` cache keyed by content and model.

    Returns:
        A float32 array of shape ``(len(texts), dimension)``.
    """
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"vectors-{_digest(texts, embedder.identity)}-{len(texts)}.npy"
        if path.is_file():
            arr = np.load(path)
            if progress:
                progress(len(texts))
            return arr
    out = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    for start in range(0, len(texts), chunk):
        part = list(texts[start : start + chunk])
        out[start : start + len(part)] = np.asarray(embedder.embed_documents(part), dtype=np.float32)
        if progress:
            progress(len(part))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, out)
    return out


def perturbed(base: np.ndarray, i: int, seed: int, sigma: float = PERTURB_SIGMA) -> np.ndarray:
    """The vector of memory ``i`` above :data:`EMBED_LIMIT`: a real one, perturbed and re-normalised."""
    rng = np.random.default_rng([seed, i])
    v = base[i % len(base)] + rng.normal(0.0, sigma, base.shape[1]).astype(np.float32)
    return v / np.linalg.norm(v)


class LookupEmbedder:
    """An :class:`~mem_adapters.embeddings.Embedder` returning precomputed vectors for known texts.

    Unknown texts (queries, the writer's new turns) go to the real model, so searches embed the
    query exactly as in production; all-MiniLM-L6-v2 has no query prefix, so a known text gets
    its vector from either method. ``identity`` and ``dimension`` are the real model's, so a
    store built through this embedder opens with the real one.
    """

    def __init__(self, real: Any) -> None:
        self.real = real
        self._vectors: dict[str, np.ndarray] = {}

    def add(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Register ``texts[j] -> vectors[j]``."""
        for t, v in zip(texts, vectors, strict=True):
            self._vectors[t] = v

    @property
    def identity(self) -> str:
        """The real model's identity."""
        return str(self.real.identity)

    @property
    def dimension(self) -> int:
        """The real model's dimension."""
        return int(self.real.dimension)

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Known texts from the table, the others from the real model."""
        missing = [t for t in texts if t not in self._vectors]
        if missing:
            self.add(missing, np.asarray(self.real.embed_documents(missing), dtype=np.float32))
        return [self._vectors[t].tolist() for t in texts]

    def embed_query(self, text: str) -> list[float]:
        """A query through the real model, unless it is a known text.

        Some layers (mem0) embed their documents one at a time with ``embed_query``; the model
        gives both methods the same vector.
        """
        known = self._vectors.get(text)
        return known.tolist() if known is not None else list(self.real.embed_query(text))


__all__ = [
    "EMBED_LIMIT",
    "PERTURB_SIGMA",
    "SESSION_TURNS",
    "LookupEmbedder",
    "MemoryGenerator",
    "SourceTurn",
    "embed_cached",
    "load_questions",
    "load_turns",
    "owner",
    "perturbed",
    "session_of",
    "timestamp",
]
