"""Ranking memories for a query: hybrid dense + lexical retrieval, shaped into results or a context.

Pipeline of :meth:`Retriever.search` (no LLM anywhere):

1. **Candidates.** Dense: Chroma nearest neighbours under the engine's ``where`` clause,
   for the query without the speaker names it mentions (names are in every turn).
   Lexical: BM25 over a per-tenant in-memory index, filtered by evaluating the *same*
   ``where`` clause in Python (:mod:`mem_adapters.where`).
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

The lexical index is derived data; Chroma stays the source of truth. It is kept in step by
the ``on_*`` hooks the engine calls on every write, delete, expiry purge and erase, and is
rebuilt from Chroma when missing or when the tenant's generation token (changed by every
write from any process) differs from the one it was built at.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from . import records as rec
from .lexical import BM25Index, tokenize
from .models import MemoryItem, SearchResult
from .temporal import absolute_window, is_temporal_question, mentions_time, relative_window
from .where import compile_where

if TYPE_CHECKING:
    from .async_engine import AsyncMemoryEngine

logger = logging.getLogger(__name__)

DERIVED_KINDS = frozenset({"fact", "episode"})


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
        exact_dense_max: Up to this many records per tenant, dense scores are computed exactly
            in-process from the embeddings Chroma stores (a derived copy kept in step like the
            lexical index; one matrix product, no HNSW approximation); above it Chroma's
            vector index is queried.
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
    exact_dense_max: int = 20000
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


@dataclass
class _Doc:
    id: str
    text: str
    meta: dict[str, Any]
    kind: str
    session: tuple[Any, ...]
    seq: int
    role: str
    tokens: frozenset[str]
    norm: str
    timely: bool
    sources: tuple[str, ...] = ()


_FIRST_PERSON = re.compile(r"\b(?:i|me|my|mine|myself)\b", re.IGNORECASE)
_USER_ROLES = frozenset({"user", "human"})  # first words of roles, lower-cased (TenantIndex.roles)


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


def _normalise(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def _sources(meta: dict[str, Any]) -> tuple[str, ...]:
    """A derived record's ``source_ids`` (stored as a JSON list); ``()`` when absent or unreadable."""
    raw = meta.get("source_ids")
    if not raw:
        return ()
    try:
        got = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        logger.warning("unreadable source_ids %r", raw)
        return ()
    return tuple(str(x) for x in got) if isinstance(got, list) else ()


