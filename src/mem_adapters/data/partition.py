"""One partition of the derived search index, held in compact columns.

A partition is every record of one scope (a user of a tenant, or a whole tenant) as search
needs it: the text, the engine fields that filters and ranking read (as numpy columns and
small code tables, not a dict per record), the unit embedding (one contiguous float32
matrix) and BM25 postings (per-term ``array`` of rows and term frequencies), plus the few
fields an item shows that are not columns, kept only for rows that have them. Caller
metadata is held as its exact JSON copy only; a filter on it is answered by Chroma (see
:meth:`Partition.mask`).

Rows are appended; a removed row is marked dead and reused by nothing, so row numbers stay
stable for the life of the partition (``compact`` is done by reloading it).
"""

from __future__ import annotations

import json
import math
import re
from array import array
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..lexical import tokenize
from ..temporal import mentions_time
from ..where import compile_where

DERIVED_KINDS = frozenset({"fact", "episode"})
_KINDS = ("turn", "fact", "episode", "raw", "chunk")
_KIND_CODE = {k: n for n, k in enumerate(_KINDS)}
_SCOPE_FIELDS = ("sub_tenant_id", "user_id", "agent_id", "session_id", "sub_session_id")
_NUM_FIELDS = ("ts", "seq", "expires_at", "created_at", "updated_at", "superseded_at", "rev", "version")
_ABSENT = np.iinfo(np.int64).min  # int columns: "field absent"
_BOOL_FIELDS = ("indexed", "is_latest")
# Engine fields a where clause may name that the columns answer exactly (Chroma semantics).
COLUMN_FIELDS = frozenset({"kind", "role", "status", *_SCOPE_FIELDS, *_NUM_FIELDS, *_BOOL_FIELDS})
_INT_FIELDS = frozenset({"seq", "rev", "version"})  # stored as ints in Chroma (float operands truncate)
# Fields a public item needs that are not columns: kept per row only when present (turns have
# none of them), so search builds its hits from the partition without reading Chroma again.
_EXTRA_FIELDS = ("tenant_id", "meta", "attrs", "supersedes", "parent_id", "source_ids", "caller_id")
BM25_K1, BM25_B = 1.2, 0.75


class _Codes:
    """Interned strings: value <-> small int code (``-1`` is "field absent")."""

    def __init__(self) -> None:
        self.values: list[str] = []
        self.code: dict[str, int] = {}

    def of(self, value: str) -> int:
        got = self.code.get(value)
        if got is None:
            got = self.code[value] = len(self.values)
            self.values.append(value)
        return got


class _Column:
    """A growable numpy column."""

    def __init__(self, dtype: Any, fill: Any) -> None:
        self.data = np.full(16, fill, dtype=dtype)
        self.fill = fill

    def trimmed(self, n: int) -> _Column:
        """A copy holding the first ``n`` values only."""
        out = _Column.__new__(_Column)
        out.data = self.data[: max(n, 1)].copy()
        out.fill = self.fill
        return out

    def grow(self, n: int) -> None:
        if n > len(self.data):
            new = np.full(max(n, 2 * len(self.data)), self.fill, dtype=self.data.dtype)
            new[: len(self.data)] = self.data
            self.data = new


