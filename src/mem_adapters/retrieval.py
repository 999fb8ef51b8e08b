"""Ranking memories for a query: hybrid dense + lexical retrieval, shaped into results or a context.

Pipeline of :meth:`Retriever.search` (no LLM anywhere):

1. **Candidates.** Dense: exact cosine over the partition's vectors for the query without
   the speaker names it mentions (names are in every turn). Lexical: BM25 over the
   partition's postings. Both are filtered by the engine's ``where`` clause, evaluated on
   the partition's columns (Chroma's semantics; a filter on caller metadata is answered
   by Chroma itself).
2. **Fusion.** Weighted reciprocal-rank fusion of the two lists.
3. **Conversation-aware re-scoring.** Turns by a speaker the query names are favoured;
   for "when..." questions, turns that mention a time; for "last week"-style queries, items
   inside that window (relative to the latest item in scope), and for a calendar date ("on
   3 June, 2023", "in July 2023") items dated inside it; each turn passes part of its
   score to its neighbours in the same session (the answer is often the turn next to the
   matching one); items of the best-matching sessions are lifted, sessions being ranked by
   BM25 over each session's turns taken as one document.
4. **Selection.** Greedy, spread over sessions: strongly for the first few picks (one turn
   per promising session up front), mildly after.
5. **Versions and duplicates.** With ``as_of``, facts not valid at that time are dropped;
   otherwise superseded facts are dropped when their successor is present, else demoted.
   Near-identical texts are returned once.

Everything is scored on one *partition* of the derived index (:mod:`mem_adapters.data`):
the searched user's records, or the whole tenant's, held in compact columns and caught up
with every other process's writes by revision before each search. Dense scores are exact
(one matrix product over the partition), so Chroma never gets a filtered ANN query. Hits
are built from the caught-up partition (it holds every field an item shows); each carries
its :class:`~mem_adapters.models.ScoreParts`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from . import records as rec
from .data.partition import DERIVED_KINDS, Partition
from .lexical import tokenize
from .models import MemoryItem, ScoreParts, SearchResult
from .temporal import absolute_window, is_temporal_question, relative_window

if TYPE_CHECKING:
    from .data import DataLayer

logger = logging.getLogger(__name__)


def format_item(item: MemoryItem) -> str:
    """One line of a context string: date, speaker and text."""
    date = item.timestamp.strftime("%Y-%m-%d %H:%M") if item.timestamp else "undated"
    who = item.role or item.kind
    return f"[{date}] {who}: {item.text}"


def pack_context(items: list[MemoryItem], char_budget: int | None) -> tuple[str, list[MemoryItem]]:
    """Pack items best-first into a string of at most ``char_budget`` characters.

    An item is never cut mid-way unless it alone exceeds the budget and nothing fits yet.
    """
    lines: list[str] = []
    used: list[MemoryItem] = []
    size = 0
    for item in items:
        line = format_item(item)
        extra = len(line) + (1 if lines else 0)
        if char_budget is not None and size + extra > char_budget:
            if not lines and char_budget > 0 and len(line) > char_budget:
                lines.append(line[:char_budget])
                used.append(item)
                size = char_budget
            continue
        lines.append(line)
        used.append(item)
        size += extra
    return "\n".join(lines), used


@dataclass(frozen=True)
class RetrievalConfig:
    """Knobs of the hybrid ranker (defaults were set on aggregate LoCoMo-dev recall).

    Attributes:
        dense_candidates: Dense nearest neighbours taken.
        exact_dense_max: Largest whole-tenant partition a tenant-wide search (no ``user_id``)
            loads; above it that search asks Chroma's vector index *without* a ``where``
            (Chroma filters a local query by brute force), over-fetches and filters the
            candidates itself.
        ann_min_rows: Partitions of at least this many rows take their dense candidates
            from Chroma's vector index: one query without a ``where``, over-fetched by the
            share of the tenant the scope holds, the candidates then scored exactly with the
            partition's vectors (``DataLayer.nearest``). Smaller ones, and scopes that are a
            small share of their tenant, score every row in scope exactly (at 100k rows that
            pass alone costs more than the rest of a search).
        lexical_candidates: BM25 hits kept.
        rrf_k: Rank offset of reciprocal-rank fusion (smaller favours the top ranks).
        dense_weight: Weight of the dense list in the fusion.
        lexical_weight: Weight of the BM25 list in the fusion.
        speaker_boost: Relative lift of turns spoken by a speaker the query names.
        speaker_term_weight: BM25 weight of speaker-name terms (names are everywhere).
        time_boost: Relative lift of time-mentioning items for "when" questions.
        window_boost: Relative lift of items inside a "last week"-style window.
        date_boost: Relative lift of items inside the window of a calendar date the query
            names ("on 3 June, 2023", "in July 2023"; see ``temporal.absolute_window``).
        dense_without_speakers: Embed the query without the speaker names it mentions.
            Names are in nearly every turn (as its speaker label or as the person addressed),
            so in the dense similarity they swamp what the question is about; the speaker
            boost and BM25 (at ``speaker_term_weight``) take care of who said it.
        neighbour_share: Share of a turn's score given to each adjacent turn of its session.
        neighbour_sources: How many top items pass score to their neighbours.
        session_boost: Relative lift of items of the best-matching sessions.
        session_top: Items per session summed into the session's item-based score.
        session_turn_weight: Weight, in the session fusion, of ranking sessions by the sum of
            their ``session_top`` best items' scores.
        session_lexical_weight: Weight of ranking sessions by BM25 over each session's turns
            taken as one document.
        session_dense_weight: Weight of ranking sessions by cosine to the centroid of their
            turns' vectors.
        session_rrf_k: Rank offset of the session fusion (there are few sessions, so it is
            small: the lift falls off quickly after the first sessions).
        superseded_penalty: Multiplier of a superseded fact whose successor is not present.
        dedup_jaccard: Token-set Jaccard above which two hits count as duplicates.
        session_diversity: When picking the final list, an item's score is multiplied by
            this once per item already picked from its session (1.0 = off); spreads the top
            ranks over sessions, which multi-session questions need.
        head_size: The first ``head_size`` picks use ``head_diversity`` instead of
            ``session_diversity``: the head of the list favours distinct sessions (a question
            about several sessions gets one turn from each up front), the tail follows the
            scores, so the set of the top ~2 x ``head_size`` items barely changes.
        head_diversity: Session discount of the head picks.
        derived_share: Share of a fact's or episode's score added to its source turns (split
            evenly over the sources in scope): a derived hit is evidence for the turns it was
            drawn from, so it lifts them instead of only competing with them for a slot.
    """

    dense_candidates: int = 60
    exact_dense_max: int = 200_000
    ann_min_rows: int = 30_000
    lexical_candidates: int = 60
    rrf_k: float = 20.0
    dense_weight: float = 1.0
    lexical_weight: float = 1.0
    speaker_boost: float = 1.0
    speaker_term_weight: float = 0.3
    time_boost: float = 0.3
    window_boost: float = 0.3
    date_boost: float = 1.0
    dense_without_speakers: bool = True
    neighbour_share: float = 0.5
    neighbour_sources: int = 30
    session_boost: float = 0.5
    session_top: int = 3
    session_turn_weight: float = 0.0
    session_lexical_weight: float = 1.0
    session_dense_weight: float = 0.0
    session_rrf_k: float = 5.0
    superseded_penalty: float = 0.5
    head_size: int = 5
    head_diversity: float = 0.5
    dedup_jaccard: float = 0.9
    session_diversity: float = 0.9
    derived_share: float = 0.5


_FIRST_PERSON = re.compile(r"\b(?:i|me|my|mine|myself)\b", re.IGNORECASE)
_USER_ROLES = frozenset({"user", "human"})  # first words of roles, lower-cased (Partition.role_first)


def _named(roles: Iterable[str], words: set[str]) -> set[str]:
    """The speakers (first words of roles, lower-cased) that are among a query's ``words``."""
    return {r for r in roles if r in words}