class TenantIndex:
    """Everything precomputed for one tenant: BM25 postings, documents, session order."""

    def __init__(self, token: str | None) -> None:
        self.token = token
        self.unverified = False  # this process wrote since the last check against Chroma
        self.docs: dict[str, _Doc] = {}
        self.bm25 = BM25Index()
        self.roles: dict[str, int] = {}
        self._sessions: dict[tuple[Any, ...], list[str]] = {}
        self._order_dirty = True
        self._position: dict[str, tuple[tuple[Any, ...], int]] = {}
        self.latest_ts = 0.0
        self.vectors: dict[str, np.ndarray] = {}
        self.need_vectors: set[str] = set()  # written records whose embedding is not fetched yet
        self._matrix: tuple[list[str], np.ndarray] | None = None
        self._session_stats: tuple[dict[tuple[Any, ...], int], list[tuple[Any, ...]], np.ndarray] | None = (
            None
        )
        self.exact = True  # built with every embedding (see RetrievalConfig.exact_dense_max)
        self.derived = 0  # facts and episodes held

    def set_vector(self, doc_id: str, vector: Any) -> None:
        """Store a record's embedding, unit-normalised (the collections use cosine space)."""
        if doc_id not in self.docs:
            return
        v = np.asarray(vector, dtype=np.float32)
        norm = float(np.linalg.norm(v))
        self.vectors[doc_id] = v / norm if norm > 0 else v
        self.need_vectors.discard(doc_id)
        self._matrix = None
        self._session_stats = None

    def matrix(self) -> tuple[list[str], np.ndarray]:
        """Ids and stacked unit vectors of every indexed record that has one."""
        if self._matrix is None:
            ids = [i for i in self.vectors if self.docs[i].meta.get("indexed", True)]
            mat = np.stack([self.vectors[i] for i in ids]) if ids else np.zeros((0, 1), np.float32)
            self._matrix = (ids, mat)
        return self._matrix

    def upsert(self, doc_id: str, text: str, meta: dict[str, Any]) -> None:
        """Add or replace one record."""
        self.remove(doc_id)
        kind = meta.get("kind", "raw")
        role = str(meta.get("role") or "").strip().lower()
        session = (meta.get("sub_tenant_id"), meta.get("user_id"), meta.get("agent_id"),
                   meta.get("session_id"), meta.get("sub_session_id"))  # fmt: skip
        tokens = tokenize(text)
        doc = _Doc(doc_id, text or "", dict(meta), kind, session, int(meta.get("seq") or 0), role,
                   frozenset(tokens), _normalise(text or ""), mentions_time(text or ""),
                   _sources(meta) if kind in DERIVED_KINDS else ())  # fmt: skip
        self.docs[doc_id] = doc
        if kind in DERIVED_KINDS:
            self.derived += 1
        if meta.get("indexed", True):
            self.bm25.add(doc_id, text or "")
        if role:
            first = role.split()[0]
            self.roles[first] = self.roles.get(first, 0) + 1
        if kind == "turn":
            self._sessions.setdefault(session, []).append(doc_id)
            self._order_dirty = True
            self._session_stats = None
        self.need_vectors.add(doc_id)
        ts = meta.get("ts")
        if isinstance(ts, int | float) and ts > self.latest_ts:
            self.latest_ts = float(ts)

    def remove(self, doc_id: str) -> None:
        """Drop one record (unknown ids are ignored)."""
        doc = self.docs.pop(doc_id, None)
        if doc is None:
            return
        self.bm25.remove(doc_id)
        if doc.kind in DERIVED_KINDS:
            self.derived -= 1
        self.need_vectors.discard(doc_id)
        if self.vectors.pop(doc_id, None) is not None:
            self._matrix = None
        self._session_stats = None
        if doc.role:
            first = doc.role.split()[0]
            left = self.roles.get(first, 0) - 1
            if left > 0:
                self.roles[first] = left
            else:
                self.roles.pop(first, None)
        if doc.kind == "turn":
            ids = self._sessions.get(doc.session)
            if ids is not None and doc_id in ids:
                ids.remove(doc_id)
                self._order_dirty = True

    def session_stats(self) -> tuple[dict[tuple[Any, ...], int], list[tuple[Any, ...]], np.ndarray]:
        """Per session of indexed turns: token length, and the unit centroid of its turn vectors.

        Returns:
            ``(lengths, keys, centroids)``: lengths by session key; the sessions that have
            vectors and their stacked unit centroids (one row per key), for session-level
            BM25 and dense scores.
        """
        if self._session_stats is None:
            lengths: dict[tuple[Any, ...], int] = {}
            keys: list[tuple[Any, ...]] = []
            rows: list[np.ndarray] = []
            for session, ids in self._sessions.items():
                live = [i for i in ids if self.docs[i].meta.get("indexed", True)]
                if not live:
                    continue
                lengths[session] = sum(self.bm25.doc_len(i) for i in live)
                vecs = [self.vectors[i] for i in live if i in self.vectors]
                if vecs:
                    c = np.mean(vecs, axis=0)
                    keys.append(session)
                    rows.append(c / (float(np.linalg.norm(c)) or 1.0))
            mat = np.stack(rows) if rows else np.zeros((0, 1), np.float32)
            self._session_stats = (lengths, keys, mat)
        return self._session_stats

    def neighbours(self, doc_id: str) -> list[str]:
        """The turns just before and after a turn in its session (write order)."""
        if self._order_dirty:
            self._position = {}
            for session, ids in self._sessions.items():
                ids.sort(key=lambda i: (self.docs[i].seq, i))
                for n, i in enumerate(ids):
                    self._position[i] = (session, n)
            self._order_dirty = False
        pos = self._position.get(doc_id)
        if pos is None:
            return []
        ids = self._sessions[pos[0]]
        return [ids[j] for j in (pos[1] - 1, pos[1] + 1) if 0 <= j < len(ids)]