class Partition:
    """Compact in-process index of one scope's records.

    Args:
        key: ``(tenant_id, user_id)``; ``user_id`` ``None`` for the whole tenant.
        dim: Embedding dimension (0 when vectors are not held: a candidate set).
    """

    def __init__(self, key: tuple[str, str | None], dim: int) -> None:
        self.key = key
        self.dim = dim
        self.ids: list[str] = []
        self.texts: list[str] = []
        self.row_of: dict[str, int] = {}
        self.revs: list[int] = []
        self.n = 0  # rows used (alive or dead)
        self.alive = _Column(np.bool_, False)
        self.kind = _Column(np.int8, -1)
        self.role = _Column(np.int32, -1)
        self.status = _Column(np.int32, -1)
        self.session = _Column(np.int32, -1)
        self.scope = {f: _Column(np.int32, -1) for f in _SCOPE_FIELDS}
        # seq and rev are nanosecond counters (~1.8e18): exact only as int64, never float.
        self.num = {
            f: _Column(np.int64, _ABSENT) if f in _INT_FIELDS else _Column(np.float64, np.nan)
            for f in _NUM_FIELDS
        }
        self.flags = {f: _Column(np.int8, -1) for f in _BOOL_FIELDS}  # -1 absent, 0/1
        self.timely = _Column(np.bool_, False)
        self.doc_len = _Column(np.int32, 0)
        self.has_vec = _Column(np.bool_, False)
        self.vectors = np.zeros((16, dim), dtype=np.float32)
        self.strings = _Codes()  # roles, statuses, scope values share one table
        self.sessions: list[tuple[int, ...]] = []
        self._session_code: dict[tuple[int, ...], int] = {}
        self.session_rows: dict[int, list[int]] = {}
        # Sessions whose turns need sorting into write order again: a write re-sorts its own
        # session at the next search, not every session of the partition.
        self._order_dirty: set[int] = set()
        self._position: dict[int, int] = {}
        self.role_first: dict[str, int] = {}  # first word of live roles, lower-cased -> count
        self.role_first_code: dict[int, str] = {}
        self.sources: dict[int, tuple[str, ...]] = {}
        self.superseded_by: dict[int, str] = {}
        self.extras: dict[int, dict[str, Any]] = {}
        self.postings: dict[str, tuple[array, array]] = {}
        # Each row's distinct tokens as term ids (one flat array + offsets) and a hash of its
        # normalised text: near-duplicate checks read these instead of re-tokenising.
        self.terms = _Codes()
        self.tok_flat = array("i")
        self.tok_start = array("q")
        self.norm_hash = _Column(np.int64, 0)
        self.df: dict[str, int] = {}
        self.n_indexed = 0
        self.total_len = 0
        self._latest_ts: float | None = None
        self.derived = 0
        self.watermark = 0  # highest rev applied
        self.loaded_at = 0  # rev clock reading when the partition was (re)loaded
        self.checked = 0  # rev clock reading when the last catch-up (or load) started
        self.version = 0  # bumped by every change: derived per-search caches key on it
        # (version, session lengths, their arrays): see session_lengths; a snapshot written
        # before the arrays were kept holds the first two only, and is taken as no cache.
        self._lengths: tuple[Any, ...] | None = None
        self._text_bytes = 0
        self._postings_len = 0

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without caches and without the spare capacity of the growable arrays."""
        state = dict(self.__dict__)
        state["vectors"] = self.vectors[: self.n].copy()
        for name, value in state.items():
            if isinstance(value, _Column):
                state[name] = value.trimmed(self.n)
            elif isinstance(value, dict) and value and isinstance(next(iter(value.values())), _Column):
                state[name] = {k: c.trimmed(self.n) for k, c in value.items()}
        return state

    # ------------------------------------------------------------------ writes

    def __len__(self) -> int:
        return len(self.row_of)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self.row_of

    def _grow(self, n: int) -> None:
        if n <= len(self.alive.data) and (not self.dim or n <= len(self.vectors)):
            return  # every column was grown together: one check covers them
        for col in (self.alive, self.kind, self.role, self.status, self.session, self.timely,
                    self.doc_len, self.has_vec, self.norm_hash, *self.scope.values(), *self.num.values(),
                    *self.flags.values()):  # fmt: skip
            col.grow(n)
        if self.dim and n > len(self.vectors):
            new = np.zeros((max(n, 2 * len(self.vectors)), self.dim), dtype=np.float32)
            new[: len(self.vectors)] = self.vectors
            self.vectors = new

    def upsert(self, doc_id: str, text: str, meta: Mapping[str, Any], vector: Any = None) -> int:
        """Add or replace one record; returns its row."""
        self.remove(doc_id)
        row = self.n
        self.n += 1
        self._grow(self.n)
        text = text or ""
        self.version += 1
        self.ids.append(doc_id)
        self.texts.append(text)
        self._text_bytes += len(text) + len(doc_id)
        rev = meta.get("rev")
        self.revs.append(int(rev) if isinstance(rev, int | float) and not isinstance(rev, bool) else 0)
        self.row_of[doc_id] = row
        self.alive.data[row] = True
        kind = str(meta.get("kind", "raw"))
        self.kind.data[row] = _KIND_CODE.get(kind, len(_KINDS))
        extra = {f: meta[f] for f in _EXTRA_FIELDS if f in meta}
        if extra.get("tenant_id") == self.key[0]:
            del extra["tenant_id"]
        if extra.get("meta") == "{}":
            del extra["meta"]
        if kind not in _KIND_CODE:
            extra["kind"] = meta.get("kind")
        if extra:
            self.extras[row] = extra
        role_raw = meta.get("role")
        self.role.data[row] = self.strings.of(role_raw) if isinstance(role_raw, str) else -1
        status = meta.get("status")
        self.status.data[row] = self.strings.of(status) if isinstance(status, str) else -1
        codes = []
        for f in _SCOPE_FIELDS:
            v = meta.get(f)
            c = self.strings.of(v) if isinstance(v, str) else -1
            self.scope[f].data[row] = c
            codes.append(c)
        for f in _NUM_FIELDS:
            v = meta.get(f)
            ok = isinstance(v, int | float) and not isinstance(v, bool)
            if f in _INT_FIELDS:
                self.num[f].data[row] = int(v) if ok and math.isfinite(v) else _ABSENT
            else:
                self.num[f].data[row] = float(v) if ok else np.nan
        for f in _BOOL_FIELDS:
            v = meta.get(f)
            self.flags[f].data[row] = int(v) if isinstance(v, bool) else -1
        self.timely.data[row] = mentions_time(text)
        session = tuple(codes)
        scode = self._session_code.get(session)
        if scode is None:
            scode = self._session_code[session] = len(self.sessions)
            self.sessions.append(session)
        self.session.data[row] = scode
        role = str(role_raw or "").strip().lower()
        if role:
            first = role.split()[0]
            self.role_first[first] = self.role_first.get(first, 0) + 1
            self.role_first_code[row] = first
        if kind in DERIVED_KINDS:
            self.derived += 1
            srcs = _sources(meta)
            if srcs:
                self.sources[row] = srcs
        if kind == "fact" and isinstance(meta.get("superseded_by"), str) and meta.get("superseded_by"):
            self.superseded_by[row] = meta["superseded_by"]
        if kind == "turn":
            self.session_rows.setdefault(scode, []).append(row)
            self._order_dirty.add(scode)
        tokens = tokenize(text)
        self.tok_start.append(len(self.tok_flat))
        self.tok_flat.extend(sorted({self.terms.of(t) for t in tokens}))
        self.norm_hash.data[row] = hash(normalise(text))
        if meta.get("indexed", True):
            terms: dict[str, int] = {}
            for t in tokens:
                terms[t] = terms.get(t, 0) + 1
            length = sum(terms.values())
            self.doc_len.data[row] = length
            self.total_len += length
            self.n_indexed += 1
            for term, tf in terms.items():
                post = self.postings.get(term)
                if post is None:
                    post = self.postings[term] = (array("i"), array("i"))
                post[0].append(row)
                post[1].append(tf)
                self._postings_len += 1
                self.df[term] = self.df.get(term, 0) + 1
        if vector is not None and self.dim:
            self.set_vector(row, vector)
        self._latest_ts = None
        self.watermark = max(self.watermark, self.revs[row])
        return row

    def set_vector(self, row: int, vector: Any) -> None:
        """Store a record's embedding, unit-normalised (the collections use cosine space)."""
        v = np.asarray(vector, dtype=np.float32)
        norm = float(np.linalg.norm(v))
        self.vectors[row] = v / norm if norm > 0 else v
        self.has_vec.data[row] = True

    def remove(self, doc_id: str) -> bool:
        """Mark one record dead (unknown ids are ignored); returns whether it was held."""
        row = self.row_of.pop(doc_id, None)
        if row is None:
            return False
        self.version += 1
        self.alive.data[row] = False
        self.has_vec.data[row] = False
        kind = int(self.kind.data[row])
        if kind in (1, 2):
            self.derived -= 1
        self.sources.pop(row, None)
        self.superseded_by.pop(row, None)
        self.extras.pop(row, None)
        first = self.role_first_code.pop(row, None)
        if first is not None:
            left = self.role_first.get(first, 0) - 1
            if left > 0:
                self.role_first[first] = left
            else:
                self.role_first.pop(first, None)
        if kind == 0:
            g = int(self.session.data[row])
            rows = self.session_rows.get(g)
            if rows is not None and row in rows:
                rows.remove(row)
                self._position.pop(row, None)
                self._order_dirty.add(g)
        if self.flags["indexed"].data[row] != 0:
            self.n_indexed -= 1
            self.total_len -= int(self.doc_len.data[row])
            for term in (self.terms.values[t] for t in self.token_ids(row)):
                left = self.df.get(term, 0) - 1
                if left > 0:
                    self.df[term] = left
                else:
                    self.df.pop(term, None)
                    gone = self.postings.pop(term, None)
                    if gone is not None:
                        self._postings_len -= len(gone[0])
        self.doc_len.data[row] = 0
        self._text_bytes -= len(self.texts[row])
        self.texts[row] = ""  # dead rows keep no text
        self._latest_ts = None
        return True

    # ------------------------------------------------------------------ reads

    def token_ids(self, row: int) -> array:
        """A row's distinct tokens as term ids (sorted)."""
        end = self.tok_start[row + 1] if row + 1 < len(self.tok_start) else len(self.tok_flat)
        return self.tok_flat[self.tok_start[row] : end]

    def rev_of(self, doc_id: str) -> int | None:
        """The revision held for ``doc_id`` (``None`` if not held)."""
        row = self.row_of.get(doc_id)
        return None if row is None else self.revs[row]

    def meta_of(self, row: int) -> dict[str, Any]:
        """A row's metadata as far as a public item reads it (see ``records.to_item``)."""
        md: dict[str, Any] = {"tenant_id": self.key[0], "kind": self.kind_of(row)}
        for field, col in (("role", self.role), ("status", self.status), *self.scope.items()):
            code = int(col.data[row])
            if code >= 0:
                md[field] = self.strings.values[code]
        for field in ("ts", "seq", "expires_at", "created_at", "updated_at", "version"):
            v = self.num[field].data[row]
            if field in _INT_FIELDS:
                if v != _ABSENT:
                    md[field] = int(v)
            elif not math.isnan(v):
                md[field] = float(v)
        latest = int(self.flags["is_latest"].data[row])
        if latest >= 0:
            md["is_latest"] = bool(latest)
        md.update(self.extras.get(row, {}))
        return md

    def kind_of(self, row: int) -> str:
        """Kind name of a row."""
        code = int(self.kind.data[row])
        return _KINDS[code] if 0 <= code < len(_KINDS) else "other"

    def is_derived(self, row: int) -> bool:
        """Whether a row is a fact or an episode."""
        return int(self.kind.data[row]) in (1, 2)

    def is_turn(self, row: int) -> bool:
        """Whether a row is a turn."""
        return int(self.kind.data[row]) == 0

    def ts(self, row: int) -> float | None:
        """A row's timestamp (epoch seconds) or ``None``."""
        v = float(self.num["ts"].data[row])
        return None if math.isnan(v) else v

    @property
    def latest_ts(self) -> float:
        """Newest timestamp among live rows (``0.0`` when none): "last week" is relative to it."""
        if self._latest_ts is None:
            ts = self.num["ts"].data[: self.n][self.alive.data[: self.n]]
            ts = ts[~np.isnan(ts)]
            self._latest_ts = float(ts.max()) if len(ts) else 0.0
        return self._latest_ts

    def first_role(self, row: int) -> str | None:
        """First word of a row's role, lower-cased (the speaker as queries name it)."""
        return self.role_first_code.get(row)

    def matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """Which rows can be scored (live, indexed, with a vector) and the vectors of rows ``0..n``.

        The vectors are a view, never a copy: a copy of the scored rows would double the
        memory of the largest array a partition holds, and be made again after every write.
        Dead rows stay in the view (scored, then masked out); the partition is reloaded
        compact once they are half of it.
        """
        n = self.n
        ok = self.alive.data[:n] & self.has_vec.data[:n] & (self.flags["indexed"].data[:n] != 0)
        return ok, self.vectors[:n]

    def missing_vectors(self) -> list[str]:
        """Ids of live rows whose embedding is not held yet."""
        n = self.n
        rows = np.flatnonzero(self.alive.data[:n] & ~self.has_vec.data[:n])
        return [self.ids[r] for r in rows]

    def idf(self, term: str) -> float:
        """Inverse document frequency (BM25's, floored at zero by the +1)."""
        df = self.df.get(term, 0)
        return math.log(1.0 + (self.n_indexed - df + 0.5) / (df + 0.5))

    def bm25(self, terms: Iterable[str], weights: dict[str, float] | None = None) -> np.ndarray:
        """BM25 score of every row for ``terms`` (``0.0`` where no term matches; dead rows 0)."""
        out = np.zeros(self.n, dtype=np.float64)
        if not self.n_indexed:
            return out
        avg = self.total_len / self.n_indexed or 1.0
        alive = self.alive.data
        lens = self.doc_len.data
        for term in dict.fromkeys(terms):
            post = self.postings.get(term)
            if not post:
                continue
            w = self.idf(term) * (weights.get(term, 1.0) if weights else 1.0)
            rows = np.frombuffer(post[0], dtype=np.int32)
            tfs = np.frombuffer(post[1], dtype=np.int32)
            live = alive[rows]
            rows, tfs = rows[live], tfs[live].astype(np.float64)
            norm = tfs + BM25_K1 * (1.0 - BM25_B + BM25_B * lens[rows] / avg)
            out[rows] += w * tfs * (BM25_K1 + 1.0) / norm  # a row occurs once per posting list
        return out

    def group_bm25(
        self,
        terms: Iterable[str],
        member: np.ndarray,
        group_len: dict[int, int],
        weights: dict[str, float] | None = None,
    ) -> dict[int, float]:
        """BM25 of sessions, each scored as one document made of its ``member`` rows.

        Args:
            terms: Query tokens (repeats count once).
            member: Boolean mask of the rows that count (e.g. kept turns of sessions in play).
            group_len: Token length of every session (sets the count and the average).
            weights: Optional per-term multipliers.
        """
        n = len(group_len)
        if not n:
            return {}
        sessions = self.session.data
        n_groups = len(self.sessions)
        if self._lengths is not None and len(self._lengths) == 3 and group_len is self._lengths[1]:
            # session_lengths()'s own dict: its arrays are cached with it (thousands of sessions
            # in a large partition made this loop the costliest step of the session prior).
            has_len, lengths, avg = self._lengths[2]
        else:
            has_len, lengths, avg = _length_arrays(group_len, n_groups)
        ok = self.alive.data[: self.n] & member[: self.n]
        total = np.zeros(n_groups, dtype=np.float64)
        hit = np.zeros(n_groups, dtype=np.bool_)
        for term in dict.fromkeys(terms):
            post = self.postings.get(term)
            if not post:
                continue
            rows = np.frombuffer(post[0], dtype=np.int32)
            tfs = np.frombuffer(post[1], dtype=np.int32)
            keep = ok[rows]
            groups = sessions[rows[keep]]
            inside = has_len[groups]
            tf = np.bincount(groups[inside], weights=tfs[keep][inside], minlength=n_groups)
            present = tf > 0
            df = int(present.sum())
            w = math.log(1.0 + (n - df + 0.5) / (df + 0.5)) * (weights.get(term, 1.0) if weights else 1.0)
            norm = tf[present] + BM25_K1 * (1.0 - BM25_B + BM25_B * lengths[present] / avg)
            total[present] += w * tf[present] * (BM25_K1 + 1.0) / norm
            hit |= present
        return {int(g): float(total[g]) for g in np.flatnonzero(hit)}

    def session_lengths(self) -> dict[int, int]:
        """Token length of every session that has live indexed turns (cached until a change)."""
        if self._lengths is not None and len(self._lengths) == 3 and self._lengths[0] == self.version:
            return self._lengths[1]
        n = self.n
        turns = self.alive.data[:n] & (self.kind.data[:n] == 0) & (self.flags["indexed"].data[:n] != 0)
        groups = self.session.data[:n][turns]
        sums = np.bincount(groups, weights=self.doc_len.data[:n][turns], minlength=len(self.sessions))
        counts = np.bincount(groups, minlength=len(self.sessions))
        out = {int(g): int(sums[g]) for g in np.flatnonzero(counts)}
        self._lengths = (self.version, out, _length_arrays(out, len(self.sessions)))
        return out

    def order_sessions(self) -> None:
        """Sort the turns of sessions changed since the last call into write order."""
        if not self._order_dirty:
            return
        seq = self.num["seq"].data
        for g in self._order_dirty:
            rows = self.session_rows.get(g, [])
            rows.sort(key=lambda r: (0 if seq[r] == _ABSENT else int(seq[r]), self.ids[r]))
            for n, r in enumerate(rows):
                self._position[r] = n
        self._order_dirty = set()

    def neighbours(self, row: int) -> list[int]:
        """The turns just before and after a turn in its session (write order)."""
        self.order_sessions()
        pos = self._position.get(row)
        if pos is None:
            return []
        rows = self.session_rows[int(self.session.data[row])]
        return [rows[j] for j in (pos - 1, pos + 1) if 0 <= j < len(rows)]

    def nbytes(self) -> int:
        """Approximate memory held (for the partition cache's budget)."""
        cols = sum(c.data.nbytes for c in (self.alive, self.kind, self.role, self.status, self.session,
                                           self.timely, self.doc_len, self.has_vec))  # fmt: skip
        cols += sum(c.data.nbytes for c in (*self.scope.values(), *self.num.values(), *self.flags.values()))
        # Python object overheads: ~50 B per str, ~100 B per dict entry and per posting list.
        strings = self._text_bytes + 110 * len(self.ids) + 100 * len(self.row_of)
        posts = 8 * self._postings_len + 120 * len(self.postings)
        tokens = 4 * len(self.tok_flat) + 8 * len(self.tok_start)
        return int(cols + self.vectors.nbytes + strings + posts + tokens + 8 * len(self.revs))

    # ------------------------------------------------------------------ filters

    def mask(self, where: Mapping[str, Any] | None) -> np.ndarray | None:
        """Rows passing ``where`` (Chroma semantics), or ``None`` if a field is not a column.

        Only live rows pass. ``None`` means the caller must ask Chroma (caller metadata).
        """
        n = self.n
        alive = self.alive.data[:n].copy()
        if not where:
            return alive
        try:
            got = self._eval(where, n)
        except _NotColumnar:
            return None
        return alive & got

    def _eval(self, where: Mapping[str, Any], n: int) -> np.ndarray:
        out = np.ones(n, dtype=np.bool_)
        for key, cond in where.items():
            if key == "$and":
                for c in cond:
                    out &= self._eval(c, n)
            elif key == "$or":
                acc = np.zeros(n, dtype=np.bool_)
                for c in cond:
                    acc |= self._eval(c, n)
                out &= acc
            elif key.startswith("$") or key not in COLUMN_FIELDS:
                raise _NotColumnar(key)
            elif isinstance(cond, Mapping):
                for op, value in cond.items():
                    out &= self._op(key, op, value, n)
            else:
                out &= self._op(key, "$eq", cond, n)
        return out

    def _op(self, field: str, op: str, value: Any, n: int) -> np.ndarray:
        if op in ("$in", "$nin"):
            acc = np.zeros(n, dtype=np.bool_)
            for v in value:
                acc |= self._op(field, "$eq", v, n)
            return acc if op == "$in" else ~acc
        if op == "$ne":
            return ~self._op(field, "$eq", value, n)
        if field in _BOOL_FIELDS:
            if op != "$eq" or not isinstance(value, bool):
                return np.zeros(n, dtype=np.bool_)
            return self.flags[field].data[:n] == int(value)
        if field in _NUM_FIELDS:
            if isinstance(value, bool) or not isinstance(value, int | float):
                return np.zeros(n, dtype=np.bool_)
            col = self.num[field].data[:n]
            operand: Any = float(value)
            if field in _INT_FIELDS:
                present = col != _ABSENT
                if math.isfinite(value):
                    operand = int(value)  # Chroma truncates a float operand against a stored int
                else:
                    col = col.astype(np.float64)
                return present & self._compare(col, op, operand)
            return self._compare(col, op, operand)
        return self._string_op(field, op, value, n)

    @staticmethod
    def _compare(col: np.ndarray, op: str, operand: Any) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            if op == "$eq":
                return col == operand
            if op == "$gt":
                return col > operand
            if op == "$gte":
                return col >= operand
            if op == "$lt":
                return col < operand
            if op == "$lte":
                return col <= operand
        raise _NotColumnar(op)

    def _string_op(self, field: str, op: str, value: Any, n: int) -> np.ndarray:
        if op != "$eq":
            return np.zeros(n, dtype=np.bool_)  # Chroma orders numbers only
        if not isinstance(value, str):
            return np.zeros(n, dtype=np.bool_)
        if field == "kind":
            code = _KIND_CODE.get(value)
            return self.kind.data[:n] == code if code is not None else np.zeros(n, dtype=np.bool_)
        code = self.strings.code.get(value)
        if code is None:
            return np.zeros(n, dtype=np.bool_)
        col = {"role": self.role, "status": self.status}.get(field) or self.scope[field]
        return col.data[:n] == code