def _without_speakers(query: str, speakers: set[str]) -> str:
    """``query`` without the speaker names in ``speakers`` (and their possessive 's).

    Falls back to the query itself when nothing else would be left.

    Example:
        >>> _without_speakers("What did Melanie paint?", {"melanie"})
        'What did paint?'
    """
    if not speakers:
        return query
    names = "|".join(sorted(map(re.escape, speakers)))
    stripped = re.sub(rf"\b(?:{names})(?:['\u2019]s)?\b", " ", query, flags=re.IGNORECASE)
    stripped = re.sub(r"\s+", " ", stripped).strip()
    stripped = re.sub(r"\s+([?.!,])", r"\1", stripped)
    return stripped if re.search(r"\w", stripped) else query


def _fact_valid(part: Partition, row: int, as_of: float) -> bool:
    created = float(part.num["created_at"].data[row])
    superseded = float(part.num["superseded_at"].data[row])
    if math.isnan(superseded):
        superseded = rec.NEVER
    return (math.isnan(created) or created <= as_of) and as_of < superseded


def _superseded(part: Partition, row: int) -> bool:
    status = int(part.status.data[row])
    return (status >= 0 and part.strings.values[status] == "superseded") or part.flags["is_latest"].data[
        row
    ] == 0


async def _done(value: list[float]) -> list[float]:
    return value


