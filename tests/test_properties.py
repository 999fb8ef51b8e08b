"""Property-based tests of the core engine: idempotency, metadata round-trips, order, filters."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mem_adapters import MemAdaptersError, MemoryEngine, ValidationError

T0 = datetime(2025, 2, 1, tzinfo=timezone.utc)
PROPS = settings(max_examples=25, deadline=None)


@pytest.fixture(scope="module")
def peng(tmp_path_factory) -> Iterator[MemoryEngine]:
    """One engine for all examples (each example uses its own session/tenant).

    A deterministic fake embedder keeps examples fast; the embedder is not what is under test here.
    """
    from langchain_core.embeddings import DeterministicFakeEmbedding

    eng = MemoryEngine(tmp_path_factory.mktemp("props"), embedder=DeterministicFakeEmbedding(size=16))
    yield eng
    eng.close()


def fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def strict_equal(a: Any, b: Any) -> bool:
    """Equality that tells bool from int and int from float, recursively."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and a == 0.0:
        return math.copysign(1.0, a) == math.copysign(1.0, b)
    return a == b


# ---------------------------------------------------------------- idempotency


@st.composite
def conversations(draw) -> list[dict]:
    n = draw(st.integers(1, 8))
    texts = st.sampled_from(["hi", "hello", "I like tea", "I like tea", "ok", "see you"])
    turns = []
    for i in range(n):
        turn = {
            "role": draw(st.sampled_from(["user", "assistant", "Caroline"])),
            "text": draw(texts),
            "timestamp": (T0 + timedelta(minutes=draw(st.integers(0, 3)))).isoformat(),
        }
        if draw(st.booleans()):
            turn["id"] = f"caller-{i}"  # unique caller ids; identical texts under them must all be kept
        turns.append(turn)
    return turns


def _key(turn: dict) -> tuple:
    ts = datetime.fromisoformat(turn["timestamp"]).astimezone(timezone.utc)
    return (turn.get("id"), turn["role"], turn["text"], ts)


@PROPS
@given(turns=conversations(), data=st.data())
def test_resending_never_duplicates_and_returns_same_ids(peng, turns, data):
    session = fresh("idem")
    # Caller ids are scoped per session (this example's own); make them distinct anyway.
    turns = [{**t, "id": f"{session}-{t['id']}"} if "id" in t else t for t in turns]
    # First write, in random batches.
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(turns) - 1)), max_size=3)))
    batches = [turns[a:b] for a, b in zip([0, *cuts], [*cuts, len(turns)], strict=True) if turns[a:b]]
    ids: dict[tuple, str] = {}
    for batch in batches:
        res = peng.remember(batch, session_id=session)
        assert len(res.active_ids) == len(batch)
        for turn, tid in zip(batch, res.active_ids, strict=True):
            assert ids.setdefault(_key(turn), tid) == tid
            if "id" in turn:  # stored under an id scoped to the session, the caller's id kept
                assert peng.get(tid).caller_id == turn["id"]
    distinct = set(ids.values())
    # Turns with caller ids are distinct records even when their texts are identical.
    assert len(distinct) == len(ids)
    stored = peng.get_messages(session)
    assert {m.id for m in stored} == distinct and len(stored) == len(distinct)
    first_order = [m.id for m in stored]
    # Re-send any batch, in any order, any number of times.
    for _ in range(data.draw(st.integers(1, 3))):
        batch = data.draw(st.lists(st.sampled_from(turns), min_size=1, max_size=len(turns) + 2))
        # A caller id twice in one batch is refused (tests/test_ids.py): keep its first turn.
        batch = [t for n, t in enumerate(batch) if "id" not in t or t not in batch[:n]]
        res = peng.remember(batch, session_id=session)
        assert res.active_ids == [ids[_key(t)] for t in batch]
        assert res.created == 0
        assert res.usage.tokens_out == 0
    again = peng.get_messages(session)
    assert [m.id for m in again] == first_order  # nothing duplicated, nothing moved
    for m in again:
        (turn,) = {_key(t): t for t in turns if ids[_key(t)] == m.id}.values() or [None]
        assert turn is not None and m.text == turn["text"] and m.role == turn["role"]