class _NotColumnar(Exception):
    """A where clause names a field the columns do not hold."""


def _length_arrays(group_len: dict[int, int], n_groups: int) -> tuple[np.ndarray, np.ndarray, float]:
    """``group_len`` as arrays over ``n_groups`` sessions: which have a length, the lengths, their mean."""
    has_len = np.zeros(n_groups, dtype=np.bool_)
    lengths = np.zeros(n_groups, dtype=np.float64)
    if group_len:
        keys = np.fromiter(group_len.keys(), dtype=np.int64, count=len(group_len))
        has_len[keys] = True
        lengths[keys] = np.fromiter(group_len.values(), dtype=np.float64, count=len(group_len))
    avg = sum(group_len.values()) / len(group_len) if group_len else 0.0
    return has_len, lengths, avg or 1.0


def normalise(text: str) -> str:
    """Lower-cased words joined by single spaces: texts equal under it are duplicates."""
    return " ".join(re.findall(r"\w+", text.lower()))


def _sources(meta: Mapping[str, Any]) -> tuple[str, ...]:
    """A derived record's ``source_ids`` (stored as a JSON list); ``()`` when absent or unreadable."""
    raw = meta.get("source_ids")
    if not raw:
        return ()
    try:
        got = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return ()
    return tuple(str(x) for x in got) if isinstance(got, list) else ()


def row_predicate(part: Partition, where: Mapping[str, Any] | None, extra_ids: set[str] | None) -> np.ndarray:
    """The boolean row mask of ``where``; ``extra_ids`` (from Chroma) when the columns cannot say."""
    got = part.mask(where)
    if got is not None:
        return got
    out = np.zeros(part.n, dtype=np.bool_)
    for i in extra_ids or ():
        r = part.row_of.get(i)
        if r is not None:
            out[r] = True
    return out


__all__ = ["COLUMN_FIELDS", "DERIVED_KINDS", "Partition", "compile_where", "row_predicate"]
