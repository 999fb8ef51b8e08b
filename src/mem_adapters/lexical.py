"""Lexical retrieval: a tokenizer for conversational English and an incremental BM25 index.

The index is derived data (see :mod:`mem_adapters.retrieval`): documents are added, replaced
and removed one by one as the engine writes, so it never needs a full rebuild to stay in step.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from functools import lru_cache

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")

_STOP = """
    a about above after again against all also am an and any are aren't as at be because been
    before being below between both but by can can't cannot could couldn't did didn't do does
    doesn't doing don't down during each few for from further get got had hadn't has hasn't have
    haven't having he he'd he'll he's her here here's hers herself hey hi him himself his how
    how's i i'd i'll i'm i've if in into is isn't it it's its itself just let's like me more
    most mustn't my myself no nor not of off oh on once only or other ought our ours ourselves
    out over own really s same shan't she she'd she'll she's should shouldn't so some such t
    than that that's the their theirs them themselves then there there's these they they'd
    they'll they're they've this those through to too under until up very was wasn't we we'd
    we'll we're we've were weren't what what's when when's where where's which while who who's
    whom why why's will with won't would wouldn't wow yeah you you'd you'll you're you've your
    yours yourself yourselves
"""
STOP_WORDS = frozenset(_STOP.split())
"""Function words carrying no topic; dropped from documents and queries alike."""


@lru_cache(maxsize=1 << 16)  # pure, and conversational vocabulary repeats a lot
def stem(word: str) -> str:
    """A light, conservative English suffix stripper (plural, -ing, -ed, -ly, final -e).

    Both documents and queries go through it, so it only has to be consistent, not correct.

    Example:
        >>> [stem(w) for w in ["hiking", "hikes", "hike", "stories", "painted", "running"]]
        ['hik', 'hik', 'hik', 'story', 'paint', 'run']
    """
    word = _stem(word)
    # "hike"/"hiking"/"hikes" all meet at "hik".
    return word[:-1] if len(word) > 3 and word.endswith("e") and word.isalpha() else word


def _stem(word: str) -> str:
    if len(word) <= 3 or not word.isalpha():
        return word
    # Plurals first (Porter's step 1a), then -ing/-ed/-ly (step 1b, simplified).
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith(("sses", "ches", "shes")) or (word.endswith("es") and word[-3] in "xz"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix, min_len in (("ing", 6), ("ed", 5), ("ly", 6)):
        if word.endswith(suffix) and len(word) >= min_len:
            base = word[: -len(suffix)]
            # "running" -> "runn" -> "run": undo consonant doubling.
            if len(base) > 2 and base[-1] == base[-2] and base[-1] not in "aeiouls":
                base = base[:-1]
            return base
    return word


def tokenize(text: str, *, stop_words: frozenset[str] = STOP_WORDS) -> list[str]:
    """Lowercase, split into words, drop stop words and possessives, stem.

    Example:
        >>> tokenize("Caroline's adoption agencies were great!")
        ['caroline', 'adoption', 'agency', 'great']
    """
    out = []
    for w in _WORD.findall(text.lower()):
        if w in stop_words:
            continue
        if w.endswith("'s"):
            w = w[:-2]
        elif "'" in w:
            continue  # contractions are function words
        if w:
            out.append(stem(w))
    return out


def plain_tokenize(text: str) -> list[str]:
    """Lowercased words only: the tokenizer of the plain BM25 reference baseline."""
    return re.findall(r"\w+", text.lower())


class BM25Index:
    """An incremental Okapi BM25 index keyed by document id.

    Args:
        k1: Term-frequency saturation.
        b: Length normalisation.
        tokenizer: Text to tokens (default :func:`tokenize`).
    """

    def __init__(
        self, k1: float = 1.2, b: float = 0.75, tokenizer: Callable[[str], list[str]] = tokenize
    ) -> None:
        self.k1 = k1
        self.b = b
        self.tokenizer = tokenizer
        self._postings: dict[str, dict[str, int]] = {}
        self._doc_terms: dict[str, Counter[str]] = {}
        self._doc_len: dict[str, int] = {}
        self._total_len = 0

    def __len__(self) -> int:
        return len(self._doc_len)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._doc_len

    def add(self, doc_id: str, text: str) -> None:
        """Index (or re-index) one document."""
        if doc_id in self._doc_len:
            self.remove(doc_id)
        terms = Counter(self.tokenizer(text))
        self._doc_terms[doc_id] = terms
        length = sum(terms.values())
        self._doc_len[doc_id] = length
        self._total_len += length
        for term, tf in terms.items():
            self._postings.setdefault(term, {})[doc_id] = tf

    def remove(self, doc_id: str) -> None:
        """Drop one document (unknown ids are ignored)."""
        terms = self._doc_terms.pop(doc_id, None)
        if terms is None:
            return
        self._total_len -= self._doc_len.pop(doc_id)
        for term in terms:
            posting = self._postings.get(term)
            if posting is not None:
                posting.pop(doc_id, None)
                if not posting:
                    del self._postings[term]

    def idf(self, term: str) -> float:
        """Inverse document frequency (BM25's, floored at zero by the +1)."""
        df = len(self._postings.get(term, ()))
        n = len(self._doc_len)
        return math.log(1.0 + (n - df + 0.5) / (df + 0.5))

    def scores(self, terms: Iterable[str], weights: dict[str, float] | None = None) -> dict[str, float]:
        """BM25 score of every document containing at least one of ``terms``.

        Args:
            terms: Query tokens (repeats count once).
            weights: Optional per-term multipliers.
        """
        n = len(self._doc_len)
        if not n:
            return {}
        avg = self._total_len / n or 1.0
        k1, b = self.k1, self.b
        out: dict[str, float] = {}
        for term in dict.fromkeys(terms):
            posting = self._postings.get(term)
            if not posting:
                continue
            w = self.idf(term) * (weights.get(term, 1.0) if weights else 1.0)
            for doc_id, tf in posting.items():
                norm = tf + k1 * (1.0 - b + b * self._doc_len[doc_id] / avg)
                out[doc_id] = out.get(doc_id, 0.0) + w * tf * (k1 + 1.0) / norm
        return out

    def group_scores(
        self,
        terms: Iterable[str],
        group_of: Callable[[str], object | None],
        group_len: dict[object, int],
        weights: dict[str, float] | None = None,
    ) -> dict[object, float]:
        """BM25 of *groups* of documents, each group scored as one concatenated document.

        Term frequencies are summed over a group's documents, idf counts groups, and length
        normalisation uses the groups' lengths. Computed from the per-document postings at
        query time, so the groups (e.g. conversation sessions) need no index of their own.

        Args:
            terms: Query tokens (repeats count once).
            group_of: A document's group, or None to leave the document out (filtered out,
                or not a member of any group).
            group_len: Token length of every group (sets the group count and the average).
            weights: Optional per-term multipliers.

        Example:
            >>> ix = BM25Index()
            >>> for i, t in [("a1", "cats purr"), ("a2", "cats nap"), ("b1", "dogs bark")]:
            ...     ix.add(i, t)
            >>> g = ix.group_scores(["cat"], lambda d: d[0], {"a": 4, "b": 2})
            >>> sorted(g) == ["a"] and g["a"] > 0
            True
        """
        n = len(group_len)
        if not n:
            return {}
        avg = sum(group_len.values()) / n or 1.0
        k1, b = self.k1, self.b
        out: dict[object, float] = {}
        for term in dict.fromkeys(terms):
            posting = self._postings.get(term)
            if not posting:
                continue
            tf_by_group: dict[object, int] = {}
            for doc_id, tf in posting.items():
                g = group_of(doc_id)
                if g is not None and g in group_len:
                    tf_by_group[g] = tf_by_group.get(g, 0) + tf
            df = len(tf_by_group)
            w = math.log(1.0 + (n - df + 0.5) / (df + 0.5)) * (weights.get(term, 1.0) if weights else 1.0)
            for g, tf in tf_by_group.items():
                norm = tf + k1 * (1.0 - b + b * group_len[g] / avg)
                out[g] = out.get(g, 0.0) + w * tf * (k1 + 1.0) / norm
        return out

    def doc_len(self, doc_id: str) -> int:
        """Token count of an indexed document (0 when unknown)."""
        return self._doc_len.get(doc_id, 0)

    def search(
        self,
        query: str | list[str],
        n: int,
        keep: Callable[[str], bool] | None = None,
        weights: dict[str, float] | None = None,
    ) -> list[tuple[str, float]]:
        """The top ``n`` documents for ``query`` (text or tokens) that pass ``keep``."""
        terms = self.tokenizer(query) if isinstance(query, str) else query
        scored = sorted(self.scores(terms, weights).items(), key=lambda x: (-x[1], x[0]))
        out: list[tuple[str, float]] = []
        for doc_id, score in scored:
            if keep is None or keep(doc_id):
                out.append((doc_id, score))
                if len(out) >= n:
                    break
        return out