def _fact_valid(meta: dict[str, Any], as_of: float) -> bool:
    created = meta.get("created_at")
    superseded = meta.get("superseded_at", rec.NEVER)
    if not isinstance(superseded, int | float):
        superseded = rec.NEVER
    return (not isinstance(created, int | float) or created <= as_of) and as_of < superseded


def _superseded(meta: dict[str, Any]) -> bool:
    return meta.get("status") == "superseded" or meta.get("is_latest") is False


class Retriever:
    """Hybrid retrieval over a tenant's memory collection.

    Args:
        engine: The engine whose store is searched.
        config: Ranking knobs (see :class:`RetrievalConfig`).
    """

    def __init__(self, engine: AsyncMemoryEngine, config: RetrievalConfig | None = None) -> None:
        self.engine = engine
        self.config = config or RetrievalConfig()
        self._indexes: dict[str, TenantIndex] = {}
        self._building: dict[str, list[tuple[Any, ...]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    # ------------------------------------------------------------------ index maintenance

    def on_upsert(
        self,
        tenant_id: str,
        ids: list[str],
        texts: list[str],
        metas: list[dict[str, Any]],
        embeddings: list[list[float]] | None = None,
    ) -> None:
        """Records were written: index them (and log them for a rebuild in flight).

        ``embeddings``, when the engine passes them, spare a fetch from Chroma at the next search.
        """
        idx = self._indexes.get(tenant_id)
        if idx is not None:
            for n, (i, t, m) in enumerate(zip(ids, texts, metas, strict=True)):
                idx.upsert(i, t, m)
                if embeddings is not None and idx.exact:
                    idx.set_vector(i, embeddings[n])
        if tenant_id in self._building:
            self._building[tenant_id].append(("upsert", list(ids), list(texts), list(metas)))

    def on_delete(self, tenant_id: str, ids: list[str]) -> None:
        """Records were deleted."""
        idx = self._indexes.get(tenant_id)
        if idx is not None:
            for i in ids:
                idx.remove(i)
        if tenant_id in self._building:
            self._building[tenant_id].append(("delete", list(ids)))

    def on_generation(self, tenant_id: str, token: str, previous: str | None = None) -> None:
        """This process wrote a new store generation: the index already holds that write.

        ``previous`` is the token read just before the write: if it is not the one the index
        was built at, someone else wrote in between, so the index is rebuilt on next use.
        """
        idx = self._indexes.get(tenant_id)
        if idx is not None:
            if previous is not None and previous != idx.token:
                idx.token = None
            else:
                idx.token = token
                # Without a previous token (or a racing writer in this process) double-check.
                idx.unverified = idx.unverified or previous is None
        if tenant_id in self._building:
            self._building[tenant_id].append(("generation", token))

    def on_drop(self, tenant_id: str) -> None:
        """A tenant was erased."""
        self._indexes.pop(tenant_id, None)

    def on_reembed(self) -> None:
        """The embedder changed (the collections were rewritten): rebuild on next use."""
        self._indexes.clear()

    async def index(self, tenant_id: str) -> TenantIndex:
        """The tenant's lexical index, rebuilt from Chroma when missing or stale."""
        idx = self._indexes.get(tenant_id)
        token = await self.engine.generation(tenant_id)
        if idx is not None and idx.token == token:
            if not idx.unverified:
                return idx
            mem = await self.engine._mem(tenant_id)
            if await mem.count() == len(idx.docs):
                idx.unverified = False
                return idx
            logger.info("lexical index of %r disagrees with Chroma's count; rebuilding", tenant_id)
        lock = self._locks.setdefault(tenant_id, asyncio.Lock())
        async with lock:
            idx = self._indexes.get(tenant_id)
            if idx is not None and idx.token == token and not idx.unverified:
                return idx
            return await self._rebuild(tenant_id)

    async def _rebuild(self, tenant_id: str) -> TenantIndex:
        t0 = time.perf_counter()
        self._building[tenant_id] = []
        try:
            # Token first: a write landing after this read makes the token differ next time.
            token = await self.engine.generation(tenant_id)
            mem = await self.engine._mem(tenant_id)
            exact = await mem.count() <= self.config.exact_dense_max
            include = ["documents", "metadatas", "embeddings"] if exact else ["documents", "metadatas"]
            got = await mem.get(include=include)
            idx = TenantIndex(token)
            idx.exact = exact
            for n, (i, d, m) in enumerate(zip(got["ids"], got["documents"], got["metadatas"], strict=True)):
                idx.upsert(i, d or "", m or {})
                if exact:
                    idx.set_vector(i, got["embeddings"][n])
            # Replay this process's writes that raced with the read (idempotent).
            for op in self._building[tenant_id]:
                if op[0] == "upsert":
                    for i, d, m in zip(op[1], op[2], op[3], strict=True):
                        idx.upsert(i, d, m)
                elif op[0] == "delete":
                    for i in op[1]:
                        idx.remove(i)
                else:
                    idx.token = op[1]
            self._indexes[tenant_id] = idx
        finally:
            self._building.pop(tenant_id, None)
        logger.debug("rebuilt lexical index of %r: %d records in %.1f ms", tenant_id,
                     len(idx.docs), (time.perf_counter() - t0) * 1000)  # fmt: skip
        return idx

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
    ) -> SearchResult:
        """Rank the live records matching ``where`` for ``query`` (see the module docstring)."""
        cfg = self.config
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        live = self.engine.live(where)
        keep_meta = compile_where(live)
        raw_words = set(re.findall(r"[a-z]+", query.lower()))
        # The dense query leaves out the speaker names it mentions (see RetrievalConfig); the
        # speakers are known from the cached index, checked again once it is fresh.
        known = self._indexes.get(tenant_id)
        guess = _named(known.roles, raw_words) if known and cfg.dense_without_speakers else set()
        embed_task = asyncio.ensure_future(self.engine.embed_query(_without_speakers(query, guess)))
        try:
            idx = await self.index(tenant_id)
        except BaseException:
            embed_task.cancel()
            raise
        t1 = time.perf_counter()
        timings["index_ms"] = (t1 - t0) * 1000

        # Lexical candidates (runs while the query is being embedded).
        docs = idx.docs
        speakers = _named(idx.roles, raw_words)
        q_tokens = tokenize(query)
        speaker_tokens = {t for t in q_tokens if t in {tokenize(s)[0] for s in speakers if tokenize(s)}}
        weights = dict.fromkeys(speaker_tokens, cfg.speaker_term_weight) if speaker_tokens else None
        # Facts/episodes compete with turns for candidate slots only within their own class
        # (see _score): with derived records around, take twice as many, cut per class later.
        widen = 2 if idx.derived else 1
        lexical = idx.bm25.search(q_tokens, widen * cfg.lexical_candidates,
                                  keep=lambda i: keep_meta(docs[i].meta), weights=weights)  # fmt: skip
        t2 = time.perf_counter()
        timings["lexical_ms"] = (t2 - t1) * 1000

        vector = await embed_task
        if guess != speakers and cfg.dense_without_speakers:
            # The index was (re)built meanwhile and knows other speakers: embed again.
            vector = await self.engine.embed_query(_without_speakers(query, speakers))
        t3 = time.perf_counter()
        timings["embed_ms"] = (t3 - t0) * 1000  # the embedding ran alongside the steps above
        mem = await self.engine._mem(tenant_id)
        if idx.exact and len(docs) <= cfg.exact_dense_max:
            if idx.need_vectors:  # records written since the last search: fetch their vectors
                want = list(idx.need_vectors)
                got = await mem.get(ids=want, include=["embeddings"])
                for i, v in zip(got["ids"], got["embeddings"], strict=True):
                    idx.set_vector(i, v)
                idx.need_vectors.difference_update(want)
            dense = self._exact_dense(idx, vector, keep_meta, widen * cfg.dense_candidates)
        else:
            got = await mem.query(query_embeddings=[vector], n_results=widen * cfg.dense_candidates,
                                  where=live, include=["distances"])  # fmt: skip
            dense = list(zip(got["ids"][0], got["distances"][0], strict=True))
            missing = [i for i, _ in dense if i not in docs]
            if missing:  # the index lags Chroma (a concurrent write): take the records from Chroma
                extra = await mem.get(ids=missing, include=["documents", "metadatas"])
                for i, d, m in zip(extra["ids"], extra["documents"], extra["metadatas"], strict=True):
                    idx.upsert(i, d or "", m or {})
        t4 = time.perf_counter()
        timings["dense_ms"] = (t4 - t3) * 1000

        memo: dict[str, list[str]] = {}  # derived id -> its source turns in scope, for this search
        # "What should I avoid?" asked of an assistant's memory is about its user: first-person
        # questions lift the user's turns as a named speaker's are lifted.
        if _FIRST_PERSON.search(query):
            speakers = speakers | (_USER_ROLES & idx.roles.keys())
        scores = self._score(idx, query, dense, lexical, speakers, keep_meta, as_of, memo)
        if scores and (cfg.session_lexical_weight or cfg.session_dense_weight or cfg.session_turn_weight):
            self._session_prior(idx, scores, q_tokens, weights, vector, keep_meta)
        items = self._select(idx, scores, k, keep_meta, memo)
        timings["rank_ms"] = (time.perf_counter() - t4) * 1000
        result = SearchResult(query=query, mode=mode, results=items, stage_timings=timings)
        if mode == "context":
            result.context, used = pack_context(self._with_derived(idx, scores, items, k), char_budget)
            result.facts = [i for i in used if i.kind == "fact"]
            result.episodes = [i for i in used if i.kind == "episode"]
        timings["total_ms"] = (time.perf_counter() - t0) * 1000
        result.stage_timings = timings  # pydantic copied the dict at construction
        return result

    @staticmethod
    def _exact_dense(idx: TenantIndex, vector: list[float], keep: Any, n: int) -> list[tuple[str, float]]:
        """Cosine distances of the ``n`` nearest records passing ``keep``, computed exactly."""
        ids, mat = idx.matrix()
        if not ids:
            return []
        q = np.asarray(vector, dtype=np.float32)
        q = q / (float(np.linalg.norm(q)) or 1.0)
        sims = mat @ q
        # Look at a few times n first; fall back to every record when the filter is selective.
        for width in (min(len(ids), 4 * n), len(ids)):
            top = np.argpartition(-sims, width - 1)[:width] if width < len(ids) else np.arange(len(ids))
            top = top[np.argsort(-sims[top], kind="stable")]
            out = [(ids[j], 1.0 - float(sims[j])) for j in top if keep(idx.docs[ids[j]].meta)][:n]
            if len(out) >= n or width == len(ids):
                return out
        return []

    def _score(
        self,
        idx: TenantIndex,
        query: str,
        dense: list[tuple[str, float]],
        lexical: list[tuple[str, float]],
        speakers: set[str],
        keep_meta: Any,
        as_of: float | None,
        anchors: dict[str, list[str]],
    ) -> dict[str, float]:
        cfg = self.config
        docs = idx.docs
        scores: dict[str, float] = {}
        # Ranks are counted within a class (derived vs the rest): a fact ranked above a turn
        # does not push the turn down the fusion, so enrichment cannot cost turns their rank.
        for hits, weight, n in ((dense, cfg.dense_weight, cfg.dense_candidates),
                                (lexical, cfg.lexical_weight, cfg.lexical_candidates)):  # fmt: skip
            ranks = [0, 0]
            for i, _ in hits:
                d = docs.get(i)
                if d is None:
                    continue
                c = int(d.kind in DERIVED_KINDS)
                if ranks[c] < n:
                    scores[i] = scores.get(i, 0.0) + weight / (cfg.rrf_k + ranks[c] + 1)
                    ranks[c] += 1
        if not scores:
            return scores

        # Versions: validity at as_of, or latest-first.
        for i in list(scores):
            meta = docs[i].meta
            if docs[i].kind in DERIVED_KINDS and as_of is not None:
                if not _fact_valid(meta, as_of):
                    del scores[i]
            elif docs[i].kind == "fact" and _superseded(meta):
                successor = meta.get("superseded_by")
                if successor and successor in scores:
                    del scores[i]
                else:
                    scores[i] *= cfg.superseded_penalty

        # Derived items are evidence for the turns they were drawn from: lift those turns.
        if cfg.derived_share:
            for i, s in list(scores.items()):  # a snapshot: lifted turns do not lift further
                in_scope = self._anchors(idx, i, keep_meta, anchors)
                for j in in_scope:
                    scores[j] = scores.get(j, 0.0) + cfg.derived_share * s / len(in_scope)

        # Neighbours: adjacent turns share context; pass them part of the score.
        # Only turns pass score on, so facts/episodes do not use up the neighbour_sources slots.
        turns = [(i, s) for i, s in scores.items() if docs[i].kind == "turn"]
        top = sorted(turns, key=lambda x: -x[1])[: cfg.neighbour_sources]
        passed: dict[str, float] = {}
        for i, s in top:
            if docs[i].kind != "turn":
                continue
            for j in idx.neighbours(i):
                if keep_meta(docs[j].meta):
                    passed[j] = max(passed.get(j, 0.0), cfg.neighbour_share * s)
        for j, s in passed.items():
            scores[j] = scores.get(j, 0.0) + s

        temporal = is_temporal_question(query)
        window = relative_window(query, idx.latest_ts) if idx.latest_ts else None
        dated = absolute_window(query, idx.latest_ts or None) if cfg.date_boost else None
        for i in scores:
            d = docs[i]
            lift = 1.0
            if speakers and d.role and d.role.split()[0] in speakers:
                lift += cfg.speaker_boost
            if temporal and d.timely:
                lift += cfg.time_boost
            ts = d.meta.get("ts")
            if isinstance(ts, int | float):
                if window is not None and window[0] <= ts <= window[1]:
                    lift += cfg.window_boost
                if dated is not None and dated[0] <= ts < dated[1]:
                    lift += cfg.date_boost
            scores[i] *= lift

        return scores

    def _session_prior(
        self,
        idx: TenantIndex,
        scores: dict[str, float],
        q_tokens: list[str],
        weights: dict[str, float] | None,
        vector: list[float],
        keep_meta: Any,
    ) -> dict[tuple[Any, ...], float]:
        """Lift items of the sessions that match the query best, as whole sessions.

        Sessions are ranked three ways: BM25 over each session's turns taken as one document
        (the words of a multi-part question are often spread over a session's turns), cosine
        to the centroid of its turn vectors, and the sum of its best items' scores. The three
        rankings are fused by reciprocal rank and every item is multiplied by
        ``1 + session_boost x`` (its session's fused score / the best one's).
        """
        cfg = self.config
        docs = idx.docs
        in_play = {docs[i].session for i in scores}
        lists: list[tuple[float, list[tuple[Any, ...]]]] = []
        if cfg.session_turn_weight:
            per_session: dict[tuple[Any, ...], list[float]] = {}
            for i, s in scores.items():
                per_session.setdefault(docs[i].session, []).append(s)
            turn_s = {key: sum(sorted(v, reverse=True)[: cfg.session_top]) for key, v in per_session.items()}
            lists.append((cfg.session_turn_weight, sorted(turn_s, key=lambda x: -turn_s[x])))
        lengths, keys, centroids = idx.session_stats()
        if cfg.session_lexical_weight and lengths:
            kept: dict[str, bool] = {}

            def group_of(doc_id: str) -> tuple[Any, ...] | None:
                d = docs.get(doc_id)
                if d is None or d.kind != "turn" or d.session not in in_play:
                    return None
                ok = kept.get(doc_id)
                if ok is None:
                    ok = kept[doc_id] = bool(keep_meta(d.meta))
                return d.session if ok else None

            lex_s = idx.bm25.group_scores(q_tokens, group_of, lengths, weights)
            lists.append((cfg.session_lexical_weight, sorted(lex_s, key=lambda x: -lex_s[x])))
        if cfg.session_dense_weight and keys:
            q = np.asarray(vector, dtype=np.float32)
            sims = centroids @ (q / (float(np.linalg.norm(q)) or 1.0))
            order = [keys[j] for j in np.argsort(-sims, kind="stable") if keys[j] in in_play]
            lists.append((cfg.session_dense_weight, order))
        fused: dict[tuple[Any, ...], float] = {}
        for w, ranking in lists:
            for rank, key in enumerate(ranking):
                fused[key] = fused.get(key, 0.0) + w / (cfg.session_rrf_k + rank + 1)
        best = max(fused.values(), default=0.0)
        if best <= 0:
            return fused
        for i in scores:
            scores[i] *= 1.0 + cfg.session_boost * fused.get(docs[i].session, 0.0) / best
        return fused

    @staticmethod
    def _with_derived(
        idx: TenantIndex, scores: dict[str, float], items: list[MemoryItem], k: int
    ) -> list[MemoryItem]:
        """The items to pack into a context: ``items`` plus the best facts/episodes they lack.

        In the flat list a derived item waits for its source turns (see :meth:`_select`), so
        few make it; the context offers up to ``k`` of them by their own score, each placed
        before the first item that scored lower.
        """
        have = {i.id for i in items}
        derived = [(i, s) for i, s in scores.items() if idx.docs[i].kind in DERIVED_KINDS and i not in have]
        derived = sorted(derived, key=lambda x: (-x[1], x[0]))[:k]
        if not derived:
            return items
        merged: list[MemoryItem] = []
        queue = list(items)
        for i, s in derived:
            while queue and (queue[0].score or 0.0) >= s:
                merged.append(queue.pop(0))
            d = idx.docs[i]
            merged.append(rec.to_item(d.id, d.text, d.meta, score=round(s, 6)))
        return merged + queue

    @staticmethod
    def _anchors(idx: TenantIndex, doc_id: str, keep_meta: Any, memo: dict[str, list[str]]) -> list[str]:
        """The source turns of a derived item that exist and pass the search's filter (memoised)."""
        d = idx.docs[doc_id]
        if not d.sources:
            return []
        got = memo.get(doc_id)
        if got is None:
            docs = idx.docs
            got = memo[doc_id] = [
                j for j in d.sources if j in docs and j != doc_id and keep_meta(docs[j].meta)
            ]
        return got

    def _select(
        self, idx: TenantIndex, scores: dict[str, float], k: int, keep_meta: Any, memo: dict[str, list[str]]
    ) -> list[MemoryItem]:
        """Top ``k`` items, near-duplicates dropped, optionally spread over sessions.

        A fact or episode whose source turns are in scope is picked only once all of them
        have been picked (its score already lifted them): it then sits right after its
        sources, so reading derived items as their source turns leaves the turn order as
        it is. Derived items without sources in scope (e.g. ``kinds=["fact"]``) rank freely.
        """
        cfg = self.config
        pool = sorted(scores.items(), key=lambda x: (-x[1], x[0]))
        anchors = {i: a for i, _ in pool if (a := self._anchors(idx, i, keep_meta, memo))}
        picked: set[str] = set()
        kept: list[_Doc] = []
        seen_norm: set[str] = set()
        per_session: dict[tuple[Any, ...], int] = {}
        out: list[MemoryItem] = []
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
                v = (
                    raw
                    if a is not None or div >= 1.0
                    else raw * div ** per_session.get(idx.docs[j].session, 0)
                )
                if v > best:
                    at, best = n, v
            if at < 0:
                break
            i, s = pool.pop(at)
            d = idx.docs[i]
            if d.norm in seen_norm:
                continue
            if d.tokens and any(
                len(d.tokens & o.tokens) / len(d.tokens | o.tokens) >= cfg.dedup_jaccard
                for o in kept
                if o.tokens
            ):
                continue
            seen_norm.add(d.norm)
            kept.append(d)
            picked.add(i)
            if i not in anchors:
                per_session[d.session] = per_session.get(d.session, 0) + 1
                # Reported scores follow the returned order: an item picked ahead of a
                # better-scored one (to spread the head over sessions) reports its discounted
                # score, capped by the score of the item above it.
                s *= div ** (per_session[d.session] - 1) if div < 1.0 else 1.0
            if out and out[-1].score is not None:
                s = min(s, out[-1].score)
            out.append(rec.to_item(d.id, d.text, d.meta, score=round(s, 6)))
        return out


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


__all__ = ["RetrievalConfig", "Retriever", "TenantIndex", "expand_to_turns", "format_item", "pack_context"]