def test_identical_texts_with_different_caller_ids_are_both_kept(peng):
    session = fresh("same-text")
    turns = [{"role": "user", "text": "ok", "timestamp": T0.isoformat(), "id": i} for i in ("a", "b")]
    res = peng.remember(turns, session_id=session)
    assert res.created == 2 and len(set(res.active_ids)) == 2
    stored = peng.get_messages(session)
    assert [m.id for m in stored] == res.active_ids and [m.caller_id for m in stored] == ["a", "b"]


def test_hash_id_is_independent_of_batching_and_timestamp_spelling(peng):
    s = fresh("hash")
    one = peng.remember([{"role": "user", "text": "x", "timestamp": "2025-01-01T10:00:00Z"}], session_id=s)
    two = peng.remember(
        [{"role": "user", "text": "y", "timestamp": "2025-01-01T10:00:00"},
         {"role": "user", "text": "x", "timestamp": "2025-01-01T12:00:00+02:00"}],
        session_id=s,
    )  # fmt: skip
    assert two.active_ids[1] == one.active_ids[0]
    assert peng.count_turns(s) == 2


# ---------------------------------------------------------------- metadata


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
metadata_dicts = st.dictionaries(st.text(max_size=10), json_values, max_size=6)


@PROPS
@given(meta=metadata_dicts, base=metadata_dicts)
def test_arbitrary_json_metadata_roundtrips_exactly(peng, meta, base):
    tenant = fresh("meta")
    w = peng.remember(
        [{"role": "user", "text": "t", "timestamp": T0.isoformat(), "metadata": meta}],
        session_id="s",
        tenant_id=tenant,
        metadata=base,
    )
    expected = {**base, **meta}
    item = peng.get(w.active_ids[0], tenant_id=tenant)
    assert strict_equal(item.metadata, expected), (item.metadata, expected)
    assert strict_equal(peng.get_messages("s", tenant_id=tenant)[0].metadata, expected)
    a = peng.add(raw_text="memo", metadata=meta, tenant_id=tenant)
    assert strict_equal(peng.get(a.memory_id, tenant_id=tenant).metadata, meta)
    hits = peng.search("memo", tenant_id=tenant, k=5).results
    assert {h.id for h in hits} == {a.memory_id, w.active_ids[0]}
    for h in hits:
        assert strict_equal(h.metadata, meta if h.id == a.memory_id else expected)
    # Updating with the same metadata changes nothing in it.
    peng.update(a.memory_id, metadata={k: v for k, v in meta.items() if v is not None}, tenant_id=tenant)
    assert strict_equal(peng.get(a.memory_id, tenant_id=tenant).metadata, meta)


class Opaque:
    pass


non_json_leaf = st.one_of(
    st.just(float("nan")),
    st.just(float("inf")),
    st.builds(set, st.lists(st.integers(), max_size=2)),
    st.binary(max_size=3),
    st.tuples(st.integers()),
    st.builds(Opaque),
    st.datetimes(),
)


@st.composite
def poisoned_metadata(draw) -> dict:
    """A JSON dict with one non-JSON value hidden somewhere inside."""
    meta = draw(metadata_dicts)
    bad = draw(non_json_leaf)
    depth = draw(st.integers(0, 2))
    for _ in range(depth):
        bad = draw(st.sampled_from([lambda b: [b], lambda b: {"k": b}]))(bad)
    meta[draw(st.text(max_size=5))] = bad
    return meta