class _Hit:
    """The score parts of one candidate, gathered while it is scored."""

    __slots__ = ("boosts", "cosine", "lexical")

    def __init__(self) -> None:
        self.cosine: float | None = None
        self.lexical = 0.0
        self.boosts: dict[str, float] = {}


def _padded(mask: np.ndarray, n: int) -> np.ndarray:
    """``mask`` extended to ``n`` rows, the new ones out of scope.

    Rows appended by this process's writes after a search took its partition are not in the
    search's scope.
    """
    if len(mask) >= n:
        return mask
    return np.concatenate([mask, np.zeros(n - len(mask), dtype=np.bool_)])


class Retriever:
    """Hybrid retrieval over one scope's partition of the derived index.

    Depends on the data layer only (:class:`mem_adapters.data.DataLayer`): it reads
    partitions and records from it and never writes.

    Args:
        data: The data layer whose partitions are searched.
        embed_query: Coroutine function embedding a query (the engine's embedder executor).
        config: Ranking knobs (see :class:`RetrievalConfig`).
    """

    def __init__(
        self,
        data: DataLayer | None,
        embed_query: Callable[[str], Awaitable[list[float]]] | None = None,
        config: RetrievalConfig | None = None,
    ) -> None:
        self.data = data
        self.embed_query = embed_query
        self.config = config or RetrievalConfig()

    # ------------------------------------------------------------------ search

    async def search(
        self,
        tenant_id: str,
        query: str,
        *,
        k: int,
        where: dict[str, Any] | None,
        mode: Literal["flat", "context"],
        char_budget: int | None,
        as_of: float | None,
        user_id: str | None = None,
    ) -> SearchResult:
        """Rank the live records matching ``where`` for ``query`` (see the module docstring).

        ``user_id`` names the partition searched (``None``: the whole tenant); ``where`` must
        already restrict to it.
        """
        assert self.data is not None and self.embed_query is not None
        cfg = self.config
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        live = self.data.live(where)
        raw_words = set(re.findall(r"[a-z]+", query.lower()))
        # The dense query leaves out the speaker names it mentions (see RetrievalConfig); the
        # speakers are known from the cached partition, checked again once it is caught up.
        # A scope not held yet guesses from the tenant's held scopes, so that its load and the
        # query's embedding overlap (a wrong guess costs one more embedding, as no guess does).
        known = self.data.cached_partition(tenant_id, user_id)
        guess: set[str] = set()
        if cfg.dense_without_speakers and known is not None:
            guess = _named(known.role_first, raw_words)
        elif cfg.dense_without_speakers:
            guess = self.data.speakers_among(tenant_id, raw_words)
        embed_task = asyncio.ensure_future(self.embed_query(_without_speakers(query, guess)))
        try:
            if (
                user_id is None
                and known is None
                and await self.data.tenant_size(tenant_id) > cfg.exact_dense_max
            ):
                # Too large to hold whole: Chroma's ANN (unfiltered, over-fetched) picks candidates.
                vector = await embed_task
                part, mask = await self.data.candidates(tenant_id, vector, 8 * cfg.dense_candidates, live)
                embed_task = asyncio.ensure_future(_done(vector))
            else:
                part, mask = await self.data.search_view(tenant_id, user_id, live)
        except BaseException:
            embed_task.cancel()
            raise
        t1 = time.perf_counter()
        timings["index_ms"] = (t1 - t0) * 1000

        mask = _padded(mask, part.n)

        def keep(row: int) -> bool:
            return row < len(mask) and bool(mask[row])

        # Lexical candidates (run while the query is being embedded).
        speakers = _named(part.role_first, raw_words)
        q_tokens = tokenize(query)
        speaker_tokens = {t for t in q_tokens if t in {tokenize(s)[0] for s in speakers if tokenize(s)}}
        weights = dict.fromkeys(speaker_tokens, cfg.speaker_term_weight) if speaker_tokens else None
        # Facts/episodes compete with turns for candidate slots only within their own class
        # (see _score): with derived records around, take twice as many, cut per class later.
        widen = 2 if part.derived else 1
        bm25 = part.bm25(q_tokens, weights)
        lexical = self._top_lexical(part, bm25, mask, widen * cfg.lexical_candidates)
        t2 = time.perf_counter()
        timings["lexical_ms"] = (t2 - t1) * 1000

        vector = await embed_task
        if guess != speakers and cfg.dense_without_speakers:
            # The partition was (re)loaded meanwhile and knows other speakers: embed again.
            vector = await self.embed_query(_without_speakers(query, speakers))
        t3 = time.perf_counter()
        timings["embed_ms"] = (t3 - t0) * 1000  # the embedding ran alongside the steps above
        rows = None
        if part.n >= cfg.ann_min_rows:
            rows = await self.data.nearest(tenant_id, part, vector, widen * cfg.dense_candidates, mask)
            timings["ann_ms"] = (time.perf_counter() - t3) * 1000  # a part of dense_ms
        # A write of this process may have appended rows meanwhile; from here on nothing
        # awaits, so the mask covers every row the steps below read.
        mask = _padded(mask, part.n)
        q = np.asarray(vector, dtype=np.float32)
        q = q / (float(np.linalg.norm(q)) or 1.0)
        dense = self._exact_dense(part, q, mask, widen * cfg.dense_candidates, rows)
        t4 = time.perf_counter()
        timings["dense_ms"] = (t4 - t3) * 1000

        hits: dict[int, _Hit] = {}
        memo: dict[int, list[int]] = {}  # derived row -> its source turns in scope, for this search
        # "What should I avoid?" asked of an assistant's memory is about its user: first-person
        # questions lift the user's turns as a named speaker's are lifted.
        if _FIRST_PERSON.search(query):
            speakers = speakers | (_USER_ROLES & part.role_first.keys())
        scores = self._score(part, query, dense, lexical, speakers, keep, as_of, memo, hits)
        if scores and (cfg.session_lexical_weight or cfg.session_dense_weight or cfg.session_turn_weight):
            self._session_prior(part, scores, q_tokens, weights, q, mask, hits)
        picked = self._select(part, scores, k, keep, memo)
        extra = self._with_derived(part, scores, picked, k) if mode == "context" else []
        timings["rank_ms"] = (time.perf_counter() - t4) * 1000

        def item(row: int, score: float) -> MemoryItem | None:
            if not part.alive.data[row]:  # deleted while this search ran
                return None
            hit = hits.get(row) or _Hit()
            cosine = hit.cosine
            if cosine is None and part.has_vec.data[row]:
                cosine = float(part.vectors[row] @ q)
            parts = ScoreParts(fused=score, cosine=None if cosine is None else round(cosine, 6),
                               lexical=round(float(bm25[row]) if row < len(bm25) else 0.0, 6),
                               boosts={n: round(v, 6) for n, v in hit.boosts.items()})  # fmt: skip
            out = rec.to_item(part.ids[row], part.texts[row], part.meta_of(row), score=score)
            out.score_parts = parts
            return out

        items = [x for r, s in picked if (x := item(r, s)) is not None]
        result = SearchResult(query=query, mode=mode, results=items, stage_timings=timings)
        if mode == "context":
            extra_items = [(x, before) for r, s, before in extra if (x := item(r, s)) is not None]
            merged = self._merge_derived(items, extra_items)
            result.context, used = pack_context(merged, char_budget)
            result.facts = [i for i in used if i.kind == "fact"]
            result.episodes = [i for i in used if i.kind == "episode"]
        timings["total_ms"] = (time.perf_counter() - t0) * 1000
        result.stage_timings = timings  # pydantic copied the dict at construction
        return result

    @staticmethod
    def _top_lexical(part: Partition, bm25: np.ndarray, mask: np.ndarray, n: int) -> list[tuple[int, float]]:
        """The ``n`` best-scored rows passing ``mask``, best first, ties by id."""
        scored = np.flatnonzero((bm25 > 0) & mask[: len(bm25)])
        scored = scored[_at_or_above_nth(bm25[scored], n)]
        ranked = sorted(((int(r), float(bm25[r])) for r in scored), key=lambda x: (-x[1], part.ids[x[0]]))
        return ranked[:n]

    @staticmethod
    def _exact_dense(
        part: Partition, q: np.ndarray, mask: np.ndarray, n: int, rows: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """Cosine distances of the ``n`` nearest rows passing ``mask``, computed exactly.

        One matrix-vector product and one partial sort over the rows in scope (or over
        ``rows``, candidates in scope from Chroma's vector index, see ``ann_min_rows``); every
        row tied with the ``n``-th is kept until the final cut, so ties rank by id, never by
        row order.
        """
        ok, mat = part.matrix()
        m = min(len(ok), len(mask))  # rows appended after the mask was taken are out of scope
        if rows is None:
            pos = np.flatnonzero(ok[:m] & mask[:m])
        else:  # checked again: a delete of this process may have landed while Chroma answered
            pos = np.unique(rows[rows < m])
            pos = pos[ok[pos] & mask[pos]]
        if not len(pos) or n <= 0:
            return []
        # A narrow scope (a filter on a large partition) gathers its rows; a wide one scores
        # every row in place, cheaper than copying most of the matrix out.
        sims = mat[pos] @ q if 8 * len(pos) < m else (mat[:m] @ q)[pos]
        top = _at_or_above_nth(sims, n)
        out = [(int(pos[j]), 1.0 - float(sims[j])) for j in top]
        # Equal similarities rank by id, so the order never depends on row order.
        return sorted(out, key=lambda x: (x[1], part.ids[x[0]]))[:n]

    def _score(
        self,
        part: Partition,
        query: str,
        dense: list[tuple[int, float]],
        lexical: list[tuple[int, float]],
        speakers: set[str],
        keep: Callable[[int], bool],
        as_of: float | None,
        anchors: dict[int, list[int]],
        hits: dict[int, _Hit],
    ) -> dict[int, float]:
        cfg = self.config
        scores: dict[int, float] = {}
        for r, dist in dense:
            hits.setdefault(r, _Hit()).cosine = 1.0 - dist
        for r, v in lexical:
            hits.setdefault(r, _Hit()).lexical = v
        # Ranks are counted within a class (derived vs the rest): a fact ranked above a turn
        # does not push the turn down the fusion, so enrichment cannot cost turns their rank.
        for found, weight, n in ((dense, cfg.dense_weight, cfg.dense_candidates),
                                 (lexical, cfg.lexical_weight, cfg.lexical_candidates)):  # fmt: skip
            ranks = [0, 0]
            for r, _ in found:
                c = int(part.is_derived(r))
                if ranks[c] < n:
                    scores[r] = scores.get(r, 0.0) + weight / (cfg.rrf_k + ranks[c] + 1)
                    ranks[c] += 1
        if not scores:
            return scores

        # Versions: validity at as_of, or latest-first.
        for r in list(scores):
            if part.is_derived(r) and as_of is not None:
                if not _fact_valid(part, r, as_of):
                    del scores[r]
            elif part.kind_of(r) == "fact" and _superseded(part, r):
                successor = part.superseded_by.get(r)
                srow = part.row_of.get(successor) if successor else None
                if srow is not None and srow in scores:
                    del scores[r]
                else:
                    scores[r] *= cfg.superseded_penalty
                    hits.setdefault(r, _Hit()).boosts["superseded"] = cfg.superseded_penalty

        # Derived items are evidence for the turns they were drawn from: lift those turns.
        if cfg.derived_share:
            for r, s in list(scores.items()):  # a snapshot: lifted turns do not lift further
                in_scope = self._anchors(part, r, keep, anchors)
                for j in in_scope:
                    share = cfg.derived_share * s / len(in_scope)
                    scores[j] = scores.get(j, 0.0) + share
                    b = hits.setdefault(j, _Hit()).boosts
                    b["derived"] = b.get("derived", 0.0) + share

        # Neighbours: adjacent turns share context; pass them part of the score.
        # Only turns pass score on, so facts/episodes do not use up the neighbour_sources slots.
        turns = [(r, s) for r, s in scores.items() if part.is_turn(r)]
        top = sorted(turns, key=lambda x: (-x[1], part.ids[x[0]]))[: cfg.neighbour_sources]
        passed: dict[int, float] = {}
        for r, s in top:
            for j in part.neighbours(r):
                if keep(j):
                    passed[j] = max(passed.get(j, 0.0), cfg.neighbour_share * s)
        for j, s in passed.items():
            scores[j] = scores.get(j, 0.0) + s
            hits.setdefault(j, _Hit()).boosts["neighbour"] = s

        temporal = is_temporal_question(query)
        window = relative_window(query, part.latest_ts) if part.latest_ts else None
        dated = absolute_window(query, part.latest_ts or None) if cfg.date_boost else None
        for r in scores:
            lift = 1.0
            parts: dict[str, float] = {}
            first = part.first_role(r)
            if speakers and first and first in speakers:
                lift += cfg.speaker_boost
                parts["speaker"] = cfg.speaker_boost
            if temporal and part.timely.data[r]:
                lift += cfg.time_boost
                parts["time"] = cfg.time_boost
            ts = part.ts(r)
            if ts is not None:
                if window is not None and window[0] <= ts <= window[1]:
                    lift += cfg.window_boost
                    parts["window"] = cfg.window_boost
                if dated is not None and dated[0] <= ts < dated[1]:
                    lift += cfg.date_boost
                    parts["date"] = cfg.date_boost
            scores[r] *= lift
            if parts:
                hits.setdefault(r, _Hit()).boosts.update(parts)

        return scores

    def _session_prior(
        self,
        part: Partition,
        scores: dict[int, float],
        q_tokens: list[str],
        weights: dict[str, float] | None,
        q: np.ndarray,
        mask: np.ndarray,
        hits: dict[int, _Hit],
    ) -> dict[int, float]:
        """Lift items of the sessions that match the query best, as whole sessions.

        Sessions are ranked three ways: BM25 over each session's turns taken as one document
        (the words of a multi-part question are often spread over a session's turns), cosine
        to the centroid of its turn vectors, and the sum of its best items' scores. The three
        rankings are fused by reciprocal rank and every item is multiplied by
        ``1 + session_boost x`` (its session's fused score / the best one's).
        """
        cfg = self.config
        session = part.session.data
        in_play = {int(session[r]) for r in scores}
        lists: list[tuple[float, list[int]]] = []
        if cfg.session_turn_weight:
            per_session: dict[int, list[float]] = {}
            for r, s in scores.items():
                per_session.setdefault(int(session[r]), []).append(s)
            turn_s = {key: sum(sorted(v, reverse=True)[: cfg.session_top]) for key, v in per_session.items()}
            lists.append((cfg.session_turn_weight, sorted(turn_s, key=lambda x: -turn_s[x])))
        lengths = part.session_lengths()
        if cfg.session_lexical_weight and lengths:
            playing = np.zeros(len(part.sessions), dtype=np.bool_)
            playing[list(in_play)] = True
            n = part.n
            member = mask[:n] & (part.kind.data[:n] == 0) & playing[session[:n]]
            lex_s = part.group_bm25(q_tokens, member, lengths, weights)
            lists.append((cfg.session_lexical_weight, sorted(lex_s, key=lambda x: -lex_s[x])))
        if cfg.session_dense_weight:
            keys, rows = [], []
            # Only sessions in play are ranked: their order among themselves is the same
            # whether or not the others are scored too, and a large partition has thousands.
            for g, members in part.session_rows.items():
                if g not in in_play:
                    continue
                vecs = [
                    part.vectors[r]
                    for r in members
                    if part.has_vec.data[r] and part.flags["indexed"].data[r] != 0
                ]
                if vecs:
                    c = np.mean(vecs, axis=0)
                    keys.append(g)
                    rows.append(c / (float(np.linalg.norm(c)) or 1.0))
            if rows:
                sims = np.stack(rows) @ q
                order = [keys[j] for j in np.argsort(-sims, kind="stable")]
                lists.append((cfg.session_dense_weight, order))
        fused: dict[int, float] = {}
        for w, ranking in lists:
            for rank, key in enumerate(ranking):
                fused[key] = fused.get(key, 0.0) + w / (cfg.session_rrf_k + rank + 1)
        best = max(fused.values(), default=0.0)
        if best <= 0:
            return fused
        for r in scores:
            lift = 1.0 + cfg.session_boost * fused.get(int(session[r]), 0.0) / best
            scores[r] *= lift
            if lift != 1.0:
                hits.setdefault(r, _Hit()).boosts["session"] = lift - 1.0
        return fused

    @staticmethod
    def _with_derived(
        part: Partition, scores: dict[int, float], picked: list[tuple[int, float]], k: int
    ) -> list[tuple[int, float, int]]:
        """The best facts/episodes the picked list lacks, for the context: ``(row, score, position)``.

        In the flat list a derived item waits for its source turns (see :meth:`_select`), so
        few make it; the context offers up to ``k`` of them by their own score, each placed
        before the first item that scored lower (``position`` counts picked items before it).
        """
        have = {r for r, _ in picked}
        derived = [(r, s) for r, s in scores.items() if part.is_derived(r) and r not in have]
        derived = sorted(derived, key=lambda x: (-x[1], part.ids[x[0]]))[:k]
        out = []
        pos = 0
        for r, s in derived:
            while pos < len(picked) and picked[pos][1] >= s:
                pos += 1
            out.append((r, round(s, 6), pos))
        return out

    @staticmethod
    def _merge_derived(items: list[MemoryItem], extra: list[tuple[MemoryItem, int]]) -> list[MemoryItem]:
        merged: list[MemoryItem] = []
        at = 0
        for x, before in extra:
            while at < len(items) and at < before:
                merged.append(items[at])
                at += 1
            merged.append(x)
        return merged + items[at:]

    @staticmethod
    def _anchors(
        part: Partition, row: int, keep: Callable[[int], bool], memo: dict[int, list[int]]
    ) -> list[int]:
        """The source turns of a derived item that exist and pass the search's filter (memoised)."""
        srcs = part.sources.get(row)
        if not srcs:
            return []
        got = memo.get(row)
        if got is None:
            me = part.ids[row]
            got = memo[row] = [
                j for s in srcs if s != me and (j := part.row_of.get(s)) is not None and keep(j)
            ]
        return got

    def _select(
        self,
        part: Partition,
        scores: dict[int, float],
        k: int,
        keep: Callable[[int], bool],
        memo: dict[int, list[int]],
    ) -> list[tuple[int, float]]:
        """Top ``k`` rows, near-duplicates dropped, optionally spread over sessions.

        A fact or episode whose source turns are in scope is picked only once all of them
        have been picked (its score already lifted them): it then sits right after its
        sources, so reading derived items as their source turns leaves the turn order as
        it is. Derived items without sources in scope (e.g. ``kinds=["fact"]``) rank freely.
        """
        cfg = self.config
        ids = part.ids
        session = part.session.data
        pool = sorted(scores.items(), key=lambda x: (-x[1], ids[x[0]]))
        anchors = {r: a for r, _ in pool if (a := self._anchors(part, r, keep, memo))}
        picked: set[int] = set()
        kept: list[frozenset[int]] = []
        seen_norm: set[int] = set()
        per_session: dict[int, int] = {}
        out: list[tuple[int, float]] = []
        while pool and len(out) < k:
            # The head of the list is spread harder over sessions than the rest.
            div = cfg.head_diversity if len(out) < cfg.head_size else cfg.session_diversity
            # Greedy pick: the best score after the session discount (an anchored derived item
            # adds no turn, so it is not discounted). The pool is sorted and a discount never
            # raises a score, so the scan stops at the first raw score below the best value.
            at, best = -1, -1.0
            for n, (j, raw) in enumerate(pool):
                if raw <= best:
                    break
                a = anchors.get(j)
                if a is not None and not picked.issuperset(a):
                    continue  # waits for its source turns
                v = raw if a is not None or div >= 1.0 else raw * div ** per_session.get(int(session[j]), 0)
                if v > best:
                    at, best = n, v
            if at < 0:
                break
            r, s = pool.pop(at)
            norm = int(part.norm_hash.data[r])
            if norm in seen_norm:
                continue
            tokens = frozenset(part.token_ids(r))
            # Jaccard <= min/max of the sizes: only sets of similar size can be near-duplicates.
            nt = len(tokens)
            if tokens and any(
                len(tokens & o) / len(tokens | o) >= cfg.dedup_jaccard
                for o in kept
                if o and min(nt, len(o)) / max(nt, len(o)) >= cfg.dedup_jaccard
            ):
                continue
            seen_norm.add(norm)
            kept.append(tokens)
            picked.add(r)
            if r not in anchors:
                g = int(session[r])
                per_session[g] = per_session.get(g, 0) + 1
                # Reported scores follow the returned order: an item picked ahead of a
                # better-scored one (to spread the head over sessions) reports its discounted
                # score, capped by the score of the item above it.
                s *= div ** (per_session[g] - 1) if div < 1.0 else 1.0
            if out:
                s = min(s, out[-1][1])
            out.append((r, round(s, 6)))
        return out


def _at_or_above_nth(values: np.ndarray, n: int) -> np.ndarray:
    """Positions of the values at or above the ``n``-th largest.

    Every tie at the cut is kept, so the caller's final sort (ties by id) decides which of them
    make the first ``n``.
    """
    if len(values) <= n:
        return np.arange(len(values))
    cut = np.partition(values, len(values) - n)[len(values) - n]
    return np.flatnonzero(values >= cut)


def expand_to_turns(items: list[MemoryItem]) -> list[str]:
    """Turn ids in rank order: derived items expand to their source turns, duplicates dropped."""
    out: dict[str, None] = {}
    for item in items:
        if item.kind == "turn":
            out.setdefault(item.id, None)
        elif item.kind in DERIVED_KINDS:
            for sid in item.source_ids:
                out.setdefault(sid, None)
    return list(out)


__all__ = ["RetrievalConfig", "Retriever", "expand_to_turns", "format_item", "pack_context"]