@PROPS
@given(meta=poisoned_metadata(), where=st.sampled_from(["turn", "call", "add"]))
def test_non_json_metadata_rejected_and_nothing_written(peng, meta, where):
    tenant = fresh("bad-meta")
    turn = {"role": "user", "text": "t", "timestamp": T0.isoformat()}
    with pytest.raises(ValidationError) as e:
        if where == "turn":
            peng.remember([turn, {**turn, "text": "u", "metadata": meta}], session_id="s", tenant_id=tenant)
        elif where == "call":
            peng.remember([turn], session_id="s", tenant_id=tenant, metadata=meta)
        else:
            peng.add(raw_text="memo", metadata=meta, tenant_id=tenant)
    assert "metadata" in e.value.field
    assert peng.list(tenant_id=tenant).count == 0


# ---------------------------------------------------------------- order


@PROPS
@given(plan=st.lists(st.tuples(st.sampled_from("AB"), st.integers(1, 4)), min_size=1, max_size=8))
def test_interleaved_sessions_replay_in_write_order(peng, plan):
    tenant = fresh("order")
    expected: dict[str, list[str]] = {"A": [], "B": []}
    for n, (session, size) in enumerate(plan):
        turns = [
            {
                "role": "user",
                "text": f"{session}{n}.{i}",
                "timestamp": (T0 - timedelta(minutes=n)).isoformat(),
            }
            for i in range(size)
        ]  # timestamps run backwards: the transcript must follow writes, not timestamps
        res = peng.remember(turns, session_id=session, tenant_id=tenant)
        expected[session] += res.active_ids
    for session, ids in expected.items():
        msgs = peng.get_messages(session, tenant_id=tenant)
        assert [m.id for m in msgs] == ids
        seqs = [m.seq for m in msgs]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert peng.count_turns(session, tenant_id=tenant) == len(ids)
        k = len(ids) // 2
        if k:
            assert [m.id for m in peng.get_messages(session, tenant_id=tenant, limit=k, last=True)] == ids[
                -k:
            ]


# ---------------------------------------------------------------- filters: result or ValidationError

ANY_FIELD = st.sampled_from(
    ["role", "seq", "timestamp", "kind", "topic", "metadata.n", "is_latest", "$bogus"]
)
ANY_VALUE = st.one_of(
    st.text(max_size=4),
    st.integers(-5, 5),
    st.floats(-5, 5),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)
ANY_OP = st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$like", "$exists"])


@st.composite
def any_filter(draw) -> dict:
    out = {}
    for _ in range(draw(st.integers(1, 3))):
        field = draw(ANY_FIELD)
        if draw(st.booleans()):
            out[field] = draw(ANY_VALUE)
        else:
            op = draw(ANY_OP)
            value = (
                draw(st.lists(ANY_VALUE, min_size=1, max_size=3))
                if op in ("$in", "$nin")
                else draw(ANY_VALUE)
            )
            out[field] = {op: value}
    if draw(st.booleans()):
        out = {"$or": [out, {"role": "user"}]}
    return out


@pytest.fixture(scope="module")
def filter_tenant(peng) -> str:
    tenant = fresh("filters")
    peng.remember(
        [{"role": "user", "text": "a", "timestamp": T0.isoformat(), "metadata": {"topic": "x", "n": 1}},
         {"role": "assistant", "text": "b", "timestamp": T0.isoformat(),
          "metadata": {"topic": "y", "n": 2.5}}],
        session_id="s", tenant_id=tenant,
    )  # fmt: skip
    return tenant


@PROPS
@given(filters=any_filter())
def test_any_filter_gives_results_or_a_validation_error(peng, filter_tenant, filters):
    for call in (
        lambda: peng.list(filters, tenant_id=filter_tenant),
        lambda: peng.search("a", filters=filters, tenant_id=filter_tenant),
    ):
        try:
            call()
        except ValidationError as e:
            assert e.field.startswith("filters")
        except MemAdaptersError as e:  # pragma: no cover - a failure message with the filter
            pytest.fail(f"{filters!r} raised {type(e).__name__}: {e} (bad input must be a ValidationError)")
        except Exception as e:
            pytest.fail(f"{filters!r} leaked {type(e).__module__}.{type(e).__name__}: {e}")
